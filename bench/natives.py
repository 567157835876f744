"""Native reference clients (h2load, wrk) on the same cells as the Python clients.

They cannot time themselves the way the Python runners do, so the harness samples them from
outside over the same kind of window: after a warm-up it reads the process's CPU time (sum of
/proc/<pid>/task/*/schedstat, nanoseconds) and nginx's request counter, waits the timed
duration, reads both again; requests/s and CPU per request come from those deltas. The process
itself runs a little longer than warm-up + timed window, so its start and exit fall outside.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from local_servers import pinned


def cpu_ns(pid: int) -> int:
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass  # the thread is gone
    return total


def command(tool: str, url: str, http: str, concurrency: int, seconds: int) -> list[str]:
    if tool == "h2load":
        if http == "2":  # one connection, `concurrency` streams: what one session does
            shape = ["-c1", f"-m{concurrency}"]
        else:
            shape = ["--h1", f"-c{concurrency}", "-m1"]
        return ["h2load", "-t1", *shape, "-D", str(seconds), url]
    if tool == "wrk":
        return ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", url]
    raise ValueError(tool)


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


def run(
    tool: str,
    url: str,
    http: str,
    concurrency: int,
    warmup: float,
    duration: float,
    stub: Any,
    cpu: int | None,
) -> dict[str, Any]:
    """One run; `stub()` returns nginx's stub_status counters."""
    seconds = math.ceil(warmup + duration + 1.0)  # both tools take whole seconds
    cmd = command(tool, url, http, concurrency, seconds)
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=pinned(cpu),
    )
    try:
        time.sleep(warmup)
        before, c0, t0 = stub(), cpu_ns(proc.pid), time.perf_counter()
        time.sleep(duration)
        after, c1, t1 = stub(), cpu_ns(proc.pid), time.perf_counter()
        out, _ = proc.communicate(timeout=seconds + 30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    requests = after["requests"] - before["requests"] - 1  # minus the first probe
    result: dict[str, Any] = {
        "requests": requests,
        "seconds": t1 - t0,
        "cpu_us": (c1 - c0) / 1000,
        "accepts": after["accepts"] - before["accepts"] - 1,
        "server_requests": requests,
        "command": " ".join(cmd),
    }
    if tool == "h2load":
        proto = re.search(r"Application protocol: (\S+)", out)
        got = {"h2": "2", "http/1.1": "1.1"}.get(proto.group(1), proto.group(1)) if proto else "?"
        counts = re.search(r"requests: .*?(\d+) failed, (\d+) errored", out)
        status = re.search(r"status codes: (\d+) 2xx", out)
        done = re.search(r"requests: .*?(\d+) done", out)
        errors = int(counts.group(1)) + int(counts.group(2)) if counts else 0
        if status and done:
            errors += int(done.group(1)) - int(status.group(1))
        result["versions"] = {got: requests}
        result["errors"] = errors  # over the whole h2load run
    else:
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        sock = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
        )
        result["versions"] = {"1.1": requests}  # wrk speaks HTTP/1.1 only
        result["errors"] = (int(non2xx.group(1)) if non2xx else 0) + (
            sum(map(int, sock.groups())) if sock else 0
        )
    if proc.returncode:
        result["failed"] = f"{tool} exited {proc.returncode}: {out[-300:]}"
    return result


def version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=10)
    except OSError:
        return "missing"
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else "?"
