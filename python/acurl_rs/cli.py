"""`acurl-rs` / `python -m acurl_rs`: a small HTTP load generator over acurl_rs.

With no URL it starts an embedded loopback target (see `_target.py`), so it works anywhere.
Two load models:

- closed (default): C workers, each sending its next request when the last one is answered.
  Throughput adapts to the server; latency is per request.
- open (`--rate R`): a request is launched on schedule every 1/R s as its own task, whether or
  not earlier ones are answered, and its latency is measured from when it was *due*. A slow
  server therefore shows up as latency instead of silently lowering the offered load
  (no coordinated omission).

`-P N` runs the load from N worker processes (each its own event loop and CurlWrapper) and
merges what they measured into one report; see `_processes.py`.

Exit status: 0 when at least one request got an HTTP response, 1 when none did (or the run
could not start, or a worker process failed), 2 for bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import re
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import CurlWrapper
from ._report import (
    PlotUnavailableError,
    RunStats,
    build_report,
    format_text,
    load_pyplot,
    write_plot,
)
from ._target import EmbeddedTarget
from .errors import AcurlError
from .session import Session

PROG = "acurl-rs"
DEFAULT_REQUESTS = 10_000
DEFAULT_CONCURRENCY = 10
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_CONNECTION_SCOPE = "wrapper"
# With no answer at all after this many failures the target is down: stop instead of
# hammering it for the rest of the run.
ABORT_AFTER_FAILURES = 100
PROGRESS_INTERVAL_S = 0.25
PLAIN_PROGRESS_INTERVAL_S = 1.0
EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
# RFC 9110 token characters: what a header name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class UsageError(Exception):
    """Bad arguments: reported as one line, exit status 2."""


class RunError(Exception):
    """The run could not be done: reported as one line, exit status 1."""


@dataclass(frozen=True)
class RunConfig:
    url: str | None  # None: start the embedded target and use its URL.
    requests: int | None
    duration: float | None
    concurrency: int
    rate: float | None
    sessions: int
    http_version: str
    method: str
    headers: tuple[tuple[str, str], ...]
    data: bytes | None
    verify: bool | str
    connection_scope: str
    timeout: float
    loop: str
    json_output: bool
    plot_path: str | None
    progress: bool
    processes: int = 1

    @property
    def model(self) -> str:
        return "open" if self.rate is not None else "closed"

    def open_model_total(self) -> int:
        """How many requests the open model launches: -n, or rate x duration."""
        assert self.rate is not None
        if self.requests is not None:
            return self.requests
        assert self.duration is not None
        return max(1, math.ceil(self.rate * self.duration))


# -- arguments ------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: the brief says a bad argument is one clear line.
        raise UsageError(message)


def _positive(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or (isinstance(value, float) and math.isinf(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    parse.__name__ = what
    return parse


positive_int = _positive(int, "whole number")
positive_float = _positive(float, "number")


def processes_arg(text: str) -> int | str:
    """`-P`: a positive whole number, or "auto" (one process per usable core)."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number or 'auto', got {text!r}")
    return value


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="HTTP load generator over acurl_rs (libcurl). With no URL it runs "
        "against an embedded loopback server.",
    )
    parser.add_argument("url", nargs="?", help="http:// or https:// URL (default: embedded target)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument(
        "-n",
        "--requests",
        metavar="N",
        type=positive_int,
        help=f"requests to send (default {DEFAULT_REQUESTS})",
    )
    amount.add_argument(
        "-d", "--duration", metavar="SECONDS", type=positive_float, help="run for this long"
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        metavar="C",
        type=positive_int,
        help=f"closed model: concurrent workers (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--rate",
        metavar="R",
        type=positive_float,
        help="open model: launch R requests/s on a fixed schedule",
    )
    parser.add_argument(
        "--sessions",
        metavar="K",
        type=positive_int,
        default=1,
        help="spread the load over K sessions, each its own virtual user (default 1)",
    )
    version = parser.add_mutually_exclusive_group()
    version.add_argument(
        "--http1.1", dest="http_version", action="store_const", const="1.1", help="HTTP/1.1 only"
    )
    version.add_argument(
        "--http2",
        dest="http_version",
        action="store_const",
        const="2",
        help="HTTP/2, negotiated with ALPN over TLS",
    )
    version.add_argument(
        "--http2-prior-knowledge",
        dest="http_version",
        action="store_const",
        const="2-prior-knowledge",
        help="HTTP/2 without negotiation (cleartext h2c)",
    )
    parser.set_defaults(http_version="auto")
    parser.add_argument("-X", "--method", help="request method (default GET, or POST with --data)")
    parser.add_argument(
        "-H", "--header", metavar="'K: V'", action="append", default=[], help="repeatable"
    )
    parser.add_argument(
        "--data", metavar="DATA|@FILE", help="request body; @FILE reads it from a file"
    )
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("-k", "--insecure", action="store_true", help="skip TLS verification")
    tls.add_argument("--cacert", metavar="FILE", help="CA bundle (PEM) to verify the server with")
    parser.add_argument(
        "-P",
        "--processes",
        metavar="N|auto",
        type=processes_arg,
        default=1,
        help="worker processes, each with its own event loop; -n, -c, --rate and --sessions "
        "are split between them (default 1; auto: one per core)",
    )
    parser.add_argument(
        "--connection-scope",
        choices=("session", "wrapper"),
        default=DEFAULT_CONNECTION_SCOPE,
        help="connections shared by all the sessions of a process (wrapper, the default: "
        "acurl's model) or a pool per session",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        help=f"per-request timeout in seconds (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="event loop (auto: uvloop when installed)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as one JSON document on stdout"
    )
    parser.add_argument("--plot", metavar="FILE.png", help="write latency and throughput plots")
    parser.add_argument(
        "--no-progress",
        action="store_true",
        help="no live progress (it is only shown when stdout and stderr are terminals)",
    )
    return parser


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme:
            raise UsageError(f"bad URL {url!r}: no scheme, use http:// or https://")
        raise UsageError(f"bad URL {url!r}: {parts.scheme}:// is not http:// or https://")
    try:
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        raise UsageError(f"bad URL {url!r}: invalid port") from None
    if not parts.hostname:
        raise UsageError(f"bad URL {url!r}: no host")
    if any(c.isspace() for c in url):
        raise UsageError(f"bad URL {url!r}: contains whitespace")
    return url


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not _HEADER_NAME.match(name):
        raise UsageError(f"bad header {text!r}: expected 'Name: value'")
    if "\r" in value or "\n" in value:
        raise UsageError(f"bad header {text!r}: line breaks are not allowed in a value")
    return name, value.strip()


