# mite integration tests.
#
# Needs mite 2.11.0 installed without its (heavy) dependency list, plus what the tested
# code paths import (see docs/MITE_NOTES.md):
#
#   pip install --no-deps mite==2.11.0 && pip install msgpack docopt ujson uvloop flask packaging prettytable  # noqa: E501
#
# msgpack alone is enough for `import mite` / mite.context / mite.test; the others are for
# `python -m mite journey run` (test_mite_runner_subprocess). Without mite, the mite-dependent
# tests skip and the tests of acurl_rs.mite against a plain recording context still run.
#
# (a) mite's own mite_http, loaded with acurl_rs standing in for acurl;
# (b) acurl_rs.mite.mite_http: same metrics plus http_version/conn_id/queue_time, http_error
#     for failed requests, session closed at journey end, one wrapper per loop;
# (c) mite's real runner (`python -m mite journey run`) as a subprocess, both decorators.

import asyncio
import gc
import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from urllib.parse import urlsplit

import pytest
from mite_scenarios.results import ADAPTER_EXTRA_FIELDS as ACURL_RS_EXTRA_FIELDS
from mite_scenarios.results import MITE_HTTP_FIELDS as MITE_FIELDS

import acurl_rs
import acurl_rs.mite as acurl_mite

# message field -> response attribute
MITE_FIELD_SOURCES = {
    "start_time": "start_time",
    "effective_url": "url",
    "response_code": "status_code",
    "dns_time": "namelookup_time",
    "connect_time": "connect_time",
    "tls_time": "appconnect_time",
    "transfer_start_time": "pretransfer_time",
    "first_byte_time": "starttransfer_time",
    "total_time": "total_time",
    "primary_ip": "primary_ip",
    "download_size": "download_size",
}
# Added by mite's Context.send to every message.
CONTEXT_FIELDS = {"type", "time", "transaction", "transaction_id"}
ID_DATA = {"test": "t-acurl-rs", "journey": "tests.test_mite:journey", "context_id": 7}


# --------------------------------------------------------------------------- helpers


class RecordingContext:
    """The part of mite.context.Context that mite_http uses: send() and an http slot."""

    def __init__(self, config=None):
        self.config = config or {}
        self.messages = []

    def send(self, type, **fields):
        msg = dict(fields)
        msg["type"] = type
        msg["time"] = time.time()
        self.messages.append(msg)

    def of_type(self, type):
        return [m for m in self.messages if m["type"] == type]


def mite_context(messages):
    context = pytest.importorskip("mite.context")
    return context.Context(messages.append, {}, id_data=dict(ID_DATA))


def of_type(messages, type):
    return [m for m in messages if m["type"] == type]


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def host_of(base_url):
    return urlsplit(base_url).hostname


def check_metrics_match_response(msg, response):
    """Field-by-field: every mite field carries the value of the response it describes."""
    for field, attr in MITE_FIELD_SOURCES.items():
        assert msg[field] == getattr(response, attr), field
    assert msg["method"] == response.request.method


def check_metrics_values(msg, *, base_url, url, code, method=b"GET", t_before, t_after):
    assert msg["type"] == "http_metrics"
    assert msg["effective_url"] == url
    assert msg["response_code"] == code
    assert msg["method"] == method
    assert isinstance(msg["method"], bytes)
    assert msg["primary_ip"] == host_of(base_url)
    assert isinstance(msg["start_time"], int)
    assert int(t_before) - 1 <= msg["start_time"] <= t_after + 1
    timings = [
        msg["dns_time"],
        msg["connect_time"],
        msg["transfer_start_time"],
        msg["first_byte_time"],
        msg["total_time"],
    ]
    assert all(isinstance(t, float) for t in [*timings, msg["tls_time"]])
    # libcurl's times are cumulative from the start of the transfer
    assert timings == sorted(timings), timings
    assert 0.0 < msg["total_time"] <= (t_after - t_before) + 0.5
    assert msg["tls_time"] == 0.0  # plain http: no TLS handshake
    assert isinstance(msg["download_size"], float)


def check_acurl_rs_extras(msg, response):
    assert msg["http_version"] == response.http_version
    assert msg["http_version"] in ("1.0", "1.1")  # plain http to the local server
    assert msg["conn_id"] == response.conn_id
    assert isinstance(msg["conn_id"], int) and msg["conn_id"] >= 0
    assert msg["queue_time"] == response.queue_time
    assert isinstance(msg["queue_time"], float)
    assert 0.0 <= msg["queue_time"] <= msg["total_time"]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
