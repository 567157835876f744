"""curl codes are named once, in the native module (src/error.rs), and the Python layer reads
them from there: the retry rule, the timeout handling and acurl's RequestError code."""

from __future__ import annotations

import pickle

import pytest

import acurl_rs
from acurl_rs import _acurl_rs, errors


def test_the_named_codes_are_curls():
    assert _acurl_rs.CURLE_UNSUPPORTED_PROTOCOL == 1
    assert _acurl_rs.CURLE_OPERATION_TIMEDOUT == 28
    assert _acurl_rs.CURLE_TOO_MANY_REDIRECTS == 47
    assert frozenset({16, 52, 55, 56, 92}) == _acurl_rs.RETRYABLE_CODES
    assert isinstance(_acurl_rs.RETRYABLE_CODES, frozenset)


def test_request_error_default_code_is_the_native_one():
    # errors.py is loaded without the native module by the pure-Python tests, so it spells 47.
    assert errors.RequestError.default_code == _acurl_rs.CURLE_TOO_MANY_REDIRECTS
    assert acurl_rs.RequestError("Max Redirects").code == _acurl_rs.CURLE_TOO_MANY_REDIRECTS


@pytest.mark.parametrize("code", sorted(_acurl_rs.RETRYABLE_CODES))
def test_a_connection_that_died_before_any_response_is_retryable(code):
    exc = errors.ProtocolError(code, "Recv failure")
    exc.response_started = False
    assert exc.retryable
    exc.response_started = True
    assert not exc.retryable, "a response had begun: sending again could repeat its effect"


@pytest.mark.parametrize(
    "exc",
    [
        errors.AcurlTimeoutError(28, "Operation timed out"),
        errors.ConnectError(7, "Failed to connect"),
        errors.RequestError("Max Redirects"),
        errors.RequestPanicError("internal error: ..."),
        errors.SessionClosedError("the session is closed"),
    ],
)
def test_other_failures_are_not_retryable(exc):
    exc.response_started = False
    assert not exc.retryable


def test_retryable_survives_pickling():
    exc = errors.HTTP2Error(92, "Stream error")
    exc.response_started = False
    assert pickle.loads(pickle.dumps(exc)).retryable
