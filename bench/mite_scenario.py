"""The scenario that bench/mite_bench.py runs with mite 2.11's own `mite scenario test`.

One journey = a new HTTP session (made by the `mite_http` decorator of the variant) and five
sequential GETs to the benchmark's nginx over HTTP/2 TLS. Everything is set through the
environment by the harness, so the same file runs in the project venv and in the peers' venv:

    MITE_BENCH_VARIANT   acurl | dropin | adapter | session_tls | session | floor
    MITE_BENCH_MODE      paced (ensure_fixed_separation inside the journey) | unpaced
    MITE_BENCH_URL       https://127.0.0.1:PORT/small
    MITE_BENCH_TAG       run tag: requests go to URL?p=TAG.PHASE (w warm-up, t timed), so the
                         nginx access log tells this run's requests, phases and connections
    MITE_BENCH_VOLUME    concurrent journeys (mite's volume model: Constant)
    MITE_BENCH_SEPARATION  paced: seconds from one journey's start to the next in a slot
    MITE_BENCH_WARMUP, MITE_BENCH_WINDOW  seconds from the first journey: warm-up, then the
                         measured window
    MITE_BENCH_OUT       where `BenchCounter.close()` writes its JSON
    MITE_BENCH_TLS_SESSIONS  0 when acurl_rs has no `tls_sessions=` option yet

Variants (what `ctx.http` is):

- acurl: mite's own `mite_http` over acurl 1.2.1 (peers venv);
- dropin: mite's own `mite_http` with `sys.modules["acurl"] = acurl_rs`;
- adapter: `acurl_rs.mite.mite_http(connection_scope="wrapper")`;
- session_tls: the adapter in session scope with the wrapper's TLS session cache
  (`tls_sessions="wrapper"`);
- session: the adapter in session scope (per-user connection pools, TLS sessions included);
- floor: no HTTP; a stand-in session whose `get` yields once to the loop and sends the same
  `http_metrics` message (same fields, same kind of values) through `ctx.send`, as mite's
  own response callback does: what mite itself costs per request.

The adapter variants do not verify TLS (acurl cannot); the drop-in cannot be told, so it
verifies against the benchmark's CA (SSL_CERT_FILE).

`BenchCounter` is a mite message processor (`--message-processors=mite_scenario:BenchCounter,...`):
mite's `scenario test` runs the runner and the processors in one process and one loop, so it
reads this process's CPU time (getrusage) at the start and the end of the measured window and
counts the `http_metrics` completed in between. Process start-up, imports and the warm-up are
outside the window.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import resource
import sys
import time
from functools import wraps
from typing import Any

from mite import ensure_fixed_separation
from mite.volume_model import Constant

VARIANT = os.environ.get("MITE_BENCH_VARIANT", "floor")
MODE = os.environ.get("MITE_BENCH_MODE", "paced")
URL = os.environ.get("MITE_BENCH_URL", "https://127.0.0.1:8443/small")
TAG = os.environ.get("MITE_BENCH_TAG", "x")
VOLUME = int(os.environ.get("MITE_BENCH_VOLUME", "60"))
SEPARATION = float(os.environ.get("MITE_BENCH_SEPARATION", "0.5"))
WARMUP = float(os.environ.get("MITE_BENCH_WARMUP", "1"))
WINDOW = float(os.environ.get("MITE_BENCH_WINDOW", "3"))
OUT = os.environ.get("MITE_BENCH_OUT", "mite_bench_out.json")
REQUESTS_PER_JOURNEY = 5

# MITE_BENCH_TLS_SESSIONS=0: an acurl_rs without the tls_sessions= option (session scope
# then keeps TLS sessions per session, as "session" asks; the harness skips session_tls).
_TLS_OPTION = os.environ.get("MITE_BENCH_TLS_SESSIONS", "1") == "1"
ADAPTER_OPTIONS: dict[str, dict[str, Any]] = {
    "adapter": {"connection_scope": "wrapper"},
    "session_tls": {"connection_scope": "session", "tls_sessions": "wrapper"},
    "session": {"connection_scope": "session"}
    | ({"tls_sessions": "session"} if _TLS_OPTION else {}),
}

if VARIANT == "dropin":
    import acurl_rs

    sys.modules["acurl"] = acurl_rs  # before mite_http is imported
if VARIANT in ("acurl", "dropin"):
    from mite_http import mite_http as http_decorator
elif VARIANT in ADAPTER_OPTIONS:
    from acurl_rs.mite import mite_http as _adapter

    http_decorator = _adapter(verify=False, **ADAPTER_OPTIONS[VARIANT])
elif VARIANT != "floor":
    raise SystemExit(f"unknown MITE_BENCH_VARIANT {VARIANT!r}")


# ---------------------------------------------------------------------------------------------
# the no-HTTP floor


class _FakeRequest:
    method = b"GET"


class _FakeResponse:
    """The attributes mite's response callback reads, with values of the same kinds."""

    request = _FakeRequest()
    status_code = 200
    namelookup_time = 0.00002
    connect_time = 0.0
    appconnect_time = 0.0
    pretransfer_time = 0.00004
    starttransfer_time = 0.0004
    total_time = 0.0005
    primary_ip = "127.0.0.1"
    download_size = 100.0

    def __init__(self, url: str) -> None:
        self.url = url
        self.start_time = int(time.time())


