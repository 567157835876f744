# The same targets as the projects we learn from; the README and .ci/run call these.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: dev venv test test-rust test-py lint fmt bench wheel clean

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q "maturin>=1.9,<2"

venv: $(PY)

# Build the extension once (release: the same code CI and the benchmarks measure) into the venv.
dev: $(PY)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --extras test,dev
	# mite itself, for the drop-in tests: its wheel pulls in many services, so only what the
	# tested code paths import (docs/MITE_NOTES.md).
	$(PIP) install -q --no-deps mite==2.11.0
	$(PIP) install -q msgpack docopt ujson flask packaging prettytable

test-rust:
	cargo test --release --lib

test-py: $(PY)
	$(PY) -m pytest

test: test-rust test-py

lint: $(PY)
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench
	$(PY) -m mypy.stubtest acurl_rs._acurl_rs

fmt:
	cargo fmt
	$(VENV)/bin/ruff format python tests bench
	$(VENV)/bin/ruff check --fix python tests bench

bench: $(PY)
	$(PY) bench/run.py

wheel: $(PY)
	$(VENV)/bin/maturin build --release --out dist

clean:
	rm -rf target dist $(VENV)
