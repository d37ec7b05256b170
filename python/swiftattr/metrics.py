"""Faithfulness metrics of attributions: infidelity and max-sensitivity (Yeh et al. 2019, with Captum's
definitions and conventions), deletion and insertion curves (Petsiuk et al. 2018), completeness residuals.

    inf = sa.metrics.infidelity(net, x, phi, target=3, n_perturb_samples=50, seed=0)        # (n,)
    sens = sa.metrics.sensitivity_max(sa.integrated_gradients, net, x, target=3, seed=0)    # (n,)
    curve = sa.metrics.deletion(net, x, phi, target=3, baselines="blur")                   # .auc: (n,)
    r = sa.metrics.completeness(net, x, sa.integrated_gradients(net, x, target=3), target=3)

Every perturbed input goes through the network in large stacked batches (one ``forward`` of up to
``internal_batch_size`` rows, or one call of the attribution method on all n·S perturbed inputs); nothing
loops over examples in Python. Perturbations are drawn, or passed in as an array of shape
(n, S, *input_shape) so results can be compared exactly with another library. Drawn perturbations depend
only on ``seed`` and the example's index ``first_example + i`` (the library's counter-based Philox generator,
one call for the whole batch), so a batch computed in pieces with ``first_example`` set draws what the whole
batch draws, bit for bit.

Conventions (Captum's): rows are example-major (row i·S + s is sample s of example i); infidelity's
perturbed input is x − I and its score E_I[(Iᵀφ − (f(x) − f(x − I)))²]; max-sensitivity perturbs to x + δ.
Scores are float64 arrays with one value per example.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ._args import INT64_MAX, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM, as_bool, as_choice, as_f32, as_float, as_int
from ._ffi import SA_ERR_NON_FINITE, SwiftAttrError, check, fptr, lib
from ._progress import long_call
from .attribution import _network, _seed, _targets

__all__ = ["infidelity", "sensitivity_max", "deletion", "insertion", "Curve", "completeness"]

_DEFAULT_ROWS = 8192  # rows per forward call when internal_batch_size is None (bounds the stacked array)
_INFIDELITY_STREAM, _SENSITIVITY_STREAM = 0x494E_4644, 0x5345_4E53  # "INFD", "SENS": streams ≥ 2^30 (see swiftattr.h)


# -- shared helpers --------------------------------------------------------------------------------
def draw_perturbations(kind: str, input_shape, n: int, samples: int, scale: float, seed, first_example: int = 0,
                       stream: int = 0) -> np.ndarray:
    """Seeded Gaussian or uniform noise for a batch, from the library's counter-based generator.

    (n, samples, *input_shape) float32 draws: ``kind`` "normal" (N(0, scale²)) or "uniform" (U(−scale,
    scale)), in one call of the library's counter-based generator (sa_random_normal, sa_random_uniform):
    example i's draws are a pure function of (``seed``, first_example + i, ``stream``), so they depend only on
    the seed, the example's index and the stream, and sample s's on nothing after it.

    Parameters
    ----------
    kind : {"normal", "uniform"}
    input_shape : sequence of int
        The shape of one draw.
    n : int
        The number of examples.
    samples : int
        Draws per example.
    scale : float
        The standard deviation ("normal") or the half-width ("uniform").
    seed : int or None
        None draws a fresh seed.
    first_example : int, default 0
        The index of the first example (draw a batch in pieces with the same numbers).
    stream : int, default 0
        Separates independent uses of one seed (0 ≤ stream < 2³²).

    Returns
    -------
    numpy.ndarray, float32, shape (n, samples, *input_shape)

    Raises
    ------
    SwiftAttrError
        If ``kind`` is unknown (SA_ERR_UNKNOWN_ENUM) or ``first_example`` or ``stream`` is out of range.

    Examples
    --------
    >>> import numpy as np
    >>> from swiftattr.metrics import draw_perturbations
    >>> d = draw_perturbations("uniform", (3,), n=4, samples=5, scale=0.1, seed=0)
    >>> d.shape, bool(np.abs(d).max() <= 0.1)
    ((4, 5, 3), True)
    >>> tail = draw_perturbations("uniform", (3,), n=2, samples=5, scale=0.1, seed=0, first_example=2)
    >>> bool(np.array_equal(tail, d[2:]))                                 # the same computation: bit-exact
    True
    """
    kind = as_choice(kind, {"normal": "normal", "uniform": "uniform"}, "kind")
    seed = _seed(seed)
    first = as_int(first_example, "first_example", 0, INT64_MAX)
    stream = as_int(stream, "stream", 0, 2**32 - 1)
    out = np.empty((n, samples) + tuple(input_shape), dtype=np.float32)
    count = out[0].size if n else 0
    if out.size == 0:
        return out
    if kind == "normal":
        check(lib.sa_random_normal(seed, first, n, count, stream, fptr(out)))
        out *= np.float32(scale)
    else:
        check(lib.sa_random_uniform(seed, first, n, count, stream, -float(scale), float(scale), fptr(out)))
    return out


def _target_scores(net, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Output ``targets`` (one per row, or one for all) of ``net`` at ``rows``, as float64."""
    out = net.forward(rows).reshape(rows.shape[0], -1)
    return out[np.arange(rows.shape[0]), targets].astype(np.float64)


