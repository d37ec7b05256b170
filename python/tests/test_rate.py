"""Tests of sa.rate, sa.rate_last_layer and sa.bayesian_last_layer against closed forms and a direct
implementation written here (condition the Gaussian explicitly, KL of two Gaussians per variable)."""
import numpy as np
import pytest

import swiftattr as sa
from swiftattr import SwiftAttrError
from conftest import optional_import

MU = np.array([1.0, 0.5, -0.2])
SIGMA = np.array([[1, .5, .2], [.5, 1, .3], [.2, .3, 1]])


# --- direct reference --------------------------------------------------------------------------------
def direct_kld(mu, S, q, exact=False):
    """KL( p(β_-q) || p(β_-q | β_q = 0) ) for β ∼ N(mu, S), by conditioning explicitly."""
    q = np.atleast_1d(q)
    rest = np.setdiff1d(np.arange(len(mu)), q)
    S_rr, S_rq, S_qq = S[np.ix_(rest, rest)], S[np.ix_(rest, q)], S[np.ix_(q, q)]
    mu_c = mu[rest] - S_rq @ np.linalg.solve(S_qq, mu[q])
    S_c = S_rr - S_rq @ np.linalg.solve(S_qq, S_rq.T)
    d = mu_c - mu[rest]
    kl = 0.5 * d @ np.linalg.solve(S_c, d)
    if exact:
        kl += 0.5 * (np.trace(np.linalg.solve(S_c, S_rr)) - len(rest)
                     + np.linalg.slogdet(S_c)[1] - np.linalg.slogdet(S_rr)[1])
    return kl


def direct_rate(mu, S, exact=False, nullify=(), groups=None):
    nullify = list(nullify)
    if groups is None:
        kld = np.zeros(len(mu))
        for j in range(len(mu)):
            if j not in nullify:
                kld[j] = direct_kld(mu, S, sorted(set([j] + nullify)), exact)
    else:
        kld = np.array([direct_kld(mu, S, sorted(set(list(g) + nullify)), exact) for g in groups])
    return kld


def random_problem(rng, p, cond=1.0):
    A = rng.standard_normal((p, p))
    S = A @ A.T / p + cond * 0.1 * np.eye(p)
    mu = rng.standard_normal(p)
    return mu, S


def assert_kld(actual, expected, rtol=1e-8):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-13 * np.max(np.abs(expected)))


# --- the DESIGN.md vector ----------------------------------------------------------------------------
def test_design_vector():
    r = sa.rate(esa_mean=MU, esa_cov=SIGMA)
    np.testing.assert_allclose(r.rate[0], [0.759577, 0.231176, 0.009247], atol=1e-6)
    np.testing.assert_allclose(2 * r.kld[0] / MU**2, [0.338235, 0.411765, 0.102941], atol=1e-6)
    np.testing.assert_allclose(r.delta, [0.507851], atol=1e-6)
    np.testing.assert_allclose(r.ess, [66.3195], atol=1e-4)
    assert not r.pseudo_inverse[0] and r.rank[0] == 3
    e = sa.rate(esa_mean=MU, esa_cov=SIGMA, exact_kld=True)
    np.testing.assert_allclose(e.rate[0], [0.682759, 0.301146, 0.016095], atol=1e-6)


# --- against the direct implementation ---------------------------------------------------------------
@pytest.mark.parametrize("exact", [False, True])
def test_plain_matches_direct(exact):
    rng = np.random.default_rng(1)
    for p in (5, 23, 60):
        mu, S = random_problem(rng, p)
        r = sa.rate(esa_mean=mu, esa_cov=S, exact_kld=exact)
        kld = direct_rate(mu, S, exact)
        assert_kld(r.kld[0], kld)
        np.testing.assert_allclose(r.rate[0], kld / kld.sum(), rtol=1e-8)
        rr = kld / kld.sum()
        delta = np.sum(rr * np.log(p * rr))
        np.testing.assert_allclose(r.delta[0], delta, rtol=1e-8)
        np.testing.assert_allclose(r.ess[0], 100 / (1 + delta), rtol=1e-8)


@pytest.mark.parametrize("exact", [False, True])
def test_nullify_matches_direct(exact):
    rng = np.random.default_rng(2)
    p = 40
    mu, S = random_problem(rng, p)
    nullify = [3, 17, 29]
    r = sa.rate(esa_mean=mu, esa_cov=S, nullify=nullify, exact_kld=exact)
    kld = direct_rate(mu, S, exact, nullify=nullify)
    assert_kld(r.kld[0], kld)
    assert np.all(r.rate[0][nullify] == 0)
    np.testing.assert_allclose(r.rate[0].sum(), 1, rtol=1e-12)
    rr = np.delete(kld, nullify) / kld.sum()
    np.testing.assert_allclose(r.delta[0], np.sum(rr * np.log((p - 3) * rr)), rtol=1e-8)


