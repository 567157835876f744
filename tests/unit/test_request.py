"""Request: acurl's positional constructor, its attributes, and a faithful to_curl()."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import acurl_rs_cookies as cookies
import acurl_rs_request as request_mod
import pytest

Request = request_mod.Request
Cookie = cookies.Cookie
_Cookie = cookies._Cookie


def req(method: bytes | str = "GET", url: str = "http://foo.com", **kw: object) -> object:
    return Request(
        method,
        url,
        kw.get("headers", ()),
        kw.get("cookies", ()),
        kw.get("auth"),
        kw.get("data"),
        kw.get("cert"),
    )


def test_positional_constructor_and_attributes() -> None:
    r = Request(
        b"POST",
        "https://h.test/p",
        (("Accept", "*/*"),),
        (("sid", "1"),),
        ("u", "p"),
        b"body",
        ("key.pem", "cert.pem"),
    )
    assert r.method == b"POST"
    assert r.method_str == "POST"
    assert r.url == "https://h.test/p"
    assert r.headers == {"Accept": "*/*"}
    assert r.cookies == {"sid": "1"}
    assert r.auth == ("u", "p")
    assert r.data == b"body"
    assert r.cert == ("key.pem", "cert.pem")


def test_str_method_is_stored_as_bytes_for_mite() -> None:
    r = req("DELETE")
    assert r.method == b"DELETE"
    assert r.method_str == "DELETE"


def test_non_ascii_method_is_rejected() -> None:
    with pytest.raises(ValueError):
        req("GÉT")


def test_str_data_is_utf8_encoded() -> None:
    assert req(data="é").data == "é".encode()
    assert req().data is None


def test_data_of_wrong_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="str or bytes"):
        req(data=123)


def test_headers_from_acurl_style_lines() -> None:
    r = req(headers=(b"Foo: bar", "My-Header: is-awesome", b"Latin: caf\xe9"))
    assert r.headers == {"Foo": "bar", "My-Header": "is-awesome", "Latin": "café"}


def test_headers_from_a_mapping() -> None:
    assert req(headers={"Foo": "bar"}).headers == {"Foo": "bar"}


def test_cookies_from_every_form_acurl_and_sessions_pass() -> None:
    r = req(
        cookies=(
            ("plain", "1"),
            ("alias", Cookie("foo.com", "from_cookie", "2")),
            Cookie("foo.com", "holder", "3"),
            _Cookie(False, "foo.com", True, "/", False, 0, "jar", "4"),
            _Cookie(False, "foo.com", True, "/", False, 0, "line", "5").format(),
            b"foo.com\tTRUE\t/\tFALSE\t0\tbytes_line\t6",
        )
    )
    assert r.cookies == {
        "plain": "1",
        "from_cookie": "2",
        "holder": "3",
        "jar": "4",
        "line": "5",
        "bytes_line": "6",
    }


def test_to_curl_minimal() -> None:
    assert req().to_curl() == "curl -X GET http://foo.com"


def test_to_curl_full_order() -> None:
    r = req(
        "POST",
        "https://h.test/a b",
        headers=(("Content-Type", "application/json"), ("X-Id", "7")),
        cookies=(("a", "1"), ("b", "2")),
        auth=("user", "pa ss"),
        data=b'{"k": 1}',
        cert=("/k.pem", "/c.pem"),
    )
    assert r.to_curl() == (
        "curl -X POST -H 'Content-Type: application/json' -H 'X-Id: 7'"
        " --cookie 'a=1;b=2' --user 'user:pa ss' --data-binary '{\"k\": 1}'"
        " --key /k.pem --cert /c.pem 'https://h.test/a b'"
    )


def test_to_curl_quotes_hostile_values_so_the_shell_sees_them_verbatim() -> None:
    value = 'it\'s $(rm -rf /) `x` "q" ; | &'
    r = req(headers=(("X-Evil", value),), data=value, url="http://h.test/?a=1&b=$HOME")
    argv = shlex.split(r.to_curl())
    assert argv[argv.index("-H") + 1] == f"X-Evil: {value}"
    assert argv[argv.index("--data-binary") + 1] == value
    assert argv[-1] == "http://h.test/?a=1&b=$HOME"


def test_to_curl_head_uses_head_option() -> None:
    # curl -X HEAD waits for a body that never comes (the hang acurl had).
    assert req("HEAD").to_curl() == "curl --head http://foo.com"


def test_to_curl_repeats_duplicate_headers() -> None:
    argv = shlex.split(req(headers=(("Accept", "a"), ("Accept", "b"))).to_curl())
    assert argv.count("-H") == 2
    assert "Accept: a" in argv and "Accept: b" in argv


def test_to_curl_empty_header_value_is_sent_not_removed() -> None:
    assert "-H 'X-Empty;'" in req(headers=(("X-Empty", ""),)).to_curl()


def test_to_curl_data_starting_with_at_is_not_read_as_a_file() -> None:
    argv = shlex.split(req("POST", data="@/etc/passwd").to_curl())
    assert "--data-binary" not in argv
    assert argv[argv.index("--data-raw") + 1] == "@/etc/passwd"


def test_to_curl_turns_off_globbing_for_brackets() -> None:
    argv = shlex.split(req(url="http://[::1]:8080/x").to_curl())
    assert "--globoff" in argv
    assert "--globoff" not in shlex.split(req().to_curl())


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_to_curl_binary_body_is_fed_exactly_through_stdin() -> None:
    body = bytes(range(256)) + b"\x00tail\xff'%\\"
    command = req("PUT", data=body).to_curl()
    printf_part, curl_part = command.split(" | ", 1)
    assert shlex.split(curl_part)[-3:] == ["--data-binary", "@-", "http://foo.com"]
    out = subprocess.run(["sh", "-c", printf_part], capture_output=True, check=True).stdout
    assert out == body


def test_to_curl_empty_body_is_still_sent() -> None:
    assert req("POST", data=b"").to_curl() == "curl -X POST --data-binary '' http://foo.com"


def test_repr_names_method_and_url() -> None:
    assert repr(req("GET", "http://foo.com/x")) == "<Request [GET] http://foo.com/x>"


def test_helpers_load_without_the_native_module() -> None:
    # The package's pure helpers must work (and be testable) before the extension is built.
    conftest = Path(__file__).with_name("conftest.py")
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(conftest)!r})\n"
        "loaded = [m for m in sys.modules if m == 'acurl_rs' or m.startswith('acurl_rs.')]\n"
        "assert not loaded, loaded\n"
        "assert 'acurl_rs_request' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
