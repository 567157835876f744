# The same targets as the projects we learn from; the README and .ci/run call these.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: deps dev venv run test test-rust test-py lint fmt bench wheel clean

# Debian packages: nginx (the TLS + HTTP/2 test server), and perl/make/gcc for the vendored
# OpenSSL and curl builds. Installed only when missing (needs root, as on CI).
SYSTEM_PACKAGES := nginx perl make gcc pkg-config openssl util-linux
deps:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q "maturin>=1.9,<2"

venv: $(PY)

# Build the extension (release: the code CI and the benchmarks measure) into the venv.
dev: $(PY)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --extras test,dev
	# mite itself, for the drop-in tests: its wheel pulls in many services, so only what the
	# tested code paths import (docs/MITE_NOTES.md).
	$(PIP) install -q --no-deps mite==2.11.0
	$(PIP) install -q msgpack docopt ujson flask packaging prettytable pyzmq

# The main job on its embedded default: a bounded load run against a loopback target.
run: deps dev
	$(PY) -m acurl_rs

test-rust:
	cargo test --release --lib

test-py:
	$(PY) -m pytest

test: deps dev test-rust test-py

lint: $(PY)
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench
	$(PY) -m mypy python/acurl_rs
	$(PY) -m mypy.stubtest acurl_rs._acurl_rs

fmt:
	cargo fmt
	$(VENV)/bin/ruff format python tests bench
	$(VENV)/bin/ruff check --fix python tests bench

bench: $(PY)
	$(PY) bench/run.py $(BENCH_ARGS)

# acurl_rs against acurl 1.2.1 under mite's own `mite scenario test` (bench/mite_bench.py).
.PHONY: bench-mite
bench-mite: $(PY)
	$(PY) bench/mite_bench.py $(BENCH_ARGS)

# Release wheel: abi3 (CPython >= 3.10), manylinux2014 (glibc 2.17) by linking through zig (from
# PyPI's ziglang: maturin finds it as `python -m ziglang`, hence the venv first on PATH). Its own
# target dir: zig-compiled C libraries would otherwise replace the gcc-built ones `make dev` and
# clippy reuse. docs/PACKAGING.md says why this tag; tests/test_wheel.py tests the result.
WHEEL_FLAGS ?= --release --zig --compatibility manylinux2014 --target-dir target/wheel --out dist
wheel: $(PY)
	$(PIP) install -q "ziglang>=0.17.1,<0.18" "twine>=6"
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build $(WHEEL_FLAGS)

clean:
	rm -rf target dist $(VENV)
