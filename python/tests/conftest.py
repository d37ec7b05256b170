import numpy as np
import pytest

import swiftattr as sa


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
