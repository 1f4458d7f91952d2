# Set-up on a fresh machine is `make demo` or `make test`: both create .venv, install the
# project (editable, with its test and train extras) and build the Cython core in place.
# The train extra is PyTorch 2.13.0 (CPU), which pip takes from the wheel on the machine's
# disk; the tests use it only for the PyTorch/onnxruntime parity checks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all venv build test test-slow bench demo clean

all: test

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel "cython>=3.1,<3.4" "numpy>=2.0"
	$(PY) -m pip install --quiet --no-build-isolation -e '.[test,train]'
	touch $(STAMP)

venv: $(STAMP)

build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace

# The default run: everything but the suites marked slow. Benchmarks run once each as tests.
test: build
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

# What CI adds deliberately: the slow suites.
test-slow: build
	$(PY) -m pytest -q -m "slow" $(PYTEST_ARGS)

# Measurements: pytest-benchmark with timing on; results in .benchmarks/.
bench: build
	$(PY) -m pytest -q -m bench --benchmark-enable --benchmark-autosave --benchmark-columns=min,median,mean,max,rounds $(PYTEST_ARGS)

demo: build
	$(VENV)/bin/discharge-edge demo

clean:
	rm -rf build rtcore/*.c rtcore/*.so .pytest_cache .benchmarks
