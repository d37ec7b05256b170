"""Attribution priors from Python (sa.priors): the loss and parameter gradients of cross-entropy plus each
prior equal PyTorch's double back-propagation on ReLU models at the same weights, references and α's
(fixtures/priors_torch.npz, written by make_priors.py; torch is not needed here); the draws; copying and
pickling; repeatable training with a prior; argument errors with C's codes."""
import copy
import os
import pickle
import re

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi

from conftest import assert_prior_matches_torch, optional_import

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "priors_torch.npz")
SEED = 11
LAM = {"l1": 2.0, "gini": 1.0, "graph": 20.0, "tv": 0.5, "input_gradient": 100.0, "l1_k2": 2.0}


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE))


def build(fx, name):
    p = [fx[f"{name}_p{k}"] for k in range(6)]
    if name == "cnn":
        return sa.Sequential([
            sa.Conv2d(p[0], p[1], padding=1),
            sa.BatchNorm(fx["cnn_running_mean"], fx["cnn_running_var"], weight=p[2], bias=p[3], eps=1e-5),
            sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(), sa.Linear(p[4], p[5]),
        ], input_shape=(1, 6, 6))
    return sa.Sequential([sa.Linear(p[0], p[1]), sa.ReLU(), sa.Linear(p[2], p[3]), sa.ReLU(), sa.Linear(p[4], p[5])])


def prior_for(fx, name, case):
    lam = LAM[case]
    return {"l1": lambda: sa.priors.L1(lam), "l1_k2": lambda: sa.priors.L1(lam, k=2), "gini": lambda: sa.priors.Gini(lam),
            "graph": lambda: sa.priors.Graph(fx[f"graph_adjacency_{name}"], lam), "tv": lambda: sa.priors.TotalVariation(lam),
            "input_gradient": lambda: sa.priors.InputGradient(fx[f"mask_{name}"], lam)}[case]()


CASES = [(m, c) for m in ("mlp", "cnn") for c in ("l1", "gini", "graph", "input_gradient", "l1_k2")] + [("cnn", "tv")]


@pytest.mark.parametrize("name,case", CASES)
def test_penalised_gradients_equal_torch_double_backprop(fx, name, case):
    assert_prior_matches_torch(fx, build(fx, name), prior_for(fx, name, case), name, case, SEED)


def test_a_list_of_priors_adds_up(fx):
    net = build(fx, "mlp")
    x, y = fx["mlp_x"], fx["mlp_y"]
    a = sa.priors.L1(2.0)
    b = sa.priors.InputGradient(fx["mask_mlp"], 1.0)
    both, g_both = sa.loss_and_gradients(net, x, y, prior=[a, b], seed=SEED)
    la, ga = sa.loss_and_gradients(net, x, y, prior=a, seed=SEED)
    lb, gb = sa.loss_and_gradients(net, x, y, prior=b, seed=SEED)
    plain, gp = sa.loss_and_gradients(net, x, y)
    assert abs(both - (la + lb - plain)) < 1e-5 * abs(both)
    for g, u, v, w in zip(g_both, ga, gb, gp):
        np.testing.assert_allclose(g, u + v - w, atol=1e-5 * max(1, np.abs(g).max()))


def test_priors_copy_and_pickle(fx):
    for p in (sa.priors.L1(0.5, k=2), sa.priors.Gini(1.0), sa.priors.Graph(fx["graph_adjacency_mlp"], 0.1),
              sa.priors.TotalVariation(0.2), sa.priors.InputGradient(fx["mask_cnn"], 3.0),
              sa.priors.L1(1.0, references=fx["mlp_x"][:3])):
        for q in (copy.copy(p), copy.deepcopy(p), pickle.loads(pickle.dumps(p))):
            assert type(q) is type(p) and q.lam == p.lam and repr(q) == repr(p)
    p = sa.priors.L1(1.0, k=3)
    q = pickle.loads(pickle.dumps(p))
    for a, b in zip(p.draws(5, 2, step=4), q.draws(5, 2, step=4)):
        np.testing.assert_array_equal(a, b)


def test_draws_with_a_reference_set(fx):
    refs = fx["mlp_x"][:4]
    index, alpha = sa.priors.Gini(1.0, k=3, references=refs).draws(10, seed=1, step=2)
    assert index.shape == alpha.shape == (10, 3)
    assert index.min() >= 0 and index.max() < 4
    assert (alpha >= 0).all() and (alpha < 1).all()
    index, _ = sa.priors.L1(1.0).draws(10, seed=1)
    assert (index[:, 0] != np.arange(10)).all(), "batch references are other examples"


