#!/usr/bin/env bash
# Runs the Swift and C suites a second time with OpenBLAS forced onto another kernel than the first
# run's, so that no assertion can depend on one kernel's rounding. Prescott (SSE3) runs on every x86-64
# CPU; when the environment already forces it, Nehalem; on aarch64, ARMV8 (or NEOVERSEN1 when forced).
# The second run also forces the baseline variant of the library's own kernels (SWIFTATTR_ISA=default,
# Sources/CKernels), so both their widest and their portable code paths are tested.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SWIFT=${SWIFT:-swift}
first=$(cd /tmp && $PY -W ignore -c "import swiftattr as sa; print(sa.build_info()['blas_core'])")
case "$(uname -m)" in
  x86_64) kernel=Prescott; [ "${OPENBLAS_CORETYPE:-}" = Prescott ] && kernel=Nehalem ;;
  aarch64) kernel=ARMV8; [ "${OPENBLAS_CORETYPE:-}" = ARMV8 ] && kernel=NEOVERSEN1 ;;
  *) echo "second kernel: no second OpenBLAS kernel known for $(uname -m); skipped"; exit 0 ;;
esac
second=$(cd /tmp && OPENBLAS_CORETYPE=$kernel $PY -W ignore -c "import swiftattr as sa; print(sa.build_info()['blas_core'])")
echo "second kernel: first run on '$first', now OPENBLAS_CORETYPE=$kernel runs '$second'"
if [ "$first" = "$second" ]; then
  echo "second kernel: forcing $kernel did not change the kernel ('$first')" >&2
  exit 1
fi
isa=$(cd /tmp && $PY -W ignore -c "import swiftattr as sa; print(sa.build_info()['kernels'])")
echo "second kernel: the library's kernels ran '$isa', now SWIFTATTR_ISA=default"
OPENBLAS_CORETYPE=$kernel SWIFTATTR_ISA=default "$SWIFT" test
OPENBLAS_CORETYPE=$kernel SWIFTATTR_ISA=default bash tests/c/run.sh
