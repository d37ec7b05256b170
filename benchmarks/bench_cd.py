"""Contextual Decomposition throughput: swiftattr against the acd package (when importable) on the same weights.

    python benchmarks/bench_cd.py [--repeats 3]

CD of the benchmark CNN (models.py: conv 1→16 k5, ReLU, maxpool 2, conv 16→32 k5, ReLU, maxpool 2, flatten,
512→128, ReLU, 128→10 on 1×28×28) for a batch of 64 random images, with 1 mask and with 64 masks (7×7 blocks
of pixels at random places). acd (``acd.scores.cd.cd``, device='cpu', torch on 2 threads) takes one mask per
call, so its 64-mask time is 64 calls; swiftattr computes all (example, mask) pairs in one call. GFLOP/s
counts the multiply-adds swiftattr performs: the ordinary forward of each example once and W·β per pair.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
from models import cnn_swiftattr, cnn_torch, cnn_weights  # noqa: E402
import models  # noqa: E402

BATCH = 64
CNN_MACS = 24 * 24 * 25 * 16 + 8 * 8 * 400 * 32 + 512 * 128 + 128 * 10


def block_masks(rng, count, size=7):
    masks = np.zeros((count, 1, 28, 28), np.float32)
    for m in masks:
        r, c = rng.integers(0, 28 - size + 1, 2)
        m[0, r:r + size, c:c + size] = 1
    return masks


def acd_time(model, x, masks, repeats):
    """Seconds for acd's CD of every mask (one call per mask, the batch at once)."""
    import torch
    from acd.scores.cd import cd

    xt = torch.from_numpy(x)

    def run():
        with torch.no_grad():
            for m in masks:
                cd(xt, model, mask=m[0], device="cpu")

    return models.best_time(run, repeats, warmup=1, settle=0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    weights = cnn_weights()
    net = cnn_swiftattr(weights)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    try:
        import torch

        torch.set_num_threads(2)
        import acd  # noqa: F401
        have_acd = True
    except ImportError:
        have_acd = False

    rows = []
    for count in (1, 64):
        masks = block_masks(rng, count)
        ours = models.best_time(lambda: sa.contextual_decomposition(net, x, masks, target=3), args.repeats, warmup=2, settle=0.5)
        gflops = 2 * CNN_MACS * (BATCH + BATCH * count) / ours / 1e9
        rows.append([count, ours, np.nan, gflops])
    if have_acd:  # after swiftattr: torch's OpenMP workers keep spinning for a while after a call
        model = cnn_torch(weights)
        for row in rows:
            masks = block_masks(np.random.default_rng(2), row[0])
            row[2] = acd_time(model, x, masks, 1 if row[0] > 1 else args.repeats)

    time.sleep(0.5)
    models.print_header(2)
    print(f"Contextual Decomposition, benchmark CNN, batch {BATCH}; acd {'on the CPU' if have_acd else 'not importable'}, "
          "torch threads 2")
    print(f"{'masks':>6}{'swiftattr ms':>14}{'acd ms':>10}{'ratio':>9}{'GFLOP/s':>9}")
    for count, ours, theirs, gflops in rows:
        acd_ms = f"{1e3 * theirs:>10.1f}" if np.isfinite(theirs) else f"{'':>10}"
        ratio = f"{theirs / ours:>8.1f}x" if np.isfinite(theirs) else f"{'':>9}"
        print(f"{count:>6}{1e3 * ours:>14.2f}{acd_ms}{ratio}{gflops:>9.1f}")


if __name__ == "__main__":
    main()
