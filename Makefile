# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test fuzz lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.stamp-run: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[test]'
	touch $@ $(VENV)/.stamp-run

demo: $(VENV)/.stamp-run
	$(VENV)/bin/servicecircle demo

test: $(VENV)/.stamp-test
	$(PY) -m pytest -q

# the random search, longer (the suite runs a fixed-seed profile); every counterexample it
# finds becomes an @example next to its test
fuzz: $(VENV)/.stamp-test
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q tests/test_network_oracle.py tests/test_whatif.py \
		tests/test_fuzz_inputs.py tests/test_governance.py

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.stamp-test
	$(PY) benchmarks/bench_coverage.py

clean:
	rm -rf $(VENV) maps/*.html maps/*.json maps/*.csv maps/*.gpkg
