"""Integrated Gradients throughput: swiftattr against Captum (when importable) on the same weights.

    python benchmarks/bench_gradients.py [--repeats 5]

IG with n_steps=50 (Gauss–Legendre), a batch of 64, target 3, on (a) the MLP 784-512-256-10 and (b) the
CNN of issue 2. Captum runs in its fastest setting (internal_batch_size = 10 examples × n_steps) with
torch on 2 threads. GFLOP/s counts the GEMM multiply-adds swiftattr actually performs (the sparse column
updates of the piecewise-linear section are left out, so it understates the arithmetic).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
from models import print_header, best_time, cnn_swiftattr, cnn_torch, cnn_weights, gemm_peak_gflops, mlp_swiftattr, mlp_torch, mlp_weights  # noqa: E402

BATCH, STEPS, TARGET = 64, 50, 3


def ig_flops_mlp():
    # The GEMMs swiftattr runs. Layer 1 (the affine prefix) at x and x' once per example, and one Wᵀ pullback;
    # layer 2 reads ReLU(layer 1), a piecewise-linear section, so it runs at its two path ends once per
    # example (W a, W b), its transpose once, plus one column per change of a ReLU state (not counted); the
    # final Dense layer's seed pullback is a row of W. Per step no GEMM is left (ReLU masks only).
    per_example = 2 * 2 * 784 * 512 + 2 * 784 * 512 + 3 * 2 * 512 * 256
    return BATCH * per_example


def ig_flops_cnn():
    # conv1 (the prefix) and conv2 (after max-pool and ReLU: the section) three times per example each, the
    # changes' columns not counted; per step the first Dense layer forward and back (the last is a row of W).
    conv1 = 2 * 24 * 24 * 25 * 16
    conv2 = 2 * 8 * 8 * 400 * 32
    dense = 2 * 512 * 128
    return BATCH * (3 * conv1 + 3 * conv2 + STEPS * 2 * dense)


def captum_rate(model, x, repeats):
    import torch
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(model)
    xt = torch.from_numpy(x)

    def run():
        ig.attribute(xt, target=TARGET, n_steps=STEPS, internal_batch_size=10 * STEPS)

    return BATCH / best_time(run, repeats)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    try:
        import torch

        torch.set_num_threads(2)
        have_captum = True
        import captum  # noqa: F401
    except ImportError:
        have_captum = False

    print_header(2)
    peak = gemm_peak_gflops()
    rows = []
    for name, weights, build, torch_build, shape, flops in [
        ("MLP 784-512-256-10", mlp_weights(), mlp_swiftattr, mlp_torch, (784,), ig_flops_mlp()),
        ("CNN 1x28x28", cnn_weights(), cnn_swiftattr, cnn_torch, (1, 28, 28), ig_flops_cnn()),
    ]:
        net = build(weights)
        x = rng.random((BATCH,) + shape, dtype=np.float32)
        t = best_time(lambda: sa.integrated_gradients(net, x, target=TARGET, n_steps=STEPS), args.repeats)
        ours = BATCH / t
        theirs = captum_rate(torch_build(weights), x, args.repeats) if have_captum else float("nan")
        rows.append((name, ours, theirs, ours / theirs if have_captum else float("nan"), flops / t / 1e9))

    print(f"Integrated Gradients, n_steps={STEPS}, batch {BATCH}, target {TARGET}; "
          f"single-precision GEMM peak (numpy) {peak:.0f} GFLOP/s")
    print(f"{'model':<22}{'swiftattr/s':>13}{'Captum/s':>11}{'ratio':>8}{'GFLOP/s':>10}{'% peak':>8}")
    for name, ours, theirs, ratio, gf in rows:
        print(f"{name:<22}{ours:>13.0f}{theirs:>11.0f}{ratio:>7.1f}x{gf:>10.1f}{100 * gf / peak:>7.0f}%")


if __name__ == "__main__":
    main()
