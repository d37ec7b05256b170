"""Sequence models (sa.Embedding, sa.LSTM): forward and attributions at the embedding layer against torch and
Captum (fixtures/lstm_captum.npz, made by fixtures/make_lstm_fixtures.py; these tests read only the fixture,
so they run without torch), the sum_embedding option and the forms of baselines, token-id checks, model
files and pickles, and sa.from_torch of Embedding + LSTM modules (skipped without torch).

Tolerances: the references are float64 on the float32 weights; swiftattr computes in float32, whose forward
rounds at a few 1e-7 relative per step (9 steps: ~1e-6 of the output's scale). IG and DeepLIFT add per-point
rounding of the same order, so 1e-4 of each array's largest magnitude bounds float32 arithmetic with room
while any wrong gate, sign or index (an O(1) relative error) fails."""
import copy
import os
import pickle

import numpy as np
import pytest

import swiftattr as sa
from swiftattr._ffi import SA_ERR_INVALID_ARGUMENT, SA_ERR_OUT_OF_RANGE

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = np.load(os.path.join(HERE, "fixtures", "lstm_captum.npz"))
CASES = ["last", "seq"]


def _net(name):
    f = lambda k: FIXTURE[f"{name}_{k}"]
    L = f("x").shape[1]
    seq = name == "seq"
    layers = [sa.Embedding(f("emb")), sa.LSTM(f("wih"), f("whh"), f("bih"), f("bhh"), return_sequences=seq)]
    layers += [sa.Flatten()] if seq else []
    layers += [sa.Linear(f("wout"), f("bout"))]
    return sa.Sequential(layers, input_shape=(L,))


def _close(a, b, what, rel=1e-4):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    err = np.abs(a - b).max()
    assert err <= rel * np.abs(b).max(), f"{what}: max error {err:.3g} > {rel} × {np.abs(b).max():.3g}"


@pytest.mark.parametrize("name", CASES)
def test_forward_equals_torch(name):
    net = _net(name)
    assert net.is_token_model and net.layer_kinds[:2] == ["embedding", "lstm"]
    _close(net.forward(FIXTURE[f"{name}_x"]), FIXTURE[f"{name}_out"], f"{name} forward", rel=1e-5)


@pytest.mark.parametrize("name", CASES)
def test_integrated_gradients_equal_captum_layer_ig(name):
    net, x, pad, t = _net(name), FIXTURE[f"{name}_x"], FIXTURE[f"{name}_pad"], FIXTURE[f"{name}_t"]
    n_steps = int(FIXTURE["n_steps"])
    lig = FIXTURE[f"{name}_lig"]
    full = sa.integrated_gradients(net, x, baselines=pad, target=t, n_steps=n_steps, sum_embedding=False)
    _close(full, lig, f"{name} IG per embedding coordinate vs LayerIntegratedGradients")
    tokens, delta = sa.integrated_gradients(net, x, baselines=pad, target=t, n_steps=n_steps, return_convergence_delta=True)
    assert tokens.shape == x.shape
    _close(tokens, lig.sum(-1), f"{name} IG per token")
    # Baselines as embedding vectors give the same path.
    _close(sa.integrated_gradients(net, x, baselines=net.embed(pad), target=t, n_steps=n_steps), tokens, f"{name} vector baselines")
    # No baselines: zero embedding vectors (Captum's IntegratedGradients of the network after the embedding).
    _close(sa.integrated_gradients(net, x, target=t, n_steps=n_steps, sum_embedding=False), FIXTURE[f"{name}_igzero"],
           f"{name} IG from zero vectors")
    assert np.abs(delta).max() < 1e-3


@pytest.mark.parametrize("name", CASES)
def test_saliency_equals_captum_at_the_embedding(name):
    net, x, t = _net(name), FIXTURE[f"{name}_x"], FIXTURE[f"{name}_t"]
    sal = FIXTURE[f"{name}_sal"]
    _close(sa.saliency(net, x, target=t, abs=False, sum_embedding=False), sal, f"{name} saliency")
    _close(sa.saliency(net, x, target=t), np.abs(sal).sum(-1), f"{name} |saliency| per token")
    e = net.embed(x)
    _close(sa.input_x_gradient(net, x, target=t), (e * sal).sum(-1), f"{name} input×gradient per token")


@pytest.mark.parametrize("name", CASES)
def test_deeplift_equals_the_float64_reference(name):
    net, x, pad, t = _net(name), FIXTURE[f"{name}_x"], FIXTURE[f"{name}_pad"], FIXTURE[f"{name}_t"]
    dl = FIXTURE[f"{name}_dl"]
    full, delta = sa.deeplift(net, x, baselines=pad, target=t, sum_embedding=False, return_convergence_delta=True)
    _close(full, dl, f"{name} DeepLIFT")
    assert np.abs(delta).max() < 1e-4, "summation-to-delta"
    _close(sa.deeplift(net, x, baselines=pad, target=t), dl.sum(-1), f"{name} DeepLIFT per token")
    # DeepSHAP over one reference is DeepLIFT.
    _close(sa.deepshap(net, x, pad[:1], target=t), dl.sum(-1), f"{name} DeepSHAP, one reference")


