"""Instructions per request with and without the share's no-op lock callbacks (callgrind).

libcurl calls CURLSHOPT_LOCKFUNC/UNLOCKFUNC only when they are set; ours are no-ops made sound
by thread confinement. This measures what installing them costs: the client runs N1 and N2
requests under `valgrind --tool=callgrind` for each setting, and (I(N2) - I(N1)) / (N2 - N1)
removes start-up, leaving instructions per request. nginx serves on loopback, out of process,
so only the client is counted. Usage: python bench/callgrind_locks.py [--small 100 --large 600]
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
asyncio.run(main(url, n, locks, verify))
"""


def instructions(url: str, n: int, locks: bool, verify: str, workdir: Path) -> int:
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
    return int(summary.group(1))


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
                "HTTP/1.1 plain": (nginx.http_url + "/", "1"),
                "HTTP/2 TLS": (nginx.https_url + "/", nginx.ca_path),
            }
            for cell, (url, verify) in cells.items():
                row = {}
                for locks in (True, False):
                    small = instructions(url, args.small, locks, verify, workdir)
                    large = instructions(url, args.large, locks, verify, workdir)
                    row["with_callbacks" if locks else "without_callbacks"] = (large - small) / (
                        args.large - args.small
                    )
                row["difference"] = row["with_callbacks"] - row["without_callbacks"]
                row["difference_pct"] = 100 * row["difference"] / row["without_callbacks"]
                results[cell] = row
    print("| cell | instr/request with no-op locks | without | difference |")
    print("|---|---:|---:|---:|")
    for cell, row in results.items():
        print(
            f"| {cell} | {row['with_callbacks']:,.0f} | {row['without_callbacks']:,.0f} | "
            f"{row['difference']:+,.0f} ({row['difference_pct']:+.2f}%) |"
        )
    out = ROOT / "bench" / "results" / "callgrind_locks.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
