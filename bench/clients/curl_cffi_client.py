"""curl_cffi: AsyncSession (its own libcurl-impersonate build) with max_clients = concurrency."""

from __future__ import annotations

from typing import Any

import curl_cffi
from common import Adapter, main
from curl_cffi import CurlHttpVersion
from curl_cffi.requests import AsyncSession

_ASK = {"1.1": CurlHttpVersion.V1_1, "2": CurlHttpVersion.V2_0}
_GOT = {int(CurlHttpVersion.V1_1): "1.1", int(CurlHttpVersion.V2_0): "2"}


class CurlCffi(Adapter):
    name = "curl_cffi"

    async def new_session(self, scope: str = "session") -> Any:
        return AsyncSession(
            max_clients=max(self.args.concurrency, 10),
            verify=False,
            http_version=_ASK[self.http],
        )

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        r = await session.get(url)
        return r.status_code, _GOT.get(r.http_version, str(r.http_version)), len(r.content)

    async def close_session(self, session: Any) -> None:
        await session.close()

    def library_versions(self) -> dict[str, str]:
        from curl_cffi import Curl

        return {"curl_cffi": curl_cffi.__version__, "curl_cffi libcurl": Curl().version().decode()}


if __name__ == "__main__":
    main(CurlCffi)
