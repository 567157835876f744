"""``create_request``, which acurl 1.2.1's published tests import from a ``helpers`` module
that the sdist does not ship (see acurl_alias.py)."""

from __future__ import annotations

from typing import Any

import acurl  # acurl_rs, put in sys.modules by acurl_alias


def create_request(
    method: str | bytes,
    url: str,
    headers: Any = (),
    cookies: Any = (),
    auth: Any = None,
    data: Any = None,
    cert: Any = None,
) -> Any:
    """An ``acurl.Request`` built positionally, the method and "Name: value" header lines as
    bytes, the form in which acurl's Session handed them to Request."""
    if isinstance(method, str):
        method = method.encode("ascii")
    lines = tuple(h.encode("utf-8") if isinstance(h, str) else h for h in headers)
    return acurl.Request(method, url, lines, tuple(cookies), auth, data, cert)
