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
