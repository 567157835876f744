#!/usr/bin/env python3
"""The acurl_rs benchmark (`make bench`): acurl_rs against other Python HTTP clients and native
references, on a local nginx, loopback only.

    bench/run.py                      full run (3 repeats, ~20 min on 2 cores, installs its peers)
    bench/run.py --quick              one repeat, shorter runs
    bench/run.py --only acurl_rs,pycurl --cells h2-c64 --workloads steady --loops uvloop

Writes bench/results/results.json and results.md (with the target ratios) and the chart
docs/bench_cpu_per_request.png. See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import natives
import report
import setup_env
from local_servers import BIG_SIZE, SMALL_BODY, BenchNginx, SlowServer, nginx_version, pinned

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLIENTS_DIR = BENCH / "clients"

PY_CLIENTS = ["acurl_rs", "acurl", "pycurl", "pyreqwest", "aiohttp", "httpx", "curl_cffi"]
NATIVE = ["h2load", "wrk"]
ALL_CLIENTS = PY_CLIENTS + NATIVE
HTTP1_ONLY = {"aiohttp", "wrk"}
LOOPS = ["uvloop", "asyncio"]

CELLS: dict[str, dict[str, Any]] = {
    "h1-c1": {"title": "HTTP/1.1 plain, c=1, 100 B", "tls": False, "http": "1.1", "c": 1},
    "h1-c64": {"title": "HTTP/1.1 plain, c=64, 100 B", "tls": False, "http": "1.1", "c": 64},
    "h1tls-c64": {"title": "HTTP/1.1 TLS, c=64, 100 B", "tls": True, "http": "1.1", "c": 64},
    "h2-c64": {"title": "HTTP/2 TLS, c=64, 100 B", "tls": True, "http": "2", "c": 64},
    "h2-c256": {"title": "HTTP/2 TLS, c=256, 100 B", "tls": True, "http": "2", "c": 256},
    "h2big-c64": {
        "title": "HTTP/2 TLS, c=64, 64 KiB",
        "tls": True,
        "http": "2",
        "c": 64,
        "path": "/big",
        "size": BIG_SIZE,
    },
}
WORKLOADS = ["steady", "journeys", "fixed", "waiting", "memory"]


@dataclass(frozen=True)
class Profile:
    repeats: int
    warmup: float  # steady: seconds of warm-up before the timed section
    duration: float  # steady: timed seconds
    journeys: int
    warmup_journeys: int
    fixed_seconds: float
    fixed_warmup: float
    memory_sessions: int


PROFILES = {
    "full": Profile(3, 0.5, 1.5, 5000, 200, 20.0, 2.0, 1000),
    "quick": Profile(1, 0.3, 1.0, 1000, 100, 5.0, 1.0, 1000),
}


def log(msg: str) -> None:
    print(msg, flush=True)


class Bench:
    """Runs the planned cells against one nginx and collects one record per run."""

    def __init__(self, args: argparse.Namespace, profile: Profile, workdir: Path) -> None:
        self.args = args
        self.p = profile
        cpus = sorted(os.sched_getaffinity(0))
        self.server_cpu, self.client_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
        if self.server_cpu is not None:
            os.sched_setaffinity(0, {self.server_cpu})  # keep the harness off the client CPU
        self.nginx = BenchNginx(workdir / "nginx", self.server_cpu)
        self.workdir = workdir
        self.records: list[dict[str, Any]] = []
        self.env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        self.acurl_rs_env: dict[str, str] = {}  # PYTHONPATH of the build snapshot
        self.count = 0

    # -- running one client ----------------------------------------------------------------------

    def python_client(self, client: str, argv: list[str], timeout: float) -> dict[str, Any]:
        python = sys.executable if client in ("acurl_rs", "null") else str(setup_env.PEERS_PY)
        cmd = [python, str(CLIENTS_DIR / f"{client}_client.py"), *argv]
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=CLIENTS_DIR,
                env=(self.env | self.acurl_rs_env) if client == "acurl_rs" else self.env,
                preexec_fn=pinned(self.client_cpu),
            )
        except subprocess.TimeoutExpired:
            return {"failed": f"timed out after {timeout:.0f}s"}
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        return {"failed": f"exit {proc.returncode}: {proc.stderr.strip()[-400:]}"}

    def record(self, rec: dict[str, Any], expect_http: str) -> dict[str, Any]:
        if not rec.get("failed") and not rec.get("unsupported") and "requests" in rec:
            ok = rec["requests"] - rec.get("errors", 0)
            if rec.get("seconds"):
                rec["rps"] = ok / rec["seconds"]
            if "cpu_us" in rec:
                rec["cpu_us_per_req"] = rec["cpu_us"] / max(ok, 1)
                rec["cpu_s"] = rec["cpu_us"] / 1e6
            rec["version_ok"] = (rec.get("versions") or {}).get(expect_http, 0) == rec["requests"]
        self.records.append(rec)
        self.count += 1
        log(f"[{self.count:>3}] {_describe(rec)}")
        return rec

    def base_argv(self, url: str, http: str, loop: str, size: int | None) -> list[str]:
        argv = ["--url", url, "--http", http, "--loop", loop, "--status-url", self.nginx.status_url]
        return argv + (["--expect-bytes", str(size)] if size is not None else [])

    # -- workloads -------------------------------------------------------------------------------

    def steady(self, clients: list[str], cells: list[str], loops: list[str]) -> None:
        for rep in range(self.p.repeats):
            for name in cells:
                cell = CELLS[name]
                base = self.nginx.https_url if cell["tls"] else self.nginx.http_url
                url = base + cell.get("path", "/small")
                size = cell.get("size", len(SMALL_BODY))
                shift = rep % len(clients)  # rotate the order between repeats
                for client in clients[shift:] + clients[:shift]:
                    head = {"workload": "steady", "cell": name, "client": client, "repeat": rep}
                    if client in HTTP1_ONLY and cell["http"] != "1.1":
                        for loop in loops if client in PY_CLIENTS else ["native"]:
                            self.records.append(
                                head | {"loop": loop, "unsupported": "no HTTP/2 support"}
                            )
                        continue
                    if client in NATIVE:
                        rec = natives.run(
                            client,
                            url,
                            cell["http"],
                            cell["c"],
                            self.p.warmup + 0.5,  # its connections are made inside the warm-up
                            self.p.duration,
                            self.nginx_status,
                            self.client_cpu,
                        )
                        self.record(head | {"loop": "native"} | rec, cell["http"])
                        continue
                    for loop in loops:
                        argv = [
                            *self.base_argv(url, cell["http"], loop, size),
                            f"--concurrency={cell['c']}",
                            f"--warmup={self.p.warmup}",
                            f"--duration={self.p.duration}",
                        ]
                        rec = self.python_client(client, argv, self.p.duration + 90)
                        self.record(head | {"loop": loop} | rec, cell["http"])

    def journeys(self, clients: list[str], loops: list[str]) -> None:
        # acurl_rs's default (wrapper scope, acurl's model); per-user pools resuming TLS from
        # the wrapper's cache (session scope's default); per-user pools with per-user TLS caches
        # (session scope before tls_sessions existed); acurl 1.2.1.
        variants = [
            ("acurl_rs", "wrapper"),
            ("acurl_rs", "session"),
            ("acurl_rs", "session:tls=session"),
            ("acurl", ""),
        ]
        variants = [v for v in variants if v[0] in clients]
        url = f"{self.nginx.https_url}/journey"
        for rep in range(self.p.repeats):
            for client, scope in variants:
                for loop in loops:
                    argv = [
                        *self.base_argv(url, "2", loop, len(SMALL_BODY)),
                        "--mode=journeys",
                        f"--journeys={self.p.journeys}",
                        f"--warmup-journeys={self.p.warmup_journeys}",
                        "--concurrency=100",
                        f"--scope={scope or 'wrapper'}",
                    ]
                    offset = self.nginx.log_offset()
                    rec = self.python_client(client, argv, 600)
                    rec |= self.handshakes(offset, rec)
                    head = {"workload": "journeys", "cell": "h2-journeys", "client": client}
                    self.record(head | {"variant": scope, "loop": loop, "repeat": rep} | rec, "2")

    def handshakes(self, offset: int, rec: dict[str, Any]) -> dict[str, Any]:
        """New connections (and TLS resumptions) of the timed phase, from nginx's access log."""
        journeys = rec.get("journeys")
        if not journeys:
            return {}
        warm, timed = set(), {}
        for fields in self.nginx.log_since(offset):
            if len(fields) != 4:
                continue
            conn, reused, _proto, phase = fields
            if phase == "w":
                warm.add(conn)
            elif phase == "t":
                timed.setdefault(conn, reused)
        new = {c: r for c, r in timed.items() if c not in warm}
        return {
            "conns_per_journey": rec.get("accepts", 0) / journeys,
            "handshakes_per_journey": len(new) / journeys,
            "resumed_share": sum(r == "r" for r in new.values()) / len(new) if new else 0.0,
        }

    def fixed(self, clients: list[str], loops: list[str]) -> None:
        runners = [c for c in ("acurl_rs", "acurl") if c in clients] + ["null"]
        url = f"{self.nginx.https_url}/small"
        for rep in range(self.p.repeats):
            for client in runners:
                for loop in loops:
                    size = None if client == "null" else len(SMALL_BODY)
                    argv = [
                        *self.base_argv(url, "2", loop, size),
                        "--mode=fixed",
                        "--rate=600",
                        "--sessions=200",
                        f"--duration={self.p.fixed_seconds}",
                        f"--warmup={self.p.fixed_warmup}",
                    ]
                    rec = self.python_client(client, argv, self.p.fixed_seconds + 120)
                    head = {"workload": "fixed", "cell": "h2-fixed", "client": client}
                    self.record(head | {"loop": loop, "repeat": rep} | rec, "2")

    def waiting(self, clients: list[str], loops: list[str]) -> None:
        runners = [c for c in ("acurl_rs", "acurl") if c in clients]
        if not runners:
            return
        slow = SlowServer(2.0, self.server_cpu).start()
        try:
            for rep in range(self.p.repeats):
                for client in runners:
                    for loop in loops:
                        argv = self.base_argv(slow.url, "1.1", loop, SlowServer.body_size)
                        argv += ["--mode=waiting", "--requests=200"]
                        rec = self.python_client(client, argv, 120)
                        head = {"workload": "waiting", "cell": "h1-wait", "client": client}
                        self.record(head | {"loop": loop, "repeat": rep} | rec, "1.1")
        finally:
            slow.stop()

    def memory(self, clients: list[str], loops: list[str]) -> None:
        runners = [c for c in ("acurl_rs", "acurl") if c in clients]
        url = f"{self.nginx.https_url}/small"
        for rep in range(self.p.repeats):
            for client in runners:
                for loop in loops:
                    argv = self.base_argv(url, "2", loop, len(SMALL_BODY))
                    argv += ["--mode=memory", f"--sessions={self.p.memory_sessions}"]
                    rec = self.python_client(client, argv, 300)
                    head = {"workload": "memory", "cell": "h2-memory", "client": client}
                    self.record(head | {"loop": loop, "repeat": rep} | rec, "2")

    def nginx_status(self) -> dict[str, int]:
        import urllib.request

        with urllib.request.urlopen(self.nginx.status_url, timeout=10) as resp:
            lines = resp.read().decode().splitlines()
        accepts, _handled, requests = (int(x) for x in lines[2].split())
        return {"accepts": accepts, "requests": requests}


