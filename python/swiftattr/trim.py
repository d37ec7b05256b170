"""Attribution in a transformed domain: TRIM (Singh, Ha, Yu et al., "Transformation importance with
applications to cosmology", 2020; csinva/transformation-importance).

    T = sa.fourier_transform(net.input_shape)           # real orthonormal DFT basis: s = T x
    phi = sa.trim(sa.integrated_gradients, net, x, T, target=3)   # (N, k): one value per coefficient
    bands = sa.frequency_bands(T, 8)                    # (8, k) masks of coefficients by frequency
    band_importance = phi @ bands.T                     # (N, 8)

For s = T x with inverse T⁻¹, the network g(s, r) = f(T⁻¹ s + r) takes the coefficients as input (built in the
library: :meth:`Transform.network`); r = x − T⁻¹ T x is what the coefficients do not reconstruct, fed to g as
extra inputs that keep the same value in an example and its baseline, so no attribution goes to it. Any
method then attributes to s: gradients are (T⁻¹)ᵀ ∇f, path methods integrate along s' + α(s − s') and keep
completeness, DeepLIFT keeps summation-to-delta, and CD scores a band by a mask over coefficients.
"""
from __future__ import annotations

import ctypes
import inspect
from typing import Optional, Sequence

import numpy as np

from ._args import SA_ERR_SHAPE, as_bool, as_f32, as_int, as_shape, expect_shape
from ._ffi import SwiftAttrError, check, fptr, lib
from .model import Network, network_for

__all__ = ["Transform", "fourier_transform", "frequency_bands", "trim"]


