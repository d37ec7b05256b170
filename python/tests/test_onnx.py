"""sa.from_onnx: the fixtures of fixtures/make_onnx_fixtures.py (torch.onnx and skl2onnx exports, with
onnxruntime's outputs) and small graphs built here with onnx.helper for each op, attribute and error."""
import os
import pathlib
import sys

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import

onnx = optional_import("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
STORED = np.load(os.path.join(FIXTURES, "onnx_outputs.npz"))
MODELS = ["resnet", "densenet", "two_branch", "mlp", "sklearn_mlp"]
OUTPUT = {"sklearn_mlp": "probabilities"}  # skl2onnx's classifier also outputs the label


def fixture(name):
    return os.path.join(FIXTURES, f"{name}.onnx")


def close_to(y, ref):
    """float32 error bound: every output is a chain of at most ~16 layers of dot products of n ≤ 144 terms
    (3×3 kernels over 16 channels). swiftattr (OpenBLAS) and onnxruntime sum in different orders, so each dot
    product differs by at most n·u·Σ|w x| (u = 2⁻²⁴ ≈ 6e-8: 9e-6 of its absolute sum), in practice √n·u, and
    these add up with random signs over the layers; measured 2.4e-7. 1e-5 of the output scale is 40× the
    measured difference yet far below what a wrong padding, bias or stride gives (≥ 1e-2)."""
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize("name", MODELS)
def test_forward_equals_onnxruntime(name):
    net = sa.from_onnx(fixture(name), output=OUTPUT.get(name))
    x, ref = STORED[f"{name}_x"], STORED[f"{name}_y"]
    assert net.input_shape == x.shape[1:]
    y = net.forward(x)
    assert y.shape == (x.shape[0], int(np.prod(ref.shape[1:])))
    close_to(y, ref.reshape(y.shape))


def test_graph_structure_of_the_exports():
    resnet = sa.from_onnx(fixture("resnet"))
    assert resnet.layer_kinds.count("batchnorm") == 6 and resnet.layer_kinds.count("add") == 2
    assert resnet.layer_kinds[-2:] == ["global_avgpool", "dense"]  # Flatten after GlobalAveragePool: no node
    dense = sa.from_onnx(fixture("densenet"))
    assert dense.layer_kinds.count("concat") == 2 and "avgpool2d" in dense.layer_kinds
    assert sa.from_onnx(fixture("mlp")).layer_kinds[-1] == "softmax"


@pytest.mark.parametrize("name", ["resnet", "densenet"])
def test_path_bytes_and_modelproto_give_the_same_network(name):
    path = fixture(name)
    with open(path, "rb") as f:
        data = f.read()
    x = STORED[f"{name}_x"]
    outs = [sa.from_onnx(src).forward(x) for src in (path, pathlib.Path(path), data, bytearray(data), onnx.load(path))]
    for y in outs[1:]:
        np.testing.assert_array_equal(y, outs[0])  # the same network, the same computation: bit for bit


def test_methods_run_on_an_imported_graph():
    net = sa.from_onnx(fixture("resnet"))
    x = STORED["resnet_x"]
    phi, delta = sa.integrated_gradients(net, x, target=1, return_convergence_delta=True)
    assert phi.shape == x.shape
    assert np.abs(delta).max() < 1e-2 * max(1.0, np.abs(net.forward(x)).max())


# -- graphs built with onnx.helper ------------------------------------------------------------------------
def make(nodes, inputs, output, inits=(), opset=17, outputs=None):
    """A model of ``nodes``; ``inputs``/``output`` are (name, shape) with None for a symbolic dimension."""
    def info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [("N" if d is None else d) for d in shape])
    graph = helper.make_graph(nodes, "g", [info(*inputs)], outputs or [info(*output)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inits])
    domains = [helper.make_opsetid("ai.onnx.ml", 3)] if any(n.domain == "ai.onnx.ml" for n in nodes) else []
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)] + domains)
    onnx.checker.check_model(model)  # a valid model of that opset, so the importer is tested on real ONNX
    return model


def rand(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape).astype(np.float32)


