"""sa.train, sa.loss_and_gradients and Network.parameters: against PyTorch's numbers from the committed
fixture (fixtures/training_torch.npz, written by make_training_fixtures.py; torch is not needed here), whole
runs, the callback, and argument errors.

Tolerances: float32 losses and gradients of these small models are computed by swiftattr and torch in
different summation orders; each entry carries a relative rounding error of a few float32 ulps per
operation over at most a few hundred operations (≤ ~1e-6 of the array's scale), so 1e-5 of the largest
entry of each array leaves an order of magnitude of margin while a wrong term is off by O(1). The optimiser
runs (6 steps) compound these errors but stay well below 1e-5 of the parameters' scale.
"""
import os
import re

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi
from conftest import optional_import

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "training_torch.npz")


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE))


def build(fx, name, params=None):
    p = params if params is not None else [fx[f"{name}_p{k}"] for k in range(6 if name == "cnn" else 4)]
    if name == "cnn":
        return sa.Sequential([
            sa.Conv2d(p[0], p[1], padding=1),
            sa.BatchNorm(fx["cnn_running_mean"], fx["cnn_running_var"], weight=p[2], bias=p[3], eps=1e-5),
            sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(), sa.Linear(p[4], p[5]),
        ], input_shape=(2, 6, 6))
    return sa.Sequential([sa.Linear(p[0], p[1]), sa.Tanh(), sa.Linear(p[2], p[3])])


def close(a, b, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, what
    scale = max(np.abs(b).max(), 1e-30)
    err = np.abs(a - b).max()
    assert err <= 1e-5 * scale, f"{what}: max error {err} > 1e-5 × {scale}"


@pytest.mark.parametrize("name", ["mlp", "mlp1", "cnn"])
def test_parameters_are_torchs_in_order_and_shape(fx, name):
    net = build(fx, name)
    params = net.parameters()
    n = 6 if name == "cnn" else 4
    assert len(params) == n
    for k in range(n):
        np.testing.assert_array_equal(params[k], fx[f"{name}_p{k}"])
    assert net.parameter_shapes() == [fx[f"{name}_p{k}"].shape for k in range(n)]


@pytest.mark.parametrize("name,case", [("mlp", "ce"), ("mlp", "mse"), ("mlp", "bce"), ("mlp1", "mse"), ("mlp1", "bce"),
                                       ("cnn", "ce"), ("cnn", "mse"), ("cnn", "bce")])
def test_loss_and_gradients_equal_torch(fx, name, case):
    net = build(fx, name)
    loss = {"ce": "cross_entropy", "mse": "mse", "bce": "binary_cross_entropy"}[case]
    value, grads = sa.loss_and_gradients(net, fx[f"{name}_x"], fx[f"{name}_y_{case}"], loss=loss)
    assert abs(value - fx[f"{name}_{case}_loss"]) <= 1e-5 * abs(fx[f"{name}_{case}_loss"])
    assert len(grads) == len(net.parameters())
    for k, g in enumerate(grads):
        close(g, fx[f"{name}_{case}_g{k}"], f"{name} {case} gradient {k}")


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizer_steps_equal_torch(fx, name, optimizer):
    net = build(fx, name)
    settings = {"adam": dict(lr=0.01, weight_decay=0.01), "sgd": dict(lr=0.1, momentum=0.9, weight_decay=0.01)}[optimizer]
    trained, history = sa.train(net, fx[f"{name}_x"], fx[f"{name}_y_ce"], loss="cross_entropy", optimizer=optimizer,
                                epochs=2, batch_size=8, shuffle=False, progress=False, **settings)
    assert history["epochs"] == 2 and len(history["train_loss"]) == 2
    for k, p in enumerate(trained.parameters()):
        close(p, fx[f"{name}_{optimizer}_p{k}"], f"{name} {optimizer} parameter {k}")
    # The network passed in is unchanged.
    np.testing.assert_array_equal(net.parameters()[0], fx[f"{name}_p0"])


def separable(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4 * n, 2)).astype(np.float32)
    x = x[np.abs(x.sum(1)) > 0.5][:n]
    return x, (x.sum(1) > 0).astype(np.int64)


def untrained():
    return sa.Sequential([sa.Linear(np.zeros((8, 2)), None), sa.Tanh(), sa.Linear(np.zeros((2, 8)), None)]).initialized(seed=1)


