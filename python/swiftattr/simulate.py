"""Simulated data with known drivers, to check that attributions recover them (with sa.checks.recovery).

    d = sa.simulate.interactions(n=5000, d=10, kind="multiply", seed=0)   # path_explain's generators
    d = sa.simulate.rate_data(n=500, p=20, n_causal=4, correlation=0.5, seed=0)   # RATE's linear/interacting effects
    d = sa.simulate.frequency(n=1000, length=64, band=2, seed=0)          # TRIM: the label lives in one band

Each returns a dict with ``X`` (float32), ``y`` and ``truth`` (the true importance: per feature, per pair
of features, or per frequency band), plus what generated them. The same ``seed`` gives the same data.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ._args import INT64_MAX, SA_ERR_UNKNOWN_ENUM, as_bool, as_choice, as_float, as_int
from ._ffi import SwiftAttrError
from .attribution import _seed

__all__ = ["interactions", "rate_data", "frequency", "INTERACTIONS"]

# path_explain's interaction functions g(a, b) (benchmarking/remove_and_retrain/data.py, by name).
INTERACTIONS = {
    "multiply": lambda a, b: a * b,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "squaresum": lambda a, b: (a + b) ** 2,
    "sign_modify": lambda a, b: a * np.sign(b),
    "cossum": lambda a, b: np.cos(a + b),
    "tanhsum": lambda a, b: np.tanh(a + b),
}


def interactions(n: int = 5000, d: int = 10, kind="multiply", n_interactions: Optional[int] = None,
                 equal_coeffs: bool = False, seed: Optional[int] = None) -> dict:
    """path_explain's interaction benchmark data (Janizek, Sturmfels, Lee 2021, "Explaining explanations").

    x ~ N(0, I_d) and y = Σ_k c_k g_k(x_i, x_j) over ``n_interactions`` distinct pairs i < j drawn without
    replacement, g_k of ``kind`` (a name of :data:`INTERACTIONS` — multiply, maximum, minimum, squaresum =
    (a+b)², sign_modify = a·sign(b), cossum = cos(a+b), tanhsum = tanh(a+b) — or a list of names, one drawn
    per pair), c ~ N(0, 1) (1 with ``equal_coeffs``); y and c are then divided by the standard deviation of y,
    as path_explain does.

    Parameters
    ----------
    n : int, default 5000
        Examples.
    d : int, default 10
        Features (at least 2).
    kind : str or list of str, default "multiply"
        The interaction function(s).
    n_interactions : int, optional
        K pairs (default min(20, d(d−1)/2)).
    equal_coeffs : bool, default False
    seed : int, optional
        The same seed gives the same data.

    Returns
    -------
    dict
        X (n, d) float32, y (n,) float32, truth (d, d): Σ|c| of the pairs, symmetric (zero elsewhere),
        feature_truth (d,): Σ|c| over the pairs a feature is in, pairs (K, 2), kinds (K names),
        coefficients (K,).

    Raises
    ------
    SwiftAttrError
        If ``kind`` names no interaction (SA_ERR_UNKNOWN_ENUM), a size is out of range, or y is constant.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> d = sa.simulate.interactions(n=200, d=5, n_interactions=2, seed=0)
    >>> d["X"].shape, d["y"].shape, d["truth"].shape, d["pairs"].shape
    ((200, 5), (200,), (5, 5), (2, 2))
    >>> round(float(d["y"].std()), 3), bool(np.allclose(d["truth"], d["truth"].T))
    (1.0, True)
    """
    n, d = as_int(n, "n", 1, INT64_MAX), as_int(d, "d", 2, INT64_MAX)
    pairs_all = np.stack(np.triu_indices(d, k=1), axis=1)
    K = min(20, len(pairs_all)) if n_interactions is None else as_int(n_interactions, "n_interactions", 1, len(pairs_all))
    if not isinstance(kind, (str, list, tuple)):
        raise SwiftAttrError(f"kind: expected an interaction name or a list of them, got {kind!r}", SA_ERR_UNKNOWN_ENUM)
    names = [kind] if isinstance(kind, str) else list(kind)
    equal = as_bool(equal_coeffs, "equal_coeffs")
    if not names:
        raise SwiftAttrError("kind: give an interaction name or a non-empty list of them")
    for name in names:
        as_choice(name, INTERACTIONS, "kind")
    rng = np.random.default_rng(_seed(seed))
    X = rng.standard_normal((n, d)).astype(np.float32)
    pairs = pairs_all[rng.choice(len(pairs_all), size=K, replace=False)]
    kinds = [names[i] for i in rng.choice(len(names), size=K)]
    c = np.ones(K) if equal else rng.standard_normal(K)
    x = X.astype(np.float64)
    y = np.zeros(n)
    for k, ((i, j), name) in enumerate(zip(pairs, kinds)):  # one term per pair
        y += c[k] * INTERACTIONS[name](x[:, i], x[:, j])
    scale = y.std()
    if not scale > 0:
        raise SwiftAttrError("the simulated y is constant (too few examples?)")
    y, c = y / scale, c / scale
    truth = np.zeros((d, d))
    feature_truth = np.zeros(d)
    for (i, j), ck in zip(pairs, c):
        truth[i, j] += abs(ck)
        truth[j, i] += abs(ck)
        feature_truth[[i, j]] += abs(ck)
    return {"X": X, "y": y.astype(np.float32), "truth": truth, "feature_truth": feature_truth, "pairs": pairs,
            "kinds": kinds, "coefficients": c}


def _correlated_normal(rng, n: int, p: int, rho: float, structure: str) -> np.ndarray:
    """n draws of N(0, Σ) with unit variances: Σ_ij = ρ^|i−j| ("ar1") or ρ for i ≠ j ("equicorrelated")."""
    z = rng.standard_normal((n, p))
    if rho == 0:
        return z
    if structure == "ar1":
        x = np.empty_like(z)
        x[:, 0] = z[:, 0]
        for j in range(1, p):  # the AR(1) recursion over columns
            x[:, j] = rho * x[:, j - 1] + np.sqrt(1 - rho * rho) * z[:, j]
        return x
    return np.sqrt(1 - rho) * z + np.sqrt(rho) * rng.standard_normal((n, 1))


def rate_data(n: int = 500, p: int = 25, n_causal: int = 5, n_interacting: int = 0, correlation: float = 0.0,
              structure: str = "ar1", pve: float = 0.8, interaction_share: float = 0.5, task: str = "regression",
              seed: Optional[int] = None) -> dict:
    """RATE's simulations (Crawford et al. 2019, "Variable prioritization in nonlinear black box methods").

    Inputs x ~ N(0, Σ) (``correlation`` ρ with ``structure`` "ar1", Σ_ij = ρ^|i−j|, or "equicorrelated",
    Σ_ij = ρ for i ≠ j), a linear effect Xβ of ``n_causal`` features (β ~ N(0, 1) on them) plus, with
    ``n_interacting`` > 0, pairwise products among the first ``n_interacting`` causal features (coefficients
    N(0, 1)) taking ``interaction_share`` of the signal's variance; the signal explains ``pve`` of the
    variance of y and Gaussian noise the rest. ``task="classification"`` gives y = 1 where y > its median
    (int64 labels).

    Parameters
    ----------
    n : int, default 500
        Examples (at least 2).
    p : int, default 25
        Features.
    n_causal : int, default 5
        Features with a linear effect (1..p).
    n_interacting : int, default 0
        Causal features that also interact pairwise (0..n_causal).
    correlation : float, default 0.0
        ρ in [0, 1).
    structure : {"ar1", "equicorrelated"}, default "ar1"
    pve : float, default 0.8
        The proportion of variance explained by the signal, in (0, 1].
    interaction_share : float, default 0.5
        The interactions' share of the signal's variance, in [0, 1).
    task : {"regression", "classification"}, default "regression"
    seed : int, optional

    Returns
    -------
    dict
        X (n, p) float32, y ((n,) float32, or int64 labels), truth (p,): 1 for the causal features, causal
        (indices), beta (p,), pairs (interacting pairs, (K, 2)), interaction_coefficients (K,).

    Raises
    ------
    SwiftAttrError
        If a size, ``correlation``, ``pve`` or ``interaction_share`` is out of range, or ``structure`` or
        ``task`` is unknown (SA_ERR_UNKNOWN_ENUM).

    Examples
    --------
    >>> import swiftattr as sa
    >>> d = sa.simulate.rate_data(n=100, p=10, n_causal=3, n_interacting=2, correlation=0.5, seed=0)
    >>> d["X"].shape, int(d["truth"].sum()), len(d["causal"]), d["pairs"].shape
    ((100, 10), 3, 3, (1, 2))
    >>> c = sa.simulate.rate_data(n=100, p=10, task="classification", seed=0)
    >>> sorted(set(c["y"].tolist()))
    [0, 1]
    """
    n, p = as_int(n, "n", 2, INT64_MAX), as_int(p, "p", 1, INT64_MAX)
    q = as_int(n_causal, "n_causal", 1, p)
    m = as_int(n_interacting, "n_interacting", 0, q)
    rho = as_float(correlation, "correlation")
    structure = as_choice(structure, {"ar1": "ar1", "equicorrelated": "equicorrelated"}, "structure")
    if not (0 <= rho < 1):
        raise SwiftAttrError(f"correlation must be in [0, 1) (got {correlation!r})")
    pve, share = as_float(pve, "pve"), as_float(interaction_share, "interaction_share")
    if not (0 < pve <= 1) or not (0 <= share < 1):
        raise SwiftAttrError(f"pve must be in (0, 1] and interaction_share in [0, 1) (got {pve!r}, {interaction_share!r})")
    task = as_choice(task, {"regression": "regression", "classification": "classification"}, "task")
    rng = np.random.default_rng(_seed(seed))
    x = _correlated_normal(rng, n, p, rho, structure)
    causal = np.sort(rng.choice(p, size=q, replace=False))
    beta = np.zeros(p)
    beta[causal] = rng.standard_normal(q)
    linear = x @ beta
    linear = (linear - linear.mean()) / linear.std()
    pairs = np.stack(np.triu_indices(m, k=1), axis=1) if m >= 2 else np.zeros((0, 2), np.int64)
    pairs = causal[pairs] if len(pairs) else pairs
    gamma = rng.standard_normal(len(pairs))
    if len(pairs) and share > 0:
        inter = sum(g * x[:, i] * x[:, j] for (i, j), g in zip(pairs, gamma))
        inter = (inter - inter.mean()) / inter.std()
        signal = np.sqrt(1 - share) * linear + np.sqrt(share) * inter
    else:
        signal = linear
    signal = signal / signal.std()
    noise = rng.standard_normal(n)
    y = np.sqrt(pve) * signal + np.sqrt(1 - pve) * noise
    truth = np.zeros(p)
    truth[causal] = 1.0
    out = {"X": x.astype(np.float32), "truth": truth, "causal": causal, "beta": beta, "pairs": pairs,
           "interaction_coefficients": gamma}
    out["y"] = (y > np.median(y)).astype(np.int64) if task == "classification" else y.astype(np.float32)
    return out


def frequency(n: int = 1000, length: int = 64, band: int = 1, n_bands: int = 8, amplitude: float = 1.0,
              seed: Optional[int] = None) -> dict:
    """A TRIM simulation (Singh, Ha, Yu et al. 2020): signals whose label depends on one frequency band only.

    In the real orthonormal Fourier basis of sa.fourier_transform((length,)), every coefficient is N(0, 1)
    noise, and the coefficients in band ``band`` (of sa.frequency_bands(T, n_bands)) carry in addition
    (2y − 1)·amplitude·u for a fixed random unit direction u; y ∈ {0, 1} is drawn with probability ½, so only
    that band tells the classes apart (linearly, with margin ``amplitude``).

    Parameters
    ----------
    n : int, default 1000
        Examples.
    length : int, default 64
        Samples per signal (2..4096).
    band : int, default 1
        The informative band (0..n_bands − 1).
    n_bands : int, default 8
        Bands (1..length).
    amplitude : float, default 1.0
        Finite.
    seed : int, optional

    Returns
    -------
    dict
        X (n, length) float32 (the signals in time), y (n,) int64, truth (n_bands,): 1 for the band,
        truth_coefficients (k,): 1 for its coefficients, coefficients (n, k), transform (the Transform),
        bands (n_bands, k).

    Raises
    ------
    SwiftAttrError
        If a size is out of range, ``amplitude`` is not finite, or the band holds no coefficient.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> d = sa.simulate.frequency(n=50, length=16, band=2, n_bands=4, seed=0)
    >>> d["X"].shape, d["truth"].tolist(), d["bands"].shape
    ((50, 16), [0.0, 0.0, 1.0, 0.0], (4, 16))
    >>> bool(np.allclose(d["transform"].coefficients(d["X"]), d["coefficients"], atol=1e-4))
    True
    """
    from .trim import fourier_transform, frequency_bands

    n, L = as_int(n, "n", 1, INT64_MAX), as_int(length, "length", 2, 4096)
    nb = as_int(n_bands, "n_bands", 1, L)
    b = as_int(band, "band", 0, nb - 1)
    a = as_float(amplitude, "amplitude")
    if not np.isfinite(a):
        raise SwiftAttrError(f"amplitude must be finite (got {amplitude!r})")
    T = fourier_transform((L,))
    bands = frequency_bands(T, nb)
    inside = bands[b] > 0
    if not inside.any():
        raise SwiftAttrError(f"band = {b} holds no coefficient of a length-{L} signal; use fewer bands")
    rng = np.random.default_rng(_seed(seed))
    y = rng.integers(0, 2, n)
    u = rng.standard_normal(int(inside.sum()))
    u /= np.linalg.norm(u)
    s = rng.standard_normal((n, T.coefficients_count))
    s[:, inside] += (2 * y - 1)[:, None] * a * u[None]
    X = s @ T.inverse.T.astype(np.float64)
    truth = np.zeros(nb)
    truth[b] = 1.0
    return {"X": X.astype(np.float32), "y": y.astype(np.int64), "truth": truth,
            "truth_coefficients": inside.astype(np.float64), "coefficients": s.astype(np.float32), "transform": T,
            "bands": bands}