def _describe(rec: dict[str, Any]) -> str:
    what = f"{rec['workload']:<8} {rec['cell']:<11} {rec['client']}"
    if rec.get("variant"):
        what += f"[{rec['variant']}]"
    what += f" {rec['loop']}"
    if rec.get("failed"):
        return f"{what}: FAILED {rec['failed'][:200]}"
    parts = []
    if "rps" in rec:
        parts.append(f"{rec['rps']:,.0f} req/s")
    if "cpu_us_per_req" in rec and rec["workload"] in ("steady", "journeys"):
        parts.append(f"{rec['cpu_us_per_req']:.1f} µs/req")
    if "cpu_share" in rec:
        parts.append(f"CPU share {rec['cpu_share']:.3f}")
    if rec["workload"] == "waiting" and "cpu_s" in rec:
        parts.append(f"CPU {rec['cpu_s']:.4f} s")
    if "rss_per_session" in rec:
        per_conn = rec.get("rss_per_connection")
        conn = f"{per_conn / 1024:.1f} KiB/conn" if per_conn else "conn n/a"
        parts.append(f"{rec['rss_per_session'] / 1024:.1f} KiB/session, {conn}")
    if rec.get("errors"):
        parts.append(f"{rec['errors']} errors ({rec.get('first_error', '')[:80]})")
    if not rec.get("version_ok", True):
        parts.append(f"VERSION {rec.get('versions')}")
    return f"{what}: {', '.join(parts)}"