@pytest.mark.parametrize("exact", [False, True])
def test_groups_match_direct(exact):
    rng = np.random.default_rng(3)
    p = 36
    mu, S = random_problem(rng, p)
    groups = [[0, 1, 2], [5], [7, 30, 31, 33], list(range(10, 20))]
    r = sa.rate(esa_mean=mu, esa_cov=S, groups=groups, exact_kld=exact)
    assert r.rate.shape == (1, 4)
    assert_kld(r.kld[0], direct_rate(mu, S, exact, groups=groups))
    # groups with nullify
    r2 = sa.rate(esa_mean=mu, esa_cov=S, groups=groups, nullify=[25, 26], exact_kld=exact)
    assert_kld(r2.kld[0], direct_rate(mu, S, exact, nullify=[25, 26], groups=groups))


def test_several_classes_are_independent():
    rng = np.random.default_rng(4)
    problems = [random_problem(rng, 12) for _ in range(3)]
    mu = np.stack([m for m, _ in problems])
    S = np.stack([s for _, s in problems])
    r = sa.rate(esa_mean=mu, esa_cov=S)
    for c in range(3):
        assert_kld(r.kld[c], direct_rate(mu[c], S[c]))


# --- from X: projections, draws, last layer ----------------------------------------------------------
def gaussian_problem(rng, n, p, classes=1):
    X = rng.standard_normal((n, p)) @ (np.eye(p) + 0.3 * rng.standard_normal((p, p)))
    M = rng.standard_normal((classes, n))
    V = []
    for _ in range(classes):
        B = rng.standard_normal((n, n)) / np.sqrt(n)
        V.append(B @ B.T + 0.05 * np.eye(n))
    return X, M, np.stack(V)


@pytest.mark.parametrize("projection", ["covariance", "pseudoinverse"])
def test_gaussian_dense_path_matches_projection_and_direct(projection):
    rng = np.random.default_rng(5)
    n, p = 80, 30
    X, M, V = gaussian_problem(rng, n, p, classes=2)
    if projection == "covariance":
        P = (X - X.mean(0)).T / (n - 1)
    else:
        P = np.linalg.pinv(X)
    r = sa.rate(X, M_F=M, V_F=V, projection=projection)
    for c in range(2):
        mu, S = P @ M[c], P @ V[c] @ P.T
        np.testing.assert_allclose(r.esa_mean[c], mu, rtol=1e-10, atol=1e-14)
        assert_kld(r.kld[c], direct_rate(mu, S))
    assert not r.pseudo_inverse.any()


def test_draws_dense_path_matches_sample_moments():
    rng = np.random.default_rng(6)
    n, p, draws = 60, 20, 300
    X, M, V = gaussian_problem(rng, n, p)
    L = np.linalg.cholesky(V[0])
    F = M[0] + rng.standard_normal((draws, n)) @ L.T
    P = (X - X.mean(0)).T / (n - 1)
    B = F @ P.T
    mu, S = B.mean(0), np.cov(B.T)
    r = sa.rate(X, f_draws=F)
    np.testing.assert_allclose(r.esa_mean[0], mu, rtol=1e-10, atol=1e-14)
    assert_kld(r.kld[0], direct_rate(mu, S))


def test_draws_converge_to_closed_form():
    rng = np.random.default_rng(7)
    n, p = 50, 8
    X, M, V = gaussian_problem(rng, n, p)
    M[0] *= 3
    exact = sa.rate(X, M_F=M, V_F=V).rate[0]
    L = np.linalg.cholesky(V[0])
    errors = []
    for draws in (100, 1000, 10000, 100000):
        F = M[0] + rng.standard_normal((draws, n)) @ L.T
        errors.append(np.abs(sa.rate(X, f_draws=F).rate[0] - exact).max())
    assert errors[-1] < 0.01 * max(errors[0], 1e-3) + 2e-3, errors
    assert errors[-1] < errors[0] and errors[-1] < 5e-3, errors


