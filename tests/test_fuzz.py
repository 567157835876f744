"""Property tests (Hypothesis) over request building and response parsing.

Requests: random methods, URL paths, header names and values, cookies, params, auth and bodies
go to a raw listener (servers/recorder.py) that records the exact bytes; every request either
raises a documented exception (TypeError, ValueError or an AcurlError subclass) with nothing
sent, or arrives as a request that a strict RFC 9112 parser (below) accepts and that says what
the caller asked for. The URL's authority is always the fixed ``127.0.0.1:<port>``: only what
follows the first ``/`` is random, so no example can make the client look up a name.

Responses: random header fields and Set-Cookie lines from the server, random cookie-jar lines,
and `acurl_rs.parse_cookie_string` over random text.

The regression tests at the end pin the bugs this fuzzing found (all fixed). Example counts
are printed at the end of the module (``-s`` or the captured output) and kept modest so the
file runs in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import re
import string
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import acurl_rs
from servers.recorder import RecordingServer

STATS: collections.Counter[str] = collections.Counter()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# -- a strict parser for what arrived ------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.ascii_letters + string.digits
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
REQUEST_LINE = re.compile(rb"(" + TOKEN + rb") (/[\x21-\x7e]*) HTTP/1\.1")
# field-value: VCHAR / obs-text with inner SP / HTAB; the OWS around it is not part of it.
VCHAR_OBS = rb"[\x21-\x7e\x80-\xff]"
FIELD_VALUE = rb"((?:" + VCHAR_OBS + rb"+(?:[ \t]+" + VCHAR_OBS + rb"+)*)?)"
FIELD_LINE = re.compile(rb"(" + TOKEN + rb"):[ \t]*" + FIELD_VALUE + rb"[ \t]*")


@dataclass
class Wire:
    method: str
    target: str
    headers: list[tuple[str, bytes]]
    body: bytes

    def values(self, name: str) -> list[bytes]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


def _dechunk(data: bytes) -> bytes:
    body = bytearray()
    while True:
        line, sep, data = data.partition(b"\r\n")
        assert sep and re.fullmatch(rb"[0-9a-fA-F]+", line), line
        size = int(line, 16)
        if size == 0:
            assert data == b"\r\n", "no trailers expected"
            return bytes(body)
        assert data[size : size + 2] == b"\r\n"
        body += data[:size]
        data = data[size + 2 :]


def parse_request(raw: bytes, host: str) -> Wire:
    """RFC 9112 request parsing with no leniency; AssertionError on anything malformed."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, f"no end of head: {raw!r}"
    lines = head.split(b"\r\n")
    assert all(b"\r" not in line and b"\n" not in line for line in lines), "bare CR or LF"
    request_line = REQUEST_LINE.fullmatch(lines[0])
    assert request_line, f"bad request line {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        assert line[:1] not in (b" ", b"\t"), f"obs-fold: {line!r}"
        field = FIELD_LINE.fullmatch(line)
        assert field, f"bad field line {line!r}"
        headers.append((field[1].decode("ascii"), field[2]))
    wire = Wire(request_line[1].decode(), request_line[2].decode("ascii"), headers, b"")
    assert wire.values("host") == [host.encode()]
    te, cl = wire.values("transfer-encoding"), wire.values("content-length")
    assert not (te and cl), "both Transfer-Encoding and Content-Length"
    if te:
        assert [v.lower() for v in te] == [b"chunked"], te
        wire.body = _dechunk(rest)
    elif cl:
        assert len(cl) == 1 and cl[0].isdigit(), cl
        assert int(cl[0]) == len(rest), (cl, len(rest))
        wire.body = rest
    else:
        assert rest == b"", "a body without framing"
    return wire


# -- inputs ------------------------------------------------------------------------------------

REFUSED = "\r\n\x00"
TRICKY = [*REFUSED, "\x01", "\x1b", "\x7f", " ", "\t", ":", ";", "=", "?", "#", "%", "/", "\\"]
TRICKY += ["é", "€", "\u2028", "\ufeff", "\ud800", "@", "&", "+", "."]
wild_char = st.one_of(
    st.sampled_from(TRICKY), st.characters(exclude_categories=()), st.sampled_from(TOKEN_CHARS)
)


