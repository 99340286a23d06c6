# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint bench clean

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

lint: $(VENV)/.stamp-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.stamp-test
	$(PY) benchmarks/bench_coverage.py

clean:
	rm -rf $(VENV) maps/*.html maps/*.json maps/*.csv maps/*.gpkg
