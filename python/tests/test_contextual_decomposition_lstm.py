"""sa.contextual_decomposition on token models (sa.Embedding + sa.LSTM + sa.Linear): agreement with the acd
package's ``cd_text`` (fixture numbers written by fixtures/make_cd_lstm_fixtures.py; no torch or acd needed
here), the output-bias convention, masks per position of shape (L,) or (M, L), and their checks."""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr._ffi import SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "cd_lstm_acd.npz")


@pytest.fixture(scope="module")
def acd():
    return np.load(FIXTURE)


def _model(f, bias=True):
    """The fixture's classifier (weights copied, PyTorch layouts); without the output bias when ``bias`` is
    False (cd_text's scores are W_out h)."""
    layers = [sa.Embedding(f["emb"]), sa.LSTM(f["wih"], f["whh"], f["bih"], f["bhh"]),
              sa.Linear(f["wout"], f["bout"] if bias else None)]
    return sa.Sequential(layers, input_shape=(f["x"].shape[1],))


def _span_masks(f):
    """cd_text's spans (start, stop), inclusive, as 0/1 masks per position: (S, L)."""
    L = f["x"].shape[1]
    masks = np.zeros((len(f["spans"]), L), dtype=np.float32)
    for s, (start, stop) in enumerate(f["spans"]):
        masks[s, start:stop + 1] = 1
    return masks


def test_agrees_with_cd_text(acd):
    """Every span in one call against cd_text's one call per span. cd_text computes in float32 (its numpy
    products of float32 torch weights) and swiftattr too, through different orders of the same operations
    (batched GEMMs, one carried part): both round at a few 1e-7 of the hidden states per step, over 7 steps
    of a contracting recurrence, so 1e-4 of the largest logit leaves a wide margin."""
    x, masks = acd["x"], _span_masks(acd)
    scale = np.abs(acd["logits"]).max()
    net = _model(acd, bias=False)
    rel, irr = sa.contextual_decomposition(net, x, masks)
    assert rel.shape == irr.shape == (x.shape[0], masks.shape[0], 2)
    np.testing.assert_allclose(rel, acd["relevant"], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(irr, acd["irrelevant"], rtol=0, atol=1e-4 * scale)


def test_output_bias_convention(acd):
    """With the output bias, swiftattr's Linear rule splits it as acd's affine rule does (cd_text leaves it
    out): relevant = cd_text's score + b·(|r| + 1e-20)/(|r| + |s| + 2e-20) with r, s cd_text's relevant and
    irrelevant scores; the parts sum to the logits. The whole sequence is the last span: its irrelevant part
    is 0 (up to the 1e-20 bias share), its relevant part the logits = cd_text's score + the output bias."""
    x, masks, b = acd["x"], _span_masks(acd), acd["bout"]
    scale = np.abs(acd["logits"]).max()
    net = _model(acd)
    np.testing.assert_allclose(net.forward(x), acd["logits"], rtol=0, atol=1e-5 * scale)
    rel, irr = sa.contextual_decomposition(net, x, masks)
    r, s = acd["relevant"], acd["irrelevant"]
    share = (np.abs(r) + 1e-20) / (np.abs(r) + np.abs(s) + 2e-20)
    np.testing.assert_allclose(rel, r + b * share, rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(irr, s + b * (1 - share), rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(rel + irr, np.broadcast_to(acd["logits"][:, None], rel.shape), rtol=0, atol=1e-5 * scale)
    whole = list(map(tuple, acd["spans"])).index((0, x.shape[1] - 1))
    assert np.abs(irr[:, whole]).max() <= 1e-18
    np.testing.assert_allclose(rel[:, whole] - b, r[:, whole], rtol=0, atol=1e-4 * scale)


def test_one_position_mask_and_targets(acd):
    x, masks = acd["x"], _span_masks(acd)
    net = _model(acd)
    rel, irr = sa.contextual_decomposition(net, x, masks)
    one_rel, one_irr = sa.contextual_decomposition(net, x, masks[1].astype(bool))  # one mask (L,): (N, out)
    assert one_rel.shape == (x.shape[0], 2)
    np.testing.assert_allclose(one_rel, rel[:, 1], rtol=0, atol=1e-6 * np.abs(rel).max())
    np.testing.assert_allclose(one_irr, irr[:, 1], rtol=0, atol=1e-6 * np.abs(irr).max())
    t_rel, _ = sa.contextual_decomposition(net, x, masks, target=1)
    np.testing.assert_array_equal(t_rel, rel[:, :, 1])


def test_token_mask_errors(acd):
    x, net = acd["x"], _model(acd)
    L, E = x.shape[1], acd["emb"].shape[1]
    for bad in (np.ones((L, E)), np.ones((2, L, E)), np.ones(L + 1), np.ones((2, L - 1))):
        with pytest.raises(sa.SwiftAttrError, match="mask") as e:
            sa.contextual_decomposition(net, x, bad)
        assert e.value.code == SA_ERR_SHAPE, bad.shape
        assert "per position" in str(e.value)
    ids = x.copy()
    ids[0, 3] = 20  # vocabulary 20
    with pytest.raises(sa.SwiftAttrError, match=r"x\[3\] = 20") as e:
        sa.contextual_decomposition(net, ids, np.ones(L))
    assert e.value.code == SA_ERR_OUT_OF_RANGE
