"""Forked workers (multiprocessing's fork start method, Dask and Ray workers) and seeded draws that do not
depend on how a batch is split, on internal_batch_size or on the thread count."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import swiftattr as sa
from conftest import smooth_mlp

# --- fork safety ---------------------------------------------------------------------------------------

N, D, C = 16, 6, 3


def _fork_model():
    rng = np.random.default_rng(7)
    net = sa.Sequential([
        sa.Linear(rng.standard_normal((24, D)) / np.sqrt(D), rng.standard_normal(24) * 0.1), sa.ReLU(),
        sa.Linear(rng.standard_normal((24, 24)) / np.sqrt(24), rng.standard_normal(24) * 0.1), sa.Tanh(),
        sa.Linear(rng.standard_normal((C, 24)) / np.sqrt(24), rng.standard_normal(C) * 0.1),
    ])
    x = rng.standard_normal((N, D)).astype(np.float32)
    refs = rng.standard_normal((5, D)).astype(np.float32)
    return net, x, refs


def _fork_calls(net, x, refs):
    """Every call a forked child makes, in chunks small enough that every worker has several."""
    t = np.arange(N) % C
    return np.concatenate([
        sa.integrated_gradients(net, x, target=t, n_steps=16, internal_batch_size=8).ravel(),
        sa.deeplift(net, x, target=t, rule="revealcancel", maxpool="gradient", internal_batch_size=2).ravel(),
        sa.deepshap(net, x, refs, target=t, internal_batch_size=5).ravel(),
        sa.expected_gradients(net, x, refs, target=t, n_samples=8, seed=3, internal_batch_size=8).ravel(),
        sa.smoothgrad(net, x, target=t, nt_type="vargrad", n_samples=8, stdevs=0.3, seed=5,
                      internal_batch_size=8).ravel(),
    ])


def _fork_scenario(children: int) -> dict:
    """Runs in a fresh interpreter, so the parent is cold whatever ran before in the test session. Phases:
    cold (the parent made only a forward pass), warm (it made the same calls first), busy (a second
    thread makes calls without pause while the main thread forks). Returns counts per phase."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    sa.set_num_threads(8)  # more workers than cores: preemption inside the runtime's locks is likelier
    net, x, refs = _fork_model()
    net.forward(x)
    report = {}

    def run(phase, count, reference):
        width = 5 * N * D
        shared = ctx.Array("f", count * width, lock=False)
        done = ctx.Array("i", count, lock=False)

        def child(i):
            signal.alarm(30)  # default action: the child dies with SIGALRM if a call hangs
            out = _fork_calls(net, x, refs)
            shared[i * width:(i + 1) * width] = out.tolist()
            done[i] = 1

        hung = failed = 0
        alive = []
        started = 0
        while started < count or alive:
            while started < count and len(alive) < 8:
                p = ctx.Process(target=child, args=(started,))
                p.start()
                alive.append((p, time.monotonic()))
                started += 1
            still = []
            for p, t0 in alive:
                p.join(timeout=0.005)
                if p.exitcode is None:
                    if time.monotonic() - t0 > 60:
                        p.kill()
                        p.join()
                        hung += 1
                    else:
                        still.append((p, t0))
                elif p.exitcode == -signal.SIGALRM:
                    hung += 1
                elif p.exitcode != 0:
                    failed += 1
            alive = still
        results = np.frombuffer(shared, dtype=np.float32).reshape(count, width)
        if reference is None:
            reference = _fork_calls(net, x, refs)
        ok = np.array(done[:], dtype=bool)
        differ = int(np.sum(np.any(results[ok] != reference, axis=1)))
        report[phase] = {"children": count, "hung": hung, "failed": failed, "differ": differ,
                         "finished": int(ok.sum())}
        return reference

    reference = run("cold", children // 2, None)
    run("warm", children // 4, reference)
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            _fork_calls(net, x, refs)

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        run("busy", children - children // 2 - children // 4, reference)
    finally:
        stop.set()
        thread.join()
    return report


def test_forked_workers_do_not_hang():
    # 400 workers: 200 cold, 100 warm, 100 while another parent thread is mid-call. Each must finish and
    # equal the parent's result bit for bit (the same computation on the same thread count repeats).
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(sa.__file__)), os.path.dirname(__file__),
                                         env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, __file__, "fork", "400"], env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for phase, r in report.items():
        assert r["hung"] == 0, f"{phase}: {r}"
        assert r["failed"] == 0, f"{phase}: {r}"
        assert r["finished"] == r["children"], f"{phase}: {r}"
        assert r["differ"] == 0, f"{phase}: {r}"


# --- seeded draws ----------------------------------------------------------------------------------------

# Comparisons that change GEMM shapes (pieces of a batch, chunk sizes, thread counts) allow float32 rounding
# only: each sample's gradient comes from GEMMs of depth K ≤ 16 rounding at ≤ K·u·Σ|w||h| (u = 6e-8), so
# ≤ 1e-6 of the gradient's scale through three layers; the mean over samples keeps that bound and the
# Double accumulators add nothing. 1e-5 of each example's max |φ| leaves a margin; a change of seed or of
# the example offset moves φ by Monte Carlo error, asserted > 1e-2.
ROUNDING = 1e-5


def _worst_per_example(a, b):
    a = a.reshape(a.shape[0], -1).astype(np.float64)
    b = b.reshape(b.shape[0], -1).astype(np.float64)
    return float((np.abs(a - b).max(1) / np.maximum(np.abs(b).max(1), 1e-30)).max())


def _seed_problem():
    rng = np.random.default_rng(12)
    net = smooth_mlp(rng)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    refs = rng.standard_normal((9, 6)).astype(np.float32)
    return net, x, refs, np.arange(64) % 3


@pytest.mark.parametrize("method", ["expected_gradients", "smoothgrad", "vargrad"])
def test_split_batch_reproduces_one_call(method):
    net, x, refs, t = _seed_problem()

    def run(rows, first_example, seed=5):
        if method == "expected_gradients":
            return sa.expected_gradients(net, x[rows], refs, target=t[rows], n_samples=40, seed=seed,
                                         first_example=first_example)
        nt = "vargrad" if method == "vargrad" else "smoothgrad"
        return sa.smoothgrad(net, x[rows], target=t[rows], nt_type=nt, n_samples=30, stdevs=0.4, seed=seed,
                             first_example=first_example)

    whole = run(slice(0, 64), 0)
    pieces = [slice(a, a + 16) for a in (0, 16, 32, 48)]
    split = np.concatenate([run(p, p.start) for p in pieces])
    assert _worst_per_example(split, whole) < ROUNDING
    # Without the offsets each piece repeats the first piece's streams (the old behaviour: 26 % off).
    unshifted = np.concatenate([run(p, 0) for p in pieces])
    assert _worst_per_example(unshifted, whole) > 1e-2
    assert _worst_per_example(run(slice(0, 64), 0, seed=6), whole) > 1e-2


def test_chunking_and_threads_change_only_rounding():
    net, x, refs, t = _seed_problem()
    x, t = x[:10], t[:10]
    saved = sa.get_num_threads()
    try:
        sa.set_num_threads(1)
        eg0 = sa.expected_gradients(net, x, refs, target=t, n_samples=33, seed=3)
        sg0 = sa.smoothgrad(net, x, target=t, nt_type="vargrad", n_samples=21, stdevs=0.5, seed=3)
        for threads in (1, 2, 3):
            sa.set_num_threads(threads)
            for chunk in (None, 1, 7, 64):
                eg = sa.expected_gradients(net, x, refs, target=t, n_samples=33, seed=3, internal_batch_size=chunk)
                sg = sa.smoothgrad(net, x, target=t, nt_type="vargrad", n_samples=21, stdevs=0.5, seed=3,
                                   internal_batch_size=chunk)
                assert _worst_per_example(eg, eg0) < ROUNDING, (threads, chunk)
                assert _worst_per_example(sg, sg0) < ROUNDING, (threads, chunk)
    finally:
        sa.set_num_threads(saved)


def test_first_example_is_checked():
    net, x, refs, t = _seed_problem()
    for bad, message in [(-1, "first_example"), (2**63 - 2, "first_example"), (1.5, "first_example"),
                         ("3", "first_example"), (True, "first_example")]:
        with pytest.raises(sa.SwiftAttrError, match=message) as e:
            sa.expected_gradients(net, x[:4], refs, target=0, n_samples=4, seed=1, first_example=bad)
        assert e.value.code == -2
        with pytest.raises(sa.SwiftAttrError, match=message):
            sa.smoothgrad(net, x[:4], target=0, n_samples=4, seed=1, first_example=bad)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "fork":
    print(json.dumps(_fork_scenario(int(sys.argv[2]))))
