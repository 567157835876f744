"""acurl 1.2.1 (mite's Cython client) as it is: built from its sdist against Debian's libcurl.

Its sessions share the wrapper's connections; TLS verification is hard-coded off and the HTTP
version cannot be chosen (libcurl's default: h2 over TLS via ALPN, HTTP/1.1 in clear). It does
not expose the version, so it is read from the status line of the header block.
"""

from __future__ import annotations

import asyncio
import ctypes
from importlib.metadata import version
from typing import Any

import acurl
from common import Adapter, main


class Acurl(Adapter):
    name = "acurl"

    async def start(self) -> None:
        self.wrapper = acurl.CurlWrapper(asyncio.get_running_loop())

    async def new_session(self, scope: str = "session") -> Any:
        return self.wrapper.session()

    async def fetch(self, session: Any, url: str) -> tuple[int, str, int]:
        r = await session.get(url)
        header = r.header  # "HTTP/2 200 \r\n..." or "HTTP/1.1 200 OK\r\n..."
        return r.status_code, header[5 : header.index(" ")], len(r.body)

    def library_versions(self) -> dict[str, str]:
        libcurl = ctypes.CDLL("libcurl.so.4")  # the system libcurl acurl was built against
        libcurl.curl_version.restype = ctypes.c_char_p
        return {"acurl": version("acurl"), "acurl libcurl": libcurl.curl_version().decode()}


if __name__ == "__main__":
    main(Acurl)
