"""Agglomerative Contextual Decomposition (Singh, Murdoch, Yu 2019): a hierarchy of interacting groups of
positions of a sequence (1-D) or of blocks of pixels (2-D), built as the authors' ``acd`` package builds it
(agg_1d.agglomerate; agg_2d.agglomerate and agglomerate_final), with every candidate group of one step
scored in one batched call. Groups are scored by Contextual Decomposition of a Network at one example, or
by any batched scorer you pass (a callable). The result is plain data (see :func:`acd`); plot it with
``sa.plot.acd_text`` and ``sa.plot.acd_image``.
"""
from __future__ import annotations

import ctypes

import numpy as np

from . import _ffi
from ._args import INT64_MAX, SA_ERR_SHAPE, as_choice, as_f32, as_float, as_int, as_shape
from ._ffi import SwiftAttrError, check, fptr, lib
from .model import LazyNetwork, Network, network_for
from ._progress import long_call


@long_call
def acd(model, x=None, target=None, *, percentile_include: float = 99.5, sweep_dim: int = 1, num_iters=None,
        score_rule: str = "auto", shape=None, channels: int = 1):
    """The ACD hierarchy of one example (Singh, Murdoch, Yu 2019, "Hierarchical interpretations for neural
    network predictions").

    Unit blocks are scored alone; at each iteration the blocks bordering a component are rescored by the gain
    of adding them to it (every candidate of the step in one batched call), the candidates whose score reaches
    the ``percentile_include`` percentile are selected, and the connected selected blocks form the next
    level's components, as acd's agg_1d.agglomerate and agg_2d.agglomerate build it; in 2-D the remaining
    components are then merged greedily by the gain s(c1 ∪ c2) − max(s1, s2) (agglomerate_final).

    Parameters
    ----------
    model : Network, LazyNetwork or callable
        A Network, whose groups are scored by Contextual Decomposition at ``x``: the relevant logit of class
        ``target``, minus the other class's for a two-class model (see ``score_rule``). An input of shape [L]
        or [C, L] gives the 1-D hierarchy over its L positions, [C, H, W] the 2-D one over its pixels (a
        position's or pixel's mask covers all its channels). Or a callable ``scorer(masks) -> scores``:
        ``masks`` is an (m, mask_size) float32 array of 0/1 masks (mask_size = channels × L or
        channels × H × W, channel-major), it returns m scores; then ``shape`` is required and ``x``/``target``
        are unused.
    x : array_like, shape input_shape or (1, *input_shape)
        The example to explain (with a Network).
    target : int, optional
        The class scored (required unless the network has one output).
    percentile_include : float, default 99.5
        The percentile of the candidates' scores (1-D: of their absolute values) at or above which they join
        (acd's examples use 99.5).
    sweep_dim : int, default 1
        Positions (1-D) or pixels per side (2-D) of a unit block.
    num_iters : int, optional
        The largest number of iterations (None: until one component covers the sequence, or every block is
        selected).
    score_rule : {"auto", "target", "target_minus_other"}, default "auto"
        acd subtracts the other class's score for text and not for images ("auto" does the same): pass
        "target" to reproduce its 2-D scores of a two-class model.
    shape : tuple of int, optional
        With a scorer: (L,) for a sequence or (H, W) for an image.
    channels : int, default 1
        With a scorer: the channels each mask covers.

    Returns
    -------
    dict
        - ``kind``: "1d" or "2d"; ``shape``: (L,) or (H, W); ``block_size``;
        - ``levels``: a list, finest first, each a dict with ``labels`` (an int array of ``shape``: the
          component of every position or pixel, 0 for none), ``components`` (their labels, ascending),
          ``indices`` (for each component, the flat indices of its positions or pixels) and ``scores`` (each
          component's score);
        - ``iteration_levels``: how many levels come from the iterations; the rest (2-D) from the final
          merges;
        - ``merges`` (2-D): the final greedy merges in order, each (kept, absorbed, gain) where gain is
          s(c1 ∪ c2) − max(s1, s2); merge k produces level ``iteration_levels + k``;
        - ``unit_scores``: the score of each unit block alone (an array of the block grid's shape);
        - ``full_score``: the score of the whole input.

    Raises
    ------
    SwiftAttrError
        If ``x`` is missing or not one example of the input shape (SA_ERR_SHAPE), ``target`` is missing for a
        network with several outputs or out of range, ``model`` is neither a Network nor callable, ``shape``
        is missing or not (L,) / (H, W) with a scorer, a scorer returns the wrong number of scores, or an
        argument is out of its range. An exception the scorer raises is re-raised.

    Examples
    --------
    >>> import numpy as np, swiftattr as sa
    >>> w = np.array([0, 0, 1, 3, 3, 0, 0, 0], dtype=np.float32)     # positions 3 and 4 matter together
    >>> h = sa.acd(lambda masks: masks @ w, shape=(8,), percentile_include=90)
    >>> h["kind"], len(h["levels"]) >= 1, h["full_score"]
    ('1d', True, 7.0)
    >>> h["unit_scores"].tolist()
    [0.0, 0.0, 1.0, 3.0, 3.0, 0.0, 0.0, 0.0]
    """
    pct = as_float(percentile_include, "percentile_include")
    block = as_int(sweep_dim, "sweep_dim", 1, INT64_MAX)
    iters = 0 if num_iters is None else as_int(num_iters, "num_iters", 1, INT64_MAX)
    if isinstance(model, (Network, LazyNetwork)):
        return _acd_model(model, x, target, pct, block, iters, as_choice(score_rule, _ffi.ACD_SCORE_RULES, "score_rule"))
    if not callable(model):
        raise SwiftAttrError(f"model: expected a swiftattr Network or a callable scorer, got {type(model).__name__}")
    if shape is None:
        raise SwiftAttrError("shape: required with a scorer: (L,) for a sequence or (H, W) for an image")
    dims = as_shape(shape, "shape")
    if len(dims) not in (1, 2):
        raise SwiftAttrError(f"shape: expected (L,) or (H, W), got {dims}", SA_ERR_SHAPE)
    ch = as_int(channels, "channels", 1, INT64_MAX)
    return _acd_scored(model, dims, ch, pct, block, iters)


