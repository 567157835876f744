"""The error-92 scenario: HTTP/2 churn against nginx closing busy connections.

nginx with `keepalive_requests 100` and `http2_max_concurrent_streams 16`; many sessions fire
requests as fast as they go. Every error is counted by curl code. acurl users saw ~3% code 92
here with libcurl 7.74; plain libcurl 8.23 still loses ~0.3% with code 56 when nginx closes a
busy connection. acurl_rs must report zero (safe retries of requests the server never answered).

Usage: python bench/churn.py [--requests 200000] [--sessions 500] [--concurrency 1000]
Prints one JSON document; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import acurl_rs  # noqa: E402
from servers.nginx import NginxServer  # noqa: E402

CHURN_HTTP = "keepalive_requests 100;\nhttp2_max_concurrent_streams 16;"


async def churn(url: str, ca: str, requests: int, sessions: int, concurrency: int, retries: int):
    wrapper = acurl_rs.CurlWrapper()
    pool = [wrapper.session(verify=ca, retries=retries) for _ in range(sessions)]
    errors: collections.Counter[str] = collections.Counter()
    retried = 0
    versions: collections.Counter[str] = collections.Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index, retried
        while next_index < requests:
            i = next_index
            next_index += 1
            try:
                r = await pool[i % sessions].get(url)
                retried += r.retries
                versions[r.http_version] += 1
                if r.status_code != 200:
                    errors[f"HTTP {r.status_code}"] += 1
            except acurl_rs.AcurlError as exc:
                errors[f"curl {exc.code}: {exc.curl_message}"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    for s in pool:
        s.close()
    wrapper.close()
    return {
        "requests": requests,
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "retried_requests": retried,
        "http_versions": dict(versions),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(requests / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--retries", type=int, default=2, help="0 shows plain libcurl's losses")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with NginxServer(Path(tmp), extra_http=CHURN_HTTP) as nginx:
            before = nginx.stub_status()["accepts"]
            result = asyncio.run(
                churn(
                    nginx.https_url + "/",
                    nginx.ca_path,
                    args.requests,
                    args.sessions,
                    args.concurrency,
                    args.retries,
                )
            )
            result["connections_opened"] = nginx.stub_status()["accepts"] - before - 1
    print(json.dumps(result, indent=2))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
