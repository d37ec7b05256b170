"""Python's argument checks (issue 8): every array that crosses into C has its full shape checked first (the C
ABI cannot know a raw buffer's length), and every integer, boolean, choice and path argument goes through
one checked conversion, so nothing is read past its end, truncated, wrapped or taken as truthy."""
import contextlib
import re

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi
from conftest import optional_import, smooth_mlp

SHAPE, INVALID, OUT_OF_RANGE, UNKNOWN_ENUM = -3, -2, -5, -6
X = np.zeros((2, 6), np.float32)


@contextlib.contextmanager
def raises(code, match):
    """pytest.raises for a SwiftAttrError with this C status code and a message matching ``match``."""
    with pytest.raises(sa.SwiftAttrError, match=match) as info:
        yield info
    assert info.value.code == code, (info.value.code, str(info.value))


@pytest.fixture
def net(rng):
    return smooth_mlp(rng)


# --- layer parameters: shapes before pointers --------------------------------------------------------

def test_short_linear_bias_is_a_shape_error():
    # The C side reads out_features floats from the bias pointer: a 2-element bias was read past its end.
    with raises(SHAPE, r"Linear bias: expected shape \(4,\) \(one per output feature\), got \(2,\)"):
        sa.Linear(np.ones((4, 3)), np.array([1.0, 2.0]))
    with raises(SHAPE, r"Linear bias: expected shape \(4,\) .* got \(5,\)"):
        sa.Linear(np.ones((4, 3)), np.arange(5.0))
    with raises(SHAPE, r"Linear bias: expected shape \(4,\) .* got \(4, 1\)"):
        sa.Linear(np.ones((4, 3)), np.ones((4, 1)))
    with raises(SHAPE, r"Linear weight: expected a 2-D .* got shape \(4,\)"):
        sa.Linear(np.ones(4))
    # The right shapes still build and compute W x + b.
    net = sa.Sequential([sa.Linear(np.ones((4, 3)), np.array([1.0, 2.0, 3.0, 4.0]))])
    np.testing.assert_array_equal(net.forward(np.zeros((1, 3))), [[1, 2, 3, 4]])


@pytest.mark.parametrize("cls, weight", [(sa.Conv1d, np.ones((3, 2, 2))), (sa.Conv2d, np.ones((3, 2, 2, 2)))])
def test_conv_bias_shape(cls, weight):
    name = cls.__name__
    for bad in (np.ones(2), np.ones(4), np.ones((3, 1))):
        with raises(SHAPE, re.escape(f"{name} bias: expected shape (3,) (one per output channel), got {bad.shape}")):
            cls(weight, bad)
    with raises(SHAPE, rf"{name} weight: expected .* got shape \(3, 2\)"):
        cls(np.ones((3, 2)))
    cls(weight, np.ones(3))  # builds


def test_batchnorm_parameter_shapes():
    with raises(SHAPE, r"BatchNorm running_var: expected shape \(3,\) \(one per channel\), got \(2,\)"):
        sa.BatchNorm(np.zeros(3), np.ones(2))
    with raises(SHAPE, r"BatchNorm weight: expected shape \(3,\) .* got \(4,\)"):
        sa.BatchNorm(np.zeros(3), np.ones(3), weight=np.ones(4))
    with raises(SHAPE, r"BatchNorm bias: expected shape \(3,\) .* got \(1,\)"):
        sa.BatchNorm(np.zeros(3), np.ones(3), bias=np.ones(1))
    with raises(SHAPE, r"BatchNorm running_mean: expected a 1-D per-channel array, got shape \(3, 1\)"):
        sa.BatchNorm(np.zeros((3, 1)), np.ones(3))


# --- arrays: dtypes ---------------------------------------------------------------------------------

def test_bool_and_complex_arrays_are_rejected(net):
    for bad, dtype in ((np.ones((2, 6), bool), "bool"), (np.ones((2, 6), complex), "complex128")):
        with raises(INVALID, f"inputs: cannot convert an array of dtype {dtype} to float32"):
            net.forward(bad)
        with raises(INVALID, f"inputs: cannot convert an array of dtype {dtype}"):
            sa.saliency(net, bad, target=0)
        with raises(INVALID, f"baselines: cannot convert an array of dtype {dtype}"):
            sa.integrated_gradients(net, X, bad, target=0)
        with raises(INVALID, f"references: cannot convert an array of dtype {dtype}"):
            sa.deepshap(net, X, bad, target=0)
    with raises(INVALID, "Linear weight: cannot convert an array of dtype bool"):
        sa.Linear(np.ones((2, 3), bool))
    with raises(INVALID, "Conv2d bias: cannot convert an array of dtype complex128"):
        sa.Conv2d(np.ones((2, 1, 3, 3)), np.ones(2, complex))
    with raises(INVALID, "BatchNorm running_var: cannot convert an array of dtype bool"):
        sa.BatchNorm(np.zeros(2), np.ones(2, bool))
    with raises(INVALID, "cannot convert"):
        net.forward([["a"] * 6] * 2)


