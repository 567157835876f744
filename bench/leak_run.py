#!/usr/bin/env python3
"""Long leak run: many requests mixing success, failure, cancellation, redirects and timeouts.

    .venv/bin/python bench/leak_run.py                     # 100,000 requests
    .venv/bin/python bench/leak_run.py --requests 5000     # the CI size (tests/test_leaks.py)
    .venv/bin/python bench/leak_run.py --nginx             # add HTTP/2 over TLS to nginx

The servers run in a child process (so their memory and sockets are not counted here): the
HTTP/1.1 test server of tests/servers/app.py, and with --nginx a private nginx. A bound but
not listening socket gives "connection refused". Requests run in rounds; each round uses fresh
sessions (every few rounds a fresh CurlWrapper too), so session and wrapper teardown is part of
what is measured. After every round the loop must hold nothing of ours
(``wrapper._native.registrations() == ([], False)`` and ``in_flight == 0``).

Measured: VmRSS after the warm-up rounds and at the end (after gc), open fds before the first
wrapper and at the end. Prints one JSON object; exits 1 if RSS grew by >= --max-rss-growth-mb
(default 20) after warm-up, if the fds are not back to the baseline, or if anything of ours was
left on the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"

# (kind, weight): out of every 100 requests.
MIX = [
    ("get", 40),
    ("post", 10),
    ("redirect", 10),
    ("status404", 5),
    ("big", 5),
    ("refused", 10),
    ("timeout", 5),
    ("cancel", 10),
    ("h2", 5),  # only with --nginx, else a plain GET
]


def rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- the server process ---------------------------------------------------------------------


def serve(nginx: bool) -> None:
    """Child process: start the servers, print their URLs as JSON, run until stdin closes."""
    sys.path.insert(0, str(TESTS_DIR))
    from servers.app import TestServer

    server = TestServer()
    server.start()
    info = {"http": server.base_url}
    ngx = None
    if nginx:
        from servers.nginx import NginxServer

        ngx = NginxServer(tempfile.mkdtemp(prefix="leak-run-nginx-")).start()
        info.update(https=ngx.https_url, ca=ngx.ca_path)
    print(json.dumps(info), flush=True)
    try:
        sys.stdin.read()
    finally:
        if ngx is not None:
            ngx.stop()
        server.stop()


def start_servers(nginx: bool) -> tuple[subprocess.Popen[str], dict[str, str]]:
    cmd = [sys.executable, os.path.abspath(__file__), "--serve"] + (["--nginx"] if nginx else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError("server process did not start")
    return proc, json.loads(line)


# -- the client ------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, urls: dict[str, str], refused_port: int) -> None:
        import acurl_rs

        self.acurl = acurl_rs
        self.args = args
        self.urls = urls
        self.refused_url = f"http://127.0.0.1:{refused_port}/"
        self.kinds = [kind for kind, weight in MIX for _ in range(weight)]
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.unexpected: list[str] = []
        self.leftovers: list[str] = []

    def kind(self, i: int) -> str:
        # Spread the kinds out: a stride coprime with 100 walks the whole list.
        kind = self.kinds[(i * 37) % len(self.kinds)]
        if kind == "h2" and "https" not in self.urls:
            return "get"
        return kind

    async def one(self, session, i: int) -> None:
        acurl = self.acurl
        http = self.urls["http"]
        kind = self.kind(i)
        try:
            if kind == "get":
                r = await session.get(f"{http}/echo?i={i}")
                ok = r.status_code == 200
            elif kind == "post":
                r = await session.post(f"{http}/echo", data=b"x" * (i % 5000), json=None)
                ok = r.status_code == 200
            elif kind == "redirect":
                r = await session.get(f"{http}/redirect/2")
                ok = r.status_code == 200 and len(r.history) == 2
            elif kind == "status404":
                ok = (await session.get(f"{http}/status/404")).status_code == 404
            elif kind == "big":
                r = await session.get(f"{http}/bytes?n=100000&seed={i % 7}")
                ok = len(r.body) == 100000
            elif kind == "h2":
                r = await session.get(self.urls["https"] + "/", verify=self.urls["ca"])
                ok = r.http_version == "2"
            elif kind == "refused":
                try:
                    await session.get(self.refused_url)
                    ok = False
                except acurl.ConnectError:
                    ok = True
            elif kind == "timeout":
                try:
                    await session.get(f"{http}/sleep-forever", timeout=self.args.timeout)
                    ok = False
                except acurl.AcurlTimeoutError:
                    ok = True
            elif kind == "cancel":
                task = asyncio.ensure_future(session.get(f"{http}/sleep-forever"))
                await asyncio.sleep(self.args.cancel_after)
                task.cancel()
                try:
                    await task
                    ok = False
                except asyncio.CancelledError:
                    ok = True
            else:
                raise AssertionError(kind)
        except Exception as exc:
            ok = False
            if len(self.unexpected) < 20:
                self.unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
        self.outcomes[kind if ok else f"{kind}:unexpected"] += 1

    async def round(self, wrapper, start: int, count: int) -> None:
        sessions = [wrapper.session() for _ in range(self.args.sessions)]
        next_index = start
        end = start + count

        async def worker(w: int) -> None:
            nonlocal next_index
            while next_index < end:
                i = next_index
                next_index += 1
                await self.one(sessions[i % len(sessions)], i)

        await asyncio.gather(*(worker(w) for w in range(self.args.concurrency)))
        native = wrapper._native
        registrations = native.registrations()
        if native.in_flight != 0 or registrations != ([], False):
            self.leftovers.append(
                f"after request {end}: in_flight={native.in_flight} registrations={registrations!r}"
            )
        for s in sessions:
            s.close()

    async def main(self) -> dict[str, object]:
        args = self.args
        fds_baseline = open_fds()
        rss_start = rss_kb()
        wrapper = self.acurl.CurlWrapper()
        done = rounds = 0
        warmup = min(args.warmup, args.requests)
        rss_warm = None
        started = time.monotonic()
        while done < args.requests:
            if rss_warm is None and done >= warmup:
                gc.collect()
                rss_warm = rss_kb()
                warm_at = done
            count = min(args.round_size, args.requests - done)
            await self.round(wrapper, done, count)
            done += count
            rounds += 1
            if rounds % args.wrapper_every == 0:
                wrapper.close()
                wrapper = self.acurl.CurlWrapper()
        if rss_warm is None:
            gc.collect()
            rss_warm = rss_kb()
            warm_at = done
        elapsed = time.monotonic() - started
        # The last wrapper is checked idle before it is closed.
        final_registrations = wrapper._native.registrations() if wrapper._native else ([], False)
        final_in_flight = wrapper._native.in_flight if wrapper._native else 0
        wrapper.close()
        del wrapper
        gc.collect()
        await asyncio.sleep(0)
        rss_end = rss_kb()
        fds_end = open_fds()
        deadline = time.monotonic() + 2
        while fds_end > fds_baseline and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            gc.collect()
            fds_end = open_fds()
        growth_mb = (rss_end - rss_warm) / 1024
        failures = []
        if growth_mb >= args.max_rss_growth_mb:
            failures.append(f"RSS grew {growth_mb:.1f} MB after warm-up")
        if fds_end > fds_baseline:
            failures.append(f"{fds_end - fds_baseline} fds not closed")
        if self.leftovers or final_registrations != ([], False) or final_in_flight:
            failures.append("readers/writers/timers or transfers left on the loop")
        unexpected = sum(v for k, v in self.outcomes.items() if k.endswith(":unexpected"))
        if unexpected > args.requests * args.max_unexpected:
            failures.append(f"{unexpected} requests had an unexpected outcome")
        return {
            "requests": done,
            "rounds": rounds,
            "elapsed_s": round(elapsed, 2),
            "requests_per_s": round(done / elapsed, 1) if elapsed else None,
            "outcomes": dict(sorted(self.outcomes.items())),
            "unexpected_examples": self.unexpected,
            "rss_start_kb": rss_start,
            "rss_after_warmup_kb": rss_warm,
            "warmup_requests": warm_at,
            "rss_end_kb": rss_end,
            "rss_growth_after_warmup_mb": round(growth_mb, 2),
            "fds_baseline": fds_baseline,
            "fds_end": fds_end,
            "loop_leftovers": self.leftovers[:10],
            "final_registrations": repr(final_registrations),
            "failures": failures,
            "ok": not failures,
        }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--sessions", type=int, default=8, help="sessions per round")
    p.add_argument("--round-size", type=int, default=2000, help="requests per round")
    p.add_argument("--wrapper-every", type=int, default=5, help="new CurlWrapper every N rounds")
    p.add_argument("--warmup", type=int, default=4000, help="requests before the RSS baseline")
    p.add_argument("--timeout", type=float, default=0.05, help="for the timeout requests")
    p.add_argument("--cancel-after", type=float, default=0.005)
    p.add_argument("--max-rss-growth-mb", type=float, default=20.0)
    p.add_argument(
        "--max-unexpected", type=float, default=0.001, help="fraction of odd outcomes allowed"
    )
    p.add_argument("--nginx", action="store_true", help="also HTTP/2 over TLS to nginx")
    p.add_argument("--uvloop", action="store_true")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.nginx)
        return 0
    proc, urls = start_servers(args.nginx)
    refused = socket.socket()  # bound, never listening: connects to it are refused
    refused.bind(("127.0.0.1", 0))
    try:
        run = Run(args, urls, refused.getsockname()[1])
        if args.uvloop:
            import uvloop

            summary = uvloop.run(run.main())
        else:
            summary = asyncio.run(run.main())
    finally:
        refused.close()
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(json.dumps(summary, indent=2))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
