"""sa.CDEP: the penalty and its weight gradient against torch autograd through the acd package's CD
(fixture numbers written by fixtures/make_cdep.py; no torch or acd needed here), training with it,
pickling, and mask errors raised before C with C's codes."""
import os
import pickle

import numpy as np
import pytest

import swiftattr as sa
from swiftattr._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_NON_FINITE, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "cdep_acd.npz")


@pytest.fixture(scope="module")
def fx():
    return np.load(FIXTURE)


def _model(f, name):
    p = lambda k: f[f"{name}_p{k}"]  # noqa: E731
    if name == "cnn":
        layers = [sa.Conv2d(p(0), p(1)), sa.ReLU(), sa.MaxPool2d(2), sa.Conv2d(p(2), p(3)), sa.ReLU(), sa.Flatten(),
                  sa.Linear(p(4), p(5)), sa.ReLU(), sa.Linear(p(6), p(7))]
    else:
        layers = [sa.Flatten(), sa.Linear(p(0), p(1)), sa.ReLU(), sa.Linear(p(2), p(3))]
    return sa.Sequential(layers, input_shape=(1, 8, 8))


@pytest.mark.parametrize("name", ["cnn", "mlp"])
def test_agrees_with_torch_autograd_through_acd(fx, name):
    """Two regions (the four corners as one, a central block), ReLU networks. Both sides compute in float32:
    acd forms each part as m(β) − m(0) (rounding of the bias add and subtract, a few ulps of |b|) where
    swiftattr applies W alone, and the bias shares' derivatives ((|s| + ε)/t² against the part's own size t)
    amplify that rounding at most by the ratio of |b| to the smaller part, about 1e2 at these points: the
    values agree to 1e-5 relative and the gradients to 1e-4 of their largest entry (a wrong rule or index is
    off by O(1) of an entry)."""
    net = _model(fx, name)
    x, y, masks, lam = fx["x"], fx["y"], fx["masks"][:, None], float(fx["lam"])
    plain, plain_g = sa.loss_and_gradients(net, x, y)
    total, total_g = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(masks, lam))
    assert total == pytest.approx(float(fx[f"{name}_total"]), rel=1e-5)
    assert total - plain == pytest.approx(float(fx[f"{name}_penalty"]), rel=1e-5)
    expected = [fx[f"{name}_total_g{k}"] for k in range(len(total_g))]
    scale = max(np.abs(g).max() for g in expected)
    for k, (g, e) in enumerate(zip(total_g, expected)):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-4 * scale, err_msg=f"{name} total gradient {k}")
    penalty_expected = [fx[f"{name}_penalty_g{k}"] for k in range(len(total_g))]
    pscale = max(np.abs(g).max() for g in penalty_expected)
    for k, (g, p, e) in enumerate(zip(total_g, plain_g, penalty_expected)):
        np.testing.assert_allclose(g - p, e, rtol=0, atol=1e-4 * max(pscale, scale), err_msg=f"{name} penalty gradient {k}")


def test_one_region_equals_its_share_of_two(fx):
    """K regions add: the penalty of both masks is the sum of the two single-mask penalties."""
    net = _model(fx, "mlp")
    x, y, masks = fx["x"], fx["y"], fx["masks"]
    base, _ = sa.loss_and_gradients(net, x, y)
    both, _ = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(masks[:, None], 1.0))
    first, _ = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(masks[0], 1.0))  # (8, 8): the input's 64 values
    second, _ = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(masks[1][None].astype(bool), 1.0))
    assert both - base == pytest.approx((first - base) + (second - base), rel=1e-5)


def test_training_with_cdep_and_pickle(fx):
    net = _model(fx, "cnn")
    x, y, masks = fx["x"], fx["y"], fx["masks"][:1, None]
    prior = sa.CDEP(masks, 2.0)
    copy = pickle.loads(pickle.dumps(prior))
    assert repr(copy) == repr(prior)
    a = sa.loss_and_gradients(net, x, y, prior=prior)
    b = sa.loss_and_gradients(net, x, y, prior=copy)
    assert a[0] == b[0]
    trained, history = sa.train(net, x, y, prior=[prior, sa.priors.InputGradient(masks[0], 0.5)], epochs=2, batch_size=4,
                                seed=1, progress=False)
    assert history["epochs"] == 2 and np.isfinite(history["train_loss"]).all()
    assert trained.forward(x).shape == (x.shape[0], 10)


