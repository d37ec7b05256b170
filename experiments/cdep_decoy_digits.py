"""CDEP on a decoy task built from scikit-learn's 8×8 digits (the authors' DecoyMNIST, scaled down).

    PYTHONPATH=python python3 experiments/cdep_decoy_digits.py [--seeds 5] [--epochs 15]

Data (Rieger et al. 2020, DecoyMNIST, at 8×8): every image gets a 2×2 patch in a corner drawn at random per
image. In training its intensity encodes the label y, 255 − 25y on MNIST's 0..255 scale; at test time it is
25y, the training intensity of another class. Both are rescaled to the digits' 0..16 range (×16/255) and
the inputs divided by 16. A model that reads the patch therefore fails at test time; one that reads the
digit does not. 1 197 training and 600 test images (a seeded split per seed).

Model: a small CNN, Conv2d(1, 8, 3, padding 1) → ReLU → MaxPool2d(2) → Conv2d(8, 16, 3, padding 1) → ReLU →
MaxPool2d(2) → Flatten → Linear(64, 10), PyTorch's default initialisation (seeded), Adam (lr 3e-3,
weight decay 1e-4, as the authors' DecoyMNIST script uses), batch 64, a fixed number of epochs, no early
stopping. Methods:
- vanilla: cross-entropy only;
- CDEP: cross-entropy + λ · mean_nc softmax([β, γ])₀ with (β, γ) the CD parts of the four corners taken as
  one region (the union mask, as the authors' DecoyMNIST code does);
- input gradient (Ross et al.): cross-entropy + λ · mean_n Σ_{corner pixels} (∂ Σ_c log softmax_c / ∂x)².
Each at two λ (no λ was tuned on the test set; both are reported). Test accuracy over the seeds, mean ±
standard error. Prints a markdown table.
"""
import argparse
import time

import numpy as np
from sklearn.datasets import load_digits

import swiftattr as sa


def decoy_digits(seed):
    """(x_train, y_train, x_test, y_test), images (N, 1, 8, 8) in [0, 1] with the decoy patch."""
    digits = load_digits()
    x = digits.images.astype(np.float32)  # 0..16
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    test, train = order[:600], order[600:]

    def patch(images, labels, value):
        out = images.copy()
        corner = rng.integers(0, 4, len(labels))
        for n, (c, v) in enumerate(zip(corner, value(labels))):
            r, q = (0 if c < 2 else 6), (0 if c % 2 == 0 else 6)
            out[n, r:r + 2, q:q + 2] = v
        return out

    scale = 16 / 255
    x_train = patch(x[train], y[train], lambda lab: (255 - 25 * lab) * scale)
    x_test = patch(x[test], y[test], lambda lab: 25 * lab * scale)
    return x_train[:, None] / 16, y[train], x_test[:, None] / 16, y[test]


def corners_mask():
    m = np.zeros((1, 8, 8), np.float32)
    for r in (0, 6):
        for q in (0, 6):
            m[0, r:r + 2, q:q + 2] = 1
    return m


def model():
    z = np.zeros
    return sa.Sequential([
        sa.Conv2d(z((8, 1, 3, 3)), z(8), padding=1), sa.ReLU(), sa.MaxPool2d(2),
        sa.Conv2d(z((16, 8, 3, 3)), z(16), padding=1), sa.ReLU(), sa.MaxPool2d(2),
        sa.Flatten(), sa.Linear(z((10, 64)), z(10)),
    ], input_shape=(1, 8, 8))


def accuracy(net, x, y):
    return float((net.forward(x).argmax(1) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()
    mask = corners_mask()
    methods = [
        ("vanilla", None),
        ("CDEP, λ = 1", lambda: sa.CDEP(mask, lam=1.0)),
        ("CDEP, λ = 10", lambda: sa.CDEP(mask, lam=10.0)),
        ("input gradient, λ = 1", lambda: sa.priors.InputGradient(mask, lam=1.0)),
        ("input gradient, λ = 100", lambda: sa.priors.InputGradient(mask, lam=100.0)),
    ]
    results = {name: [] for name, _ in methods}
    train_acc = {name: [] for name, _ in methods}
    seconds = {name: 0.0 for name, _ in methods}
    start = time.perf_counter()
    for seed in range(args.seeds):
        x_train, y_train, x_test, y_test = decoy_digits(seed)
        for name, prior in methods:
            t = time.perf_counter()
            net, _ = sa.train(model(), x_train, y_train, optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=args.epochs,
                              batch_size=64, prior=None if prior is None else prior(), seed=seed, initialize=True,
                              progress=False)
            seconds[name] += time.perf_counter() - t
            results[name].append(accuracy(net, x_test, y_test))
            train_acc[name].append(accuracy(net, x_train, y_train))
    # The same images without any patch: what the architecture reaches on the digits alone.
    clean = []
    for seed in range(args.seeds):
        digits = load_digits()
        order = np.random.default_rng(seed).permutation(len(digits.target))
        xi = digits.images.astype(np.float32)[:, None] / 16
        net, _ = sa.train(model(), xi[order[600:]], digits.target[order[600:]], optimizer="adam", lr=3e-3, weight_decay=1e-4,
                          epochs=args.epochs, batch_size=64, seed=seed, initialize=True, progress=False)
        clean.append(accuracy(net, xi[order[:600]], digits.target[order[:600]]))

    def cell(v):
        v = np.asarray(v) * 100
        return f"{v.mean():.1f} ± {v.std(ddof=1) / np.sqrt(len(v)):.1f}" if len(v) > 1 else f"{v.mean():.1f}"

    print(f"Decoy digits (8×8, 2×2 corner patch), small CNN, {args.epochs} epochs, {args.seeds} seeds; accuracy in %, "
          "mean ± standard error")
    print()
    print("| method | train accuracy (decoy) | test accuracy (swapped decoy) | time per run (s) |")
    print("| --- | --- | --- | --- |")
    for name, _ in methods:
        print(f"| {name} | {cell(train_acc[name])} | {cell(results[name])} | {seconds[name] / args.seeds:.1f} |")
    print(f"| (no patch anywhere, vanilla) | | {cell(clean)} | |")
    print()
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
