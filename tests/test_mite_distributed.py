"""A distributed mite 2.11 run on loopback, with acurl_rs in both runners (issue 13).

Separate processes, as on separate machines, over ZeroMQ on free 127.0.0.1 ports:

    mite duplicator --message-socket=tcp://127.0.0.1:MSG  tcp://127.0.0.1:COL
    mite collector  --collector-socket=tcp://127.0.0.1:COL --collector-dir=DIR --collector-roll=1
    mite runner     --controller-socket=tcp://127.0.0.1:CTL --message-socket=tcp://127.0.0.1:MSG
                    (twice: ACURL_RS_MITE_FLAVOUR=alias, mite's own mite_http on acurl_rs;
                     ACURL_RS_MITE_FLAVOUR=adapter, acurl_rs.mite.mite_http)
    mite controller mite_scenarios.h2_journeys:scenario --controller-socket=... --message-socket=...

The scenario's datapool holds JOURNEYS journeys, VOLUME in flight across the runners, each
5 GETs over HTTP/2 + TLS to a private nginx. Checked from the collector's files and nginx's
access log: one ``http_metrics`` per request and per nginx log line, no error of any kind,
each journey run once by one runner, both runners served load, connections bounded by the
concurrency (not the journeys), and a clean end: the controller and the runners exit 0 by
themselves when the datapool is used up; the duplicator and collector (services that never
stop on their own, nor on SIGINT, in mite 2.11) exit on SIGTERM; no process, socket or fd
of the run is left. docs/DISTRIBUTED.md has the same commands for several machines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mite_scenarios.results import (
    REQUESTS_PER_JOURNEY,
    check_messages,
    check_nginx,
    connections_to,
    listening,
    mite_env,
    of_type,
    open_on,
    read_collector,
    request_key,
    wait_for,
)

from helpers import open_fds
from servers.nginx import free_port

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mite") is None,
    reason="mite is not installed (make dev: pip install --no-deps mite==2.11.0 ...)",
)

SCENARIO = "mite_scenarios.h2_journeys:scenario"
JOURNEYS = 100
VOLUME = 4  # concurrent journeys, shared by the runners
THINK_TIME = 0.01  # s after each request: journeys of ~60 ms, so both runners get work
FLAVOURS = ("alias", "adapter")
BUDGET = 50.0  # s for the whole run, startup to shutdown


class MiteProcesses:
    """mite commands as child processes, each in its own session (process group), output to
    a log file; ``kill_all`` ends whatever is left (SIGTERM, then SIGKILL to the group)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}
        self.started: dict[str, float] = {}
        self.ended: dict[str, float] = {}

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mite", *args],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = proc
        self.logs[name] = log
        self.started[name] = time.monotonic()
        return proc

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

    def wait(self, name: str, timeout: float) -> int:
        try:
            rc = self.procs[name].wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"mite {name} still running after {timeout:.0f} s\n{self.all_logs()}")
        self.ended.setdefault(name, time.monotonic())
        return rc

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def wait_until(self, what: str, ready, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                pytest.fail(f"waiting for {what}: exited {dead}\n{self.all_logs()}")
            time.sleep(0.05)

    def terminate(self, name: str, timeout: float = 10.0) -> int:
        self.procs[name].send_signal(signal.SIGTERM)
        return self.wait(name, timeout)

    def kill_all(self) -> None:
        """End every child still running: SIGTERM, then SIGKILL to its process group."""
        running = [p for p in self.procs.values() if p.poll() is None]
        for proc in running:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for proc in running:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the leader is alive: still our group
                proc.wait(5)

    def leftover_groups(self) -> list[int]:
        """Process groups of the run that still have a member (a process left behind)."""
        left = []
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                continue
            left.append(proc.pid)
        return left

    def kill_groups(self, groups: list[int]) -> None:
        for pgid in groups:  # a group with members keeps its id: these are the run's
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)