async def mites_mite_http():
    """mite's own mite_http module, imported with acurl_rs as `acurl`."""
    pytest.importorskip("mite.context")
    saved = {name: sys.modules.pop(name) for name in ("acurl", "mite_http") if name in sys.modules}
    sys.modules["acurl"] = acurl_rs
    try:
        module = importlib.import_module("mite_http")
        assert module.acurl is acurl_rs
        yield module
        # close the per-loop wrappers mite created while their loop still runs
        for pool in module.SessionPool._session_pools.values():
            if pool._wrapper is not None:
                pool._wrapper.close()
        module.SessionPool._session_pools.clear()
    finally:
        for name in ("acurl", "mite_http"):
            sys.modules.pop(name, None)
        sys.modules.update(saved)


@pytest.fixture(autouse=True)
async def _close_acurl_rs_mite_wrappers():
    yield
    acurl_mite.close_wrappers()


# ----------------------------------------------------------- (a) mite's own mite_http


async def test_mite_own_mite_http_sends_http_metrics(mites_mite_http, test_server):
    base = test_server.base_url
    seen = []

    @mites_mite_http.mite_http
    async def journey(ctx):
        ctx.http.additional_metrics["scenario"] = "a"

        def cb(response, additional_metrics):
            seen.append(response)
            assert additional_metrics is ctx.http.additional_metrics
            additional_metrics["hop"] = len(seen)

        ctx.http.set_response_callback(cb)
        async with ctx.transaction("echo"):
            return await ctx.http.get(base + "/echo")

    messages = []
    ctx = mite_context(messages)
    t0 = time.time()
    response = await journey(ctx)
    t1 = time.time()

    assert not hasattr(ctx, "http")  # mite removes the session at journey end
    assert response.status_code == 200
    metrics = of_type(messages, "http_metrics")
    assert len(metrics) == 1 and seen == [response]
    msg = metrics[0]
    assert set(msg) == MITE_FIELDS | CONTEXT_FIELDS | set(ID_DATA) | {"scenario", "hop"}
    for key, value in ID_DATA.items():
        assert msg[key] == value
    assert msg["transaction"] == "echo"
    assert msg["scenario"] == "a" and msg["hop"] == 1
    check_metrics_match_response(msg, response)
    check_metrics_values(msg, base_url=base, url=base + "/echo", code=200, t_before=t0, t_after=t1)
    assert msg["download_size"] == float(len(response.body))


async def test_mite_own_mite_http_redirect_chain(mites_mite_http, test_server):
    base = test_server.base_url
    seen = []

    @mites_mite_http.mite_http
    async def journey(ctx):
        ctx.http.set_response_callback(lambda r, m: seen.append(r))
        return await ctx.http.get(base + "/redirect/3")

    messages = []
    t0 = time.time()
    response = await journey(mite_context(messages))
    t1 = time.time()

    assert response.status_code == 200
    assert [r.url for r in response.history] == [base + f"/redirect/{n}" for n in (3, 2, 1)]
    metrics = of_type(messages, "http_metrics")
    assert [m["effective_url"] for m in metrics] == [base + f"/redirect/{n}" for n in (3, 2, 1, 0)]
    assert [m["response_code"] for m in metrics] == [302, 302, 302, 200]
    assert len(seen) == 4 and seen[-1] is response
    for msg, hop in zip(metrics, seen, strict=True):
        assert set(msg) == MITE_FIELDS | CONTEXT_FIELDS | set(ID_DATA)
        check_metrics_match_response(msg, hop)
        check_metrics_values(
            msg,
            base_url=base,
            url=hop.url,
            code=hop.status_code,
            t_before=t0,
            t_after=t1,
        )


async def test_mite_own_mite_http_connection_refused(mites_mite_http):
    url = f"http://127.0.0.1:{closed_port()}/"

    @mites_mite_http.mite_http
    async def journey(ctx):
        await ctx.http.get(url)

    messages = []
    with pytest.raises(acurl_rs.AcurlError, match=r"curl failed with code 7") as info:
        await journey(mite_context(messages))
    assert info.value.code == 7
    # mite only reports completed transfers: nothing is sent for this one
    assert of_type(messages, "http_metrics") == []


