"""Perturbation methods: swiftattr against Captum (when importable) on the same weights, in the same run.

    python benchmarks/bench_perturbation.py [--repeats 3] [--batch 16]

On the benchmark CNN of benchmarks/models.py (conv 1→16 k5, ReLU, maxpool 2, conv 16→32 k5, ReLU, maxpool 2,
512→128, ReLU, 128→10 on 1×28×28), a batch of 16, target 3, zero baselines:
- Occlusion, window 1×4×4, stride 2: 13 × 13 = 169 positions per example;
- ShapleyValueSampling, 25 permutations of 7×7 superpixels (16 features);
- KernelShap, 500 coalitions of the same superpixels (Captum: 2 of them the full and empty coalitions).
Captum gets perturbations_per_eval = 16 (256 rows per forward call for Occlusion and Shapley sampling, 16 for
KernelShap, which Captum runs one example at a time) rather than its default 1, so that torch runs batched
GEMMs too. Perturbation methods are bound by forward passes, so the last row prints the floor: forward
throughput (rows/s) of swiftattr and of torch (no_grad) on batches of 256.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
import models  # noqa: E402
from models import cnn_swiftattr, cnn_torch, cnn_weights  # noqa: E402

TARGET, PER_EVAL = 3, 16


def best_time(fn, repeats):
    return models.best_time(fn, repeats, warmup=1, settle=0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    n = args.batch
    rng = np.random.default_rng(1)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    mask = (np.arange(28)[:, None] // 7 * 4 + np.arange(28)[None, :] // 7).reshape(1, 1, 28, 28)
    weights = cnn_weights()
    net = cnn_swiftattr(weights)
    methods = {
        "Occlusion 4x4 stride 2": (
            lambda: sa.occlusion(net, x, (1, 4, 4), strides=(1, 2, 2), target=TARGET),
            lambda c, xt, mt: c.Occlusion(model).attribute(xt, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2),
                                                           target=TARGET, perturbations_per_eval=PER_EVAL)),
        "ShapleyValueSampling 25 perms, 16 superpixels": (
            lambda: sa.shapley_value_sampling(net, x, feature_mask=mask, n_samples=25, seed=0, target=TARGET),
            lambda c, xt, mt: c.ShapleyValueSampling(model).attribute(xt, feature_mask=mt, n_samples=25, target=TARGET,
                                                                      perturbations_per_eval=PER_EVAL)),
        "KernelShap 500 coalitions, 16 superpixels": (
            lambda: sa.kernel_shap(net, x, feature_mask=mask, n_samples=500, seed=0, target=TARGET),
            lambda c, xt, mt: c.KernelShap(model).attribute(xt, feature_mask=mt, n_samples=500, target=TARGET,
                                                            perturbations_per_eval=PER_EVAL)),
    }
    have_captum = True
    try:
        import torch

        torch.set_num_threads(2)
        import captum.attr as captum_attr
        model = cnn_torch(weights)
    except ImportError:
        have_captum = False

    rows = []
    for name, (ours, theirs) in methods.items():
        t_ours = best_time(ours, args.repeats)
        t_theirs = np.nan
        if have_captum:
            xt, mt = torch.from_numpy(x), torch.from_numpy(mask)
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                # Captum's KernelShap runs for seconds: one timed call after the warm-up.
                t_theirs = best_time(lambda: theirs(captum_attr, xt, mt), 1 if "Kernel" in name else max(1, args.repeats - 1))
        rows.append((name, n / t_ours, n / t_theirs))

    big = rng.random((256, 1, 28, 28), dtype=np.float32)
    t_fwd = best_time(lambda: net.forward(big), max(3, args.repeats))
    t_fwd_torch = np.nan
    if have_captum:
        bt = torch.from_numpy(big)
        with torch.no_grad():
            t_fwd_torch = best_time(lambda: model(bt), max(3, args.repeats))
    rows.append(("forward (rows/s, batch 256)", 256 / t_fwd, 256 / t_fwd_torch))

    time.sleep(0.3)
    models.print_header(2)
    print(f"Perturbation methods on the CNN 1x28x28, batch {n}, target {TARGET}, zero baselines; Captum with "
          f"perturbations_per_eval={PER_EVAL}, torch threads 2")
    print(f"{'method':<48}{'swiftattr ex/s':>15}{'Captum ex/s':>13}{'ratio':>8}")
    for name, ours, theirs in rows:
        ratio = f"{ours / theirs:>7.1f}x" if np.isfinite(theirs) else f"{'':>8}"
        captum = f"{theirs:>13.1f}" if np.isfinite(theirs) else f"{'':>13}"
        print(f"{name:<48}{ours:>15.1f}{captum}{ratio}")


if __name__ == "__main__":
    main()
