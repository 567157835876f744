"""aiohttp: one ClientSession with a connection limit of the concurrency; HTTP/1.1 only."""

from __future__ import annotations

from typing import Any

import aiohttp
from common import Adapter, main


class Aiohttp(Adapter):
    name = "aiohttp"
    http_versions = ("1.1",)

    async def new_session(self, scope: str = "session") -> Any:
        limit = max(self.args.concurrency, 100)
        connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ssl=False)
        return aiohttp.ClientSession(connector=connector)

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        async with session.get(url) as r:
            body = await r.read()
            return r.status, f"{r.version.major}.{r.version.minor}", len(body)

    async def close_session(self, session: Any) -> None:
        await session.close()

    def library_versions(self) -> dict[str, str]:
        return {"aiohttp": aiohttp.__version__}


if __name__ == "__main__":
    main(Aiohttp)
