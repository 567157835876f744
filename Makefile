# The same targets as the projects we learn from; the README and .ci/run call these.
# `make` alone (or `make help`) lists them: the `## ` text after a target is its line there.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.DEFAULT_GOAL := help
.PHONY: help deps deps-build dev venv run test test-rust test-rust-debug test-py test-wheel \
	lint fmt bench bench-mite wheel clean

help: ## this list
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  make %-16s %s\n", $$1, $$2 }' \
		$(MAKEFILE_LIST)

# Debian packages: perl/make/gcc/pkg-config for the vendored OpenSSL and curl builds; nginx
# (the TLS + HTTP/2 test server) and the rest for the tests. Installed only when missing (needs
# root, as on CI).
BUILD_PACKAGES := perl make gcc pkg-config
TEST_PACKAGES := nginx openssl util-linux
define apt_install
	@dpkg -s $(1) >/dev/null 2>&1 || { \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; }
endef

deps: ## Debian packages the build and the tests need (apt, only when missing)
	$(call apt_install,$(BUILD_PACKAGES) $(TEST_PACKAGES))

deps-build: ## Debian packages the build alone needs
	$(call apt_install,$(BUILD_PACKAGES))

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q "maturin>=1.9,<2"

venv: $(PY) ## the virtualenv in .venv, with maturin

dev: $(PY) ## release build of the extension into .venv, with the test and dev tools and mite
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --extras test,dev
	# mite itself, for the drop-in tests: its wheel pulls in many services, so only what the
	# tested code paths import (docs/MITE_NOTES.md).
	$(PIP) install -q --no-deps mite==2.11.0
	$(PIP) install -q msgpack docopt ujson flask packaging prettytable pyzmq

# The main job needs the package and its `cli` extra only: no test tools, no mite (whose
# --no-deps install is what fills a screen with pip's dependency-conflict warnings).
run: deps-build $(PY) ## the main job on its embedded default: a bounded load run on loopback
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --extras cli
	$(PY) -m acurl_rs

test: deps dev test-rust test-py ## what the README and CI run: build, Rust tests, Python tests

test-rust: ## Rust unit tests, release build (the one CI, the benchmarks and `make dev` use)
	cargo test --release --lib

# The dev profile: debug assertions and overflow checks on (the debug_assert!s in teardown
# never run in release). Its first run compiles curl and OpenSSL again (about 3 minutes).
test-rust-debug: ## Rust unit tests with debug assertions on
	cargo test --lib

test-py: ## Python tests (each with a timeout; the wheel tests are `make test-wheel`)
	$(PY) -m pytest

test-wheel: wheel ## build the release wheel, then test it alone in a fresh venv
	$(PY) -m pytest -m wheel

lint: $(PY) ## rustfmt, clippy (every unsafe block documented), ruff, mypy, stubtest
	cargo fmt --check
	cargo clippy --release --all-targets -- -D warnings
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/ruff format --check python tests bench
	$(PY) -m mypy python/acurl_rs
	$(PY) -m mypy.stubtest acurl_rs._acurl_rs

fmt: ## format the Rust and Python code
	cargo fmt
	$(VENV)/bin/ruff format python tests bench
	$(VENV)/bin/ruff check --fix python tests bench

bench: $(PY) ## the peer benchmark (bench/README.md); BENCH_ARGS=--quick takes ~3 minutes
	$(PY) bench/run.py $(BENCH_ARGS)

# acurl_rs against acurl 1.2.1 under mite's own `mite scenario test` (bench/mite_bench.py).
bench-mite: $(PY) ## acurl_rs against acurl 1.2.1 under mite's scenario test
	$(PY) bench/mite_bench.py $(BENCH_ARGS)

# Release wheel: abi3 (CPython >= 3.10), manylinux2014 (glibc 2.17) by linking through zig (from
# PyPI's ziglang: maturin finds it as `python -m ziglang`, hence the venv first on PATH). Its own
# target dir: zig-compiled C libraries would otherwise replace the gcc-built ones `make dev` and
# clippy reuse. docs/PACKAGING.md says why this tag; tests/test_wheel.py tests the result.
WHEEL_FLAGS ?= --release --zig --compatibility manylinux2014 --target-dir target/wheel --out dist
wheel: $(PY) ## the release wheel (abi3, manylinux2014) into dist/
	$(PIP) install -q "ziglang>=0.17.1,<0.18" "twine>=6"
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/maturin build $(WHEEL_FLAGS)

clean: ## remove target/, dist/ and the venv
	rm -rf target dist $(VENV)