async def test_mite_own_mite_http_concurrent_journeys_one_wrapper(mites_mite_http, test_server):
    base = test_server.base_url
    sessions = []

    @mites_mite_http.mite_http
    async def journey(ctx, n):
        sessions.append(ctx.http)
        for _ in range(n):
            r = await ctx.http.get(base + "/echo")
            assert r.status_code == 200

    contexts = []
    runs = []
    for i in range(12):
        messages = []
        contexts.append(messages)
        runs.append(journey(mite_context(messages), i % 3 + 1))
    await asyncio.gather(*runs)

    # every session reported to its own context, once per request
    for i, messages in enumerate(contexts):
        assert len(of_type(messages, "http_metrics")) == i % 3 + 1
    assert len({id(s) for s in sessions}) == 12
    pools = mites_mite_http.SessionPool._session_pools
    assert list(pools) == [asyncio.get_running_loop()]
    assert isinstance(pools[asyncio.get_running_loop()]._wrapper, acurl_rs.CurlWrapper)


async def test_mite_test_run_single_journey(mites_mite_http, test_server):
    mite_test = pytest.importorskip("mite.test")
    base = test_server.base_url

    @mites_mite_http.mite_http
    async def journey(ctx):
        await ctx.http.get(base + "/echo")
        return {"ok": True}

    result = await mite_test.run_single_journey({}, journey)
    assert result["ok"] is True
    # run_single_journey stores (message, {}) pairs
    metrics = [m for m, extra in result["messages"] if m["type"] == "http_metrics"]
    assert len(metrics) == 1
    assert metrics[0]["effective_url"] == base + "/echo"
    assert metrics[0]["response_code"] == 200


@pytest.mark.parametrize("which", ["mite", "acurl_rs"])
async def test_mite_http_spy(which, mites_mite_http, test_server):
    mite_test = pytest.importorskip("mite.test")
    base = test_server.base_url
    decorator = mites_mite_http.mite_http if which == "mite" else acurl_mite.mite_http

    @decorator
    async def journey(ctx):
        await ctx.http.get(base + "/echo")
        await ctx.http.post(base + "/echo", data=b"x")

    messages = []
    ctx = mite_context(messages)
    result = await mite_test.http_spy(journey)(ctx)
    assert [r.status_code for r in result["http"]["get"]] == [200]
    assert [r.request.method for r in result["http"]["post"]] == [b"POST"]
    assert [m["method"] for m in of_type(messages, "http_metrics")] == [b"GET", b"POST"]
    assert not hasattr(ctx, "http")


# ------------------------------------------------------------- (b) acurl_rs.mite


async def test_acurl_rs_mite_http_metrics_fields(test_server):
    base = test_server.base_url
    seen = []

    @acurl_mite.mite_http
    async def journey(ctx):
        assert isinstance(ctx.http, acurl_mite.MiteHttpSession)
        assert isinstance(ctx.http.session, acurl_rs.Session)
        ctx.http.additional_metrics["scenario"] = "b"

        def cb(response, additional_metrics):
            seen.append(response)
            assert additional_metrics is ctx.http.additional_metrics
            additional_metrics["hop"] = len(seen)

        ctx.http.set_response_callback(cb)
        first = await ctx.http.get(base + "/echo")
        second = await ctx.http.post(base + "/echo", data=b"payload")
        return first, second

    ctx = RecordingContext()
    t0 = time.time()
    first, second = await journey(ctx)
    t1 = time.time()

    assert not hasattr(ctx, "http")
    metrics = ctx.of_type("http_metrics")
    assert len(metrics) == 2 and seen == [first, second]
    assert ctx.of_type("http_error") == []
    for hop, (msg, response) in enumerate(zip(metrics, seen, strict=True), 1):
        assert set(msg) == MITE_FIELDS | ACURL_RS_EXTRA_FIELDS | {"type", "time", "scenario", "hop"}
        assert msg["scenario"] == "b" and msg["hop"] == hop
        check_metrics_match_response(msg, response)
        check_acurl_rs_extras(msg, response)
        assert msg["download_size"] == float(len(response.body))
    assert metrics[1]["download_size"] > 0  # /echo answers a POST with a body
    check_metrics_values(
        metrics[0], base_url=base, url=base + "/echo", code=200, t_before=t0, t_after=t1
    )
    check_metrics_values(
        metrics[1],
        base_url=base,
        url=base + "/echo",
        code=200,
        method=b"POST",
        t_before=t0,
        t_after=t1,
    )


