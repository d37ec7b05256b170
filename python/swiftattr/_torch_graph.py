"""torch.fx conversion of any traceable ``nn.Module`` into a shape-free recipe of swiftattr nodes.

The recipe (:class:`TorchRecipe`) holds the converted layers and which values each reads; it needs no input
shape until :meth:`TorchRecipe.build` makes a :class:`~swiftattr.Network` for one shape, so a convolutional
module converts once and is planned per image size (see :class:`~swiftattr.LazyNetwork`)."""
from __future__ import annotations

import operator
from typing import List, Optional, Tuple

from . import model as m
from ._ffi import SwiftAttrError

_BATCH = object()  # the value of x.size(0) / x.shape[0]: only a reshape target may use it


class _LSTMCall:
    """The tuple ``(output, (h_n, c_n))`` of an nn.LSTM call, not yet a node: which part is used decides the
    node (the last state, or every state). ``part``: "call", "output", "state" ((h_n, c_n)) or "h_n";
    ``sequences`` caches the step index of the every-state node once one is emitted."""

    def __init__(self, src, mod, where, part="call", root=None):
        self.src, self.mod, self.where, self.part = src, mod, where, part
        self.root = root or self
        self.sequences = None

    def taking(self, part):
        return _LSTMCall(self.src, self.mod, self.where, part, self.root)


def _lstm_layer(mod, where: str, sequences: bool):
    """The sa.LSTM of a torch nn.LSTM (num_layers=1, unidirectional, batch-first, no projection)."""
    def unsupported(why):
        return SwiftAttrError(f"from_torch: unsupported operation {where}: {why}")

    if mod.num_layers != 1:
        raise unsupported(f"num_layers={mod.num_layers} (only one layer; stack LSTM modules instead)")
    if mod.bidirectional:
        raise unsupported("bidirectional=True (only unidirectional LSTMs)")
    if not mod.batch_first:
        raise unsupported("batch_first=False (inputs must be (N, L, E): construct the LSTM with batch_first=True)")
    if getattr(mod, "proj_size", 0):
        raise unsupported("proj_size > 0")
    w = lambda name: getattr(mod, name).detach().cpu().numpy().astype("float32") if getattr(mod, name, None) is not None else None
    return m.LSTM(w("weight_ih_l0"), w("weight_hh_l0"), w("bias_ih_l0"), w("bias_hh_l0"), return_sequences=sequences)
_SHAPE = object()  # the value of x.size() / x.shape: only indexed by 0


class _Step:
    """One swiftattr node: ``layer`` (an sa layer) reading recipe values ``inputs``; ``where`` names the torch
    node for errors; ``flat_size`` is the size a reshape to (N, flat_size) demands (checked per shape)."""

    __slots__ = ("layer", "inputs", "where", "flat_size")

    def __init__(self, layer, inputs, where, flat_size=None):
        self.layer, self.inputs, self.where, self.flat_size = layer, inputs, where, flat_size

    def __getstate__(self):
        return (self.layer, self.inputs, self.where, self.flat_size)

    def __setstate__(self, state):
        self.layer, self.inputs, self.where, self.flat_size = state