class Transform:
    """A linear transform of each flattened example, s = T x (k coefficients of p values), with its inverse.

    TRIM (Singh, Ha, Yu et al. 2020) attributes to the coefficients s through g(s, r) = f(T⁻¹ s + r) (see
    :meth:`network`).

    Parameters
    ----------
    matrix : array_like, shape (k, p)
        T, mapping the p = prod(input_shape) values of an example to k coefficients.
    inverse : array_like, shape (p, k), optional
        T⁻¹; by default the pseudo-inverse (the transpose for an orthonormal T).
    input_shape : sequence of int, optional
        The shape of one example (default (p,)); its size must be p.
    frequencies : array_like, shape (k,), optional
        Tags each coefficient with a frequency (used by :func:`frequency_bands`).
    complete : bool, optional
        Whether T⁻¹ T = I, so no residual is needed; by default tested (k ≥ p and T⁻¹ T ≈ I within 1e-5).

    Attributes
    ----------
    matrix, inverse, input_shape, frequencies, complete
        As given (float32 arrays; ``inverse`` computed when not given).

    Raises
    ------
    SwiftAttrError
        If ``matrix`` is not a non-empty 2-D array, ``input_shape`` does not hold p values, ``inverse`` or
        ``frequencies`` has the wrong shape (SA_ERR_SHAPE), or ``inverse`` is not finite.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> T = sa.Transform(2 * np.eye(3))          # s = 2x; the inverse is the pseudo-inverse x = s / 2
    >>> T.complete, T.coefficients_count
    (True, 3)
    >>> np.round(T.coefficients(np.ones((1, 3))), 3).tolist(), np.round(T.reconstruct([[2.0, 4.0, 6.0]]), 3).tolist()
    ([[2.0, 2.0, 2.0]], [[1.0, 2.0, 3.0]])
    """

    def __init__(self, matrix, inverse=None, input_shape: Optional[Sequence[int]] = None, frequencies=None,
                 complete: Optional[bool] = None):
        t = as_f32(matrix, "matrix")
        if t.ndim != 2 or t.shape[0] == 0 or t.shape[1] == 0:
            raise SwiftAttrError(f"matrix: expected T of shape (coefficients, input_size), got {t.shape}", SA_ERR_SHAPE)
        k, p = t.shape
        self.matrix = t
        self.input_shape = (p,) if input_shape is None else as_shape(input_shape, "input_shape")
        if int(np.prod(self.input_shape)) != p:
            raise SwiftAttrError(f"input_shape {self.input_shape} has {int(np.prod(self.input_shape))} values, "
                                 f"the matrix transforms {p}", SA_ERR_SHAPE)
        if inverse is None:
            inv = np.ascontiguousarray(np.linalg.pinv(t.astype(np.float64)).astype(np.float32))
        else:
            inv = expect_shape(as_f32(inverse, "inverse"), (p, k), "inverse", "(input_size, coefficients)")
        if not np.isfinite(inv).all():
            raise SwiftAttrError("inverse: contains NaN or infinite values")
        self.inverse = inv
        if frequencies is not None:
            frequencies = expect_shape(as_f32(frequencies, "frequencies"), (k,), "frequencies", "(coefficients,)")
        self.frequencies = frequencies
        if complete is None:
            complete = k >= p and np.allclose(inv.astype(np.float64) @ t.astype(np.float64), np.eye(p), atol=1e-5)
        self.complete = as_bool(complete, "complete")

    @property
    def coefficients_count(self) -> int:
        """k, the number of coefficients (rows of T)."""
        return self.matrix.shape[0]

    def __repr__(self):
        return f"Transform({self.matrix.shape[0]} coefficients of input_shape={self.input_shape}, complete={self.complete})"

    def _flat(self, x, name: str) -> np.ndarray:
        arr = as_f32(x, name)
        if arr.shape[1:] != self.input_shape:
            raise SwiftAttrError(f"{name}: expected shape (n, {', '.join(map(str, self.input_shape))}), got {arr.shape}",
                                 SA_ERR_SHAPE)
        return arr.reshape(arr.shape[0], -1)

    def coefficients(self, x) -> np.ndarray:
        """s = T x for a batch.

        Parameters
        ----------
        x : array_like, shape (n, *input_shape)

        Returns
        -------
        numpy.ndarray, float32, shape (n, k)

        Raises
        ------
        SwiftAttrError
            If ``x`` is not a batch of ``input_shape`` (SA_ERR_SHAPE).
        """
        return self._flat(x, "inputs") @ self.matrix.T

    def reconstruct(self, s) -> np.ndarray:
        """T⁻¹ s for a batch of coefficients.

        Parameters
        ----------
        s : array_like, shape (n, k)

        Returns
        -------
        numpy.ndarray, float32, shape (n, *input_shape)

        Raises
        ------
        SwiftAttrError
            If ``s`` is not of shape (n, k) (SA_ERR_SHAPE).
        """
        s = as_f32(s, "coefficients")
        if s.ndim != 2 or s.shape[1] != self.coefficients_count:
            raise SwiftAttrError(f"coefficients: expected shape (n, {self.coefficients_count}), got {s.shape}", SA_ERR_SHAPE)
        return (s @ self.inverse.T).reshape((s.shape[0],) + self.input_shape)

    def residual(self, x) -> np.ndarray:
        """r = x − T⁻¹ T x, what the coefficients do not reconstruct (0 for a complete transform).

        Parameters
        ----------
        x : array_like, shape (n, *input_shape)

        Returns
        -------
        numpy.ndarray, float32, shape (n, p)
            Flattened.

        Raises
        ------
        SwiftAttrError
            If ``x`` is not a batch of ``input_shape`` (SA_ERR_SHAPE).

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> T = sa.Transform(np.array([[1.0, 0.0]]))      # keeps x₀ only: incomplete
        >>> T.complete, T.residual(np.array([[3.0, 4.0]])).tolist()
        (False, [[0.0, 4.0]])
        """
        flat = self._flat(x, "inputs")
        return flat - (flat @ self.matrix.T) @ self.inverse.T

    def network(self, net, use_residuals: Optional[bool] = None) -> Network:
        """The network over coefficients, built in the library.

        g(s) = f(T⁻¹ s) (input (k,)) or, with residuals, g([s, r]) = f(T⁻¹ s + r) (input (k + p,)), so any
        method attributes to s: gradients are (T⁻¹)ᵀ ∇f.

        Parameters
        ----------
        net : Network or LazyNetwork
            f, taking ``input_shape``.
        use_residuals : bool, optional
            Whether g takes r as extra inputs; default: when the transform is not complete.

        Returns
        -------
        Network

        Raises
        ------
        SwiftAttrError
            If the network's input shape is not ``input_shape`` (SA_ERR_SHAPE).

        Examples
        --------
        >>> import numpy as np, swiftattr as sa
        >>> net = sa.Sequential([sa.Linear(np.ones((1, 4)), np.zeros(1))])
        >>> g = sa.fourier_transform((4,)).network(net)
        >>> g.input_shape, round(float(g.forward(np.array([[2.0, 0, 0, 0]]))[0, 0]), 3)  # s = (2, 0, 0, 0): x = 1
        ((4,), 4.0)
        """
        net = network_for(net, np.zeros((1,) + self.input_shape, dtype=np.float32))
        if net.input_shape != self.input_shape:
            raise SwiftAttrError(f"transform: it is for input_shape {self.input_shape}, the network takes {net.input_shape}",
                                 SA_ERR_SHAPE)
        residual = self._use_residuals(use_residuals)
        out = ctypes.c_void_p()
        check(lib.sa_model_transformed(net._handle, fptr(self.inverse), self.coefficients_count, int(residual),
                                       ctypes.byref(out)))
        return Network(out)

    def _use_residuals(self, use_residuals) -> bool:
        return (not self.complete) if use_residuals is None else as_bool(use_residuals, "use_residuals")


