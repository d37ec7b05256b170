"""Faithfulness metrics: swiftattr against Captum (when importable) on the same weights, in the same run.

    python benchmarks/bench_metrics.py [--repeats 3] [--batch 64] [--infidelity-samples 50]
                                       [--sensitivity-samples 10] [--n-steps 50]

On the benchmark CNN of benchmarks/models.py (1×28×28 → 10), a batch of 64, target 3:
- infidelity with 50 Gaussian perturbations per example (σ = 0.003) of the saliency map (signed gradient):
  64 × 50 = 3,200 perturbed forward passes plus the dot products; each library draws its own noise;
- max-sensitivity with 10 uniform perturbations (radius 0.02) of Integrated Gradients (50 Gauss–Legendre
  steps, zero baseline) inside: IG on 64 + 640 inputs, i.e. 35,200 gradient rows.
Captum's IG gets internal_batch_size = 640 (so its memory stays bounded; it runs batched GEMMs either way).
Before timing, the script checks that both libraries agree on the same perturbations: swiftattr's infidelity
with Captum's recorded noise, and max-sensitivity with Captum's recorded δ, to float32 rounding.
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

TARGET, NOISE, RADIUS = 3, 0.003, 0.02


def best_time(fn, repeats):
    return models.best_time(fn, repeats, warmup=1, settle=0.3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--infidelity-samples", type=int, default=50)
    ap.add_argument("--sensitivity-samples", type=int, default=10)
    ap.add_argument("--n-steps", type=int, default=50)
    args = ap.parse_args()
    n, S_inf, S_sens, steps = args.batch, args.infidelity_samples, args.sensitivity_samples, args.n_steps
    rng = np.random.default_rng(1)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    weights = cnn_weights()
    net = cnn_swiftattr(weights)
    phi = sa.saliency(net, x, target=TARGET, abs=False)

    def ours_infidelity(perturbations=None):
        return sa.metrics.infidelity(net, x, phi, target=TARGET, n_perturb_samples=None if perturbations is not None
                                     else S_inf, perturbations=perturbations, noise_std=NOISE, seed=0)

    def ours_sensitivity(perturbations=None):
        return sa.metrics.sensitivity_max(sa.integrated_gradients, net, x, target=TARGET, perturb_radius=RADIUS,
                                          n_perturb_samples=None if perturbations is not None else S_sens,
                                          perturbations=perturbations, seed=0, n_steps=steps)

    have_captum = True
    try:
        import torch

        torch.set_num_threads(2)
        from captum.attr import IntegratedGradients
        from captum.metrics import infidelity, sensitivity_max
        model = cnn_torch(weights)
    except ImportError:
        have_captum = False

    rows = []
    if have_captum:
        xt, at = torch.from_numpy(x), torch.from_numpy(phi)
        ig = IntegratedGradients(model)
        recorded = {}

        def perturb_infidelity(inputs):
            noise = torch.randn_like(inputs) * NOISE
            recorded["noise"] = noise
            return noise, inputs - noise

        def perturb_sensitivity(inputs, perturb_radius):
            delta = torch.empty_like(inputs).uniform_(-perturb_radius, perturb_radius)
            recorded["delta"] = delta
            return inputs + delta

        def captum_infidelity():
            return infidelity(model, perturb_infidelity, xt, at, target=TARGET, n_perturb_samples=S_inf)

        def captum_sensitivity():
            return sensitivity_max(ig.attribute, xt, perturb_func=perturb_sensitivity, perturb_radius=RADIUS,
                                   n_perturb_samples=S_sens, target=TARGET, n_steps=steps, internal_batch_size=640)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = captum_infidelity().numpy()
            mine = ours_infidelity(recorded["noise"].numpy().reshape((n, S_inf) + x.shape[1:]))
            # Infidelity of σ = 0.003 noise: b = f(x) − f(x − I) ~ 1e-3 from outputs ~0.1 in float32 (both), so
            # each library's squared residual carries ~1e-4 relative rounding: agreement to 1e-2 relative.
            inf_agree = np.max(np.abs(mine - theirs) / np.abs(theirs))
            theirs = captum_sensitivity().numpy()
            mine = ours_sensitivity(recorded["delta"].numpy().reshape((n, S_sens) + x.shape[1:]))
            sens_agree = np.max(np.abs(mine - theirs) / np.abs(theirs))
            t_inf_theirs = best_time(captum_infidelity, max(1, args.repeats))
            t_sens_theirs = best_time(captum_sensitivity, max(1, args.repeats - 1))
    t_inf = best_time(ours_infidelity, args.repeats)
    t_sens = best_time(ours_sensitivity, args.repeats)
    rows.append((f"infidelity, {S_inf} perturbations", t_inf, t_inf_theirs if have_captum else np.nan,
                 inf_agree if have_captum else np.nan))
    rows.append((f"max-sensitivity, {S_sens} samples, IG {steps} steps", t_sens,
                 t_sens_theirs if have_captum else np.nan, sens_agree if have_captum else np.nan))

    time.sleep(0.3)
    models.print_header(2)
    print(f"Metrics on the CNN 1x28x28, batch {n}, target {TARGET}; times in seconds (best of {args.repeats}); "
          f"'agree': max relative difference on the same perturbations")
    print(f"{'metric':<46}{'swiftattr s':>12}{'Captum s':>10}{'ratio':>8}{'agree':>10}")
    for name, ours, theirs, agree in rows:
        if np.isfinite(theirs):
            print(f"{name:<46}{ours:>12.3f}{theirs:>10.3f}{theirs / ours:>7.1f}x{agree:>10.1e}")
        else:
            print(f"{name:<46}{ours:>12.3f}")


if __name__ == "__main__":
    main()
