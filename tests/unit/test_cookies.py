"""Cookies: Netscape jar lines in and out, acurl's constructors, line-safety checks."""

from __future__ import annotations

import pickle
import time

import acurl_rs_cookies as cookies
import pytest

Cookie = cookies.Cookie
_Cookie = cookies._Cookie
parse_cookie_string = cookies.parse_cookie_string
session_cookie_for_url = cookies.session_cookie_for_url


def make(**overrides: object) -> _Cookie:
    fields: dict[str, object] = {
        "http_only": False,
        "domain": "foo.com",
        "include_subdomains": False,
        "path": "/bar",
        "is_secure": False,
        "expiration": 0,
        "name": "my_cookie",
        "value": "my_value",
    }
    fields.update(overrides)
    return _Cookie(**fields)  # type: ignore[arg-type]


def test_cookie_holder_fields() -> None:
    c = Cookie("sky.com", "foo", "bar")
    assert (c.domain, c.name, c.value) == ("sky.com", "foo", "bar")
    assert Cookie(domain="sky.com", name="foo", value="bar") == c


def test_format_is_a_netscape_line_in_bytes_as_acurl_returned_it() -> None:
    assert make().format() == b"foo.com\tFALSE\t/bar\tFALSE\t0\tmy_cookie\tmy_value"


def test_format_encodes_utf8_and_parses_back() -> None:
    c = make(value="café")
    assert c.format().endswith("\tcafé".encode())
    assert parse_cookie_string(c.format()) == c


def test_format_flags_and_http_only_prefix() -> None:
    c = make(http_only=True, include_subdomains=True, is_secure=True, expiration=1700000000)
    assert c.format() == b"#HttpOnly_foo.com\tTRUE\t/bar\tTRUE\t1700000000\tmy_cookie\tmy_value"


def test_session_cookie_never_expires() -> None:
    assert not make(expiration=0).has_expired


def test_past_expiry_has_expired() -> None:
    assert make(expiration=1).has_expired


def test_future_expiry_accepts_float_and_keeps_whole_seconds() -> None:
    c = make(expiration=time.time() + 200)
    assert not c.has_expired
    assert isinstance(c.expiration, int)
    assert f"\t{c.expiration}\t".encode() in c.format()


def test_parse_plain_line() -> None:
    c = parse_cookie_string("foo.com\tFALSE\t/bar\tFALSE\t0\tmy_cookie\tmy_value")
    assert c == make()


def test_parse_true_flags_and_http_only() -> None:
    c = parse_cookie_string("#HttpOnly_.foo.com\tTRUE\t/\tTRUE\t1700000000\tsid\tabc")
    assert c.http_only
    assert c.domain == ".foo.com"
    assert c.include_subdomains
    assert c.path == "/"
    assert c.is_secure
    assert c.expiration == 1700000000
    assert (c.name, c.value) == ("sid", "abc")


def test_parse_empty_value_with_and_without_trailing_tab() -> None:
    assert parse_cookie_string("foo.com\tFALSE\t/\tFALSE\t0\tempty\t").value == ""
    assert parse_cookie_string("foo.com\tFALSE\t/\tFALSE\t0\tempty").value == ""


def test_parse_strips_only_the_line_ending() -> None:
    c = parse_cookie_string("foo.com\tFALSE\t/\tFALSE\t0\tname\tvalue with space \r\n")
    assert c.value == "value with space "


def test_parse_bytes_line_as_acurl_passed_them() -> None:
    c = parse_cookie_string(b"foo.com\tFALSE\t/\tFALSE\t0\tname\tvalue")
    assert (c.name, c.value) == ("name", "value")


@pytest.mark.parametrize(
    "line",
    [
        "# Netscape HTTP Cookie File",
        "foo.com\tFALSE\t/\tFALSE\t0",
        "foo.com\tFALSE\t/\tFALSE\tsoon\tname\tvalue",
        "",
    ],
)
def test_parse_rejects_what_is_not_a_cookie_line(line: str) -> None:
    with pytest.raises(ValueError):
        parse_cookie_string(line)


@pytest.mark.parametrize(
    "cookie",
    [
        make(),
        make(http_only=True, include_subdomains=True, is_secure=True, expiration=2000000000),
        make(value=""),
        make(value="a=b; c", path="/a path/é"),
    ],
)
def test_format_then_parse_round_trips(cookie: _Cookie) -> None:
    assert parse_cookie_string(cookie.format()) == cookie


@pytest.mark.parametrize("field", ["domain", "path", "name", "value"])
@pytest.mark.parametrize("char", ["\t", "\r", "\n", "\x00"])
def test_characters_that_would_corrupt_the_jar_line_are_rejected(field: str, char: str) -> None:
    with pytest.raises(ValueError):
        make(**{field: f"a{char}b"})


def test_pickle_round_trip() -> None:
    c = make(http_only=True)
    assert pickle.loads(pickle.dumps(c)) == c


def test_session_cookie_for_url_defaults() -> None:
    c = session_cookie_for_url("https://sky.com/some/page?q=1", "foo", "bar")
    assert c == _Cookie(False, ".sky.com", True, "/", False, 0, "foo", "bar")
    assert c.format() == b".sky.com\tTRUE\t/\tFALSE\t0\tfoo\tbar"


def test_session_cookie_for_url_drops_port_and_userinfo() -> None:
    c = session_cookie_for_url("http://user:pw@Example.COM:8080/x", "a", "b")
    assert c.domain == ".example.com"