def test_training_separates_and_repeats_with_the_seed():
    x, y = separable()
    net = untrained()
    assert all(np.abs(p).max() > 0 for p in net.parameters())
    a, history = sa.train(net, x, y, lr=0.02, epochs=30, batch_size=16, seed=4, progress=False)
    assert (a.forward(x).argmax(1) == y).all()
    assert history["train_loss"][-1] < history["train_loss"][0]
    b, again = sa.train(net, x, y, lr=0.02, epochs=30, batch_size=16, seed=4, progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert again == history
    c, _ = sa.train(net, x, y, lr=0.02, epochs=30, batch_size=16, seed=5, progress=False)
    assert not np.array_equal(a.parameters()[0], c.parameters()[0])


def test_validation_history_and_early_stopping():
    x, y = separable(120, seed=1)
    rng = np.random.default_rng(2)
    noisy = rng.integers(0, 2, 120)  # random labels: the validation loss turns up, early stopping fires
    vx, vy = separable(100, seed=3)
    trained, h = sa.train(untrained(), x, noisy, lr=0.05, epochs=80, batch_size=8, seed=0, validation=(vx, vy),
                          patience=4, progress=False)
    assert set(h) == {"train_loss", "val_loss", "val_accuracy", "epochs", "best_epoch"}
    assert h["epochs"] == h["best_epoch"] + 4 < 80
    assert h["val_loss"][h["best_epoch"] - 1] == min(h["val_loss"])
    # The returned weights are the best epoch's: a run of exactly that many epochs gives them.
    exact, _ = sa.train(untrained(), x, noisy, lr=0.05, epochs=h["best_epoch"], batch_size=8, seed=0, progress=False)
    for p, q in zip(trained.parameters(), exact.parameters()):
        np.testing.assert_array_equal(p, q)


def test_callback_receives_logs_stops_and_reraises():
    x, y = separable(64)
    seen = []

    def cb(epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 3

    _, h = sa.train(untrained(), x, y, epochs=10, validation=(x, y), callback=cb, seed=0, progress=False)
    assert h["epochs"] == 3 and [e for e, _ in seen] == [1, 2, 3]
    assert seen[0][1] == ["train_loss", "val_accuracy", "val_loss"]

    class Boom(Exception):
        pass

    def bad(epoch, logs):
        if epoch == 2:
            raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        sa.train(untrained(), x, y, epochs=10, callback=bad, seed=0, progress=False)


def test_progress_bar_when_tqdm_is_importable(capsys):
    optional_import("tqdm")
    x, y = separable(32)
    sa.train(untrained(), x, y, epochs=2, seed=0, progress=True)
    assert "epoch" in capsys.readouterr().err


def test_nan_loss_names_epoch_and_step():
    x, y = separable(64)
    targets = np.full((64, 2), 1e4, np.float32)
    with pytest.raises(sa.SwiftAttrError, match=r"at epoch 1, step \d+") as e:
        sa.train(untrained(), x, targets, loss="mse", optimizer="sgd", lr=1e30, epochs=3, seed=0, progress=False)
    assert e.value.code == _ffi.SA_ERR_NUMERICAL


def test_with_parameters_round_trips_and_checks(fx):
    net = build(fx, "mlp")
    p = net.parameters()
    p[1] = p[1] + 1
    other = net.with_parameters(p)
    np.testing.assert_array_equal(other.parameters()[1], p[1])
    with pytest.raises(sa.SwiftAttrError, match=r"parameters\[0\]: expected shape \(8, 6\)") as e:
        net.with_parameters([p[0].T] + p[1:])
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="4 parameter arrays"):
        net.with_parameters(p[:3])


def test_argument_errors(fx):
    net = build(fx, "mlp")
    x, y = fx["mlp_x"], fx["mlp_y_ce"]
    cases = [
        (dict(loss="hinge"), "loss", _ffi.SA_ERR_UNKNOWN_ENUM),
        (dict(optimizer="rmsprop"), "optimizer", _ffi.SA_ERR_UNKNOWN_ENUM),
        (dict(metric="f1"), "metric", _ffi.SA_ERR_UNKNOWN_ENUM),
        (dict(lr=-1.0), "lr", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(lr="fast"), "lr", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(epochs=0), "epochs", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(batch_size=2.5), "batch_size", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(momentum=-0.5, optimizer="sgd"), "momentum", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(betas=(0.9,)), "betas", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(betas=(0.9, 1.0)), "betas[1]", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(weight_decay=float("nan")), "weight_decay", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(patience=3), "validation set", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(patience=0, validation=(x, y)), "patience", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(validation=x), "validation", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(shuffle="yes"), "shuffle", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(seed=-1), "seed", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(callback=3), "callback", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(progress="bar"), "progress", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(prior=object()), "expected a prior", _ffi.SA_ERR_INVALID_ARGUMENT),
        (dict(loss="mse", metric="accuracy", validation=(x, fx["mlp_y_mse"])), "metric", _ffi.SA_ERR_INVALID_ARGUMENT),
    ]
    for kwargs, mention, code in cases:
        with pytest.raises(sa.SwiftAttrError, match=re.escape(mention)) as e:
            args = dict(dict(epochs=1, progress=False), **kwargs)
            sa.train(net, x, fx["mlp_y_mse"] if kwargs.get("loss") == "mse" else y, **args)
        assert e.value.code == code, (kwargs, e.value)
    label_cases = [
        (y[:5], "cross_entropy", r"y: expected 20 class indices", _ffi.SA_ERR_SHAPE),
        (y.astype(np.float32), "cross_entropy", "integer class indices", _ffi.SA_ERR_INVALID_ARGUMENT),
        (np.where(np.arange(20) == 7, 4, y), "cross_entropy", r"y\[7\] = 4 is out of range 0..<4", _ffi.SA_ERR_OUT_OF_RANGE),
        (fx["mlp_y_mse"][:, :3], "mse", r"y: expected targets of shape \(20, 4\)", _ffi.SA_ERR_SHAPE),
        (fx["mlp_y_mse"] + 5, "binary_cross_entropy", r"\[0, 1\]", _ffi.SA_ERR_OUT_OF_RANGE),
    ]
    for labels, loss, mention, code in label_cases:
        for call in (lambda: sa.loss_and_gradients(net, x, labels, loss=loss),
                     lambda: sa.train(net, x, labels, loss=loss, epochs=1, progress=False)):
            with pytest.raises(sa.SwiftAttrError, match=mention) as e:
                call()
            assert e.value.code == code
    with pytest.raises(sa.SwiftAttrError, match="X: expected shape") as e:
        sa.loss_and_gradients(net, x[:, :5], y)
    assert e.value.code == _ffi.SA_ERR_SHAPE
    with pytest.raises(sa.SwiftAttrError, match="validation\\[1\\]"):
        sa.train(net, x, y, validation=(x, y[:3]), progress=False)
    with pytest.raises(sa.SwiftAttrError, match="expected a prior"):
        sa.loss_and_gradients(net, x, y, prior=object())
    xn = x.copy()
    xn[3, 2] = np.nan
    with pytest.raises(sa.SwiftAttrError, match=r"x contains a non-finite value \(nan\) at flat index 20") as e:
        sa.train(net, xn, y, epochs=1, progress=False)
    assert e.value.code == _ffi.SA_ERR_NON_FINITE


def test_a_model_ending_in_softmax_trains_on_its_logits(fx):
    p = [fx[f"mlp_p{k}"] for k in range(4)]
    logits = build(fx, "mlp")
    soft = sa.Sequential([sa.Linear(p[0], p[1]), sa.Tanh(), sa.Linear(p[2], p[3]), sa.Softmax()])
    a = sa.loss_and_gradients(logits, fx["mlp_x"], fx["mlp_y_ce"])
    b = sa.loss_and_gradients(soft, fx["mlp_x"], fx["mlp_y_ce"])
    assert a[0] == b[0]
    for g, h in zip(a[1], b[1]):
        np.testing.assert_array_equal(g, h)
    trained, _ = sa.train(soft, fx["mlp_x"], fx["mlp_y_ce"], epochs=1, seed=0, progress=False)
    assert trained.layer_kinds[-1] == "softmax"
    np.testing.assert_allclose(trained.forward(fx["mlp_x"]).sum(1), 1, rtol=1e-6)


def test_models_from_torch_and_onnx_train():
    """Converted models train: a torch module through sa.from_torch (SGD steps equal torch's), and the
    committed ONNX ResNet and MLP exports (one epoch lowers nothing to NaN and changes every parameter array)."""
    torch = optional_import("torch")
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ELU(), torch.nn.Linear(7, 3)).eval()
    net = sa.from_torch(module, input_shape=(5,))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    trained, _ = sa.train(net, x, y, optimizer="sgd", lr=0.1, momentum=0.5, epochs=1, batch_size=4, shuffle=False, progress=False)
    opt = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.5)
    for s in range(0, 16, 4):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(torch.from_numpy(x[s:s + 4])), torch.from_numpy(y[s:s + 4])).backward()
        opt.step()
    for k, (p, q) in enumerate(zip(trained.parameters(), module.parameters())):
        close(p, q.detach().numpy(), f"from_torch parameter {k}")
    optional_import("onnx")
    fixtures = os.path.join(os.path.dirname(__file__), "fixtures")
    for name in ("mlp", "resnet"):
        onnx_net = sa.from_onnx(os.path.join(fixtures, f"{name}.onnx"))
        xs = rng.standard_normal((8,) + onnx_net.input_shape).astype(np.float32)
        ys = rng.integers(0, onnx_net.output_size, 8)
        after, h = sa.train(onnx_net, xs, ys, epochs=1, batch_size=4, lr=1e-2, seed=0, progress=False)
        assert np.isfinite(h["train_loss"][0])
        for p, q in zip(after.parameters(), onnx_net.parameters()):
            assert not np.array_equal(p, q)
