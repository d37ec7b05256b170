import importlib

import numpy as np
import pytest

import swiftattr as sa


def optional_import(name: str):
    """The module `name`, or a skip of the calling test (or module) when importing it raises ImportError (not
    installed, or installed but broken): pytest.importorskip skips only on ModuleNotFoundError from pytest 9.1 on, and its
    `exc_type=` needs pytest 8.2."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        pytest.skip(f"could not import {name!r}: {error}", allow_module_level=True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def smooth_mlp(rng, d=6, h=16, out=3):
    return sa.Sequential([
        sa.Linear(rng.standard_normal((h, d)) / np.sqrt(d), rng.standard_normal(h) * 0.1), sa.Tanh(),
        sa.Linear(rng.standard_normal((h, h)) / np.sqrt(h), rng.standard_normal(h) * 0.1), sa.Softplus(2.0),
        sa.Linear(rng.standard_normal((out, h)) / np.sqrt(h), rng.standard_normal(out) * 0.1),
    ])


def small_cnn(rng):
    return sa.Sequential([
        sa.Conv2d(rng.standard_normal((4, 2, 3, 3)) * 0.3, rng.standard_normal(4) * 0.1, padding=1), sa.Softplus(),
        sa.AvgPool2d(2),
        sa.Conv2d(rng.standard_normal((5, 4, 3, 3)) * 0.3, rng.standard_normal(5) * 0.1), sa.Tanh(),
        sa.Flatten(), sa.Linear(rng.standard_normal((3, 5 * 2 * 2)) * 0.3, rng.standard_normal(3) * 0.1),
    ], input_shape=(2, 8, 8))


def assert_prior_matches_torch(fx, net, prior, name, case, seed):
    """The penalised loss and weight gradients of ``prior`` on fixture model ``name`` equal torch's
    ``create_graph=True`` double back-propagation stored in ``fx`` (made by fixtures/make_priors*.py) at
    the same draws, and the penalty changes both. Both sides compute in float32 along different operation
    orders — a few hundred roundings of O(1) values per entry (for an LSTM: the recurrence's tangent,
    gradient and adjoint passes), ≈ 1e-5 relative — so 1e-4 of the largest entry leaves a margin while a
    wrong rule is off by O(1) of it."""
    if case != "input_gradient":
        index, alpha = prior.draws(6, seed)
        np.testing.assert_array_equal(index, fx[f"{name}_{case}_index"])
        np.testing.assert_array_equal(alpha, fx[f"{name}_{case}_alpha"])
    value, grads = sa.loss_and_gradients(net, fx[f"{name}_x"], fx[f"{name}_y"], prior=prior, seed=seed)
    expected = fx[f"{name}_{case}_loss"]
    assert abs(value - expected) <= 1e-4 * max(1.0, abs(expected)), (value, expected)
    plain, plain_grads = sa.loss_and_gradients(net, fx[f"{name}_x"], fx[f"{name}_y"])
    assert abs(value - plain) > 1e-3, "the penalty must matter"
    assert len(grads) == len([k for k in fx if k.startswith(f"{name}_{case}_g")])
    for k, g in enumerate(grads):
        want = fx[f"{name}_{case}_g{k}"]
        scale = np.abs(want).max()
        err = np.abs(g.astype(np.float64) - want).max()
        assert err <= 1e-4 * scale + 1e-7, f"{name} {case} gradient {k}: max error {err} vs scale {scale}"
    share = max(np.abs(g - p).max() for g, p in zip(grads, plain_grads))
    assert share > 1e-3, "the penalty's gradient must matter"
