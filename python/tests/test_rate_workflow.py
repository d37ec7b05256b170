"""RATE in one call: rate_last_layer(X, H, posterior) on what bayesian_last_layer returns, the task guessed
(with a warning saying what and why), one RATE vector for a binary classifier, explain_globally (fit + RATE +
plot), and the measured blind spot of the linear effect-size projection for pure interactions."""
import warnings

import numpy as np
import pytest

import swiftattr as sa
from conftest import optional_import


def mlp(p=5, h=8, outputs=2, softmax=False, seed=0):
    rng = np.random.default_rng(seed)
    layers = [sa.Linear(rng.standard_normal((h, p)).astype(np.float32), rng.standard_normal(h).astype(np.float32)),
              sa.Tanh(), sa.Linear(rng.standard_normal((outputs, h)).astype(np.float32))]
    return sa.Sequential(layers + ([sa.Softmax()] if softmax else []))


def tabular(n=120, p=5, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(np.float32)
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)


def test_posterior_in_one_argument_equals_the_arrays():
    X, _ = tabular()
    y = X[:, 0] - X[:, 2] + 0.1
    net = mlp(outputs=1)
    post = sa.bayesian_last_layer(net, X, y, task="regression")
    by_arrays = sa.rate_last_layer(X, post.H, post.W_mean, post.W_cov, post.b)
    for got in (sa.rate_last_layer(X, post.H, post), sa.rate_last_layer(X, None, post)):
        np.testing.assert_array_equal(got.rate, by_arrays.rate)  # the same C call on the same arrays
    with pytest.raises(sa.SwiftAttrError, match="W_cov"):
        sa.rate_last_layer(X, post.H, post, post.W_cov)
    with pytest.raises(sa.SwiftAttrError, match="posterior"):
        sa.rate_last_layer(X, post.H)


def test_binary_classifier_gives_one_vector_for_the_log_odds():
    X, labels = tabular()
    post = sa.bayesian_last_layer(mlp(), X, labels, task="classification")
    assert post.W_mean.shape[1] == 2
    res = sa.rate_last_layer(X, None, post)
    assert res.rate.shape == (1, X.shape[1])
    by_hand = sa.rate_last_layer(X, post.H, post.W_mean[:, 1] - post.W_mean[:, 0], post.W_cov[0] + post.W_cov[1],
                                 post.b[1] - post.b[0])
    np.testing.assert_array_equal(res.rate, by_hand.rate)
    # Three classes keep one vector each.
    three = (np.arange(X.shape[0]) % 3).astype(np.int64)
    assert sa.rate_last_layer(X, None, sa.bayesian_last_layer(mlp(outputs=3), X, three, task="classification")).rate.shape == (3, 5)


def guessed(net, X, y):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = sa.bayesian_last_layer(net, X, y)
    messages = [str(w.message) for w in caught if "task=" in str(w.message)]
    assert len(messages) == 1, messages
    assert [w.filename for w in caught if "task=" in str(w.message)] == [__file__]  # points at the caller's line
    return post.task, messages[0]


def test_the_task_is_guessed_and_said():
    X, labels = tabular()
    task, message = guessed(mlp(), X, labels)
    assert task == "classification" and "integer class indices" in message
    task, message = guessed(mlp(outputs=1), X, X[:, 0] * 2.0)
    assert task == "regression" and "real values" in message
    # A network ending in Softmax is a classifier, even with labels stored as floats.
    task, message = guessed(mlp(softmax=True), X, labels.astype(np.float64))
    assert task == "classification" and "Softmax" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit task does not warn
        sa.bayesian_last_layer(mlp(), X, labels, task="classification")


def test_explain_globally_fits_rates_and_plots(tmp_path):
    matplotlib = optional_import("matplotlib")
    backend = matplotlib.get_backend()
    X, labels = tabular()
    path = tmp_path / "rate.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = sa.explain_globally(mlp(), X, labels, feature_names=list("abcde"), path=str(path))
    assert g.posterior.task == "classification" and g.rate.shape == (1, 5)
    np.testing.assert_allclose(g.rate.sum(), 1.0, rtol=1e-12)
    assert g.ess.shape == g.delta.shape == (1,)
    assert path.stat().st_size > 1000 and g._repr_png_()[:4] == b"\x89PNG"
    assert [t.get_text() for t in g.figure.axes[0].get_xticklabels()][0] in list("abcde")
    assert matplotlib.get_backend() == backend
    assert sa.explain_globally(mlp(), X, labels, task="classification", plot=False).figure is None


def test_pure_interactions_are_invisible_to_rate():
    """y = x₀ + x₁ + 2x₂x₃ on independent centred inputs: the last layer fits the product (its weight ≈ 2), yet
    the effect-size analogue β̃ = X_cᵀ(f − f̄)/(n−1) of x₂ and x₃ is E[x₂·x₂x₃] = 0 up to sampling noise, so
    their RATE is ≈ 0 while x₀ and x₁ share nearly all of it. (Integrated Hessians find such pairs.)"""
    rng = np.random.default_rng(5)
    n = 2000
    X = rng.standard_normal((n, 6))
    y = X[:, 0] + X[:, 1] + 2 * X[:, 2] * X[:, 3] + 0.05 * rng.standard_normal(n)
    # Features of a model that knows the product: every input and x₂x₃ (h = 7 ≥ p, so the effect-size
    # posterior has full rank and RATE is not in its pseudo-inverse regime).
    H = np.column_stack([X, X[:, 2] * X[:, 3]])
    post = sa.bayesian_last_layer(H=H, y=y, task="regression")
    np.testing.assert_allclose(post.W_mean[:, 0], [1, 1, 0, 0, 0, 0, 2], atol=0.02)
    res = sa.rate_last_layer(X, None, post)
    r = res.rate[0]
    assert not res.pseudo_inverse[0]
    assert r[2] < 0.01 and r[3] < 0.01, r  # measured: 8.5e-4 and 2.9e-3, against 0.41 and 0.59 for x₀ and x₁
    assert r[0] > 0.4 and r[1] > 0.4, r
