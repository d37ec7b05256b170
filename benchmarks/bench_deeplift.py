"""DeepLIFT and DeepSHAP throughput: swiftattr against Captum (when importable) on the same weights.

    python benchmarks/bench_deeplift.py [--repeats 5]

DeepLift on a batch of 64 (zero baselines, Captum's default) and DeepLiftShap with 20 references (random
data) for 64 examples, target 3, on (a) the MLP 784-512-256-10 (ReLU) and (b) the CNN of issue 2. Captum runs
with torch on 2 threads; Captum has only the Rescale rule, so swiftattr's RevealCancel and genomics rules are
timed against swiftattr's own Rescale. GFLOP/s counts the multiply-adds swiftattr performs (the forward of
inputs and references once, one backward pass per (example, reference) pair, and for RevealCancel the |W|
passes of the Linear rule's positive/negative split), against the single-precision GEMM peak measured here.
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
from models import cnn_swiftattr, cnn_torch, cnn_weights, gemm_peak_gflops, mlp_swiftattr, mlp_torch, mlp_weights  # noqa: E402
import models  # noqa: E402

BATCH, REFERENCES, TARGET = 64, 20, 3

# Multiply-adds per example of each weighted layer: (MACs, is the layer followed by a ReLU).
MLP_LAYERS = [(784 * 512, True), (512 * 256, True), (256 * 10, False)]
CNN_LAYERS = [(24 * 24 * 25 * 16, True), (8 * 8 * 400 * 32, True), (512 * 128, True), (128 * 10, False)]


def flops(layers, forward_rows, pairs, rule, conv_layers=0):
    """FLOPs swiftattr performs: forward of every row, backward of every pair, and for RevealCancel a |W|
    forward and backward per pair through each layer that feeds a RevealCancel nonlinearity (genomics: the
    dense ones only)."""
    macs = sum(m for m, _ in layers)
    total = forward_rows * macs + pairs * macs
    for k, (m, relu_after) in enumerate(layers):
        if relu_after and (rule == "revealcancel" or (rule == "genomics" and k >= conv_layers)):
            total += 2 * pairs * m
    return 2 * total


def best_time(fn, repeats):
    return models.best_time(fn, repeats, warmup=3, settle=0.5)  # warm thread pools, allocator and caches


def captum_rates(model, x, refs, repeats):
    import torch
    from captum.attr import DeepLift, DeepLiftShap

    xt, rt = torch.from_numpy(x), torch.from_numpy(refs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = DeepLift(model)
        t_dl = best_time(lambda: dl.attribute(xt, target=TARGET), repeats)
        shap = DeepLiftShap(model)
        t_shap = best_time(lambda: shap.attribute(xt, rt, target=TARGET), max(1, repeats // 2))
    return BATCH / t_dl, BATCH / t_shap


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    have_captum = False
    try:
        import torch

        torch.set_num_threads(2)
        import captum  # noqa: F401
        have_captum = True
    except ImportError:
        have_captum = False

    rows = []
    for name, weights, build, torch_build, shape, layers, convs in [
        ("MLP 784-512-256-10", mlp_weights(), mlp_swiftattr, mlp_torch, (784,), MLP_LAYERS, 0),
        ("CNN 1x28x28", cnn_weights(), cnn_swiftattr, cnn_torch, (1, 28, 28), CNN_LAYERS, 2),
    ]:
        net = build(weights)
        x = rng.random((BATCH,) + shape, dtype=np.float32)
        refs = rng.random((REFERENCES,) + shape, dtype=np.float32)
        first = len(rows)
        rescale_time = None
        for rule in ("rescale", "revealcancel", "genomics"):
            t = best_time(lambda: sa.deeplift(net, x, target=TARGET, rule=rule), args.repeats)
            rescale_time = rescale_time or t
            f = flops(layers, BATCH + 1, BATCH, rule, convs)
            rows.append((name, f"DeepLift {rule}", BATCH / t, np.nan, f / t / 1e9, t / rescale_time))
        rescale_time = None
        for rule in ("rescale", "revealcancel"):
            t = best_time(lambda: sa.deepshap(net, x, refs, target=TARGET, rule=rule), args.repeats)
            rescale_time = rescale_time or t
            f = flops(layers, BATCH + REFERENCES, BATCH * REFERENCES, rule, convs)
            rows.append((name, f"DeepLiftShap({REFERENCES}) {rule}", BATCH / t, np.nan, f / t / 1e9, t / rescale_time))
        # Captum after swiftattr: torch's OpenMP workers keep spinning for a while after a call.
        if have_captum:
            theirs_dl, theirs_shap = captum_rates(torch_build(weights), x, refs, args.repeats)
            for i, theirs in ((first, theirs_dl), (first + 3, theirs_shap)):
                rows[i] = rows[i][:3] + (theirs,) + rows[i][4:]

    time.sleep(0.5)
    models.print_header(2)
    peak = gemm_peak_gflops()
    print(f"DeepLIFT, batch {BATCH}, target {TARGET}; DeepLiftShap with {REFERENCES} references; torch threads 2; "
          f"single-precision GEMM peak (numpy) {peak:.0f} GFLOP/s")
    print(f"{'model':<20}{'method':<30}{'swiftattr/s':>12}{'Captum/s':>10}{'ratio':>8}{'GFLOP/s':>9}{'% peak':>8}{'vs Rescale':>11}")
    for name, method, ours, theirs, gf, rel in rows:
        ratio = f"{ours / theirs:>7.1f}x" if np.isfinite(theirs) else f"{'':>8}"
        captum = f"{theirs:>10.0f}" if np.isfinite(theirs) else f"{'':>10}"
        print(f"{name:<20}{method:<30}{ours:>12.0f}{captum}{ratio}{gf:>9.1f}{100 * gf / peak:>7.0f}%{rel:>10.2f}x")


if __name__ == "__main__":
    main()
