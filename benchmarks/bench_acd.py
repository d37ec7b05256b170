"""Agglomerative Contextual Decomposition end to end: one 28×28 image and one 40-token sequence.

    python benchmarks/bench_acd.py [--repeats 3]

Image: the benchmark CNN of models.py (1×28×28, 10 classes, random weights as in bench_cd.py), one image,
pixels as units (sweep_dim=1, acd's default for MNIST), percentile_include=99.5: every level's candidates are
scored by CD in one batched call. Text: Embedding(5000, 64) → LSTM(64, 128) → Linear(128, 2) with random
weights, one 40-token sequence. Prints seconds per hierarchy, the levels built and the masks scored. The acd
package's own agglomeration calls its CD once per candidate group (about 112 ms per call on the benchmark
CNN on this machine, and a 28×28 hierarchy scores thousands of groups), so it is not timed here; bench_cd.py
compares the CD calls themselves.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
import models  # noqa: E402
from models import cnn_swiftattr, cnn_weights  # noqa: E402


def text_model(rng, vocab=5000, e=64, h=128, length=40):
    s = 1 / np.sqrt(h)
    layers = [sa.Embedding(rng.standard_normal((vocab, e)).astype(np.float32)),
              sa.LSTM(rng.uniform(-s, s, (4 * h, e)), rng.uniform(-s, s, (4 * h, h)), rng.uniform(-s, s, 4 * h),
                      rng.uniform(-s, s, 4 * h)),
              sa.Linear(rng.standard_normal((2, h)) * s, np.zeros(2))]
    return sa.Sequential(layers, input_shape=(length,))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    models.print_header()
    rng = np.random.default_rng(0)
    net = cnn_swiftattr(cnn_weights())
    image = rng.random((1, 28, 28), dtype=np.float32)
    target = int(np.argmax(net.forward(image[None])[0]))
    result = {}

    def image_run():
        result["image"] = sa.acd(net, image, target=target, percentile_include=99.5)

    t_image = models.best_time(image_run, args.repeats, warmup=1)
    text = text_model(rng)
    tokens = rng.integers(0, 5000, 40).astype(np.float32)

    def text_run():
        result["text"] = sa.acd(text, tokens, target=1)

    t_text = models.best_time(text_run, args.repeats, warmup=1)
    print()
    print("| input | model | seconds per hierarchy | levels |")
    print("| --- | --- | ---: | ---: |")
    print(f"| 28×28 image, pixels | benchmark CNN | {t_image:.3f} | {len(result['image']['levels'])} |")
    print(f"| 40 tokens | Embedding(5000, 64) → LSTM(128) → Linear | {t_text:.3f} | {len(result['text']['levels'])} |")


if __name__ == "__main__":
    main()