def test_mite_distributed_on_acurl_rs(nginx_factory, tmp_path):
    nginx = nginx_factory()
    fds_before = open_fds()
    msg_port, col_port, ctl_port = (free_port(False) for _ in range(3))
    msg_sock, col_sock, ctl_sock = (f"tcp://127.0.0.1:{p}" for p in (msg_port, col_port, ctl_port))
    collector_dir = tmp_path / "collector"
    run = MiteProcesses(tmp_path)
    t0 = time.monotonic()
    try:
        # 1. the message bus: the duplicator binds both sides, the collector connects to it
        #    (the duplicator drops what it cannot pass on at once, so the collector comes
        #    before any runner). --collector-roll=1: the collector closes each file after one
        #    message; its `current` file is buffered and lost when it is killed.
        run.start(
            "duplicator",
            ["duplicator", f"--message-socket={msg_sock}", col_sock],
            env=dict(os.environ),
        )
        run.wait_until("the duplicator", lambda: listening(msg_port) and listening(col_port))
        run.start(
            "collector",
            [
                "collector",
                f"--collector-socket={col_sock}",
                f"--collector-dir={collector_dir}",
                "--collector-roll=1",
                "--log-level=WARNING",  # else a log line per file
            ],
            env=dict(os.environ),
        )
        run.wait_until("the collector", lambda: connections_to(col_port) >= 1)

        # 2. two runners, one per way of putting acurl_rs under mite; they wait for the
        #    controller. Ready once connected to the message bus.
        for flavour in FLAVOURS:
            run.start(
                f"runner-{flavour}",
                [
                    "runner",
                    f"--controller-socket={ctl_sock}",
                    f"--message-socket={msg_sock}",
                    "--max-loop-delay=0.2",  # asks for work at least every 0.2 s
                ],
                env=mite_env(nginx, flavour),
            )
        run.wait_until("the runners", lambda: connections_to(msg_port) >= len(FLAVOURS))

        # 3. the controller: both runners say hello and ask for work during its 1 s start
        #    delay, so the volume is shared between them from the start
        run.start(
            "controller",
            [
                "controller",
                SCENARIO,
                f"--controller-socket={ctl_sock}",
                f"--message-socket={msg_sock}",
                f"--add-to-config=base_url:{nginx.https_url}",
                f"--add-to-config=journeys:{JOURNEYS}",
                f"--add-to-config=volume:{VOLUME}",
                f"--add-to-config=think_time:{THINK_TIME}",
                "--delay-start-seconds=1",
                "--max-loop-delay=0.2",
            ],
            env=mite_env(nginx, "alias"),  # imports the scenario module too
        )

        # 4. the datapool runs out: the runners finish, say bye and exit, then the controller
        remaining = BUDGET - (time.monotonic() - t0)
        assert run.wait("controller", remaining - 10) == 0, run.all_logs()
        for flavour in FLAVOURS:
            assert run.wait(f"runner-{flavour}", 10) == 0, run.all_logs()
        load_done = time.monotonic()

        # 5. everything they sent reaches the collector's files
        expected = JOURNEYS * (2 * REQUESTS_PER_JOURNEY + 1)  # http_metrics + txn
        wait_for(
            lambda: read_collector(collector_dir),
            lambda ms: len(of_type(ms, "http_metrics", "txn")) >= expected,
            20.0,  # a file per message: the collector trails the runners by seconds
        )
        time.sleep(0.3)  # anything extra would arrive now

        # 6. the services do not end on their own: stop them as an operator would
        assert run.alive("duplicator") and run.alive("collector"), run.all_logs()
        for name in ("collector", "duplicator"):
            assert run.terminate(name) == -signal.SIGTERM, run.all_logs()
        messages = read_collector(collector_dir)
        t_end = time.monotonic()
    finally:
        run.kill_all()
        left = run.leftover_groups()
        run.kill_groups(left)

    # --- a clean end: nothing of the run left
    assert left == []
    ports = {msg_port, col_port, ctl_port}
    assert wait_for(lambda: open_on(ports), lambda s: not s, 5.0) == []
    assert open_fds() == fds_before
    logs = run.all_logs()
    for bad in ("Traceback", "unsendable", "buffer full", "<ERROR>", "<CRITICAL>"):
        assert bad not in logs, logs

    # --- what was sent, against what nginx served
    metrics = check_messages(messages, flavours=set(FLAVOURS), journeys=JOURNEYS)
    entries = check_nginx(nginx, journeys=JOURNEYS)

    # per runner: one flavour each, both served load, and nginx saw the same split
    flavour_of_runner: dict[int, set[str]] = {}
    for m in metrics:
        flavour_of_runner.setdefault(m["runner_id"], set()).add(m["flavour"])
    assert sorted(flavour_of_runner) == [1, 2]
    assert sorted(f for fs in flavour_of_runner.values() for f in fs) == sorted(FLAVOURS)
    split = Counter(m["flavour"] for m in metrics)
    assert split == Counter(request_key(e["uri"])[0] for e in entries)
    assert all(split[f] > 0 for f in FLAVOURS), split
    # a journey ran in one runner, all its requests there
    runner_of_journey: dict[int, set[int]] = {}
    for m in metrics:
        runner_of_journey.setdefault(m["journey_no"], set()).add(m["runner_id"])
    assert all(len(r) == 1 for r in runner_of_journey.values())
    # the controller's reports went through the same bus, and it saw both runners
    reports = of_type(messages, "controller_report")
    assert reports and max(r["num_runners"] for r in reports) == 2, reports

    # connections: each runner's (one wrapper, one event loop) bounded by the journeys in
    # flight, not by the journeys it ran; in session scope there would be one per journey
    assert JOURNEYS > 2 * VOLUME
    conns_by_flavour: dict[str, set[int]] = {}
    for e in entries:
        conns_by_flavour.setdefault(request_key(e["uri"])[0], set()).add(e["conn"])
    for flavour in FLAVOURS:
        assert 1 <= len(conns_by_flavour[flavour]) <= VOLUME, conns_by_flavour
    assert not conns_by_flavour["alias"] & conns_by_flavour["adapter"]
    conn_ids = {m["conn_id"] for m in metrics if m["flavour"] == "adapter"}
    assert len(conn_ids) == len(conns_by_flavour["adapter"])

    print(
        f"requests {len(entries)}, http_metrics {len(metrics)}, split {dict(split)}, "
        f"connections { {f: len(c) for f, c in conns_by_flavour.items()} }, "
        f"load {load_done - t0:.1f} s, total {t_end - t0:.1f} s, processes "
        f"{ {n: round(run.ended[n] - run.started[n], 1) for n in run.ended} }"
    )
