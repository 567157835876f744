"""`acurl-rs` / `python -m acurl_rs`: a small HTTP load generator over acurl_rs.

With no URL it starts an embedded loopback target (see `_target.py`), so it works anywhere.
Two load models:

- closed (default): C workers, each sending its next request when the last one is answered.
  Throughput adapts to the server; latency is per request.
- open (`--rate R`): a request is launched on schedule every 1/R s as its own task, whether or
  not earlier ones are answered, and its latency is measured from when it was *due*. A slow
  server therefore shows up as latency instead of silently lowering the offered load
  (no coordinated omission).

Exit status: 0 when at least one request got an HTTP response, 1 when none did (or the run
could not start), 2 for bad arguments, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
        "--connection-scope",
        choices=("session", "wrapper"),
        default="session",
        help="connections per session (each its own pool) or shared by all sessions",
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
    return RunConfig(
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

    def __init__(self, config: RunConfig, url: str, stats: RunStats) -> None:
        self.config = config
        self.url = url
        self.stats = stats
        self.stop_reason: str | None = None
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
                if config.rate is not None:
                    await self._open_model(sessions, config.rate)
                else:
                    await self._closed_model(sessions)
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
            due_by_now = min(total, int((time.perf_counter() - self._started) * rate) + 1)
            while launched < due_by_now:
                due = self._started + launched / rate
                task = asyncio.create_task(self._send(sessions[launched % len(sessions)], due))
                self._in_flight.add(task)
                task.add_done_callback(self._launched_task_done)
                launched += 1
            next_due = self._started + launched / rate
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


def _run_description(config: RunConfig, url: str, loop_name: str) -> dict[str, Any]:
    return {
        "url": url,
        "embedded_target": config.url is None,
        "method": config.method,
        "model": config.model,
        "concurrency": config.concurrency if config.rate is None else None,
        "rate": config.rate,
        "sessions": config.sessions,
        "connection_scope": config.connection_scope,
        "http_version": config.http_version,
        "loop": loop_name,
    }


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
def _target_url(config: RunConfig) -> Iterator[str]:
    """The URL to load: the user's, or the embedded target's for as long as the run lasts."""
    if config.url is not None:
        yield config.url
        return
    target = EmbeddedTarget()
    try:
        target.start()
    except (OSError, RuntimeError) as exc:
        raise RunError(f"could not start the embedded target: {exc}") from None
    try:
        yield target.url
    finally:
        target.stop()


def run(config: RunConfig) -> int:
    if config.plot_path is not None:
        load_pyplot()  # Fail before the run, not after it, when matplotlib is missing.
    stats = RunStats(keep_timeline=config.plot_path is not None)
    with _target_url(config) as url:
        load = _Run(config, url, stats)
        elapsed, loop_name = _run_event_loop(_run_with_progress(load), config.loop)
    report = build_report(_run_description(config, url, loop_name), stats, elapsed)
    report["stopped_early"] = load.stop_reason
    return _emit(report, config, stats)


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