def _read_data(data: str | None) -> bytes | None:
    if data is None:
        return None
    if not data.startswith("@"):
        return data.encode()
    path = data[1:]
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise UsageError(f"--data {data}: {exc.strerror or exc}") from None


def _verify_setting(args: argparse.Namespace) -> bool | str:
    if args.insecure:
        return False
    if args.cacert is not None:
        if not os.path.isfile(args.cacert):
            raise UsageError(f"--cacert {args.cacert}: no such file")
        return args.cacert
    return True


def _check_plot_path(path: str | None) -> str | None:
    if path is not None and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise UsageError(f"--plot {path}: its directory does not exist")
    return path


def _method(args: argparse.Namespace) -> str:
    method = args.method or ("POST" if args.data is not None else "GET")
    if not _HEADER_NAME.match(method):
        raise UsageError(f"bad method {method!r}")
    return method.upper()


def _stdio_are_terminals() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def parse_config(argv: Sequence[str] | None) -> RunConfig:
    args = build_parser().parse_args(argv)
    if args.rate is not None and args.concurrency is not None:
        raise UsageError(
            "-c and --rate do not mix: --rate launches every request on schedule, "
            "however many are in flight"
        )
    concurrency = args.concurrency or DEFAULT_CONCURRENCY
    if args.rate is None and args.sessions > concurrency:
        raise UsageError(f"--sessions {args.sessions} is more than the {concurrency} workers")
    requests = args.requests
    if requests is None and args.duration is None:
        requests = DEFAULT_REQUESTS
    config = RunConfig(
        url=_check_url(args.url) if args.url is not None else None,
        requests=requests,
        duration=args.duration,
        concurrency=concurrency,
        rate=args.rate,
        sessions=args.sessions,
        http_version=args.http_version,
        method=_method(args),
        headers=tuple(_parse_header(h) for h in args.header),
        data=_read_data(args.data),
        verify=_verify_setting(args),
        connection_scope=args.connection_scope,
        timeout=args.timeout,
        loop=args.loop,
        json_output=args.json,
        plot_path=_check_plot_path(args.plot),
        progress=not args.no_progress and _stdio_are_terminals(),
    )
    return dataclasses.replace(config, processes=_check_processes(args.processes, config))