async def test_acurl_rs_mite_http_same_fields_as_mite(mites_mite_http, test_server):
    url = test_server.base_url + "/echo"

    @mites_mite_http.mite_http
    async def theirs(ctx):
        await ctx.http.get(url)

    @acurl_mite.mite_http
    async def ours(ctx):
        await ctx.http.get(url)

    their_messages, our_messages = [], []
    await theirs(mite_context(their_messages))
    await ours(mite_context(our_messages))
    (their_msg,) = of_type(their_messages, "http_metrics")
    (our_msg,) = of_type(our_messages, "http_metrics")
    assert set(our_msg) - set(their_msg) == ACURL_RS_EXTRA_FIELDS
    assert set(their_msg) - set(our_msg) == set()
    for field in ("effective_url", "response_code", "primary_ip", "method", "download_size"):
        assert our_msg[field] == their_msg[field], field
    for field in MITE_FIELDS:
        assert type(our_msg[field]) is type(their_msg[field]), field


async def test_acurl_rs_mite_http_with_options(test_server):
    base = test_server.base_url

    @acurl_mite.mite_http(
        max_connects=7, http_version="1.1", connection_scope="wrapper", verify=False
    )
    async def journey(ctx):
        r = await ctx.http.get(base + "/echo")
        return ctx.http, r

    ctx = RecordingContext()
    http, response = await journey(ctx)
    assert response.status_code == 200
    (msg,) = ctx.of_type("http_metrics")
    assert msg["http_version"] == response.http_version
    assert msg["effective_url"] == base + "/echo"

    @acurl_mite.mite_http
    async def default_journey(ctx):
        return ctx.http

    # a different max_connects gets its own wrapper on the same loop
    assert (await default_journey(RecordingContext())).wrapper is not http.wrapper


async def test_acurl_rs_mite_http_invalid_option(test_server):
    @acurl_mite.mite_http(http_version="0.9")
    async def journey(ctx):
        raise AssertionError("journey body must not run")

    ctx = RecordingContext()
    with pytest.raises(ValueError, match="Invalid http_version"):
        await journey(ctx)
    assert not hasattr(ctx, "http")
    assert ctx.messages == []


async def test_acurl_rs_mite_http_redirect_chain(test_server):
    base = test_server.base_url
    hops = []

    @acurl_mite.mite_http
    async def journey(ctx):
        def cb(response, additional_metrics):
            hops.append(response)
            additional_metrics["hop_url"] = response.url  # visible in this hop's message

        ctx.http.set_response_callback(cb)
        return await ctx.http.get(base + "/redirect/3")

    ctx = RecordingContext()
    t0 = time.time()
    response = await journey(ctx)
    t1 = time.time()

    assert response.status_code == 200
    assert len(response.history) == 3
    metrics = ctx.of_type("http_metrics")
    assert [m["effective_url"] for m in metrics] == [base + f"/redirect/{n}" for n in (3, 2, 1, 0)]
    assert [m["response_code"] for m in metrics] == [302, 302, 302, 200]
    assert [m["hop_url"] for m in metrics] == [m["effective_url"] for m in metrics]
    assert hops[-1] is response and hops[:3] == list(response.history)
    for msg, hop in zip(metrics, hops, strict=True):
        check_metrics_match_response(msg, hop)
        check_acurl_rs_extras(msg, hop)
        check_metrics_values(
            msg, base_url=base, url=hop.url, code=hop.status_code, t_before=t0, t_after=t1
        )


