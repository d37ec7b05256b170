"""Layer attributions: swiftattr against Captum (when importable) on the same weights, in the same run.

    python benchmarks/bench_layers.py [--repeats 3] [--batch 16] [--steps 50]

On the benchmark CNN of benchmarks/models.py (conv 1→16 k5, ReLU, maxpool 2, conv 16→32 k5, ReLU, maxpool 2,
512→128, ReLU, 128→10 on 1×28×28), a batch of 16, target 3, at the second ReLU (node 4, 32×8×8):
- GradCAM (Captum's LayerGradCam, relu_attributions=True, then LayerAttribution.interpolate to 28×28);
- LayerIntegratedGradients, n_steps (default 50) Gauss–Legendre nodes, zero baselines (Captum: one batch of
  batch·n_steps rows, its default internal_batch_size=None).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
import models  # noqa: E402
from models import cnn_swiftattr, cnn_torch, cnn_weights  # noqa: E402

TARGET, LAYER = 3, 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    x = np.random.default_rng(1).random((args.batch, 1, 28, 28), dtype=np.float32)
    weights = cnn_weights()
    net = cnn_swiftattr(weights)
    try:
        import torch

        torch.set_num_threads(sa.get_num_threads())
        from captum.attr import LayerAttribution, LayerGradCam, LayerIntegratedGradients
        model = cnn_torch(weights)
        xt = torch.from_numpy(x)
    except ImportError:
        torch = None

    methods = {
        "GradCAM (upsampled 28×28)": (
            lambda: sa.grad_cam(net, x, LAYER, TARGET),
            lambda: LayerAttribution.interpolate(
                LayerGradCam(model, model[LAYER]).attribute(xt, target=TARGET, relu_attributions=True), (28, 28))),
        f"LayerIntegratedGradients {args.steps} steps": (
            lambda: sa.layer_integrated_gradients(net, x, LAYER, target=TARGET, n_steps=args.steps),
            lambda: LayerIntegratedGradients(model, model[LAYER]).attribute(xt, target=TARGET, n_steps=args.steps)),
    }
    print(f"benchmark CNN, batch {args.batch}, layer {LAYER} (32×8×8), {sa.get_num_threads()} threads")
    print(f"{'method':<34} {'swiftattr ms':>13} {'captum ms':>10} {'ratio':>7} {'max rel diff':>13}")
    for name, (ours, theirs) in methods.items():
        t_ours = models.best_time(ours, args.repeats, warmup=1, settle=0.3)
        t_theirs, diff = np.nan, np.nan
        if torch is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_theirs = models.best_time(theirs, args.repeats, warmup=1, settle=0.3)
                ref = theirs().detach().numpy()
            diff = np.abs(ours() - ref).max() / np.abs(ref).max()
        print(f"{name:<34} {1e3 * t_ours:>13.2f} {1e3 * t_theirs:>10.2f} {t_theirs / t_ours:>6.1f}× {diff:>13.1e}")


if __name__ == "__main__":
    main()
