"""Model building, save/load and the converters."""
import subprocess
import sys

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import, small_cnn, smooth_mlp


def every_layer_net(rng):
    return sa.Sequential([
        sa.Conv1d(rng.standard_normal((4, 2, 3)), rng.standard_normal(4), padding=1), sa.BatchNorm(
            rng.standard_normal(4), rng.random(4) + 0.5, rng.standard_normal(4), rng.standard_normal(4)),
        sa.LeakyReLU(0.1), sa.MaxPool1d(2), sa.ELU(0.7), sa.AvgPool1d(3, stride=1, padding=1), sa.Dropout(0.2),
        sa.Flatten(), sa.Linear(rng.standard_normal((6, 4 * 8)) * 0.2), sa.Sigmoid(),
        sa.Linear(rng.standard_normal((5, 6))), sa.Softplus(3.0), sa.Linear(rng.standard_normal((3, 5))), sa.Softmax(),
    ], input_shape=(2, 16))


def every_layer_cnn(rng):
    return sa.Sequential([
        sa.Conv2d(rng.standard_normal((3, 1, 3, 3)), None, stride=(1, 2), padding=1, dilation=(2, 1)), sa.Tanh(),
        sa.MaxPool2d(2, padding=1), sa.AvgPool2d((2, 1)), sa.ReLU(), sa.GlobalAvgPool(),
        sa.Linear(rng.standard_normal((2, 3))),
    ], input_shape=(1, 12, 10))


@pytest.mark.parametrize("build", [smooth_mlp, small_cnn, every_layer_net, every_layer_cnn])
def test_save_load_round_trip(tmp_path, rng, build):
    net = build(rng)
    x = rng.standard_normal((4,) + net.input_shape).astype(np.float32)
    path = tmp_path / "model.sam"
    net.save(path)
    loaded = sa.load(path)
    assert loaded.input_shape == net.input_shape
    assert loaded.layer_kinds == net.layer_kinds
    np.testing.assert_array_equal(loaded.forward(x), net.forward(x))
    t = 0
    np.testing.assert_array_equal(sa.integrated_gradients(loaded, x, target=t), sa.integrated_gradients(net, x, target=t))


def test_softmax_rows_sum_to_one(rng):
    net = every_layer_net(rng)
    y = net.forward(rng.standard_normal((5, 2, 16)))
    np.testing.assert_allclose(y.sum(1), 1, rtol=1e-6)


def test_penultimate_and_activations(rng):
    net = smooth_mlp(rng)
    x = rng.standard_normal((3, 6))
    h = net.penultimate(x)
    assert h.shape == (3, 16)
    # activations() chunks rows differently from forward() (other GEMM shapes, which OpenBLAS may run on other
    # kernels): equal within float32 rounding, K·u·Σ|w||x| per layer (K ≤ 16, u = 6e-8), not bit for bit.
    np.testing.assert_allclose(net.activations(x, net.num_layers), net.forward(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.activations(x, 0), x.astype(np.float32))


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer:UserWarning")  # sklearn: the short fits do not converge, by design
def test_from_sklearn(rng):
    sklearn = optional_import("sklearn")
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    X = rng.standard_normal((200, 5))
    y3 = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5).astype(int)
    for activation in ["relu", "tanh", "logistic", "identity"]:
        clf = MLPClassifier(hidden_layer_sizes=(8, 6), activation=activation, max_iter=50, random_state=0).fit(X, y3)
        net = sa.from_sklearn(clf)
        np.testing.assert_allclose(net.forward(X), clf.predict_proba(X), rtol=1e-4, atol=1e-5)
    binary = MLPClassifier(hidden_layer_sizes=(7,), max_iter=50, random_state=0).fit(X, X[:, 0] > 0)
    np.testing.assert_allclose(sa.from_sklearn(binary).forward(X), binary.predict_proba(X), rtol=1e-4, atol=1e-5)
    reg = MLPRegressor(hidden_layer_sizes=(9,), max_iter=50, random_state=0).fit(X, X[:, 0] * 2)
    np.testing.assert_allclose(sa.from_sklearn(reg).forward(X)[:, 0], reg.predict(X), rtol=1e-4, atol=1e-5)
    with pytest.raises(sa.SwiftAttrError, match="expected MLPClassifier or MLPRegressor"):
        sa.from_sklearn(object())
    with pytest.raises(sa.SwiftAttrError, match="not fitted"):
        sa.from_sklearn(MLPClassifier())


def test_from_torch(rng):
    torch = optional_import("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding="valid"), nn.ELU()), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(6, 5), nn.LeakyReLU(0.2), nn.Linear(5, 3), nn.Softmax(dim=1),
    )
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
        model[1].running_var.uniform_(0.5, 2)
    model.eval()
    net = sa.from_torch(model, input_shape=(2, 10, 10))
    x = rng.standard_normal((4, 2, 10, 10)).astype(np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.forward(x), expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(sa.SwiftAttrError, match=r"unsupported operation GRU at '1' \(node _1\)"):
        sa.from_torch(nn.Sequential(nn.Linear(3, 3), nn.GRU(3, 3)))


def test_import_from_any_directory(tmp_path):
    out = subprocess.run([sys.executable, "-c", "import swiftattr as sa; print(sa.__version__)"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