def wild_text(min_size: int = 0, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(alphabet=wild_char, min_size=min_size, max_size=max_size)


def field_text(max_size: int) -> st.SearchStrategy[str]:
    """Half wild, half free of control characters: both the refusals and the wire get tried."""
    printable = st.characters(exclude_categories=("Cs", "Cc"))
    return st.one_of(wild_text(max_size=max_size), st.text(alphabet=printable, max_size=max_size))


token = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
# Names that change framing or connection handling: a caller setting them is tested apart.
SPECIAL = {
    "host",
    "content-length",
    "transfer-encoding",
    "expect",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
    "cookie",
    "authorization",
}
header_name = st.one_of(token, wild_text(max_size=8)).filter(lambda n: n.lower() not in SPECIAL)


def surrogate(s: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in s)


def refused(s: str) -> bool:
    return any(c in REFUSED for c in s) or surrogate(s)


def other_ctl(s: str) -> bool:
    """Control characters besides CR/LF/NUL and HTAB: refused in field values (RFC 9110 5.5)."""
    return any((ord(c) < 0x20 and c not in "\t\r\n\x00") or c == "\x7f" for c in s)


def encode_non_ascii(s: str) -> str:
    """What goes on the wire for URL text: non-ASCII characters as %XX of their UTF-8."""
    return "".join(c if c.isascii() else quote(c, safe="") for c in s)


def is_token(s: str) -> bool:
    return bool(s) and all(c in TOKEN_CHARS for c in s)


# -- one client and one listener for the module ---------------------------------------------


class Client:
    def __init__(self, recorder: RecordingServer) -> None:
        self.recorder = recorder
        self.host = f"127.0.0.1:{recorder.port}"
        self.loop = asyncio.new_event_loop()
        self.wrapper = acurl_rs.CurlWrapper(self.loop)
        self.session = self.wrapper.session()

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    def attempt(self, stat: str, method, path: str, **kwargs):
        """(Wire, response) if it was sent, else (None, exception) with nothing sent."""
        self.recorder.clear()
        try:
            response = self.run(self.session.request(method, self.recorder.url(path), **kwargs))
        except (TypeError, ValueError, acurl_rs.AcurlError) as exc:
            STATS[f"{stat}: {type(exc).__name__}"] += 1
            assert self.recorder.requests == [], "refused, yet something was sent"
            return None, exc
        STATS[f"{stat}: sent"] += 1
        assert response.status_code == 200
        (raw,) = self.recorder.requests
        return parse_request(raw, self.host), response

    def close(self) -> None:
        self.session.close()
        self.wrapper.close()
        self.loop.close()


@pytest.fixture(scope="module")
def client(recorder, request):
    c = Client(recorder)
    yield c
    c.close()
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\nfuzz example counts:", json.dumps(dict(sorted(STATS.items())), indent=1))


# -- request building ------------------------------------------------------------------------

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "get", "Post"]


@FUZZ
@given(
    method=st.one_of(st.sampled_from(METHODS), token, wild_text(max_size=8), st.binary(max_size=8)),
    path=wild_text(max_size=24),
)
def test_methods_and_url_paths(client, method, path):
    wire, outcome = client.attempt("method+path", method, "/" + path)
    name = method.decode("ascii", "replace") if isinstance(method, bytes) else method
    name = name.upper()
    bad_url = surrogate(path) or any(ord(c) <= 0x20 or c == "\x7f" for c in path)
    if not name.isascii() or not is_token(name) or bad_url:
        assert isinstance(outcome, ValueError), outcome
        return
    assert wire is not None, outcome
    assert wire.method == name
    before_fragment = ("/" + path).split("#", 1)[0]
    assert "#" not in wire.target, "the fragment never goes on the wire"
    path_part, _, query = before_fragment.partition("?")
    wire_path, _, wire_query = wire.target.partition("?")
    assert wire_query == encode_non_ascii(query)
    if "." not in path_part and "%" not in path_part:  # no dot segments or escapes to normalize
        assert unquote(wire_path) == path_part