class _FloorSession:
    def __init__(self, on_response: Any) -> None:
        self._on_response = on_response

    async def get(self, url: str) -> _FakeResponse:
        await asyncio.sleep(0)
        response = _FakeResponse(url)
        self._on_response(response)
        return response


def _floor_decorator(func: Any) -> Any:
    """Like mite's mite_http, minus HTTP: a session per journey run, a callback closure that
    sends `http_metrics` with mite's fields, `ctx.http` set and deleted around the journey."""

    @wraps(func)
    async def run(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        additional_metrics: dict[str, Any] = {}

        def response_callback(r: Any) -> None:
            ctx.send(
                "http_metrics",
                start_time=r.start_time,
                effective_url=r.url,
                response_code=r.status_code,
                dns_time=r.namelookup_time,
                connect_time=r.connect_time,
                tls_time=r.appconnect_time,
                transfer_start_time=r.pretransfer_time,
                first_byte_time=r.starttransfer_time,
                total_time=r.total_time,
                primary_ip=r.primary_ip,
                method=r.request.method,
                download_size=r.download_size,
                **additional_metrics,
            )

        ctx.http = _FloorSession(response_callback)
        result = await func(ctx, *args, **kwargs)
        del ctx.http
        return result

    return run


if VARIANT == "floor":
    http_decorator = _floor_decorator


# ---------------------------------------------------------------------------------------------
# phases (shared by the journeys and the processor: one process)


class _State:
    t0: float | None = None  # monotonic time of the first journey
    started = 0  # journeys started


def _phase() -> str:
    if _State.t0 is None:
        _State.t0 = time.monotonic()
    elapsed = time.monotonic() - _State.t0
    if elapsed < WARMUP:
        return "w"
    if elapsed < WARMUP + WINDOW:
        return "t"
    return "d"


class BadResponse(Exception):
    pass


@http_decorator
async def journey(ctx: Any) -> None:
    phase = _phase()
    _State.started += 1
    if phase == "d":
        # After the window: no more requests, only wait for mite's volume model to stop.
        await asyncio.sleep(0.05)
        return
    url = f"{URL}?p={TAG}.{phase}"
    if MODE == "unpaced":
        await _requests(ctx, url)
        return
    if _State.started <= VOLUME:
        # The first journey of each slot starts at a random point of one separation, so
        # the slots are spread over the period instead of starting in one wave.
        await asyncio.sleep(random.uniform(0, SEPARATION))
    async with ensure_fixed_separation(SEPARATION):
        await _requests(ctx, url)


async def _requests(ctx: Any, url: str) -> None:
    for _ in range(REQUESTS_PER_JOURNEY):
        r = await ctx.http.get(url)
        if r.status_code != 200:
            raise BadResponse(f"status {r.status_code}")


def scenario() -> list[tuple[str, Any, Any]]:
    # Runs a little past the window; the journeys of the tail send nothing.
    return [("mite_scenario:journey", None, Constant(duration=WARMUP + WINDOW + 0.2, tps=VOLUME))]


# ---------------------------------------------------------------------------------------------
# the counting message processor


class _GcClock:
    """Time spent in the cyclic GC and collections per generation (gc.callbacks): mite's
    process holds large heaps, and every collection walks what it tracks."""

    seconds = 0.0
    collections = [0, 0, 0]
    _t = 0.0

    @classmethod
    def callback(cls, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            cls._t = time.perf_counter()
        else:
            cls.seconds += time.perf_counter() - cls._t
            cls.collections[info["generation"]] += 1


gc.callbacks.append(_GcClock.callback)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


class BenchCounter:
    """Counts `http_metrics` (all, and per phase tag of the URL), journeys (`txn` of
    `__root__`) and errors; reads CPU, wall time and counts at the window's two ends."""

    def __init__(self, opts: Any) -> None:
        self.requests = 0
        self.bad_status = 0
        self.by_phase: dict[str, int] = {}
        self.journeys = 0
        self.errors = 0
        self.first_error = ""
        self.versions: dict[str, int] = {}
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None

    def _snapshot(self) -> dict[str, Any]:
        return {
            "cpu": _cpu(),
            "wall": time.monotonic(),
            "requests": self.requests,
            "journeys": self.journeys,
            "gc_s": _GcClock.seconds,
            "gc_collections": list(_GcClock.collections),
        }

    def process_message(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "http_metrics":
            self.requests += 1
            if msg["response_code"] != 200:
                self.bad_status += 1
            phase = msg["effective_url"].rpartition(".")[2]
            self.by_phase[phase] = self.by_phase.get(phase, 0) + 1
            version = msg.get("http_version")  # acurl_rs.mite's addition
            if version is not None:
                self.versions[version] = self.versions.get(version, 0) + 1
        elif kind == "txn":
            if msg.get("transaction") == "__root__":
                self.journeys += 1
        elif kind in ("error", "exception"):
            self.errors += 1
            if not self.first_error:
                self.first_error = f"{msg.get('ex_type')}: {msg.get('message')}"[:300]
        t0 = _State.t0
        if t0 is None or self.end is not None:
            return
        elapsed = time.monotonic() - t0
        if self.start is None:
            if elapsed >= WARMUP:
                self.start = self._snapshot()
        elif elapsed >= WARMUP + WINDOW:
            self.end = self._snapshot()
            self.end["fds"] = len(os.listdir("/proc/self/fd"))
            self.end.update(_proc_status())

    def close(self) -> None:
        data: dict[str, Any] = {
            "variant": VARIANT,
            "mode": MODE,
            "requests_total": self.requests,
            "by_phase": self.by_phase,
            "journeys_total": self.journeys,
            "journeys_started": _State.started,
            "bad_status": self.bad_status,
            "errors": self.errors,
            "first_error": self.first_error,
            "versions": self.versions,
            "start": self.start,
            "end": self.end,
            "cpu_total_s": _cpu(),
        }
        if self.start and self.end:
            n = self.end["requests"] - self.start["requests"]
            wall = self.end["wall"] - self.start["wall"]
            cpu = self.end["cpu"] - self.start["cpu"]
            data |= {
                "window_requests": n,
                "window_journeys": self.end["journeys"] - self.start["journeys"],
                "window_s": wall,
                "window_cpu_s": cpu,
                "cpu_us_per_req": cpu / n * 1e6 if n else None,
                "rps": n / wall if wall else None,
                "cpu_share": cpu / wall if wall else None,
                "fds": self.end["fds"],
                "rss_kib": self.end.get("VmRSS"),
                "hwm_kib": self.end.get("VmHWM"),
                "threads": self.end.get("Threads"),
                "gc_us_per_req": (self.end["gc_s"] - self.start["gc_s"]) / n * 1e6 if n else None,
                "gc_collections_per_1k_req": [
                    (e - b) * 1000 / n
                    for b, e in zip(
                        self.start["gc_collections"], self.end["gc_collections"], strict=True
                    )
                ]
                if n
                else None,
            }
        with open(OUT, "w") as fh:
            json.dump(data, fh)
