"""CDEP on a decoy task built from scikit-learn's 8×8 digits (the authors' DecoyMNIST, scaled down).

    PYTHONPATH=python python3 experiments/cdep_decoy_digits.py [--seeds 5] [--epochs 15]

Data (Rieger et al. 2020, DecoyMNIST, at 8×8): every image gets a 2×2 patch in a corner drawn at random per
image. In training its intensity encodes the label y, 255 − 25y on MNIST's 0..255 scale; at test time it is
25y, the training intensity of another class. Both are rescaled to the digits' 0..16 range (×16/255) and
the inputs divided by 16. A model that reads the patch therefore fails at test time; one that reads the
digit does not. 1 197 training and 600 test images (a seeded split per seed).

Model: an MLP, Flatten → Linear(64, 64) → ReLU → Linear(64, 10) (``--model cnn``: Conv2d(1, 8, 3, padding 1)
→ ReLU → MaxPool2d(2) → Conv2d(8, 16, 3, padding 1) → ReLU → MaxPool2d(2) → Flatten → Linear(64, 10), whose
input-gradient runs are slow), PyTorch's default initialisation (seeded), Adam (lr 3e-3, weight decay 1e-4,
the authors' DecoyMNIST weight decay), batch 64 (theirs), a fixed number of epochs, no early stopping.
Methods:
- vanilla: cross-entropy only;
- CDEP: cross-entropy + λ · mean_nc softmax([β, γ])₀ with (β, γ) the CD parts of the four corners taken as
  one region (the union mask, as the authors' DecoyMNIST code does);
- input gradient (Ross et al.): cross-entropy + λ · mean_n Σ_{corner pixels} (∂ Σ_c log softmax_c / ∂x)².
Each at several λ (none tuned on the test set; all are reported). Test accuracy over the seeds, mean ±
standard error, and two diagnostics on the test images: the CDEP penalty per unit λ, mean σ(β − γ) of the
corner region, and the mean |β| of its CD part (what CDEP should drive to 0). Prints a markdown table.
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


def model(kind):
    z = np.zeros
    if kind == "cnn":
        return sa.Sequential([
            sa.Conv2d(z((8, 1, 3, 3)), z(8), padding=1), sa.ReLU(), sa.MaxPool2d(2),
            sa.Conv2d(z((16, 8, 3, 3)), z(16), padding=1), sa.ReLU(), sa.MaxPool2d(2),
            sa.Flatten(), sa.Linear(z((10, 64)), z(10)),
        ], input_shape=(1, 8, 8))
    return sa.Sequential([sa.Flatten(), sa.Linear(z((64, 64)), z(64)), sa.ReLU(), sa.Linear(z((10, 64)), z(10))],
                         input_shape=(1, 8, 8))


def accuracy(net, x, y):
    return float((net.forward(x).argmax(1) == y).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    args = parser.parse_args()
    mask = corners_mask()
    methods = [
        ("vanilla", None),
        ("CDEP, λ = 10", lambda: sa.CDEP(mask, lam=10.0)),
        ("CDEP, λ = 100", lambda: sa.CDEP(mask, lam=100.0)),
        ("CDEP, λ = 1000", lambda: sa.CDEP(mask, lam=1000.0)),
        ("input gradient, λ = 1", lambda: sa.priors.InputGradient(mask, lam=1.0)),
        ("input gradient, λ = 100", lambda: sa.priors.InputGradient(mask, lam=100.0)),
    ]
    results = {name: [] for name, _ in methods}
    train_acc = {name: [] for name, _ in methods}
    seconds = {name: 0.0 for name, _ in methods}
    share = {name: [] for name, _ in methods}
    relevant = {name: [] for name, _ in methods}
    start = time.perf_counter()
    for seed in range(args.seeds):
        x_train, y_train, x_test, y_test = decoy_digits(seed)
        for name, prior in methods:
            t = time.perf_counter()
            net, _ = sa.train(model(args.model), x_train, y_train, optimizer="adam", lr=3e-3, weight_decay=1e-4, epochs=args.epochs,
                              batch_size=64, prior=None if prior is None else prior(), seed=seed, initialize=True,
                              progress=False)
            seconds[name] += time.perf_counter() - t
            results[name].append(accuracy(net, x_test, y_test))
            train_acc[name].append(accuracy(net, x_train, y_train))
            rel, irr = sa.contextual_decomposition(net, x_test, mask)
            share[name].append(float(np.mean(1 / (1 + np.exp(-(rel - irr))))))
            relevant[name].append(float(np.abs(rel).mean()))
    # The same images without any patch: what the architecture reaches on the digits alone.
    clean = []
    for seed in range(args.seeds):
        digits = load_digits()
        order = np.random.default_rng(seed).permutation(len(digits.target))
        xi = digits.images.astype(np.float32)[:, None] / 16
        net, _ = sa.train(model(args.model), xi[order[600:]], digits.target[order[600:]], optimizer="adam", lr=3e-3, weight_decay=1e-4,
                          epochs=args.epochs, batch_size=64, seed=seed, initialize=True, progress=False)
        clean.append(accuracy(net, xi[order[:600]], digits.target[order[:600]]))

    def cell(v, scale=100, digits=1):
        v = np.asarray(v) * scale
        if len(v) == 1:
            return f"{v.mean():.{digits}f}"
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1) / np.sqrt(len(v)):.{digits}f}"

    print(f"Decoy digits (8×8, 2×2 corner patch), {args.model.upper()}, {args.epochs} epochs, {args.seeds} seeds; "
          "accuracy in %, mean ± standard error")
    print()
    print("| method | train accuracy (decoy) | test accuracy (swapped decoy) | test σ(β − γ) of the corners | "
          "test mean abs(β) | s per run |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, _ in methods:
        print(f"| {name} | {cell(train_acc[name])} | {cell(results[name])} | {cell(share[name], 1, 3)} | "
              f"{cell(relevant[name], 1, 2)} | {seconds[name] / args.seeds:.1f} |")
    print(f"| (no patch anywhere, vanilla) | | {cell(clean)} | | | |")
    print()
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