def test_session_cookie_for_url_with_url_path() -> None:
    c = session_cookie_for_url("https://sky.com/shop/basket", "a", "b", include_url_path=True)
    assert c.path == "/shop/basket"
    assert session_cookie_for_url("https://sky.com", "a", "b", include_url_path=True).path == "/"


def test_session_cookie_for_url_passes_flags() -> None:
    c = session_cookie_for_url(
        "https://sky.com", "a", "b", http_only=True, include_subdomains=False, is_secure=True
    )
    assert (c.http_only, c.include_subdomains, c.is_secure) == (True, False, True)
    assert c.format().startswith(b"#HttpOnly_.sky.com\tFALSE\t/\tTRUE\t0\t")


def test_session_cookie_for_url_with_cookie_instance_uses_its_fields() -> None:
    c = session_cookie_for_url("https://anotherdomain.com", "baz", Cookie("sky.com", "foo", "bar"))
    assert (c.domain, c.name, c.value) == ("sky.com", "foo", "bar")
    assert c.expiration == 0


def test_session_cookie_for_url_rejects_bad_value_type() -> None:
    with pytest.raises(ValueError, match="string or Cookie"):
        session_cookie_for_url("https://sky.com", "a", 5)  # type: ignore[arg-type]


def test_session_cookie_for_url_needs_a_host() -> None:
    with pytest.raises(ValueError, match="no host"):
        session_cookie_for_url("/relative/path", "a", "b")


def test_session_cookie_for_url_rejects_line_breaking_value() -> None:
    with pytest.raises(ValueError):
        session_cookie_for_url("https://sky.com", "a", "b\nsky.com\tTRUE\t/\tFALSE\t0\tevil\t1")


# -- cookies_sent: which jar lines libcurl puts in a request -----------------------------------

cookies_sent = cookies.cookies_sent


def line(domain: str, name: str, *, sub: bool = False, path: str = "/", secure: bool = False,
         expires: int = 0, value: str = "v") -> str:  # fmt: skip
    return _Cookie(False, domain, sub, path, secure, expires, name, value)._line()


def names(lines: list[str], url: str, when: float = 1_000_000.0) -> list[str]:
    return [c.name for c in cookies_sent(lines, url, when)]


def test_host_only_cookie_goes_to_that_host_alone() -> None:
    jar = [line("example.com", "a")]
    assert names(jar, "http://example.com/x") == ["a"]
    assert names(jar, "http://EXAMPLE.com:8080/x") == ["a"]  # any port, case-insensitive
    assert names(jar, "http://www.example.com/") == []
    assert names(jar, "http://badexample.com/") == []


def test_domain_cookie_goes_to_subdomains_but_not_lookalikes() -> None:
    jar = [line(".example.com", "a", sub=True)]
    assert names(jar, "http://example.com/") == ["a"]
    assert names(jar, "http://a.b.example.com/") == ["a"]
    assert names(jar, "http://badexample.com/") == []


def test_an_ip_host_needs_an_exact_match() -> None:
    assert names([line("127.0.0.1", "a", sub=True)], "http://127.0.0.1/") == ["a"]
    assert names([line("0.0.1", "a", sub=True)], "http://127.0.0.1/") == []
    assert names([line("::1", "a")], "http://[::1]:8080/") == ["a"]


def test_path_must_be_the_url_path_or_a_slash_bounded_prefix() -> None:
    jar = [line("h", "a", path="/shop")]
    assert names(jar, "http://h/shop") == ["a"]
    assert names(jar, "http://h/shop/basket?x=1") == ["a"]
    assert names(jar, "http://h/shopping") == []
    assert names(jar, "http://h/") == []
    assert names(jar, "http://h") == []


def test_secure_cookies_need_https_or_a_loopback_host() -> None:
    assert names([line("h", "a", secure=True)], "http://h/") == []
    assert names([line("h", "a", secure=True)], "https://h/") == ["a"]
    for host in ("localhost", "127.0.0.1", "[::1]"):
        jar = [line(host.strip("[]"), "a", secure=True)]
        assert names(jar, f"http://{host}/") == ["a"], host


def test_expired_cookies_are_not_sent() -> None:
    jar = [line("h", "old", expires=999), line("h", "new", expires=2_000_000), line("h", "s")]
    assert sorted(names(jar, "http://h/", when=1000)) == ["new", "s"]


def test_longest_path_first_then_longer_names_then_newest() -> None:
    jar = [line("h", "b"), line("h", "a"), line("h", "long"), line("h", "deep", path="/x")]
    assert names(jar, "http://h/x/y") == ["deep", "long", "a", "b"]


def test_curls_limits_on_count_and_header_size() -> None:
    many = [line("h", f"c{i:03}") for i in range(200)]
    assert len(names(many, "http://h/")) == 150
    big = [line("h", f"c{i}", value="x" * 1000) for i in range(10)]
    sent = cookies_sent(big, "http://h/", 0)
    assert len("; ".join(f"{c.name}={c.value}" for c in sent)) < 8190 - len("Cookie: ")
    assert len(sent) == 8


def test_lines_that_are_not_cookies_are_skipped() -> None:
    assert names(["# comment", "", line("h", "a")], "http://h/") == ["a"]
    assert cookies_sent([], "http://h/", 0) == []