async def test_acurl_rs_mite_http_connection_refused(test_server):
    base = test_server.base_url
    refused = f"http://127.0.0.1:{closed_port()}/nothing"

    @acurl_mite.mite_http
    async def journey(ctx):
        ctx.http.additional_metrics["scenario"] = "refused"
        try:
            await ctx.http.get(refused)
        except acurl_rs.AcurlError as e:
            error = e
        else:
            raise AssertionError("connection to a closed port succeeded")
        # the session stays usable after a failed request
        after = await ctx.http.get(base + "/echo")
        return error, after

    ctx = RecordingContext()
    t0 = time.time()
    error, after = await journey(ctx)
    t1 = time.time()

    assert isinstance(error, acurl_rs.ConnectError)
    assert isinstance(error, ConnectionError)
    assert error.code == 7
    assert str(error).startswith("curl failed with code 7")
    assert after.status_code == 200

    assert [m["type"] for m in ctx.messages] == ["http_error", "http_metrics"]
    err = ctx.messages[0]
    assert err["url"] == refused
    assert err["method"] == b"GET"
    assert err["curl_code"] == 7
    assert err["error_category"] == "connect" == acurl_rs.ConnectError.category
    assert err["error_message"] == str(error)
    assert err["curl_message"] == error.curl_message
    assert err["ex_type"] == "ConnectError"
    assert err["scenario"] == "refused"
    assert isinstance(err["start_time"], int)
    assert int(t0) - 1 <= err["start_time"] <= t1 + 1
    assert 0.0 <= err["elapsed_time"] <= t1 - t0
    assert 0.0 <= err["total_time"] <= t1 - t0
    assert set(err) >= {
        "type",
        "time",
        "url",
        "method",
        "curl_code",
        "error_category",
        "error_message",
        "curl_message",
        "ex_type",
        "start_time",
        "elapsed_time",
        "total_time",
        "scenario",
    }
    assert ctx.messages[1]["scenario"] == "refused"


async def test_acurl_rs_mite_http_error_propagates_through_journey():
    refused = f"http://127.0.0.1:{closed_port()}/"

    @acurl_mite.mite_http
    async def journey(ctx):
        await ctx.http.request("DELETE", refused)

    ctx = RecordingContext()
    with pytest.raises(acurl_rs.ConnectError):
        await journey(ctx)
    (err,) = ctx.messages
    assert err["type"] == "http_error"
    assert err["method"] == b"DELETE"
    assert err["curl_code"] == 7
    assert not hasattr(ctx, "http")


async def test_acurl_rs_mite_http_too_many_redirects(test_server):
    base = test_server.base_url

    @acurl_mite.mite_http
    async def journey(ctx):
        await ctx.http.get(base + "/redirect/5", max_redirects=2)

    ctx = RecordingContext()
    with pytest.raises(acurl_rs.RequestError, match="Max Redirects"):
        await journey(ctx)
    types = [m["type"] for m in ctx.messages]
    # three completed 302 hops (the start and two followed), then the error
    assert types == ["http_metrics"] * 3 + ["http_error"]
    assert [m["response_code"] for m in ctx.messages[:3]] == [302, 302, 302]
    err = ctx.messages[-1]
    assert err["error_category"] == "redirect"
    assert err["ex_type"] == "RequestError"
    assert err["curl_code"] == 47  # CURLE_TOO_MANY_REDIRECTS, as RequestError carries
    assert err["url"].startswith(base + "/redirect/")


async def test_acurl_rs_mite_http_session_closed_at_journey_end(test_server):
    url = test_server.base_url + "/echo"

    @acurl_mite.mite_http
    async def journey(ctx, fail):
        await ctx.http.get(url)
        if fail:
            raise RuntimeError("journey failed")
        return ctx.http

    ctx = RecordingContext()
    http = await journey(ctx, False)
    assert not hasattr(ctx, "http")
    with pytest.raises(acurl_rs.SessionClosedError):
        await http.session.get(url)

    captured = []
    failing = RecordingContext()

    async def spy_journey(ctx):
        captured.append(ctx.http)
        raise RuntimeError("journey failed")

    with pytest.raises(RuntimeError, match="journey failed"):
        await acurl_mite.mite_http(spy_journey)(failing)
    assert not hasattr(failing, "http")
    with pytest.raises(acurl_rs.SessionClosedError):
        await captured[0].session.get(url)

    # the loop's wrapper is still open: the next journey run works, with a new session
    again = await journey(RecordingContext(), False)
    assert again.wrapper is http.wrapper
    assert again.session is not http.session


