#!/usr/bin/env python3
"""Where a client's CPU goes in one steady cell (default: acurl_rs, HTTP/2 TLS c=64, uvloop).

    bench/profile_client.py [--client acurl_rs] [--cell h2-c64] [--loop uvloop] [--seconds 8]

Starts the benchmark's nginx, then runs the same client runner as `bench/run.py`, pinned to the
client CPU, three times:

1. under `perf record` (Debian linux-perf): self time by component - CPython interpreter, the
   binding's own code, libcurl, nghttp2, OpenSSL, libc malloc, kernel... - as a share and as
   microseconds per request (symbols of the statically linked libcurl/OpenSSL/nghttp2 inside
   _acurl_rs.abi3.so are told apart by name);
2. under `strace -c` (Debian strace): system calls per request;
3. (acurl_rs only) on the asyncio loop with the loop's methods counted: event-loop calls the
   binding makes per request (add_reader, call_soon, handle.cancel...).

perf and strace slow the client down; compare shares and counts, not absolute speeds.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from local_servers import BenchNginx, pinned
from run import CELLS, CLIENTS_DIR
from setup_env import PEERS_PY, snapshot_acurl_rs

OPENSSL = re.compile(
    r"^(SSL|ssl|tls|TLS|ossl|OSSL|EVP|evp|OPENSSL|CRYPTO|BIO|bio|ERR|err_|aes|AES|gcm|GCM|"
    r"ChaCha|chacha|Poly1305|x25519|ecp_|__ecp|EC_|ec_|BN_|bn_|RSA|rsa|sha|SHA|HMAC|OBJ_|ASN1|"
    r"X509|x509|RAND|rand_|PACKET|WPACKET|wpacket|dtls|ct_|md5|fe_|fe51|ecx|ed25519|keccak|"
    r"__Keccak|KECCAK|ghash|gcm_|cipher_|digest_|ssl3|tls1|tls13|RECORD_LAYER|rlayer|ktls|"
    r"ASYNC|async_|CONF|conf_|PEM|pem|PKCS|OCSP|DH_|dh_|ENGINE|ossl_)"
)

LOOP_COUNTER = r"""
import asyncio, collections, json, sys
import acurl_rs

URL, HTTP, CONC, N = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

async def main():
    loop = asyncio.get_running_loop()
    counts = collections.Counter()

    class CountedHandle:
        def __init__(self, handle):
            self.handle = handle

        def cancel(self):
            counts["handle.cancel"] += 1
            self.handle.cancel()

    def wrap(name):
        orig = getattr(loop, name)

        def counted(*args, **kwargs):
            counts[name] += 1
            handle = orig(*args, **kwargs)
            return CountedHandle(handle) if name in ("call_soon", "call_later") else handle

        setattr(loop, name, counted)

    for name in ("add_reader", "remove_reader", "add_writer", "remove_writer", "call_soon",
                 "call_later", "create_future"):
        wrap(name)
    wrapper = acurl_rs.CurlWrapper(loop)
    session = wrapper.session(http_version=HTTP, verify=False)
    await asyncio.gather(*(session.get(URL) for _ in range(CONC)))
    counts.clear()
    left = [N]

    async def worker():
        while left[0] > 0:
            left[0] -= 1
            await session.get(URL)

    await asyncio.gather(*(worker() for _ in range(CONC)))
    wrapper.close()
    print(json.dumps({k: v / N for k, v in sorted(counts.items())}))

asyncio.run(main())
"""


def component(dso: str, sym: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel (syscalls, TCP, epoll, wakeups)"
    if dso == "[vdso]":
        return "vdso (clock_gettime)"
    if "libpython" in dso or dso.startswith("python"):
        return "CPython interpreter (all Python code)"
    if "uvloop" in dso or dso.startswith("loop.cpython"):
        return "uvloop"
    if "_asyncio" in dso:
        return "asyncio C accelerator"
    if "libcurl" in dso:
        return "libcurl"
    if "libssl" in dso or "libcrypto" in dso:
        return "OpenSSL"
    if "nghttp2" in dso:
        return "nghttp2"
    if dso.startswith("libc.") or dso.startswith("libc-"):
        if re.search(r"malloc|free|calloc|realloc|_int_|consolidate|unlink_chunk|tcache", sym):
            return "libc malloc/free"
        return "libc other (memcpy, strlen, getenv, getpid...)"
    if "_acurl_rs" in dso:
        if sym.startswith("nghttp2"):
            return "nghttp2"
        if "::" in sym or sym.startswith(("_ZN", "<", "pyo3", "__rust")):
            return "binding (acurl_rs Rust/PyO3)"
        if OPENSSL.match(sym):
            return "OpenSSL"
        if re.match(r"^(inflate|deflate|adler32|crc32|zcalloc|zcfree)", sym):
            return "zlib"
        return "libcurl"
    if "pycurl" in dso or "acurl." in dso or "curl_cffi" in dso or "pyreqwest" in dso:
        return f"binding ({dso.split('.')[0]})"
    return f"other ({dso})"


def runner_cmd(client: str, cell: dict, url: str, args: argparse.Namespace) -> list[str]:
    python = sys.executable if client == "acurl_rs" else str(PEERS_PY)
    return [
        python,
        str(CLIENTS_DIR / f"{client}_client.py"),
        f"--url={url}",
        f"--http={cell['http']}",
        f"--concurrency={cell['c']}",
        f"--loop={args.loop}",
        "--warmup=0.5",
        f"--duration={args.seconds}",
    ]


def served(status_url: str) -> int:
    """nginx's request counter (to count a whole run, warm-up included)."""
    with urllib.request.urlopen(status_url, timeout=10) as resp:
        return int(resp.read().decode().splitlines()[2].split()[2])


