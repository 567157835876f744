"""pyreqwest (reqwest/hyper on a Tokio runtime thread): one Client; HTTP/2 negotiated by ALPN."""

from __future__ import annotations

from typing import Any

import pyreqwest
from common import Adapter, main
from pyreqwest.client import ClientBuilder

_VERSIONS = {"HTTP/1.1": "1.1", "HTTP/2.0": "2"}


class Pyreqwest(Adapter):
    name = "pyreqwest"

    async def new_session(self, scope: str = "session") -> Any:
        builder = ClientBuilder().danger_accept_invalid_certs(True)
        builder = builder.http2(True) if self.http == "2" else builder.http1_only()
        return builder.build()

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        r = await session.get(url).build().send()
        body = await r.bytes()
        return r.status, _VERSIONS.get(r.version, r.version), len(body)

    async def close_session(self, session: Any) -> None:
        await session.close()

    def library_versions(self) -> dict[str, str]:
        return {"pyreqwest": pyreqwest.__version__}


if __name__ == "__main__":
    main(Pyreqwest)
