"""The Deep Attribution Prior: its weight gradient against central differences of the penalised loss, the
learned prior network, repeatability and argument errors."""
import pickle

import numpy as np
import pytest

import swiftattr as sa


def _mlp(d, seed=0, act=None):
    rng = np.random.default_rng(seed)
    act = act or sa.Tanh()
    return sa.Sequential([sa.Linear((rng.normal(size=(8, d)) / np.sqrt(d)).astype(np.float32), (0.1 * rng.normal(size=8)).astype(np.float32)),
                          act, sa.Linear(rng.normal(size=(2, 8)).astype(np.float32), np.zeros(2, np.float32))])


def _data(n, d, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


@pytest.mark.parametrize("squared", [True, False])
def test_the_penalised_gradient_equals_central_differences(squared):
    """Directional derivatives along random weight directions against central differences of the loss with
    the same draws (seed, step 0), along unit directions. The model is float32 with tanh: with step 3e-3 the
    truncation error is O(h²) ~1e-5 of the derivative and the rounding error ~1e-7·|loss|/3e-3 ≈ 3e-5·|loss|
    (|loss| ~ 1); compared to 3e-4 of max(|derivative|, 0.1). (With step 3e-2 the difference quotient is off
    by up to 2e-2 — truncation — and it converges to the analytic value as the step shrinks.) With |·| the
    loss has kinks where g(m_j) = |φ_nj|, which a step this small rarely crosses."""
    d = 5
    net = _mlp(d)
    x, y = _data(24, d)
    meta = np.random.default_rng(2).normal(size=(d, 2)).astype(np.float32)
    prior = sa.DAPr(meta, lam=2.0, squared=squared, seed=3)
    loss, grads = sa.loss_and_gradients(net, x, y, prior=prior, seed=7)
    base, _ = sa.loss_and_gradients(net, x, y, seed=7)
    assert loss - base > 1e-3  # the prior contributes
    params = net.parameters()
    rng = np.random.default_rng(4)
    h = 3e-3
    for _ in range(4):
        v = [rng.normal(size=p.shape) for p in params]
        norm = np.sqrt(sum((u ** 2).sum() for u in v))
        v = [(u / norm).astype(np.float32) for u in v]
        plus = net.with_parameters([p + h * u for p, u in zip(params, v)])
        minus = net.with_parameters([p - h * u for p, u in zip(params, v)])
        fd = (sa.loss_and_gradients(plus, x, y, prior=prior, seed=7)[0]
              - sa.loss_and_gradients(minus, x, y, prior=prior, seed=7)[0]) / (2 * h)
        exact = sum(float((g.astype(np.float64) * u).sum()) for g, u in zip(grads, v))
        assert abs(exact - fd) <= 3e-4 * max(0.1, abs(fd)), (exact, fd)


def test_the_prior_network_learns_which_meta_feature_marks_the_informative_inputs():
    """Two informative inputs among 10, meta-feature 0 marks them (meta-feature 1 is noise): after training
    with a linear g, g predicts more importance for the marked inputs than for the others."""
    d = 10
    rng = np.random.default_rng(5)
    x = rng.normal(size=(256, d)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.int64)
    meta = np.stack([np.isin(np.arange(d), [0, 1]).astype(np.float32), rng.normal(size=d).astype(np.float32)], 1)
    prior = sa.DAPr(meta, lam=1.0, lr=1e-2, seed=0)
    trained, history = sa.train(_mlp(d, act=sa.ReLU()), x, y, prior=prior, epochs=15, batch_size=32, lr=1e-2, seed=0)
    assert prior.network is not None
    imp = prior.importance()
    assert imp[:2].min() > imp[2:].max(), imp
    w = prior.network.parameters()[0].ravel()
    assert w[0] > abs(w[1]), w  # the marking meta-feature carries g
    acc = (trained.forward(x).argmax(1) == y).mean()
    assert acc > 0.9


def test_same_seed_same_weights_and_the_prior_pickles():
    d = 4
    x, y = _data(64, d)
    meta = np.arange(2 * d, dtype=np.float32).reshape(d, 2) / 8
    prior = sa.DAPr(meta, hidden=(3,), lam=0.5, seed=1)
    a, _ = sa.train(_mlp(d), x, y, prior=prior, epochs=3, seed=11)
    ga = prior.network.parameters()
    clone = pickle.loads(pickle.dumps(prior))
    b, _ = sa.train(_mlp(d), x, y, prior=clone, epochs=3, seed=11)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)  # the same computation repeated: bit for bit
    for p, q in zip(ga, clone.network.parameters()):
        np.testing.assert_array_equal(p, q)


def test_bad_arguments_raise():
    net = _mlp(4)
    x, y = _data(8, 4)
    with pytest.raises(sa.SwiftAttrError, match="meta_features"):
        sa.DAPr(np.zeros(4, np.float32))
    with pytest.raises(sa.SwiftAttrError, match="meta_features"):
        sa.loss_and_gradients(net, x, y, prior=sa.DAPr(np.zeros((5, 2), np.float32)), seed=0)
    with pytest.raises(sa.SwiftAttrError, match="prior_network"):
        sa.DAPr(np.zeros((4, 2), np.float32), prior_network=_mlp(2))
    bad = np.zeros((4, 2), np.float32)
    bad[1, 1] = np.nan
    with pytest.raises(sa.SwiftAttrError, match="meta_features"):
        sa.DAPr(bad)
    with pytest.raises(sa.SwiftAttrError, match="lam"):
        sa.DAPr(np.zeros((4, 2), np.float32), lam=-1.0)
