"""httpx (with h2 for HTTP/2): one AsyncClient whose pool allows the concurrency."""

from __future__ import annotations

from typing import Any

import httpx
from common import Adapter, main

_VERSIONS = {"HTTP/1.1": "1.1", "HTTP/2": "2"}


class Httpx(Adapter):
    name = "httpx"

    async def new_session(self, scope: str = "session") -> Any:
        limit = max(self.args.concurrency, 100)
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        return httpx.AsyncClient(
            http1=self.http == "1.1", http2=self.http == "2", verify=False, limits=limits
        )

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        r = await session.get(url)
        return r.status_code, _VERSIONS.get(r.http_version, r.http_version), len(r.content)

    async def close_session(self, session: Any) -> None:
        await session.aclose()

    def library_versions(self) -> dict[str, str]:
        import h2

        return {"httpx": httpx.__version__, "h2": h2.__version__}


if __name__ == "__main__":
    main(Httpx)