def _check_processes(asked: int | str, config: RunConfig) -> int:
    """Every process needs at least one worker (closed model) and one request: `auto` is
    capped to that, an explicit count is refused beyond it."""
    if config.rate is None:
        limits = [(config.concurrency, f"the {config.concurrency} workers (-c)")]
        if config.requests is not None:
            limits.append((config.requests, f"the {config.requests} requests (-n)"))
    else:
        total = config.open_model_total()
        source = "-n" if config.requests is not None else "--rate x -d"
        limits = [(total, f"the {total} requests ({source})")]
    if asked == "auto":
        return max(1, min([usable_cores()] + [limit for limit, _ in limits]))
    assert isinstance(asked, int)
    for limit, what in limits:
        if asked > limit:
            raise UsageError(f"-P {asked} is more than {what}: each process needs one")
    return asked


# -- progress -------------------------------------------------------------------------------


class _RecentRate:
    """Completions per second over the last ~second: steadier than one tick, fresher than
    the run's average."""

    def __init__(self, window: int) -> None:
        self._samples: deque[tuple[float, int]] = deque(maxlen=window)

    def update(self, now: float, completed: int) -> float:
        self._samples.append((now, completed))
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0


class _Progress:
    """Shown on stderr while the run goes: rich's bar, or a plain line each second."""

    interval = PLAIN_PROGRESS_INTERVAL_S

    def __init__(self, config: RunConfig) -> None:
        self._config = config
        self._rate = _RecentRate(window=max(2, round(1.0 / self.interval) + 1))

    def _fraction(self, elapsed: float, completed: int) -> float:
        config = self._config
        if config.requests is not None:
            return completed / config.requests
        assert config.duration is not None
        return min(elapsed / config.duration, 1.0)

    def start(self) -> None:
        pass

    def update(self, elapsed: float, completed: int, failed: int) -> None:
        rate = self._rate.update(elapsed, completed)
        done = f"{100 * self._fraction(elapsed, completed):3.0f}%"
        print(
            f"{PROG}: {done} {completed} requests, {rate:.0f} req/s, {failed} errors",
            file=sys.stderr,
            flush=True,
        )

    def stop(self) -> None:
        pass


class _RichProgress(_Progress):
    interval = PROGRESS_INTERVAL_S

    def __init__(self, config: RunConfig) -> None:
        super().__init__(config)
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        # Refreshed by our own tick, not rich's thread: one less thread taking the GIL.
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[completed_requests]} requests"),
            TextColumn("[cyan]{task.fields[rate]:.0f} req/s"),
            TextColumn("[red]{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            auto_refresh=False,
        )
        self._task = self._bar.add_task(PROG, total=1.0, completed_requests=0, rate=0.0, errors=0)

    def start(self) -> None:
        self._bar.start()

    def update(self, elapsed: float, completed: int, failed: int) -> None:
        self._bar.update(
            self._task,
            completed=self._fraction(elapsed, completed),
            completed_requests=completed,
            rate=self._rate.update(elapsed, completed),
            errors=failed,
        )
        self._bar.refresh()

    def stop(self) -> None:
        self._bar.stop()


def _make_progress(config: RunConfig) -> _Progress | None:
    if not config.progress:
        return None
    try:
        return _RichProgress(config)
    except ImportError:
        return _Progress(config)


# -- the run --------------------------------------------------------------------------------


