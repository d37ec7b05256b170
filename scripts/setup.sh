#!/usr/bin/env bash
# Installs what swiftattr needs on a Debian machine with a Swift toolchain: OpenBLAS/LAPACKE development
# files, a C compiler, and the Python packages for the package, its tests and the demo. Skips what is there.
set -euo pipefail
need_apt=()
for pkg in libopenblas-dev liblapacke-dev libpython3-dev gcc make; do
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
mods = {"numpy": "numpy", "scipy": "scipy", "pytest": "pytest", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}
print(" ".join(pkg for mod, pkg in mods.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  $PY -m pip install -q --disable-pip-version-check $missing
fi
