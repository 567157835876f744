"""acurl_rs (this project): one CurlWrapper per process, sessions from it."""

from __future__ import annotations

import asyncio
from typing import Any

from common import Adapter, main

import acurl_rs


class AcurlRs(Adapter):
    name = "acurl_rs"

    async def start(self) -> None:
        self.wrapper = acurl_rs.CurlWrapper(asyncio.get_running_loop())

    async def new_session(self, scope: str = "wrapper") -> Any:
        # acurl_rs's default scope unless a workload asks (memory: "session").
        # "session:tls=session" -> connection_scope="session", tls_sessions="session"
        scope, _, tls = scope.partition(":tls=")
        return self.wrapper.session(
            http_version=self.http,
            connection_scope=scope,
            tls_sessions=tls or "wrapper",
            verify=False,
        )

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        r = await session.get(url)
        return r.status_code, r.http_version, len(r.body)

    async def close_session(self, session: Any) -> None:
        session.close()

    async def stop(self) -> None:
        self.wrapper.close()

    def library_versions(self) -> dict[str, str]:
        return {"acurl_rs": acurl_rs.__version__, "acurl_rs libcurl": acurl_rs.curl_version()}


if __name__ == "__main__":
    main(AcurlRs)
