"""DeepLIFT and DeepSHAP through the Python wrapper: Captum's vectors, agreement with Captum from a committed
fixture (python/tests/fixtures/make_deeplift_fixtures.py; torch is not needed here), summation-to-delta,
errors, and DeepSHAP's bounded memory."""
import ctypes
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "deeplift_captum.npz")


def assert_close_relative(ours, theirs, rtol=1e-4):
    """Agreement to rtol relative to the largest magnitude of the reference (elementwise |a − b| ≤ rtol·max|b|)."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rtol * scale, np.abs(ours - theirs).max() / scale


# --- Captum's vectors -------------------------------------------------------------------------------

def test_two_relus_vector():
    net = sa.Sequential([sa.Linear(np.eye(2), [0, -1.5]), sa.ReLU(), sa.Linear([[2, 2]])])
    np.testing.assert_allclose(sa.deeplift(net, [[1, 2]], target=0), [[2.0, 1.0]], atol=1e-6)
    np.testing.assert_allclose(sa.deeplift(net, [[1, 2]], target=0, multiply_by_inputs=False), [[2.0, 0.5]], atol=1e-6)


def test_nested_relu_vector():
    net = sa.Sequential([sa.ReLU(), sa.Linear([[1, -1]], [-1]), sa.ReLU()])
    phi, delta = sa.deeplift(net, np.array([[3.0, 1.0]]), target=0, return_convergence_delta=True)
    np.testing.assert_allclose(phi, [[1.5, -0.5]], atol=1e-6)
    assert abs(delta[0]) < 1e-6


def test_maxpool_vectors():
    net = sa.Sequential([sa.MaxPool1d(4), sa.Flatten()], input_shape=(1, 4))
    x = np.ones((2, 1, 4), np.float32)
    b = np.array([[[1, 2, 3, 9]], [[4, 8, 6, 7]]], np.float32)
    cross, delta = sa.deeplift(net, x, b, target=0, maxpool="crossmax", return_convergence_delta=True)
    np.testing.assert_array_equal(cross, [[[0, 0, 0, -8]], [[0, -7, 0, 0]]])
    np.testing.assert_array_equal(delta, [0, 0])
    np.testing.assert_array_equal(sa.deeplift(net, x, b, target=0, maxpool="gradient"), [[[0, 0, 0, 0]], [[-3, 0, 0, 0]]])


def test_revealcancel_differs_from_rescale():
    # y = ReLU(x1 − x2) at (3, 1) from 0: Rescale (3, −1); RevealCancel (2.5, −0.5) (worked in DeepLiftTests.swift).
    net = sa.Sequential([sa.Linear([[1, -1]]), sa.ReLU()])
    np.testing.assert_allclose(sa.deeplift(net, [[3, 1]], target=0, rule="rescale"), [[3, -1]], atol=1e-6)
    np.testing.assert_allclose(sa.deeplift(net, [[3, 1]], target=0, rule="revealcancel"), [[2.5, -0.5]], atol=1e-6)
    np.testing.assert_allclose(sa.deeplift(net, [[3, 1]], target=0, rule="genomics"), [[2.5, -0.5]], atol=1e-6)


# --- agreement with Captum --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE))


def captum_mlp(f):
    return sa.Sequential([
        sa.Linear(f["mlp_0_weight"], f["mlp_0_bias"]), sa.ReLU(),
        sa.Linear(f["mlp_2_weight"], f["mlp_2_bias"]), sa.Tanh(),
        sa.Linear(f["mlp_4_weight"], f["mlp_4_bias"]), sa.ELU(),
        sa.Linear(f["mlp_6_weight"], f["mlp_6_bias"]),
    ])


def captum_cnn(f):
    return sa.Sequential([
        sa.Conv2d(f["cnn_0_weight"], f["cnn_0_bias"]), sa.ReLU(), sa.MaxPool2d(2),
        sa.Conv2d(f["cnn_3_weight"], f["cnn_3_bias"]), sa.ReLU(), sa.MaxPool2d(2),
        sa.Flatten(), sa.Linear(f["cnn_7_weight"], f["cnn_7_bias"]), sa.ReLU(), sa.Linear(f["cnn_9_weight"], f["cnn_9_bias"]),
    ], input_shape=(1, 28, 28))


def test_captum_deeplift_mlp_nonzero_baselines(fx):
    net = captum_mlp(fx)
    phi = sa.deeplift(net, fx["mlp_x"], fx["mlp_baselines"], target=fx["mlp_target"])
    assert_close_relative(phi, fx["mlp_deeplift"])
    m = sa.deeplift(net, fx["mlp_x"], fx["mlp_baselines"], target=fx["mlp_target"], multiply_by_inputs=False)
    assert_close_relative(m, fx["mlp_multipliers"])


def test_captum_deepliftshap_mlp(fx):
    net = captum_mlp(fx)
    phi = sa.deepshap(net, fx["mlp_x"], fx["mlp_references"], target=fx["mlp_target"])
    assert_close_relative(phi, fx["mlp_deepshap"])
    small = sa.deepshap(net, fx["mlp_x"], fx["mlp_references"], target=fx["mlp_target"], internal_batch_size=4)
    np.testing.assert_allclose(small, phi, rtol=0, atol=1e-6)
    m = sa.deepshap(net, fx["mlp_x"], fx["mlp_references"], target=fx["mlp_target"], multiply_by_inputs=False)
    assert_close_relative(m, fx["mlp_deepshap_multipliers"])


def test_captum_crossmax_pool_reading_the_input(fx):
    net = sa.Sequential([sa.MaxPool2d(2), sa.Conv2d(fx["pool_1_weight"], fx["pool_1_bias"]), sa.ReLU(), sa.Flatten(),
                         sa.Linear(fx["pool_4_weight"], fx["pool_4_bias"])], input_shape=(1, 12, 12))
    phi = sa.deeplift(net, fx["pool_x"], fx["pool_baselines"], target=fx["pool_target"], maxpool="crossmax")
    assert_close_relative(phi, fx["pool_deeplift"])


def test_captum_deeplift_cnn_zero_baselines(fx):
    # In the benchmark CNN every MaxPool follows a ReLU, where Captum's max-pool hook does not take effect
    # (torch 2.x): it routes to the argmax of the input, our maxpool="gradient" (see the fixture script).
    # Zero baselines make the references equal within each window, so that rule is exact here, and so is
    # cross-max, which distributes the same totals differently.
    net = captum_cnn(fx)
    phi = sa.deeplift(net, fx["cnn_x"], target=fx["cnn_target"], maxpool="gradient")
    assert_close_relative(phi, fx["cnn_deeplift"])
    for maxpool in ("gradient", "crossmax"):
        _, delta = sa.deeplift(net, fx["cnn_x"], target=fx["cnn_target"], maxpool=maxpool, return_convergence_delta=True)
        assert np.abs(delta).max() < 1e-5


def test_cnn_summation_to_delta_nonzero_baselines(fx):
    # Where Captum's DeepLift misses summation-to-delta (see the fixture script's output), ours is exact.
    net = captum_cnn(fx)
    rng = np.random.default_rng(3)
    x, b = fx["cnn_x"], rng.random(fx["cnn_x"].shape, dtype=np.float32)
    t = fx["cnn_target"]
    expected = (net(x) - net(b))[np.arange(len(t)), t]
    for rule in ("rescale", "revealcancel", "genomics"):
        phi, delta = sa.deeplift(net, x, b, target=t, rule=rule, return_convergence_delta=True)
        total = phi.reshape(len(t), -1).astype(np.float64).sum(1)
        np.testing.assert_allclose(total, expected, rtol=1e-5, atol=1e-6)
        assert np.abs(delta).max() <= 1e-5 * np.abs(expected).max() + 1e-6


def test_softmax_output_is_attributed_at_normalised_logits(rng):
    logits = sa.Sequential([sa.Linear(rng.standard_normal((5, 4)), rng.standard_normal(5)), sa.Tanh(),
                            sa.Linear(rng.standard_normal((3, 5)), rng.standard_normal(3))])
    probs = sa.Sequential(logits.layers + [sa.Softmax()])
    x, b = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    t = np.array([0, 1, 2, 0, 1, 2])
    every = np.stack([sa.deeplift(logits, x, b, target=c) for c in range(3)])
    expected = every[t, np.arange(6)] - every.mean(0)
    np.testing.assert_allclose(sa.deeplift(probs, x, b, target=t), expected, atol=1e-5)


# --- errors -----------------------------------------------------------------------------------------

def test_errors(rng):
    net = sa.Sequential([sa.Linear(rng.standard_normal((3, 4))), sa.ReLU(), sa.Linear(rng.standard_normal((2, 3)))])
    x = rng.standard_normal((5, 4))
    with pytest.raises(sa.SwiftAttrError, match="baselines"):
        sa.deeplift(net, x, np.zeros((2, 4)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="references"):
        sa.deepshap(net, x, np.zeros((0, 4)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="references"):
        sa.deepshap(net, x, np.zeros((3, 5)), target=0)
    with pytest.raises(sa.SwiftAttrError, match="rule"):
        sa.deeplift(net, x, target=0, rule="rescue")
    with pytest.raises(sa.SwiftAttrError, match="maxpool"):
        sa.deeplift(net, x, target=0, maxpool="average")
    with pytest.raises(sa.SwiftAttrError, match="target"):
        sa.deeplift(net, x, target=2)
    with pytest.raises(sa.SwiftAttrError, match="non-finite"):
        sa.deeplift(net, x, np.full(4, np.nan), target=0)


def test_c_errors_name_the_argument(rng):
    net = sa.Sequential([sa.Linear(rng.standard_normal((3, 4))), sa.ReLU(), sa.Linear(rng.standard_normal((2, 3)))])
    x = np.ascontiguousarray(rng.standard_normal((2, 4)), np.float32)
    t = np.zeros(1, np.int64)
    out = np.empty_like(x)
    lib, fp, ip = _ffi.lib, _ffi.fptr, _ffi.iptr

    def call(fn, *args):
        status = fn(*args)
        return status, lib.sa_last_error().decode()

    assert call(lib.sa_deeplift, net._handle, fp(x), 2, None, 0, ip(t), 1, 7, 1, 1, 0, fp(out), None)[0] == -6
    status, msg = call(lib.sa_deeplift, net._handle, fp(x), 2, None, 0, ip(t), 1, 0, 9, 1, 0, fp(out), None)
    assert status == -6 and "maxpool" in msg
    status, msg = call(lib.sa_deeplift, net._handle, None, 2, None, 0, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -1 and "x" in msg
    status, msg = call(lib.sa_deeplift, net._handle, fp(x), 2, None, 0, ip(t), 1, 0, 1, 1, 0, None, None)
    assert status == -1 and "out" in msg
    status, msg = call(lib.sa_deeplift, net._handle, fp(x), -1, None, 0, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -2 and "n" in msg
    status, msg = call(lib.sa_deeplift, net._handle, fp(x), 2, fp(x), 3, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -3 and "n_baselines" in msg
    status, msg = call(lib.sa_deepshap, net._handle, fp(x), 2, fp(x), 0, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -2 and "n_references" in msg
    status, msg = call(lib.sa_deepshap, net._handle, fp(x), 2, None, 2, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -1 and "references" in msg
    status, msg = call(lib.sa_deepshap, None, fp(x), 2, fp(x), 2, ip(t), 1, 0, 1, 1, 0, fp(out), None)
    assert status == -1 and "model" in msg


# --- DeepSHAP memory --------------------------------------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    sys.path.insert(0, {python!r})
    import swiftattr as sa
    rng = np.random.default_rng(0)
    net = sa.Sequential([sa.Linear(rng.standard_normal((128, 784)) / 28, np.zeros(128)), sa.ReLU(),
                         sa.Linear(rng.standard_normal((64, 128)) / 11, np.zeros(64)), sa.ReLU(),
                         sa.Linear(rng.standard_normal((10, 64)) / 8, np.zeros(10))])
    x = rng.random((1000, 784), dtype=np.float32)
    refs = rng.random((100, 784), dtype=np.float32)
    sa.deepshap(net, x[:2], refs[:2], target=3)  # warm up (library, thread pools)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    phi, delta = sa.deepshap(net, x, refs, target=3, return_convergence_delta=True)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print((after - before) / 1024, float(np.abs(delta).max()), float(np.abs(phi).sum()))
""")


def test_deepshap_memory_is_bounded_by_the_chunk():
    # 1,000 examples × 100 references = 100,000 pairs: materialising them would take 2 × 100,000 × 784 floats
    # = 627 MB for the expanded inputs and references alone. The peak RSS growth must stay under 128 MB.
    python_dir = os.path.dirname(os.path.dirname(os.path.abspath(sa.__file__)))
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(python=python_dir)], capture_output=True, text=True,
                         check=True, timeout=120)
    growth_mb, worst_delta, total = map(float, out.stdout.split())
    assert total > 0
    assert worst_delta < 1e-3
    assert growth_mb < 128, f"peak RSS grew by {growth_mb:.0f} MB"
