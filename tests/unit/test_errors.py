"""The exception classes: messages mite matches, codes, builtin bases, pickling."""

from __future__ import annotations

import pickle
import re

import acurl_rs_errors as errors
import pytest

ALL_CLASSES = [getattr(errors, name) for name in errors.__all__]

# docs/CONTRACT.md: class -> (category, extra builtin base or None)
CONTRACT = {
    "AcurlError": ("other", Exception),
    "RequestError": ("redirect", None),
    "ConnectError": ("connect", ConnectionError),
    "ResolveError": ("dns", ConnectionError),
    "AcurlTimeoutError": ("timeout", TimeoutError),
    "TLSError": ("tls", None),
    "HTTP2Error": ("http2", None),
    "ProtocolError": ("protocol", None),
    "BodyTooLargeError": ("body_too_large", None),
    "UnsupportedProtocolError": ("unsupported_protocol", None),
    "InvalidURLError": ("invalid_url", None),
    "SessionClosedError": ("closed", RuntimeError),
    "RequestPanicError": ("internal", None),
    "HTTPStatusError": ("http_status", None),
}


def test_all_names_match_the_contract() -> None:
    assert sorted(errors.__all__) == sorted(CONTRACT)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_class_hierarchy_and_category(name: str) -> None:
    cls = getattr(errors, name)
    category, builtin = CONTRACT[name]
    assert issubclass(cls, errors.AcurlError)
    assert cls.category == category
    if builtin is not None:
        assert issubclass(cls, builtin)


def test_resolve_error_is_a_connect_error() -> None:
    assert issubclass(errors.ResolveError, errors.ConnectError)


def test_curl_failure_message_matches_what_mite_tests_expect() -> None:
    e = errors.ResolveError(6, "Could not resolve host: nowhere.invalid\n")
    assert str(e) == "curl failed with code 6 Could not resolve host: nowhere.invalid"
    assert re.match(r"curl failed with code 6.*", str(e))
    assert e.code == 6
    assert e.curl_message == "Could not resolve host: nowhere.invalid\n"


@pytest.mark.parametrize("text", [None, "", "  \n"])
def test_curl_failure_without_text(text: str | None) -> None:
    e = errors.AcurlError(7, text)
    assert str(e) == "curl failed with code 7"
    assert e.code == 7
    assert e.curl_message == (text or "")


@pytest.mark.parametrize("cls", [errors.ConnectError, errors.AcurlTimeoutError])
def test_oserror_based_classes_keep_acurl_message(cls: type[errors.AcurlError]) -> None:
    # OSError(7, "x") would read as errno/strerror and print "[Errno 7] x".
    e = cls(7, "Failed to connect")
    assert str(e) == "curl failed with code 7 Failed to connect"
    assert e.args == ("curl failed with code 7 Failed to connect",)
    assert e.code == 7


def test_request_error_acurl_form() -> None:
    e = errors.RequestError("Max Redirects")
    assert str(e) == "Max Redirects"
    assert e.args == ("Max Redirects",)
    assert e.code == 47
    assert e.curl_message == ""


def test_message_form_of_other_classes_has_no_code() -> None:
    e = errors.SessionClosedError("the session is closed")
    assert str(e) == "the session is closed"
    assert e.code is None


def test_timeout_caught_by_builtin_timeout_error() -> None:
    with pytest.raises(TimeoutError):
        raise errors.AcurlTimeoutError(28, "Operation timed out after 100 milliseconds")


def test_connect_error_caught_by_connection_error() -> None:
    with pytest.raises(ConnectionError):
        raise errors.ResolveError(6, "Could not resolve host")


def test_code_of_wrong_type_is_rejected() -> None:
    with pytest.raises(TypeError):
        errors.AcurlError(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_pickle_keeps_type_code_and_text(cls: type[errors.AcurlError]) -> None:
    original = cls(92, "Stream error in the HTTP/2 framing layer")
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert str(copy) == str(original)
    assert copy.code == 92
    assert copy.curl_message == "Stream error in the HTTP/2 framing layer"


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_pickle_of_message_form(cls: type[errors.AcurlError]) -> None:
    copy = pickle.loads(pickle.dumps(cls("something went wrong")))
    assert type(copy) is cls
    assert str(copy) == "something went wrong"
    assert copy.code == cls.default_code


def test_pickle_keeps_attributes_added_after_construction() -> None:
    e = errors.ProtocolError(56, "Recv failure")
    e.url = "http://example.test/"
    copy = pickle.loads(pickle.dumps(e))
    assert copy.url == "http://example.test/"
    assert copy.code == 56