def _code(excinfo):
    return excinfo.value.code


def test_mask_errors_before_c(fx):
    net = _model(fx, "mlp")
    x, y = fx["x"], fx["y"]
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.CDEP(np.full((1, 8, 8), 2.0), 1.0)
    assert _code(e) == SA_ERR_OUT_OF_RANGE and "[0, 1]" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.CDEP(np.full((1, 8, 8), np.nan), 1.0)
    assert _code(e) == SA_ERR_NON_FINITE
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.CDEP(np.ones((1, 8, 8)), -1.0)
    assert _code(e) == SA_ERR_INVALID_ARGUMENT
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.CDEP(np.zeros(0), 1.0)
    assert _code(e) == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.loss_and_gradients(net, x, y, prior=sa.CDEP(np.ones((7, 7)), 1.0))
    assert _code(e) == SA_ERR_SHAPE and "mask" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.train(net, x, y, prior=sa.CDEP(np.ones((2, 1, 7, 8)), 1.0), epochs=1, progress=False)
    assert _code(e) == SA_ERR_SHAPE


def test_token_lstm_model_trains_with_cdep():
    """An Embedding + LSTM classifier: the position mask penalises tokens 1 and 2; the penalty is positive and
    a run gives finite losses."""
    rng = np.random.default_rng(0)
    net = sa.Sequential([sa.Embedding(rng.standard_normal((5, 2))),
                         sa.LSTM(rng.standard_normal((12, 2)), rng.standard_normal((12, 3))),
                         sa.Linear(rng.standard_normal((2, 3)))], input_shape=(4,))
    ids = np.array([[1, 2, 3, 0], [4, 4, 1, 2]])
    prior = sa.CDEP(np.array([0, 1, 1, 0]), 1.0)
    base, _ = sa.loss_and_gradients(net, ids, [1, 0])
    total, grads = sa.loss_and_gradients(net, ids, [1, 0], prior=prior)
    assert 0 < total - base < 1 and all(np.isfinite(g).all() for g in grads)
    _, history = sa.train(net, ids, [1, 0], prior=prior, epochs=2, batch_size=2, seed=0, progress=False)
    assert np.isfinite(history["train_loss"]).all()


# --- per-example masks ----------------------------------------------------------------------------------
def test_per_example_masks_equal_to_the_shared_mask_give_the_same_bits(fx):
    """Every example given the shared masks runs the same computation: the same loss, gradients and trained
    weights, bit for bit."""
    net = _model(fx, "mlp")
    x, y, masks = fx["x"], fx["y"], fx["masks"][:, None]
    n = x.shape[0]
    shared, each = sa.CDEP(masks, 0.8), sa.CDEP(np.broadcast_to(masks, (n,) + masks.shape), 0.8, per_example=True)
    a, b = sa.loss_and_gradients(net, x, y, prior=shared), sa.loss_and_gradients(net, x, y, prior=each)
    assert a[0] == b[0]
    for ga, gb in zip(a[1], b[1]):
        np.testing.assert_array_equal(ga, gb)
    ta, ha = sa.train(net, x, y, prior=shared, epochs=2, batch_size=3, seed=4, progress=False)
    tb, hb = sa.train(net, x, y, prior=each, epochs=2, batch_size=3, seed=4, progress=False)
    assert ha["train_loss"] == hb["train_loss"]
    for pa, pb in zip(ta.parameters(), tb.parameters()):
        np.testing.assert_array_equal(pa, pb)