def test_other_gradient_methods_run_per_token():
    net, x, t = _net("last"), FIXTURE["last_x"], FIXTURE["last_t"]
    L, E = x.shape[1], net.embedding_dim
    assert sa.smoothgrad(net, x, target=t, n_samples=4, stdevs=0.1, seed=3).shape == x.shape
    assert sa.smoothgrad(net, x, target=t, n_samples=4, stdevs=0.1, seed=3, sum_embedding=False).shape == x.shape + (E,)
    refs = np.stack([FIXTURE["last_pad"][0], x[0]])
    eg = sa.expected_gradients(net, x, refs, target=t, n_samples=16, seed=1)
    _close(eg, sa.expected_gradients(net, x, net.embed(refs), target=t, n_samples=16, seed=1), "EG, vector references", rel=1e-6)
    grad = sa.gradient(net, x, np.eye(3)[t], sum_embedding=False)
    _close(grad, FIXTURE["last_sal"], "gradient")


def test_token_ids_are_checked():
    net, x = _net("last"), FIXTURE["last_x"].copy()
    x[2, 3] = 11  # vocab size 11
    with pytest.raises(sa.SwiftAttrError, match=r"x\[21\] = 11") as e:
        sa.saliency(net, x, target=0)
    assert e.value.code == SA_ERR_OUT_OF_RANGE
    with pytest.raises(sa.SwiftAttrError, match="baselines") as e:
        sa.integrated_gradients(net, FIXTURE["last_x"], baselines=np.full(9, -1), target=0)
    assert e.value.code == SA_ERR_OUT_OF_RANGE
    with pytest.raises(sa.SwiftAttrError, match=r"x\[0\] = 0.5"):
        net.forward(np.full((1, 9), 0.5))
    with pytest.raises(sa.SwiftAttrError, match="not supported for LSTM layers yet") as e:
        sa.integrated_hessians(net, FIXTURE["last_x"][:1], target=0)
    assert e.value.code == SA_ERR_INVALID_ARGUMENT


def test_builders_check_shapes():
    with pytest.raises(sa.SwiftAttrError, match="4\\*hidden_size"):
        sa.LSTM(np.zeros((6, 2)), np.zeros((8, 2)))
    with pytest.raises(sa.SwiftAttrError, match="node 0"):
        sa.Sequential([sa.Linear(np.ones((3, 3))), sa.Embedding(np.ones((4, 3)))], input_shape=(3,))


def test_model_file_and_pickle_round_trip(tmp_path):
    for name in CASES:
        net, x = _net(name), FIXTURE[f"{name}_x"]
        path = tmp_path / f"{name}.sam"
        net.save(path)
        back = sa.load(path)
        assert back.layer_kinds == net.layer_kinds
        np.testing.assert_array_equal(back.forward(x), net.forward(x))
        for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
            np.testing.assert_array_equal(sa.saliency(other, x, target=0), sa.saliency(net, x, target=0))


# -- sa.from_torch (needs torch) ------------------------------------------------------------------------

try:
    import torch
except ImportError:  # CI: the fixture tests above still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _modules():
    import torch.nn as nn

    class OutLast(nn.Module):
        def __init__(self, lstm=None):
            super().__init__()
            self.emb = nn.Embedding(13, 4)
            self.lstm = lstm or nn.LSTM(4, 5, batch_first=True)
            self.fc = nn.Linear(5, 3)

        def forward(self, x):
            out, _ = self.lstm(self.emb(x))
            return self.fc(out[:, -1])

    class HLast(OutLast):
        def forward(self, x):
            _, (h, _) = self.lstm(self.emb(x))
            return self.fc(torch.tanh(h[-1]))

    class HSqueeze(OutLast):
        def forward(self, x):
            _, (h, c) = self.lstm(self.emb(x))
            return self.fc(h.squeeze(0))

    class Every(OutLast):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6 * 5, 3)

        def forward(self, x):
            out, _ = self.lstm(self.emb(x))
            return self.fc(out.reshape(x.size(0), -1))

    class CellState(OutLast):
        def forward(self, x):
            _, (h, c) = self.lstm(self.emb(x))
            return self.fc(c[-1])

    return OutLast, HLast, HSqueeze, Every, CellState


@needs_torch
def test_from_torch_converts_embedding_lstm_models():
    OutLast, HLast, HSqueeze, Every, _ = _modules()
    torch.manual_seed(0)
    x = torch.randint(0, 13, (4, 6))
    for cls in (OutLast, HLast, HSqueeze, Every):
        module = cls().eval()
        net = sa.from_torch(module, input_shape=(6,))
        assert net.layer_kinds[:2] == ["embedding", "lstm"], cls.__name__
        with torch.no_grad():
            _close(net.forward(x), module(x).numpy(), f"{cls.__name__} forward", rel=1e-5)
        lazy = sa.from_torch(module)  # planned for the shape of the ids
        _close(sa.saliency(lazy, x, target=1), sa.saliency(net, x, target=1), f"{cls.__name__} lazy", rel=1e-6)


@needs_torch
def test_from_torch_rejects_unsupported_lstms():
    import torch.nn as nn

    OutLast, _, _, _, CellState = _modules()
    for lstm, why in [(nn.LSTM(4, 5, batch_first=True, bidirectional=True), "bidirectional"),
                      (nn.LSTM(4, 5, num_layers=2, batch_first=True), "num_layers=2"),
                      (nn.LSTM(4, 5), "batch_first=False")]:
        with pytest.raises(sa.SwiftAttrError, match=why):
            sa.from_torch(OutLast(lstm), input_shape=(6,))
    with pytest.raises(sa.SwiftAttrError, match="LSTM"):
        sa.from_torch(CellState(), input_shape=(6,))
