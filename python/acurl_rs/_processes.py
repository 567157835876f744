"""`-P N`: the load from N worker processes, merged into one report.

Why processes: one event loop drives acurl_rs from one core, however many cores there are.
Each worker is a fresh interpreter (the `spawn` start method: nothing curl- or loop-related is
ever inherited through fork) with its own event loop, `CurlWrapper` and sessions, running the
same `_Run` as a single-process run on its share of the load:

- `-n`, `-c` and `--sessions` are split as evenly as whole numbers allow; the remainder goes
  one each to the first processes (10 requests over 3 processes: 4, 3, 3). A process always
  has at least one session, so `--sessions 1 -P 2` runs two.
- `--rate R`: each process runs R/N on every Nth slot of the one schedule (process i launches
  requests i, i+N, i+2N, ... due at those times), so together they keep the single-process
  schedule exactly; `-d` sets that schedule's total (R x d) before it is split.
- `-d` alone: every process runs for the whole duration.

The parent only coordinates. Over one pipe per worker it hears "ready" (imported, about to
start), sends "go" once all are ready (so they start together and the start-up of the
interpreters is not counted), receives progress counts a few times a second for the progress
bar, and finally the worker's counts: HDR histograms in their encoded form, counters, and
completion times for the plot, which it merges (timelines shifted by each worker's start on the
shared monotonic clock).

Stopping: workers ignore SIGINT (it reaches the whole process group from a terminal); the
parent takes the Ctrl-C and sends "stop", so every worker finishes its requests in flight and
reports, as a single-process run does. A second Ctrl-C, SIGTERM, or a worker that fails or dies
makes the parent terminate the others (SIGTERM, then SIGKILL) and exit non-zero. A worker whose
parent disappears (killed outright) exits by itself within a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from ._report import RunStats, hdr_available
from .cli import (
    PROG,
    RunConfig,
    RunError,
    RunOutcome,
    UsageError,
    _make_progress,
    _Run,
    _run_event_loop,
    process_summary,
)

# How often a worker checks its pipe and its parent, and reports progress.
WORKER_TICK_S = 0.1
STARTUP_TIMEOUT_S = 60.0
TERMINATE_GRACE_S = 2.0


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` whole shares, the remainder one each to the first shares."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


@dataclasses.dataclass(frozen=True)
class WorkerJob:
    """What one worker process runs: its share of the run, as a config of its own."""

    index: int
    config: RunConfig
    url: str
    phase: float  # open model: when its first request is due, after the common start
    keep_timeline: bool
    hdr: bool
    parent_pid: int


def worker_jobs(config: RunConfig, urls: list[str]) -> list[WorkerJob]:
    """Splits `config` between `config.processes` workers; worker i loads urls[i % len]."""
    n = config.processes
    # What only the parent does (progress, plot, output) is off in the workers' configs.
    solo = dataclasses.replace(
        config, processes=1, progress=False, plot_path=None, json_output=False
    )
    sessions = [max(1, share) for share in split_evenly(config.sessions, n)]
    shares: list[tuple[RunConfig, float]] = []
    if config.rate is None:
        concurrency = split_evenly(config.concurrency, n)
        requests: list[int | None] = [None] * n
        if config.requests is not None:
            requests = list(split_evenly(config.requests, n))
        for i in range(n):
            share = dataclasses.replace(
                solo, concurrency=concurrency[i], requests=requests[i], sessions=sessions[i]
            )
            shares.append((share, 0.0))
    else:
        rate = config.rate
        totals = split_evenly(config.open_model_total(), n)
        for i in range(n):
            share = dataclasses.replace(
                solo, rate=rate / n, requests=totals[i], duration=None, sessions=sessions[i]
            )
            shares.append((share, i / rate))
    hdr = hdr_available()
    return [
        WorkerJob(
            index=i,
            config=share,
            url=urls[i % len(urls)],
            phase=phase,
            keep_timeline=config.plot_path is not None,
            hdr=hdr,
            parent_pid=os.getpid(),
        )
        for i, (share, phase) in enumerate(shares)
    ]


# -- the worker side ------------------------------------------------------------------------


def _orphaned(job: WorkerJob) -> bool:
    return os.getppid() != job.parent_pid


def _wait_for_go(conn: Connection, job: WorkerJob) -> bool:
    """True on "go"; False on "stop". Exits at once when the parent is gone."""
    while True:
        if conn.poll(WORKER_TICK_S):
            try:
                message = conn.recv()
            except EOFError:
                os._exit(1)
            if message == "go":
                return True
            if message == "stop":
                return False
        elif _orphaned(job):
            os._exit(1)


async def _tick(run: _Run, conn: Connection, job: WorkerJob) -> None:
    """Progress to the parent, "stop" from it, and an exit if the parent went away."""
    while True:
        await asyncio.sleep(WORKER_TICK_S)
        if _orphaned(job):
            os._exit(1)
        try:
            while conn.poll():
                if conn.recv() == "stop":
                    run.stop("interrupted")
            conn.send(("progress", run.stats.completed, run.stats.failed))
        except (EOFError, OSError):
            os._exit(1)


async def _run_with_tick(run: _Run, conn: Connection, job: WorkerJob) -> float:
    tick = asyncio.create_task(_tick(run, conn, job))
    try:
        return await run.execute()
    finally:
        tick.cancel()
        await asyncio.gather(tick, return_exceptions=True)


def _execute(job: WorkerJob, conn: Connection) -> dict[str, Any]:
    stats = RunStats(keep_timeline=job.keep_timeline, hdr=job.hdr)
    run = _Run(job.config, job.url, stats, phase=job.phase)
    elapsed, loop_name = _run_event_loop(_run_with_tick(run, conn, job), job.config.loop)
    return {
        "stats": stats.to_payload(),
        "started": run.started_monotonic,
        "elapsed": elapsed,
        "loop": loop_name,
        "stop_reason": run.stop_reason,
        "cpu_s": run.cpu_s,
    }


def _worker_main(job: WorkerJob, conn: Connection) -> None:
    """A worker process's entry point: never raises, never prints; it tells the parent."""
    # Already ignored (inherited from the parent across the spawn); set again in case.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn.send(("ready",))
        if _wait_for_go(conn, job):
            conn.send(("result", _execute(job, conn)))
    except (BrokenPipeError, EOFError):
        pass  # The parent is gone: nobody to tell.
    except BaseException as exc:  # Told to the parent, which exits 1.
        known = isinstance(exc, RunError | UsageError)
        text = str(exc) if known else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            conn.send(("error", text))
    finally:
        conn.close()


