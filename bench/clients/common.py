"""What every client runner shares: the CLI, the workloads, the CPU clock and the JSON line.

A runner (`bench/clients/<name>_client.py`) only adapts one HTTP library to four coroutines:

    start()                       once, inside the running loop (make the wrapper/multi/client)
    new_session(scope)            one session (scope matters to acurl_rs only)
    fetch(session, url)           one GET -> (status, http version "1.1"|"2", body bytes)
    close_session(session)        / stop()

and then calls `main(Adapter)`. The workload, the loop kind and the clock are the same for all.
CPU is `getrusage(RUSAGE_SELF)` user+sys of the whole client process (all its threads), read
around the timed section only, after a warm-up. Standard library only: this file runs in both
the project venv and the peers' venv.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import resource
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

Fetch = Callable[[Any, str], Awaitable[tuple[int, str, int]]]


class Adapter:
    """Base class of the per-library adapters (see the module docstring)."""

    name = "?"
    #: HTTP versions the library can be asked for; the harness skips the others.
    http_versions: tuple[str, ...] = ("1.1", "2")

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.http = args.http

    async def start(self) -> None:
        pass

    async def new_session(self, scope: str = "session") -> Any:
        raise NotImplementedError

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        raise NotImplementedError

    async def close_session(self, session: Any) -> None:
        pass

    async def stop(self) -> None:
        pass

    def library_versions(self) -> dict[str, str]:
        return {}


class Unsupported(Exception):
    """The library cannot run this cell (e.g. no HTTP/2); reported, not counted as an error."""


# -- measurement -------------------------------------------------------------------------------


def cpu_us() -> int:
    """User + system CPU of this process (every thread) in microseconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return round((ru.ru_utime + ru.ru_stime) * 1e6)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def heap_bytes() -> int | None:
    """malloc'd bytes in use (glibc mallinfo2: small blocks + mmapped blocks). Unlike RSS it
    drops when memory is freed, so it shows what an idle connection really holds."""
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _Mallinfo2
    info = mallinfo2()
    return int(info.uordblks + info.hblkhd)


def stub_status(url: str | None) -> dict[str, int] | None:
    """nginx stub_status counters (blocking; only ever called outside a timed section)."""
    if not url:
        return None
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    lines = text.splitlines()
    accepts, _handled, requests = (int(x) for x in lines[2].split())
    return {"active": int(lines[0].split(":")[1]), "accepts": accepts, "requests": requests}


def status_delta(before: dict[str, int] | None, after: dict[str, int] | None) -> dict[str, int]:
    if not before or not after:
        return {}
    # Each probe is itself a new connection and a request, counted by the one after it.
    return {
        "accepts": after["accepts"] - before["accepts"] - 1,
        "server_requests": after["requests"] - before["requests"] - 1,
    }


class Tally:
    """Responses by HTTP version, and what went wrong (status, size or an exception)."""

    def __init__(self, expect_bytes: int | None) -> None:
        self.expect = expect_bytes
        self.ok = 0
        self.errors = 0
        self.versions: dict[str, int] = {}
        self.first_error: str | None = None

    def add(self, status: int, version: str, size: int) -> None:
        self.versions[version] = self.versions.get(version, 0) + 1
        if status == 200 and (self.expect is None or size == self.expect):
            self.ok += 1
        else:
            self.fail(f"status {status}, {size} bytes")

    def fail(self, what: object) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what if isinstance(what, str) else f"{type(what).__name__}: {what}"

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": self.ok + self.errors,
            "errors": self.errors,
            "versions": self.versions,
        }
        if self.first_error:
            out["first_error"] = self.first_error[:300]
        return out


async def counted(fetch: Fetch, session: Any, url: str, tally: Tally) -> None:
    try:
        status, version, size = await fetch(session, url)
    except Exception as exc:
        tally.fail(exc)
    else:
        tally.add(status, version, size)


# -- workloads -----------------------------------------------------------------------------------


