"""RATE: global variable importance for Bayesian models (Crawford et al. 2019; Ish-Horowicz et al. 2019).

Every computation happens in libswiftattr (float64, LAPACK); this module only converts arrays, checks that
their shapes fit together, and calls C.

Reading the numbers. RATE_j is variable j's share (summing to 1 over the variables) of the information the
model's effect-size posterior loses when variable j's effect is forced to zero: a variable well above 1/p
matters to the model as a whole. Δ = Σ_j RATE_j log(p·RATE_j) is the Kullback–Leibler divergence of RATE
from the uniform 1/p: 0 when every variable matters equally, log p when one variable carries everything.
ESS = 100/(1+Δ) percent ("effective sample size") turns it into a rough share of the variables that matter:
near 100 % RATE does not single any out (look at the values, not the ranking); a small ESS means a few
variables dominate and the ranking is meaningful.

What RATE cannot see. The effect-size analogue is the linear projection of the model's output onto the
inputs (β̃ = X_cᵀ(f − f̄)/(n−1), or X⁺f), so a variable that acts only through an interaction with mean-zero
partners has β̃ ≈ 0 and RATE ≈ 0: for y = x₀ + x₁ + 2x₂x₃ on independent centred inputs, x₂ and x₃ get
RATE ≈ 0 however well the network learned the product (measured in python/tests/test_rate_workflow.py).
Use Integrated or Expected Hessians (:func:`swiftattr.integrated_hessians`) to find such pairs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import os
import sys
import warnings

import numpy as np

import ctypes

from ._args import INT64_MAX, as_bool, as_choice, as_float, as_int, from_torch_tensor
from ._ffi import (PROJECTIONS, SA_ERR_INVALID_ARGUMENT, SA_ERR_OUT_OF_RANGE, SA_ERR_SHAPE, SwiftAttrError, check,
                   dptr, iptr, lib)
from ._progress import long_call

__all__ = ["rate", "rate_last_layer", "bayesian_last_layer", "explain_globally", "RateResult", "BayesianLastLayer",
           "GlobalExplanation"]

_TASKS = {"regression": 0, "classification": 1}
# Iteration limits when max_iter is None: the evidence fixed point and Newton's method.
_DEFAULT_MAX_ITER = {"regression": 1000, "classification": 100}


@dataclass
class RateResult:
    """RATE for each output class (arrays have one row per class), as :func:`rate` and :func:`rate_last_layer`
    return it.

    Attributes
    ----------
    rate, kld : ndarray of shape (classes, m)
        RATE_j (summing to 1 over the m scores of a class) and the KL divergence it normalises; m = p, or
        the number of groups for group RATE; nullified variables have 0.
    delta, ess : ndarray of shape (classes,)
        Δ = Σ RATE log(m·RATE) and ESS = 100/(1+Δ) percent.
    esa_mean : ndarray of shape (classes, p), or None
        Posterior mean of the effect-size analogue (None when the effect-size posterior was given).
    rank : ndarray of shape (classes,)
        Dimension of the effect-size covariance's range that was used (p when full rank).
    pseudo_inverse : ndarray of bool, shape (classes,)
        True where Σ was singular or ill-conditioned and the pseudo-inverse was used.
    groups : list of arrays, or None
        The variable indices of each group (group RATE).
    nullify : ndarray of int64, or None
        The variables conditioned on (conditional RATE).
    classes : int
        Property: the number of rows (``rate.shape[0]``).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> r = sa.rate(esa_mean=np.array([2.0, 0.0, 0.0]), esa_cov=np.eye(3))
    >>> r.classes, r.rate.shape, r.esa_mean is None
    (1, (1, 3), True)
    """

    rate: np.ndarray
    kld: np.ndarray
    delta: np.ndarray
    ess: np.ndarray
    esa_mean: np.ndarray
    rank: np.ndarray
    pseudo_inverse: np.ndarray
    groups: Optional[list] = None
    nullify: Optional[np.ndarray] = None

    @property
    def classes(self) -> int:
        return self.rate.shape[0]


@dataclass
class BayesianLastLayer:
    """Gaussian posterior over a network's last Dense layer f = H W + b, as :func:`bayesian_last_layer`
    returns it (pass it to :func:`rate_last_layer`).

    Attributes
    ----------
    W_mean : ndarray of shape (h, outputs)
        Posterior mean of W.
    W_cov : ndarray of shape (outputs, h, h)
        The posterior covariance of each column of W.
    b : ndarray of shape (outputs,)
        Point estimate of the bias.
    H : ndarray of shape (n, h)
        The float64 features the posterior was fitted on.
    task : str
        "regression" or "classification".
    prior_precision, noise_precision : ndarray of shape (outputs,)
        Evidence-maximised values (regression), or the prior precision used (classification; noise_precision
        is None).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> H = rng.standard_normal((40, 3))
    >>> post = sa.bayesian_last_layer(H=H, y=H @ [1.0, -2.0, 0.5] + 0.1 * rng.standard_normal(40), task="regression")
    >>> post.W_mean.shape, post.W_cov.shape, post.b.shape, post.noise_precision.shape
    ((3, 1), (1, 3, 3), (1,), (1,))
    """

    W_mean: np.ndarray
    W_cov: np.ndarray
    b: np.ndarray
    H: np.ndarray
    task: str
    prior_precision: np.ndarray
    noise_precision: Optional[np.ndarray] = None


def _f64(a, name: str) -> np.ndarray:
    """``a`` as a C-contiguous float64 array; boolean, complex and non-numeric arrays are errors (a cast
    would turn True into 1.0 or drop an imaginary part without a word)."""
    try:
        arr = np.asarray(from_torch_tensor(a))
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"an array of dtype {arr.dtype}, not real numbers")
        return np.ascontiguousarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"{name}: cannot convert to float64 ({e})", SA_ERR_INVALID_ARGUMENT) from None


def _shape_error(message: str) -> SwiftAttrError:
    return SwiftAttrError(message, SA_ERR_SHAPE)


def _batch(a: np.ndarray, ndim: int, name: str) -> np.ndarray:
    """Adds the leading class axis when `a` has one dimension fewer than `ndim`."""
    if a.ndim == ndim - 1:
        return a[np.newaxis]
    if a.ndim != ndim:
        raise _shape_error(f"{name}: expected {ndim - 1} or {ndim} dimensions, got shape {a.shape}")
    return a


def _projection(projection) -> int:
    """A projection name, or an sa_projection code (any int; C says whether it is one)."""
    if isinstance(projection, str):
        return as_choice(projection, PROJECTIONS, "projection")
    return as_int(projection, "projection", -(2**31), 2**31 - 1)


def _indices(values, name: str) -> np.ndarray:
    """Variable indices as int64, refusing fractional, boolean or non-numeric entries (C checks the range)."""
    a = np.atleast_1d(np.asarray(values))
    if a.size and (a.dtype.kind == "b" or a.dtype.kind not in "iuf"
                   or (a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a))))):
        raise SwiftAttrError(f"{name}: expected integer variable indices, got {values!r}", SA_ERR_INVALID_ARGUMENT)
    if a.size and (a.max() > INT64_MAX or a.min() < -INT64_MAX):
        raise SwiftAttrError(f"{name}: index out of range", SA_ERR_OUT_OF_RANGE)
    return np.ascontiguousarray(a, dtype=np.int64)


def _options(exact_kld, nullify, groups, jitter, projection="covariance", rank=None):
    """The sa_rate_options of one call, from lib.sa_rate_default_options(); returns (options, the arrays it
    points to — keep them alive during the call —, the nullify array, the group list)."""
    null = None if nullify is None else _indices(nullify, "nullify")
    if null is not None and null.ndim != 1:
        raise _shape_error(f"nullify: expected a list of indices, got shape {null.shape}")
    options = lib.sa_rate_default_options()
    options.exact_kld = as_bool(exact_kld, "exact_kld")
    options.jitter = as_float(jitter, "jitter")
    options.projection = _projection(projection)
    options.rank = _rank(rank)
    if null is not None and null.size:
        options.nullify, options.nullify_count = iptr(null), null.size
    group_list = members = offsets = None
    if groups is not None:
        group_list = [_indices(g, f"groups[{k}]").ravel() for k, g in enumerate(groups)]
        if not group_list:
            raise SwiftAttrError("groups: no groups given", SA_ERR_INVALID_ARGUMENT)
        offsets = np.zeros(len(group_list) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(g) for g in group_list])
        members = np.concatenate(group_list)
        options.group_members, options.group_offsets = iptr(members), iptr(offsets)
        options.group_count = len(group_list)
    return options, (null, members, offsets), null, group_list


def _rank(rank) -> int:
    """None (automatic) as 0, else a positive rank."""
    return 0 if rank is None else as_int(rank, "rank", lo=1)


def _run(fn, leading, classes: int, p: int, options, with_esa: bool, groups, nullify):
    m = len(groups) if groups is not None else p
    rate_out = np.empty((classes, m))
    kld_out = np.empty((classes, m))
    delta = np.empty(classes)
    ess = np.empty(classes)
    info = np.empty((classes, 2), dtype=np.int64)
    outputs = [dptr(rate_out), dptr(kld_out), dptr(delta), dptr(ess), iptr(info)]
    esa = np.empty((classes, p)) if with_esa else None
    if with_esa:
        outputs.append(dptr(esa))
    check(fn(*leading, ctypes.byref(options), *outputs))
    return RateResult(rate=rate_out, kld=kld_out, delta=delta, ess=ess, esa_mean=esa,
                      rank=info[:, 0].copy(), pseudo_inverse=info[:, 1].astype(bool),
                      groups=groups, nullify=nullify)


@long_call
def rate(X=None, *, f_draws=None, M_F=None, V_F=None, esa_mean=None, esa_cov=None,
         projection="covariance", exact_kld: bool = False, nullify: Optional[Sequence[int]] = None,
         groups: Optional[Sequence[Sequence[int]]] = None, rank: Optional[int] = None,
         jitter: float = 0.0) -> RateResult:
    """RATE variable importance (Crawford et al. 2019), one vector per output class.

    With the effect-size analogue β̃ ~ N(μ, Σ) and Λ = Σ⁻¹ (Λ⁺ when Σ is singular), the KL divergence lost
    when β̃_j is set to zero is KLD_j = ½ μ_j² α_j with α_j = Λ_jj − 1/Σ_jj (a Schur complement);
    ``exact_kld`` adds ½ [Σ_jjΛ_jj − 1 − log(Σ_jjΛ_jj)]. RATE_j = KLD_j / Σ_k KLD_k; Δ and ESS as in the
    module notes. All computation is float64 in libswiftattr.

    Give exactly one posterior:
      * ``f_draws``: posterior draws of the outputs, (classes, draws, n) or (draws, n), with ``X`` (n, p);
      * ``M_F``, ``V_F``: Gaussian posterior of the outputs, (classes, n) and (classes, n, n), with ``X``;
      * ``esa_mean``, ``esa_cov``: the effect-size posterior itself, (classes, p) and (classes, p, p).

    Parameters
    ----------
    X : array of shape (n, p), optional
        The inputs; required with ``f_draws`` or ``M_F``/``V_F``, refused with ``esa_mean``/``esa_cov``.
    f_draws : array of shape (classes, draws, n) or (draws, n), optional
        Posterior draws of the model's outputs at the rows of X.
    M_F, V_F : arrays of shape (classes, n) and (classes, n, n) (or without the class axis), optional
        Gaussian posterior of the outputs.
    esa_mean, esa_cov : arrays of shape (classes, p) and (classes, p, p) (or without the class axis), optional
        The effect-size posterior itself.
    projection : {"covariance", "pseudoinverse"} or int, default "covariance"
        β̃ = X_cᵀ(f − f̄)/(n−1) (default) or β̃ = X⁺f; an int is an ``sa_projection`` code.
    exact_kld : bool, default False
        Add the trace and log-determinant terms of the Gaussian KL divergence.
    nullify : sequence of int, optional
        Variables to condition on as well (conditional RATE); they get RATE 0.
    groups : sequence of sequences of int, optional
        Lists of variable indices (group RATE, one score per group).
    rank : int, optional
        Force the low-rank path with at most this many singular directions of X (the low-rank path is
        automatic when n < p).
    jitter : float, default 0.0
        Ridge added to Σ's diagonal, relative to its mean diagonal.

    Returns
    -------
    RateResult
        ``rate`` and ``kld`` of shape (classes, m) (m = p, or the number of groups), ``delta``, ``ess``,
        ``rank``, ``pseudo_inverse`` of shape (classes,), ``esa_mean`` (classes, p) (None with ``esa_mean=``).

    Raises
    ------
    SwiftAttrError
        When no posterior or more than one is given, when X is missing (or given with ``esa_mean``), when
        shapes do not fit together (code SA_ERR_SHAPE), when an array is not real numbers, when an index in
        ``nullify`` or ``groups`` is not an integer or is out of range, or when ``groups`` is empty.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 4))
    >>> f = X @ [3.0, 0.5, 0.0, 0.0] + 0.1 * rng.standard_normal((200, 60))   # 200 posterior draws
    >>> r = sa.rate(X, f_draws=f)
    >>> r.rate.shape, int(r.rate[0].argmax()), bool(abs(r.rate.sum() - 1) < 1e-9)
    ((1, 4), 0, True)
    >>> bool(r.ess[0] < 100)
    True
    >>> sa.rate(X, f_draws=f, groups=[[0, 1], [2, 3]]).rate.shape
    (1, 2)
    """
    opts, keep, null, group_list = _options(exact_kld, nullify, groups, jitter, projection, rank)
    sources = [name for name, v in (("f_draws", f_draws), ("M_F", M_F), ("V_F", V_F),
                                    ("esa_mean", esa_mean), ("esa_cov", esa_cov)) if v is not None]
    if esa_mean is not None or esa_cov is not None:
        if esa_mean is None or esa_cov is None:
            raise SwiftAttrError("give both esa_mean and esa_cov", SA_ERR_INVALID_ARGUMENT)
        if f_draws is not None or M_F is not None or V_F is not None:
            raise SwiftAttrError(f"give one posterior only (got {', '.join(sources)})", SA_ERR_INVALID_ARGUMENT)
        if X is not None:
            raise SwiftAttrError("X is not used with esa_mean/esa_cov (the effect-size posterior is given)",
                                 SA_ERR_INVALID_ARGUMENT)
        mean = _batch(_f64(esa_mean, "esa_mean"), 2, "esa_mean")
        cov = _batch(_f64(esa_cov, "esa_cov"), 3, "esa_cov")
        classes, p = mean.shape
        if cov.shape != (classes, p, p):
            raise _shape_error(f"esa_cov: expected {classes}×{p}×{p} (from esa_mean), got {cov.shape}")
        return _run(lib.sa_rate_from_esa, [classes, p, dptr(mean), dptr(cov)], classes, p, opts, False,
                    group_list, null)
    if X is None:
        raise SwiftAttrError("X is required with f_draws or M_F/V_F", SA_ERR_INVALID_ARGUMENT)
    x = _f64(X, "X")
    if x.ndim != 2:
        raise _shape_error(f"X: expected shape (n, p), got {x.shape}")
    n, p = x.shape
    if f_draws is not None:
        if M_F is not None or V_F is not None:
            raise SwiftAttrError(f"give one posterior only (got {', '.join(sources)})", SA_ERR_INVALID_ARGUMENT)
        f = _batch(_f64(f_draws, "f_draws"), 3, "f_draws")
        classes, draws, nf = f.shape
        if nf != n:
            raise _shape_error(f"f_draws: expected n = {n} values per draw (rows of X), got {nf}")
        return _run(lib.sa_rate_from_draws, [classes, draws, n, p, dptr(x), dptr(f)],
                    classes, p, opts, True, group_list, null)
    if M_F is None or V_F is None:
        raise SwiftAttrError("give f_draws, or M_F and V_F, or esa_mean and esa_cov", SA_ERR_INVALID_ARGUMENT)
    mean = _batch(_f64(M_F, "M_F"), 2, "M_F")
    cov = _batch(_f64(V_F, "V_F"), 3, "V_F")
    classes = mean.shape[0]
    if mean.shape[1] != n:
        raise _shape_error(f"M_F: expected n = {n} values per class (rows of X), got {mean.shape[1]}")
    if cov.shape != (classes, n, n):
        raise _shape_error(f"V_F: expected {classes}×{n}×{n}, got {cov.shape}")
    return _run(lib.sa_rate_from_gaussian, [classes, n, p, dptr(x), dptr(mean), dptr(cov)],
                classes, p, opts, True, group_list, null)


@long_call
def rate_last_layer(X, H=None, W_mean=None, W_cov=None, b=None, *, projection="covariance", exact_kld: bool = False,
                    nullify=None, groups=None, rank: Optional[int] = None, jitter: float = 0.0) -> RateResult:
    """RATE for a Gaussian posterior over a network's last Dense layer, f = H W + b.

    ``rate_last_layer(X, H, posterior)`` takes what :func:`bayesian_last_layer` returns (``H`` may then be
    None: the posterior's own features); or give the arrays: X: (n, p) inputs; H: (n, h) penultimate
    features; W_mean: (h, classes) or (h,); W_cov: (classes, h, h) or (h, h), the posterior covariance of
    each column of W; b: (classes,), a scalar, or None. V_F = H Σ_W Hᵀ is never formed.

    A binary classifier's posterior (classification with two classes) gives one RATE vector, for the
    log-odds f₁ − f₀ (mean W₁ − W₀, covariance Σ₁ + Σ₀: the columns' posteriors are independent), since
    the two class outputs carry the same information. See the module notes for what Δ and ESS mean and
    why pure interactions get RATE ≈ 0.

    Parameters
    ----------
    X : array of shape (n, p)
        The inputs.
    H : array of shape (n, h), optional
        Penultimate features of the rows of X; None with a :class:`BayesianLastLayer` (its own ``H``).
    W_mean : array of shape (h, classes) or (h,), or BayesianLastLayer
        Posterior mean of W, or the whole posterior (then ``W_cov`` and ``b`` must be None).
    W_cov : array of shape (classes, h, h) or (h, h), optional
        Posterior covariance of each column of W.
    b : array of shape (classes,), scalar, or None
        The bias (None: no bias).
    projection, exact_kld, nullify, groups, rank, jitter
        As in :func:`rate` (defaults "covariance", False, None, None, None, 0.0).

    Returns
    -------
    RateResult
        ``rate`` of shape (classes, p) (one row for a binary classifier's posterior), as :func:`rate`.

    Raises
    ------
    SwiftAttrError
        When neither a posterior nor H, W_mean and W_cov are given, when ``W_cov`` or ``b`` come with a
        posterior, when shapes do not fit together (code SA_ERR_SHAPE), or for the argument errors of
        :func:`rate`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 3))
    >>> H = np.tanh(X @ rng.standard_normal((3, 5)))
    >>> r = sa.rate_last_layer(X, H, rng.standard_normal(5), 0.01 * np.eye(5))
    >>> r.rate.shape, bool(abs(r.rate.sum() - 1) < 1e-9)
    ((1, 3), True)
    """
    if isinstance(W_mean, BayesianLastLayer):
        post = W_mean
        if W_cov is not None or b is not None:
            raise SwiftAttrError("W_cov, b: not used with a BayesianLastLayer posterior (it has its own)",
                                 SA_ERR_INVALID_ARGUMENT)
        H = post.H if H is None else H
        W_mean, W_cov, b = post.W_mean, post.W_cov, post.b
        if post.task == "classification" and post.W_mean.shape[1] == 2:
            W_mean = post.W_mean[:, 1] - post.W_mean[:, 0]
            W_cov = post.W_cov[0] + post.W_cov[1]
            b = post.b[1] - post.b[0]
    elif H is None or W_mean is None or W_cov is None:
        raise SwiftAttrError("give rate_last_layer(X, H, posterior) with a BayesianLastLayer, or H, W_mean and W_cov",
                             SA_ERR_INVALID_ARGUMENT)
    opts, keep, null, group_list = _options(exact_kld, nullify, groups, jitter, projection, rank)
    x = _f64(X, "X")
    if x.ndim != 2:
        raise _shape_error(f"X: expected shape (n, p), got {x.shape}")
    n, p = x.shape
    h_arr = _f64(H, "H")
    if h_arr.ndim != 2 or h_arr.shape[0] != n:
        raise _shape_error(f"H: expected shape ({n}, h) (rows of X), got {h_arr.shape}")
    hidden = h_arr.shape[1]
    wm = _f64(W_mean, "W_mean")
    if wm.ndim == 1:
        wm = wm[:, np.newaxis]
    if wm.ndim != 2 or wm.shape[0] != hidden:
        raise _shape_error(f"W_mean: expected shape ({hidden}, classes), got {wm.shape}")
    classes = wm.shape[1]
    wm = np.ascontiguousarray(wm)
    wc = _batch(_f64(W_cov, "W_cov"), 3, "W_cov")
    if wc.shape != (classes, hidden, hidden):
        raise _shape_error(f"W_cov: expected {classes}×{hidden}×{hidden}, got {wc.shape}")
    bias = None
    if b is not None:
        bias = np.ascontiguousarray(np.broadcast_to(_f64(b, "b"), (classes,)) if np.ndim(b) == 0 else _f64(b, "b"))
        if bias.shape != (classes,):
            raise _shape_error(f"b: expected {classes} values, got shape {bias.shape}")
    return _run(lib.sa_rate_last_layer,
                [classes, n, p, hidden, dptr(x), dptr(h_arr), dptr(wm), dptr(wc), dptr(bias)],
                classes, p, opts, True, group_list, null)


@long_call
def bayesian_last_layer(net=None, X=None, y=None, *, H=None, task: Optional[str] = None,
                        prior_precision: float = 1.0, max_iter: Optional[int] = None, tol: float = 1e-8) -> BayesianLastLayer:
    """Fits a Gaussian posterior over a trained network's last Dense layer from its penultimate features.

    H comes from ``net.penultimate(X)`` (the input of the final Dense layer, n×h), or is given directly
    with ``H=``. ``task="regression"``: Bayesian linear regression of y (n,) or (n, outputs) on H with the
    noise and prior precisions maximising the evidence (MacKay's updates), one pair per output.
    ``task="classification"``: y holds integer labels 0..K−1; a Laplace approximation of multinomial
    logistic regression on H (MAP by Newton's method, prior N(0, 1/prior_precision), covariance the inverse
    Hessian at the MAP). ``task=None`` (the default) guesses, and warns saying what it guessed and why:
    classification when the network ends in Softmax or y holds integer class indices (an integer dtype),
    regression otherwise. Pass ``task=`` to choose and silence the warning.

    Parameters
    ----------
    net : Network, optional
        The trained network; its ``penultimate(X)`` gives H (and its last layer informs the task guess).
    X : array of shape (n, *input_shape), optional
        The inputs the features are computed on (with ``net``).
    y : array of shape (n,) or (n, outputs)
        Regression targets, or integer class labels 0..K−1 (K ≤ n).
    H : array of shape (n, h), optional
        The features themselves, instead of ``net`` and ``X``.
    task : {"regression", "classification"}, optional
        None guesses (with a warning).
    prior_precision : float, default 1.0
        The prior precision of the classification weights (regression maximises the evidence instead).
    max_iter : int, optional
        Iteration limit: the evidence fixed point (default 1000) or Newton's method (default 100).
    tol : float, default 1e-8
        Convergence tolerance of those iterations.

    Returns
    -------
    BayesianLastLayer
        ``W_mean`` (h, outputs), ``W_cov`` (outputs, h, h), ``b`` (outputs,), with outputs = K for
        classification (at least 2).

    Raises
    ------
    SwiftAttrError
        When neither ``net`` and ``X`` nor ``H`` are given, when ``y`` is missing, has the wrong number of
        rows (code SA_ERR_SHAPE) or holds non-integer or out-of-range labels (SA_ERR_OUT_OF_RANGE), or when
        ``task``, ``max_iter`` or ``tol`` is invalid.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> H = np.random.default_rng(0).standard_normal((40, 3))
    >>> labels = (H[:, 0] > 0).astype(np.int64)
    >>> post = sa.bayesian_last_layer(H=H, y=labels, task="classification")
    >>> post.W_mean.shape, post.W_cov.shape, post.noise_precision is None
    ((3, 2), (2, 3, 3), True)
    """
    if task is None:
        task = _guess_task(net, y)
    task_code = as_choice(task, _TASKS, "task")
    iterations = as_int(_DEFAULT_MAX_ITER[task] if max_iter is None else max_iter, "max_iter", lo=1)
    tolerance = as_float(tol, "tol")
    if H is None:
        if net is None or X is None:
            raise SwiftAttrError("give net and X (features from net.penultimate(X)), or H", SA_ERR_INVALID_ARGUMENT)
        H = net.penultimate(X)
    h_arr = _f64(H, "H")
    if h_arr.ndim != 2:
        raise _shape_error(f"H: expected shape (n, h), got {h_arr.shape}")
    n, hidden = h_arr.shape
    if y is None:
        raise SwiftAttrError("y is required", SA_ERR_INVALID_ARGUMENT)
    if task_code == _TASKS["regression"]:
        yy = _f64(y, "y")
        if yy.ndim == 1:
            yy = yy[:, np.newaxis]
        if yy.ndim != 2 or yy.shape[0] != n:
            raise _shape_error(f"y: expected {n} rows (rows of H), got shape {yy.shape}")
        outputs = yy.shape[1]
        yy = np.ascontiguousarray(yy)
        wm = np.empty((hidden, outputs))
        wc = np.empty((outputs, hidden, hidden))
        b = np.empty(outputs)
        noise = np.empty(outputs)
        prior = np.empty(outputs)
        check(lib.sa_bayesian_last_layer_regression(n, hidden, outputs, dptr(h_arr), dptr(yy), iterations, tolerance,
                                                    dptr(wm), dptr(wc), dptr(b), dptr(noise), dptr(prior)))
        return BayesianLastLayer(W_mean=wm, W_cov=wc, b=b, H=h_arr, task=task, prior_precision=prior,
                                 noise_precision=noise)
    precision = as_float(prior_precision, "prior_precision")
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise _shape_error(f"y: expected {n} integer labels (rows of H), got shape {labels.shape}")
    if labels.size and (labels.dtype.kind not in "iuf" or (labels.dtype.kind == "f" and (
            not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels))))):
        raise SwiftAttrError("y: classification labels must be integers", SA_ERR_INVALID_ARGUMENT)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if labels.size and labels.max() >= n:
        i = int(labels.argmax())
        raise SwiftAttrError(f"y[{i}] = {labels[i]} is out of range: labels are 0 ... classes−1, and there cannot be more "
                             f"classes than the {n} examples", SA_ERR_OUT_OF_RANGE)
    classes = max(int(labels.max()) + 1 if labels.size else 0, 2)
    wm = np.empty((hidden, classes))
    wc = np.empty((classes, hidden, hidden))
    b = np.empty(classes)
    check(lib.sa_bayesian_last_layer_classification(n, hidden, classes, dptr(h_arr), iptr(labels), precision,
                                                    iterations, tolerance, dptr(wm), dptr(wc), dptr(b)))
    return BayesianLastLayer(W_mean=wm, W_cov=wc, b=b, H=h_arr, task=task,
                             prior_precision=np.full(classes, precision))


def _guess_task(net, y) -> str:
    """The task :func:`bayesian_last_layer` fits when none is given, with a warning that says why."""
    kinds = getattr(net, "layer_kinds", None) or []
    labels = None if y is None else np.asarray(from_torch_tensor(y))
    if kinds and kinds[-1] == "softmax":
        task, why = "classification", "the network ends in Softmax"
    elif labels is not None and labels.ndim == 1 and labels.dtype.kind in "iu":
        task, why = "classification", f"y holds integer class indices (dtype {labels.dtype})"
    else:
        task, why = "regression", ("y holds real values" if labels is not None else "no labels to tell")
    warnings.warn(f"bayesian_last_layer: task={task!r} guessed ({why}); pass task= to choose", stacklevel=_caller_level())
    return task


def _caller_level() -> int:
    """The ``stacklevel`` that makes a warning raised by the function calling this point at the first frame
    outside the package (the user's call, whichever swiftattr functions are in between)."""
    here = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here:
        frame, level = frame.f_back, level + 1
    return level


@dataclass
class GlobalExplanation:
    """What :func:`explain_globally` found: the last-layer ``posterior``, its RATE ``result`` (one row per
    class; one row for a binary classifier or a single regression output) and the ``figure`` (None when
    ``plot=False``).

    Attributes
    ----------
    posterior : BayesianLastLayer
    result : RateResult
    figure : matplotlib.figure.Figure or None
    rate, ess, delta : ndarray
        Properties: ``result.rate`` (rows, p), ``result.ess`` and ``result.delta`` (rows,).
    """

    posterior: BayesianLastLayer
    result: RateResult
    figure: object = None

    @property
    def rate(self) -> np.ndarray:
        return self.result.rate

    @property
    def ess(self) -> np.ndarray:
        return self.result.ess

    @property
    def delta(self) -> np.ndarray:
        return self.result.delta

    def _repr_png_(self):
        return None if self.figure is None else _png(self.figure)


def _png(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


@long_call
def explain_globally(net, X, y, *, task: Optional[str] = None, feature_names=None, top: Optional[int] = None,
                     plot: bool = True, path=None, projection="covariance", prior_precision: float = 1.0,
                     **rate_options) -> GlobalExplanation:
    """Which input variables matter to the trained network as a whole: a Bayesian last layer, RATE and its
    plot in one call.

    Fits :func:`bayesian_last_layer` on ``net.penultimate(X)`` and ``y`` (``task`` guessed as there when
    None), computes :func:`rate_last_layer` (one vector per class; one for a binary classifier) with
    ``projection`` and ``rate_options`` (exact_kld, nullify, groups, rank, jitter), and draws the sorted RATE
    bars with :func:`swiftattr.plot.rate` (``feature_names``, ``top``; saved to ``path`` when given).
    Read the result with the module notes: RATE above 1/p marks a variable that matters; Δ near 0 (ESS near
    100 %) means no variable stands out; variables acting only through interactions get RATE ≈ 0 (use
    Integrated Hessians for those).

    Parameters
    ----------
    net : Network
        The trained network, ending in a Linear layer (optionally followed by Softmax).
    X : array of shape (n, *input_shape)
        The inputs (flattened to (n, p) for RATE).
    y : array of shape (n,) or (n, outputs)
        Class labels or regression targets.
    task : {"regression", "classification"}, optional
        As in :func:`bayesian_last_layer` (None guesses, with a warning).
    feature_names : sequence of str, optional
        Names of the p variables in the plot.
    top : int, optional
        Plot only the ``top`` largest RATE values.
    plot : bool, default True
        Draw the figure.
    path : str or path-like, optional
        Save the figure there.
    projection : str, default "covariance"
        As in :func:`rate`.
    prior_precision : float, default 1.0
        As in :func:`bayesian_last_layer`.
    **rate_options
        ``exact_kld``, ``nullify``, ``groups``, ``rank``, ``jitter`` of :func:`rate_last_layer`.

    Returns
    -------
    GlobalExplanation
        ``.rate`` (rows, p), ``.delta``, ``.ess``, ``.posterior``, ``.result``, ``.figure``; in a notebook it
        displays as its plot.

    Raises
    ------
    SwiftAttrError
        For the errors of :func:`bayesian_last_layer` and :func:`rate_last_layer`.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> W1, W2 = rng.standard_normal((6, 3)).astype(np.float32), rng.standard_normal((1, 6)).astype(np.float32)
    >>> net = sa.Sequential([sa.Linear(W1), sa.Tanh(), sa.Linear(W2)])
    >>> X = rng.standard_normal((40, 3)).astype(np.float32)
    >>> g = sa.explain_globally(net, X, 2 * X[:, 0], task="regression", plot=False)
    >>> g.rate.shape, g.figure is None
    ((1, 3), True)
    """
    posterior = bayesian_last_layer(net, X, y, task=task, prior_precision=prior_precision)
    x = _f64(X, "X")
    result = rate_last_layer(x.reshape(x.shape[0], -1) if x.ndim > 2 else x, None, posterior, projection=projection,
                             **rate_options)
    figure = None
    if plot:
        from . import plot as _plot

        classes = result.rate.shape[0]
        names = None
        if posterior.task == "classification" and classes > 1:
            names = [f"class {c}" for c in range(classes)]
        elif posterior.task == "classification":
            names = ["log-odds of class 1 vs 0"]
        figure = _plot.rate(result, top=top, names=feature_names, class_names=names, path=path).figure
    return GlobalExplanation(posterior=posterior, result=result, figure=figure)
