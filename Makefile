# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test bench firmware lint clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

firmware: $(STAMP)
	$(PY) -m harness.cli.main build

demo: firmware
	$(PY) -m harness.cli.main demo

test: firmware lint
	$(PY) -m pytest -n auto -q tests benchmarks

bench: firmware
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only -p no:xdist -q \
		--benchmark-columns=median,iqr,rounds --benchmark-json=build/benchmarks.json
	$(PY) benchmarks/report.py build/benchmarks.json

lint: $(STAMP)
	$(VENV)/bin/ruff check harness tests benchmarks traces
	$(VENV)/bin/mypy

clean:
	rm -rf build
