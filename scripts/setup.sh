#!/usr/bin/env bash
# Installs what swiftattr needs on a Debian machine with a Swift toolchain: a C compiler, the BLAS
# (PyPI's scipy-openblas32, the current OpenBLAS that numpy and scipy ship, copied to .blas/lib where
# Package.swift links it), and the Python packages for the package, its tests (onnx for sa.from_onnx, dask for
# sa.distributed; not onnxruntime or torch, which only the fixture scripts use; nbclient, nbformat and
# ipykernel run the example notebooks) and the demo. Skips what is there.
# SWIFTATTR_BLAS=system installs Debian's libopenblas-dev and liblapacke-dev instead.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
pkgs=(libpython3-dev gcc make)
[ "${SWIFTATTR_BLAS:-}" = system ] && pkgs+=(libopenblas-dev liblapacke-dev)
for pkg in "${pkgs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
PY=${PYTHON:-python3}
missing=$($PY - <<'PYEOF'
import importlib.util
mods = {"numpy": "numpy", "scipy": "scipy", "pytest": "pytest", "sklearn": "scikit-learn",
        "matplotlib": "matplotlib", "scipy_openblas32": "scipy-openblas32", "onnx": "onnx",
        "nbclient": "nbclient", "nbformat": "nbformat", "ipykernel": "ipykernel", "distributed": "dask[distributed]"}
print(" ".join(pkg for mod, pkg in mods.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  $PY -m pip install -q --disable-pip-version-check $missing
fi
if [ "${SWIFTATTR_BLAS:-}" != system ]; then
  lib_dir=$($PY -c "import scipy_openblas32; print(scipy_openblas32.get_lib_dir())")
  mkdir -p .blas/lib
  if ! cmp -s "$lib_dir/libscipy_openblas.so" .blas/lib/libscipy_openblas.so; then
    cp "$lib_dir/libscipy_openblas.so" .blas/lib/libscipy_openblas.so
  fi
fi