class _Run:
    """One load run against `url`: sessions, the chosen load model, and the stop conditions
    (requests or duration used up, Ctrl-C, or a target that answers nothing)."""

    def __init__(self, config: RunConfig, url: str, stats: RunStats, *, phase: float = 0.0) -> None:
        self.config = config
        self.url = url
        self.stats = stats
        # Open model: how long after the start this run's first request is due (a worker
        # process takes every Nth slot of the whole run's schedule).
        self.phase = phase
        self.stop_reason: str | None = None
        # time.monotonic() at the start: one clock for all the processes of a run.
        self.started_monotonic = 0.0
        # This process's CPU time over the same span as the elapsed time.
        self.cpu_s = 0.0
        self._stop = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._crash: BaseException | None = None
        self._started = 0.0
        self._request_kwargs: dict[str, Any] = {
            "headers": list(config.headers),
            "data": config.data,
            # One transfer per request, so status counts are what the server said.
            "allow_redirects": False,
        }

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    async def execute(self) -> float:
        """Runs the load and returns the seconds from the first request to the last answer."""
        config = self.config
        async with CurlWrapper(max_connects=self._connection_cache_size()) as wrapper:
            sessions = [
                wrapper.session(
                    http_version=config.http_version,
                    connection_scope=config.connection_scope,
                    verify=config.verify,
                    timeout=config.timeout,
                )
                for _ in range(config.sessions)
            ]
            try:
                self._started = time.perf_counter()
                self.started_monotonic = time.monotonic()
                cpu_before = time.process_time()
                if config.rate is not None:
                    await self._open_model(sessions, config.rate)
                else:
                    await self._closed_model(sessions)
                self.cpu_s = time.process_time() - cpu_before
                return time.perf_counter() - self._started
            finally:
                for session in sessions:
                    session.close()

    def _connection_cache_size(self) -> int:
        # Enough cached connections that HTTP/1.1 workers are not forced to reconnect.
        return max(100, self.config.concurrency if self.config.rate is None else 0)

    async def _send(self, session: Session, due: float) -> None:
        """Sends one request; its latency runs from `due`, not from when it actually left."""
        try:
            response = await session.request(self.config.method, self.url, **self._request_kwargs)
        except AcurlError as error:
            self.stats.record_error(error, time.perf_counter() - self._started)
            if self.stats.succeeded == 0 and self.stats.failed >= ABORT_AFTER_FAILURES:
                self.stop(f"the first {self.stats.failed} requests all failed")
        else:
            now = time.perf_counter()
            self.stats.record_response(response, now - due, now - self._started)

    async def _closed_model(self, sessions: list[Session]) -> None:
        config = self.config
        remaining = config.requests
        deadline = None if config.duration is None else self._started + config.duration

        def may_send() -> bool:
            nonlocal remaining
            if self._stop.is_set():
                return False
            if deadline is not None and time.perf_counter() >= deadline:
                return False
            if remaining is not None:
                if remaining == 0:
                    return False
                remaining -= 1
            return True

        async def worker(session: Session) -> None:
            while may_send():
                await self._send(session, time.perf_counter())

        await asyncio.gather(
            *(worker(sessions[i % len(sessions)]) for i in range(config.concurrency))
        )

    async def _open_model(self, sessions: list[Session], rate: float) -> None:
        total = self.config.open_model_total()
        launched = 0
        while launched < total and not self._stop.is_set():
            # Launch everything that is due by now: at high rates one wake-up covers several
            # requests, and a late wake-up does not lose any (each keeps its own due time).
            since_first = time.perf_counter() - self._started - self.phase
            due_by_now = 0 if since_first < 0 else min(total, int(since_first * rate) + 1)
            while launched < due_by_now:
                due = self._started + self.phase + launched / rate
                task = asyncio.create_task(self._send(sessions[launched % len(sessions)], due))
                self._in_flight.add(task)
                task.add_done_callback(self._launched_task_done)
                launched += 1
            next_due = self._started + self.phase + launched / rate
            # Short naps so Ctrl-C is noticed even at a low rate.
            await asyncio.sleep(min(max(next_due - time.perf_counter(), 0.0), 0.1))
        if self._in_flight:
            await asyncio.gather(*self._in_flight)
        if self._crash is not None:
            raise self._crash

    def _launched_task_done(self, task: asyncio.Task[None]) -> None:
        # Finished tasks are dropped at once (a long run launches millions), so a bug in one
        # must be caught here or it would only surface as a log line at exit.
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            self._crash = task.exception()
            self.stop("crashed")

    async def show_progress(self, progress: _Progress) -> None:
        progress.start()
        try:
            while True:
                await asyncio.sleep(progress.interval)
                self._show(progress)
        finally:
            progress.stop()

    def _show(self, progress: _Progress) -> None:
        elapsed = time.perf_counter() - self._started if self._started else 0.0
        progress.update(elapsed, self.stats.completed, self.stats.failed)


async def _run_with_progress(run: _Run) -> float:
    """The run, plus the progress display and a Ctrl-C handler that stops it gracefully."""
    loop = asyncio.get_running_loop()

    def on_interrupt() -> None:
        # First Ctrl-C: finish the requests in flight and report. A second one interrupts.
        run.stop("interrupted")
        loop.remove_signal_handler(signal.SIGINT)

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    progress = _make_progress(run.config)
    display = asyncio.create_task(run.show_progress(progress)) if progress else None
    try:
        return await run.execute()
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if display is not None:
            display.cancel()
            await asyncio.gather(display, return_exceptions=True)


