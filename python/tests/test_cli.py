"""The command line, `python -m swiftattr explain`: --help, an ONNX file (built here with onnx.helper) and a
swiftattr model file explained to .npy (and a plot), equal to the same call in Python; argument errors."""
import os
import subprocess
import sys

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.abspath(sa.__file__)))


def cli(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "swiftattr", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def onnx_mlp(path):
    onnx = optional_import("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(6)
    w1, b1 = rng.standard_normal((5, 8)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    w2, b2 = rng.standard_normal((8, 3)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(v, k) for k, v in (("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_help():
    top = cli("--help")
    assert top.returncode == 0 and "explain" in top.stdout
    sub = cli("explain", "--help")
    assert sub.returncode == 0
    for word in ("MODEL", "INPUTS.npy", "--method", "--target", "--out", "--plot", "integrated_gradients", "deepshap"):
        assert word in sub.stdout, word


def test_explains_an_onnx_file(tmp_path):
    model = onnx_mlp(tmp_path / "mlp.onnx")
    x = np.random.default_rng(7).standard_normal((6, 5)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    threads = sa.get_num_threads()
    r = cli("explain", model, tmp_path / "x.npy", "--method", "integrated_gradients", "--target", 2, "--n-steps", 20,
            "--threads", threads, "--out", tmp_path / "phi.npy", "--plot", tmp_path / "phi.png")
    assert r.returncode == 0, r.stderr
    assert "(6, 5)" in r.stdout
    net = sa.from_onnx(str(model))
    # The same computation on the same thread count in another process: bit for bit.
    np.testing.assert_array_equal(np.load(tmp_path / "phi.npy"), sa.integrated_gradients(net, x, target=2, n_steps=20))
    with open(tmp_path / "phi.png", "rb") as f:
        assert f.read(4) == b"\x89PNG"

    # A swiftattr model file, the predicted class, references and a method option.
    net.save(str(tmp_path / "mlp.sam"))
    refs = np.random.default_rng(8).standard_normal((4, 5)).astype(np.float32)
    np.save(tmp_path / "refs.npy", refs)
    r = cli("explain", tmp_path / "mlp.sam", tmp_path / "x.npy", "--method", "deepshap", "--references", tmp_path / "refs.npy",
            "--option", "rule='rescale'", "--threads", threads, "--out", tmp_path / "shap.npy")
    assert r.returncode == 0, r.stderr
    predicted = np.argmax(net.forward(x), axis=1)
    np.testing.assert_array_equal(np.load(tmp_path / "shap.npy"), sa.deepshap(net, x, refs, target=predicted, rule="rescale"))


def test_errors(tmp_path):
    model = onnx_mlp(tmp_path / "mlp.onnx")
    np.save(tmp_path / "x.npy", np.zeros((2, 5), np.float32))
    r = cli("explain", model, tmp_path / "x.npy", "--method", "nope", "--out", tmp_path / "o.npy")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = cli("explain", model, tmp_path / "x.npy", "--method", "deepshap", "--out", tmp_path / "o.npy")
    assert r.returncode != 0 and "--references is required" in r.stderr
    r = cli("explain", model, tmp_path / "x.npy", "--method", "saliency", "--target", 7, "--out", tmp_path / "o.npy")
    assert r.returncode == 1 and "target" in r.stderr  # the library's message
    r = cli("explain", tmp_path / "missing.onnx", tmp_path / "x.npy", "--method", "saliency", "--out", tmp_path / "o.npy")
    assert r.returncode != 0 and "no such file" in r.stderr
    r = cli("explain", model, tmp_path / "x.npy", "--method", "saliency", "--option", "n_steps=3", "--out", tmp_path / "o.npy")
    assert r.returncode != 0 and "no argument n_steps" in r.stderr
