#!/usr/bin/env bash
# cargo fuzz (libFuzzer) over the Rust input checks that guard the wire: URL, method, header
# lines, framing headers, and the Content-Length sniffing of response headers.
# Usage: bench/fuzz_rust.sh [SECONDS]   (needs the nightly toolchain rustup has here)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# the seeds: inputs the unit tests use, so the fuzzer starts from the interesting shapes
corpus=fuzz/corpus/request_checks
mkdir -p "$corpus"
printf 'http://127.0.0.1/x' > "$corpus/url"
printf 'X-A: b' > "$corpus/header"
printf 'Content-Length: 65536\r\n' > "$corpus/content-length"
printf 'Transfer-Encoding: chunked\001Content-Length: 1' > "$corpus/framing"
cargo +nightly fuzz run request_checks "$corpus" -- -max_total_time="$seconds" -max_len=256 2>&1 \
  | tee /tmp/fuzz_rust.log | grep -E "^#[0-9]+ +(DONE|pulse)|Done|ERROR|panicked" | tail -5
