"""The error-92 scenario, CI size: nginx closing busy HTTP/2 connections must cost no request.

nginx with `keepalive_requests 100` and `http2_max_concurrent_streams 16` (bench/churn.py runs
the full 200,000-request version): every connection is closed by the server after 100
requests while streams are in flight on it.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from churn import CHURN_HTTP, churn


async def test_20000_requests_through_server_side_connection_churn_without_errors(
    nginx_factory,
):
    nginx = nginx_factory(extra_http=CHURN_HTTP)
    before = nginx.stub_status()["accepts"]
    result = await asyncio.wait_for(
        churn(nginx.https_url + "/", nginx.ca_path, 20_000, 50, 400, retries=2), 170
    )
    assert result["errors"] == 0, result["errors_by_kind"]
    assert result["http_versions"] == {"2": 20_000}
    opened = nginx.stub_status()["accepts"] - before - 1
    # 20,000 requests at 100 per connection: the server really did close ~200 connections
    assert opened >= 20_000 // 100