def test_gemm_alpha_beta_transb_and_matmul_add_fused():
    w1, c1 = rand(5, 4), rand(1, 4)          # Gemm with transB=0: B is (in, out)
    w2, b2 = rand(4, 3), rand(3)             # MatMul + Add(bias given by a Constant node) -> one Linear
    w3 = rand(3, 2)                          # MatMul alone -> a Linear without bias
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "c1"], ["h1"], name="gemm", alpha=0.5, beta=2.0, transB=0),
        helper.make_node("Identity", ["h1"], ["h1i"]),
        helper.make_node("Elu", ["h1i"], ["a1"], alpha=0.3),
        helper.make_node("Constant", [], ["b2"], value=numpy_helper.from_array(b2)),
        helper.make_node("MatMul", ["a1", "w2"], ["m2"]),
        helper.make_node("Add", ["b2", "m2"], ["h2"]),          # the constant first: either order is a bias
        helper.make_node("Dropout", ["h2", "ratio"], ["d2"], name="drop"),
        helper.make_node("Sigmoid", ["d2"], ["a2"]),
        helper.make_node("MatMul", ["a2", "w3"], ["y"]),
    ]
    model = make(nodes, ("x", [None, 5]), ("y", [None, 2]),
                 [("w1", w1), ("c1", c1), ("w2", w2), ("w3", w3), ("ratio", np.float32(0.4))])
    net = sa.from_onnx(model)
    assert net.layer_kinds == ["dense", "elu", "dense", "sigmoid", "dense"]
    x = rand(6, 5)
    h = 0.5 * x @ w1 + 2.0 * c1
    h = np.where(h > 0, h, 0.3 * (np.exp(h) - 1))
    h = 1 / (1 + np.exp(-(h @ w2 + b2)))
    close_to(net.forward(x), h @ w3)


def test_conv_pools_and_reshape_match_the_same_sequential():
    w, b = rand(3, 2, 3, 3), rand(3)
    wl = rand(4, 3 * 3 * 3)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1]),
        helper.make_node("LeakyRelu", ["c"], ["r"], alpha=0.2),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),  # no pads: any count mode
        helper.make_node("MaxPool", ["p"], ["q"], kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1]),
        helper.make_node("Reshape", ["q", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "wl"], ["y"], transB=1),
        helper.make_node("Softmax", ["y"], ["s"], axis=1),
    ]
    model = make(nodes, ("x", [None, 2, 6, 6]), ("s", [None, 4]),
                 [("w", w), ("b", b), ("wl", wl), ("shape", np.array([0, -1], dtype=np.int64))])
    net = sa.from_onnx(model)
    ref = sa.Sequential([sa.Conv2d(w, b, padding=1), sa.LeakyReLU(0.2), sa.AvgPool2d(2), sa.MaxPool2d(3, 1, 1),
                         sa.Flatten(), sa.Linear(wl), sa.Softmax()], input_shape=(2, 6, 6))
    x = rand(3, 2, 6, 6)
    close_to(net.forward(x), ref.forward(x))


