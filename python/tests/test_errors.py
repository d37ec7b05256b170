"""Bad input never crashes: every case raises SwiftAttrError with a message naming the argument."""
import numpy as np
import pytest

import swiftattr as sa
from conftest import smooth_mlp

X = np.zeros((2, 6), np.float32)


@pytest.fixture
def net(rng):
    return smooth_mlp(rng)


def raises(match):
    return pytest.raises(sa.SwiftAttrError, match=match)


def test_error_is_a_value_error():
    assert issubclass(sa.SwiftAttrError, ValueError)


def test_input_shape_and_values(net):
    with raises("inputs: expected shape"):
        sa.saliency(net, np.zeros((2, 5)), target=0)
    with raises("one example"):
        sa.saliency(net, np.zeros(6), target=0)
    with raises("empty"):
        sa.saliency(net, np.zeros((0, 6)), target=0)
    bad = X.copy()
    bad[1, 3] = np.nan
    with raises("x contains a non-finite value"):
        sa.integrated_gradients(net, bad, target=0)
    bad[1, 3] = np.inf
    with raises("non-finite"):
        net.forward(bad)
    with raises("cannot convert"):
        sa.saliency(net, [["a", "b"]], target=0)


def test_targets(net):
    with raises(r"target = 3 is out of range"):
        sa.integrated_gradients(net, X, target=3)
    with raises(r"target = -1 is out of range"):
        sa.saliency(net, X, target=-1)
    with raises(r"target\[1\] = 7"):
        sa.saliency(net, X, target=[0, 7])
    with raises("target: expected one class index or 2"):
        sa.saliency(net, X, target=[0, 1, 2])
    with raises("target is required"):
        sa.saliency(net, X)
    with raises("integer class indices"):
        sa.saliency(net, X, target=0.5)


def test_options(net):
    with raises("method: unknown 'simpson'; expected one of riemann_left"):
        sa.integrated_gradients(net, X, target=0, method="simpson")
    with raises("n_steps must be positive"):
        sa.integrated_gradients(net, X, target=0, n_steps=0)
    with raises("n_steps must be at least 2 for riemann_trapezoid"):
        sa.integrated_gradients(net, X, target=0, n_steps=1, method="riemann_trapezoid")
    with raises(r"internal_batch_size must be in \[1, "):
        sa.integrated_gradients(net, X, target=0, internal_batch_size=-3)
    with raises("baselines: expected one example"):
        sa.integrated_gradients(net, X, np.zeros((3, 6)), target=0)
    with raises("baselines contains a non-finite"):
        sa.integrated_gradients(net, X, np.full(6, np.nan), target=0)
    with raises("nt_type: unknown"):
        sa.smoothgrad(net, X, target=0, nt_type="mean")
    with raises("stdevs must be finite"):
        sa.smoothgrad(net, X, target=0, stdevs=-1)
    with raises("n_samples must be positive"):
        sa.smoothgrad(net, X, target=0, n_samples=0)
    with raises("references: expected shape"):
        sa.expected_gradients(net, X, np.zeros((4, 5)), target=0)
    with raises("references: the batch is empty"):
        sa.expected_gradients(net, X, np.zeros((0, 6)), target=0)
    with raises("seed must be non-negative"):
        sa.expected_gradients(net, X, X, target=0, seed=-1)
    with raises("net: expected a swiftattr Network"):
        sa.saliency("model", X, target=0)
    with raises("grad_outputs: expected shape"):
        sa.gradient(net, X, np.zeros((2, 2)))


def test_layer_construction_errors(rng):
    with raises("layer 2 \\(Linear\\): Linear expects 5 input features, got 3"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), sa.ReLU(), sa.Linear(np.zeros((2, 5)))])
    with raises("Linear expects a flat per-example input"):
        sa.Sequential([sa.Conv2d(np.zeros((2, 1, 3, 3))), sa.Linear(np.zeros((2, 8)))], input_shape=(1, 5, 5))
    with raises("Conv2d expects 3 input channels, got 1"):
        sa.Sequential([sa.Conv2d(np.zeros((2, 3, 3, 3)))], input_shape=(1, 5, 5))
    with raises("kernel extent 7 exceeds the padded input size 5"):
        sa.Sequential([sa.Conv2d(np.zeros((2, 1, 7, 7)))], input_shape=(1, 5, 5))
    with raises("Softmax must be the final layer"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), sa.Softmax(), sa.ReLU()])
    with raises("input_shape is required"):
        sa.Sequential([sa.Conv2d(np.zeros((2, 1, 3, 3)))])
    with raises("weight contains a non-finite value"):
        sa.Sequential([sa.Linear(np.full((3, 4), np.nan))])
    with raises("Softplus beta must be positive"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), sa.Softplus(beta=0)])
    with raises("Dropout p must be in"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), sa.Dropout(1.5)])
    with raises("conv stride must be positive"):
        sa.Sequential([sa.Conv2d(np.zeros((2, 1, 3, 3)), stride=0)], input_shape=(1, 5, 5))
    with raises("pool padding"):
        sa.Sequential([sa.MaxPool2d(2, padding=2)], input_shape=(1, 5, 5))
    with raises(r"BatchNorm running_var: expected shape \(3,\) \(one per channel\), got \(2,\)"):
        sa.BatchNorm(np.zeros(3), np.ones(2))
    with raises("batchnorm running_var\\[0\\] \\+ eps must be positive"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), sa.BatchNorm(np.zeros(3), -np.ones(3))])
    with raises("layers\\[1\\]: expected a swiftattr layer"):
        sa.Sequential([sa.Linear(np.zeros((3, 4))), "relu"])
    with raises("input_shape"):
        sa.Sequential([sa.Linear(np.zeros((3, 4)))], input_shape=(0,))