def test_integer_arrays_are_converted(net):
    xi = np.arange(12, dtype=np.int32).reshape(2, 6)
    np.testing.assert_array_equal(net.forward(xi), net.forward(xi.astype(np.float32)))
    np.testing.assert_array_equal(sa.Sequential([sa.Linear(np.eye(3, dtype=np.int64), np.array([1, 2, 3], np.uint8))])
                                  .forward([[1, 1, 1]]), [[2, 3, 4]])


# --- attribution arrays: inputs, baselines, targets, references ----------------------------------

def test_attribution_shapes_have_the_shape_code(net):
    with raises(SHAPE, r"inputs: expected shape \(n, 6\), got \(2, 5\)"):
        sa.saliency(net, np.zeros((2, 5)), target=0)
    with raises(SHAPE, "one example"):
        sa.saliency(net, np.zeros(6), target=0)
    with raises(INVALID, "empty"):  # as C: n must be positive
        sa.saliency(net, np.zeros((0, 6)), target=0)
    with raises(SHAPE, r"baselines: expected one example of shape \(6,\) or 2 examples, got shape \(3, 6\)"):
        sa.integrated_gradients(net, X, np.zeros((3, 6)), target=0)
    with raises(SHAPE, "baselines: expected"):
        sa.deeplift(net, X, np.zeros((2, 5)), target=0)
    with raises(SHAPE, r"references: expected shape \(n, 6\)"):
        sa.expected_gradients(net, X, np.zeros((4, 5)), target=0)
    with raises(SHAPE, r"references: expected shape \(n, 6\)"):
        sa.deepshap(net, X, np.zeros((4, 5)), target=0)
    with raises(SHAPE, r"grad_outputs: expected shape \(2, 3\)"):
        sa.gradient(net, X, np.zeros((2, 2)))


