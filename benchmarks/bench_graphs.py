"""Graph networks: Integrated Gradients and DeepLIFT on a CIFAR-sized ResNet, swiftattr against Captum.

    python benchmarks/bench_graphs.py [--blocks 1] [--repeats 3]

The issue-9 ResNet (benchmarks/models.py `resnet_torch`: input 3×32×32, a 3×3 stem, stages of 16, 32, 64
channels with `--blocks` basic blocks each, strided 1×1 downsamples with BatchNorm, global average pooling,
Linear to 10), converted once with `sa.from_torch`; the same weights in both libraries. IG with n_steps=50
(Gauss–Legendre) on a batch of 16, Captum at internal_batch_size = 10 examples × n_steps; DeepLIFT
(Rescale, zero baselines, Captum's default) on the same batch, swiftattr with maxpool="gradient" (what
Captum computes; this model has no max-pool). torch on the same thread count as swiftattr.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
from models import best_time, print_header, resnet_torch  # noqa: E402

BATCH, STEPS, TARGET = 16, 50, 3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--blocks", type=int, default=1, help="basic blocks per stage (1: ResNet-8, 3: ResNet-20)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import torch
    from captum.attr import DeepLift, IntegratedGradients

    threads = sa.get_num_threads()
    torch.set_num_threads(threads)
    print_header(threads)
    model = resnet_torch(0, blocks=args.blocks)
    net = sa.from_torch(model, input_shape=(3, 32, 32))
    x = np.random.default_rng(1).random((BATCH, 3, 32, 32), dtype=np.float32)
    xt = torch.from_numpy(x)
    with torch.no_grad():
        agree = np.abs(net.forward(x) - model(xt).numpy()).max()

    rows = []
    ig = IntegratedGradients(model)
    ours = best_time(lambda: sa.integrated_gradients(net, x, target=TARGET, n_steps=STEPS), args.repeats)
    theirs = best_time(lambda: ig.attribute(xt, target=TARGET, n_steps=STEPS, internal_batch_size=10 * STEPS), args.repeats)
    ig_diff = np.abs(sa.integrated_gradients(net, x, target=TARGET, n_steps=STEPS)
                     - ig.attribute(xt, target=TARGET, n_steps=STEPS).detach().numpy()).max()
    rows.append((f"IG n_steps={STEPS}", BATCH / ours, BATCH / theirs, ig_diff))

    dl = DeepLift(model)
    ours = best_time(lambda: sa.deeplift(net, x, target=TARGET, maxpool="gradient"), args.repeats)
    theirs = best_time(lambda: dl.attribute(xt, target=TARGET), args.repeats)
    dl_diff = np.abs(sa.deeplift(net, x, target=TARGET, maxpool="gradient") - dl.attribute(xt, target=TARGET).detach().numpy()).max()
    rows.append(("DeepLIFT rescale", BATCH / ours, BATCH / theirs, dl_diff))

    print(f"ResNet ({6 * args.blocks + 2} layers: stages 16/32/64, {args.blocks} block(s) each), 3×32×32, batch {BATCH}, "
          f"target {TARGET}; forward agrees with torch to {agree:.1e}")
    print(f"{'method':<20}{'swiftattr/s':>13}{'Captum/s':>11}{'ratio':>8}{'max |Δφ|':>11}")
    for name, a, b, diff in rows:
        print(f"{name:<20}{a:>13.1f}{b:>11.1f}{a / b:>7.1f}x{diff:>11.1e}")


if __name__ == "__main__":
    main()