async def test_acurl_rs_mite_http_one_wrapper_per_loop(test_server):
    url = test_server.base_url + "/echo"

    @acurl_mite.mite_http
    async def journey(ctx):
        await ctx.http.get(url)
        return ctx.http

    first = await journey(RecordingContext())
    second = await journey(RecordingContext())
    assert first.wrapper is second.wrapper
    assert isinstance(first.wrapper, acurl_rs.CurlWrapper)
    assert first.session is not second.session

    def in_another_loop():
        async def main():
            try:
                a = await journey(RecordingContext())
                b = await journey(RecordingContext())
                return id(a.wrapper), a.wrapper is b.wrapper
            finally:
                acurl_mite.close_wrappers()

        try:
            return asyncio.run(main())
        finally:
            gc.collect()  # this thread's garbage, collected in this thread

    # acurl_rs objects are thread-confined, and a cyclic GC pass frees garbage of every
    # thread in whichever thread it runs (mite's own mite_http leaves session <-> callback
    # cycles): collect this thread's garbage here, and no automatic pass meanwhile.
    gc.collect()
    gc.disable()
    try:
        other_id, shared_there = await asyncio.to_thread(in_another_loop)
    finally:
        gc.enable()
    assert shared_there
    assert other_id != id(first.wrapper)


async def test_acurl_rs_mite_http_wrapper_closed_by_hand_is_replaced(test_server):
    url = test_server.base_url + "/echo"

    @acurl_mite.mite_http
    async def journey(ctx):
        assert (await ctx.http.get(url)).status_code == 200
        return ctx.http

    first = await journey(RecordingContext())
    first.wrapper.close()
    second = await journey(RecordingContext())
    assert second.wrapper is not first.wrapper
    assert not second.wrapper.closed


async def test_acurl_rs_mite_http_error_keeps_its_fields():
    refused = f"http://127.0.0.1:{closed_port()}/"

    @acurl_mite.mite_http
    async def journey(ctx):
        ctx.http.additional_metrics.update(url="not-this", curl_code=0, region="eu")
        await ctx.http.get(refused)

    ctx = RecordingContext()
    with pytest.raises(acurl_rs.ConnectError):
        await journey(ctx)
    (err,) = ctx.messages
    assert err["url"] == refused and err["curl_code"] == 7
    assert err["region"] == "eu"


async def test_acurl_rs_mite_http_nested_journeys(test_server):
    url = test_server.base_url + "/echo"

    @acurl_mite.mite_http
    async def inner(ctx):
        await ctx.http.get(url)
        return ctx.http

    @acurl_mite.mite_http
    async def outer(ctx):
        mine = ctx.http
        theirs = await inner(ctx)
        assert ctx.http is mine  # restored after the inner journey
        await ctx.http.get(url)
        return mine, theirs

    ctx = RecordingContext()
    mine, theirs = await outer(ctx)
    assert mine is not theirs and mine.wrapper is theirs.wrapper
    assert len(ctx.of_type("http_metrics")) == 2
    for http in (mine, theirs):
        with pytest.raises(acurl_rs.SessionClosedError):
            await http.session.get(url)
    assert not hasattr(ctx, "http")


async def test_acurl_rs_mite_http_concurrent_journeys(test_server):
    base = test_server.base_url

    @acurl_mite.mite_http
    async def journey(ctx, n):
        for _ in range(n):
            assert (await ctx.http.get(base + "/echo")).status_code == 200
        return ctx.http

    contexts = [RecordingContext() for _ in range(12)]
    sessions = await asyncio.gather(*(journey(c, i % 3 + 1) for i, c in enumerate(contexts)))
    for i, ctx in enumerate(contexts):
        assert len(ctx.of_type("http_metrics")) == i % 3 + 1
    assert len({id(s.session) for s in sessions}) == 12
    assert len({id(s.wrapper) for s in sessions}) == 1


async def test_acurl_rs_mite_user_callback_error_propagates(test_server):
    @acurl_mite.mite_http
    async def journey(ctx):
        def cb(response, metrics):
            raise KeyError("from callback")

        ctx.http.set_response_callback(cb)
        await ctx.http.get(test_server.base_url + "/echo")

    ctx = RecordingContext()
    with pytest.raises(KeyError, match="from callback"):
        await journey(ctx)
    assert ctx.messages == []  # callback runs before the metrics are sent


