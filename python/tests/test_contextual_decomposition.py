"""sa.contextual_decomposition: agreement with the acd package (fixture numbers written by
fixtures/make_cd_fixtures.py; no torch or acd needed here), shapes and targets, masks as booleans, and
argument errors naming the argument."""
import os

import numpy as np
import pytest

import swiftattr as sa

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "cd_acd.npz")


@pytest.fixture(scope="module")
def acd():
    return np.load(FIXTURE)


def _model(f, name):
    """The fixture's torch model as a swiftattr network (weights copied, PyTorch layouts)."""
    p = lambda key: f[f"{name}_{key}"]  # noqa: E731
    if name == "generic":
        layers = [sa.Conv2d(p("0_weight"), p("0_bias")), sa.ReLU(), sa.MaxPool2d(2),
                  sa.Conv2d(p("3_weight"), p("3_bias")), sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(),
                  sa.Linear(p("7_weight"), p("7_bias")), sa.ReLU(), sa.Linear(p("9_weight"), p("9_bias"))]
    elif name == "bn":
        layers = [sa.Conv2d(p("0_weight"), p("0_bias")),
                  sa.BatchNorm2d(p("1_running_mean"), p("1_running_var"), p("1_weight"), p("1_bias")), sa.ReLU(),
                  sa.MaxPool2d(2), sa.Conv2d(p("4_weight"), p("4_bias")), sa.ReLU(), sa.AvgPool2d(2), sa.Flatten(),
                  sa.Linear(p("8_weight"), p("8_bias")), sa.ReLU(), sa.Dropout(), sa.Linear(p("11_weight"), p("11_bias"))]
    else:  # acd's cd_propagate_mnist: max-pool before ReLU
        layers = [sa.Conv2d(p("conv1_weight"), p("conv1_bias")), sa.MaxPool2d(2), sa.ReLU(),
                  sa.Conv2d(p("conv2_weight"), p("conv2_bias")), sa.MaxPool2d(2), sa.ReLU(), sa.Flatten(),
                  sa.Linear(p("fc1_weight"), p("fc1_bias")), sa.ReLU(), sa.Linear(p("fc2_weight"), p("fc2_bias"))]
    return sa.Sequential(layers, input_shape=(1, 28, 28))