def test_load_errors(tmp_path):
    with raises("path: cannot open"):
        sa.load(tmp_path / "missing.sam")
    bad = tmp_path / "bad.sam"
    bad.write_bytes(b"not a model at all")
    with raises("not a swiftattr model"):
        sa.load(bad)
    net = sa.Sequential([sa.Linear(np.ones((3, 4))), sa.ReLU(), sa.Linear(np.ones((2, 3)))])
    good = tmp_path / "good.sam"
    net.save(good)
    data = good.read_bytes()
    for cut in (10, 40, len(data) - 3):
        (tmp_path / "cut.sam").write_bytes(data[:cut])
        with raises("model file"):
            sa.load(tmp_path / "cut.sam")
    (tmp_path / "extra.sam").write_bytes(data + b"\0")
    with raises("trailing bytes"):
        sa.load(tmp_path / "extra.sam")


def test_memory_limits():
    with raises(r"layer 0 \(Conv2d\): its output \[4, 120002, 120002\] has 57601920016 values per example"):
        sa.Sequential([sa.Conv2d(np.ones((4, 1, 3, 3)), padding=60000)], input_shape=(1, 4, 4))
    net = sa.Sequential([sa.Conv2d(np.ones((4, 1, 3, 3)), padding=6000), sa.Flatten()], input_shape=(1, 4, 4))
    with raises("model: one example needs .* of working memory"):
        sa.saliency(net, np.ones((1, 1, 4, 4)), target=0)
    with raises("conv padding must be at most 65536"):
        sa.Sequential([sa.Conv2d(np.ones((4, 1, 3, 3)), padding=70000)], input_shape=(1, 4, 4))


def test_limits_found_by_fuzzing(net, tmp_path):
    # Huge step and sample counts are refused before any allocation (they used to abort the process).
    with raises(r"n_steps must be at most 1048576 \(got 68719476736\)"):
        sa.integrated_gradients(net, X, target=0, n_steps=2**36, method="riemann_middle")
    with raises("n_steps must be at most 4096 .* for gausslegendre"):
        sa.integrated_gradients(net, X, target=0, n_steps=20000)
    with raises("n_samples must be at most 1048576"):
        sa.expected_gradients(net, X, X, target=0, n_samples=2**36)
    with raises("n_samples must be at most 1048576"):
        sa.smoothgrad(net, X, target=0, n_samples=10**9)
    # A device or a directory is not a model file (reading /dev/zero used to never end).
    with raises("is not a regular file"):
        sa.load("/dev/zero")
    with raises("is not a regular file"):
        sa.load(tmp_path)
    # Overflow inside the model is an error, not a silent inf/NaN.
    big = sa.Sequential([sa.Linear(np.full((2, 4), 3e38)), sa.ReLU(), sa.Linear(np.full((2, 2), 3e38))])
    for call in (lambda: big.forward(np.ones((1, 4))), lambda: sa.integrated_gradients(big, np.ones((1, 4)), target=0),
                 lambda: sa.deeplift(big, np.ones((1, 4)), target=0)):
        with pytest.raises(sa.SwiftAttrError, match="the result is not finite") as e:
            call()
        assert e.value.code == -9


def test_python_integers_are_not_truncated(net):
    with raises(r"n_steps must be in"):
        sa.integrated_gradients(net, X, target=0, n_steps=2**64 + 50)
    with raises("n_steps: expected an integer, got 2.9"):
        sa.integrated_gradients(net, X, target=0, n_steps=2.9)
    with raises("n_steps: expected an integer, got True"):
        sa.integrated_gradients(net, X, target=0, n_steps=True)
    with raises("internal_batch_size: expected an integer"):
        sa.integrated_gradients(net, X, target=0, internal_batch_size=2.7)
    with raises("seed must be in"):
        sa.smoothgrad(net, X, target=0, seed=2**64 + 5)
    with raises("target: expected integer class indices, got True"):
        sa.saliency(net, X, target=True)
    with raises("target: expected one class index or one per example, got an array of shape"):
        sa.saliency(net, X, target=[[1], [1]])
    with raises("target = 9223372036854775808 is out of range"):
        sa.saliency(net, X, target=2**63)
    for name, call in [("method", lambda: sa.integrated_gradients(net, X, target=0, method=["x"])),
                       ("nt_type", lambda: sa.smoothgrad(net, X, target=0, nt_type=["x"])),
                       ("rule", lambda: sa.deeplift(net, X, target=0, rule=["rescale"]))]:
        with raises(f"{name}: unknown"):
            call()
    with raises("jitter: expected a number"):
        sa.rate(esa_mean=np.ones((1, 3)), esa_cov=np.eye(3)[None], jitter="a")
    with raises(r"nullify: expected integer variable indices"):
        sa.rate(esa_mean=np.ones((1, 3)), esa_cov=np.eye(3)[None], nullify=[1.7])