def _capacity(dims, block):
    d = np.asarray(dims, dtype=np.int64)
    units, levels = ctypes.c_int64(), ctypes.c_int64()
    check(lib.sa_acd_capacity(len(dims), d.ctypes.data_as(_ffi.i64p), block, ctypes.byref(units), ctypes.byref(levels)))
    return units.value, levels.value


class _Buffers:
    """The caller-allocated outputs of one sa_acd_* call."""

    def __init__(self, dims, block):
        self.units, self.max_levels = _capacity(dims, block)
        u = self.units
        self.labels = np.zeros((self.max_levels, u), dtype=np.int32)
        self.scores = np.zeros((self.max_levels, u), dtype=np.float32)
        self.unit_scores = np.zeros(u, dtype=np.float32)
        self.full_score = ctypes.c_float()
        self.merges = np.zeros((max(u - 1, 1), 2), dtype=np.int32)
        self.gains = np.zeros(max(u - 1, 1), dtype=np.float32)
        self.n_levels = ctypes.c_int64()
        self.n_iteration_levels = ctypes.c_int64()

    def head(self):
        return (self.labels.ctypes.data_as(_ffi.i32p), fptr(self.scores), fptr(self.unit_scores),
                ctypes.byref(self.full_score))

    def tail_2d(self):
        return (self.merges.ctypes.data_as(_ffi.i32p), fptr(self.gains), ctypes.byref(self.n_levels),
                ctypes.byref(self.n_iteration_levels))

    def result(self, dims, block):
        """The plain-data hierarchy (see :func:`acd`), at the resolution of the input."""
        n = self.n_levels.value
        grid = tuple(-(-d // block) for d in dims)
        # Units to positions or pixels: unit index of every position or pixel.
        if len(dims) == 1:
            unit_of = np.arange(dims[0]) // block
        else:
            rows, cols = np.meshgrid(np.arange(dims[0]) // block, np.arange(dims[1]) // block, indexing="ij")
            unit_of = rows * grid[1] + cols
        levels = []
        for t in range(n):
            labels = self.labels[t][unit_of].astype(np.int64)
            flat = labels.ravel()
            order = np.argsort(flat, kind="stable")  # positions grouped by label, ascending within each
            present, counts = np.unique(flat[order], return_counts=True)
            groups = np.split(order, np.cumsum(counts)[:-1])
            if present.size and present[0] == 0:
                present, groups = present[1:], groups[1:]
            comps = present.tolist()
            levels.append({"labels": labels, "components": comps, "indices": groups,
                           "scores": self.scores[t, present - 1].astype(np.float64).tolist()})
        iteration = n if len(dims) == 1 else self.n_iteration_levels.value
        merges = [(int(self.merges[k, 0]), int(self.merges[k, 1]), float(self.gains[k])) for k in range(n - iteration)]
        return {"kind": f"{len(dims)}d", "shape": tuple(dims), "block_size": block, "levels": levels,
                "iteration_levels": iteration, "merges": merges,
                "unit_scores": self.unit_scores.reshape(grid).astype(np.float64),
                "full_score": float(self.full_score.value)}


def _acd_model(model, x, target, pct, block, iters, rule):
    if x is None:
        raise SwiftAttrError("x: the example to explain is required with a Network")
    arr = as_f32(x, "x")
    net = network_for(model, arr[None])
    if arr.shape == (1,) + net.input_shape:
        arr = arr[0]
    if arr.shape != net.input_shape:
        raise SwiftAttrError(f"x: expected one example of shape {net.input_shape}, got {arr.shape}", SA_ERR_SHAPE)
    arr = np.ascontiguousarray(arr)
    if target is None:
        if net.output_size != 1:
            raise SwiftAttrError(f"target is required for a model with {net.output_size} outputs")
        target = 0
    t = as_int(target, "target")
    shape = net.input_shape
    if len(shape) == 3:
        dims = shape[1:]
        out = _Buffers(dims, block)
        check(lib.sa_acd_2d(net._handle, fptr(arr), t, rule, pct, block, iters, *out.head(), *out.tail_2d()))
    else:
        dims = shape[-1:]
        out = _Buffers(dims, block)
        check(lib.sa_acd_1d(net._handle, fptr(arr), t, rule, pct, block, iters, *out.head(), ctypes.byref(out.n_levels)))
    return out.result(dims, block)


def _acd_scored(scorer, dims, channels, pct, block, iters):
    failures = []

    def call(_context, masks_p, m, p, scores_p):
        try:
            masks = np.ctypeslib.as_array(masks_p, shape=(m, p)).copy()
            s = np.asarray(scorer(masks), dtype=np.float32).reshape(-1) if m else np.zeros(0, np.float32)
            if s.shape != (m,):
                raise SwiftAttrError(f"scorer: expected {m} scores for {m} masks, got {s.size}", SA_ERR_SHAPE)
            np.ctypeslib.as_array(scores_p, shape=(m,))[:] = s
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised after the C call returns
            failures.append(e)
            return 1

    callback = _ffi.group_scorer_t(call)
    out = _Buffers(dims, block)
    if len(dims) == 1:
        status = lib.sa_acd_1d_scored(callback, None, dims[0], channels, pct, block, iters, *out.head(),
                                      ctypes.byref(out.n_levels))
    else:
        status = lib.sa_acd_2d_scored(callback, None, dims[0], dims[1], channels, pct, block, iters, *out.head(),
                                      *out.tail_2d())
    if failures:
        raise failures[0]
    check(status)
    return out.result(dims, block)