@settings(FUZZ, max_examples=300)
@given(
    headers=st.lists(st.tuples(header_name, field_text(16)), max_size=4),
    as_dict=st.booleans(),
)
def test_header_names_and_values(client, headers, as_dict):
    given_headers = dict(headers) if as_dict else headers
    pairs = list(given_headers.items()) if as_dict else headers
    wire, outcome = client.attempt("headers", "GET", "/h", headers=given_headers)
    if any(not is_token(n) or refused(v) or other_ctl(v) for n, v in pairs):
        assert isinstance(outcome, ValueError), outcome
        return
    assert wire is not None, outcome
    for name, value in pairs:
        assert (name, value.strip(" \t").encode()) in wire.headers, (name, value, wire.headers)


cookie_text = field_text(8)


@FUZZ
@given(
    cookies=st.dictionaries(cookie_text, cookie_text, max_size=3),
    params=st.one_of(
        st.none(),
        st.lists(st.tuples(wild_text(), st.one_of(wild_text(), st.integers())), max_size=3),
    ),
    auth=st.one_of(st.none(), st.tuples(field_text(12), field_text(12))),
)
def test_cookies_params_and_auth(client, cookies, params, auth):
    # `cookies=` go into the session's jar (as in acurl): start each example with an empty one.
    client.session.erase_all_cookies()
    try:
        wire, outcome = client.attempt(
            "cookies+params+auth", "GET", "/c", cookies=cookies, params=params, auth=auth
        )
    finally:
        client.session.erase_all_cookies()
    bad_cookie = any(
        not n
        or refused(n)
        or refused(v)
        or other_ctl(n)
        or other_ctl(v)
        or any(c in n for c in "=; \t")
        or any(c in v for c in ";\t")
        or n.startswith(("__Secure-", "__Host-"))  # need https
        for n, v in cookies.items()
    )
    bad_params = bool(params) and any(surrogate(k) or surrogate(str(v)) for k, v in params)
    bad_auth = auth is not None and (
        any(refused(a) or other_ctl(a) for a in auth) or ":" in auth[0]
    )
    if bad_cookie or bad_params or bad_auth:
        assert isinstance(outcome, ValueError), outcome
        return
    assert wire is not None, outcome
    # curl's order for cookies of one host and path: longer names first, then newest first.
    in_curl_order = sorted(reversed(cookies.items()), key=lambda kv: -len(kv[0].encode()))
    expected_cookie = "; ".join(f"{n}={v}" for n, v in in_curl_order)
    if cookies:
        assert wire.values("cookie") == [expected_cookie.strip(" \t").encode()]
    else:
        assert wire.values("cookie") == []
    path, _, query = wire.target.partition("?")
    assert path == "/c"
    if params:
        assert query == urlencode(params, doseq=True)
        assert parse_qsl(query, keep_blank_values=True) == [(k, str(v)) for k, v in params]
    else:
        assert query == ""
    if auth is None:
        assert wire.values("authorization") == []
    else:
        credentials = f"{auth[0]}:{auth[1]}".encode()
        assert wire.values("authorization") == [b"Basic " + base64.b64encode(credentials)]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]),
    data=st.one_of(st.none(), st.binary(max_size=3000), wild_text(max_size=40)),
    json_value=st.one_of(st.just(None), json_values),
)
def test_bodies(client, method, data, json_value):
    kwargs = {"data": data}
    if json_value is not None and data is None:
        kwargs = {"json": json_value}
    wire, outcome = client.attempt("bodies", method, "/b", **kwargs)
    if isinstance(data, str) and surrogate(data):
        assert isinstance(outcome, ValueError), outcome
        return
    assert wire is not None, outcome
    assert wire.method == method
    if "json" in kwargs:
        expected = json.dumps(json_value).encode()
        assert wire.values("content-type") == [b"application/json"]
    elif data is None:
        expected = b""
    else:
        expected = data.encode() if isinstance(data, str) else data
    if method == "HEAD":
        assert wire.body == b""
        return
    assert wire.body == expected
    if method in ("POST", "PUT", "PATCH") or expected:
        assert wire.values("content-length") == [str(len(expected)).encode()]
    assert wire.values("expect") == [], "no 100-continue round trip"


# -- response parsing --------------------------------------------------------------------------