def test_import_acurl_rs_mite_does_not_need_mite():
    code = (
        "import sys, acurl_rs.mite\n"
        "assert callable(acurl_rs.mite.mite_http)\n"
        "assert 'mite' not in sys.modules and 'mite_http' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


# ------------------------------------------------------------- (c) mite's runner

JOURNEY_MODULE = '''
import json
import os
import sys

import acurl_rs
from mite.datapools import RecyclableIterableDataPool

{import_decorator}

# `journey run` wraps the datapool so that the journey runs exactly once
datapool = RecyclableIterableDataPool([("only-run",)])


@mite_http
async def journey(ctx, marker):
    assert marker == "only-run"
    base = ctx.config.get("base_url")
    await ctx.http.get(base + "/echo")
    async with ctx.transaction("redirects"):
        await ctx.http.get(base + "/redirect/2")
    try:
        await ctx.http.get(ctx.config.get("refused_url"))
    except acurl_rs.AcurlError as e:
        ctx.send("refused_seen", code=e.code)


class Dump:
    """mite message processor: every message as one JSON line, bytes tagged."""

    def __init__(self, opts):
        self._f = open(os.environ["ACURL_RS_MITE_DUMP"], "a")

    def process_message(self, msg):
        def enc(o):
            if isinstance(o, bytes):
                return {{"__bytes__": o.decode("latin-1")}}
            return repr(o)

        self._f.write(json.dumps(dict(msg), default=enc) + "\\n")
        self._f.flush()

    def close(self):  # mite calls this when the run ends
        self._f.close()
'''

DECORATOR_IMPORTS = {
    "acurl_rs": "from acurl_rs.mite import mite_http",
    "mite": 'sys.modules.setdefault("acurl", acurl_rs)\nfrom mite_http import mite_http',
}


@pytest.mark.parametrize("which", ["acurl_rs", "mite"])
def test_mite_runner_subprocess(which, test_server, tmp_path):
    for module in (
        "mite",
        "msgpack",
        "docopt",
        "ujson",
        "uvloop",
        "flask",
        "packaging",
        "prettytable",
    ):
        pytest.importorskip(module)
    base = test_server.base_url
    refused = f"http://127.0.0.1:{closed_port()}/"
    module_name = f"acurl_rs_mite_journey_{which}"
    (tmp_path / f"{module_name}.py").write_text(
        textwrap.dedent(JOURNEY_MODULE.format(import_decorator=DECORATOR_IMPORTS[which]))
    )
    dump = tmp_path / "messages.jsonl"
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["ACURL_RS_MITE_DUMP"] = str(dump)
    env.pop("MITE_PROFILE", None)  # mite then runs its loop on uvloop
    spec = f"{module_name}:journey"
    cmd = [
        sys.executable,
        "-m",
        "mite",
        "journey",
        "run",
        spec,
        f"{module_name}:datapool",
        f"--message-processors={module_name}:Dump,mite.logoutput:HttpStatsOutput,mite.logoutput:MsgOutput",
        # the collector writes ./collector_data (--collector-dir is not accepted by `journey run`)
        f"--recorder-dir={tmp_path / 'recorder'}",
        f"--add-to-config=base_url:{base}",
        f"--add-to-config=refused_url:{refused}",
        "--max-loop-delay=0.2",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-4000:]

    messages = [json.loads(line) for line in dump.read_text().splitlines()]
    assert not [m for m in messages if m.get("type") in ("exception", "error")], messages
    assert [m["code"] for m in messages if m.get("type") == "refused_seen"] == [7]

    metrics = [m for m in messages if m.get("type") == "http_metrics"]
    assert [m["effective_url"] for m in metrics] == [
        base + "/echo",
        base + "/redirect/2",
        base + "/redirect/1",
        base + "/redirect/0",
    ]
    assert [m["response_code"] for m in metrics] == [200, 302, 302, 200]
    assert [m["transaction"] for m in metrics] == [
        "__root__",
        "__root__ :: redirects",
        "__root__ :: redirects",
        "__root__ :: redirects",
    ]
    expected = (
        MITE_FIELDS
        | CONTEXT_FIELDS
        | {
            "test",
            "runner_id",
            "journey",
            "context_id",
            "scenario_id",
            "scenario_data_id",
        }
    )
    if which == "acurl_rs":
        expected |= ACURL_RS_EXTRA_FIELDS
    for m in metrics:
        assert set(m) == expected
        assert m["journey"] == spec and m["test"] == spec
        assert m["method"] == {"__bytes__": "GET"}
        assert m["primary_ip"] == host_of(base)
        assert 0.0 < m["total_time"] < 30
        assert isinstance(m["start_time"], int)

    errors = [m for m in messages if m.get("type") == "http_error"]
    if which == "acurl_rs":
        assert len(errors) == 1
        assert errors[0]["url"] == refused
        assert errors[0]["curl_code"] == 7
        assert errors[0]["error_category"] == "connect"
        assert errors[0]["journey"] == spec
    else:
        assert errors == []
