"""Attribution priors on LSTM models and token (Embedding-first) models through the public API: the loss and
parameter gradients of cross-entropy plus each prior equal PyTorch's double back-propagation at the same
weights, references and α's (fixtures/priors_lstm_torch.npz, written by make_priors_lstm.py; torch is not
needed here); a token LSTM classifier trains with every prior that applies (and DAPr), repeatably; a token
model's masks are per token and its references must be token ids."""
import os
import re

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi

from conftest import assert_prior_matches_torch

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "priors_lstm_torch.npz")
SEED = 5
LAM = {"l1": 2.0, "gini": 1.0, "input_gradient": 500.0, "l1_k2": 2.0}


@pytest.fixture(scope="module")
def fx():
    return dict(np.load(FIXTURE))


def build(fx, name):
    if name == "seq":
        p = [fx[f"seq_p{k}"] for k in range(6)]
        return sa.Sequential([sa.LSTM(p[0], p[1], p[2], p[3]), sa.Linear(p[4], p[5])], input_shape=(5, 3))
    p = [fx[f"text_p{k}"] for k in range(7)]
    return sa.Sequential([sa.Embedding(p[0]), sa.LSTM(p[1], p[2], p[3], p[4]), sa.Linear(p[5], p[6])], input_shape=(5,))


def prior_for(fx, name, case):
    lam = LAM[case]
    return {"l1": lambda: sa.priors.L1(lam), "l1_k2": lambda: sa.priors.L1(lam, k=2), "gini": lambda: sa.priors.Gini(lam),
            "input_gradient": lambda: sa.priors.InputGradient(fx[f"mask_{name}"], lam)}[case]()


@pytest.mark.parametrize("name,case", [(m, c) for m in ("seq", "text") for c in ("l1", "gini", "input_gradient", "l1_k2")])
def test_penalised_gradients_equal_torch_double_backprop(fx, name, case):
    assert_prior_matches_torch(fx, build(fx, name), prior_for(fx, name, case), name, case, SEED)


def token_classifier(seed=0):
    rng = np.random.default_rng(seed)
    net = sa.Sequential([sa.Embedding(rng.standard_normal((8, 3))),
                         sa.LSTM(0.5 * rng.standard_normal((16, 3)), 0.5 * rng.standard_normal((16, 4))),
                         sa.Linear(rng.standard_normal((2, 4)))], input_shape=(6,))
    ids = rng.integers(0, 8, (48, 6))
    y = (ids == 3).any(axis=1).astype(np.int64)
    return net, ids, y


@pytest.mark.parametrize("make", [
    lambda: sa.priors.L1(0.5), lambda: sa.priors.Gini(0.5, k=2), lambda: sa.priors.Graph(np.eye(6, k=1) + np.eye(6, k=-1), 1.0),
    lambda: sa.priors.InputGradient(np.array([1, 1, 0, 0, 0, 0]), 1.0), lambda: sa.priors.L1(0.5, references=np.zeros((1, 6))),
    lambda: sa.DAPr(np.arange(12, dtype=np.float32).reshape(6, 2) / 12, lam=0.5),
], ids=["L1", "Gini", "Graph", "InputGradient", "L1-pad-reference", "DAPr"])
def test_token_lstm_trains_with_a_prior(make):
    net, ids, y = token_classifier()
    kwargs = dict(epochs=2, batch_size=16, seed=3, progress=False)
    a, ha = sa.train(net, ids, y, prior=make(), **kwargs)
    b, hb = sa.train(net, ids, y, prior=make(), **kwargs)
    assert np.isfinite(ha["train_loss"]).all() and ha["train_loss"] == hb["train_loss"]
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    plain, _ = sa.train(net, ids, y, **kwargs)
    assert not np.array_equal(a.parameters()[0], plain.parameters()[0]), "the prior reaches the embedding table"


def test_token_model_penalty_shapes_and_ids():
    net, ids, y = token_classifier()
    cases = [
        (sa.priors.InputGradient(np.ones((6, 3)), 1.0), "mask: expected shape (6,)", _ffi.SA_ERR_SHAPE),
        (sa.priors.L1(1.0, references=np.full((2, 6), 0.5)), "references", _ffi.SA_ERR_OUT_OF_RANGE),
        (sa.priors.L1(1.0, references=np.full((2, 6), 8.0)), "references", _ffi.SA_ERR_OUT_OF_RANGE),
    ]
    for prior, mention, code in cases:
        with pytest.raises(sa.SwiftAttrError, match=re.escape(mention)) as e:
            sa.loss_and_gradients(net, ids, y, prior=prior, seed=0)
        assert e.value.code == code, (mention, e.value)
