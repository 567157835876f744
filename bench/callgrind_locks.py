"""Instructions per request with and without the share's no-op lock callbacks (callgrind).

libcurl calls CURLSHOPT_LOCKFUNC/UNLOCKFUNC only when they are set; ours are no-ops made sound
by thread confinement. This measures what installing them costs. The client runs N requests
on one session under `valgrind --tool=callgrind` for each setting; nginx serves on loopback,
out of process, so only the client is counted. Two figures per cell:

* the lock path: inclusive instructions of curl's Curl_share_lock/unlock (which call our
  callbacks when set) per request: the exact cost of the callbacks;
* the whole client per request, (I(N2) - I(N1)) / (N2 - N1): for scale. Event-loop timing
  makes this vary by a few percent between runs, far more than the callbacks cost.

Usage: python bench/callgrind_locks.py [--small 100 --large 600]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers.nginx import NginxServer  # noqa: E402

CLIENT = r"""
import asyncio, sys
import acurl_rs

async def main(url, n, locks, verify):
    wrapper = acurl_rs.CurlWrapper()
    session = wrapper.session(_share_lock_callbacks=locks, verify=verify)
    for _ in range(n):
        r = await session.get(url)
        assert r.status_code == 200
    session.close()
    wrapper.close()

url, n, locks, verify = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
verify = True if verify == "system" else verify
asyncio.run(main(url, n, locks, verify))
"""


LOCK_PATH = (
    "Curl_share_lock",
    "Curl_share_unlock",
    "Curl_share_lock_share",
    "Curl_share_unlock_share",
)


def lock_path_instructions(profile: Path) -> int:
    """Inclusive instructions of curl's share lock/unlock functions in one callgrind profile."""
    report = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(profile)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    total = 0
    for line in report.splitlines():
        match = re.match(r"\s*([\d,]+) \(.*\)\s+\S*:(\w+) ", line)
        if match and match.group(2) in LOCK_PATH:
            total += int(match.group(1).replace(",", ""))
    return total


def instructions(url: str, n: int, locks: bool, verify: str, workdir: Path) -> tuple[int, int]:
    out = workdir / f"cg.{n}.{int(locks)}.{abs(hash(url))}"
    env = dict(os.environ, PYTHONHASHSEED="0")
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            CLIENT,
            url,
            str(n),
            "1" if locks else "0",
            verify,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    summary = re.search(r"^summary:\s+(\d+)", out.read_text(), re.M)
    assert summary, "callgrind wrote no summary"
    return int(summary.group(1)), lock_path_instructions(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=600)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        with NginxServer(workdir / "nginx") as nginx:
            cells = {
                "HTTP/1.1 plain": (nginx.http_url + "/", "system"),
                "HTTP/2 TLS": (nginx.https_url + "/", nginx.ca_path),
            }
            for cell, (url, verify) in cells.items():
                row: dict[str, float] = {}
                for locks in (True, False):
                    key = "with" if locks else "without"
                    small, _ = instructions(url, args.small, locks, verify, workdir)
                    large, lock_path = instructions(url, args.large, locks, verify, workdir)
                    row[f"total_{key}"] = (large - small) / (args.large - args.small)
                    row[f"lock_path_{key}"] = lock_path / args.large
                row["callback_cost"] = row["lock_path_with"] - row["lock_path_without"]
                row["callback_cost_pct"] = 100 * row["callback_cost"] / row["total_with"]
                results[cell] = row
    print(
        "| cell | lock path, no-op callbacks | lock path, none | callbacks cost "
        "| whole client per request (with / without) |"
    )
    print("|---|---:|---:|---:|---:|")
    for cell, row in results.items():
        print(
            f"| {cell} | {row['lock_path_with']:,.0f} | {row['lock_path_without']:,.0f} | "
            f"{row['callback_cost']:+,.0f} ({row['callback_cost_pct']:.3f}% of the request) | "
            f"{row['total_with']:,.0f} / {row['total_without']:,.0f} |"
        )
    out = ROOT / "bench" / "results" / "callgrind_locks.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
