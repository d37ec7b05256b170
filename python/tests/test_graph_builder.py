"""sa.Graph: residual connections, concatenation and fan-out, built node by node."""
import copy
import pickle

import numpy as np
import pytest

import swiftattr as sa


def residual_mlp(rng):
    W1, b1 = rng.standard_normal((6, 6)) * 0.5, rng.standard_normal(6) * 0.1
    W2, b2 = rng.standard_normal((6, 6)) * 0.5, rng.standard_normal(6) * 0.1
    W3, b3 = rng.standard_normal((3, 12)) * 0.5, rng.standard_normal(3) * 0.1
    g = sa.Graph(input_shape=(6,))
    h = g.add(sa.Linear(W1, b1))
    r = g.add(sa.Tanh(), h)
    h2 = g.add(sa.Linear(W2, b2), r)
    s = g.add(sa.Add(), [h2, g.input])
    c = g.add(sa.Concat(), [s, r])
    g.add(sa.Linear(W3, b3), c)

    def reference(x):
        r_ = np.tanh(x @ W1.T + b1)
        s_ = r_ @ W2.T + b2 + x
        return np.concatenate([s_, r_], axis=1) @ W3.T + b3

    return g.build(), reference


def test_forward_equals_numpy(rng):
    net, reference = residual_mlp(rng)
    x = rng.standard_normal((5, 6))
    # Three layers of K <= 12 float32 products on values of order 1: 1e-5 is far above their rounding.
    np.testing.assert_allclose(net.forward(x), reference(x), rtol=1e-5, atol=1e-5)
    assert net.node_inputs[3] == (3, 0) and net.node_inputs[4] == (4, 2)
    assert net.layer_kinds[3:5] == ["add", "concat"]


def test_integrated_gradients_completeness_on_a_graph(rng):
    net, reference = residual_mlp(rng)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    phi, delta = sa.integrated_gradients(net, x, target=1, n_steps=64, return_convergence_delta=True)
    change = reference(x)[:, 1] - reference(np.zeros_like(x))[:, 1]
    np.testing.assert_allclose(phi.sum(axis=1), change, rtol=1e-4, atol=1e-4)
    assert np.abs(delta).max() < 1e-4


def test_save_load_copy_and_pickle_keep_the_graph(rng, tmp_path):
    net, _ = residual_mlp(rng)
    x = rng.standard_normal((3, 6)).astype(np.float32)
    path = tmp_path / "graph.sam"
    net.save(path)
    assert path.read_bytes()[:8] == b"SAMODEL2"
    for other in (sa.load(path), copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        np.testing.assert_array_equal(other.forward(x), net.forward(x))
        assert other.node_inputs == net.node_inputs


def test_penultimate_is_the_input_of_the_final_linear(rng):
    net, _ = residual_mlp(rng)
    x = rng.standard_normal((2, 6))
    assert net.penultimate(x).shape == (2, 12)


def test_graph_errors(rng):
    g = sa.Graph(input_shape=(4,))
    h = g.add(sa.Linear(np.ones((3, 4))))
    with pytest.raises(sa.SwiftAttrError, match="at least two"):
        g.add(sa.Add(), [h])
    with pytest.raises(sa.SwiftAttrError, match="inputs"):
        g.add(sa.ReLU(), 7)
    with pytest.raises(sa.SwiftAttrError, match="exactly one"):
        g.add(sa.ReLU(), [0, 1])
    g.add(sa.Add(), [h, 0])
    with pytest.raises(sa.SwiftAttrError, match="Add needs inputs of one shape") as e:
        g.build()
    assert e.value.code == -3
