"""Plain training throughput: seconds per epoch of swiftattr's trainer against a PyTorch loop, same run.

    python benchmarks/bench_training.py [--examples 10000] [--epochs 2] [--repeats 2]

The MLP 784-512-256-10 (ReLU), cross-entropy, Adam (lr 1e-3), mini-batches of 64, on synthetic data (10,000
examples of 784 features, labels from a random linear map, so the task is learnable). torch runs the same
weights with torch.set_num_threads(swiftattr's thread count), a shuffled index per epoch (torch.randperm)
and the textbook zero_grad / forward / backward / step loop. Each figure is the best of `repeats` runs of
`epochs` epochs, divided by `epochs`. The issue's target: swiftattr ≥ 1.5× torch.

Row "EG penalty (k=1)": the same run with an expected-gradients L1 prior (sa.priors.L1(LAM_EG), one
reference — another example of the mini-batch — and one α per example, drawn every step); torch computes the
same loss by double back-propagation: x̃ = r + α(x − r) with r = x[(i + 1 + randint(N − 1)) mod N], φ = (x − r) ⊙
∇_x̃ f_y(x̃) by autograd.grad(create_graph=True), loss = CE + LAM_EG · mean |φ|, backward, step. Target ≥ 2×.

The machine is shared: other processes inflate both figures, unevenly; read the ratio of one run, not the
absolute times.
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
from models import mlp_swiftattr, mlp_torch, mlp_weights, print_header  # noqa: E402

BATCH, LR = 64, 1e-3


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 784)).astype(np.float32)
    w = rng.standard_normal((784, 10)).astype(np.float32)
    return x, (x @ w).argmax(1).astype(np.int64)


def swiftattr_epoch(params, x, y, epochs: int, repeats: int) -> float:
    net = mlp_swiftattr(params)
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        sa.train(net, x, y, loss="cross_entropy", optimizer="adam", lr=LR, epochs=epochs, batch_size=BATCH, seed=r,
                 progress=False)
        best = min(best, time.perf_counter() - t)
    return best / epochs


def torch_epoch(params, x, y, epochs: int, repeats: int) -> float:
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    best = float("inf")
    for r in range(repeats):
        model = mlp_torch(params)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        torch.manual_seed(r)
        t = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(xt))
            for start in range(0, len(xt), BATCH):
                idx = order[start:start + BATCH]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        best = min(best, time.perf_counter() - t)
    return best / epochs


# --- EG penalty row (attribution priors) ---
LAM_EG = 1e-2


def swiftattr_eg_epoch(params, x, y, epochs: int, repeats: int) -> float:
    net = mlp_swiftattr(params)
    best = float("inf")
    for r in range(repeats):
        t = time.perf_counter()
        sa.train(net, x, y, loss="cross_entropy", optimizer="adam", lr=LR, epochs=epochs, batch_size=BATCH, seed=r,
                 prior=sa.priors.L1(LAM_EG), progress=False)
        best = min(best, time.perf_counter() - t)
    return best / epochs


def torch_eg_epoch(params, x, y, epochs: int, repeats: int) -> float:
    import torch

    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    best = float("inf")
    for r in range(repeats):
        model = mlp_torch(params)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        torch.manual_seed(r)
        t = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(xt))
            for start in range(0, len(xt), BATCH):
                idx = order[start:start + BATCH]
                xb, yb = xt[idx], yt[idx]
                n = len(idx)
                other = (torch.arange(n) + 1 + torch.randint(0, max(n - 1, 1), (n,))) % n
                refs = xb[other]
                alpha = torch.rand(n, 1)
                points = (refs + alpha * (xb - refs)).requires_grad_(True)
                (g,) = torch.autograd.grad(model(points).gather(1, yb[:, None]).sum(), points, create_graph=True)
                phi = (xb - refs) * g
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xb), yb) + LAM_EG * phi.abs().mean()
                loss.backward()
                opt.step()
        best = min(best, time.perf_counter() - t)
    return best / epochs
# --- end EG penalty row ---


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    threads = sa.get_num_threads()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print_header(threads if torch is not None else None)
    params = mlp_weights(0)
    x, y = data(args.examples)
    steps = -(-args.examples // BATCH)
    print(f"# MLP 784-512-256-10, Adam, batch {BATCH}, {args.examples} examples ({steps} steps/epoch), "
          f"best of {args.repeats} × {args.epochs} epochs")
    ours = swiftattr_epoch(params, x, y, args.epochs, args.repeats)
    print(f"| {'method':<22} | {'s/epoch':>8} | {'ms/step':>8} | {'vs torch':>8} |")
    print(f"|{'-' * 24}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    if torch is not None:
        theirs = torch_epoch(params, x, y, args.epochs, args.repeats)
        print(f"| {'torch ' + torch.__version__:<22} | {theirs:8.3f} | {1e3 * theirs / steps:8.2f} | {1.0:8.2f} |")
        print(f"| {'swiftattr':<22} | {ours:8.3f} | {1e3 * ours / steps:8.2f} | {theirs / ours:7.2f}× |")
    else:
        print(f"| {'swiftattr':<22} | {ours:8.3f} | {1e3 * ours / steps:8.2f} | {'—':>8} |")
    eg = swiftattr_eg_epoch(params, x, y, args.epochs, args.repeats)
    if torch is not None:
        theirs = torch_eg_epoch(params, x, y, args.epochs, args.repeats)
        print(f"| {'torch EG penalty (k=1)':<22} | {theirs:8.3f} | {1e3 * theirs / steps:8.2f} | {1.0:8.2f} |")
        print(f"| {'EG penalty (k=1)':<22} | {eg:8.3f} | {1e3 * eg / steps:8.2f} | {theirs / eg:7.2f}× |")
    else:
        print(f"| {'EG penalty (k=1)':<22} | {eg:8.3f} | {1e3 * eg / steps:8.2f} | {'—':>8} |")


if __name__ == "__main__":
    main()
