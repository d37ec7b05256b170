"""Build information, the thread setting, and the import-time warning about generic BLAS kernels."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import swiftattr as sa
from swiftattr import runtime
from conftest import smooth_mlp


def test_build_info_names_blas_kernel_and_threads():
    info = sa.build_info()
    for key in ("version", "blas", "blas_version", "blas_core", "threads", "cpu", "arch"):
        assert key in info, key
    assert info["version"] == sa.__version__
    assert info["blas"] in ("scipy-openblas32", "system-openblas")
    assert info["blas_version"][0].isdigit()
    assert info["blas_core"] not in ("", "unknown")
    assert info["threads"] == sa.get_num_threads() >= 1


@pytest.mark.parametrize("bad", [0, -1, 257, 1.5, True, "2", None])
def test_set_num_threads_rejects_bad_counts(bad):
    before = sa.get_num_threads()
    with pytest.raises(sa.SwiftAttrError):
        sa.set_num_threads(bad)
    assert sa.get_num_threads() == before


def test_thread_count_changes_only_rounding(rng):
    # Other counts chunk differently (other GEMM shapes, other per-worker sums): float32 rounding only, below
    # 1e-5 of max|phi| for 3 layers of K <= 16 (u = 6e-8) summed over 32 steps. One count repeats exactly.
    net = smooth_mlp(rng)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    before = sa.get_num_threads()
    try:
        results = {}
        for n in (1, 2, 3):
            sa.set_num_threads(n)
            a = sa.integrated_gradients(net, x, target=1, n_steps=32, internal_batch_size=64)
            b = sa.integrated_gradients(net, x, target=1, n_steps=32, internal_batch_size=64)
            np.testing.assert_array_equal(a, b)
            results[n] = a
        scale = np.abs(results[1]).max()
        for n in (2, 3):
            assert np.abs(results[n] - results[1]).max() <= 1e-5 * scale
    finally:
        sa.set_num_threads(before)


def _run(code, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd="/tmp")


def test_environment_variable_sets_default_threads():
    out = _run("import swiftattr as sa; print(sa.get_num_threads())", SWIFTATTR_NUM_THREADS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    out = _run("import swiftattr as sa; print(sa.get_num_threads())", SWIFTATTR_NUM_THREADS="lots")
    assert out.returncode == 0, out.stderr
    assert "SWIFTATTR_NUM_THREADS" in out.stderr
    assert int(out.stdout.strip()) == os.cpu_count()


def test_generic_kernel_warning(monkeypatch):
    # The warning's logic, with build information as an old OpenBLAS on a current CPU would report it.
    generic = dict(sa.build_info(), blas_core="Prescott", blas_kernel_generic=True, threads_env_ignored=False)
    monkeypatch.setattr(runtime, "build_info", lambda: generic)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.warn_about_environment()
    assert len(caught) == 1 and "Prescott" in str(caught[0].message)
    fine = dict(generic, blas_core="SkylakeX", blas_kernel_generic=False)
    monkeypatch.setattr(runtime, "build_info", lambda: fine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runtime.warn_about_environment()
    assert caught == []


# --- the library's own kernels (Sources/CKernels): the instruction set in build_info, SWIFTATTR_ISA ---

_ISA_PROBE = """
import numpy as np, swiftattr as sa
rng = np.random.default_rng(3)
net = sa.Sequential([sa.Conv2d(rng.standard_normal((16, 2, 3, 3)).astype(np.float32), np.zeros(16, np.float32), stride=2,
                               padding=1), sa.ReLU(), sa.Conv2d(rng.standard_normal((16, 16, 3, 3)).astype(np.float32) / 12,
                               np.zeros(16, np.float32), padding=1), sa.ReLU(), sa.MaxPool2d(2), sa.Flatten(),
                     sa.Linear(rng.standard_normal((3, 256)).astype(np.float32), np.zeros(3, np.float32))],
                    input_shape=(2, 16, 16))
x = rng.standard_normal((3, 2, 16, 16)).astype(np.float32)
phi = sa.integrated_gradients(net, x, target=1, n_steps=4)
print(sa.build_info()["kernels"], net.forward(x).tobytes().hex(), phi.tobytes().hex())
"""


def test_kernels_isa_is_reported_and_capped_by_the_environment():
    # Every variant runs the same float operations in the same order, so forcing the baseline changes no bit
    # (the same computation repeated). The network has a strided 3x3 convolution (im2col/col2im), a 16-channel
    # 3x3 convolution (Winograd, both directions) and a 2x2 max-pool.
    assert sa.build_info()["kernels"] in ("avx512f", "avx2", "default")
    widest, forced = _run(_ISA_PROBE), _run(_ISA_PROBE, SWIFTATTR_ISA="default")
    assert widest.returncode == 0 and forced.returncode == 0, widest.stderr + forced.stderr
    isa, *results = widest.stdout.split()
    forced_isa, *forced_results = forced.stdout.split()
    assert isa in ("avx512f", "avx2", "default")
    assert forced_isa == "default"
    assert results == forced_results