def _run_event_loop(main: Coroutine[Any, Any, float], loop_name: str) -> tuple[float, str]:
    if loop_name != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop_name == "uvloop":
                main.close()
                raise RunError(
                    "--loop uvloop needs uvloop: pip install 'acurl_rs[uvloop]'"
                ) from None
        else:
            return uvloop.run(main), "uvloop"
    return asyncio.run(main), "asyncio"


# -- reporting ------------------------------------------------------------------------------

# A process counts as saturated from this share of a core, the machine from this share of all
# its cores: then the report's note says what set the rate.
BUSY = 0.9
# Shorter runs get no note: CPU times come in 10 ms ticks, too coarse for them.
NOTE_MIN_ELAPSED_S = 0.5


@dataclass(frozen=True)
class RunOutcome:
    """What a run measured, from one process or merged from several."""

    stats: RunStats
    elapsed: float
    loop_name: str
    stop_reason: str | None
    per_process: list[dict[str, Any]]
    client_cpu_s: float
    sessions: int


def process_summary(
    index: int,
    url: str,
    share: RunConfig,
    *,
    succeeded: int,
    failed: int,
    elapsed: float,
    cpu_s: float,
    stop_reason: str | None,
) -> dict[str, Any]:
    """One entry of the report's `per_process`: what that process was given and did."""
    completed = succeeded + failed
    return {
        "process": index + 1,
        "url": url,
        "concurrency": share.concurrency if share.rate is None else None,
        "rate": share.rate,
        "sessions": share.sessions,
        "requests": completed,
        "succeeded": succeeded,
        "failed": failed,
        "elapsed_s": round(elapsed, 6),
        "requests_per_second": round(completed / elapsed, 2) if elapsed > 0 else 0.0,
        "cpu_s": round(cpu_s, 3),
        "stopped_early": stop_reason,
    }


def _run_description(config: RunConfig, url: str, outcome: RunOutcome) -> dict[str, Any]:
    return {
        "url": url,
        "embedded_target": config.url is None,
        "method": config.method,
        "model": config.model,
        "concurrency": config.concurrency if config.rate is None else None,
        "rate": config.rate,
        "sessions": outcome.sessions,
        "processes": config.processes,
        "connection_scope": config.connection_scope,
        "http_version": config.http_version,
        "loop": outcome.loop_name,
    }


class _TargetCpu:
    """CPU the embedded target processes use over the run (None: no target, or no /proc)."""

    def __init__(self, targets: list[EmbeddedTarget]) -> None:
        self._targets = targets
        self._before: list[float] | None = None
        self.used: list[float] | None = None

    def _read(self) -> list[float] | None:
        values = [target.cpu_seconds() for target in self._targets]
        if not values or any(value is None for value in values):
            return None
        return [value for value in values if value is not None]

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> None:
        after = self._read()
        if self._before is not None and after is not None:
            self.used = [b - a for a, b in zip(self._before, after, strict=True)]


def _cpu_report(outcome: RunOutcome, target_cpu: list[float] | None) -> dict[str, Any]:
    elapsed = outcome.elapsed
    cpu: dict[str, Any] = {
        "cores": usable_cores(),
        "client_s": round(outcome.client_cpu_s, 3),
        "target_s": None,
        "target_busiest": None,
    }
    if target_cpu is not None and elapsed > 0:
        cpu["target_s"] = round(sum(target_cpu), 3)
        cpu["target_busiest"] = round(max(target_cpu) / elapsed, 3)
    return cpu


def _bottleneck_note(
    cpu: dict[str, Any], per_process: list[dict[str, Any]], elapsed: float
) -> str | None:
    """What set the rate, when the CPU figures say so: the embedded target, the machine the
    client shares with it, or the client's own processes."""
    if elapsed < NOTE_MIN_ELAPSED_S:
        return None
    elsewhere = "load a server on another machine"
    if cpu["target_busiest"] is not None and cpu["target_busiest"] >= BUSY:
        return (
            f"the embedded target was busy {cpu['target_busiest']:.0%} of the run: it set the "
            f"rate, not the client ({elsewhere})"
        )
    if cpu["target_s"] is not None:
        used = cpu["client_s"] + cpu["target_s"]
        if used / elapsed >= BUSY * cpu["cores"]:
            return (
                f"client and embedded target kept the {cpu['cores']} cores busy, "
                f"{cpu['target_s'] / used:.0%} of it the target: the machine set the rate "
                f"({elsewhere})"
            )
    busiest = max(
        (entry["cpu_s"] / entry["elapsed_s"] for entry in per_process if entry["elapsed_s"]),
        default=0.0,
    )
    if busiest >= BUSY:
        return (
            f"the client's busiest process used {busiest:.0%} of a core: it set the rate "
            f"(-P spreads the load, {cpu['cores']} cores here)"
        )
    return None