class TorchRecipe:
    """A converted module: steps over numbered values (0: the input, k + 1: the output of step k)."""

    def __init__(self, steps: List[_Step], name: str, module_values: Optional[dict] = None):
        self.steps = steps
        self.name = name
        self.module_values = module_values or {}

    @property
    def layers(self) -> list:
        return [s.layer for s in self.steps]

    def first_linear_inputs(self) -> Optional[int]:
        """in_features when every step reading the input is a Linear of one width (an MLP needs no shape)."""
        readers = [s for s in self.steps if 0 in s.inputs]
        widths = {s.layer.in_features for s in readers if isinstance(s.layer, m.Linear)}
        if readers and len(widths) == 1 and all(isinstance(s.layer, m.Linear) for s in readers):
            return widths.pop()
        return None

    def _graph(self, input_shape, count: int) -> m.Graph:
        g = m.Graph(input_shape)
        for s in self.steps[:count]:
            g.add(s.layer, s.inputs if isinstance(s.layer, (m.Add, m.Concat)) else s.inputs[0])
        return g

    def build(self, input_shape) -> m.Network:
        """The network for per-example ``input_shape``; a shape error names the torch op and module path."""
        try:
            net = self._graph(input_shape, len(self.steps)).build()
        except SwiftAttrError as e:
            raise self._locate(input_shape, e) from None
        for k, s in enumerate(self.steps):
            if s.flat_size is not None and net._sizes[k + 1] != s.flat_size:
                raise SwiftAttrError(
                    f"from_torch: {s.where}: reshape to (N, {s.flat_size}) of a value of {net._sizes[k + 1]} floats per "
                    f"example (input shape {tuple(input_shape)})")
        net.node_names = dict(self.module_values)
        return net

    def _locate(self, input_shape, error: SwiftAttrError) -> SwiftAttrError:
        """The first step whose graph prefix fails to build (the error path only: O(steps) small builds)."""
        for k in range(1, len(self.steps) + 1):
            try:
                self._graph(input_shape, k).build()
            except SwiftAttrError as e:
                s = self.steps[k - 1]
                why = e.args[0] if e.args else str(e)
                if isinstance(s.layer, m.Add):
                    why = f"only adds of values of one shape are supported (broadcasting adds are not): {why}"
                return SwiftAttrError(f"from_torch: {s.where} (input shape {tuple(input_shape)}): {why}", e.code)
        return error


def _op_name(target) -> str:
    """A readable qualified name of a call_function target: torch.mul, torch.nn.functional.gelu, operator.mul."""
    import torch
    import torch.nn.functional as F

    name = getattr(target, "__name__", repr(target))
    for prefix, space in (("torch", torch), ("torch.nn.functional", F), ("operator", operator)):
        if getattr(space, name, None) is target:
            return f"{prefix}.{name}"
    mod = getattr(target, "__module__", None)
    return f"{mod}.{name}" if mod else name


def _where(node, op: str) -> str:
    """``op at 'module.path' (node name)``: the innermost module the node was traced in."""
    if node.op == "call_module":
        path = node.target
    else:
        stack = node.meta.get("nn_module_stack") or {}
        path = next(reversed(stack.values()))[0] if stack else ""
    return f"{op} at '{path or '<root>'}' (node {node.name})"


def _unsupported(node, op: str, why: str = "") -> SwiftAttrError:
    return SwiftAttrError(f"from_torch: unsupported operation {_where(node, op)}" + (f": {why}" if why else ""))


