"""LRP, guided backpropagation and deconvolution against Captum (fixtures/rules_captum.npz, written by
fixtures/make_rules.py; no torch needed here), conservation, and argument errors (the same codes as C)."""
import os

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import _ffi

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "rules_captum.npz")
DATA = np.load(FIXTURE)


def assert_close_relative(ours, theirs, rtol=1e-4):
    """|a − b| ≤ rtol·max|b| elementwise: float32 products and sums of O(10²) terms per output round at
    about 1e-6 of the scale, well inside 1e-4."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rtol * scale, np.abs(ours - theirs).max() / scale


def mlp():
    p = lambda k: DATA[f"mlp_{k}"]
    return sa.Sequential([sa.Linear(p("l0.weight"), p("l0.bias")), sa.ReLU(), sa.Linear(p("l2.weight"), p("l2.bias")), sa.ReLU(),
                          sa.Linear(p("l4.weight"), p("l4.bias"))])


def cnn():
    p = lambda k: DATA[f"cnn_{k}"]
    return sa.Sequential([
        sa.Conv2d(p("c0.weight"), p("c0.bias"), padding=1),
        sa.BatchNorm2d(p("bn1.running_mean"), p("bn1.running_var"), p("bn1.weight"), p("bn1.bias")),
        sa.ReLU(), sa.MaxPool2d(2), sa.Conv2d(p("c4.weight"), p("c4.bias")), sa.ReLU(), sa.AvgPool2d(2), sa.Flatten(),
        sa.Linear(p("l8.weight"), p("l8.bias"))], input_shape=(2, 12, 12))


NETS = {"mlp": mlp, "cnn": cnn}
MIXED = {"mlp": {0: "gamma", 2: "alpha_beta", 4: "epsilon"}, "cnn": {0: "gamma", 1: "identity", 4: "gamma", 8: "epsilon"}}
TUTORIAL = {"mlp": dict(rule={0: "gamma"}, gamma={0: 0.5}, epsilon=[None, None, 0.25, None, 0.0]),
            "cnn": dict(rule={0: "gamma", 4: "gamma"}, gamma={4: 0.5}, epsilon={3: 0.25, 8: 0.1})}
CASES = {
    "epsilon": dict(rule="epsilon"),
    "epsilon_01": dict(rule="epsilon", epsilon=0.1),
    "gamma": dict(rule="gamma"),
    "gamma_05": dict(rule="gamma", gamma=0.5),
    "alpha1beta0": dict(rule="alpha_beta", alpha=1, beta=0),
}


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("case", list(CASES) + ["mixed", "tutorial"])
def test_lrp_equals_captum(name, case):
    net = NETS[name]()
    x, t = DATA[f"{name}_x"], DATA[f"{name}_target"]
    kwargs = dict(rule=MIXED[name]) if case == "mixed" else TUTORIAL[name] if case == "tutorial" else CASES[case]
    r, delta = sa.lrp(net, x, target=t, return_convergence_delta=True, **kwargs)
    assert_close_relative(r, DATA[f"{name}_lrp_{case}"])
    # Captum's delta f_t(x) − ΣR: ΣR rounds like R, so to 1e-4 of the scale of f_t.
    assert_close_relative(delta, DATA[f"{name}_lrp_{case}_delta"], rtol=1e-4 * max(1, np.abs(r).sum(axis=tuple(range(1, r.ndim))).max()
                                                                                 / np.abs(DATA[f"{name}_lrp_{case}_delta"]).max()))


def test_mixed_rules_as_a_list():
    net = mlp()
    x, t = DATA["mlp_x"], DATA["mlp_target"]
    r = sa.lrp(net, x, target=t, rule=["gamma", None, "alpha_beta", None, "epsilon"])
    assert_close_relative(r, DATA["mlp_lrp_mixed"])


@pytest.mark.parametrize("name", NETS)
def test_guided_backprop_and_deconvolution_equal_captum(name):
    net = NETS[name]()
    x, t = DATA[f"{name}_x"], DATA[f"{name}_target"]
    assert_close_relative(sa.guided_backprop(net, x, target=t), DATA[f"{name}_guided"])
    assert_close_relative(sa.deconvolution(net, x, target=t), DATA[f"{name}_deconv"])


def test_batch_chunks_agree():
    """internal_batch_size changes the GEMM shapes only: float32 rounding (1e-5 of the scale)."""
    net, x, t = cnn(), DATA["cnn_x"], DATA["cnn_target"]
    whole = sa.lrp(net, x, target=t, rule="gamma")
    assert_close_relative(sa.lrp(net, x, target=t, rule="gamma", internal_batch_size=1), whole, rtol=1e-5)
    g = sa.guided_backprop(net, x, target=t)
    assert_close_relative(sa.guided_backprop(net, x, target=t, internal_batch_size=3), g, rtol=1e-5)


def _zero_bias_relu_net(rng):
    return sa.Sequential([sa.Linear(rng.normal(size=(16, 6)), np.zeros(16)), sa.ReLU(),
                          sa.Linear(rng.normal(size=(12, 16)), np.zeros(12)), sa.ReLU(),
                          sa.Linear(rng.normal(size=(3, 12)), np.zeros(3))])


@pytest.mark.parametrize("rule", ["epsilon", "gamma"])
def test_lrp0_conserves_relevance(rule):
    """LRP-0 (ε = 0) on a ReLU network with zero biases: Σ R = f_t(x) (efficiency); also γ, which conserves
    with zero biases. (α-β loses the relevance of a neuron whose z⁺ or z⁻ is 0 — every input on that side dead
    — so it conserves only where none is; the Swift tests check it on a case without.) float32: about 1e-6
    relative per layer."""
    rng = np.random.default_rng(3)
    net = _zero_bias_relu_net(rng)
    x = rng.normal(size=(7, 6)).astype(np.float32)
    r, delta = sa.lrp(net, x, target=1, rule=rule, epsilon=0.0, return_convergence_delta=True)
    f = net.forward(x)[:, 1]
    np.testing.assert_allclose(r.sum(axis=1), f, rtol=1e-5, atol=1e-5 * np.abs(f).max())
    np.testing.assert_allclose(delta, f - r.sum(axis=1), atol=1e-5 * np.abs(f).max())


def test_zb_composite_conserves_relevance():
    """Composite (z^B first, then ε/γ) with zero biases and x within the bounds conserves Σ R = f_t(x)
    only up to the γ layers, which conserve too with zero biases: so exactly (float32)."""
    rng = np.random.default_rng(4)
    net = _zero_bias_relu_net(rng)
    x = rng.uniform(-1, 1, size=(5, 6)).astype(np.float32)
    r = sa.lrp(net, x, target=0, rule="composite", epsilon=0.0, low=-1, high=1)
    f = net.forward(x)[:, 0]
    np.testing.assert_allclose(r.sum(axis=1), f, rtol=1e-5, atol=1e-5 * np.abs(f).max())


def _code(call):
    with pytest.raises(sa.SwiftAttrError) as e:
        call()
    return e.value.code, str(e.value)


def test_errors_name_the_argument():
    net = mlp()
    x = DATA["mlp_x"]
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="zeta"))
    assert code == _ffi.SA_ERR_UNKNOWN_ENUM and "rule" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule={0: "nope"}))
    assert code == _ffi.SA_ERR_UNKNOWN_ENUM and "rule[0]" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule={9: "epsilon"}))
    assert code == _ffi.SA_ERR_OUT_OF_RANGE and "node 9" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule=["epsilon"]))
    assert code == _ffi.SA_ERR_SHAPE
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule={1: "gamma"}))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "node 1 (ReLU)" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule={2: "zb"}, low=-3, high=3))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "z^B" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="composite"))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "low and high" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="composite", low=1, high=-1))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "low" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="composite", low=np.zeros(3), high=1))
    assert code == _ffi.SA_ERR_SHAPE and "low" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="composite", low=np.nan, high=1))
    assert code == _ffi.SA_ERR_NON_FINITE and "low" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, rule="alpha_beta", alpha=2, beta=0))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "alpha" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, epsilon=-1))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "epsilon" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, epsilon={2: -1}))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "node_epsilon[2]" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, gamma={7: 1}))
    assert code == _ffi.SA_ERR_OUT_OF_RANGE and "node 7" in msg
    code, msg = _code(lambda: sa.lrp(net, x, target=0, gamma=[1, 2]))
    assert code == _ffi.SA_ERR_SHAPE
    code, msg = _code(lambda: sa.lrp(net, x, target=7))
    assert code == _ffi.SA_ERR_OUT_OF_RANGE and "target" in msg
    code, msg = _code(lambda: sa.guided_backprop(net, x, target=7))
    assert code == _ffi.SA_ERR_OUT_OF_RANGE


def test_lstm_is_refused_and_softmax_starts_at_the_logit():
    rng = np.random.default_rng(0)
    lstm = sa.Sequential([sa.LSTM(rng.normal(size=(8, 3)), rng.normal(size=(8, 2))), sa.Linear(rng.normal(size=(2, 2)))],
                         input_shape=(4, 3))
    code, msg = _code(lambda: sa.lrp(lstm, rng.normal(size=(2, 4, 3)), target=0))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT and "LSTM" in msg
    # Guided backprop has no ReLU to change there: the plain gradient.
    x = rng.normal(size=(2, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(sa.guided_backprop(lstm, x, target=1), sa.saliency(lstm, x, target=1, abs=False), rtol=1e-6, atol=1e-7)
    net = mlp()
    soft = sa.Sequential(net.layers + [sa.Softmax()])
    x = DATA["mlp_x"]
    assert_close_relative(sa.lrp(soft, x, target=2), sa.lrp(net, x, target=2), rtol=1e-6)


def test_lrp0_conserves_relevance_on_a_cnn():
    """Conv, ReLU, max-pool, average pool, Linear, all without biases, ε = 0: Σ R = f_t(x) (the pools'
    ε-rule conserves: the winner takes R·y/y, the average shares it in proportion)."""
    rng = np.random.default_rng(5)
    net = sa.Sequential([sa.Conv2d(rng.normal(size=(4, 1, 3, 3)), np.zeros(4), padding=1), sa.ReLU(), sa.MaxPool2d(2),
                         sa.Conv2d(rng.normal(size=(3, 4, 3, 3)), np.zeros(3)), sa.ReLU(), sa.AvgPool2d(2), sa.Flatten(),
                         sa.Linear(rng.normal(size=(2, 3)), np.zeros(2))], input_shape=(1, 8, 8))
    x = rng.normal(size=(6, 1, 8, 8)).astype(np.float32)
    r, delta = sa.lrp(net, x, target=1, epsilon=0.0, return_convergence_delta=True)
    f = net.forward(x)[:, 1]
    np.testing.assert_allclose(r.sum(axis=(1, 2, 3)), f, rtol=1e-5, atol=1e-5 * np.abs(f).max())
    assert np.abs(delta).max() <= 1e-5 * np.abs(f).max()


def test_token_network_relevance_is_summed_per_token():
    """An Embedding first: relevance at the embedding output, summed over the embedding axis; with zero
    biases and ε = 0 the tokens' relevances sum to f_t; sum_embedding=False keeps the axis, and node rules
    keep this network's indices (node 2 is the Linear)."""
    rng = np.random.default_rng(6)
    net = sa.Sequential([sa.Embedding(rng.normal(size=(7, 3))), sa.Flatten(), sa.Linear(rng.normal(size=(2, 12)), np.zeros(2))],
                        input_shape=(4,))
    ids = np.array([[0, 3, 6, 2], [1, 1, 5, 4]], np.float32)
    r = sa.lrp(net, ids, target=0, epsilon=0.0)
    full = sa.lrp(net, ids, target=0, epsilon=0.0, sum_embedding=False)
    f = net.forward(ids)[:, 0]
    assert r.shape == (2, 4) and full.shape == (2, 4, 3)
    np.testing.assert_allclose(full.sum(axis=-1), r, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(r.sum(axis=1), f, rtol=1e-5, atol=1e-5 * np.abs(f).max())
    g = sa.lrp(net, ids, target=0, rule={2: "gamma"})
    np.testing.assert_allclose(sa.lrp(net, ids, target=0, rule={2: "gamma"}, sum_embedding=False).sum(axis=-1), g, rtol=1e-5, atol=1e-6)
    assert np.abs(g - r).max() > 1e-3  # the rule took effect
    code, _ = _code(lambda: sa.lrp(net, ids, target=0, rule={0: "epsilon"}))
    assert code == _ffi.SA_ERR_INVALID_ARGUMENT