def _failure_summary(report: dict[str, Any]) -> str:
    if report["requests"] == 0:
        return "no request completed"
    first = report["errors"][0]
    return (
        f"all {report['failed']} requests failed, e.g. {first['category']} error "
        f"(curl code {first['curl_code']}): {first['example']}"
    )


def _emit(report: dict[str, Any], config: RunConfig, stats: RunStats) -> int:
    if config.json_output:
        print(json.dumps(report, indent=2))
    else:
        print(format_text(report))
    if config.plot_path is not None:
        try:
            write_plot(config.plot_path, report, stats)
        except OSError as exc:
            raise RunError(f"--plot {config.plot_path}: {exc.strerror or exc}") from None
        if not config.json_output:
            print(f"Plot           {config.plot_path}")
    if report.get("stopped_early") == "interrupted":
        return EXIT_INTERRUPTED
    if report["succeeded"] == 0:
        print(f"{PROG}: error: {_failure_summary(report)}", file=sys.stderr)
        return EXIT_RUN_FAILED
    return EXIT_OK


@contextlib.contextmanager
def _target_urls(config: RunConfig) -> Iterator[tuple[list[str], list[EmbeddedTarget]]]:
    """The URLs to load: the user's, or for as long as the run lasts one embedded target per
    process (one per worker, so the target scales with the client)."""
    if config.url is not None:
        yield [config.url], []
        return
    targets = [EmbeddedTarget() for _ in range(config.processes)]
    try:
        try:
            for target in targets:
                target.launch()
            for target in targets:
                target.wait_ready()
        except (OSError, RuntimeError) as exc:
            raise RunError(f"could not start the embedded target: {exc}") from None
        yield [target.url for target in targets], targets
    finally:
        for target in targets:
            target.stop()


def _check_loop(loop_name: str) -> None:
    """Before any worker starts: --loop uvloop without uvloop is refused once, here."""
    if loop_name == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise RunError("--loop uvloop needs uvloop: pip install 'acurl_rs[uvloop]'") from None


def _run_here(config: RunConfig, url: str, target_cpu: _TargetCpu) -> RunOutcome:
    """The run in this process (-P 1)."""
    stats = RunStats(keep_timeline=config.plot_path is not None)
    load = _Run(config, url, stats)
    target_cpu.start()
    elapsed, loop_name = _run_event_loop(_run_with_progress(load), config.loop)
    client_cpu = load.cpu_s
    summary = process_summary(
        0,
        url,
        config,
        succeeded=stats.succeeded,
        failed=stats.failed,
        elapsed=elapsed,
        cpu_s=client_cpu,
        stop_reason=load.stop_reason,
    )
    return RunOutcome(
        stats=stats,
        elapsed=elapsed,
        loop_name=loop_name,
        stop_reason=load.stop_reason,
        per_process=[summary],
        client_cpu_s=client_cpu,
        sessions=config.sessions,
    )


def run(config: RunConfig) -> int:
    if config.plot_path is not None:
        load_pyplot()  # Fail before the run, not after it, when matplotlib is missing.
    _check_loop(config.loop)
    with _target_urls(config) as (urls, targets):
        target_cpu = _TargetCpu(targets)
        if config.processes == 1:
            outcome = _run_here(config, urls[0], target_cpu)
        else:
            from ._processes import run_processes

            outcome = run_processes(config, urls, on_start=target_cpu.start)
        target_cpu.stop()
    report = build_report(
        _run_description(config, urls[0], outcome), outcome.stats, outcome.elapsed
    )
    report["stopped_early"] = outcome.stop_reason
    report["per_process"] = outcome.per_process
    report["cpu"] = _cpu_report(outcome, target_cpu.used)
    report["note"] = _bottleneck_note(report["cpu"], outcome.per_process, outcome.elapsed)
    return _emit(report, config, outcome.stats)


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (and exits with it via __main__)."""
    try:
        config = parse_config(argv)
    except UsageError as exc:
        print(f"{PROG}: error: {exc} (see {PROG} --help)", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(config)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RunError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_RUN_FAILED
    except PlotUnavailableError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except Exception as exc:  # Never a traceback for the user: one line naming the failure.
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