def test_reshape_to_an_image_feeds_a_convolution():
    """Gemm → Reshape(N, 2, 3, 3) → Conv: the Reshape node kind (a view), as a decoder or TRIM-style model has."""
    wl, w = rand(18, 5), rand(3, 2, 3, 3)
    nodes = [
        helper.make_node("Gemm", ["x", "wl"], ["h"], transB=1),
        helper.make_node("Reshape", ["h", "shape"], ["v"]),
        helper.make_node("Conv", ["v", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Flatten", ["c"], ["y"]),
    ]
    model = make(nodes, ("x", [None, 5]), ("y", [None, 27]), [("wl", wl), ("w", w), ("shape", np.array([-1, 2, 3, 3], dtype=np.int64))])
    net = sa.from_onnx(model)
    assert "reshape" in net.layer_kinds
    ref = sa.Sequential([sa.Linear(wl), sa.Reshape((2, 3, 3)), sa.Conv2d(w, padding=1), sa.Flatten()], input_shape=(5,))
    x = rand(4, 5)
    close_to(net.forward(x), ref.forward(x))


def test_symbolic_input_size_needs_input_shape():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    model = make(nodes, ("x", [None, 3, None, None]), ("y", [None, 3]))
    with pytest.raises(sa.SwiftAttrError, match="input_shape="):
        sa.from_onnx(model)
    net = sa.from_onnx(model, input_shape=(3, 4, 5))
    x = rand(2, 3, 4, 5)
    close_to(net.forward(x), x.mean(axis=(2, 3)))
    with pytest.raises(sa.SwiftAttrError, match=r"input_shape\[0\] = 2"):
        sa.from_onnx(model, input_shape=(2, 4, 5))
    with pytest.raises(sa.SwiftAttrError, match="needs 3"):
        sa.from_onnx(model, input_shape=(3, 4))


def unsupported(nodes, inputs, output, inits=(), match=None, **kw):
    with pytest.raises(sa.SwiftAttrError, match=match) as e:
        sa.from_onnx(make(nodes, inputs, output, inits), **kw)
    return str(e.value)


def test_unsupported_op_names_the_op_and_the_node():
    msg = unsupported([helper.make_node("Mul", ["x", "x"], ["y"], name="my_mul")], ("x", [None, 4]), ("y", [None, 4]))
    assert "Mul" in msg and "my_mul" in msg
    msg = unsupported([helper.make_node("Relu", ["x"], ["r"], name="r"), helper.make_node("Mul", ["r", "r"], ["y"])],
                      ("x", [None, 4]), ("y", [None, 4]))
    assert "Mul" in msg and "'y'" in msg  # an unnamed node is named by its output


def test_group_convolution_names_the_node():
    msg = unsupported([helper.make_node("Conv", ["x", "w"], ["y"], name="dw", group=2)], ("x", [None, 2, 5]),
                      ("y", [None, 2, 3]), [("w", rand(2, 1, 3))])
    assert "Conv" in msg and "'dw'" in msg and "group=2" in msg


@pytest.mark.parametrize("node, inits, match", [
    (helper.make_node("AveragePool", ["x"], ["y"], name="n", kernel_shape=[3], pads=[1, 1]), [], "count_include_pad=0"),
    (helper.make_node("Conv", ["x", "w"], ["y"], name="n", pads=[0, 1]), [("w", rand(2, 2, 2))], "asymmetric"),
    (helper.make_node("MaxPool", ["x"], ["y"], name="n", kernel_shape=[2], strides=[2], ceil_mode=1), [], "ceil_mode"),
    (helper.make_node("Add", ["x", "c"], ["y"], name="n"), [("c", rand(2, 5))], "constant bias right after a MatMul"),
    (helper.make_node("Reshape", ["x", "s"], ["y"], name="n"), [("s", np.array([0, -1, 2], dtype=np.int64))], r"\(N, -1\)"),
    (helper.make_node("Flatten", ["x"], ["y"], name="n", axis=2), [], "axis=2"),
    (helper.make_node("Concat", ["x", "x"], ["y"], name="n", axis=2), [], "axis=2"),
    (helper.make_node("Softmax", ["x"], ["y"], name="n", axis=-1), [], "axis=-1"),
    (helper.make_node("Gemm", ["x", "w"], ["y"], name="n", transA=1), [("w", rand(2, 2))], "transA"),
    (helper.make_node("Conv", ["w", "x"], ["y"], name="n"), [("w", rand(2, 2, 5))], "constant where a computed"),
])
def test_what_cannot_be_represented_is_an_error_naming_the_node(node, inits, match):
    msg = unsupported([node], ("x", [None, 2, 5]), ("y", [None]), inits, match=match)
    assert f"{node.op_type} node 'n'" in msg


def test_softmax_only_last_and_dead_branches_ignored():
    nodes = [helper.make_node("Softmax", ["x"], ["s"], name="sm"), helper.make_node("Relu", ["s"], ["y"])]
    unsupported(nodes, ("x", [None, 4]), ("y", [None, 4]), match="Softmax node 'sm'.*final")
    nodes = [helper.make_node("Mul", ["x", "x"], ["dead"]), helper.make_node("Tanh", ["x"], ["y"])]
    net = sa.from_onnx(make(nodes, ("x", [None, 4]), ("y", [None, 4])))  # the Mul feeds nothing the output needs
    x = rand(2, 4)
    close_to(net.forward(x), np.tanh(x))


def test_several_outputs_need_output_and_foreign_domains_are_named():
    info = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4])
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Tanh", ["x"], ["b"])]
    model = make(nodes, ("x", [None, 4]), None, outputs=[info("a"), info("b")])
    with pytest.raises(sa.SwiftAttrError, match="output="):
        sa.from_onnx(model)
    assert sa.from_onnx(model, output="b").layer_kinds == ["tanh"]
    with pytest.raises(sa.SwiftAttrError, match="'c' is not an output"):
        sa.from_onnx(model, output="c")
    msg = unsupported([helper.make_node("Scaler", ["x"], ["y"], name="sc", domain="ai.onnx.ml")],
                      ("x", [None, 4]), ("y", [None, 4]))
    assert "ai.onnx.ml.Scaler" in msg and "'sc'" in msg


def test_bad_sources(tmp_path):
    with pytest.raises(sa.SwiftAttrError, match="no such file"):
        sa.from_onnx(str(tmp_path / "missing.onnx"))
    with pytest.raises(sa.SwiftAttrError, match="not an ONNX model"):
        sa.from_onnx(b"\xff\xff not a protobuf")
    with pytest.raises(sa.SwiftAttrError, match="expected a path"):
        sa.from_onnx(42)


def test_missing_onnx_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(sa.SwiftAttrError, match="needs the onnx package: pip install onnx"):
        sa.from_onnx(fixture("mlp"))


