"""RATE benchmark: swiftattr against the authors' Python package (Ish-Horowicz et al., RATE_python_package).

Prints a markdown table. Dense path (covariance projection, one class, n = 2p):
  * "esa":  RATE from the effect-size posterior (esa_mean, esa_cov);
  * "e2e":  end to end from (X, M_F, V_F) with a dense V_F.
Low-rank path (n = 1,000): p = 20,000 and 100,000 from 200 posterior draws and from (M_F, V_F).

The reference is the authors' own code when a checkout of their package is available (``--reference DIR``,
default $RATE_REFERENCE or /tmp/RATE_python_package; it is never part of this repository): its
``importance.rate`` with ``kl_solvers.PrecisionSolver`` and ``solve_utils.chol_then_inv`` — one inversion,
then O(p²) work per variable. Their ``rate/utils.py`` imports tensorflow for unrelated helpers, so the
script loads ``importance``, ``kl_solvers``, ``solve_utils`` and ``projections`` from the checkout with a
two-line stand-in for ``utils.isPD``. Without a checkout, a faithful reproduction of the same per-variable
algorithm (labelled "reproduction") is timed instead. The reference needs pandas and scikit-learn.

GFLOP/s are for our dense steps (flop counts below), against the double-precision GEMM peak measured here
with numpy on 4000×4000 matrices. Ratios are measured in one run, on the same machine and threads.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
import swiftattr as sa  # noqa: E402

sys.path.insert(0, HERE)
from models import print_header  # noqa: E402


def best_of(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def gemm_peak() -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 4000))
    b = rng.standard_normal((4000, 4000))
    a @ b
    t, _ = best_of(lambda: a @ b, 3)
    return 2 * 4000**3 / t / 1e9


# --- reference ---------------------------------------------------------------------------------------
def load_reference(path):
    """Returns (esa_fn, e2e_fn, label). esa_fn(Mb, Vb) and e2e_fn(X, Mf, Vf) give KLDs (p,) of class 0."""
    src = os.path.join(path, "rate") if path else None
    if src and os.path.exists(os.path.join(src, "kl_solvers.py")):
        try:
            tmp = tempfile.mkdtemp(prefix="rate_ref_")
            pkg = os.path.join(tmp, "rate")
            os.makedirs(pkg)
            for name in ("importance.py", "kl_solvers.py", "solve_utils.py", "projections.py"):
                shutil.copy(os.path.join(src, name), pkg)
            with open(os.path.join(pkg, "__init__.py"), "w"):
                pass
            with open(os.path.join(pkg, "utils.py"), "w") as f:
                f.write("import numpy as np\n\ndef isPD(B):\n    try:\n        np.linalg.cholesky(B)\n"
                        "        return True\n    except np.linalg.LinAlgError:\n        return False\n")
            sys.path.insert(0, tmp)
            importance = importlib.import_module("rate.importance")
            kl_solvers = importlib.import_module("rate.kl_solvers")
            solve_utils = importlib.import_module("rate.solve_utils")
            projections = importlib.import_module("rate.projections")

            def maker(M, V, J):
                return kl_solvers.PrecisionSolver(M, V, J, inv_func=solve_utils.chol_then_inv)

            def esa(Mb, Vb):
                return importance.rate(Mb=Mb, Vb=Vb, solver_maker=maker).KLDs[0]["KLD"].to_numpy()

            def e2e(X, Mf, Vf):
                res = importance.rate(X=X, Mf=Mf, Vf=Vf, projection=projections.CovarianceProjection(),
                                      solver_maker=maker)
                return res.KLDs[0]["KLD"].to_numpy()

            return esa, e2e, "authors' package"
        except ImportError as e:  # pandas / scikit-learn missing
            print(f"# reference checkout found but not importable ({e}); using the reproduction")

    def esa(Mb, Vb):
        # Reproduction of PrecisionSolver: Λ = (Σ + 1e-9 I)⁻¹ once, then per variable
        # δ = −Σ_{−j,j} μ_j/Σ_jj and KLD_j = ½ δᵀ Λ_{−j,−j} δ (np.delete copies: O(p²) per j).
        mu, V = Mb[0], Vb[0] + 1e-9 * np.eye(Vb.shape[1])
        import scipy.linalg as sl
        c = sl.cho_factor(V)
        Lam = sl.cho_solve(c, np.eye(V.shape[0]))
        out = np.zeros(len(mu))
        for j in range(len(mu)):
            s = np.delete(V[:, j], j)
            d = -s * mu[j] / V[j, j]
            out[j] = 0.5 * d @ np.delete(np.delete(Lam, j, axis=1), j, axis=0) @ d
        return out

    def e2e(X, Mf, Vf):
        n = X.shape[0]
        Xc = X - X.mean(0, keepdims=True)
        Mb = (Xc.T @ (Mf - Mf.mean(1, keepdims=True)).T).T / (n - 1)
        Vb = np.matmul(np.matmul(Xc.T, Vf), Xc) / (n - 1) ** 2
        return esa(Mb, Vb)

    return esa, e2e, "reproduction"


# --- problems ----------------------------------------------------------------------------------------
def dense_problem(p, rng):
    n = 2 * p
    X = rng.standard_normal((n, p))
    X[:, 1::2] += 0.5 * X[:, 0:-1:2]  # some collinearity
    beta = np.zeros(p)
    beta[:10] = rng.standard_normal(10)
    M = (X @ beta + 0.1 * rng.standard_normal(n))[np.newaxis]
    U = rng.standard_normal((n, 20)) / np.sqrt(n)
    V = (0.5 * np.eye(n) + U @ U.T)[np.newaxis]
    return X, M, V


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", default=os.environ.get("RATE_REFERENCE", "/tmp/RATE_python_package"))
    ap.add_argument("--dense", default="500,1000,2000,5000")
    ap.add_argument("--lowrank", default="20000,100000")
    ap.add_argument("--reference-max-p", type=int, default=2000,
                    help="largest p for the reference (its time grows as p³: ~5 min at p = 5000)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    print_header()
    peak = gemm_peak()
    ref_esa, ref_e2e, label = load_reference(args.reference)
    print(f"# dgemm peak (numpy, 4000³): {peak:.1f} GFLOP/s; reference: {label}")
    print()
    print("| path | p | n | swiftattr (s) | GFLOP/s | % of peak | reference (s) | speed-up | max |ΔRATE| |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in [int(v) for v in args.dense.split(",") if v]:
        X, M, V = dense_problem(p, rng)
        n = X.shape[0]
        Xc = X - X.mean(0)
        Mb = (Xc.T @ M[0])[np.newaxis] / (n - 1)
        Vb = (Xc.T @ V[0] @ Xc)[np.newaxis] / (n - 1) ** 2
        Vb = 0.5 * (Vb + Vb.transpose(0, 2, 1))
        repeat = 3 if p <= 2000 else 1
        t_esa, r_esa = best_of(lambda: sa.rate(esa_mean=Mb, esa_cov=Vb), repeat)
        t_e2e, r_e2e = best_of(lambda: sa.rate(X, M_F=M, V_F=V), repeat)
        flops_esa = 2 * p**3 / 3
        flops_e2e = n**3 / 3 + n * n * p + n * p * p + flops_esa
        if p <= args.reference_max_p:
            t_ref, kld = best_of(lambda: ref_esa(Mb, Vb), 1)
            dr = np.abs(kld / kld.sum() - r_esa.rate[0]).max()
            t_ref2, kld2 = best_of(lambda: ref_e2e(X, M, V), 1)
            dr2 = np.abs(kld2 / kld2.sum() - r_e2e.rate[0]).max()
            ref_cells = (f"{t_ref:.2f}", f"{t_ref / t_esa:.0f}×", f"{dr:.1e}")
            ref_cells2 = (f"{t_ref2:.2f}", f"{t_ref2 / t_e2e:.1f}×", f"{dr2:.1e}")
        else:
            ref_cells = ref_cells2 = ("—", "—", "—")
        for name, t, fl, cells in (("esa", t_esa, flops_esa, ref_cells), ("e2e", t_e2e, flops_e2e, ref_cells2)):
            g = fl / t / 1e9
            print(f"| dense {name} | {p} | {n} | {t:.3f} | {g:.1f} | {100 * g / peak:.0f}% | "
                  f"{cells[0]} | {cells[1]} | {cells[2]} |", flush=True)
        del X, M, V, Vb, Xc
    n = 1000
    for p in [int(v) for v in args.lowrank.split(",") if v]:
        X = rng.standard_normal((n, p))
        beta = np.zeros(p)
        beta[:20] = rng.standard_normal(20)
        f = X @ beta
        U = rng.standard_normal((n, 20)) / np.sqrt(n)
        V = (0.5 * np.eye(n) + U @ U.T)[np.newaxis]
        L = np.linalg.cholesky(V[0])
        draws = (f + rng.standard_normal((200, n)) @ L.T)[np.newaxis]
        t_d, r_d = best_of(lambda: sa.rate(X, f_draws=draws), 1)
        t_g, r_g = best_of(lambda: sa.rate(X, M_F=f[np.newaxis], V_F=V), 1)
        for name, t, r, t_rank in (("draws (200)", t_d, r_d, int(r_d.rank[0])), ("M_F, V_F", t_g, r_g, int(r_g.rank[0]))):
            fl = n * n * p + 2 * n * t_rank * p
            g = fl / t / 1e9
            top = set(np.argsort(r.rate[0])[::-1][:20]) & set(range(20))
            print(f"| low-rank {name} | {p} | {n} | {t:.2f} | {g:.1f} | {100 * g / peak:.0f}% | — | — | "
                  f"rank {t_rank}, {len(top)}/20 true in top 20 |", flush=True)
        del X, draws


if __name__ == "__main__":
    main()