field_value = st.binary(max_size=30).map(
    lambda b: bytes(c for c in b if c == 9 or 0x20 <= c <= 0x7E or c >= 0x80)
)
COOKIE_OCTETS = "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in '",;\\')
set_cookie = st.builds(
    lambda name, value, attrs: "; ".join([f"{name}={value}", *attrs]),
    token.filter(lambda t: "=" not in t),
    st.text(alphabet=COOKIE_OCTETS, max_size=10),
    st.lists(
        st.sampled_from(
            ["Path=/", "HttpOnly", "Max-Age=600", "SameSite=Lax", "Domain=127.0.0.1", "Bogus"]
        )
        | wild_text(max_size=10).filter(lambda t: not refused(t)),
        max_size=3,
    ),
)


@FUZZ
@given(
    fields=st.lists(st.tuples(token, field_value), max_size=6),
    cookies=st.lists(set_cookie, max_size=3),
)
def test_response_headers_and_set_cookie(client, fields, cookies):
    # "X-F-" keeps every name free of meaning to curl (Location, Alt-Svc, HSTS, framing...).
    sent = [(f"X-F-{n}", v) for n, v in fields]
    client.session.erase_all_cookies()
    head = b"HTTP/1.1 200 OK\r\n"
    for line in cookies:
        head += b"Set-Cookie: " + line.encode("utf-8", "surrogateescape") + b"\r\n"
    for name, value in sent:
        head += name.encode() + b": " + value + b"\r\n"
    client.recorder.clear()
    client.recorder.responses.append(head + b"Content-Length: 2\r\n\r\nok")
    r = client.run(client.session.get(client.recorder.url("/r")))
    STATS["response headers"] += 1
    assert r.status_code == 200 and r.body == b"ok"
    got = [(n, v) for n, v in r.headers_tuple if n.startswith("X-F-")]
    assert got == [(n, v.decode("latin-1").strip(" \t")) for n, v in sent]
    for name, value in sent:
        assert value.decode("latin-1").strip(" \t") in r.headers[name]
    lines = client.session.get_cookie_list()
    parsed = [acurl_rs.parse_cookie_string(line) for line in lines]
    jar = client.session.cookies()
    assert {c.name for c in parsed} == set(jar)
    sent_names = {line.split("=", 1)[0] for line in cookies}
    assert set(jar) <= sent_names
    client.session.erase_all_cookies()


junk_line = (
    st.one_of(
        st.binary(min_size=1, max_size=40),
        st.binary(max_size=20).map(lambda b: b"X-Junk: " + b),  # control bytes in a value
        st.binary(max_size=20).map(lambda b: b" " + b),  # obs-fold
        st.binary(max_size=20).map(lambda b: b"Bad Name: " + b),
    )
    .map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    .filter(bool)
)


@settings(FUZZ, max_examples=60)
@given(lines=st.lists(junk_line, min_size=1, max_size=4))
def test_malformed_response_headers_never_crash_or_hang(client, lines):
    client.recorder.clear()
    reply = b"HTTP/1.1 200 OK\r\n" + b"".join(line + b"\r\n" for line in lines)
    client.recorder.responses.append(reply + b"Content-Length: 2\r\n\r\nok")
    try:
        r = client.run(client.session.get(client.recorder.url("/junk"), timeout=2))
        STATS["junk response: accepted"] += 1
        assert r.status_code == 200
    except acurl_rs.AcurlError as exc:
        STATS[f"junk response: {type(exc).__name__}"] += 1
    client.recorder.clear()
    assert client.run(client.session.get(client.recorder.url("/after"))).status_code == 200


# -- cookie lines ------------------------------------------------------------------------------

cookie_field = st.text(
    alphabet=st.characters(exclude_characters="\t\r\n\x00", exclude_categories=("Cs",)),
    max_size=10,
)


@settings(FUZZ, max_examples=400)
@given(
    line=st.one_of(
        wild_text(max_size=40),
        st.binary(max_size=40),
        st.lists(wild_text(max_size=6), min_size=5, max_size=8).map("\t".join),
    )
)
def test_parse_cookie_string_raises_only_documented_errors(line):
    STATS["parse_cookie_string: random"] += 1
    try:
        cookie = acurl_rs.parse_cookie_string(line)
    except (ValueError, TypeError):
        return
    assert isinstance(cookie, acurl_rs._Cookie)
    assert isinstance(cookie.expiration, int)