def _meta(args: argparse.Namespace, bench: Bench, unavailable: dict[str, str]) -> dict[str, Any]:
    cpu_model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    versions = {"nginx": nginx_version(), "python": platform.python_version()}
    for tool in NATIVE:
        if natives.available(tool):
            versions[tool] = natives.version(tool)
    for rec in bench.records:
        for name, version in (rec.get("library") or {}).items():
            versions.setdefault(name, version)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "argv": " ".join(sys.argv[1:]) or "(defaults)",
        "profile": "quick" if args.quick else "full",
        "repeats": bench.p.repeats,
        "commit": report.git_commit(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "kernel": f"Linux {platform.release()}",
        "python": platform.python_version(),
        "nginx": versions["nginx"],
        "server_cpu": bench.server_cpu,
        "client_cpu": bench.client_cpu,
        "loadavg": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "unavailable": unavailable,
        "versions": versions,
    }


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="one repeat, shorter runs")
    p.add_argument("--only", help=f"clients, comma-separated (of {','.join(ALL_CLIENTS)})")
    p.add_argument("--cells", help=f"steady cells (of {','.join(CELLS)})")
    p.add_argument("--workloads", help=f"of {','.join(WORKLOADS)}")
    p.add_argument("--loops", default="uvloop,asyncio", help="loops for steady and journeys")
    p.add_argument("--aux-loops", default="uvloop", help="loops for fixed, waiting, memory")
    p.add_argument("--repeats", type=int, help="override the profile's repeat count")
    p.add_argument("--no-install", action="store_true", help="do not apt-get / pip install")
    p.add_argument("--out", default=str(BENCH / "results"), help="results directory")
    p.add_argument("--chart", default=str(ROOT / "docs" / "bench_cpu_per_request.png"))
    p.add_argument("--keep", action="store_true", help="keep the nginx prefix (logs) after")
    return p.parse_args()