def test_last_layer_matches_gaussian_on_outputs():
    rng = np.random.default_rng(8)
    n, p, h, classes = 70, 25, 12, 3
    X = rng.standard_normal((n, p))
    H = np.maximum(X @ rng.standard_normal((p, h)), 0)
    W = rng.standard_normal((h, classes))
    covs = []
    for _ in range(classes):
        A = rng.standard_normal((h, h)) / h
        covs.append(A @ A.T + 0.01 * np.eye(h))
    covs = np.stack(covs)
    b = rng.standard_normal(classes)
    M_F = (H @ W + b).T
    V_F = np.stack([H @ covs[c] @ H.T for c in range(classes)])
    for projection in ("covariance", "pseudoinverse"):
        ref = sa.rate(X, M_F=M_F, V_F=V_F, projection=projection)
        got = sa.rate_last_layer(X, H, W, covs, b, projection=projection)
        np.testing.assert_allclose(got.esa_mean, ref.esa_mean, rtol=1e-9, atol=1e-12)
        # h < p: Σ has rank h, the last-layer path works in that range directly.
        assert got.pseudo_inverse.all() and (got.rank == h).all()
        np.testing.assert_allclose(got.rate, ref.rate, rtol=1e-5, atol=1e-9)
    # low-rank path too
    lr = sa.rate_last_layer(X, H, W, covs, b, rank=p)
    np.testing.assert_allclose(lr.rate, sa.rate_last_layer(X, H, W, covs, b).rate, rtol=1e-6, atol=1e-10)


# --- singular and low-rank ---------------------------------------------------------------------------
def authors_alpha(S, j):
    """α_j = λᵀ Λ_{-j,-j}⁺ λ with Λ = pinv(Σ), as the authors' code computes it (lstsq)."""
    Lam = np.linalg.pinv(S, rcond=1e-12)
    rest = np.delete(np.arange(S.shape[0]), j)
    lam = Lam[rest, j]
    return lam @ np.linalg.lstsq(Lam[np.ix_(rest, rest)], lam, rcond=1e-12)[0]


def test_singular_covariance_uses_pseudo_inverse_without_nan():
    rng = np.random.default_rng(9)
    p, k = 30, 12
    A = rng.standard_normal((p, k))
    S = A @ A.T
    mu = A @ rng.standard_normal(k)
    r = sa.rate(esa_mean=mu, esa_cov=S)
    assert r.pseudo_inverse[0] and r.rank[0] == k
    assert np.all(np.isfinite(r.rate)) and np.all(r.kld >= 0)
    alpha = np.array([authors_alpha(S, j) for j in range(p)])
    np.testing.assert_allclose(r.kld[0], 0.5 * mu**2 * alpha, rtol=1e-7, atol=1e-12)
    # an all-zero covariance: no information, uniform RATE, no NaN
    z = sa.rate(esa_mean=mu, esa_cov=np.zeros((p, p)))
    np.testing.assert_allclose(z.rate[0], 1 / p)
    assert z.delta[0] == 0 and z.ess[0] == 100


def test_low_rank_equals_full_at_full_rank():
    rng = np.random.default_rng(10)
    # n ≥ p: rank = p through the low-rank path equals the dense Cholesky path.
    n, p = 90, 35
    X, M, V = gaussian_problem(rng, n, p)
    for projection in ("covariance", "pseudoinverse"):
        dense = sa.rate(X, M_F=M, V_F=V, projection=projection)
        low = sa.rate(X, M_F=M, V_F=V, projection=projection, rank=p)
        np.testing.assert_allclose(low.kld, dense.kld, rtol=1e-7, atol=1e-13 * dense.kld.max())
        np.testing.assert_allclose(low.esa_mean, dense.esa_mean, rtol=1e-9, atol=1e-13)
    # n < p: the low-rank path (automatic) equals the dense pseudo-inverse of the explicit Σ.
    n, p = 30, 60
    X, M, V = gaussian_problem(rng, n, n)
    X = X @ rng.standard_normal((n, p))
    P = (X - X.mean(0)).T / (n - 1)
    low = sa.rate(X, M_F=M, V_F=V)
    full = sa.rate(esa_mean=P @ M[0], esa_cov=P @ V[0] @ P.T)
    assert low.pseudo_inverse[0] and full.pseudo_inverse[0] and low.rank[0] == full.rank[0] == n - 1
    np.testing.assert_allclose(low.kld, full.kld, rtol=1e-6, atol=1e-10 * full.kld.max())
    alpha = np.array([authors_alpha(P @ V[0] @ P.T, j) for j in range(p)])
    np.testing.assert_allclose(low.kld[0], 0.5 * (P @ M[0]) ** 2 * alpha, rtol=1e-6, atol=1e-10 * full.kld.max())
    # draws through the low-rank path
    F = M[0] + rng.standard_normal((500, n)) @ np.linalg.cholesky(V[0]).T
    B = F @ P.T
    ld = sa.rate(X, f_draws=F)
    fd = sa.rate(esa_mean=B.mean(0), esa_cov=np.cov(B.T))
    np.testing.assert_allclose(ld.kld, fd.kld, rtol=1e-6, atol=1e-10 * fd.kld.max())


