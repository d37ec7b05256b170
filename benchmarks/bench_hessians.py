"""Integrated Hessians throughput and completeness: swiftattr against path_explain (when given).

    python benchmarks/bench_hessians.py [--repeats 3] [--path-explain DIR] [--path-explain-max-d 100]

16 examples on an MLP d → 64 → 64 → 1 with Softplus(β = 10), d ∈ {10, 50, 100, 784}, baseline 0. swiftattr
runs its default rule (32 Gauss–Legendre nodes after t = v²); path_explain runs PathExplainerTorch.interactions
with use_expectation=False and num_samples=100 (its αβ grid, one backward pass per feature), on the same
float32 weights in torch. path_explain is not a dependency: `pip download --no-deps path-explain==0.0.7` and
unpack the wheel into DIR (its package __init__ imports TensorFlow, so the torch explainer is loaded from its
file). Completeness error: max_i |Σ_j Γ_ij − IG_i| / max_i |IG_i|, IG from swiftattr at 256 Gauss–Legendre
steps (exact to float32 here).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
from models import best_time, print_header  # noqa: E402

BATCH, HIDDEN, BETA = 16, 64, 10.0


def weights(d: int, rng):
    return [(rng.standard_normal((HIDDEN, d)) / np.sqrt(d), 0.1 * rng.standard_normal(HIDDEN)),
            (rng.standard_normal((HIDDEN, HIDDEN)) / np.sqrt(HIDDEN), 0.1 * rng.standard_normal(HIDDEN)),
            (rng.standard_normal((1, HIDDEN)) / np.sqrt(HIDDEN), 0.1 * rng.standard_normal(1))]


def swiftattr_net(w):
    return sa.Sequential([sa.Linear(*w[0]), sa.Softplus(BETA), sa.Linear(*w[1]), sa.Softplus(BETA), sa.Linear(*w[2])])


def torch_net(w):
    import torch

    layers = []
    for i, (W, b) in enumerate(w):
        lin = torch.nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float32))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float32))
        layers.append(lin)
        if i < 2:
            layers.append(torch.nn.Softplus(beta=BETA))
    return torch.nn.Sequential(*layers)


def load_path_explain(root):
    spec = importlib.util.spec_from_file_location(
        "path_explainer_torch", os.path.join(root, "path_explain", "explainers", "path_explainer_torch.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PathExplainerTorch


def completeness_error(gamma, ig):
    return float(np.abs(gamma.sum(-1) - ig).max() / np.abs(ig).max())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--path-explain", default=None, help="directory of an unpacked path-explain wheel")
    parser.add_argument("--path-explain-max-d", type=int, default=100)
    parser.add_argument("--dims", default="10,50,100,784")
    args = parser.parse_args()
    explainer = None
    if args.path_explain:
        import torch

        torch.set_num_threads(sa.get_num_threads())
        explainer = load_path_explain(args.path_explain)
    print_header(torch_threads=sa.get_num_threads() if explainer else None)
    print(f"# Integrated Hessians, {BATCH} examples, MLP d-{HIDDEN}-{HIDDEN}-1 softplus(beta={BETA:g}), baseline 0")
    print(f"{'d':>5} {'swiftattr ex/s':>15} {'completeness':>13} {'path_explain ex/s':>18} {'completeness':>13} {'speed-up':>9}")
    for d in [int(v) for v in args.dims.split(",")]:
        rng = np.random.default_rng(d)
        w = weights(d, rng)
        net = swiftattr_net(w)
        x = rng.standard_normal((BATCH, d)).astype(np.float32)
        ig = sa.integrated_gradients(net, x, target=0, n_steps=256)
        gamma = sa.integrated_hessians(net, x, target=0)
        t_sa = best_time(lambda: sa.integrated_hessians(net, x, target=0), args.repeats)
        row = f"{d:>5} {BATCH / t_sa:>15.1f} {completeness_error(gamma, ig):>13.2e}"
        if explainer is not None and d <= args.path_explain_max_d:
            import torch

            model = torch_net(w)
            pe = explainer(model)
            xt = torch.tensor(x, requires_grad=True)
            base = torch.zeros((1, d))

            def run():
                return pe.interactions(xt, base, num_samples=100, use_expectation=False, verbose=False).detach().numpy()

            g_pe = run()
            t_pe = best_time(run, 1, warmup=0)
            row += f" {BATCH / t_pe:>18.2f} {completeness_error(g_pe, ig):>13.2e} {t_pe / t_sa:>8.0f}x"
        else:
            row += f" {'-':>18} {'-':>13} {'-':>9}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
