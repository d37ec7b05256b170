# swiftattr: `make demo` explains a real model on a real data set; `make test` runs every test.
PYTHON ?= python3
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)

.PHONY: setup build install demo test test-second-kernel bench

setup:
	bash scripts/setup.sh

build:
	$(SWIFT) build -c release --product swiftattr

install: setup
	$(PYTHON) -m pip install -q --disable-pip-version-check ./python

demo: install
	cd examples && $(PYTHON) digits_demo.py

test: install
	$(SWIFT) build -c release --product swiftattr
	$(SWIFT) test
	bash tests/c/run.sh
	cd /tmp && $(PYTHON) -m pytest -q $(CURDIR)/python/tests
# The docstrings' examples, on the installed package (examples that need torch, captum or dask are marked SKIP).
	cd /tmp && $(PYTHON) -m pytest -q --doctest-modules $$($(PYTHON) -c "import swiftattr, os; print(os.path.dirname(swiftattr.__file__))")
	SWIFT=$(SWIFT) PYTHON=$(PYTHON) bash scripts/second_kernel.sh

# The Swift and C suites once more on another OpenBLAS kernel (part of `make test`).
test-second-kernel: install
	SWIFT=$(SWIFT) PYTHON=$(PYTHON) bash scripts/second_kernel.sh

bench: install
	$(PYTHON) benchmarks/bench_gradients.py
	$(PYTHON) benchmarks/bench_deeplift.py