def test_truncated_rank_on_decaying_spectrum():
    """Stated tolerance: with X's singular values decaying as 0.5^k, keeping the top r = 20 of 40 (tail
    energy < 1e-10 of the total), every RATE value is within 1e-4 (absolute) of the full-rank result
    and the top-10 variables are the same."""
    rng = np.random.default_rng(11)
    n, p = 200, 40
    U, _ = np.linalg.qr(rng.standard_normal((n, p)))
    W, _ = np.linalg.qr(rng.standard_normal((p, p)))
    s = 10 * 0.5 ** np.arange(p)
    X = (U * s) @ W.T
    beta = np.zeros(p)
    beta[:5] = [3, -2, 1.5, 1, -1]
    f = X @ (W[:, :10] @ rng.standard_normal(10)) * 5
    V = 0.1 * np.eye(n)
    full = sa.rate(X, M_F=f, V_F=V, projection="pseudoinverse", rank=p)
    low = sa.rate(X, M_F=f, V_F=V, projection="pseudoinverse", rank=20)
    assert low.rank[0] == 20
    assert np.abs(low.rate - full.rate).max() < 1e-4
    assert set(np.argsort(low.rate[0])[-10:]) == set(np.argsort(full.rate[0])[-10:])


def test_simulation_recovers_driving_variables():
    rng = np.random.default_rng(12)
    n, p = 400, 50
    X = rng.standard_normal((n, p))
    causal = [4, 11, 27]
    f = X[:, causal] @ np.array([2.0, -1.5, 1.0]) + 0.5 * X[:, 4] * X[:, 11]
    V = 0.05 * np.eye(n)
    draws = f + rng.standard_normal((400, n)) * 0.2
    for r in (sa.rate(X, M_F=f, V_F=V), sa.rate(X, f_draws=draws)):
        top = np.argsort(r.rate[0])[::-1][:3]
        assert set(top) == set(causal)
        # the three drivers hold most of the mass (a null's β̃ = cov(x_j, f) has sampling noise
        # sd(f)/√n ≈ 0.14 here, so nulls are not exactly 0), and the ranking is far from uniform
        assert r.rate[0][causal].sum() > 0.8
        assert r.ess[0] < 50


# --- Bayesian last layer -----------------------------------------------------------------------------
class StandInNet:
    """A tiny stand-in for a trained network: a fixed random ReLU feature map (float32 like the engine)."""

    def __init__(self, p, h, seed=0):
        rng = np.random.default_rng(seed)
        self.W1 = rng.standard_normal((p, h)).astype(np.float32) / np.sqrt(p)
        self.b1 = rng.standard_normal(h).astype(np.float32) * 0.1

    def penultimate(self, X):
        return np.maximum(np.asarray(X, dtype=np.float32) @ self.W1 + self.b1, 0)


