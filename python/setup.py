"""Builds libswiftattr.so with the Swift package manager (release mode) and bundles it in the package.

`pip install ./python` runs this from the repository checkout; it needs `swift` on PATH (or SWIFT_BIN)
and OpenBLAS/LAPACKE development files (Debian: libopenblas-dev liblapacke-dev).
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


class BuildWithSwift(build_py):
    def run(self):
        if not os.path.exists(os.path.join(ROOT, "Package.swift")):
            raise RuntimeError(f"Package.swift not found in {ROOT}: build from a swiftattr checkout")
        scratch = os.path.join(ROOT, ".build")
        subprocess.check_call([swift_executable(), "build", "-c", "release", "--package-path", ROOT,
                               "--scratch-path", scratch, "--product", "swiftattr"])
        library = os.path.join(scratch, "release", "libswiftattr.so")
        super().run()
        target = os.path.join(self.build_lib, "swiftattr")
        os.makedirs(target, exist_ok=True)
        shutil.copy2(library, os.path.join(target, "libswiftattr.so"))
        shutil.copy2(os.path.join(ROOT, "CInclude", "swiftattr.h"), os.path.join(target, "swiftattr.h"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildWithSwift}, distclass=BinaryDistribution)