def _pick(value: str | None, allowed: list[str], what: str) -> list[str]:
    if not value:
        return list(allowed)
    picked = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in picked if v not in allowed]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return picked


def main() -> None:
    args = parse_args()
    profile = PROFILES["quick" if args.quick else "full"]
    if args.repeats:
        profile = Profile(**(vars(profile) | {"repeats": args.repeats}))
    clients = _pick(args.only, ALL_CLIENTS, "clients")
    cells = _pick(args.cells, list(CELLS), "cells")
    workloads = _pick(args.workloads, WORKLOADS, "workloads")
    loops = _pick(args.loops, LOOPS, "loops")
    aux_loops = _pick(args.aux_loops, LOOPS, "loops")

    started = time.monotonic()
    peers = [c for c in clients if c in setup_env.PEERS]
    unavailable, notes = setup_env.ensure(peers, install=not args.no_install)
    if "nginx" in unavailable:
        sys.exit(f"nginx is required: {unavailable['nginx']}")
    tools = {"h2load": "nghttp2-client", "wrk": "wrk"}
    for tool, pkg in tools.items():
        if tool in clients and not natives.available(tool):
            unavailable.setdefault(tool, unavailable.get(pkg, "not installed"))
    clients = [c for c in clients if c not in unavailable]
    for name, why in unavailable.items():
        log(f"unavailable: {name}: {why}")
    for note in notes:
        log(f"note: {note}")
    log(f"setup done in {time.monotonic() - started:.0f}s; clients: {', '.join(clients)}")

    workdir = Path(tempfile.mkdtemp(prefix="acurl-bench-"))
    bench = Bench(args, profile, workdir)
    if "acurl_rs" in clients:
        bench.acurl_rs_env = setup_env.snapshot_acurl_rs(workdir / "acurl_rs_build")
        notes.append(
            "acurl_rs extension measured: "
            + setup_env.extension_id(workdir / "acurl_rs_build" / "acurl_rs")
        )
    bench.nginx.start()
    try:
        for workload in workloads:
            t0 = time.monotonic()
            if workload == "steady":
                bench.steady(clients, cells, loops)
            elif workload == "journeys":
                bench.journeys(clients, loops)
            else:
                getattr(bench, workload)(clients, aux_loops)
            log(f"== {workload} done in {time.monotonic() - t0:.0f}s")
    finally:
        bench.nginx.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"nginx prefix kept in {workdir}")
        write(args, bench, unavailable, notes, clients)
    log(f"total {time.monotonic() - started:.0f}s")


def write(
    args: argparse.Namespace,
    bench: Bench,
    unavailable: dict[str, str],
    notes: list[str],
    clients: list[str],
) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    order = [c for c in ALL_CLIENTS if c in clients or c in unavailable]
    meta = _meta(args, bench, unavailable) | {"notes": notes}
    summary = report.summarize(bench.records, CELLS, order)
    runs = [{k: v for k, v in r.items() if k != "library"} for r in bench.records]  # in meta
    data = {"meta": meta, "cells": CELLS, "summary": summary, "runs": runs}
    (out / "results.json").write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    (out / "results.md").write_text(report.markdown(bench.records, summary, meta, CELLS, order))
    log(f"wrote {out / 'results.md'} and results.json")
    if any(r["workload"] == "steady" for r in bench.records):
        try:
            Path(args.chart).parent.mkdir(parents=True, exist_ok=True)
            report.chart(bench.records, CELLS, order, args.chart)
            log(f"wrote {args.chart}")
        except ImportError as exc:
            log(f"no chart: {exc}")


if __name__ == "__main__":
    main()