def test_bayesian_last_layer_regression_is_an_evidence_maximum():
    rng = np.random.default_rng(13)
    n, p, h = 300, 10, 16
    net = StandInNet(p, h)
    X = rng.standard_normal((n, p))
    H = net.penultimate(X).astype(np.float64)
    w_true = rng.standard_normal(h)
    y = H @ w_true + 0.7 + 0.1 * rng.standard_normal(n)
    post = sa.bayesian_last_layer(net, X, y, task="regression")
    assert post.W_mean.shape == (h, 1) and post.W_cov.shape == (1, h, h) and post.b.shape == (1,)
    a, beta = post.prior_precision[0], post.noise_precision[0]
    Hc = H - H.mean(0)
    yc = y - y.mean()
    S = np.linalg.inv(a * np.eye(h) + beta * Hc.T @ Hc)
    m = beta * S @ Hc.T @ yc
    np.testing.assert_allclose(post.W_cov[0], S, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(post.W_mean[:, 0], m, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(post.b[0], y.mean() - H.mean(0) @ m, rtol=1e-8)

    # the evidence is maximal at (a, beta): log evidence is lower at nearby values
    def log_evidence(a, beta):
        A = a * np.eye(h) + beta * Hc.T @ Hc
        mm = beta * np.linalg.solve(A, Hc.T @ yc)
        E = beta / 2 * np.sum((yc - Hc @ mm) ** 2) + a / 2 * mm @ mm
        return h / 2 * np.log(a) + (n - 1) / 2 * np.log(beta) - E - 0.5 * np.linalg.slogdet(A)[1]

    best = log_evidence(a, beta)
    for fa, fb in ((1.05, 1), (0.95, 1), (1, 1.05), (1, 0.95)):
        assert log_evidence(a * fa, beta * fb) < best
    # H directly gives the same, and rate_last_layer runs on it
    same = sa.bayesian_last_layer(H=H, y=y, task="regression")
    np.testing.assert_allclose(same.W_mean, post.W_mean)
    res = sa.rate_last_layer(X, post.H, post.W_mean, post.W_cov, post.b)
    assert res.rate.shape == (1, p) and np.isfinite(res.rate).all()


def test_bayesian_last_layer_classification_laplace():
    rng = np.random.default_rng(14)
    n, p, h, K = 400, 8, 10, 3
    net = StandInNet(p, h, seed=1)
    X = rng.standard_normal((n, p))
    H = net.penultimate(X).astype(np.float64)
    logits = H @ rng.standard_normal((h, K)) * 2
    y = np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)
    alpha = 0.5
    post = sa.bayesian_last_layer(net, X, y, task="classification", prior_precision=alpha)
    assert post.W_mean.shape == (h, K) and post.W_cov.shape == (K, h, h) and post.b.shape == (K,)
    # MAP: gradient of the log posterior is zero (bias prior precision 1e-4·alpha, see the C header)
    W, b = post.W_mean, post.b
    Z = H @ W + b
    P = np.exp(Z - Z.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    Y = np.eye(K)[y]
    gW = H.T @ (P - Y) + alpha * W
    gb = (P - Y).sum(0) + 1e-4 * alpha * b
    assert np.abs(gW).max() < 1e-6 and np.abs(gb).max() < 1e-6
    # covariance: the (weights of class c) block of the inverse Hessian at the MAP
    Ha = np.hstack([H, np.ones((n, 1))])
    d = h + 1
    Hess = np.zeros((K * d, K * d))
    for i in range(n):
        A = np.diag(P[i]) - np.outer(P[i], P[i])
        Hess += np.kron(A, np.outer(Ha[i], Ha[i]))
    prior = np.tile(np.r_[np.full(h, alpha), 1e-4 * alpha], K)
    Cov = np.linalg.inv(Hess + np.diag(prior))
    for c in range(K):
        blk = Cov[c * d:c * d + h, c * d:c * d + h]
        np.testing.assert_allclose(post.W_cov[c], blk, rtol=1e-6, atol=1e-10)


# --- bad input ---------------------------------------------------------------------------------------
def test_bad_inputs_raise_with_named_argument():
    rng = np.random.default_rng(15)
    n, p = 20, 5
    X, M, V = gaussian_problem(rng, n, p)

    def raises(code, words, fn, *a, **k):
        with pytest.raises(SwiftAttrError) as e:
            fn(*a, **k)
        assert e.value.code == code, (e.value.code, str(e.value))
        for w in words:
            assert w in str(e.value), str(e.value)

    Xn = X.copy(); Xn[3, 2] = np.nan
    raises(-4, ["X", "non-finite"], sa.rate, Xn, M_F=M, V_F=V)
    Mi = M.copy(); Mi[0, 1] = np.inf
    raises(-4, ["M_F"], sa.rate, X, M_F=Mi, V_F=V)
    Vs = V.copy(); Vs[0, 1, 2] += 1
    raises(-2, ["V_F", "not symmetric"], sa.rate, X, M_F=M, V_F=Vs)
    raises(-3, ["M_F"], sa.rate, X, M_F=M[:, :-1], V_F=V)
    raises(-3, ["V_F"], sa.rate, X, M_F=M, V_F=V[:, :-1, :-1])
    raises(-5, ["nullify[1]"], sa.rate, X, M_F=M, V_F=V, nullify=[0, 7])
    raises(-5, ["nullify[0]"], sa.rate, X, M_F=M, V_F=V, nullify=[-1])
    raises(-2, ["nullify", "every variable"], sa.rate, X, M_F=M, V_F=V, nullify=range(p))
    raises(-2, ["groups[1] is empty"], sa.rate, X, M_F=M, V_F=V, groups=[[0, 1], []])
    raises(-5, ["groups[0][1]"], sa.rate, X, M_F=M, V_F=V, groups=[[0, 9]])
    raises(-2, ["groups[0]", "nullified"], sa.rate, X, M_F=M, V_F=V, groups=[[0, 1]], nullify=[1])
    raises(-6, ["projection"], sa.rate, X, M_F=M, V_F=V, projection="ridge")
    raises(-6, ["projection"], sa.rate, X, M_F=M, V_F=V, projection=7)  # checked by C
    raises(-2, ["rank"], sa.rate, X, M_F=M, V_F=V, rank=0)
    raises(-2, ["jitter"], sa.rate, X, M_F=M, V_F=V, jitter=-1.0)
    raises(-2, ["draws"], sa.rate, X, f_draws=M)
    raises(-3, ["f_draws"], sa.rate, X, f_draws=rng.standard_normal((10, n + 1)))
    raises(-3, ["esa_cov"], sa.rate, esa_mean=MU, esa_cov=SIGMA[:2, :2])
    S_bad = SIGMA.copy(); S_bad[0, 2] = 0.9
    raises(-2, ["esa_cov", "not symmetric"], sa.rate, esa_mean=MU, esa_cov=S_bad)
    S_nan = SIGMA.copy(); S_nan[1, 1] = np.nan
    raises(-4, ["esa_cov"], sa.rate, esa_mean=MU, esa_cov=S_nan)
    raises(-2, ["one posterior"], sa.rate, X, M_F=M, V_F=V, f_draws=M)
    raises(-2, ["X is not used"], sa.rate, X, esa_mean=MU, esa_cov=SIGMA)
    raises(-9, ["overflowed"], sa.rate, esa_mean=MU * 1e200, esa_cov=SIGMA)
    H = rng.standard_normal((n, 4))
    raises(-3, ["W_cov"], sa.rate_last_layer, X, H, np.ones(4), np.eye(3))
    Wc = np.eye(4); Wc[0, 1] = 0.5
    raises(-2, ["W_cov", "not symmetric"], sa.rate_last_layer, X, H, np.ones(4), Wc)
    raises(-2, ["W_cov", "positive semi-definite"], sa.rate_last_layer, X, H, np.ones(4), -np.eye(4))
    raises(-3, ["H"], sa.rate_last_layer, X, H[:-1], np.ones(4), np.eye(4))
    raises(-6, ["task"], sa.bayesian_last_layer, H=H, y=np.ones(n), task="survival")
    Hn = H.copy(); Hn[0, 0] = np.nan
    raises(-4, ["H"], sa.bayesian_last_layer, H=Hn, y=np.ones(n), task="regression")
    labels = np.zeros(n, dtype=int); labels[1] = 1; labels[2] = -1
    raises(-5, ["y[2]"], sa.bayesian_last_layer, H=H, y=labels, task="classification")
    raises(-3, ["y"], sa.bayesian_last_layer, H=H, y=np.ones(n + 1), task="regression")


# --- plot --------------------------------------------------------------------------------------------
def test_plot_rate_smoke():
    matplotlib = optional_import("matplotlib")
    matplotlib.use("Agg")
    rng = np.random.default_rng(16)
    mu = rng.standard_normal((2, 6))
    S = np.stack([np.eye(6), 2 * np.eye(6)])
    axes = sa.plot.rate(sa.rate(esa_mean=mu, esa_cov=S))
    assert len(axes) == 2


def test_c_interface_checks_pointers_and_options():
    import ctypes

    from swiftattr._ffi import dptr, iptr, lib

    mu, S = MU.copy(), SIGMA.copy()
    rate_out, kld_out, d, e = np.empty(3), np.empty(3), np.empty(1), np.empty(1)
    info = np.empty(2, dtype=np.int64)

    # The options travel in an sa_rate_options struct (fields named as in swiftattr.h).
    option_fields = dict(exact="exact_kld", nullify="nullify", ncount="nullify_count", members="group_members",
                         offsets="group_offsets", gcount="group_count", jitter="jitter")

    def call(**over):
        args = dict(classes=1, p=3, mean=dptr(mu), cov=dptr(S), rate=dptr(rate_out), kld=dptr(kld_out), delta=dptr(d),
                    ess=dptr(e), info=iptr(info))
        options = lib.sa_rate_default_options()
        for key, value in over.items():
            if key in option_fields:
                setattr(options, option_fields[key], value)
            else:
                args[key] = value
        return (lib.sa_rate_from_esa(args["classes"], args["p"], args["mean"], args["cov"], ctypes.byref(options),
                                     args["rate"], args["kld"], args["delta"], args["ess"], args["info"]),
                lib.sa_last_error().decode())

    assert call() == (0, call()[1]) and info.tolist() == [3, 0]
    np.testing.assert_allclose(rate_out, [0.759577, 0.231176, 0.009247], atol=1e-6)
    assert call(mean=None) == (-1, "esa_mean is NULL")
    assert call(rate=None) == (-1, "rate is NULL")
    assert call(info=None)[0] == 0  # info is optional
    assert call(p=0)[0] == -2 and "p" in call(p=0)[1]
    assert call(classes=-4)[0] == -2
    assert call(exact=2) == (-2, "exact_kld must be 0 or 1 (got 2)")
    assert call(ncount=1) == (-1, "nullify is NULL")
    assert call(ncount=-1)[0] == -2
    assert call(jitter=float("nan"))[0] == -2
    members = np.array([0, 1, 2], dtype=np.int64)
    bad_start = np.array([1, 2, 3], dtype=np.int64)
    assert call(members=iptr(members), offsets=iptr(bad_start), gcount=2)[0] == -2
    decreasing = np.array([0, 2, 1], dtype=np.int64)
    assert call(members=iptr(members), offsets=iptr(decreasing), gcount=2)[0] == -2
    empty = np.array([0, 0, 3], dtype=np.int64)
    assert call(members=iptr(members), offsets=iptr(empty), gcount=2) == (-2, "groups[0] is empty")
    good = np.array([0, 2, 3], dtype=np.int64)
    assert call(members=iptr(members), offsets=iptr(good), gcount=2, rate=dptr(np.empty(2)),
                kld=dptr(np.empty(2)))[0] == 0


def test_constant_columns_are_set_aside():
    """A constant column has β̃_j ≡ 0: KLD 0, and every other score is that of X without the column."""
    rng = np.random.default_rng(17)
    n, p = 60, 12
    X, M, V = gaussian_problem(rng, n, p)
    Xc = np.insert(X, [3, 8], 0.7, axis=1)  # constant columns at positions 3 and 9
    keep = np.setdiff1d(np.arange(p + 2), [3, 9])
    ref = sa.rate(X, M_F=M, V_F=V)
    got = sa.rate(Xc, M_F=M, V_F=V)
    assert got.pseudo_inverse[0] and got.rank[0] == p
    assert got.kld[0][3] == 0 and got.kld[0][9] == 0
    np.testing.assert_allclose(got.kld[0][keep], ref.kld[0], rtol=1e-8)
    # the constants are scored variables with RATE 0: Δ uses m = p + 2
    rr = ref.rate[0]
    np.testing.assert_allclose(got.delta[0], np.sum(rr * np.log((p + 2) * rr)), rtol=1e-8)
    groups_full = [[0, 3, 4], [9], [10, 11, 12]]
    groups_ref = [[0, 3], [8, 9, 10]]  # the same groups without the constants, in X's indexing
    g = sa.rate(Xc, M_F=M, V_F=V, groups=groups_full, exact_kld=True)
    gr = sa.rate(X, M_F=M, V_F=V, groups=groups_ref, exact_kld=True)
    np.testing.assert_allclose(g.kld[0][[0, 2]], gr.kld[0], rtol=1e-8)
    assert g.kld[0][1] == 0
    # nullify, including a constant: same as nullifying the rest in X
    nl = sa.rate(Xc, M_F=M, V_F=V, nullify=[3, 5], exact_kld=True)
    nr = sa.rate(X, M_F=M, V_F=V, nullify=[4], exact_kld=True)
    np.testing.assert_allclose(np.delete(nl.kld[0], [3, 9]), nr.kld[0], rtol=1e-8)


def authors_block_kld(mu, S, q):
    """½ μ_qᵀ Λ_{q,−q} Λ_{−q,−q}⁺ Λ_{−q,q} μ_q with Λ = pinv(Σ) (the authors' lstsq convention)."""
    Lam = np.linalg.pinv(S, rcond=1e-12)
    rest = np.setdiff1d(np.arange(S.shape[0]), q)
    lam = Lam[np.ix_(rest, q)]
    alpha = lam.T @ np.linalg.lstsq(Lam[np.ix_(rest, rest)], lam, rcond=1e-12)[0]
    return 0.5 * mu[q] @ alpha @ mu[q]


def test_singular_nullify_and_groups_follow_the_authors_convention():
    rng = np.random.default_rng(18)
    p, k = 30, 14
    A = rng.standard_normal((p, k))
    S = A @ A.T
    mu = A @ rng.standard_normal(k)
    nullify = [2, 11]
    r = sa.rate(esa_mean=mu, esa_cov=S, nullify=nullify)
    assert r.pseudo_inverse[0] and r.rank[0] == k
    want = np.array([0 if j in nullify else authors_block_kld(mu, S, sorted({j, *nullify})) for j in range(p)])
    np.testing.assert_allclose(r.kld[0], want, rtol=1e-6, atol=1e-10 * want.max())
    groups = [[0, 1, 5], [7], list(range(15, 25))]
    g = sa.rate(esa_mean=mu, esa_cov=S, groups=groups)
    np.testing.assert_allclose(g.kld[0], [authors_block_kld(mu, S, q) for q in groups], rtol=1e-6)


def test_low_rank_nullify_and_groups_equal_dense_at_full_rank():
    rng = np.random.default_rng(19)
    n, p = 80, 25
    X, M, V = gaussian_problem(rng, n, p)
    for kw in (dict(nullify=[1, 20]), dict(groups=[[0, 4], [7, 8, 9], [24]]),
               dict(groups=[[0, 4], [9]], nullify=[3], exact_kld=True)):
        dense = sa.rate(X, M_F=M, V_F=V, **kw)
        low = sa.rate(X, M_F=M, V_F=V, rank=p, **kw)
        np.testing.assert_allclose(low.kld, dense.kld, rtol=1e-7, atol=1e-12 * dense.kld.max())


def test_arguments_are_converted_once_and_checked():
    """Integers, booleans and choices go through swiftattr._args: nothing wraps through ctypes (2**64 + 3
    would reach C as 3) and no string or number acts as a boolean; arrays must hold real numbers."""
    rng = np.random.default_rng(17)
    n, hidden = 30, 3
    H = rng.standard_normal((n, hidden))
    y = H @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.standard_normal(n)
    labels = (H[:, 0] > 0).astype(np.int64)

    def raises(code, words, fn, *a, **k):
        with pytest.raises(SwiftAttrError) as e:
            fn(*a, **k)
        assert e.value.code == code, (e.value.code, str(e.value))
        for w in words:
            assert w in str(e.value), str(e.value)

    for task, yy in (("regression", y), ("classification", labels)):
        raises(-2, ["max_iter"], sa.bayesian_last_layer, H=H, y=yy, task=task, max_iter=2**64 + 3)
        raises(-2, ["max_iter"], sa.bayesian_last_layer, H=H, y=yy, task=task, max_iter=2.5)
        raises(-2, ["max_iter"], sa.bayesian_last_layer, H=H, y=yy, task=task, max_iter=True)
        raises(-2, ["tol"], sa.bayesian_last_layer, H=H, y=yy, task=task, tol="1e-8")
    raises(-2, ["prior_precision"], sa.bayesian_last_layer, H=H, y=labels, task="classification", prior_precision="1")
    raises(-6, ["task"], sa.bayesian_last_layer, H=H, y=y, task=1)
    raises(-2, ["y"], sa.bayesian_last_layer, H=H, y=labels.astype(bool), task="classification")
    # An integral float is the integer it names: same posterior as the int.
    a = sa.bayesian_last_layer(H=H, y=y, task="regression", max_iter=500.0)
    b = sa.bayesian_last_layer(H=H, y=y, task="regression", max_iter=500)
    np.testing.assert_array_equal(a.W_mean, b.W_mean)

    for bad in ("no", "yes", 1, 0, None, np.array([True])):
        raises(-2, ["exact_kld"], sa.rate, esa_mean=MU, esa_cov=SIGMA, exact_kld=bad)
    assert sa.rate(esa_mean=MU, esa_cov=SIGMA, exact_kld=np.True_).rate[0][0] == \
        sa.rate(esa_mean=MU, esa_cov=SIGMA, exact_kld=True).rate[0][0]
    X = rng.standard_normal((n, 3))
    M, V = rng.standard_normal(n), np.eye(n)
    raises(-2, ["rank"], sa.rate, X, M_F=M, V_F=V, rank=2**64 + 1)
    raises(-2, ["rank"], sa.rate, X, M_F=M, V_F=V, rank=1.5)
    raises(-2, ["rank"], sa.rate, X, M_F=M, V_F=V, rank=True)
    raises(-2, ["rank needs X"], sa.rate, esa_mean=MU, esa_cov=SIGMA, rank=2)  # checked by C
    raises(-2, ["projection"], sa.rate, X, M_F=M, V_F=V, projection=2**40)
    raises(-6, ["projection"], sa.rate, esa_mean=MU, esa_cov=SIGMA, projection="ridge")
    raises(-2, ["jitter"], sa.rate, esa_mean=MU, esa_cov=SIGMA, jitter="0")
    raises(-2, ["jitter"], sa.rate, esa_mean=MU, esa_cov=SIGMA, jitter=float("nan"))  # checked by Swift
    raises(-2, ["esa_mean"], sa.rate, esa_mean=MU.astype(complex), esa_cov=SIGMA)
    raises(-2, ["esa_cov"], sa.rate, esa_mean=MU, esa_cov=SIGMA > 0.4)
    raises(-2, ["X"], sa.rate, X.astype(complex) + 1j, M_F=M, V_F=V)