async def closed_loop(
    fetch: Fetch, session: Any, url: str, concurrency: int, seconds: float, limit: int, tally: Tally
) -> None:
    """`concurrency` tasks, each sending its next request when the last one finished."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    left = [limit]

    async def worker() -> None:
        while left[0] > 0 and loop.time() < deadline:
            left[0] -= 1
            try:
                status, version, size = await fetch(session, url)
            except Exception as exc:
                tally.fail(exc)
            else:
                tally.add(status, version, size)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def steady(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    session = await a.new_session()
    await closed_loop(
        a.fetch, session, args.url, args.concurrency, args.warmup, 10**12, Tally(None)
    )
    tally = Tally(args.expect_bytes)
    before = stub_status(args.status_url)
    cpu0, t0 = cpu_us(), time.perf_counter()
    await closed_loop(
        a.fetch, session, args.url, args.concurrency, args.duration, args.requests, tally
    )
    t1, cpu1 = time.perf_counter(), cpu_us()
    after = stub_status(args.status_url)
    await a.close_session(session)
    return {**tally.report(), "seconds": t1 - t0, "cpu_us": cpu1 - cpu0} | status_delta(
        before, after
    )


async def journeys(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """Virtual users: a new session per journey, `journey_len` requests each, then closed."""

    async def run(count: int, url: str, tally: Tally) -> None:
        started = [0]

        async def worker() -> None:
            while started[0] < count:
                started[0] += 1
                session = await a.new_session(args.scope)
                try:
                    for _ in range(args.journey_len):
                        await counted(a.fetch, session, url, tally)
                finally:
                    await a.close_session(session)

        await asyncio.gather(*(worker() for _ in range(min(args.concurrency, count))))

    # The query tags each request with its phase for the nginx access log (TLS resumption).
    sep = "&" if "?" in args.url else "?"
    await run(args.warmup_journeys, f"{args.url}{sep}p=w", Tally(None))
    tally = Tally(args.expect_bytes)
    before = stub_status(args.status_url)
    cpu0, t0 = cpu_us(), time.perf_counter()
    await run(args.journeys, f"{args.url}{sep}p=t", tally)
    t1, cpu1 = time.perf_counter(), cpu_us()
    after = stub_status(args.status_url)
    return {
        **tally.report(),
        "journeys": args.journeys,
        "seconds": t1 - t0,
        "cpu_us": cpu1 - cpu0,
    } | status_delta(before, after)


async def scheduled(
    fetch: Fetch, sessions: list[Any], url: str, rate: float, seconds: float, tally: Tally
) -> float:
    """Open loop: request i starts at start + i/rate as its own task. Returns the worst lag."""
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[None]] = set()
    start = loop.time()
    worst = 0.0
    for i in range(int(rate * seconds)):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            worst = max(worst, -delay)
        task = loop.create_task(counted(fetch, sessions[i % len(sessions)], url, tally))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        await asyncio.wait(pending)
    return worst


async def fixed(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    sessions = [await a.new_session(args.scope) for _ in range(args.sessions)]
    warm = Tally(None)
    for i in range(0, len(sessions), 100):  # one request per session opens its connection
        await asyncio.gather(*(counted(a.fetch, s, args.url, warm) for s in sessions[i : i + 100]))
    await scheduled(a.fetch, sessions, args.url, args.rate, args.warmup, warm)
    tally = Tally(args.expect_bytes)
    before = stub_status(args.status_url)
    cpu0, t0 = cpu_us(), time.perf_counter()
    worst = await scheduled(a.fetch, sessions, args.url, args.rate, args.duration, tally)
    t1, cpu1 = time.perf_counter(), cpu_us()
    after = stub_status(args.status_url)
    return {
        **tally.report(),
        "seconds": t1 - t0,
        "cpu_us": cpu1 - cpu0,
        "cpu_share": (cpu1 - cpu0) / 1e6 / (t1 - t0),
        "worst_lag_ms": worst * 1e3,
        "warm_errors": warm.errors,
    } | status_delta(before, after)


async def waiting(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """`requests` requests at once to a server answering after a delay: what does waiting cost?"""
    session = await a.new_session()
    tally = Tally(args.expect_bytes)
    cpu0, t0 = cpu_us(), time.perf_counter()
    tasks = [
        asyncio.ensure_future(counted(a.fetch, session, args.url, tally))
        for _ in range(args.requests)
    ]
    await asyncio.sleep(0.5)  # everything is sent and connected by now; then only waiting
    cpu_a, ta = cpu_us(), time.perf_counter()
    await asyncio.sleep(1.0)
    cpu_b, tb = cpu_us(), time.perf_counter()
    await asyncio.gather(*tasks)
    t1, cpu1 = time.perf_counter(), cpu_us()
    await a.close_session(session)
    return {
        **tally.report(),
        "seconds": t1 - t0,
        "cpu_us": cpu1 - cpu0,
        "idle_cpu_us_per_s": (cpu_b - cpu_a) / (tb - ta),
    }


async def memory(a: Adapter, args: argparse.Namespace) -> dict[str, Any]:
    """RSS of `sessions` idle sessions, then of the same sessions each holding a connection."""
    # Session scope: each session holds its own connection, which is what is measured.
    first = await a.new_session("session")
    warm = Tally(None)
    await counted(a.fetch, first, args.url, warm)  # loads TLS, the CA store, the loop...
    gc.collect()
    rss0 = rss_bytes()
    heap0 = heap_bytes()
    base = stub_status(args.status_url)
    sessions = [await a.new_session("session") for _ in range(args.sessions)]
    gc.collect()
    rss1, heap1 = rss_bytes(), heap_bytes()
    tally = Tally(args.expect_bytes)
    for i in range(0, len(sessions), 100):
        await asyncio.gather(*(counted(a.fetch, s, args.url, tally) for s in sessions[i : i + 100]))
    gc.collect()
    await asyncio.sleep(0.2)
    rss2, heap2 = rss_bytes(), heap_bytes()
    held = stub_status(args.status_url)
    out: dict[str, Any] = {
        **tally.report(),
        "sessions": args.sessions,
        "rss_base": rss0,
        "rss_per_session": (rss1 - rss0) / args.sessions,
        "rss_per_used_session": (rss2 - rss1) / args.sessions,
    }
    if heap0 is not None and heap1 is not None:
        out["heap_per_session"] = (heap1 - heap0) / args.sessions
    if base and held:
        conns = held["active"] - base["active"]
        out["connections_held"] = conns
        if conns >= 0.9 * args.sessions:
            out["rss_per_connection"] = (rss2 - rss1) / conns
            if heap1 is not None and heap2 is not None:
                out["heap_per_connection"] = (heap2 - heap1) / conns
    return out


WORKLOADS = {
    "steady": steady,
    "journeys": journeys,
    "fixed": fixed,
    "waiting": waiting,
    "memory": memory,
}


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="One benchmark client run; prints one JSON line.")
    p.add_argument("--url", required=True)
    p.add_argument("--mode", choices=sorted(WORKLOADS), default="steady")
    p.add_argument("--concurrency", "-c", type=int, default=1)
    p.add_argument("--requests", "-n", type=int, default=10**12, help="cap on timed requests")
    p.add_argument("--duration", type=float, default=2.0, help="timed seconds (cap)")
    p.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    p.add_argument("--http", choices=("1.1", "2"), default="2")
    p.add_argument("--expect-bytes", type=int, default=None, help="body size to check")
    p.add_argument("--status-url", default=None, help="nginx stub_status URL")
    p.add_argument(
        "--scope",
        default="wrapper",
        help='acurl_rs connection scope (journeys, fixed): "wrapper" (the default), "session", '
        'or "session:tls=session" / "session:tls=off" for a tls_sessions policy',
    )
    p.add_argument("--journeys", type=int, default=5000)
    p.add_argument("--warmup-journeys", type=int, default=200)
    p.add_argument("--journey-len", type=int, default=5)
    p.add_argument("--rate", type=float, default=600.0)
    p.add_argument("--sessions", type=int, default=200)
    return p.parse_args(argv)


async def _run(adapter_cls: type[Adapter], args: argparse.Namespace) -> dict[str, Any]:
    adapter = adapter_cls(args)
    if args.http not in adapter.http_versions:
        raise Unsupported(f"{adapter.name} cannot do HTTP/{args.http}")
    await adapter.start()
    try:
        result = await WORKLOADS[args.mode](adapter, args)
    finally:
        await adapter.stop()
    loop = asyncio.get_running_loop()
    result["loop_class"] = f"{type(loop).__module__}.{type(loop).__name__}"
    result["library"] = adapter.library_versions()
    return result


def main(adapter_cls: type[Adapter]) -> None:
    args = parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    head = {"client": adapter_cls.name, "mode": args.mode, "loop": args.loop, "http": args.http}
    try:
        if args.loop == "uvloop":
            import uvloop

            result = uvloop.run(_run(adapter_cls, args))
        else:
            result = asyncio.run(_run(adapter_cls, args))
    except Unsupported as exc:
        print(json.dumps(head | {"unsupported": str(exc)}))
        return
    except Exception as exc:
        print(json.dumps(head | {"failed": f"{type(exc).__name__}: {exc}"[:500]}))
        sys.exit(1)
    print(json.dumps(head | result))
