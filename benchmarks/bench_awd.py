"""Adaptive wavelet distillation: time to fit a wavelet, swiftattr.awd against the authors' awave (when importable).

    python benchmarks/bench_awd.py [--n 1000] [--length 256] [--epochs 20] [--repeats 1]

1,000 signals of length 256, db5 at 3 levels (periodised, as both libraries are run), 20 epochs of Adam (lr 1e-3)
on the full batch (awave's ``fit(X=...)`` uses one batch of every signal), awave's λ's (1 each) with the
saliency attribution penalty of a trained MLP 256 → 64 → 64 → 2 with Softplus(β = 2) (smooth, so the Hessian
term is present in both), target 1. The conjugate-mirror term is off in both (λ_CMF = 0): awave 0.1's
version of it returns a complex loss under current torch (``torch.fft.fft`` of its stacked real/imaginary
layout), so its ``fit`` fails with it on. Both start from the same filter and data; the table shows seconds per fit
and the largest difference between the two fitted filters (they optimise the same loss with the same
optimiser, so the difference is float32 rounding grown over the steps).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import swiftattr as sa  # noqa: E402
from models import best_time, print_header  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    L = args.length
    t = np.linspace(0, 1, L)
    freq = rng.uniform(2, 20, size=(args.n, 1))
    X = (np.sin(2 * np.pi * freq * t) + 0.3 * rng.normal(size=(args.n, L))).astype(np.float32)
    ws = [(rng.normal(size=(64, L)) / np.sqrt(L), rng.normal(size=64) * 0.1),
          (rng.normal(size=(64, 64)) / 8, rng.normal(size=64) * 0.1), (rng.normal(size=(2, 64)) / 8, np.zeros(2))]
    ws = [(w.astype(np.float32), b.astype(np.float32)) for w, b in ws]
    net = sa.Sequential([sa.Linear(*ws[0]), sa.Softplus(2.0), sa.Linear(*ws[1]), sa.Softplus(2.0), sa.Linear(*ws[2])])

    try:
        import torch
        torch_threads = torch.get_num_threads()
    except ImportError:
        torch = None
        torch_threads = None
    print_header(torch_threads)
    print(f"# AWD fit: {args.n} signals of length {L}, db5, 3 levels, {args.epochs} epochs, full batch, saliency penalty")

    result = {}

    def ours():
        result["sa"] = sa.awd.fit(net, X, wave="db5", levels=3, attribution="saliency", target=1, lam_wave=1.0,
                                  lam_attr=1.0, epochs=args.epochs, lr=1e-3, project=False, constraint_weights={"cmf": 0.0})

    t_sa = best_time(ours, args.repeats, warmup=0)
    rows = [("swiftattr.awd", t_sa, "")]
    try:
        from awave.transform1d import DWT1d
    except ImportError:
        DWT1d = None
    if torch is not None and DWT1d is not None:
        nn = torch.nn
        model = nn.Sequential(nn.Flatten(), nn.Linear(L, 64), nn.Softplus(2.0), nn.Linear(64, 64), nn.Softplus(2.0),
                              nn.Linear(64, 2))
        with torch.no_grad():
            for layer, (w, b) in zip([model[1], model[3], model[5]], ws):
                layer.weight.copy_(torch.from_numpy(w))
                layer.bias.copy_(torch.from_numpy(b))
        model.eval()

        def theirs():
            wt = DWT1d(wave="db5", mode="periodization", J=3)
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                wt.fit(X=X[:, None, :], pretrained_model=model, lr=1e-3, num_epochs=args.epochs, attr_methods="Saliency",
                       target=1, lamL1wave=1.0, lamL1attr=1.0, lamCMF=0.0)
            result["awave"] = wt.h0.detach().numpy().ravel()

        t_aw = best_time(theirs, args.repeats, warmup=0)
        diff = np.abs(result["sa"].filter - result["awave"]).max()
        rows.append(("awave", t_aw, f"{t_aw / t_sa:.1f}×"))
        print(f"# max |h_swiftattr − h_awave| = {diff:.2e}")
    else:
        print("# awave (or torch) not importable: swiftattr only")
    print("| library | seconds per fit | swiftattr speed-up |\n| --- | ---: | ---: |")
    for name, secs, ratio in rows:
        print(f"| {name} | {secs:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
