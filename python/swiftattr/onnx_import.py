"""``from_onnx``: an ONNX model (from tf2onnx, torch.onnx, skl2onnx, jax2onnx, ...) as a swiftattr graph network.

The ONNX graph is parsed with the ``onnx`` package (an optional dependency, ``pip install "swiftattr[onnx]"``)
and rebuilt node by node with :class:`swiftattr.Graph`. Weights come from initializers and Constant nodes;
every supported op maps to one swiftattr layer, an alias (Identity, Dropout, a Flatten of a value that is
already flat) or a fusion (MatMul followed by the Add of a constant vector is one Linear layer). Whatever
cannot be represented exactly raises :class:`SwiftAttrError` naming the op type and the node."""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence

import numpy as np

from . import model as m
from ._args import SA_ERR_SHAPE, as_shape
from ._ffi import SwiftAttrError

SUPPORTED_OPS = ("Gemm", "MatMul", "Conv", "Relu", "LeakyRelu", "Elu", "Softplus", "Sigmoid", "Tanh", "Softmax",
                 "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape", "Add",
                 "Concat", "Dropout", "Identity", "Constant", "Cast (to float32)",
                 "Shape, Gather, Unsqueeze and Concat computing a Reshape's (N, -1)")

_POOLED = ("it reads a GlobalAveragePool output (held flat, as (C,)) where a spatial value is needed; only Flatten, "
           "Reshape, elementwise ops, BatchNormalization, Add and Concat of such outputs are supported")
_BATCH = "N"  # the batch size in a shape computed by Shape/Gather/Unsqueeze/Concat (dynamic-batch exports)

_ACTIVATIONS = {
    "Relu": lambda a: m.ReLU(),
    "LeakyRelu": lambda a: m.LeakyReLU(a.get("alpha", 0.01)),
    "Elu": lambda a: m.ELU(a.get("alpha", 1.0)),
    "Softplus": lambda a: m.Softplus(1.0),
    "Sigmoid": lambda a: m.Sigmoid(),
    "Tanh": lambda a: m.Tanh(),
}


def _import_onnx():
    """The ``onnx`` module, imported only when a conversion needs it."""
    try:
        import onnx
        import onnx.numpy_helper  # noqa: F401  (a submodule: imported explicitly)
    except ImportError as e:
        raise SwiftAttrError('from_onnx needs the onnx package: pip install onnx (or pip install "swiftattr[onnx]")'
                             f" ({e})") from None
    return onnx