def test_same_seed_same_weights_with_a_prior(fx):
    net = build(fx, "mlp")
    x, y = fx["mlp_x"], fx["mlp_y"]
    kwargs = dict(epochs=3, batch_size=4, seed=5, progress=False, prior=[sa.priors.Gini(0.5), sa.priors.L1(0.1)])
    a, ha = sa.train(net, x, y, **kwargs)
    b, hb = sa.train(net, x, y, **kwargs)
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert ha["train_loss"] == hb["train_loss"]
    c, _ = sa.train(net, x, y, epochs=3, batch_size=4, seed=5, progress=False)
    assert any(not np.array_equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_bad_input_raises_with_c_codes(fx):
    mlp, cnn = build(fx, "mlp"), build(fx, "cnn")
    x, y = fx["mlp_x"], fx["mlp_y"]
    cases = [
        (mlp, sa.priors.InputGradient(np.ones(5), 1.0), "mask: expected shape (6,)", _ffi.SA_ERR_SHAPE),
        (mlp, sa.priors.Graph(np.ones((5, 5)), 1.0), "adjacency: expected shape (6, 6)", _ffi.SA_ERR_SHAPE),
        (mlp, sa.priors.TotalVariation(1.0), "TotalVariation needs image inputs", _ffi.SA_ERR_SHAPE),
        (mlp, sa.priors.L1(1.0, references=np.ones((3, 5))), "references: expected shape (R, 6)", _ffi.SA_ERR_SHAPE),
        (mlp, sa.priors.InputGradient(np.full(6, np.nan), 1.0), "mask", _ffi.SA_ERR_NON_FINITE),
        (mlp, sa.priors.Graph(np.full((6, 6), np.inf), 1.0), "adjacency", _ffi.SA_ERR_NON_FINITE),
        (mlp, sa.priors.L1(1.0, references=np.full((2, 6), np.nan)), "references", _ffi.SA_ERR_NON_FINITE),
        (mlp, [sa.priors.L1(1.0), "L1"], "prior[1]: expected a prior", _ffi.SA_ERR_INVALID_ARGUMENT),
    ]
    for net, prior, mention, code in cases:
        for call in (lambda: sa.loss_and_gradients(net, x, y, prior=prior, seed=0),
                     lambda: sa.train(net, x, y, prior=prior, epochs=1, progress=False)):
            with pytest.raises(sa.SwiftAttrError, match=re.escape(mention)) as e:
                call()
            assert e.value.code == code, (mention, e.value)
    for make, mention in ((lambda: sa.priors.L1(-1.0), "lam"), (lambda: sa.priors.Gini(float("nan")), "lam"),
                          (lambda: sa.priors.L1(1.0, k=0), "k"), (lambda: sa.priors.Graph(np.ones((2, 3)), 1.0), "adjacency"),
                          (lambda: sa.priors.L1("big"), "lam")):
        with pytest.raises(sa.SwiftAttrError, match=mention):
            make()
    with pytest.raises(sa.SwiftAttrError, match="draws no references"):
        sa.priors.InputGradient(np.ones(6), 1.0).draws(3, 0)
    # The CNN's image input takes TotalVariation; NaN inputs are refused by C.
    cx = fx["cnn_x"].copy()
    sa.loss_and_gradients(cnn, cx, fx["cnn_y"], prior=sa.priors.TotalVariation(1.0), seed=0)
    cx[0, 0, 1, 1] = np.nan
    with pytest.raises(sa.SwiftAttrError) as e:
        sa.loss_and_gradients(cnn, cx, fx["cnn_y"], prior=sa.priors.TotalVariation(1.0), seed=0)
    assert e.value.code == _ffi.SA_ERR_NON_FINITE


def test_torch_double_backprop_directly_when_installed(fx):
    """With torch importable: the same comparison on fresh random weights (not only the fixture's)."""
    torch = optional_import("torch")
    nn = torch.nn
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 4)).eval()
    net = sa.from_torch(model, input_shape=(5,))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    prior = sa.priors.Gini(2.0)
    index, alpha = prior.draws(8, 4)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    refs = xt[torch.from_numpy(index[:, 0])]
    pts = (refs + torch.from_numpy(alpha) * (xt - refs)).requires_grad_(True)
    (g,) = torch.autograd.grad(model(pts).gather(1, yt[:, None]).sum(), pts, create_graph=True)
    bar = ((xt - refs) * g).abs().mean(0)
    loss = nn.functional.cross_entropy(model(xt), yt) - 2.0 * 0.5 * (bar[:, None] - bar[None, :]).abs().mean() / bar.mean()
    loss.backward()
    value, grads = sa.loss_and_gradients(net, x, y, prior=prior, seed=4)
    assert abs(value - loss.item()) < 1e-4 * abs(loss.item())
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), atol=1e-4 * np.abs(p.grad.numpy()).max())
