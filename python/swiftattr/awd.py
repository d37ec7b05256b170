"""Adaptive wavelet distillation (AWD: Ha, Singh, Lanusse, Upadhyayula, Yu, "Adaptive wavelet distillation from
neural networks through interpretations", NeurIPS 2021; the authors' package ``awave``).

    w = sa.awd.fit(net, X, wave="db5", levels=3, attribution="saliency", target=1, lam_attr=1.0, epochs=20)
    c = w.transform.forward(X)              # (N, d) wavelet coefficients, bands [a_J, d_J, ..., d_1]
    t, phi, psi = w.transform.scaling_and_wavelet()
    model = sa.awd.distill(w.transform, net, X, y, k=6)       # a linear model on the 6 top coefficients

A wavelet is parameterised by its low-pass filter h₀ (L taps); the high-pass filter is h₁ = flip(h₀)·(−1)ⁿ,
so h₀ alone defines an orthogonal transform when it satisfies the wavelet conditions. The transform here is
the periodised discrete wavelet transform (pywt's ``mode="periodization"``): one level maps a signal of length
N to a[n] = Σ_j h₀[j] x[(2n + j + 1 − L/2) mod N] and the same with h₁, so the analysis matrix W(h₀) is square
and the synthesis (inverse) is Wᵀ — exactly the inverse when h₀ is orthogonal, the adjoint otherwise (as
awave's filter banks). Signals are the last axis of each example (1-D) or the last two (2-D, separable),
every leading channel transformed alike; lengths must be divisible by 2^levels.

The fit minimises awave's loss over h₀ (Adam), with x̃ = Wᵀ W x the reconstruction and c = W x:

    ‖x − x̃‖²/B + ½(Σh₀ − √2)² + ½(Σh₁)² + ½(‖h₀‖² − 1)² + ½Σ_k(|Ĥ₀(k)|² + |Ĥ₀(k + L/2)|² − 2)²
      + ½‖(h₀ ⋆ h₀)↓2 − δ‖² + λ_wave·L1(c) + λ_attr·L1(a)

where L1 sums |·| within each band and averages over the J + 1 bands and the B examples (awave's
``tuple_L1Loss``), and a are the TRIM attributions of the network with respect to the coefficients of
g(c) = f(Wᵀc), evaluated at the reconstruction x̃. (awave adds the detached residual x − x̃ so that its network
always reads the data x; its gradient is then not the derivative of its loss, which finite differences
cannot confirm. Here the loss is a function of h₀ and the gradient its derivative; the two coincide when h₀
is an orthogonal wavelet, where x̃ = x.) The attributions: saliency a = W ∇f(x̃) (the gradient with respect to c of f(Wᵀc)), input×gradient
c ⊙ W∇f(x̃), or Integrated Gradients from the zero baseline, c ⊙ W ∫₀¹ ∇f(αx̃) dα (Gauss–Legendre). Its gradient with respect to h₀
is differentiated through the attribution, as ``create_graph=True`` does in awave: the network's gradients
and exact Hessian–vector products come from the library (:func:`swiftattr.hessian_vector_product`), and the
derivatives of W along each filter tap from a complex step (exact to rounding: every filter-bank operation
is a polynomial in h₀). Smooth activations give the attribution term its curvature; on a ReLU network H = 0
almost everywhere, as in autograd.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import comb
from typing import List, Optional, Sequence

import numpy as np

from ._args import (SA_ERR_INVALID_ARGUMENT, SA_ERR_SHAPE, SA_ERR_UNKNOWN_ENUM, as_choice, as_float, as_int,
                    from_torch_tensor)
from ._ffi import SwiftAttrError
from .metrics import _finite, _one_per_example
from .model import network_for

__all__ = ["daubechies", "DWT1d", "DWT2d", "AWDResult", "fit", "distill", "wavelet_loss", "attributions",
           "project_to_wavelet"]

_STEP = 1e-30  # the complex step: Im f(h + i·s·e_k)/s = ∂f/∂h_k to rounding, for any s this small


def daubechies(order: int) -> np.ndarray:
    """The low-pass reconstruction filter h₀ of the Daubechies wavelet dbN (2N taps; pywt's ``rec_lo``).

    Computed by spectral factorisation of P(y) = Σ_{k<N} C(N−1+k, k) yᵏ, keeping the roots inside the unit
    circle (minimum phase), normalised to Σh₀ = √2 (Daubechies 1988). Accurate to ~1e-14 up to db15.

    Parameters
    ----------
    order : int
        N, from 1 (Haar) to 20.

    Returns
    -------
    numpy.ndarray
        (2N,) float64 filter.

    Raises
    ------
    SwiftAttrError
        ``order`` outside 1..20.

    Examples
    --------
    >>> h = daubechies(2)
    >>> h.shape, round(float(h.sum()), 6), round(float(h @ h), 6)
    ((4,), 1.414214, 1.0)
    """
    n = as_int(order, "order", 1, 20)
    if n == 1:
        return np.array([1.0, 1.0]) / np.sqrt(2.0)
    roots_y = np.roots([comb(n - 1 + k, k) for k in range(n)][::-1])
    poly = np.array([1.0 + 0j])
    for _ in range(n):
        poly = np.convolve(poly, [1.0, 1.0])
    for y in roots_y:
        pair = np.roots([1.0, -(2.0 - 4.0 * y), 1.0])  # z + 1/z = 2 − 4y
        poly = np.convolve(poly, [1.0, -pair[np.argmin(np.abs(pair))]])
    h = np.real(poly)
    return h * np.sqrt(2.0) / h.sum()


def _real(value, name: str) -> np.ndarray:
    """``value`` (an array-like or a torch tensor) as a float64 array of finite real numbers: bool, complex,
    string and object arrays are errors (complex would lose its imaginary part), as are NaN and ±inf."""
    try:
        arr = np.asarray(from_torch_tensor(value))
    except (TypeError, ValueError) as e:
        raise SwiftAttrError(f"{name}: cannot convert to a float64 array ({e})") from None
    if arr.dtype.kind not in "iuf":
        raise SwiftAttrError(f"{name}: expected real numbers (an integer or floating-point array), got dtype {arr.dtype}")
    return _finite(arr.astype(np.float64, copy=False), name)


def _nonnegative(value, name: str) -> float:
    v = as_float(value, name)
    if not (v >= 0 and np.isfinite(v)):
        raise SwiftAttrError(f"{name} must be non-negative and finite (got {value!r})")
    return v


def _filter(wave) -> np.ndarray:
    if isinstance(wave, str):
        name = wave.lower()
        if name == "haar":
            return daubechies(1)
        if name.startswith("db") and name[2:].isdigit():
            return daubechies(int(name[2:]))
        raise SwiftAttrError(f"wave: unknown wavelet {wave!r}; expected 'haar', 'db1' … 'db20' or a filter array",
                             SA_ERR_UNKNOWN_ENUM)
    h = _real(wave, "wave").ravel()
    if h.size < 2 or h.size % 2:
        raise SwiftAttrError(f"wave: a low-pass filter must have an even number (≥ 2) of finite taps, got {h.size}",
                             SA_ERR_INVALID_ARGUMENT)
    return h


def _upsample(c: np.ndarray) -> np.ndarray:
    up = np.zeros(2 * c.size - 1, dtype=c.dtype)
    up[::2] = c
    return up


def highpass(h0: np.ndarray) -> np.ndarray:
    """The high-pass filter h₁ = flip(h₀)·(−1)ⁿ of a low-pass filter (pywt's ``rec_hi`` for its ``rec_lo``).

    Examples
    --------
    >>> highpass(np.array([1.0, 2.0, 3.0, 4.0])).tolist()
    [4.0, -3.0, 2.0, -1.0]
    """
    return h0[::-1] * (-1.0) ** np.arange(h0.size)


def _level_indices(n: int, taps: int) -> np.ndarray:
    """(n/2, taps) source positions of one periodised level: (2m + j + 1 − taps/2) mod n."""
    return (2 * np.arange(n // 2)[:, None] + np.arange(taps)[None, :] + 1 - taps // 2) % n


def _analysis_1d(x, h0, levels: int):
    """Coefficients of x (..., N) along the last axis: concatenated [a_J, d_J, ..., d_1]. ``h0`` may be
    complex (the complex step); the result's dtype follows."""
    h1 = highpass(h0)
    bands = []
    a = x
    for _ in range(levels):
        idx = _level_indices(a.shape[-1], h0.size)
        g = a[..., idx]  # (..., n/2, taps)
        bands.append(g @ h1)
        a = g @ h0
    return np.concatenate([a] + bands[::-1], axis=-1)


def _filter_rows(g, h):
    """g (..., m, taps) @ h as one matrix–vector product."""
    return (g.reshape(-1, g.shape[-1]) @ h).reshape(g.shape[:-1])


def _analysis_1d_tangents(x, dx, h0, levels: int):
    """:func:`_analysis_1d` of a real x together with its derivatives along every filter tap k, in real
    arithmetic (forward mode): each level is y = G(a)·h with G(a) the gathered windows, linear in a, so
    ∂y/∂h_k = G(∂a/∂h_k)·h + G(a)·∂h/∂h_k, where ∂h₀/∂h_k = e_k and ∂h₁/∂h_k = (−1)^(L−1−k) e_(L−1−k).
    ``dx``: (taps, *x.shape) input tangents or None (x does not depend on h). Returns (y, dy)."""
    taps = h0.size
    h1 = highpass(h0)
    sign = (-1.0) ** np.arange(taps)
    a = x
    da = np.zeros((taps,) + x.shape) if dx is None else dx
    bands, dbands = [], []
    for _ in range(levels):
        idx = _level_indices(a.shape[-1], taps)
        g = a[..., idx]  # (..., n/2, taps)
        dg = da[..., idx]  # (taps, ..., n/2, taps)
        d = _filter_rows(g, h1)
        dd = _filter_rows(dg, h1)
        na = _filter_rows(g, h0)
        dna = _filter_rows(dg, h0)
        for k in range(taps):
            dna[k] += g[..., k]
            dd[k] += sign[taps - 1 - k] * g[..., taps - 1 - k]
        bands.append(d)
        dbands.append(dd)
        a, da = na, dna
    y = np.concatenate([a] + bands[::-1], axis=-1)
    dy = np.concatenate([da] + dbands[::-1], axis=-1)
    return y, dy


def _synthesis_1d(c, h0, levels: int):
    """The adjoint of :func:`_analysis_1d` (its inverse when h₀ is orthogonal)."""
    h1 = highpass(h0)
    n = c.shape[-1]
    size = n >> levels
    a = c[..., :size]
    pos = size
    for _ in range(levels):
        d = c[..., pos:pos + size]
        pos += size
        m = 2 * size
        idx = _level_indices(m, h0.size)
        contrib = a[..., :, None] * h0 + d[..., :, None] * h1  # (..., size, taps)
        lead = contrib.shape[:-2]
        flat = contrib.reshape(-1, size * h0.size)
        out = np.asarray(_scatter(m, h0.size) @ flat.T).T.reshape(lead + (m,))
        a = out
        size = m
    return a


_SCATTERS = {}


def _scatter(n: int, taps: int):
    """The (n, n/2·taps) 0/1 sparse matrix adding contributions (m, j) into position (2m + j + 1 − taps/2) mod n:
    the adjoint of one level's gather."""
    key = (n, taps)
    s = _SCATTERS.get(key)
    if s is None:
        from scipy.sparse import csr_matrix

        idx = _level_indices(n, taps).ravel()
        s = _SCATTERS[key] = csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(n, idx.size))
    return s


class _Wavelet:
    """What DWT1d and DWT2d share: the filter, the band layout, the matrix form and the plots' functions."""

    dims = 1

    def __init__(self, wave="db5", levels: int = 3):
        self.filter = _filter(wave)
        self.levels = as_int(levels, "levels", 1, 30)

    @property
    def highpass(self) -> np.ndarray:
        return highpass(self.filter)

    def _check(self, x, name="inputs") -> np.ndarray:
        a = _real(x, name)
        if a.ndim < self.dims:
            raise SwiftAttrError(f"{name}: expected at least {self.dims} axes, got shape {a.shape}", SA_ERR_SHAPE)
        for n in a.shape[a.ndim - self.dims:]:
            if n % (1 << self.levels):
                raise SwiftAttrError(f"{name}: a signal length of {n} is not divisible by 2^levels = {1 << self.levels}",
                                     SA_ERR_SHAPE)
        return a

    def forward(self, x) -> np.ndarray:
        """The wavelet coefficients of ``x``: same shape (any leading axes; the signal axes last).

        Parameters
        ----------
        x : array_like
            (..., N) for :class:`DWT1d` or (..., H, W) for :class:`DWT2d`; lengths divisible by 2^levels.

        Returns
        -------
        numpy.ndarray
            float64 coefficients in :meth:`bands` layout.
        """
        return self._analysis(self._check(x), self.filter)

    def inverse(self, coefficients) -> np.ndarray:
        """The signals whose coefficients are ``coefficients``: the synthesis Wᵀ (exactly the inverse of
        :meth:`forward` when the filter is an orthogonal wavelet).
        """
        return self._synthesis(self._check(coefficients, "coefficients"), self.filter)

    def matrix(self, shape: Sequence[int]) -> np.ndarray:
        """W (d × d, d = prod(shape)) for one example of ``shape``: ``coefficients = W @ x.ravel()``.

        Examples
        --------
        >>> w = DWT1d("db2", levels=2).matrix((8,))
        >>> bool(np.allclose(w @ w.T, np.eye(8)))
        True
        """
        shape = tuple(shape)
        d = int(np.prod(shape))
        return self.forward(np.eye(d).reshape((d,) + shape)).reshape(d, d).T

    def transform(self, input_shape: Sequence[int]):
        """This wavelet as a :class:`swiftattr.Transform` (matrix W, inverse Wᵀ) for :func:`swiftattr.trim`.
        """
        from .trim import Transform

        w = self.matrix(input_shape)
        return Transform(w.astype(np.float32), inverse=w.T.astype(np.float32), input_shape=input_shape)

    def scaling_and_wavelet(self, iterations: int = 8):
        """(t, φ, ψ): the scaling and wavelet functions sampled at t = k/2^iterations on [0, L − 1].

        By the cascade (subdivision) algorithm: c ← √2 (c↑2 ∗ h₀) from c = [1] converges to φ(k/2^j) ≈ c[k]; ψ is the
        same iteration started with one step of h₁ (ψ = √2 Σ h₁[k] φ(2t − k)). For plotting.

        Examples
        --------
        >>> t, phi, psi = DWT1d("db4").scaling_and_wavelet(iterations=10)
        >>> round(float(phi.sum() * (t[1] - t[0])), 6), round(float(psi.sum() * (t[1] - t[0])), 6)
        (1.0, 0.0)
        """
        it = as_int(iterations, "iterations", 1, 16)
        h0, h1 = self.filter, self.highpass

        def cascade(first):
            c = np.sqrt(2.0) * first
            for _ in range(it - 1):
                c = np.sqrt(2.0) * np.convolve(_upsample(c), h0)
            return c

        phi, psi = cascade(h0), cascade(h1)
        t = np.arange(phi.size) / 2.0**it
        return t, phi, psi

    def _band_sizes(self, shape) -> List[int]:
        raise NotImplementedError

    def bands(self, shape: Sequence[int]) -> List[slice]:
        """Slices of the flat coefficient vector of one channel of ``shape``: [a_J, d_J, ..., d_1] (1-D), or
        [LL_J, (LH, HL, HH)_J, ..., (LH, HL, HH)_1] grouped per level (2-D): J + 1 bands, as awave counts them."""
        sizes = self._band_sizes(tuple(shape))
        out, start = [], 0
        for s in sizes:
            out.append(slice(start, start + s))
            start += s
        return out

    def __repr__(self):
        return f"{type(self).__name__}(filter of {self.filter.size} taps, levels={self.levels})"


class DWT1d(_Wavelet):
    """The periodised 1-D wavelet transform along the last axis (see the module notes): pywt's
    ``wavedec(x, wave, mode="periodization", level=levels)`` concatenated as [a_J, d_J, ..., d_1].

    Parameters
    ----------
    wave : str or array_like, default "db5"
        "haar", "db1" … "db20", or the low-pass filter's taps.
    levels : int, default 3

    Examples
    --------
    >>> w = DWT1d("db4", levels=3)
    >>> x = np.random.default_rng(0).normal(size=(2, 64))
    >>> c = w.forward(x)
    >>> c.shape, bool(np.allclose(w.inverse(c), x)), [b.stop - b.start for b in w.bands((64,))]
    ((2, 64), True, [8, 8, 16, 32])
    """

    dims = 1

    def _analysis(self, x, h0):
        return _analysis_1d(x, h0, self.levels)

    def _analysis_tangents(self, x, h0):
        return _analysis_1d_tangents(x, None, h0, self.levels)

    def _synthesis(self, c, h0):
        return _synthesis_1d(c, h0, self.levels)

    def _band_sizes(self, shape):
        n = shape[-1]
        return [n >> self.levels] + [n >> j for j in range(self.levels, 0, -1)]


class DWT2d(_Wavelet):
    """The separable periodised 2-D wavelet transform over the last two axes (the same filter along rows and
    columns). The coefficients keep the image's shape: level by level the low-low block occupies the top-left
    corner (pywt's ``coeffs_to_array`` layout of ``wavedec2(..., mode="periodization")``).

    Examples
    --------
    >>> w = DWT2d("db2", levels=2)
    >>> img = np.random.default_rng(0).normal(size=(1, 3, 16, 16))
    >>> bool(np.allclose(w.inverse(w.forward(img)), img)), len(w.bands((16, 16)))
    (True, 3)
    """

    dims = 2

    def _analysis(self, x, h0):
        out = x.astype(np.result_type(x, h0), copy=True)
        h, w = x.shape[-2:]
        for _ in range(self.levels):
            block = out[..., :h, :w]
            rows = _analysis_1d(block, h0, 1)  # along the last axis: [low | high] columns
            cols = _analysis_1d(np.swapaxes(rows, -1, -2), h0, 1)
            out[..., :h, :w] = np.swapaxes(cols, -1, -2)
            h, w = h // 2, w // 2
        return out

    def _analysis_tangents(self, x, h0):
        out = x.astype(np.float64, copy=True)
        dout = np.zeros((h0.size,) + x.shape)
        h, w = x.shape[-2:]
        for _ in range(self.levels):
            rows, drows = _analysis_1d_tangents(out[..., :h, :w], dout[..., :h, :w], h0, 1)
            cols, dcols = _analysis_1d_tangents(np.swapaxes(rows, -1, -2), np.swapaxes(drows, -1, -2), h0, 1)
            out[..., :h, :w] = np.swapaxes(cols, -1, -2)
            dout[..., :h, :w] = np.swapaxes(dcols, -1, -2)
            h, w = h // 2, w // 2
        return out, dout

    def _synthesis(self, c, h0):
        out = c.astype(np.result_type(c, h0), copy=True)
        h, w = c.shape[-2] >> self.levels, c.shape[-1] >> self.levels
        for _ in range(self.levels):
            h, w = 2 * h, 2 * w
            block = out[..., :h, :w]
            cols = _synthesis_1d(np.swapaxes(block, -1, -2), h0, 1)
            out[..., :h, :w] = _synthesis_1d(np.swapaxes(cols, -1, -2), h0, 1)
        return out

    def _band_sizes(self, shape):
        h, w = shape[-2:]
        return [(h * w) >> (2 * self.levels)] + [3 * ((h * w) >> (2 * j)) for j in range(self.levels, 0, -1)]

    def bands(self, shape):
        """Masks are more natural than slices in the 2-D layout: a list of J + 1 boolean arrays of ``shape``'s
        last two axes, [LL_J, level J details, ..., level 1 details]."""
        h, w = tuple(shape)[-2:]
        out = []
        low = np.zeros((h, w), bool)
        low[: h >> self.levels, : w >> self.levels] = True
        out.append(low)
        for j in range(self.levels, 0, -1):
            m = np.zeros((h, w), bool)
            m[: h >> (j - 1), : w >> (j - 1)] = True
            m[: h >> j, : w >> j] = False
            out.append(m)
        return out


# ------------------------------------------------------------------ the loss and its gradient in h₀

_ATTRIBUTIONS = ("saliency", "input_x_gradient", "integrated_gradients")


def _constraints(h):
    """awave's wavelet conditions as a function of h₀ (real or complex: every term is a polynomial in h₀,
    so the complex step differentiates it): ½(Σh₀ − √2)², ½(Σh₁)², ½(‖h₀‖² − 1)², the conjugate-mirror
    condition ½Σ_k(|Ĥ(k)|² + |Ĥ(k + L/2)|² − 2)² and orthogonality to even shifts ½‖(h₀⋆h₀)↓2 − δ‖²."""
    n = h.size
    h1 = highpass(h)
    lsum = 0.5 * (h.sum() - np.sqrt(2.0)) ** 2
    hsum = 0.5 * h1.sum() ** 2
    norm = 0.5 * ((h * h).sum() - 1.0) ** 2
    omega = 2 * np.pi * np.outer(np.arange(n), np.arange(n)) / n
    power = (np.cos(omega) @ h) ** 2 + (np.sin(omega) @ h) ** 2  # |DFT(h)|², written analytically in h
    cmf = 0.5 * ((power[: n // 2] + power[n // 2:] - 2.0) ** 2).sum()
    lags = np.arange(-n, n + 1, 2)
    auto = np.array([(h[max(0, -l):n - max(0, l)] * h[max(0, l):n - max(0, -l)]).sum() for l in lags])
    conv = 0.5 * ((auto - (lags == 0)) ** 2).sum()
    return {"lsum": lsum, "hsum": hsum, "l2norm": norm, "cmf": cmf, "conv": conv}


def _condition_residuals(h):
    """The wavelet conditions as residuals that vanish together exactly for an orthogonal low-pass filter:
    Σh₀ − √2, Σh₁, ‖h₀‖² − 1, |Ĥ(k)|² + |Ĥ(k + L/2)|² − 2 (k < L/2), (h₀⋆h₀)(2m) − δ_m."""
    n = h.size
    omega = 2 * np.pi * np.outer(np.arange(n), np.arange(n)) / n
    power = (np.cos(omega) @ h) ** 2 + (np.sin(omega) @ h) ** 2
    lags = np.arange(-n, n + 1, 2)
    auto = np.array([(h[max(0, -l):n - max(0, l)] * h[max(0, l):n - max(0, -l)]).sum() for l in lags])
    return np.concatenate([[h.sum() - np.sqrt(2.0), highpass(h).sum(), (h * h).sum() - 1.0],
                           power[: n // 2] + power[n // 2:] - 2.0, auto - (lags == 0)])


def project_to_wavelet(h0, tol: float = 1e-13, max_iter: int = 100) -> np.ndarray:
    """The orthogonal low-pass filter nearest ``h0`` (Gauss–Newton with minimum-norm steps).

    Iterates h ← h − J⁺ r(h) on the wavelet conditions r (Σh₀ − √2, Σh₁, ‖h₀‖² − 1, the conjugate-mirror
    condition and orthogonality to even shifts; J by the complex step) until ‖r‖ < ``tol``. AWD's penalties hold
    the conditions only approximately; this makes a fitted filter an exact orthogonal wavelet (so the transform
    is orthogonal and reconstructs exactly) with the smallest change.

    Parameters
    ----------
    h0 : array_like
        An even number of finite taps.
    tol : float, default 1e-13
    max_iter : int, default 100

    Returns
    -------
    numpy.ndarray
        The projected filter.

    Examples
    --------
    >>> h = project_to_wavelet(daubechies(3) + 0.01)
    >>> round(float(h.sum()), 9), round(float(h @ h), 9)
    (1.414213562, 1.0)
    """
    h = _real(h0, "h0").ravel().copy()
    eye = np.eye(h.size)
    for _ in range(as_int(max_iter, "max_iter", 1, 10**6)):
        r = _condition_residuals(h)
        if np.linalg.norm(r) < tol:
            break
        jac = np.stack([_condition_residuals(h + 1j * _STEP * eye[k]).imag / _STEP for k in range(h.size)], axis=1)
        h = h - np.linalg.lstsq(jac, r, rcond=None)[0]
    return h


class _Linearised:
    """W(h₀) as a matrix over one channel's signal (d × d, d the signal's size), and the filter gradient of
    ⟨Ḡ, W(h₀)⟩ for a cotangent Ḡ.

    The loss's gradient never forms the batch's tap derivatives: every term is linear in dW, so it is
    ⟨Ḡ, dW⟩ for one d × d cotangent Ḡ accumulated from the batch by GEMMs (X the rows, C = X Wᵀ the
    coefficients, X̃ = C W the reconstruction): ⟨A, dC⟩ = ⟨Aᵀ X, dW⟩ and ⟨A, dX̃⟩ = ⟨W Aᵀ X + Cᵀ A, dW⟩.

    1-D: W is a product of level matrices, linear in h₀: its band rows are A0_J···A0_1 (the approximation) and
    A1_j A0_{j−1}···A0_1 (the details of level j), with A0[m, (2m + t + 1 − L/2) mod n] = h₀[t] and A1 the same
    with h₁. So ∂⟨Ḡ, W⟩/∂h_k is, over every factor X_i of every band, ⟨Lᵢᵀ Ḡ_band Rᵢᵀ, ∂X_i/∂h_k⟩ (Lᵢ, Rᵢ the
    products to its left and right) — a sum of the middle matrix over tap k's pattern: reverse mode, O(d²)
    GEMM work per level, no per-tap matrices. 2-D: W and its tap derivatives from the transform applied to
    the identity with tangents (:func:`_analysis_1d_tangents`), O(L d²) memory."""

    def __init__(self, transform: _Wavelet, h: np.ndarray, signal_shape):
        d = int(np.prod(signal_shape))
        self.d = d
        self.h = h
        self.dw = None
        if isinstance(transform, DWT1d):
            self.levels = transform.levels
            self.w = self._levels_1d(d)
        else:
            eye = np.eye(d).reshape((d,) + tuple(signal_shape))
            cols, dcols = transform._analysis_tangents(eye, h)  # row j: W e_j and its tap derivatives
            self.w = cols.reshape(d, d).T.copy()
            self.dw = np.ascontiguousarray(np.swapaxes(dcols.reshape(h.size, d, d), 1, 2))  # (taps, d, d)

    def _levels_1d(self, n: int) -> np.ndarray:
        """Builds the level matrices A0_j, A1_j and W from them."""
        h0, h1 = self.h, highpass(self.h)
        taps = h0.size
        self.a0, self.a1, self.idx = [], [], []
        size = n
        for _ in range(self.levels):
            idx = _level_indices(size, taps)
            rows = np.repeat(np.arange(size // 2), taps)
            a0 = np.zeros((size // 2, size))
            a1 = np.zeros((size // 2, size))
            np.add.at(a0, (rows, idx.ravel()), np.tile(h0, size // 2))
            np.add.at(a1, (rows, idx.ravel()), np.tile(h1, size // 2))
            self.a0.append(a0)
            self.a1.append(a1)
            self.idx.append(idx)
            size //= 2
        self.prefix = [np.eye(n)]  # prefix[j] = A0_j ··· A0_1 (A0 of levels 1..j), prefix[0] = I
        for a0 in self.a0:
            self.prefix.append(a0 @ self.prefix[-1])
        blocks = [self.prefix[-1]] + [self.a1[j] @ self.prefix[j] for j in range(self.levels - 1, -1, -1)]
        return np.concatenate(blocks, axis=0)

    def analysis(self, v):
        """W v for rows v (·, d)."""
        return v @ self.w.T

    def synthesis(self, c):
        """Wᵀ c for rows c (·, d)."""
        return c @ self.w

    def tap_gradient(self, cotangent):
        """(⟨Ḡ, ∂W/∂h_k⟩)_k for a d × d cotangent Ḡ."""
        if self.dw is not None:
            return np.tensordot(self.dw, cotangent, axes=([1, 2], [0, 1]))
        taps = self.h.size
        flip = (-1.0) ** np.arange(taps)  # ∂h₁[t]/∂h₀[L−1−t] = (−1)^t
        grad = np.zeros(taps)
        J = self.levels

        def pattern(m, j):  # Σ_rows M[r, idx[r, t]] for every tap t of level j's matrices
            idx = self.idx[j]
            return m[np.arange(idx.shape[0])[:, None], idx].sum(0)

        # band rows of W, in the concatenation order [a_J, d_J, ..., d_1]: (cotangent rows, last factor, its level)
        start = 0
        bands = []
        size = self.d >> J
        bands.append((slice(start, start + size), "a", J - 1))
        start += size
        for j in range(J - 1, -1, -1):
            size = self.d >> (j + 1)
            bands.append((slice(start, start + size), "d", j))
            start += size
        for rows, kind, top in bands:
            # ⟨g, X_top A0_{top−1} ··· A0_0⟩ with X_top = A0 or A1 of level `top`; for factor j, with L the
            # factors above it and R = prefix[j] those below, ⟨g, L X_j R⟩ = ⟨Lᵀ g Rᵀ, X_j⟩
            lt_g = cotangent[rows]  # Lᵀ g, from the top (L = I)
            for j in range(top, -1, -1):
                mid = lt_g @ self.prefix[j].T
                if j == top and kind == "d":
                    grad += flip[::-1] * pattern(mid, j)[::-1]  # through h₁: tap k gets (−1)^(L−1−k)·pattern[L−1−k]
                    lt_g = self.a1[j].T @ lt_g
                else:
                    grad += pattern(mid, j)
                    lt_g = self.a0[j].T @ lt_g
        return grad


def _path(xr, alphas, input_shape):
    """The IG path points α·x̃ (the path in coefficient space from 0 to c), step-major: (M·B, *input_shape)."""
    B = xr.shape[0]
    pts = alphas[:, None, None] * xr.reshape(B, -1)[None]
    return pts.reshape((-1,) + tuple(input_shape)).astype(np.float32)


def _gauss_legendre(n: int):
    t, w = np.polynomial.legendre.leggauss(n)
    return (t + 1) / 2, w / 2


def wavelet_loss(transform: _Wavelet, net, x, target=None, attribution: str = "saliency", lam_wave: float = 0.0,
                 lam_attr: float = 0.0, n_steps: int = 16, constraint_weights: Optional[dict] = None):
    """awave's loss for one batch and its exact gradient with respect to the filter h₀.

    See the module notes for the terms. The gradient is ⟨Ḡ, ∂W/∂h_k⟩ for one d × d cotangent Ḡ on the
    transform's matrix (accumulated by GEMMs over the batch), plus the conditions' derivatives (complex step);
    the attribution term is differentiated through the network's gradient with exact Hessian–vector products.

    Parameters
    ----------
    transform : DWT1d or DWT2d
        Its ``filter`` is the point of evaluation.
    net : Network or None
        The trained network (needed only when ``lam_attr`` > 0).
    x : array_like
        (B, *net.input_shape) batch (or (B, ..., N) signals without a network).
    target : int or array of int, optional
        The output whose attributions are penalised.
    attribution : {"saliency", "input_x_gradient", "integrated_gradients"}
    lam_wave, lam_attr : float, default 0
        Weights of the coefficients' and the attributions' L1 terms.
    n_steps : int, default 16
        Gauss–Legendre nodes of Integrated Gradients.
    constraint_weights : dict, optional
        Multipliers of the five conditions ("lsum", "hsum", "l2norm", "cmf", "conv"; 1 by default).

    Returns
    -------
    (float, dict, numpy.ndarray)
        The total, the named terms, and the gradient (taps,).

    Examples
    --------
    >>> w = DWT1d("db3", levels=2)
    >>> x = np.random.default_rng(0).normal(size=(4, 32))
    >>> total, parts, grad = wavelet_loss(w, None, x, lam_wave=0.1)
    >>> grad.shape, parts["reconstruction"] < 1e-20
    ((6,), True)
    """
    from .attribution import saliency
    from .hessians import hessian_vector_product

    h = transform.filter
    xb = transform._check(x)
    B = xb.shape[0]
    bands = transform.levels + 1
    weights = {"lsum": 1.0, "hsum": 1.0, "l2norm": 1.0, "cmf": 1.0, "conv": 1.0}
    if constraint_weights:
        unknown = set(constraint_weights) - set(weights)
        if unknown:
            raise SwiftAttrError(f"constraint_weights: unknown terms {sorted(unknown)}; expected {sorted(weights)}")
        weights.update({k: as_float(v, f"constraint_weights[{k!r}]") for k, v in constraint_weights.items()})
    lam_wave, lam_attr = _nonnegative(lam_wave, "lam_wave"), _nonnegative(lam_attr, "lam_attr")
    _attribution(attribution)

    signal = xb.shape[xb.ndim - transform.dims:]
    lin = _Linearised(transform, h, signal)
    rows = xb.reshape(-1, lin.d)  # every channel of every example: one row per signal
    c = lin.analysis(rows)
    xr = lin.synthesis(c)
    cot = np.zeros((lin.d, lin.d))  # Ḡ: the loss's cotangent on W (see _Linearised)

    def through_reconstruction(a):  # ⟨A, dX̃⟩ as a cotangent on W
        return lin.w @ (a.T @ rows) + c.T @ a

    parts = {}
    grad = np.zeros(h.size)
    diff = rows - xr
    parts["reconstruction"] = float((diff ** 2).sum() / B)
    cot += through_reconstruction(-2.0 * diff / B)

    hk = h[None, :] + 1j * _STEP * np.eye(h.size)
    cons = [_constraints(hk[k]) for k in range(h.size)]
    for name, w in weights.items():
        parts[name] = float(cons[0][name].real)
        grad += w * np.array([cc[name].imag for cc in cons]) / _STEP

    if lam_wave:
        parts["l1_wave"] = float(np.abs(c).sum() / (bands * B))
        cot += (lam_wave / (bands * B)) * (np.sign(c).T @ rows)
    else:
        parts["l1_wave"] = 0.0

    parts["l1_attr"] = 0.0
    if lam_attr:
        net = network_for(net, xb[: 1].astype(np.float32))
        shape = (B,) + net.input_shape
        if xb.shape != shape:
            raise SwiftAttrError(f"inputs: expected shape {shape} (the network's input), got {xb.shape}", SA_ERR_SHAPE)
        xr32 = xr.reshape(shape).astype(np.float32)
        if attribution == "integrated_gradients":
            alphas, ws = _gauss_legendre(as_int(n_steps, "n_steps", 1, 10_000))
            points = _path(xr.reshape(shape), alphas, net.input_shape)
            g = saliency(net, points, target=_repeat_target(target, B, alphas.size), abs=False).astype(np.float64)
            g = (ws[:, None, None] * g.reshape(alphas.size, B, -1)).sum(0).reshape(shape)
        else:
            g = saliency(net, xr32, target=target, abs=False).astype(np.float64)
        g = g.reshape(-1, lin.d)
        wg = lin.analysis(g)
        mult = np.ones_like(c) if attribution == "saliency" else c
        a = mult * wg
        parts["l1_attr"] = float(np.abs(a).sum() / (bands * B))
        s = np.sign(a)
        # a = M ⊙ (G Wᵀ): the explicit W (⟨S⊙M, G dWᵀ⟩), the coefficients in M = C (⟨S⊙WG, dC⟩), and the
        # network's gradient moving with the reconstruction (⟨Q, dX̃⟩, Q = H Wᵀ(S ⊙ M)).
        attr = (s * mult).T @ g
        if attribution != "saliency":
            attr += (s * wg).T @ rows
        u = lin.synthesis(s * mult).reshape(shape)  # Wᵀ(s ⊙ c^p)
        if attribution == "integrated_gradients":
            u_rep = np.broadcast_to(u.reshape(1, B, -1), (alphas.size, B, u[0].size)).reshape(points.shape)
            hv = hessian_vector_product(net, points, u_rep.astype(np.float32), target=_repeat_target(target, B, alphas.size))
            q = ((ws * alphas)[:, None, None] * hv.astype(np.float64).reshape(alphas.size, B, -1)).sum(0)
        else:
            q = hessian_vector_product(net, xr32, u.astype(np.float32), target=target).astype(np.float64)
        attr += through_reconstruction(q.reshape(-1, lin.d))
        cot += (lam_attr / (bands * B)) * attr

    grad += lin.tap_gradient(cot)
    total = (parts["reconstruction"] + sum(weights[k] * parts[k] for k in weights) + lam_wave * parts["l1_wave"]
             + lam_attr * parts["l1_attr"])
    return total, parts, grad


def _attribution(attribution) -> str:
    return as_choice(attribution, {a: a for a in _ATTRIBUTIONS}, "attribution")


def _repeat_target(target, B: int, M: int):
    if target is None or np.ndim(target) == 0:
        return target
    t = np.asarray(target).ravel()
    return np.tile(t, M) if t.size == B else t


@dataclass
class AWDResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    transform : DWT1d or DWT2d
        The fitted transform (``forward``, ``inverse``, ``matrix``, ``transform`` for TRIM).
    filter : numpy.ndarray
        The fitted low-pass filter h₀.
    initial_filter : numpy.ndarray
    history : list of dict
        One record per epoch: the mean of every loss term.
    """

    transform: _Wavelet
    filter: np.ndarray
    initial_filter: np.ndarray
    history: List[dict] = field(default_factory=list)

    def scaling_and_wavelet(self, iterations: int = 8):
        return self.transform.scaling_and_wavelet(iterations)

    def plot(self, iterations: int = 8):
        """A Figure of the scaling function φ and wavelet ψ of the initial and the fitted filter, and the loss
        history (matplotlib; the backend is left alone and nothing is shown)."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11, 3.2), layout="constrained")
        axes = fig.subplots(1, 3)
        initial = type(self.transform)(self.initial_filter, self.transform.levels)
        for ax, which, title in ((axes[0], 1, "scaling function φ"), (axes[1], 2, "wavelet ψ")):
            for w, label, style in ((initial, "initial", dict(color="0.6", ls="--")),
                                    (self.transform, "fitted", dict(color="C0"))):
                curves = w.scaling_and_wavelet(iterations)
                ax.plot(curves[0], curves[which], label=label, **style)
            ax.set_title(title)
            ax.axhline(0, color="0.85", lw=0.8, zorder=0)
            ax.legend(frameon=False)
        if self.history:
            epochs = [r["epoch"] for r in self.history]
            for key in ("loss", "reconstruction", "l1_wave", "l1_attr"):
                vals = [r[key] for r in self.history]
                if any(v > 0 for v in vals):
                    axes[2].plot(epochs, vals, label=key)
            axes[2].set_yscale("log")
            top = max(max(r[k] for r in self.history) for k in ("loss",))
            axes[2].set_ylim(bottom=top * 1e-6)  # the exact reconstruction at db5 (1e-28) would flatten the rest
            axes[2].set_xlabel("epoch")
            axes[2].set_title("loss terms")
            axes[2].legend(frameon=False)
        return fig

    def constraint_residuals(self) -> dict:
        """How far the fitted filter is from each wavelet condition (the square root of twice each term)."""
        return {k: float(np.sqrt(2 * abs(v))) for k, v in _constraints(self.filter).items()}


def fit(net, X, wave="db5", levels: int = 3, attribution: str = "saliency", target=None, lam_wave: float = 0.0,
        lam_attr: float = 1.0, epochs: int = 20, batch_size: Optional[int] = None, lr: float = 1e-3, n_steps: int = 16,
        constraint_weights: Optional[dict] = None, seed: Optional[int] = 0, project: bool = True,
        callback=None) -> AWDResult:
    """Fits a wavelet to a trained network by adaptive wavelet distillation (Ha, Singh et al. 2021).

    Minimises awave's loss (module notes) over the low-pass filter with Adam (β = 0.9, 0.999) on mini-batches of
    ``batch_size`` (default: the whole set, as awave's ``fit(X=...)``) in a seeded order. Images (inputs with
    two spatial axes) use :class:`DWT2d`, signals :class:`DWT1d`.

    Parameters
    ----------
    net : Network or LazyNetwork
        The trained network; its input is the signal (or image) itself.
    X : array_like
        (N, *input_shape) inputs.
    wave : str or array_like, default "db5"
        The initial filter: "haar", "db1" … "db20", or taps.
    levels : int, default 3
    attribution : {"saliency", "input_x_gradient", "integrated_gradients"}, default "saliency"
    target : int or array of int, optional
    lam_wave : float, default 0
    lam_attr : float, default 1
    epochs : int, default 20
    batch_size : int, optional
    lr : float, default 1e-3
    n_steps : int, default 16
        Integrated Gradients' nodes.
    constraint_weights : dict, optional
        Multipliers of the five wavelet conditions.
    seed : int or None, default 0
    project : bool, default True
        Move the fitted filter to the nearest exact orthogonal wavelet (:func:`project_to_wavelet`; a
        swiftattr addition). False returns awave's filter as trained.
    callback : callable, optional
        ``callback(epoch, record)`` after every epoch; returning True stops.

    Returns
    -------
    AWDResult

    Raises
    ------
    SwiftAttrError
        Bad shapes or options, or a non-finite loss (naming the epoch).

    Examples
    --------
    >>> import swiftattr as sa
    >>> rng = np.random.default_rng(0)
    >>> net = sa.Sequential([sa.Linear(rng.normal(size=(4, 16)) / 4, np.zeros(4)), sa.Tanh(),
    ...                      sa.Linear(rng.normal(size=(1, 4)), np.zeros(1))])
    >>> r = fit(net, rng.normal(size=(32, 16)), wave="db2", levels=2, epochs=3, lr=1e-2)
    >>> len(r.history), max(r.constraint_residuals().values()) < 1e-10
    (3, True)
    """
    from .attribution import _seed

    x = _real(X, "X")
    if x.ndim < 2:
        raise SwiftAttrError(f"X: expected a batch (N, *input_shape), got shape {x.shape}", SA_ERR_SHAPE)
    if x.shape[0] == 0:
        raise SwiftAttrError("X: the batch is empty")
    _attribution(attribution)
    _nonnegative(lam_wave, "lam_wave")
    _nonnegative(lam_attr, "lam_attr")
    if target is not None and np.ndim(target) > 0 and np.shape(target) != (x.shape[0],):
        raise SwiftAttrError(f"target: expected one class index or one per example of X ({x.shape[0]}), got shape "
                             f"{np.shape(target)}", SA_ERR_SHAPE)
    plan = network_for(net, x[:1].astype(np.float32))
    cls = DWT2d if len(plan.input_shape) >= 2 and plan.input_shape[-1] > 1 and plan.input_shape[-2] > 1 else DWT1d
    transform = cls(wave, levels)
    transform._check(x, "X")
    epochs = as_int(epochs, "epochs", 1, 10**7)
    batch_size = x.shape[0] if batch_size is None else as_int(batch_size, "batch_size", 1, 10**9)
    lr = as_float(lr, "lr")
    if not (lr > 0 and np.isfinite(lr)):
        raise SwiftAttrError(f"lr must be positive and finite (got {lr!r})")
    rng = np.random.default_rng(_seed(seed))
    h = transform.filter.copy()
    initial = h.copy()
    m = np.zeros_like(h)
    v = np.zeros_like(h)
    b1, b2, eps = 0.9, 0.999, 1e-8
    step = 0
    history = []
    for epoch in range(1, epochs + 1):
        order = rng.permutation(x.shape[0])
        sums, count = {}, 0
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            transform.filter = h
            tb = None if target is None or np.ndim(target) == 0 else np.asarray(target)[idx]
            total, parts, g = wavelet_loss(transform, plan, x[idx], target if tb is None else tb, attribution, lam_wave,
                                           lam_attr, n_steps, constraint_weights)
            if not np.isfinite(total) or not np.isfinite(g).all():
                raise SwiftAttrError(f"awd.fit: the loss became {total} at epoch {epoch}; lower lr")
            step += 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            h = h - lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + eps)
            for k, val in {"loss": total, **parts}.items():
                sums[k] = sums.get(k, 0.0) + val * idx.size
            count += idx.size
        record = {"epoch": epoch, **{k: s / count for k, s in sums.items()}}
        history.append(record)
        if callback is not None and callback(epoch, record):
            break
    if project:
        h = project_to_wavelet(h)
    transform.filter = h
    return AWDResult(transform=transform, filter=h.copy(), initial_filter=initial, history=history)


def attributions(transform: _Wavelet, net, X, target=None, attribution: str = "saliency", n_steps: int = 16):
    """The TRIM attributions of ``net`` at the reconstruction x̃ = Wᵀ W x with respect to the
    coefficients c = W x: saliency W∇f(x̃), input×gradient c ⊙ W∇f(x̃), or Integrated Gradients from zero
    (``n_steps`` Gauss–Legendre nodes). Shape of ``X`` (coefficient layout of :meth:`DWT1d.bands`).
    """
    from .attribution import saliency

    x = transform._check(X, "X")
    _attribution(attribution)
    h = transform.filter
    c = transform._analysis(x, h)
    xr = transform._synthesis(c, h)
    plan = network_for(net, x[:1].astype(np.float32))
    if attribution == "integrated_gradients":
        alphas, ws = _gauss_legendre(as_int(n_steps, "n_steps", 1, 10_000))
        B = x.shape[0]
        points = _path(xr, alphas, plan.input_shape)
        g = saliency(plan, points, target=_repeat_target(target, B, alphas.size), abs=False).astype(np.float64)
        g = (ws[:, None, None] * g.reshape(alphas.size, B, -1)).sum(0).reshape(x.shape)
    else:
        g = saliency(plan, xr.astype(np.float32), target=target, abs=False).astype(np.float64)
    wg = transform._analysis(g, h)
    return wg if attribution == "saliency" else c * wg


def distill(transform: _Wavelet, net, X, y, k: int = 6, model: str = "linear", attribution: str = "saliency",
            target=None, X_test=None, y_test=None, n_steps: int = 16) -> dict:
    """Distils ``net`` into a simple model on the ``k`` most attributed wavelet coefficients (AWD's
    interpretable model).

    Parameters
    ----------
    transform : DWT1d or DWT2d
    net : Network
    X, y : array_like
        Inputs (N, *input_shape) and labels (regression values, or class indices for "logistic").
    k : int, default 6
    model : {"linear", "lasso", "logistic"}, default "linear"
    attribution : str, default "saliency"
    target : int, optional
        The network output compared with ``y`` (regression).
    X_test, y_test : array_like, optional
        Where the scores are computed (``X``, ``y`` when absent).

    Returns
    -------
    dict
        "indices" (k,), "importance" (mean |attribution| of every coefficient), "model" (the fitted
        scikit-learn estimator), "score" (R² or accuracy) and "network_score" (the network's own).
    """
    from .attribution import _network

    kk = as_int(k, "k", 1, 10**9)
    model = as_choice(model, {"linear": "linear", "lasso": "lasso", "logistic": "logistic"}, "model")
    out_index = 0 if target is None else as_int(target, "target")  # one output is compared with y
    x = transform._check(X, "X")
    y = _one_per_example(y, x.shape[0], "y", "X")
    xt = x if X_test is None else transform._check(X_test, "X_test")
    yt = y if y_test is None else _one_per_example(y_test, xt.shape[0], "y_test", "X_test")
    a = attributions(transform, net, x, target, attribution, n_steps)
    importance = np.abs(a).reshape(x.shape[0], -1).mean(0)
    if kk > importance.size:
        raise SwiftAttrError(f"k = {kk} exceeds the {importance.size} coefficients", SA_ERR_INVALID_ARGUMENT)
    top = np.argsort(-importance, kind="stable")[:kk]
    feats = transform.forward(x).reshape(x.shape[0], -1)[:, top]
    ft = transform.forward(xt).reshape(xt.shape[0], -1)[:, top]
    plan, xt32 = _network(net, xt.astype(np.float32))
    out = plan.forward(xt32).reshape(xt.shape[0], -1)
    if model == "linear":
        from sklearn.linear_model import LinearRegression

        est = LinearRegression().fit(feats, np.asarray(y, dtype=np.float64))
        score = est.score(ft, yt)
        pred = out[:, out_index]
        ss = ((yt - yt.mean()) ** 2).sum()
        network_score = 1 - ((yt - pred) ** 2).sum() / ss if ss > 0 else float("nan")
    else:
        if model == "lasso":
            from sklearn.linear_model import LassoCV

            est = LassoCV(cv=3).fit(feats, np.asarray(y, dtype=np.float64))
            score = est.score(ft, yt)
            pred = out[:, out_index]
            ss = ((yt - yt.mean()) ** 2).sum()
            network_score = 1 - ((yt - pred) ** 2).sum() / ss if ss > 0 else float("nan")
        else:
            from sklearn.linear_model import LogisticRegression

            est = LogisticRegression(max_iter=2000).fit(feats, np.asarray(y))
            score = est.score(ft, yt)
            network_score = float((out.argmax(1) == yt).mean())
    return {"indices": top, "importance": importance, "model": est, "score": float(score),
            "network_score": float(network_score)}