# -- the parent side ------------------------------------------------------------------------


class WorkerFailed(RunError):
    """A worker reported an error or died before reporting: exit status 1."""


class _Interrupted(Exception):
    """A second Ctrl-C or a SIGTERM: stop everything now."""


def _exit_text(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


@contextlib.contextmanager
def _ignoring_sigint() -> Iterator[None]:
    """While workers start: an ignored SIGINT stays ignored across exec, so a Ctrl-C that hits
    the process group never lands in a worker that is still importing."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Workers:
    def __init__(self, jobs: list[WorkerJob]) -> None:
        self.jobs = jobs
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.conns: list[Connection] = []

    def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        with _ignoring_sigint():
            for job in self.jobs:
                parent_end, child_end = context.Pipe()
                process = context.Process(
                    target=_worker_main,
                    args=(job, child_end),
                    name=f"{PROG} worker {job.index + 1}",
                    daemon=True,  # multiprocessing also ends them if the parent exits
                )
                process.start()
                child_end.close()  # Only the worker's copy: EOF here when it dies.
                self.processes.append(process)
                self.conns.append(parent_end)

    def send_all(self, message: str) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send(message)

    def failure(self, index: int, detail: str) -> WorkerFailed:
        return WorkerFailed(
            f"worker process {index + 1} of {len(self.jobs)} {detail}; the others were stopped"
        )

    def died(self, index: int) -> WorkerFailed:
        process = self.processes[index]
        process.join(TERMINATE_GRACE_S)
        return self.failure(index, f"{_exit_text(process.exitcode)} before reporting")

    def stop_all(self) -> None:
        """Terminates whatever still runs and reaps it: no orphans, no zombies."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + TERMINATE_GRACE_S
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self.conns:
            conn.close()


def _merge(config: RunConfig, jobs: list[WorkerJob], results: list[dict[str, Any]]) -> RunOutcome:
    stats = RunStats(keep_timeline=config.plot_path is not None, hdr=jobs[0].hdr)
    start = min(result["started"] for result in results)
    end = max(result["started"] + result["elapsed"] for result in results)
    per_process = []
    for job, result in zip(jobs, results, strict=True):
        stats.merge(result["stats"], time_offset=result["started"] - start)
        per_process.append(
            process_summary(
                job.index,
                job.url,
                job.config,
                succeeded=result["stats"]["succeeded"],
                failed=result["stats"]["failed"],
                elapsed=result["elapsed"],
                cpu_s=result["cpu_s"],
                stop_reason=result["stop_reason"],
            )
        )
    reasons = [result["stop_reason"] for result in results if result["stop_reason"]]
    stop_reason = None
    if "interrupted" in reasons:
        stop_reason = "interrupted"
    elif reasons:
        unique = list(dict.fromkeys(reasons))
        stop_reason = unique[0] if len(unique) == 1 else "; ".join(unique)
        if len(reasons) < len(results):
            stop_reason += f" (in {len(reasons)} of {len(results)} processes)"
    return RunOutcome(
        stats=stats,
        elapsed=end - start,
        loop_name=results[0]["loop"],
        stop_reason=stop_reason,
        per_process=per_process,
        client_cpu_s=sum(result["cpu_s"] for result in results),
        sessions=sum(job.config.sessions for job in jobs),
    )


def run_processes(config: RunConfig, urls: list[str], on_start: Callable[[], None]) -> RunOutcome:
    """Runs the load split over `config.processes` workers; `on_start` is called as they are
    told to go (the embedded target's CPU is measured from there)."""
    jobs = worker_jobs(config, urls)
    workers = _Workers(jobs)
    interrupts = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1 or started is None:
            raise _Interrupted
        workers.send_all("stop")

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted

    started: float | None = None
    previous = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    progress = _make_progress(config)
    try:
        workers.start()
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
        results: list[dict[str, Any] | None] = [None] * len(jobs)
        counts = [(0, 0)] * len(jobs)
        ready: set[int] = set()
        open_conns = dict(enumerate(workers.conns))
        boot_deadline = time.monotonic() + STARTUP_TIMEOUT_S
        next_show = 0.0
        while open_conns:
            timeout = progress.interval if progress and started is not None else 0.5
            for conn in multiprocessing.connection.wait(list(open_conns.values()), timeout):
                assert isinstance(conn, Connection)
                index = workers.conns.index(conn)
                try:
                    message = conn.recv()
                except EOFError:
                    raise workers.died(index) from None
                kind = message[0]
                if kind == "ready":
                    ready.add(index)
                    if len(ready) == len(jobs):
                        on_start()
                        started = time.monotonic()
                        workers.send_all("go")
                        if progress is not None:
                            progress.start()
                elif kind == "progress":
                    counts[index] = (message[1], message[2])
                elif kind == "result":
                    results[index] = message[1]
                    del open_conns[index]
                else:
                    raise workers.failure(index, f"failed: {message[1]}")
            now = time.monotonic()
            if started is None and now > boot_deadline:
                slow = min(set(range(len(jobs))) - ready)
                raise workers.failure(slow, f"did not start within {STARTUP_TIMEOUT_S:g} s")
            if progress is not None and started is not None and now >= next_show:
                next_show = now + progress.interval
                progress.update(now - started, sum(c for c, _ in counts), sum(f for _, f in counts))
    except _Interrupted:
        raise KeyboardInterrupt from None
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        if progress is not None and started is not None:
            progress.stop()
        workers.stop_all()
    finished = [result for result in results if result is not None]
    assert len(finished) == len(jobs)
    outcome = _merge(config, jobs, finished)
    if interrupts:
        outcome = dataclasses.replace(outcome, stop_reason="interrupted")
    return outcome