def _real_dft_basis(n: int):
    """The real orthonormal Fourier basis of length n (rows) and the frequency of each row in cycles per sample:
    the constant, then cos and sin of each frequency f/n for f = 1 … ⌈n/2⌉ − 1, then (−1)^t when n is even."""
    t = np.arange(n)
    rows, freqs = [np.full(n, 1 / np.sqrt(n))], [0.0]
    for f in range(1, (n + 1) // 2):
        rows += [np.sqrt(2 / n) * np.cos(2 * np.pi * f * t / n), np.sqrt(2 / n) * np.sin(2 * np.pi * f * t / n)]
        freqs += [f / n, f / n]
    if n % 2 == 0:
        rows.append((-1.0) ** t / np.sqrt(n))
        freqs.append(0.5)
    return np.array(rows), np.array(freqs)


def fourier_transform(input_shape) -> Transform:
    """The real orthonormal discrete Fourier transform of each example.

    Over L for (L,) and, per channel, over L for (C, L) and over (H, W) for (C, H, W) (the Kronecker product of
    the row and column bases). The basis of length n: the constant 1/√n, then √(2/n)·cos(2πft/n) and
    √(2/n)·sin(2πft/n) for f = 1 … ⌈n/2⌉ − 1, then (−1)^t/√n when n is even. Complete and orthonormal
    (T⁻¹ = Tᵀ), so no residual is needed. ``frequencies`` holds each coefficient's frequency in cycles per
    sample (for images the radius √(f_h² + f_w²), up to √½).

    Parameters
    ----------
    input_shape : sequence of int
        (L,), (C, L) or (C, H, W), at most 4096 values (the matrix is dense).

    Returns
    -------
    Transform
        With k = p coefficients, ``complete=True`` and ``frequencies`` (k,).

    Raises
    ------
    SwiftAttrError
        If ``input_shape`` has another rank or a non-positive size (SA_ERR_SHAPE), or more than 4096 values.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> T = sa.fourier_transform((8,))
    >>> T.coefficients_count, T.complete, bool(np.allclose(T.matrix @ T.matrix.T, np.eye(8), atol=1e-6))
    (8, True, True)
    >>> [round(float(f), 3) for f in T.frequencies]
    [0.0, 0.125, 0.125, 0.25, 0.25, 0.375, 0.375, 0.5]
    """
    shape = as_shape(input_shape, "input_shape")
    if not 1 <= len(shape) <= 3 or any(d <= 0 for d in shape):
        raise SwiftAttrError(f"input_shape: expected (L,), (C, L) or (C, H, W) with positive sizes, got {shape}", SA_ERR_SHAPE)
    p = int(np.prod(shape))
    if p > 4096:
        raise SwiftAttrError(f"input_shape {shape}: a dense Fourier matrix of {p} × {p} is too large here (at most 4096 values)")
    if len(shape) <= 2:
        basis, freq = _real_dft_basis(shape[-1])
    else:
        bh, fh = _real_dft_basis(shape[1])
        bw, fw = _real_dft_basis(shape[2])
        basis = np.kron(bh, bw)
        freq = np.sqrt(fh[:, None] ** 2 + fw[None, :] ** 2).ravel()
    channels = shape[0] if len(shape) >= 2 else 1
    matrix = np.kron(np.eye(channels), basis).astype(np.float32)
    return Transform(matrix, matrix.T.copy(), input_shape=shape, frequencies=np.tile(freq, channels), complete=True)


def frequency_bands(transform: Transform, n_bands: int) -> np.ndarray:
    """Masks grouping the coefficients into equal-width frequency bands.

    The bands run from 0 to the highest frequency: band b holds frequencies in [b, b + 1)·width, the last band
    includes its upper edge. ``phi @ bands.T`` sums attributions over coefficients (n, k) into bands.

    Parameters
    ----------
    transform : Transform
        With ``frequencies`` (e.g. from :func:`fourier_transform`).
    n_bands : int
        At least 1.

    Returns
    -------
    numpy.ndarray, float32, shape (n_bands, k)
        0/1; each coefficient in exactly one band.

    Raises
    ------
    SwiftAttrError
        If ``transform`` is not a Transform with frequencies, or ``n_bands`` < 1.

    Examples
    --------
    >>> import swiftattr as sa
    >>> bands = sa.frequency_bands(sa.fourier_transform((8,)), 4)
    >>> bands.shape, bands.sum(axis=1).tolist()
    ((4, 8), [1.0, 2.0, 2.0, 3.0])
    """
    if not isinstance(transform, Transform) or transform.frequencies is None:
        raise SwiftAttrError("transform: expected a Transform with frequencies (e.g. from sa.fourier_transform)")
    n_bands = as_int(n_bands, "n_bands")
    if n_bands < 1:
        raise SwiftAttrError(f"n_bands must be at least 1 (got {n_bands})")
    f = transform.frequencies.astype(np.float64)
    top = f.max()
    band = np.zeros(f.shape, dtype=np.int64) if top == 0 else np.minimum((f / top * n_bands).astype(np.int64), n_bands - 1)
    return (band[None, :] == np.arange(n_bands)[:, None]).astype(np.float32)


def _coefficient_baselines(transform: Transform, baselines, n: int) -> np.ndarray:
    """Baselines in coefficient space: None → zeros; (k,) → broadcast; (n, k)."""
    k = transform.coefficients_count
    if baselines is None:
        return np.zeros((n, k), dtype=np.float32)
    b = as_f32(baselines, "baselines")
    if b.shape == (k,):
        return np.broadcast_to(b, (n, k))
    if b.shape == (1, k):
        return np.broadcast_to(b[0], (n, k))
    return expect_shape(b, (n, k), "baselines", "coefficient-space baselines: (k,) or (n, k)")


def trim(method, net, inputs, transform: Transform, baselines=None, use_residuals: Optional[bool] = None, **kwargs):
    """TRIM (Singh, Ha, Yu et al. 2020): any attribution method, over the coefficients of a transform.

    Runs ``method`` (sa.saliency, sa.input_x_gradient, sa.integrated_gradients, sa.smoothgrad, sa.deeplift,
    sa.deepshap, sa.expected_gradients, sa.contextual_decomposition, …: any function ``method(net, inputs, ...)``)
    on g(s, r) = f(T⁻¹ s + r), s = T x, r = x − T⁻¹ T x, and returns its result over the coefficients. Path
    methods integrate along s' + α(s − s') and keep completeness, DeepLIFT keeps summation-to-delta.

    Parameters
    ----------
    method : callable
        The attribution function.
    net : Network or LazyNetwork
        f, taking ``transform.input_shape``.
    inputs : array_like, shape (n, *input_shape)
        The examples, in the input domain.
    transform : Transform
        T and T⁻¹ (e.g. :func:`fourier_transform`).
    baselines : array_like, shape (k,) or (n, k), optional
        For path methods and DeepLIFT: coefficients, default 0. Each example's residual is given to its
        baseline too, so Δr = 0 and nothing is attributed to r.
    use_residuals : bool, optional
        Feed r to g; default: when the transform is not complete.
    **kwargs
        Passed to ``method``. For sa.expected_gradients and sa.deepshap, ``references`` are coefficient rows
        (m, k) and need a complete transform (a residual belongs to one example, not to a shared reference).
        For sa.contextual_decomposition, ``mask`` is over coefficients ((k,) or (M, k)); the residual counts
        as irrelevant.

    Returns
    -------
    numpy.ndarray, shape (n, k), or what ``method`` returns
        For an attribution: one value per coefficient. A tuple (attributions, delta) keeps its delta;
        Contextual Decomposition's (relevant, irrelevant) are outputs and are returned as they are.

    Raises
    ------
    SwiftAttrError
        If ``method`` is not callable, ``transform`` is not a Transform, ``references`` are used with residuals
        or are not (m, k), ``mask`` is not over k coefficients (SA_ERR_SHAPE), ``baselines`` go to a method
        without them, or ``method`` raises.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.standard_normal((4, 8)), np.zeros(4)), sa.Tanh(),
    ...                      sa.Linear(rng.standard_normal((1, 4)), np.zeros(1))])
    >>> x = rng.standard_normal((2, 8)).astype(np.float32)
    >>> T = sa.fourier_transform((8,))
    >>> phi = sa.trim(sa.integrated_gradients, net, x, T, target=0)        # (n, k)
    >>> phi.shape, bool(np.allclose(phi.sum(axis=1), net.forward(x)[:, 0] - net.forward(0 * x)[:, 0], atol=1e-3))
    ((2, 8), True)
    >>> (phi @ sa.frequency_bands(T, 4).T).shape                           # importance per band
    (2, 4)
    """
    if not callable(method):
        raise SwiftAttrError(f"method: expected an attribution function such as sa.integrated_gradients, got {method!r}")
    if not isinstance(transform, Transform):
        raise SwiftAttrError(f"transform: expected a sa.Transform, got {type(transform).__name__}")
    residual = transform._use_residuals(use_residuals)
    g = transform.network(net, residual)
    x = transform._flat(inputs, "inputs")
    n, k = x.shape[0], transform.coefficients_count
    s = x @ transform.matrix.T
    r = x - s @ transform.inverse.T if residual else None
    z = np.ascontiguousarray(np.concatenate([s, r], axis=1) if residual else s, dtype=np.float32)
    params = inspect.signature(method).parameters
    if "references" in params and residual:
        raise SwiftAttrError(f"{method.__name__} draws shared references, which cannot carry one example's residual: "
                             "use a complete transform or use_residuals=False")
    if "mask" in kwargs and residual:
        m = as_f32(kwargs["mask"], "mask")
        if m.shape[-1:] != (k,):
            raise SwiftAttrError(f"mask: expected coefficient masks of shape (k,) or (M, k) with k = {k}, got {m.shape}",
                                 SA_ERR_SHAPE)
        kwargs["mask"] = np.concatenate([m, np.zeros(m.shape[:-1] + (x.shape[1],), dtype=np.float32)], axis=-1)
    if "references" in kwargs:
        ref = as_f32(kwargs["references"], "references")
        if ref.ndim != 2 or ref.shape[1] != k:
            raise SwiftAttrError(f"references: expected coefficient rows of shape (m, {k}), got {ref.shape}", SA_ERR_SHAPE)
    if "baselines" in params:
        sb = _coefficient_baselines(transform, baselines, n)
        kwargs["baselines"] = np.ascontiguousarray(np.concatenate([sb, r], axis=1) if residual else sb, dtype=np.float32)
    elif baselines is not None:
        raise SwiftAttrError(f"baselines: {method.__name__} takes no baselines")
    result = method(g, z, **kwargs)
    if isinstance(result, tuple):  # (attributions, convergence delta) keeps its delta; CD's parts are outputs
        first = result[0]
        return (first[:, :k],) + result[1:] if getattr(first, "shape", None) == z.shape else result
    return result[:, :k]