@pytest.mark.parametrize("name", ["generic", "bn", "mnist"])
def test_agrees_with_acd(acd, name):
    """Every mask (blocks, a quadrant, a random half, full and empty) in one call, against acd's one call per
    mask. Both compute in float32; acd applies each layer to β and γ separately and subtracts the bias
    m(0), swiftattr carries the smaller part only (the other is the forward value minus it) and applies W
    without the bias, so the two differ by float32 rounding of the magnitudes involved (about 1e-6 of the
    logits here, the bias split amplifying it at most tenfold): 1e-4 of the largest logit."""
    net = _model(acd, name)
    x, masks = acd["x"], acd["masks"][:, None]  # (M, 1, 28, 28)
    logits = acd[f"{name}_logits"]
    np.testing.assert_allclose(net.forward(x), logits, rtol=0, atol=1e-5 * np.abs(logits).max())
    rel, irr = sa.contextual_decomposition(net, x, masks)
    assert rel.shape == irr.shape == (x.shape[0], masks.shape[0], 10)
    scale = np.abs(logits).max()
    np.testing.assert_allclose(rel, acd[f"{name}_relevant"], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(irr, acd[f"{name}_irrelevant"], rtol=0, atol=1e-4 * scale)
    np.testing.assert_allclose(rel + irr, np.broadcast_to(logits[:, None], rel.shape), rtol=0, atol=1e-5 * scale)


def test_one_mask_booleans_and_targets(acd):
    net = _model(acd, "generic")
    x, masks = acd["x"], acd["masks"][:, None]
    rel, irr = sa.contextual_decomposition(net, x, masks)
    one_rel, one_irr = sa.contextual_decomposition(net, x, masks[2].astype(bool))  # one mask: (N, out)
    assert one_rel.shape == (x.shape[0], 10)
    np.testing.assert_allclose(one_rel, rel[:, 2], rtol=0, atol=1e-5 * np.abs(rel).max())
    np.testing.assert_allclose(one_irr, irr[:, 2], rtol=0, atol=1e-5 * np.abs(irr).max())
    t_rel, t_irr = sa.contextual_decomposition(net, x, masks, target=3)
    assert t_rel.shape == (x.shape[0], masks.shape[0])
    np.testing.assert_array_equal(t_rel, rel[:, :, 3])
    np.testing.assert_array_equal(t_irr, irr[:, :, 3])
    per = np.arange(x.shape[0]) % 10
    p_rel, _ = sa.contextual_decomposition(net, x, masks[0], target=per, internal_batch_size=3)
    assert p_rel.shape == (x.shape[0],)
    np.testing.assert_allclose(p_rel, rel[np.arange(x.shape[0]), 0, per], rtol=0, atol=1e-5 * np.abs(rel).max())


def test_softmax_network_is_decomposed_at_its_logits(rng):
    w, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    net = sa.Sequential([sa.Linear(w, b), sa.Softmax()])
    x = rng.standard_normal((2, 4)).astype(np.float32)
    rel, irr = sa.contextual_decomposition(net, x, np.array([1, 0, 1, 0]))
    np.testing.assert_allclose(rel + irr, x @ w.T + b, rtol=1e-5, atol=1e-6)


def test_argument_errors(acd):
    net = _model(acd, "generic")
    x, mask = acd["x"], acd["masks"][0][None]
    cases = [
        (dict(mask=np.ones((28, 28))), sa._ffi.SA_ERR_SHAPE, "mask"),
        (dict(mask=np.ones((2, 28, 28))), sa._ffi.SA_ERR_SHAPE, "mask"),
        (dict(mask=np.ones((0, 1, 28, 28))), sa._ffi.SA_ERR_INVALID_ARGUMENT, "mask"),
        (dict(mask=np.full((1, 28, 28), np.nan)), sa._ffi.SA_ERR_NON_FINITE, "mask"),
        (dict(mask=np.full((1, 28, 28), "a")), sa._ffi.SA_ERR_INVALID_ARGUMENT, "mask"),
        (dict(mask=[[1, 2], [3]]), sa._ffi.SA_ERR_INVALID_ARGUMENT, "mask"),
        (dict(mask=mask, target=10), sa._ffi.SA_ERR_OUT_OF_RANGE, "target"),
        (dict(mask=mask, target=[0, 1]), sa._ffi.SA_ERR_SHAPE, "target"),
        (dict(mask=mask, target=1.5), sa._ffi.SA_ERR_INVALID_ARGUMENT, "target"),
        (dict(mask=mask, internal_batch_size=0), sa._ffi.SA_ERR_INVALID_ARGUMENT, "internal_batch_size"),
        (dict(mask=mask, internal_batch_size=2.5), sa._ffi.SA_ERR_INVALID_ARGUMENT, "internal_batch_size"),
    ]
    for kwargs, code, name in cases:
        with pytest.raises(sa.SwiftAttrError, match=name) as e:
            sa.contextual_decomposition(net, x, **kwargs)
        assert e.value.code == code, (kwargs, e.value)
    bad = x.copy()
    bad[1, 0, 3, 4] = np.inf
    with pytest.raises(sa.SwiftAttrError, match="x") as e:
        sa.contextual_decomposition(net, bad, mask)
    assert e.value.code == sa._ffi.SA_ERR_NON_FINITE
    with pytest.raises(sa.SwiftAttrError, match="x") as e:
        sa.contextual_decomposition(net, x[:, :, :27], mask)
    assert e.value.code == sa._ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="net"):
        sa.contextual_decomposition(object(), x, mask)