def _load(onnx, model):
    """A ModelProto from a path, the bytes of a model file, or a ModelProto."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_model_from_string(bytes(model))
        except Exception as e:  # protobuf's DecodeError and friends
            raise SwiftAttrError(f"model: the bytes are not an ONNX model ({type(e).__name__}: {e})") from None
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise SwiftAttrError(f"model: no such file: {path!r}")
        try:
            return onnx.load(path)
        except Exception as e:
            raise SwiftAttrError(f"model: {path!r} is not an ONNX model ({type(e).__name__}: {e})") from None
    raise SwiftAttrError(f"model: expected a path, the bytes of an ONNX file or an onnx.ModelProto, got {type(model).__name__}")


class _Value:
    """A computed value: its number in the Graph, its ONNX per-example shape, and its swiftattr per-example
    shape (they differ only after GlobalAveragePool, whose (C, 1, 1) is swiftattr's flat (C,))."""

    __slots__ = ("index", "shape", "sa_shape")

    def __init__(self, index: int, shape: tuple, sa_shape: Optional[tuple] = None):
        self.index, self.shape = index, tuple(shape)
        self.sa_shape = self.shape if sa_shape is None else tuple(sa_shape)


def _window_output(size: int, k: int, s: int, p: int, d: int, ceil: bool = False) -> int:
    span = d * (k - 1) + 1
    q = (size + 2 * p - span) / s
    return (math.ceil(q) if ceil else math.floor(q)) + 1


class _Importer:
    def __init__(self, onnx, proto, input_shape, output):
        self.onnx = onnx
        self.graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.consts = {t.name: self._array(t) for t in self.graph.initializer}
        self.values = {}
        self.origin = []  # the ONNX node of each Graph node, to name it in the errors of the C checks
        self.softmax = []  # Softmax nodes, each of which must give the graph output
        self.shapes = {}  # name -> a shape computed from a value's Shape: a list of ints and _BATCH
        self.done = set()  # nodes folded into an earlier one (the Add of a MatMul's bias)
        self.nodes = list(self.graph.node)
        self.consumers = {}
        for n in self.nodes:
            for name in n.input:
                if name:
                    self.consumers.setdefault(name, []).append(n)
        self.output = self._output_name(output)
        self.input_name, self.batch, shape = self._input(input_shape)
        self.g = m.Graph(shape)
        self.values[self.input_name] = _Value(0, shape)

    # -- the graph's interface -----------------------------------------------------------------------
    def _output_name(self, output) -> str:
        names = [o.name for o in self.graph.output]
        if output is not None:
            if output not in names:
                raise SwiftAttrError(f"output: {output!r} is not an output of the graph (its outputs: {names})")
            return output
        if len(names) != 1:
            raise SwiftAttrError(f"from_onnx: the graph has {len(names)} outputs {names}; choose one with output=")
        return names[0]

    def _input(self, override):
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise SwiftAttrError(f"from_onnx: the graph has {len(inputs)} inputs ({[i.name for i in inputs]}); one is supported")
        inp = inputs[0]
        tt = inp.type.tensor_type
        if tt.elem_type != self.onnx.TensorProto.FLOAT:
            raise SwiftAttrError(f"from_onnx: input '{inp.name}' has element type "
                                 f"{self.onnx.TensorProto.DataType.Name(tt.elem_type)}; swiftattr networks take float32")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim] \
            if tt.HasField("shape") else None
        if override is not None:
            shape = as_shape(override, "input_shape")
            if dims is not None:
                if len(dims) != len(shape) + 1:
                    raise SwiftAttrError(f"input_shape: {shape} has {len(shape)} dimensions, but input '{inp.name}' is "
                                         f"{len(dims)}-D (batch first), so it needs {len(dims) - 1}", SA_ERR_SHAPE)
                for k, (a, b) in enumerate(zip(dims[1:], shape)):
                    if a is not None and a != b:
                        raise SwiftAttrError(f"input_shape[{k}] = {b}, but input '{inp.name}' fixes it at {a}", SA_ERR_SHAPE)
            return inp.name, dims[0] if dims else None, tuple(shape)
        if dims is None or len(dims) < 2:
            raise SwiftAttrError(f"from_onnx: input '{inp.name}' has no batch-first shape in the model; pass input_shape= "
                                 "(the per-example shape, e.g. input_shape=(3, 32, 32))", SA_ERR_SHAPE)
        if any(d is None for d in dims[1:]):
            shown = ", ".join("?" if d is None else str(d) for d in dims)
            raise SwiftAttrError(f"from_onnx: input '{inp.name}' has shape (N, {shown.split(', ', 1)[1]}) with unknown sizes; "
                                 "pass input_shape= (the per-example shape, e.g. input_shape=(3, 32, 32))", SA_ERR_SHAPE)
        return inp.name, dims[0], tuple(dims[1:])

    def _array(self, tensor) -> np.ndarray:
        return self.onnx.numpy_helper.to_array(tensor)

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _label(node) -> str:
        return f"node '{node.name}'" if node.name else f"the node producing '{node.output[0]}'"

    def _unsupported(self, node, why: str) -> SwiftAttrError:
        return SwiftAttrError(f"from_onnx: {node.op_type} {self._label(node)} is not supported: {why}")

    def _attrs(self, node) -> dict:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def _value(self, node, k: int) -> _Value:
        name = node.input[k]
        if name in self.values:
            return self.values[name]
        if name in self.consts:
            raise self._unsupported(node, f"input {k} ('{name}') is a constant where a computed value is expected")
        raise self._unsupported(node, f"input {k} ('{name}') is not computed before it (the graph is not in topological order)")

    def _const(self, node, k: int, what: str) -> Optional[np.ndarray]:
        if k >= len(node.input) or not node.input[k]:
            return None
        name = node.input[k]
        if name not in self.consts:
            raise self._unsupported(node, f"its {what} (input {k}, '{name}') must be a constant (an initializer or a Constant node)")
        return self.consts[name]

    def _set(self, node, layer, inputs, shape, sa_shape=None) -> None:
        index = self.g.add(layer, inputs)
        self.origin.append(node)
        self.values[node.output[0]] = _Value(index, shape, sa_shape)

    def _alias(self, node, value: _Value) -> None:
        self.values[node.output[0]] = value

    def _only_first_output(self, node) -> None:
        for name in node.output[1:]:
            if name and (name in self.consumers or name == self.output):
                raise self._unsupported(node, f"its output '{name}' is used; only the first output is supported")

    def _needed(self) -> set:
        """Names of the nodes the graph output depends on (the rest, e.g. dead branches, are skipped)."""
        producer = {o: n for n in self.nodes for o in n.output if o}
        need, stack, seen = set(), [self.output], set()
        while stack:
            name = stack.pop()
            if name in seen or name not in producer:
                continue
            seen.add(name)
            n = producer[name]
            need.add(id(n))
            stack.extend(i for i in n.input if i)
        return need

    def _spatial(self, node, attrs: dict, x: _Value, kernel: Sequence[int], dilations: Sequence[int]) -> tuple:
        """(strides, symmetric pads) of a windowed op over x's spatial axes, or an error for asymmetric padding."""
        dims = len(kernel)
        strides = list(attrs.get("strides", [1] * dims))
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, k, s, d in zip(x.shape[1:], kernel, strides, dilations):
                total = max(0, (math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size)
                if total % 2:
                    raise self._unsupported(node, f"auto_pad={auto_pad} pads asymmetrically here (total {total}); "
                                                  "swiftattr pads both sides alike")
                pads.append(total // 2)
        elif auto_pad == "VALID":
            pads = [0] * dims
        elif auto_pad == "NOTSET":
            raw = list(attrs.get("pads", [0] * (2 * dims)))
            if raw[:dims] != raw[dims:]:
                raise self._unsupported(node, f"pads={raw} are asymmetric; swiftattr pads both sides alike")
            pads = raw[:dims]
        else:
            raise self._unsupported(node, f"auto_pad={auto_pad!r}")
        return strides, pads

    def _windowed_input(self, node, dims_ok=(1, 2)) -> _Value:
        x = self._value(node, 0)
        if x.shape != x.sa_shape:
            raise self._unsupported(node, _POOLED)
        if len(x.shape) - 1 not in dims_ok:
            raise self._unsupported(node, f"input of per-example shape {x.shape}; expected (C, L) or (C, H, W)")
        return x

    # -- the ops -----------------------------------------------------------------------------------------
    def _linear_bias(self, node, out: int):
        """The constant bias of the Add that alone reads this MatMul/Gemm's output, folded in; or None."""
        users = self.consumers.get(node.output[0], [])
        if node.output[0] == self.output or len(users) != 1 or users[0].op_type != "Add":
            return None
        add = users[0]
        other = [k for k, name in enumerate(add.input) if name != node.output[0]]
        if len(other) != 1 or add.input[other[0]] not in self.consts:
            return None
        c = self.consts[add.input[other[0]]]
        if c.ndim > 2 or c.size not in (1, out) or (c.ndim >= 1 and c.shape[-1] not in (1, out)):
            raise self._unsupported(add, f"adds a constant of shape {c.shape} to a MatMul/Gemm output of {out} features; "
                                         f"a bias must broadcast as ({out},)")
        self.done.add(id(add))
        return add, np.broadcast_to(c.astype(np.float32).reshape(-1), (out,))

    def _dense(self, node, x: _Value, w: np.ndarray, b: Optional[np.ndarray]) -> None:
        if x.sa_shape != x.shape:
            raise self._unsupported(node, _POOLED)
        if len(x.shape) != 1:
            raise self._unsupported(node, f"input of per-example shape {x.shape}; a {node.op_type} reads (N, features)")
        out = w.shape[0]
        fused = self._linear_bias(node, out)
        if fused is not None:
            add, extra = fused
            b = extra if b is None else b + extra
        self._set(node, m.Linear(w, b), x.index, (out,))
        if fused is not None:
            self._alias(fused[0], self.values[node.output[0]])

    def op_Gemm(self, node, a):
        if a.get("transA", 0):
            raise self._unsupported(node, "transA=1 (the batch would be on the second axis)")
        x = self._value(node, 0)
        bmat = self._const(node, 1, "B")
        if bmat.ndim != 2:
            raise self._unsupported(node, f"B of shape {bmat.shape}; expected a matrix")
        w = a.get("alpha", 1.0) * (bmat if a.get("transB", 0) else bmat.T)
        w = np.ascontiguousarray(w, dtype=np.float32)
        c = self._const(node, 2, "C")
        b = None
        if c is not None:
            out = w.shape[0]
            if c.ndim > 2 or c.size not in (1, out) or (c.ndim >= 1 and c.shape[-1] not in (1, out)):
                raise self._unsupported(node, f"C of shape {c.shape}; expected a bias that broadcasts as ({out},)")
            b = a.get("beta", 1.0) * np.broadcast_to(c.astype(np.float32).reshape(-1), (out,))
        self._dense(node, x, w, b)

    def op_MatMul(self, node, a):
        x = self._value(node, 0)
        bmat = self._const(node, 1, "second operand")
        if bmat.ndim != 2:
            raise self._unsupported(node, f"second operand of shape {bmat.shape}; expected a matrix")
        self._dense(node, x, np.ascontiguousarray(bmat.T, dtype=np.float32), None)

    def op_Conv(self, node, a):
        x = self._windowed_input(node)
        w = self._const(node, 1, "weight")
        b = self._const(node, 2, "bias")
        if a.get("group", 1) != 1:
            raise self._unsupported(node, f"group={a['group']} (grouped or depthwise convolution)")
        dims = w.ndim - 2
        if dims != len(x.shape) - 1:
            raise self._unsupported(node, f"weight of shape {w.shape} on per-example input {x.shape}")
        kernel = list(w.shape[2:])
        dil = list(a.get("dilations", [1] * dims))
        strides, pads = self._spatial(node, a, x, kernel, dil)
        cls = m.Conv1d if dims == 1 else m.Conv2d
        layer = cls(w.astype(np.float32), None if b is None else b.astype(np.float32), stride=strides, padding=pads, dilation=dil)
        shape = (w.shape[0],) + tuple(_window_output(s, k, st, p, d) for s, k, st, p, d in zip(x.shape[1:], kernel, strides, pads, dil))
        self._set(node, layer, x.index, shape)

    def _pool(self, node, a, classes):
        x = self._windowed_input(node)
        self._only_first_output(node)
        kernel = list(a["kernel_shape"])
        dims = len(kernel)
        if dims != len(x.shape) - 1:
            raise self._unsupported(node, f"kernel_shape={kernel} on per-example input {x.shape}")
        if any(d != 1 for d in a.get("dilations", [1] * dims)):
            raise self._unsupported(node, f"dilations={list(a['dilations'])}")
        strides, pads = self._spatial(node, a, x, kernel, [1] * dims)
        shape = (x.shape[0],) + tuple(_window_output(s, k, st, p, 1) for s, k, st, p in zip(x.shape[1:], kernel, strides, pads))
        if a.get("ceil_mode", 0):
            ceil = (x.shape[0],) + tuple(_window_output(s, k, st, p, 1, True) for s, k, st, p in zip(x.shape[1:], kernel, strides, pads))
            if ceil != shape:
                raise self._unsupported(node, f"ceil_mode=1 gives output {ceil[1:]} where swiftattr's floor gives {shape[1:]}")
        self._set(node, classes[dims - 1](kernel, stride=strides, padding=pads), x.index, shape)

    def op_MaxPool(self, node, a):
        self._pool(node, a, (m.MaxPool1d, m.MaxPool2d))

    def op_AveragePool(self, node, a):
        # swiftattr's AvgPool divides by the whole window, padding included (PyTorch's default, which
        # torch.onnx exports as count_include_pad=1); ONNX's default count_include_pad=0 divides by the
        # positions inside the input, which differs from it wherever a window overlaps the padding.
        if not a.get("count_include_pad", 0) and any(a.get("pads", [])):
            raise self._unsupported(node, f"count_include_pad=0 with pads={list(a['pads'])} (swiftattr's AvgPool counts "
                                          "padded positions in the divisor, as count_include_pad=1)")
        if a.get("auto_pad", b"NOTSET") in (b"SAME_UPPER", b"SAME_LOWER", "SAME_UPPER", "SAME_LOWER") and not a.get("count_include_pad", 0):
            raise self._unsupported(node, "auto_pad=SAME with count_include_pad=0 (swiftattr's AvgPool counts padded positions)")
        self._pool(node, a, (m.AvgPool1d, m.AvgPool2d))

    def op_GlobalAveragePool(self, node, a):
        x = self._windowed_input(node)
        self._set(node, m.GlobalAvgPool(), x.index, (x.shape[0],) + (1,) * (len(x.shape) - 1), (x.shape[0],))

    def op_BatchNormalization(self, node, a):
        x = self._value(node, 0)
        if a.get("training_mode", 0):
            raise self._unsupported(node, "training_mode=1 (inference statistics only)")
        self._only_first_output(node)
        scale, bias, mean, var = (self._const(node, k, what) for k, what in
                                  ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
        f = lambda v: v.astype(np.float32).reshape(-1)
        self._set(node, m.BatchNorm(f(mean), f(var), f(scale), f(bias), eps=a.get("epsilon", 1e-5)), x.index, x.shape, x.sa_shape)

    def _flatten_to(self, node, x: _Value) -> None:
        size = int(np.prod(x.shape))
        if len(x.sa_shape) == 1:
            self.values[node.output[0]] = _Value(x.index, (size,))
        else:
            self._set(node, m.Flatten(), x.index, (size,))

    def op_Flatten(self, node, a):
        x = self._value(node, 0)
        axis = a.get("axis", 1)
        if axis < 0:
            axis += len(x.shape) + 1
        if axis != 1:
            raise self._unsupported(node, f"axis={a.get('axis')}; only axis=1 (keep the batch axis) is supported")
        self._flatten_to(node, x)

    def op_Reshape(self, node, a):
        x = self._value(node, 0)
        if node.input[1] in self.shapes:
            target = self._shape_operand(node, 1)
        else:
            target = [int(t) for t in self._const(node, 1, "shape").reshape(-1)]
        size = int(np.prod(x.shape))
        batch_ok = lambda t: t in (0, -1, _BATCH) or (self.batch is not None and t == self.batch)
        zero_literal = a.get("allowzero", 0) and 0 in target
        if 3 <= len(target) <= 4 and not zero_literal and batch_ok(target[0]) \
                and all(t > 0 for t in target[1:]) and int(np.prod(target[1:])) == size:
            dims = tuple(int(t) for t in target[1:])
            self._set(node, m.Reshape(dims), x.index, dims)
            return
        if len(target) != 2 or zero_literal or not batch_ok(target[0]) or target[1] not in (-1, size) \
                or target[0] == target[1] == -1:
            raise self._unsupported(node, f"shape {target} on per-example shape {x.shape}; only a reshape to "
                                          f"(N, -1) or (N, {size}) (N being 0, -1 or the batch size) is supported")
        self._flatten_to(node, x)

    def op_Add(self, node, a):
        if len(node.input) != 2 or any(n in self.consts for n in node.input):
            raise self._unsupported(node, "only the sum of two computed values, or a constant bias right after a "
                                          "MatMul or Gemm, is supported")
        x, y = self._value(node, 0), self._value(node, 1)
        if x.shape != y.shape:
            raise self._unsupported(node, f"shapes {x.shape} and {y.shape} differ (broadcasting is not supported)")
        if x.sa_shape != y.sa_shape:
            raise self._unsupported(node, _POOLED)
        self._set(node, m.Add(), [x.index, y.index], x.shape, x.sa_shape)

    def op_Concat(self, node, a):
        if any(name in self.shapes for name in node.input):
            return self._shape_op(node, a)
        xs = [self._value(node, k) for k in range(len(node.input))]
        rank = len(xs[0].shape) + 1
        axis = a["axis"] + rank if a["axis"] < 0 else a["axis"]
        if axis != 1:
            raise self._unsupported(node, f"axis={a['axis']}; only the channel/feature axis (1) is supported")
        if len(xs) == 1:
            return self._alias(node, xs[0])
        if any(len(v.shape) != len(xs[0].shape) or v.shape[1:] != xs[0].shape[1:] for v in xs):
            raise self._unsupported(node, f"inputs of shapes {[v.shape for v in xs]} differ beyond axis 1")
        if any(v.sa_shape[1:] != xs[0].sa_shape[1:] for v in xs):
            raise self._unsupported(node, _POOLED)
        shape = (sum(v.shape[0] for v in xs),) + xs[0].shape[1:]
        self._set(node, m.Concat(), [v.index for v in xs], shape, (shape[0],) + xs[0].sa_shape[1:])

    def op_Dropout(self, node, a):
        mode = self._const(node, 2, "training_mode")
        if mode is not None and bool(np.asarray(mode).reshape(-1)[0]):
            raise self._unsupported(node, "training_mode=True (inference only)")
        self._only_first_output(node)
        self._alias(node, self._value(node, 0))

    def op_Identity(self, node, a):
        if node.input[0] in self.consts:
            self.consts[node.output[0]] = self.consts[node.input[0]]
        elif node.input[0] in self.shapes:
            self.shapes[node.output[0]] = self.shapes[node.input[0]]
        else:
            self._alias(node, self._value(node, 0))

    def op_Softmax(self, node, a):
        x = self._value(node, 0)
        axis = a.get("axis", 1 if self.opset < 13 else -1)
        whole = (self.opset < 13 and axis == 1) or (len(x.shape) == 1 and axis in (1, -1))
        if not whole:
            raise self._unsupported(node, f"axis={axis} on per-example shape {x.shape}; swiftattr's Softmax is over all "
                                          "of an example's outputs (axis 1 of (N, K))")
        self._set(node, m.Softmax(), x.index, x.shape, x.sa_shape)
        self.softmax.append(node)

    def op_Constant(self, node, a):
        if len(a) != 1:
            raise self._unsupported(node, f"a Constant given by {sorted(a)}")
        (key, value), = a.items()
        if key == "value":
            arr = self.onnx.numpy_helper.to_array(value)
        elif key in ("value_float", "value_floats", "value_int", "value_ints"):
            arr = np.asarray(value)
        else:
            raise self._unsupported(node, f"a Constant given by {sorted(a)}")
        self.consts[node.output[0]] = arr

    def op_Cast(self, node, a):
        if node.input[0] in self.shapes:
            self.shapes[node.output[0]] = self.shapes[node.input[0]]
        elif node.input[0] in self.consts:
            self.consts[node.output[0]] = self.consts[node.input[0]]
        elif a.get("to") == self.onnx.TensorProto.FLOAT:
            self._alias(node, self._value(node, 0))  # the values are float32 already
        else:
            raise self._unsupported(node, f"a cast of a computed value to {self.onnx.TensorProto.DataType.Name(a.get('to', 0))}")

    # Shape, Gather, Unsqueeze and Concat on shapes: what a dynamic-batch export computes for view(N, -1).
    def op_Shape(self, node, a):
        x = self._value(node, 0)
        full = [_BATCH] + list(x.shape)
        self.shapes[node.output[0]] = full[slice(a.get("start", 0), a.get("end", None))]

    op_Gather = op_Unsqueeze = lambda self, node, a: self._shape_op(node, a)

    def _shape_operand(self, node, k: int) -> list:
        name = node.input[k]
        if name in self.shapes:
            v = self.shapes[name]
            return v if isinstance(v, list) else [v]
        if name in self.consts and np.issubdtype(self.consts[name].dtype, np.integer):
            return [int(v) for v in self.consts[name].reshape(-1)]
        raise self._unsupported(node, f"input {k} ('{name}') is neither a constant nor a shape computed by Shape; "
                                      "only the shape arithmetic of a reshape to (N, -1) is supported")

    def _shape_op(self, node, a):
        op = node.op_type
        if op == "Concat":
            if a["axis"] not in (0, -1):
                raise self._unsupported(node, f"axis={a['axis']} on shapes")
            out = [v for k in range(len(node.input)) for v in self._shape_operand(node, k)]
        elif op == "Gather":
            src = self._shape_operand(node, 0)
            idx = self.consts.get(node.input[1])
            if a.get("axis", 0) != 0 or idx is None or idx.ndim > 1:
                raise self._unsupported(node, "only Gather of constant indices from a shape is supported")
            out = [src[int(i)] for i in idx.reshape(-1)]
            if idx.ndim == 0:
                out = out[0]  # a scalar, which Unsqueeze makes a list again
        else:  # Unsqueeze of a scalar (axes [0]) or of a list along axis 0
            src = self.shapes.get(node.input[0])
            axes = a.get("axes") if "axes" in a else self._shape_operand(node, 1) if len(node.input) > 1 else None
            if src is None or list(axes or []) != [0]:
                raise self._unsupported(node, "only Unsqueeze along axis 0 of a shape computed by Shape is supported")
            if isinstance(src, list):
                raise self._unsupported(node, "an Unsqueeze that makes a shape 2-D")
            out = [src]
        self.shapes[node.output[0]] = out

    def _activation(self, node, a):
        x = self._value(node, 0)
        self._set(node, _ACTIVATIONS[node.op_type](a), x.index, x.shape, x.sa_shape)

    # -- the walk ----------------------------------------------------------------------------------------
    def build(self) -> m.Network:
        need = self._needed()
        for node in self.nodes:
            if id(node) not in need or id(node) in self.done:
                continue
            if node.domain not in ("", "ai.onnx"):
                raise SwiftAttrError(f"from_onnx: op {node.domain}.{node.op_type} ({self._label(node)}) is not supported "
                                     f"(only the default ONNX domain; supported ops: {', '.join(SUPPORTED_OPS)})")
            handler = self._activation if node.op_type in _ACTIVATIONS else getattr(self, f"op_{node.op_type}", None)
            if handler is None:
                raise SwiftAttrError(f"from_onnx: op {node.op_type} ({self._label(node)}) is not supported; supported ops: "
                                     f"{', '.join(SUPPORTED_OPS)}")
            handler(node, self._attrs(node))
        if self.output not in self.values:
            what = "a constant" if self.output in self.consts or self.output in self.shapes else "not computed"
            raise SwiftAttrError(f"from_onnx: the graph output '{self.output}' is {what}")
        out = self.values[self.output]
        if out.index == 0:
            raise SwiftAttrError("from_onnx: the graph computes nothing (its output is its input)")
        for node in self.softmax:
            if self.values[node.output[0]].index != out.index:
                raise self._unsupported(node, "Softmax is supported as the final op only")
        if out.index != self.g.last:  # every kept node is an ancestor of the output, so this cannot happen
            raise SwiftAttrError(f"from_onnx: the graph output '{self.output}' is not its last value")
        try:
            return self.g.build()
        except SwiftAttrError as e:
            raise SwiftAttrError(f"from_onnx: {self._failing_node()}: {e}", e.code) from None

    def _failing_node(self) -> str:
        """The ONNX node whose layer C rejected: the first prefix of the graph that does not build (only on
        the error path; the C message numbers nodes, and users know their ONNX names)."""
        for k in range(1, len(self.origin) + 1):
            prefix = m.Graph(self.g.input_shape)
            for layer, inputs in self.g._nodes[:k]:
                prefix.add(layer, inputs)
            try:
                prefix.build()
            except SwiftAttrError:
                node = self.origin[k - 1]
                return f"{node.op_type} {self._label(node)}"
        return "the graph"


def from_onnx(model, input_shape: Optional[Sequence[int]] = None, output: Optional[str] = None) -> m.Network:
    """A swiftattr network from an ONNX model: a file path, the bytes of a ``.onnx`` file, or an
    ``onnx.ModelProto``.

    Supported ops: Gemm, MatMul (with the Add of a constant bias after it), Conv (1-D and 2-D, symmetric
    padding, group 1), Relu, LeakyRelu, Elu, Softplus, Sigmoid, Tanh, Softmax (final, over the features),
    MaxPool, AveragePool (count_include_pad=1 or no padding), GlobalAveragePool, BatchNormalization
    (inference), Flatten (axis 1), Reshape to (N, -1) (its shape a constant or computed by Shape, Gather,
    Unsqueeze and Concat, as dynamic-batch exports do), Add of two computed values, Concat (axis 1), Dropout,
    Identity, Constant, Cast to float32. Opsets 11 to 20 are tested. ``input_shape`` (per example, without the batch) is needed only when the model leaves
    a size unknown; it must agree with the sizes the model fixes. ``output`` names the graph output to
    convert when there are several (skl2onnx's classifiers give ``"label"`` and ``"probabilities"``); only the
    nodes it depends on are read.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
    input_shape : sequence of int, optional
        The per-example input shape, without the batch.
    output : str, optional
        The graph output to convert; None (the default) needs a graph with one output.

    Returns
    -------
    Network

    Raises
    ------
    SwiftAttrError
        When ``onnx`` is not importable, the model cannot be read, an op or attribute cannot be represented
        exactly (the message names the op type and the node), ``output`` names no graph output, or ``input_shape``
        disagrees with the sizes the model fixes (``SA_ERR_SHAPE``).

    Examples
    --------
    The examples need the ``onnx`` package (not a test dependency), so doctest skips them:

    >>> import numpy as np, swiftattr as sa  # doctest: +SKIP
    >>> from onnx import TensorProto, helper, numpy_helper  # doctest: +SKIP
    >>> W, b = np.ones((3, 4), np.float32), np.zeros(3, np.float32)  # doctest: +SKIP
    >>> graph = helper.make_graph(  # doctest: +SKIP
    ...     [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1), helper.make_node("Tanh", ["h"], ["y"])],
    ...     "demo", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    ...     initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    >>> net = sa.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))  # doctest: +SKIP
    >>> net.layer_kinds, net.input_shape  # doctest: +SKIP
    (['dense', 'tanh'], (4,))
    >>> round(float(net.forward(np.full((1, 4), 0.25))[0, 0]), 3)  # doctest: +SKIP
    0.762
    """
    onnx = _import_onnx()
    return _Importer(onnx, _load(onnx, model), input_shape, output).build()