def test_baselines_none_one_or_one_per_example(net, rng):
    x = rng.standard_normal((3, 6)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    for fn in (sa.integrated_gradients, sa.deeplift):
        zero = fn(net, x, None, target=1)
        np.testing.assert_array_equal(fn(net, x, np.zeros(6), target=1), zero)
        np.testing.assert_array_equal(fn(net, x, 0.0, target=1), zero)
        one = fn(net, x, b, target=1)
        np.testing.assert_array_equal(fn(net, x, b[None], target=1), one)
        # One per example: a different GEMM shape than the shared baseline; float32 rounding only
        # (a few ulps of |φ| ≤ 10 through three 16-wide layers).
        np.testing.assert_allclose(fn(net, x, np.tile(b, (3, 1)), target=1), one, rtol=1e-5, atol=1e-5)


def test_wrong_target_count_is_a_shape_error_as_in_c(net):
    with raises(SHAPE, "target: expected one class index or 2"):
        sa.saliency(net, X, target=[0, 1, 2])
    with raises(SHAPE, "target: expected one class index or 2"):
        sa.deeplift(net, X, target=[0, 1, 2])
    # The same failure from C has the same code.
    t = np.zeros(3, np.int64)
    out = np.empty_like(X)
    status = _ffi.lib.sa_saliency(net._handle, _ffi.fptr(X), 2, _ffi.iptr(t), 3, 1, _ffi.fptr(out))
    assert status == SHAPE, _ffi.lib.sa_last_error()


def test_targets_are_reported_with_their_real_value(net):
    with raises(OUT_OF_RANGE, r"target = 9223372036854775808 is out of range"):
        sa.saliency(net, X, target=float(2**63))
    with raises(OUT_OF_RANGE, r"target = 9223372036854775808 is out of range"):
        sa.saliency(net, X, target=2**63)
    with raises(OUT_OF_RANGE, r"target = 1180591620717411303424 is out of range"):
        sa.saliency(net, X, target=2**70)
    with raises(OUT_OF_RANGE, r"target\[1\] = -1000000000000000019884624838656 is out of range"):
        sa.saliency(net, X, target=np.array([0.0, -1e30]))
    with raises(OUT_OF_RANGE, r"target\[1\] = 7 is out of range"):
        sa.saliency(net, X, target=np.array([0.0, 7.0]))
    with raises(INVALID, "target: expected integer class indices, got 2.5"):
        sa.saliency(net, X, target=2.5)
    with raises(INVALID, "target: expected integer class indices"):
        sa.saliency(net, X, target=np.array([0, np.nan]))
    with raises(INVALID, "target: expected integer class indices"):
        sa.saliency(net, X, target=np.array([True, False]))
    np.testing.assert_array_equal(sa.saliency(net, X, target=np.array([1.0, 2.0])),
                                  sa.saliency(net, X, target=[1, 2]))


# --- integers, booleans, choices and paths -------------------------------------------------------

def test_layer_integers_are_not_wrapped_or_truncated():
    w = np.ones((2, 1, 3, 3))
    with raises(INVALID, r"stride must be in \[.*\] \(got 18446744073709551617\)"):
        sa.Conv2d(w, stride=2**64 + 1)
    with raises(INVALID, r"padding must be in .* \(got 18446744073709551616\)"):
        sa.Conv2d(w, padding=2**64)
    with raises(INVALID, r"stride\[1\] must be in .* \(got 18446744073709551617\)"):
        sa.Conv2d(w, stride=(1, 2**64 + 1))
    with raises(INVALID, "stride: expected an integer, got 1.9"):
        sa.Conv2d(w, stride=1.9)
    with raises(INVALID, "dilation: expected an integer, got True"):
        sa.Conv2d(w, dilation=True)
    with raises(INVALID, "stride: expected an int or a sequence of 2 ints, got '2'"):
        sa.Conv2d(w, stride="2")
    with raises(INVALID, "padding: expected an int or a sequence of 2 ints, got \\(1, 1, 1\\)"):
        sa.Conv2d(w, padding=(1, 1, 1))
    with raises(INVALID, r"stride must be in .* \(got 18446744073709551617\)"):
        sa.Conv1d(np.ones((2, 1, 3)), stride=2**64 + 1)
    with raises(INVALID, "padding: expected an integer, got 0.5"):
        sa.Conv1d(np.ones((2, 1, 3)), padding=0.5)
    with raises(INVALID, r"kernel_size must be in .* \(got 18446744073709551618\)"):
        sa.MaxPool2d(2**64 + 2)
    with raises(INVALID, r"kernel_size must be in .* \(got 18446744073709551618\)"):
        sa.MaxPool1d(2**64 + 2)
    with raises(INVALID, "stride: expected an integer, got 1.5"):
        sa.AvgPool1d(2, stride=1.5)
    with raises(INVALID, r"padding\[0\]: expected an integer, got 1.5"):
        sa.AvgPool2d(2, padding=(1.5, 0))
    # numpy integers and tuples are fine.
    assert sa.Conv2d(w, stride=np.int64(2), padding=(np.int32(1), 0)).stride == (2, 2)


def test_layer_numbers():
    with raises(INVALID, "LeakyReLU negative_slope: expected a number, got 'x'"):
        sa.LeakyReLU("x")
    with raises(INVALID, "ELU alpha: expected a number"):
        sa.ELU(None)
    with raises(INVALID, "Softplus beta: expected a number, got True"):
        sa.Softplus(True)
    with raises(INVALID, "Dropout p: expected a number"):
        sa.Dropout("0.5")
    with raises(INVALID, "BatchNorm eps: expected a number"):
        sa.BatchNorm(np.zeros(2), np.ones(2), eps="1e-5")


def test_input_shape_is_checked():
    lin = [sa.Linear(np.ones((2, 4)))]
    with raises(INVALID, r"input_shape\[0\]: expected an integer, got 4.9"):
        sa.Sequential(lin, input_shape=(4.9,))
    with raises(INVALID, "input_shape: expected a sequence of integers, got '12'"):
        sa.Sequential(lin, input_shape="12")
    with raises(INVALID, "input_shape: expected a sequence of integers, got b'12'"):
        sa.Sequential(lin, input_shape=b"12")
    with raises(INVALID, r"input_shape\[0\] must be in .* \(got 18446744073709551620\)"):
        sa.Sequential(lin, input_shape=(2**64 + 4,))
    with raises(INVALID, "input_shape: expected a sequence of integers, got None|input_shape is required"):
        sa.Sequential([sa.Conv1d(np.ones((2, 1, 3)))], input_shape=None)
    assert sa.Sequential(lin, input_shape=np.array([4])).input_shape == (4,)
    assert sa.Sequential(lin, input_shape=4).input_shape == (4,)


def test_booleans_are_not_truthy_strings(net):
    for value in ("no", "False", 0, None):
        with raises(INVALID, f"multiply_by_inputs: expected True or False, got {value!r}"):
            sa.deeplift(net, X, target=0, multiply_by_inputs=value)
        with raises(INVALID, f"multiply_by_inputs: expected True or False, got {value!r}"):
            sa.deepshap(net, X, X, target=0, multiply_by_inputs=value)
        with raises(INVALID, "return_convergence_delta: expected True or False"):
            sa.deeplift(net, X, target=0, return_convergence_delta=value)
        with raises(INVALID, "return_convergence_delta: expected True or False"):
            sa.integrated_gradients(net, X, target=0, return_convergence_delta=value)
        with raises(INVALID, "abs: expected True or False"):
            sa.saliency(net, X, target=0, abs=value)
    np.testing.assert_array_equal(sa.deeplift(net, X + 1, target=0, multiply_by_inputs=np.bool_(False)),
                                  sa.deeplift(net, X + 1, target=0, multiply_by_inputs=False))


def test_choices(net):
    with raises(UNKNOWN_ENUM, "maxpool: unknown 'captum'; expected one of gradient, crossmax"):
        sa.deeplift(net, X, target=0, maxpool="captum")
    with raises(UNKNOWN_ENUM, "rule: unknown"):
        sa.deepshap(net, X, X, target=0, rule=1)
    with raises(UNKNOWN_ENUM, "method: unknown"):
        sa.integrated_gradients(net, X, target=0, method=None)


def test_network_integer_arguments(net):
    with raises(INVALID, "layer: expected an integer, got 1.5"):
        net.activations(X, 1.5)
    with raises(INVALID, r"layer must be in \[.*\] \(got 18446744073709551617\)"):
        net.activations(X, 2**64 + 1)
    with raises(OUT_OF_RANGE, r"layer = -1 is out of range 0...5"):  # as C says it
        net.activations(X, -1)


def test_paths_with_a_nul_byte(net, tmp_path):
    good = tmp_path / "net.sam"
    bad = str(good) + "\0.txt"
    with raises(INVALID, "path: the path contains a NUL byte"):
        net.save(bad)
    assert not good.exists()  # not written under the cut path
    net.save(good)
    with raises(INVALID, "path: the path contains a NUL byte"):
        sa.load(bad)
    with raises(INVALID, "path: expected a file path, got 3"):
        sa.load(3)
    with raises(INVALID, "path: the path is empty"):
        net.save("")


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")  # sklearn: the short fits do not converge, by design
def test_from_sklearn_output_is_a_choice():
    sklearn = optional_import("sklearn.neural_network")
    rng = np.random.default_rng(0)
    clf = sklearn.MLPClassifier(hidden_layer_sizes=(4,), max_iter=20).fit(rng.standard_normal((30, 3)),
                                                                            np.arange(30) % 3)
    with raises(UNKNOWN_ENUM, "output: unknown 'probability'; expected one of proba, logits"):
        sa.from_sklearn(clf, output="probability")
    with raises(UNKNOWN_ENUM, "output: unknown"):
        sa.from_sklearn(clf, output=["proba"])


def test_one_baselines_helper_keeps_each_callers_rules(net):
    """_args.baseline_rows serves the gradient methods (strict: one example or n rows) and the perturbation
    methods (Captum's broadcasting, a scalar 0 is C's zeros) through one flag, with each one's errors."""
    from swiftattr._args import baseline_rows
    from swiftattr.attribution import _baselines as strict
    from swiftattr.perturbation import _baselines as broadcasting
    d = net.input_shape[0]
    b, rows = strict(net, 0.0, 2)
    assert rows == 1 and b.shape == (1, d) and not b.any()
    assert broadcasting(net, 0.0, 2) == (None, 0) and strict(net, None, 2) == (None, 0)
    b, rows = broadcasting(net, np.arange(d, dtype=np.float32)[None], 3)
    assert rows == 1 and b.shape == (1, d)
    b, rows = broadcasting(net, np.ones((3, 1), np.float32), 3)  # a trailing axis of 1 broadcasts to the input
    assert rows == 3 and b.shape == (3, d)
    with raises(SHAPE, "my_baselines: expected one example"):
        baseline_rows(net, np.ones((3, 1), np.float32), 3, "my_baselines")
    with raises(SHAPE, "does not broadcast"):
        broadcasting(net, np.ones((2, d + 1), np.float32), 3)
