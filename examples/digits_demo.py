"""The main job: train a network on scikit-learn's 8×8 handwritten digits, explain held-out predictions
with Integrated Gradients, Expected Gradients and DeepLIFT, and save a figure of the attribution maps.

    make demo            # or: python examples/digits_demo.py [--out digits_attributions.png]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

import swiftattr as sa


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.abspath("digits_attributions.png"))
    ap.add_argument("--examples", type=int, default=6)
    args = ap.parse_args()

    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float32)  # 1797 images of 8×8 pixels in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(X, digits.target, test_size=0.25, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(64, 32), activation="tanh", max_iter=400, random_state=0)
    clf.fit(X_train, y_train)

    net = sa.from_sklearn(clf, output="logits")  # explain the logits (the softmax's inputs)
    accuracy = (net.forward(X_test).argmax(1) == y_test).mean()
    print(f"network {net}")
    print(f"test accuracy {accuracy:.3f} on {len(y_test)} held-out digits")

    predicted = net.forward(X_test).argmax(1)
    t0 = time.perf_counter()
    ig, delta = sa.integrated_gradients(net, X_test, baselines=None, target=predicted, n_steps=50,
                                        return_convergence_delta=True)
    t_ig = time.perf_counter() - t0
    gap = net.forward(X_test)[np.arange(len(X_test)), predicted] - net.forward(np.zeros((1, 64)))[0, predicted]
    rel = np.abs(delta) / np.maximum(np.abs(gap), 1e-6)
    print(f"Integrated Gradients on {len(X_test)} digits in {t_ig * 1e3:.1f} ms; completeness error "
          f"|Σφ − (f(x) − f(0))| / |f(x) − f(0)|: median {np.median(rel):.1e}, max {rel.max():.1e}")

    t0 = time.perf_counter()
    eg = sa.expected_gradients(net, X_test, references=X_train, target=predicted, n_samples=200, seed=0)
    print(f"Expected Gradients (200 samples per digit, training set as references) in {(time.perf_counter() - t0) * 1e3:.1f} ms")

    dl, dl_delta = sa.deeplift(net, X_test, baselines=None, target=predicted, rule="revealcancel",
                               return_convergence_delta=True)
    print(f"DeepLIFT (RevealCancel): largest summation-to-delta residual {np.abs(dl_delta).max():.1e}")

    k = args.examples
    sa.plot.image_attributions(
        X_test[:k], [ig[:k], eg[:k], dl[:k]], shape=(8, 8), titles=[f"digit {y} → {p}" for y, p in zip(y_test[:k], predicted[:k])],
        method_names=["Integrated Gradients", "Expected Gradients", "DeepLIFT"], image_cmap="gray_r", path=args.out)
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
