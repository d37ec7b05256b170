"""Builds libswiftattr.so with the Swift package manager (release mode) and bundles it in the package.

`pip install ./python` runs this from the repository checkout; it needs `swift` on PATH (or SWIFT_BIN).
The BLAS is PyPI's scipy-openblas32 (a build requirement): its library is copied to `.blas/lib` of the
checkout for the Swift build and bundled beside libswiftattr.so, which finds it there (rpath $ORIGIN).
With SWIFTATTR_BLAS=system the build links the system's OpenBLAS and LAPACKE instead and bundles neither.
"""
import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def swift_executable() -> str:
    for candidate in (os.environ.get("SWIFT_BIN"), shutil.which("swift"), "/opt/swift/usr/bin/swift"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise RuntimeError("swift not found: install a Swift toolchain or set SWIFT_BIN")


BLAS_NAME = "libscipy_openblas.so"


def bundled_blas():
    """The path of the scipy-openblas32 library in `.blas/lib` (copied there first if needed), or None
    for a build against the system's BLAS."""
    if os.environ.get("SWIFTATTR_BLAS") == "system":
        return None
    target = os.path.join(ROOT, ".blas", "lib", BLAS_NAME)
    if not os.path.exists(target):
        import scipy_openblas32

        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.join(scipy_openblas32.get_lib_dir(), BLAS_NAME), target)
    return target


class BuildWithSwift(build_py):
    def run(self):
        if not os.path.exists(os.path.join(ROOT, "Package.swift")):
            raise RuntimeError(f"Package.swift not found in {ROOT}: build from a swiftattr checkout")
        blas = bundled_blas()
        scratch = os.path.join(ROOT, ".build")
        subprocess.check_call([swift_executable(), "build", "-c", "release", "--package-path", ROOT,
                               "--scratch-path", scratch, "--product", "swiftattr"])
        library = os.path.join(scratch, "release", "libswiftattr.so")
        super().run()
        target = os.path.join(self.build_lib, "swiftattr")
        os.makedirs(target, exist_ok=True)
        shutil.copy2(library, os.path.join(target, "libswiftattr.so"))
        if blas is not None:
            shutil.copy2(blas, os.path.join(target, BLAS_NAME))
        shutil.copy2(os.path.join(ROOT, "CInclude", "swiftattr.h"), os.path.join(target, "swiftattr.h"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithSwift}, distclass=BinaryDistribution)