def _functional_tables():
    """call_function / call_method targets → the nn module class that computes the same (its converter is
    reused), with the keyword arguments the module takes."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    modules = {
        F.relu: (nn.ReLU, ()), torch.relu: (nn.ReLU, ()), F.relu_: (nn.ReLU, ()), torch.relu_: (nn.ReLU, ()),
        F.leaky_relu: (nn.LeakyReLU, ("negative_slope",)), F.elu: (nn.ELU, ("alpha",)),
        F.softplus: (nn.Softplus, ("beta", "threshold")), torch.sigmoid: (nn.Sigmoid, ()),
        F.sigmoid: (nn.Sigmoid, ()), torch.tanh: (nn.Tanh, ()), F.tanh: (nn.Tanh, ()),
        F.softmax: (nn.Softmax, ("dim",)), torch.softmax: (nn.Softmax, ("dim",)),
        F.max_pool1d: (nn.MaxPool1d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
        F.max_pool2d: (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")),
        F.avg_pool1d: (nn.AvgPool1d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad")),
        F.avg_pool2d: (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                      "divisor_override")),
        F.adaptive_avg_pool1d: (nn.AdaptiveAvgPool1d, ("output_size",)),
        F.adaptive_avg_pool2d: (nn.AdaptiveAvgPool2d, ("output_size",)),
    }
    methods = {"relu": (nn.ReLU, ()), "relu_": (nn.ReLU, ()), "sigmoid": (nn.Sigmoid, ()), "tanh": (nn.Tanh, ()),
               "softmax": (nn.Softmax, ("dim",))}
    identities = {F.dropout, torch.dropout, F.alpha_dropout, torch.nn.functional.dropout1d,
                  torch.nn.functional.dropout2d}
    return modules, methods, identities


def _normalized(node, gm) -> dict:
    """The call's arguments by name (torch.fx's schema matching), or {} when fx cannot normalise it."""
    try:
        pair = node.normalized_arguments(gm, normalize_to_only_use_kwargs=True)
    except Exception:  # fx raises RuntimeError/TypeError for ambiguous schemas
        pair = None
    return dict(pair.kwargs) if pair is not None else {}


def convert(module) -> TorchRecipe:
    """Traces ``module`` with torch.fx and converts each node (see :func:`swiftattr.from_torch`)."""
    import torch
    import torch.fx as fx
    import torch.nn as nn
    import torch.nn.functional as F

    from .convert import _convert_torch_module

    try:
        gm = fx.symbolic_trace(module)
    except Exception as e:  # tracing runs the user's forward symbolically: any error is theirs to see
        raise SwiftAttrError(f"from_torch: torch.fx cannot trace {type(module).__name__}: {type(e).__name__}: {e}") from None
    gm.graph.eliminate_dead_code()
    modules, methods, identities = _functional_tables()
    steps: List[_Step] = []
    env = {}  # fx node → recipe value (int), _BATCH, _SHAPE or a Python constant

    def lstm_sequences(call):
        """The value of every hidden state of an LSTM call (one node, emitted on first use)."""
        root = call.root
        if root.sequences is None:
            steps.append(_Step(_lstm_layer(root.mod, root.where, True), [root.src], root.where))
            root.sequences = len(steps)
        return root.sequences

    def value(node, arg, op):
        v = env.get(arg) if isinstance(arg, fx.Node) else arg
        if isinstance(v, _LSTMCall):
            if v.part != "output":
                raise _unsupported(node, op, "of an LSTM's result only the output sequence or the last hidden state "
                                             "(out[:, -1], h_n[-1]) can be used")
            return lstm_sequences(v)
        if not isinstance(arg, fx.Node) or not isinstance(v, int):
            raise _unsupported(node, op, f"an operand is not a tensor computed from the input ({arg!r})")
        return v

    def emit(node, layer, inputs, op, flat_size=None):
        steps.append(_Step(layer, list(inputs), _where(node, op), flat_size))
        env[node] = len(steps)

    def in_place(node, op):
        """An in-place op is its out-of-place twin unless other ops read the value it overwrites (the traced
        graph does not see the mutation)."""
        arg = node.args[0] if node.args else None
        if isinstance(arg, fx.Node) and len(arg.users) > 1:
            raise _unsupported(node, op, "in place on a value that other ops also read")

    def from_module(node, op, mod, src, inplace=False):
        if inplace or getattr(mod, "inplace", False):
            in_place(node, op)
        layer = _convert_torch_module(_where(node, op), mod)
        if layer is None:
            env[node] = src
        else:
            emit(node, layer, [src], op)

    def reshape(node, op, src, dims):
        """view/reshape to (N, -1) or (N, K): a Flatten (K is checked per shape); to (N, d1[, d2[, d3]]) with
        positive sizes: a Reshape (its size is checked when the network is planned)."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        dims = tuple(env.get(d, d) if isinstance(d, fx.Node) else d for d in dims)
        if (len(dims) == 2 and (dims[0] is _BATCH or dims[0] == -1)
                and (dims[1] == -1 and dims[0] is _BATCH or isinstance(dims[1], int) and dims[1] > 0)):
            emit(node, m.Flatten(), [src], op, None if dims[1] == -1 else dims[1])
            return
        if (3 <= len(dims) <= 4 and (dims[0] is _BATCH or dims[0] == -1)
                and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in dims[1:])):
            emit(node, m.Reshape(tuple(dims[1:])), [src], op)
            return
        raise _unsupported(node, op, "only reshapes to (N, -1), (N, features) or (N, d1[, d2[, d3]]) with "
                                     "positive sizes are supported")

    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if env:
                raise _unsupported(node, "a second input", "the module must take one tensor")
            env[node] = 0
        elif node.op == "get_attr":
            raise _unsupported(node, f"a parameter or buffer read in forward ({node.target})",
                               "use it through a supported module")
        elif node.op == "call_module":
            mod = gm.get_submodule(node.target)
            op = type(mod).__name__
            if isinstance(mod, nn.LSTM):
                if len(node.args) != 1 or node.kwargs:
                    raise _unsupported(node, op, "initial states (h_0, c_0) are not supported: call lstm(x)")
                _lstm_layer(mod, _where(node, op), False)  # checks the configuration now
                env[node] = _LSTMCall(value(node, node.args[0], op), mod, _where(node, op))
                continue
            from_module(node, op, mod, value(node, node.args[0], op) if node.args else None)
        elif node.op == "call_function":
            fn = node.target
            op = _op_name(fn)
            if fn in identities:
                env[node] = value(node, node.args[0], op)
            elif fn in modules:
                cls, names = modules[fn]
                kw = _normalized(node, gm)
                if not kw:  # torch.* builtins with several schemas: the table's names are in signature order
                    if not node.args or len(node.args) > 1 + len(names):
                        raise _unsupported(node, op, "its arguments could not be read")
                    kw = {"input": node.args[0], **dict(zip(names, node.args[1:])), **node.kwargs}
                src = value(node, kw.pop("input"), op)
                if cls is nn.Softmax and kw.get("dim") is None:
                    raise _unsupported(node, op, "give dim=1 or dim=-1")
                inplace = bool(kw.pop("inplace", False)) or fn in (F.relu_, torch.relu_)
                kw.pop("_stacklevel", None)
                if kw.pop("dtype", None) is not None:
                    raise _unsupported(node, op, "dtype is not supported")
                extra = set(kw) - set(names)
                if extra:
                    raise _unsupported(node, op, f"arguments {sorted(extra)} are not supported")
                from_module(node, op, cls(**kw), src, inplace)
            elif fn in (operator.add, torch.add, operator.iadd):
                alpha = node.kwargs.get("alpha", 1)
                if alpha != 1 or len(node.args) != 2 or set(node.kwargs) - {"alpha"}:
                    raise _unsupported(node, op, "only a + b of two tensors (alpha=1)")
                if fn is operator.iadd:
                    in_place(node, op)
                emit(node, m.Add(), [value(node, a, op) for a in node.args], op)
            elif fn in (torch.cat, torch.concat, torch.concatenate):
                tensors = node.args[0] if node.args else node.kwargs.get("tensors")
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", node.kwargs.get("axis", 0))
                if dim != 1:
                    raise _unsupported(node, op, f"only concatenation along dim=1 (got dim={dim})")
                inputs = [value(node, a, op) for a in tensors]
                if len(inputs) == 1:
                    env[node] = inputs[0]
                else:
                    emit(node, m.Concat(), inputs, op)
            elif fn is torch.flatten:
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
                if start != 1 or end != -1:
                    raise _unsupported(node, op, "only torch.flatten(x, 1)")
                emit(node, m.Flatten(), [value(node, node.args[0], op)], op)
            elif fn is torch.reshape:
                reshape(node, op, value(node, node.args[0], op), node.args[1:] or (node.kwargs.get("shape"),))
            elif fn is getattr and len(node.args) == 2 and node.args[1] == "shape":
                value(node, node.args[0], op)
                env[node] = _SHAPE
            elif fn is operator.getitem and env.get(node.args[0]) is _SHAPE and node.args[1] == 0:
                env[node] = _BATCH
            elif fn is operator.getitem and isinstance(env.get(node.args[0]), _LSTMCall):
                call, index = env[node.args[0]], node.args[1]
                full = slice(None, None, None)
                if call.part == "call" and index in (0, 1):
                    env[node] = call.taking("output" if index == 0 else "state")
                elif call.part == "state" and index == 0:
                    env[node] = call.taking("h_n")
                elif call.part == "h_n" and index in (0, -1) or (
                        call.part == "output" and index in ((full, -1), (full, -1, full))):
                    emit(node, _lstm_layer(call.mod, call.where, False), [call.src], op)
                else:
                    raise _unsupported(node, f"{op} {index!r} of an LSTM's {call.part}",
                                       "supported: out, (h_n, c_n) = lstm(x); out[:, -1]; out[:, -1, :]; h_n[-1]; h_n[0]")
            else:
                raise _unsupported(node, op)
        elif node.op == "call_method":
            name = node.target
            op = f"Tensor.{name}"
            call = env.get(node.args[0]) if node.args else None
            if isinstance(call, _LSTMCall) and call.part == "h_n" and name == "squeeze" and tuple(node.args[1:]) == (0,):
                emit(node, _lstm_layer(call.mod, call.where, False), [call.src], op)
                continue
            src = value(node, node.args[0], op)
            rest, kw = node.args[1:], dict(node.kwargs)
            if name in methods:
                cls, names = methods[name]
                if cls is nn.Softmax:
                    kw.setdefault("dim", rest[0] if rest else None)
                    if kw["dim"] is None:
                        raise _unsupported(node, op, "give dim=1 or dim=-1")
                elif rest or kw:
                    raise _unsupported(node, op, "arguments are not supported")
                from_module(node, op, cls(**kw), src, name.endswith("_"))
            elif name in ("contiguous", "clone", "detach", "float"):
                env[node] = src
            elif name == "size":
                dim = rest[0] if rest else kw.get("dim")
                if dim is None:
                    env[node] = _SHAPE
                elif dim == 0:
                    env[node] = _BATCH
                else:
                    raise _unsupported(node, op, "only x.size(0) (the batch size)")
            elif name == "flatten":
                start = rest[0] if rest else kw.get("start_dim", 0)
                end = rest[1] if len(rest) > 1 else kw.get("end_dim", -1)
                if start != 1 or end != -1:
                    raise _unsupported(node, op, "only x.flatten(1)")
                emit(node, m.Flatten(), [src], op)
            elif name in ("view", "reshape"):
                reshape(node, op, src, rest or (kw.get("shape", kw.get("size")),))
            elif name in ("add", "add_", "__add__"):
                if len(rest) != 1 or kw.get("alpha", 1) != 1:
                    raise _unsupported(node, op, "only a.add(b) of two tensors (alpha=1)")
                if name == "add_":
                    in_place(node, op)
                emit(node, m.Add(), [src, value(node, rest[0], op)], op)
            else:
                raise _unsupported(node, op)
        elif node.op == "output":
            out = node.args[0]
            if not isinstance(out, fx.Node) or not isinstance(env.get(out), int):
                raise _unsupported(node, "an output that is not one tensor", "return one tensor")
            if env[out] == 0:
                raise SwiftAttrError(f"from_torch: {type(module).__name__} computes nothing from its input")
            if env[out] != len(steps):
                raise _unsupported(node, "an output that is not the last computed value")
    if not steps:
        raise SwiftAttrError(f"from_torch: {type(module).__name__} has no layers")
    return TorchRecipe(steps, type(module).__name__, _module_values(gm, env))


def _module_values(gm, env) -> dict:
    """``named_modules()`` name → the recipe value its call computes (a leaf module: its output; a container:
    the last value computed inside it, its forward's result), for layer attributions (``layer="features.3"``).
    A module called more than once maps to the tuple of its values (ambiguous: a layer argument naming it is
    an error listing them); modules that compute nothing of their own (an Identity of the input) are absent."""
    calls, last = {}, {}
    for node in gm.graph.nodes:
        v = env.get(node)
        if node.op not in ("call_module", "call_function", "call_method") or not isinstance(v, int) or v == 0:
            continue
        if node.op == "call_module":
            calls.setdefault(node.target, []).append(v)
        for path, _ in (node.meta.get("nn_module_stack") or {}).values():
            if path:
                last[path] = v
    table = {path: v for path, v in last.items() if path not in calls}
    for path, values in calls.items():
        distinct = tuple(dict.fromkeys(values))
        table[path] = distinct[0] if len(distinct) == 1 else distinct
    return table