@pytest.mark.parametrize("opset", [11, 13, 15, 20])
def test_dynamic_batch_reshape_and_default_softmax_axis_across_opsets(opset):
    """torch.onnx's view(x.size(0), -1) under a dynamic batch: Shape → Gather → Unsqueeze → Concat → Reshape;
    Unsqueeze takes its axes as an attribute before opset 13 and as an input from 13 on; Softmax's default
    axis is 1 before opset 13 and -1 from 13 on (the same axis of an (N, K) output)."""
    w = rand(3, 2 * 2 * 2)
    unsq = (helper.make_node("Unsqueeze", ["n"], ["n1"], axes=[0]) if opset < 13 else
            helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]))
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Shape", ["p"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
        unsq,
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "w"], ["g"], transB=1),
        helper.make_node("Softmax", ["g"], ["y"]),
    ]
    inits = [("w", w), ("zero", np.array(0, dtype=np.int64)), ("minus1", np.array([-1], dtype=np.int64)),
             ("axes", np.array([0], dtype=np.int64))]
    net = sa.from_onnx(make(nodes, ("x", [None, 2, 4, 4]), ("y", [None, 3]), inits, opset=opset))
    assert net.layer_kinds == ["maxpool2d", "flatten", "dense", "softmax"]
    x = rand(2, 2, 4, 4)
    z = x.reshape(2, 2, 2, 2, 2, 2).max(axis=(3, 5)).reshape(2, -1) @ w.T
    e = np.exp(z - z.max(axis=1, keepdims=True))
    close_to(net.forward(x), e / e.sum(axis=1, keepdims=True))


def test_static_batch_reshape_and_batchnorm_after_global_pool():
    """An export with a fixed batch (here 1) reshapes to (1, -1): that is the batch axis. BatchNormalization
    of a GlobalAveragePool's (C, 1, 1) output normalises the same C values swiftattr holds as (C,)."""
    mean, var, scale, bias = rand(3, seed=1), 0.5 + rand(3, seed=2) ** 2, rand(3, seed=3), rand(3, seed=4)
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["p"]),
        helper.make_node("BatchNormalization", ["p", "scale", "bias", "mean", "var"], ["b"], epsilon=1e-3),
        helper.make_node("Reshape", ["b", "shape"], ["y"]),
    ]
    inits = [("scale", scale), ("bias", bias), ("mean", mean), ("var", var), ("shape", np.array([1, -1], dtype=np.int64))]
    net = sa.from_onnx(make(nodes, ("x", [1, 3, 4, 4]), ("y", [1, 3]), inits))
    x = rand(5, 3, 4, 4)  # any batch size: the reshape's 1 is the batch axis
    close_to(net.forward(x), (x.mean(axis=(2, 3)) - mean) / np.sqrt(var + 1e-3) * scale + bias)


def test_errors_found_by_the_c_checks_name_the_onnx_node():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="act"),
             helper.make_node("Conv", ["r", "w"], ["y"], name="conv_in_3")]
    msg = unsupported(nodes, ("x", [None, 2, 5]), ("y", [None, 4, 5]), [("w", rand(4, 3, 1))], match="3 input channels")
    assert "Conv node 'conv_in_3'" in msg
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="wide_pad", kernel_shape=[2], pads=[2, 2])]
    msg = unsupported(nodes, ("x", [None, 2, 5]), ("y", [None, 2, 8]), match="at most half the kernel")
    assert "MaxPool node 'wide_pad'" in msg


def test_a_global_pool_output_read_as_an_image_is_an_error():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]),
             helper.make_node("Conv", ["p", "w"], ["y"], name="se_conv")]
    msg = unsupported(nodes, ("x", [None, 2, 4, 4]), ("y", [None, 3, 1, 1]), [("w", rand(3, 2, 1, 1))],
                      match="GlobalAveragePool output")
    assert "Conv node 'se_conv'" in msg


def test_auto_pad_same_is_symmetric_padding_or_an_error():
    w = rand(3, 2, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", dilations=[2])]
    net = sa.from_onnx(make(nodes, ("x", [None, 2, 7]), ("y", [None, 3, 7]), [("w", w)]))
    ref = sa.Sequential([sa.Conv1d(w, padding=2, dilation=2)], input_shape=(2, 7))
    x = rand(2, 2, 7)
    close_to(net.forward(x), ref.forward(x))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="even", auto_pad="SAME_LOWER")]
    unsupported(nodes, ("x", [None, 2, 7]), ("y", [None, 3, 7]), [("w", rand(3, 2, 2))], match="Conv node 'even'.*asymmetric")