@settings(FUZZ, max_examples=300)
@given(
    http_only=st.booleans(),
    domain=cookie_field.filter(lambda d: not d.startswith("#HttpOnly_")),
    include_subdomains=st.booleans(),
    path=cookie_field,
    secure=st.booleans(),
    expiration=st.integers(min_value=-(2**40), max_value=2**40),
    name=cookie_field,
    value=cookie_field,
)
def test_cookie_lines_round_trip(
    http_only, domain, include_subdomains, path, secure, expiration, name, value
):
    STATS["parse_cookie_string: round trip"] += 1
    cookie = acurl_rs._Cookie(
        http_only, domain, include_subdomains, path, secure, expiration, name, value
    )
    assert isinstance(cookie.format(), bytes)  # as acurl 1.2.1 returned it
    assert acurl_rs.parse_cookie_string(cookie.format()) == cookie
    assert acurl_rs.parse_cookie_string(cookie.format().decode()) == cookie


@settings(FUZZ, max_examples=100)
@given(
    line=st.one_of(
        wild_text(max_size=40),
        st.builds(lambda s: "Set-Cookie: " + s, set_cookie),
        st.lists(cookie_field, min_size=7, max_size=7).map("\t".join),
    )
)
def test_add_cookie_lines_never_corrupt_the_jar(client, line):
    try:
        client.session.add_cookie(line)
        STATS["add_cookie: accepted"] += 1
    except (ValueError, TypeError, acurl_rs.AcurlError) as exc:
        STATS[f"add_cookie: {type(exc).__name__}"] += 1
    for jar_line in client.session.get_cookie_list():
        acurl_rs.parse_cookie_string(jar_line)
    assert isinstance(client.session.cookies(), dict)
    client.session.erase_all_cookies()


# -- regressions: what the fuzzing found -----------------------------------------------------


@pytest.mark.parametrize("char", ["\x01", "\x1b", "\x7f"])
@pytest.mark.parametrize("where", ["header", "cookie"])
def test_other_control_characters_in_values_are_refused(client, char, where):
    kwargs = (
        {"headers": {"X-A": f"a{char}b"}} if where == "header" else {"cookies": {"a": f"b{char}"}}
    )
    _, outcome = client.attempt("regression", "GET", "/ctl", **kwargs)
    assert isinstance(outcome, ValueError), outcome


def test_non_ascii_in_the_query_is_percent_encoded_or_refused(client):
    wire, outcome = client.attempt("regression", "GET", "/q?name=caf\u00e9")
    assert wire is not None or isinstance(outcome, ValueError)
    if wire is not None:
        assert wire.target == "/q?name=caf%C3%A9"


def test_a_whitespace_only_header_value_is_sent_empty(client):
    wire, outcome = client.attempt("regression", "GET", "/ws", headers={"X-Blank": "  "})
    assert wire is not None, outcome
    assert wire.values("x-blank") == [b""]


@pytest.mark.parametrize("word", ["voilà", "Å", "\u00a0x\u00a0"])
def test_response_header_values_keep_non_ows_bytes(client, word):
    raw = word.encode()
    client.recorder.clear()
    client.recorder.responses.append(
        b"HTTP/1.1 200 OK\r\nX-Word: " + raw + b"\r\nContent-Length: 2\r\n\r\nok"
    )
    r = client.run(client.session.get(client.recorder.url("/word")))
    assert r.headers["x-word"].encode("latin-1") == raw
    assert dict(r.headers_tuple)["X-Word"].encode("latin-1").decode() == word


def test_an_auth_user_with_a_colon_is_refused(client):
    _, outcome = client.attempt("regression", "GET", "/auth", auth=("us:er", "pw"))
    assert isinstance(outcome, ValueError), outcome


def test_empty_auth_is_sent_or_refused(client):
    wire, outcome = client.attempt("regression", "GET", "/auth", auth=("", ""))
    if wire is None:
        assert isinstance(outcome, ValueError), outcome
    else:
        assert wire.values("authorization") == [b"Basic Og=="]
