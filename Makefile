# Set-up on a fresh machine is `make demo` or `make test`: both create .venv, install the
# project (editable, with its test and train extras) and build the Cython core in place.
# The train extra is PyTorch 2.13.0 (CPU), which pip takes from the wheel on the machine's
# disk; the tests use it only for the PyTorch/onnxruntime parity checks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: all venv build test test-unit test-contract test-hil test-bench test-slow test-twin bench bench-pytest demo clean

all: test

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel "cython>=3.1,<3.4" "numpy>=2.0"
	$(PY) -m pip install --quiet --no-build-isolation -e '.[test,train]'
	touch $(STAMP)

venv: $(STAMP)

build: $(STAMP)
	$(PY) setup.py --quiet build_ext --inplace
	@# the SOC posterior's tables (build/grading/, 21 MB, keyed by the physics): grade's first run skips building them
	$(PY) -c "from edge.grading.soc_model import SocModel; SocModel.load()"

# The default run: everything but the suites marked slow. Benchmarks run once each as tests.
# Every test carries a kind marker (conftest.py fails one that does not); the targets below
# select by kind: unit, contract, hil, bench (each once, untimed), slow.
test: build
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-unit test-contract test-hil test-bench: test-%: build
	$(PY) -m pytest -q -m "$* and not slow" $(PYTEST_ARGS)

# What CI adds deliberately: the slow suites.
test-slow: build
	$(PY) -m pytest -q -m "slow" $(PYTEST_ARGS)

# The unit tests again over the pure-Python twin of the real-time core (rtcore/README.md).
test-twin: build
	DISCHARGE_EDGE_FORCE_TWIN=1 $(PY) -m pytest -q -m "unit and not slow" $(PYTEST_ARGS)

# The product's own benchmark (`discharge-edge bench all`), kept per run and as the last one.
BENCH_DIR := build/bench
bench: build
	@mkdir -p $(BENCH_DIR)
	@out=$(BENCH_DIR)/bench-$$(date +%Y%m%d-%H%M%S).json; \
	if $(PY) -m edge.cli bench all --out $$out.part --compare $(BENCH_DIR)/last.json; then \
		mv $$out.part $$out && cp $$out $(BENCH_DIR)/last.json && echo "bench: wrote $$out and $(BENCH_DIR)/last.json"; \
	else \
		code=$$?; rm -f $$out.part; \
		echo "bench: '$(PY) -m edge.cli bench all' failed (exit $$code)" >&2; \
		exit $$code; \
	fi

# Measurements of the test suite's benchmarks: pytest-benchmark with timing on; results in .benchmarks/.
bench-pytest: build
	$(PY) -m pytest -q -m bench --benchmark-enable --benchmark-autosave --benchmark-columns=min,median,mean,max,rounds $(PYTEST_ARGS)

demo: build
	$(VENV)/bin/discharge-edge demo

clean:
	rm -rf build rtcore/*.c rtcore/*.so .pytest_cache .benchmarks