def _rows_per_call(internal_batch_size) -> int:
    if internal_batch_size is None:
        return _DEFAULT_ROWS
    return as_int(internal_batch_size, "internal_batch_size", 1, INT64_MAX)


def _example_chunks(n: int, per_example: int, rows: int):
    """Ranges of examples whose ``per_example`` rows each fit in ``rows`` rows (at least one example)."""
    step = max(1, rows // max(1, per_example))
    return [(i, min(n, i + step)) for i in range(0, n, step)]


def _samples(perturbations, n_perturb_samples, net, n: int, name: str = "perturbations"):
    """(given perturbations or None, S): perturbations of shape (n, S, *input_shape), or S draws."""
    if perturbations is None:
        s = 10 if n_perturb_samples is None else as_int(n_perturb_samples, "n_perturb_samples", 1, INT64_MAX)
        return None, s
    p = as_f32(perturbations, name)
    if p.ndim != len(net.input_shape) + 2 or p.shape[0] != n or p.shape[2:] != net.input_shape or p.shape[1] < 1:
        raise SwiftAttrError(f"{name}: expected shape ({n}, S, {', '.join(map(str, net.input_shape))}) (S perturbations "
                             f"per example), got {p.shape}", SA_ERR_SHAPE)
    if n_perturb_samples is not None and as_int(n_perturb_samples, "n_perturb_samples") != p.shape[1]:
        raise SwiftAttrError(f"n_perturb_samples = {n_perturb_samples} disagrees with the {p.shape[1]} perturbations per "
                             f"example given", SA_ERR_SHAPE)
    return _finite(p, name), p.shape[1]


def _no_tokens(net, what: str):
    if net.is_token_model:
        raise SwiftAttrError(f"net: {what} perturbs the inputs, and token ids cannot be perturbed continuously")


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` unchanged when every value is finite, else SA_ERR_NON_FINITE naming ``name`` and the first bad
    flat index (these arrays never reach C, which would check them)."""
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad.ravel()))
        raise SwiftAttrError(f"{name} contains a non-finite value ({a.ravel()[i]}) at flat index {i}", SA_ERR_NON_FINITE)
    return a


def _one_per_example(values, n: int, name: str, of: str) -> np.ndarray:
    """``values`` (labels, targets) as an array with one entry per example of ``of`` (n examples), else
    SA_ERR_SHAPE naming ``name``."""
    arr = np.asarray(values)
    if arr.ndim < 1 or arr.shape[0] != n:
        raise SwiftAttrError(f"{name}: expected one value per example of {of} ({n}), got shape {arr.shape}", SA_ERR_SHAPE)
    return arr


def _attributions(attributions, x: np.ndarray, name: str = "attributions") -> np.ndarray:
    a = as_f32(attributions, name)
    if a.shape != x.shape:
        raise SwiftAttrError(f"{name}: expected the shape of the inputs {x.shape}, got {a.shape}", SA_ERR_SHAPE)
    return _finite(a, name)


# -- infidelity ------------------------------------------------------------------------------------
@long_call
def infidelity(net, inputs, attributions, target=None, perturbations=None, n_perturb_samples: Optional[int] = None,
               noise_std: float = 0.003, normalize: bool = False, seed: Optional[int] = None, first_example: int = 0,
               internal_batch_size: Optional[int] = None) -> np.ndarray:
    """Infidelity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations"; Captum's ``infidelity``).

    Per example, INFD = E_I[(Iᵀφ − (f(x) − f(x − I)))²], the mean over S perturbations I, f the ``target``
    output. ``normalize`` rescales φ first by the β that minimises the score, β = Σ_s a_s b_s / Σ_s a_s²
    (a = Iᵀφ, b = f(x) − f(x − I); β = Σab when Σa² = 0, as Captum's safe_div), giving
    (β²Σa² − 2βΣab + Σb²)/S.

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (not a token network).
    inputs : array_like, shape (n, *input_shape)
    attributions : array_like, shape (n, *input_shape)
        φ, finite.
    target : int or array_like of int, optional
        One output index, or one per example (n,).
    perturbations : array_like, shape (n, S, *input_shape), optional
        I, used as given (the perturbed input is x − I).
    n_perturb_samples : int, optional
        S when drawn (default 10): I ~ N(0, noise_std²) per element.
    noise_std : float, default 0.003
        Captum's documented example.
    normalize : bool, default False
    seed : int, optional
        Drawn perturbations depend only on the seed and first_example + i (see the module notes).
    first_example : int, default 0
    internal_batch_size : int, optional
        Rows per forward call (default 8192).

    Returns
    -------
    numpy.ndarray, float64, shape (n,)

    Raises
    ------
    SwiftAttrError
        If ``attributions`` or ``perturbations`` have the wrong shape (SA_ERR_SHAPE) or are not finite
        (SA_ERR_NON_FINITE), ``noise_std`` is not positive and finite, or the network takes tokens.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([1.0, 2.0, -1.0, 0.5])
    >>> net = sa.Sequential([sa.Linear(w[None], np.zeros(1))])          # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> exact = sa.metrics.infidelity(net, x, np.broadcast_to(w, x.shape), target=0, seed=0)  # φ = ∇f: Iᵀφ = Δf
    >>> wrong = sa.metrics.infidelity(net, x, np.ones(x.shape), target=0, seed=0)
    >>> exact.shape, bool(exact.max() < 1e-10), bool((wrong > 100 * exact).all())
    ((3,), True, True)
    """
    net, x = _network(net, inputs)
    _no_tokens(net, "infidelity")
    n = x.shape[0]
    phi = _attributions(attributions, x).reshape(n, -1, 1)
    t = _targets(net, target, n)
    given, S = _samples(perturbations, n_perturb_samples, net, n)
    std = as_float(noise_std, "noise_std")
    if given is None and not (std > 0 and np.isfinite(std)):
        raise SwiftAttrError(f"noise_std must be positive and finite (got {noise_std!r})")
    norm = as_bool(normalize, "normalize")
    noise = given if given is not None else draw_perturbations(
        "normal", net.input_shape, n, S, std, seed, first_example, _INFIDELITY_STREAM)
    fx = _target_scores(net, x, t)
    a = np.empty((n, S))
    b = np.empty((n, S))
    for i0, i1 in _example_chunks(n, S, _rows_per_call(internal_batch_size)):
        I = noise[i0:i1].reshape(i1 - i0, S, -1)
        rows = (x[i0:i1, None] - noise[i0:i1]).reshape((-1,) + net.input_shape)
        tt = t if t.size == 1 else np.repeat(t[i0:i1], S)
        b[i0:i1] = fx[i0:i1, None] - _target_scores(net, rows, tt).reshape(i1 - i0, S)
        a[i0:i1] = np.matmul(I, phi[i0:i1])[..., 0]
    if not norm:
        return ((a - b) ** 2).sum(axis=1) / S
    aa, ab, bb = (a * a).sum(axis=1), (a * b).sum(axis=1), (b * b).sum(axis=1)
    beta = ab / np.where(aa == 0, 1.0, aa)
    return (beta * beta * aa - 2 * beta * ab + bb) / S


# -- max-sensitivity -------------------------------------------------------------------------------
def _method(method):
    """An attribution function: a callable, or the name of one of swiftattr's (e.g. "integrated_gradients")."""
    if callable(method):
        return method
    import swiftattr

    names = ("saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "expected_gradients", "deeplift",
             "deepshap", "occlusion", "feature_ablation", "feature_permutation", "shapley_value_sampling",
             "kernel_shap", "lime")
    if isinstance(method, str) and method in names:
        return getattr(swiftattr, method)
    raise SwiftAttrError(f"method: expected an attribution function or one of {', '.join(names)}, got {method!r}",
                         SA_ERR_UNKNOWN_ENUM)


_PER_EXAMPLE_ARGS = ("baselines", "feature_mask")  # arguments that may hold one row per example


def _expand_per_example(name: str, value, n: int, S: int, input_ndim: int):
    """``baselines`` or ``feature_mask`` given per example ((n, *input_shape)) repeated S times example-major;
    every other argument unchanged (Captum expands baselines of the inputs' shape and per-example targets the
    same way; shared ``references`` stay shared)."""
    if name not in _PER_EXAMPLE_ARGS or value is None or n == 1 or isinstance(value, (str, bytes)) \
            or np.ndim(value) != input_ndim + 1:
        return value
    arr = np.asarray(value)
    return np.repeat(arr, S, axis=0) if arr.shape[0] == n else value


def _first(result) -> np.ndarray:
    """The attributions of a method's result (a (attributions, delta) pair keeps its first part)."""
    return np.asarray(result[0] if isinstance(result, tuple) else result, dtype=np.float64)


def _method_result(result, rows: int, size: Optional[int] = None) -> np.ndarray:
    """The attributions a method returned for ``rows`` inputs: one row per input (of ``size`` values each,
    when given: what it returned for the unperturbed inputs), finite."""
    phi = _first(result)
    if phi.ndim < 1 or phi.shape[0] != rows or (size is not None and phi[0].size != size):
        per = "" if size is None else f" of {size} values"
        raise SwiftAttrError(f"method: returned attributions of shape {phi.shape}; expected one row{per} for each of the "
                             f"{rows} inputs", SA_ERR_SHAPE)
    return _finite(phi, "method's attributions")


@long_call
def sensitivity_max(method, /, net, inputs, target=None, perturb_radius: float = 0.02,
                    n_perturb_samples: Optional[int] = None, seed: Optional[int] = None, perturbations=None,
                    first_example: int = 0, **method_args) -> np.ndarray:
    """Max-sensitivity (Yeh et al. 2019; Captum's ``sensitivity_max`` with its default perturbation and norm).

    Per example, SENS = max over S perturbations δ of ‖φ(x + δ) − φ(x)‖ / ‖φ(x)‖ (Frobenius norm; the norm
    of a zero φ(x) taken as 1), φ = ``method(net, inputs, target=target, **method_args)``. The method runs
    once on x and once on all n·S perturbed inputs, stacked example-major, with per-example ``target``,
    ``baselines`` and ``feature_mask`` repeated to match (as Captum does).

    Parameters
    ----------
    method : callable or str
        An attribution function (sa.saliency, sa.integrated_gradients, a lambda, …) or its name; positional,
        so that a ``method=`` keyword (e.g. IG's quadrature rule) goes to the attribution function.
    net : Network or LazyNetwork
        The model (not a token network).
    inputs : array_like, shape (n, *input_shape)
    target : int or array_like of int, optional
    perturb_radius : float, default 0.02
        δ ~ U(−perturb_radius, perturb_radius) per element (the L∞ ball).
    n_perturb_samples : int, optional
        S when drawn (default 10), seeded as the module notes say.
    seed : int, optional
    perturbations : array_like, shape (n, S, *input_shape), optional
        δ as given.
    first_example : int, default 0
    **method_args
        Passed to ``method``.

    Returns
    -------
    numpy.ndarray, float64, shape (n,)

    Raises
    ------
    SwiftAttrError
        If ``method`` is an unknown name (SA_ERR_UNKNOWN_ENUM), returns attributions of the wrong shape
        (SA_ERR_SHAPE) or non-finite ones, ``perturbations`` have the wrong shape, ``perturb_radius`` is not
        positive and finite, or the network takes tokens.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([1.0, 2.0, -1.0, 0.5])
    >>> net = sa.Sequential([sa.Linear(w[None], np.zeros(1))])          # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> sens = sa.metrics.sensitivity_max(sa.input_x_gradient, net, x, target=0, seed=0)   # φ = w ⊙ x
    >>> sens.shape, bool((sens > 0).all() and (sens <= 0.02 + 1e-6).all())               # ‖w⊙δ‖/‖w⊙x‖ ≤ 0.02
    ((3,), True)
    """
    fn = _method(method)
    net, x = _network(net, inputs)
    _no_tokens(net, "max-sensitivity")
    n = x.shape[0]
    given, S = _samples(perturbations, n_perturb_samples, net, n)
    radius = as_float(perturb_radius, "perturb_radius")
    if given is None and not (radius > 0 and np.isfinite(radius)):
        raise SwiftAttrError(f"perturb_radius must be positive and finite (got {perturb_radius!r})")
    delta = given if given is not None else draw_perturbations(
        "uniform", net.input_shape, n, S, radius, seed, first_example, _SENSITIVITY_STREAM)
    if target is not None:
        method_args["target"] = target
    phi = _method_result(fn(net, x, **method_args), n).reshape(n, -1)
    expanded = {k: _expand_per_example(k, v, n, S, len(net.input_shape)) for k, v in method_args.items()}
    if target is not None:
        t = np.asarray(_targets(net, target, n))
        expanded["target"] = np.repeat(t, S) if t.size == n and n > 1 else target
    rows = (x[:, None] + delta).reshape((n * S,) + net.input_shape)
    phi_perturbed = _method_result(fn(net, rows, **expanded), n * S, phi.shape[1]).reshape(n, S, -1)
    norm = np.linalg.norm(phi, axis=1)
    norm = np.where(norm == 0, 1.0, norm)
    return (np.linalg.norm(phi_perturbed - phi[:, None], axis=2) / norm[:, None]).max(axis=1)


# -- deletion and insertion --------------------------------------------------------------------------
@dataclass
class Curve:
    """A deletion or insertion curve (Petsiuk et al. 2018), from :func:`deletion` or :func:`insertion`.

    Attributes
    ----------
    fractions : numpy.ndarray, shape (steps + 1,)
        The fraction of the features removed (or inserted) at each step, from 0 to 1.
    scores : numpy.ndarray, shape (n, steps + 1)
        The target output after removing (or inserting) the top ``fractions`` of the features.
    auc : numpy.ndarray, shape (n,)
        The trapezoidal area under ``scores`` over the fraction in [0, 1].
    order : numpy.ndarray, shape (n, M)
        Each example's features from the most attributed.
    """

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    order: np.ndarray


def _gaussian_blur(x: np.ndarray, sigma: float, spatial: int) -> np.ndarray:
    """``x`` (n, *shape) blurred by a Gaussian of standard deviation ``sigma`` (elements) along its last
    ``spatial`` axes (separable; the kernel truncated at 3σ and renormalised; edges reflected)."""
    r = max(1, int(np.ceil(3 * sigma)))
    w = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    w /= w.sum()
    out = x.astype(np.float64)
    for axis in range(x.ndim - spatial, x.ndim):
        size = out.shape[axis]
        if size <= r:
            raise SwiftAttrError(f"blur_sigma = {sigma}: the blur's radius {r} needs more than {r} elements along each "
                                 f"blurred axis (got {size})", SA_ERR_SHAPE)
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        for k in range(2 * r + 1):  # over the kernel's taps
            acc += w[k] * np.take(padded, np.arange(k, k + size), axis=axis)
        out = acc
    return out.astype(np.float32)


def _reference(net, x: np.ndarray, baselines, blur_sigma) -> np.ndarray:
    """The values removed features take: (n, *input_shape) from a scalar, one example, n examples, or
    "blur" (x blurred over its spatial axes: L of (L,) and (C, L), (H, W) of (C, H, W))."""
    from .perturbation import _baselines

    n = x.shape[0]
    if isinstance(baselines, str):
        if baselines != "blur":
            raise SwiftAttrError(f"baselines: expected a value, an array or \"blur\", got {baselines!r}",
                                 SA_ERR_UNKNOWN_ENUM)
        sigma = 2.0 if blur_sigma is None else as_float(blur_sigma, "blur_sigma")
        if not (sigma > 0 and np.isfinite(sigma)):
            raise SwiftAttrError(f"blur_sigma must be positive and finite (got {blur_sigma!r})")
        return _gaussian_blur(x, sigma, 2 if len(net.input_shape) == 3 else 1)
    if blur_sigma is not None:
        raise SwiftAttrError("blur_sigma: only used with baselines=\"blur\"")
    b, rows = _baselines(net, baselines, n)
    if b is None:
        return np.zeros_like(x)
    _finite(b, "baselines")
    return np.broadcast_to(b, x.shape) if rows == 1 else b


def _curve(net, inputs, attributions, target, baselines, feature_mask, n_steps, blur_sigma, internal_batch_size,
           inserting: bool) -> Curve:
    from .perturbation import _mask

    net, x = _network(net, inputs)
    _no_tokens(net, "deletion and insertion")
    n, p = x.shape[0], net.input_size
    phi = _attributions(attributions, x).reshape(n, p).astype(np.float64)
    t = _targets(net, target, n)
    mask, rows, M = _mask(net, feature_mask, n)
    ids = np.broadcast_to(np.arange(p), (n, p)) if mask is None else np.broadcast_to(mask.reshape(rows, p), (n, p))
    # One attribution per feature (the sum over its elements), then each element's feature rank.
    flat_ids = (ids + M * np.arange(n)[:, None]).ravel()
    empty = np.bincount(flat_ids, minlength=n * M).reshape(n, M) == 0
    if empty.any():
        i, f = np.argwhere(empty)[0]
        raise SwiftAttrError(f"feature_mask: ids must be contiguous 0..{M - 1}; {int(f)} is unused (example {int(i)})")
    scores = np.bincount(flat_ids, weights=phi.ravel(), minlength=n * M).reshape(n, M)
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(M), (n, M)), axis=1)
    element_rank = np.take_along_axis(rank, ids, axis=1)  # (n, p)
    steps = min(M, 50) if n_steps is None else as_int(n_steps, "n_steps", 1, INT64_MAX)
    counts = np.round(np.arange(steps + 1) * M / steps).astype(np.int64)
    ref = _reference(net, x, baselines, blur_sigma).reshape(n, p)
    xf = x.reshape(n, p)
    out = np.empty((n, steps + 1))
    T = steps + 1
    for i0, i1 in _example_chunks(n, T, _rows_per_call(internal_batch_size)):
        changed = element_rank[i0:i1, None, :] < counts[None, :, None]  # (m, T, p): the top counts[j] features
        first, second = (ref, xf) if inserting else (xf, ref)
        stacked = np.where(changed, second[i0:i1, None, :], first[i0:i1, None, :]).astype(np.float32)
        tt = t if t.size == 1 else np.repeat(t[i0:i1], T)
        out[i0:i1] = _target_scores(net, stacked.reshape((-1,) + net.input_shape), tt).reshape(i1 - i0, T)
    fractions = counts / M
    auc = ((out[:, 1:] + out[:, :-1]) * 0.5 * np.diff(fractions)).sum(axis=1)
    return Curve(fractions=fractions, scores=out, auc=auc, order=order)


@long_call
def deletion(net, inputs, attributions, target=None, baselines=0.0, feature_mask=None, n_steps: Optional[int] = None,
             blur_sigma: Optional[float] = None, internal_batch_size: Optional[int] = None) -> Curve:
    """The deletion curve (Petsiuk et al. 2018, "RISE"): the output as the most attributed features are removed.

    The ``target`` output as the features are set, from the most attributed down, to ``baselines``; a
    feature's attribution is the sum over its elements. Step j removes round(j·M/n_steps) features. A
    faithful attribution gives a low area (``.auc``).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (not a token network).
    inputs : array_like, shape (n, *input_shape)
    attributions : array_like, shape (n, *input_shape)
    target : int or array_like of int, optional
    baselines : float, array_like or "blur", default 0.0
        A value, one example, n examples, or "blur": the input blurred by a Gaussian of ``blur_sigma``
        elements over its spatial axes (L of (L,) and (C, L), (H, W) of (C, H, W)).
    feature_mask : array_like of int, optional
        Groups elements into features (superpixels; sa.feature_ablation's convention, ids contiguous 0..M-1).
    n_steps : int, optional
        Points after the start (default min(M, 50) for M features).
    blur_sigma : float, optional
        With ``baselines="blur"`` only (default 2).
    internal_batch_size : int, optional
        Rows per forward call (default 8192).

    Returns
    -------
    Curve

    Raises
    ------
    SwiftAttrError
        If ``attributions`` do not have the inputs' shape (SA_ERR_SHAPE) or are not finite, ``baselines`` or
        ``feature_mask`` do not broadcast or its ids are not contiguous, ``blur_sigma`` is given without
        "blur", not positive, or too large for the input, or the network takes tokens.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([1.0, 2.0, -1.0, 0.5])
    >>> net = sa.Sequential([sa.Linear(w[None], np.zeros(1))])          # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> c = sa.metrics.deletion(net, x, w * x, target=0, n_steps=4)        # remove 2, 1, 0.5 then −1
    >>> c.fractions.tolist(), c.scores[0].tolist(), round(float(c.auc[0]), 4)
    ([0.0, 0.25, 0.5, 0.75, 1.0], [2.5, 0.5, -0.5, -1.0, 0.0], 0.0625)
    """
    return _curve(net, inputs, attributions, target, baselines, feature_mask, n_steps, blur_sigma,
                  internal_batch_size, inserting=False)


@long_call
def insertion(net, inputs, attributions, target=None, baselines=0.0, feature_mask=None, n_steps: Optional[int] = None,
              blur_sigma: Optional[float] = None, internal_batch_size: Optional[int] = None) -> Curve:
    """The insertion curve (Petsiuk et al. 2018): the output as the most attributed features are inserted.

    From ``baselines`` (as :func:`deletion`), the features are given their input values from the most
    attributed down. A faithful attribution gives a high area (``.auc``).

    Parameters
    ----------
    net : Network or LazyNetwork
        The model (not a token network).
    inputs : array_like, shape (n, *input_shape)
    attributions : array_like, shape (n, *input_shape)
    target : int or array_like of int, optional
    baselines : float, array_like or "blur", default 0.0
        A value, one example, n examples, or "blur": the input blurred by a Gaussian of ``blur_sigma``
        elements over its spatial axes (L of (L,) and (C, L), (H, W) of (C, H, W)).
    feature_mask : array_like of int, optional
        Groups elements into features (superpixels; sa.feature_ablation's convention, ids contiguous 0..M-1).
    n_steps : int, optional
        Points after the start (default min(M, 50) for M features); step j inserts round(j·M/n_steps).
    blur_sigma : float, optional
        With ``baselines="blur"`` only (default 2).
    internal_batch_size : int, optional
        Rows per forward call (default 8192).

    Returns
    -------
    Curve

    Raises
    ------
    SwiftAttrError
        If ``attributions`` do not have the inputs' shape (SA_ERR_SHAPE) or are not finite, ``baselines`` or
        ``feature_mask`` do not broadcast or its ids are not contiguous, ``blur_sigma`` is given without
        "blur", not positive, or too large for the input, or the network takes tokens.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([1.0, 2.0, -1.0, 0.5])
    >>> net = sa.Sequential([sa.Linear(w[None], np.zeros(1))])          # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> c = sa.metrics.insertion(net, x, w * x, target=0, n_steps=4)
    >>> c.scores[0].tolist(), round(float(c.auc[0]), 4)
    ([0.0, 2.0, 3.0, 3.5, 2.5], 2.4375)
    """
    return _curve(net, inputs, attributions, target, baselines, feature_mask, n_steps, blur_sigma,
                  internal_batch_size, inserting=True)


# -- completeness -----------------------------------------------------------------------------------
def completeness(net, inputs, attributions, target=None, baselines=None, references=None,
                 relative: bool = False) -> np.ndarray:
    """The completeness (summation-to-delta, efficiency) residual per example: Σφ − (f(x) − f(x')).

    For attributions that should sum to the change of the ``target`` output from a baseline x' — Integrated
    Gradients (Sundararajan et al. 2017), DeepLIFT, Shapley value sampling and KernelSHAP with
    ``baselines``; Expected Gradients, DeepSHAP with ``references`` (f(x') is then the mean of f over the
    references); Integrated and Expected Hessians (attributions (n, p, p): every Γ_ij summed); TRIM
    coefficients ((n, k): summed). Contextual Decomposition's ``(relevant, irrelevant)`` pair gives
    relevant + irrelevant − f(x), the output (the logits of a network ending in Softmax) — of ``target`` when
    it is given, per mask for M masks.

    Parameters
    ----------
    net : Network or LazyNetwork
    inputs : array_like, shape (n, *input_shape)
    attributions : array_like, shape (n, ...), or a (relevant, irrelevant) pair
    target : int or array_like of int, optional
    baselines : float or array_like, optional
        None (zeros), a scalar, one example or n examples.
    references : array_like, shape (m, *input_shape), optional
        Instead of ``baselines``.
    relative : bool, default False
        Divide by |f(x) − f(x')| (0 where that is 0).

    Returns
    -------
    numpy.ndarray, float64
        (n,); for a decomposition the shape of its parts.

    Raises
    ------
    SwiftAttrError
        If ``attributions`` have no row per example or the parts of a pair differ in shape (SA_ERR_SHAPE), are
        not finite, or both ``baselines`` and ``references`` are given (a pair takes neither).

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([1.0, 2.0, -1.0, 0.5])
    >>> net = sa.Sequential([sa.Linear(w[None], np.zeros(1))])          # f(x) = w·x
    >>> x = np.ones((3, 4), dtype=np.float32)
    >>> r = sa.metrics.completeness(net, x, sa.integrated_gradients(net, x, target=0), target=0)
    >>> r.shape, bool(np.abs(r).max() < 1e-4)
    ((3,), True)
    >>> parts = sa.contextual_decomposition(net, x, np.array([1, 1, 0, 0]), target=0)
    >>> bool(np.abs(sa.metrics.completeness(net, x, parts, target=0)).max() < 1e-5)
    True
    """
    from .attribution import _baselines

    net, x = _network(net, inputs)
    n = x.shape[0]
    if isinstance(attributions, tuple) and len(attributions) == 2:
        return _decomposition_residual(net, x, attributions, target, baselines, references)
    a = as_f32(attributions, "attributions")
    if a.ndim < 2 or a.shape[0] != n:
        raise SwiftAttrError(f"attributions: expected one row per example ({n}, ...), got {a.shape}", SA_ERR_SHAPE)
    _finite(a, "attributions")
    t = _targets(net, target, n)
    fx = _target_scores(net, x, t)
    if references is not None:
        if baselines is not None:
            raise SwiftAttrError("give baselines or references, not both")
        r = net._batch(references, "references")
        f0 = net.forward(r).reshape(r.shape[0], -1).astype(np.float64).mean(axis=0)[t]
        f0 = np.broadcast_to(f0, (n,))
    else:
        b, nb = _baselines(net, baselines, n)
        if b is None:
            b, nb = np.zeros((1,) + net.input_shape, np.float32), 1
        outputs = net.forward(b).reshape(nb, -1).astype(np.float64)
        f0 = outputs[np.arange(n) if nb == n else 0, t]
    change = fx - f0
    residual = a.reshape(n, -1).astype(np.float64).sum(axis=1) - change
    if as_bool(relative, "relative"):
        return np.divide(residual, np.abs(change), out=np.zeros(n), where=change != 0)
    return residual


def _decomposition_residual(net, x, parts, target, baselines, references) -> np.ndarray:
    """relevant + irrelevant − the decomposed output, for sa.contextual_decomposition's result."""
    if baselines is not None or references is not None:
        raise SwiftAttrError("baselines, references: a decomposition of the output has neither")
    rel, irr = as_f32(parts[0], "attributions[0]"), as_f32(parts[1], "attributions[1]")
    if rel.shape != irr.shape or rel.ndim < 1 or rel.shape[0] != x.shape[0]:
        raise SwiftAttrError(f"attributions: expected (relevant, irrelevant) of one shape with a row per example, got "
                             f"{rel.shape} and {irr.shape}", SA_ERR_SHAPE)
    n = x.shape[0]
    logits = net.layer_kinds[-1] == "softmax"
    out = (net.activations(x, net.node_inputs[-1][0]) if logits else net.forward(x)).reshape(n, -1).astype(np.float64)
    if target is not None:
        out = out[np.arange(n), _targets(net, target, n)]  # (n,)
    total = rel.astype(np.float64) + irr
    if total.ndim == out.ndim + 1:  # M masks: (n, M) or (n, M, out)
        out = out[:, None]
    if np.broadcast_shapes(total.shape, out.shape) != total.shape:
        raise SwiftAttrError(f"attributions: shape {rel.shape} does not match the outputs {out.shape}", SA_ERR_SHAPE)
    return total - out