def test_per_example_masks_are_row_n_for_example_n(fx):
    """loss_and_gradients with per-example masks (one or two regions each) equals the mean over the rows of the
    shared-mask penalty of row n with mask n alone (the penalty is λ times a mean over examples), values and
    gradients. Float32 error: each side sums a few hundred rounded terms per entry (≈ 1e-6 relative of the
    scale), so 1e-5 of the largest entry; a mask taken from the wrong row changes an entry by O(1) of it."""
    net = _model(fx, "cnn")
    x, y = fx["x"], fx["y"]
    n = x.shape[0]
    rng = np.random.default_rng(5)
    for regions in (1, 2):
        masks = rng.random((n, regions, 1, 8, 8)).astype(np.float32)
        prior = sa.CDEP(masks if regions > 1 else masks[:, 0], 1.5, per_example=True)
        assert prior.regions(net) == regions
        base, base_g = sa.loss_and_gradients(net, x, y)
        total, grads = sa.loss_and_gradients(net, x, y, prior=prior)
        rows = []
        for r in range(n):
            b0, g0 = sa.loss_and_gradients(net, x[r:r + 1], y[r:r + 1])
            t0, g1 = sa.loss_and_gradients(net, x[r:r + 1], y[r:r + 1], prior=sa.CDEP(masks[r], 1.5))
            rows.append((t0 - b0, [a - b for a, b in zip(g1, g0)]))
        expected = np.mean([v for v, _ in rows])
        assert total - base == pytest.approx(expected, rel=1e-5)
        for k in range(len(grads)):
            want = np.mean([g[k] for _, g in rows], axis=0)
            scale = max(np.abs(want).max(), 1e-6)
            np.testing.assert_allclose(grads[k] - base_g[k], want, rtol=0, atol=1e-5 * scale, err_msg=f"gradient {k}")
        # A mask mix-up would be visible: the rows' masks reversed give another penalty.
        flipped, _ = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(prior.mask[::-1], 1.5, per_example=True))
        assert abs(flipped - total) > 1e-4


def test_training_under_shuffling_uses_each_examples_mask(fx):
    """With SGD at lr 1e-30 no weight moves (|w| ≫ 1e-30·|g| in float32), so every step's loss is taken on the
    initial network, and an epoch's train loss, Σ_batches |b|·loss_b / n, is the full-set loss (the penalty is λ
    times a mean over examples) whatever the shuffle, if and only if each batch row uses its own example's mask.
    Masks all-ones on even and all-zeros on odd examples make a mix-up change the penalty by O(λ). Float32 error
    of the regrouped sums: ≈ 1e-6 relative, hence 1e-5."""
    net = _model(fx, "mlp")
    x, y = fx["x"], fx["y"]
    n = x.shape[0]
    masks = np.zeros((n, 1, 8, 8), np.float32)
    masks[::2] = 1
    prior = sa.CDEP(masks, 10.0, per_example=True)
    full, _ = sa.loss_and_gradients(net, x, y, prior=prior)
    for seed in (1, 2):
        trained, history = sa.train(net, x, y, prior=prior, optimizer="sgd", lr=1e-30, epochs=2, batch_size=3, seed=seed,
                                    progress=False)
        for pa, pb in zip(trained.parameters(), net.parameters()):
            np.testing.assert_array_equal(pa, pb)
        assert history["train_loss"] == pytest.approx([full, full], rel=1e-5)
    # The same masks against the rows in another order give another loss: the check above can fail.
    other, _ = sa.loss_and_gradients(net, x, y, prior=sa.CDEP(np.roll(masks, 1, axis=0), 10.0, per_example=True))
    assert abs(other - full) > 1e-3 * abs(full)


def test_per_example_mask_errors(fx):
    net = _model(fx, "mlp")
    x, y = fx["x"], fx["y"]
    n = x.shape[0]
    with pytest.raises(sa.SwiftAttrError) as e:  # one row short of X
        sa.loss_and_gradients(net, x, y, prior=sa.CDEP(np.ones((n - 1, 1, 8, 8)), 1.0, per_example=True))
    assert _code(e) == SA_ERR_SHAPE and "mask" in str(e.value) and f"{n - 1} examples" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.train(net, x, y, prior=sa.CDEP(np.ones((n + 2, 1, 8, 8)), 1.0, per_example=True), epochs=1, progress=False)
    assert _code(e) == SA_ERR_SHAPE and "mask" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:  # each example's mask not of the input's size
        sa.loss_and_gradients(net, x, y, prior=sa.CDEP(np.ones((n, 7, 7)), 1.0, per_example=True))
    assert _code(e) == SA_ERR_SHAPE and "(n, 1, 8, 8)" in str(e.value)
    with pytest.raises(sa.SwiftAttrError) as e:  # no example axis
        sa.CDEP(np.ones(64), 1.0, per_example=True)
    assert _code(e) == SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.CDEP(np.ones((2, 64)), 1.0, per_example="yes")
    assert _code(e) == SA_ERR_INVALID_ARGUMENT and "per_example" in str(e.value)
    each = sa.CDEP(np.ones((n, 64)), 1.0, per_example=True)
    assert repr(pickle.loads(pickle.dumps(each))) == repr(each)
