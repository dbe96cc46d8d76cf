# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test-reference demo test bench firmware lint clean conformance debian-deps sweep

# The Debian tools of the conformance sweep (tests/test_conformance.py needs them too).
DEBIAN_PACKAGES := qemu-system-arm csmith libcsmith-dev gcc-arm-none-eabi libnewlib-arm-none-eabi
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
CONFORMANCE_PROGRAMS ?= 300

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
	$(PY) -m pytest -n auto --dist worksteal -q tests benchmarks
	# the golden traces and the ECU tests again on the Python models (the reference)
	HARNESS_NATIVE=0 $(PY) -m pytest -n auto --dist worksteal -q tests/test_golden_traces.py tests/test_can_ecu.py

# The whole suite on the Python models alone (the native data paths' reference).
test-reference: firmware lint
	HARNESS_NATIVE=0 $(PY) -m pytest -n auto --dist worksteal -q tests benchmarks

# Power loss at every flash operation of the A/B update and of a UDS download (the suite
# runs a sample); its parts run longer than the suite's 300 s test timeout.
sweep: firmware
	HARNESS_FULL_SWEEP=1 $(PY) -m pytest -n auto --dist worksteal -q --timeout=0 tests/test_ab_update.py tests/test_bootloader.py \
		tests/test_uds_power_loss.py

bench: firmware
	$(PY) -m pytest benchmarks --benchmark-enable --benchmark-only -p no:xdist -q \
		--benchmark-columns=median,iqr,rounds --benchmark-json=build/benchmarks.json
	$(PY) benchmarks/report.py build/benchmarks.json

lint: $(STAMP)
	$(VENV)/bin/ruff check harness tests benchmarks traces conformance
	$(VENV)/bin/mypy

# The emulated core against QEMU: csmith programs x {clang, gcc} x {-O0,-O1,-O2,-Os,-O3}.
conformance: firmware
	$(PY) -m conformance.sweep --programs $(CONFORMANCE_PROGRAMS) --jobs 2

debian-deps:
	$(SUDO) apt-get install -y $(DEBIAN_PACKAGES) || \
		{ $(SUDO) apt-get update && $(SUDO) apt-get install -y $(DEBIAN_PACKAGES); }

clean:
	rm -rf build