ENV = dict(os.environ)  # plus PYTHONPATH of the acurl_rs build snapshot


def run(cmd: list[str], cpu: int | None, status_url: str) -> dict:
    before = served(status_url)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=CLIENTS_DIR, env=ENV, preexec_fn=pinned(cpu)
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"client failed: {proc.stderr[-800:]}")
    return json.loads(lines[-1]) | {"all_requests": served(status_url) - before - 1}


def perf_profile(cmd: list[str], cpu: int | None, tmp: Path, status_url: str) -> None:
    data = tmp / "perf.data"
    result = run(
        ["perf", "record", "-q", "-F", "2000", "-o", str(data), "--", *cmd], cpu, status_url
    )
    per_req = result["cpu_us"] / result["requests"]
    report = subprocess.run(
        [
            *("perf", "report", "-i", str(data), "--no-children", "--sort", "dso,sym"),
            *("--stdio", "-g", "none", "--percent-limit", "0"),
        ],
        capture_output=True,
        text=True,
    ).stdout
    totals: collections.Counter[str] = collections.Counter()
    tops: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(.*)$", line)
        if m:
            pct, dso, sym = float(m.group(1)), m.group(2), m.group(3).strip()
            name = component(dso, sym)
            totals[name] += pct
            tops[name][sym] += pct
    print(f"\n## perf: {result['requests']:,} requests, {per_req:.1f} µs CPU/request under perf")
    print("(whole process: includes start-up and warm-up, a few % at most)\n")
    print("| component | share | µs/request | top symbols (% of all) |\n|---|---:|---:|---|")
    for name, pct in totals.most_common():
        if pct < 0.2:
            continue
        top = ", ".join(f"{s} {p:.1f}" for s, p in tops[name].most_common(5))
        print(f"| {name} | {pct:.1f}% | {pct / 100 * per_req:.2f} | {top} |")


def strace_profile(cmd: list[str], cpu: int | None, tmp: Path, status_url: str) -> None:
    out = tmp / "strace.txt"
    result = run(["strace", "-f", "-c", "-o", str(out), *cmd], cpu, status_url)
    n = result["all_requests"]  # the whole process, warm-up included, as nginx counted them
    print(f"\n## strace -c: system calls per request ({n:,} requests, start-up included)\n")
    print("| syscall | calls | per request | errors |\n|---|---:|---:|---:|")
    for line in out.read_text().splitlines():
        f = line.split()
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            calls, errors = int(f[3]), (int(f[4]) if len(f) == 6 else 0)
            if calls / n >= 0.01:
                print(f"| {f[-1]} | {calls:,} | {calls / n:.2f} | {errors:,} |")


def loop_calls(url: str, cell: dict, cpu: int | None) -> None:
    cmd = [sys.executable, "-c", LOOP_COUNTER, url, cell["http"], str(cell["c"]), "20000"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, preexec_fn=pinned(cpu))
    if proc.returncode:
        print(f"\nloop call count failed: {proc.stderr[-400:]}")
        return
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    print("\n## event-loop calls per request (asyncio loop, 20,000 requests)\n")
    print("| call | per request |\n|---|---:|")
    for name, per in counts.items():
        print(f"| {name} | {per:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--client", default="acurl_rs")
    p.add_argument("--cell", default="h2-c64", choices=list(CELLS))
    p.add_argument("--loop", default="uvloop", choices=("uvloop", "asyncio"))
    p.add_argument("--seconds", type=float, default=8.0)
    args = p.parse_args()
    cell = CELLS[args.cell]
    tmp = Path(tempfile.mkdtemp(prefix="acurl-profile-"))
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    # A copy of the build: perf resolves symbols from it even if the tree is rebuilt meanwhile.
    ENV.update(snapshot_acurl_rs(tmp / "acurl_rs_build"))
    nginx = BenchNginx(tmp / "nginx", server_cpu).start()
    try:
        base = nginx.https_url if cell["tls"] else nginx.http_url
        url = base + cell.get("path", "/small")
        cmd = runner_cmd(args.client, cell, url, args)
        print(f"# {args.client} in {args.cell} ({cell['title']}), {args.loop}")
        plain = run(cmd, cpu, nginx.status_url)
        print(
            f"\nwithout profiler: {plain['requests'] / plain['seconds']:,.0f} req/s, "
            f"{plain['cpu_us'] / plain['requests']:.1f} µs CPU/request"
        )
        for tool, fn in (("perf", perf_profile), ("strace", strace_profile)):
            if shutil.which(tool):
                fn(cmd, cpu, tmp, nginx.status_url)
            else:
                package = "linux-perf" if tool == "perf" else tool
                print(f"\n({tool} not installed: apt-get install {package})")
        if args.client == "acurl_rs":
            loop_calls(url, cell, cpu)
    finally:
        nginx.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
