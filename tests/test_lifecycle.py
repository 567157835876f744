"""Cancellation, closing and collection: nothing leaks, nothing is left on the loop."""

from __future__ import annotations

import asyncio
import gc
import os
import socket
import stat
import time
import weakref

import pytest

import acurl_rs
from helpers import live_timers, open_fds, run_on_uvloop, watched_fds


async def test_idle_loop_holds_no_reader_writer_or_timer_of_ours(test_server):
    # Idle, curl watches nothing. The loop keeps only parked readers: one per idle pooled
    # connection and the multi's wakeup socket (kept so the next request does not add them
    # again), each an open socket; close() drops them all.
    loop = asyncio.get_running_loop()
    wrapper = acurl_rs.CurlWrapper(loop)
    s = wrapper.session()
    responses = await asyncio.gather(*(s.get(test_server.url("/echo")) for _ in range(20)))
    assert wrapper._native.registrations() == ([], False)
    parked = set(wrapper._native.parked())
    assert watched_fds(loop) == parked
    assert len(parked) <= len({r.conn_id for r in responses}) + 1
    for fd in parked:
        assert stat.S_ISSOCK(os.fstat(fd).st_mode)
    assert live_timers(loop) == []
    s.close()
    wrapper.close()
    assert watched_fds(loop) == set()


async def test_a_parked_connection_closed_by_its_peer_is_dropped_without_spinning(nginx_factory):
    server = nginx_factory(extra_http="keepalive_timeout 1s;")
    loop = asyncio.get_running_loop()
    async with acurl_rs.CurlWrapper(loop) as wrapper:
        s = wrapper.session()
        r = await s.get(server.http_url + "/conn")
        assert r.status_code == 200
        assert wrapper._native.registrations() == ([], False)
        parked_before = set(wrapper._native.parked())
        assert parked_before, "the idle connection's reader is parked"
        cpu0 = time.process_time()
        await asyncio.sleep(1.8)  # nginx closes the idle connection after 1 s
        assert time.process_time() - cpu0 < 0.3, "a readable parked socket must not spin"
        # The closed connection's reader is gone (at most the multi's wakeup socket stays).
        assert len(wrapper._native.parked()) == len(parked_before) - 1
        assert watched_fds(loop) == set(wrapper._native.parked())
        r = await s.get(server.http_url + "/conn")  # curl notices the dead connection
        assert r.status_code == 200 and r.num_connects == 1
        s.close()


async def test_a_socket_closed_by_curl_leaves_no_registration_behind(test_server):
    # A session-scope session's connections close with it, through curl's close-socket hook:
    # their parked readers go first, so the fd number can serve any new socket at once.
    loop = asyncio.get_running_loop()
    async with acurl_rs.CurlWrapper(loop) as wrapper:
        warm = wrapper.session()
        await warm.get(test_server.url("/echo"))  # the wakeup socket is parked from now on
        steady = set(wrapper._native.parked())
        s = wrapper.session(connection_scope="session")
        await s.get(test_server.url("/echo"))
        connection_fds = set(wrapper._native.parked()) - steady
        assert len(connection_fds) == 1
        s.close()
        assert set(wrapper._native.parked()) == steady
        assert watched_fds(loop) == steady
        # The freed number goes to the next socket; registering it must just work.
        a, b = socket.socketpair()
        try:
            assert a.fileno() in connection_fds or b.fileno() in connection_fds
            got = loop.create_future()
            loop.add_reader(a.fileno(), got.set_result, True)
            b.send(b"x")
            assert await asyncio.wait_for(got, 2)
            loop.remove_reader(a.fileno())
        finally:
            a.close()
            b.close()
        warm.close()


async def test_cancelling_200_in_flight_requests_leaks_no_fd(test_server):
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session()
    await s.get(test_server.url("/echo"))  # warm: first-use allocations are not leaks
    s.close()
    baseline = open_fds()
    s = wrapper.session()
    tasks = [asyncio.create_task(s.get(test_server.url("/sleep-forever"))) for _ in range(200)]
    await asyncio.sleep(0.3)
    assert wrapper._native.in_flight == 200
    for t in tasks:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert wrapper._native.in_flight == 0
    r = await s.get(test_server.url("/echo"))  # the next request works
    assert r.status_code == 200
    s.close()
    await asyncio.sleep(0.05)
    assert open_fds() <= baseline
    assert wrapper._native.registrations() == ([], False)
    wrapper.close()


async def test_timeout_is_a_timeout_error_and_the_session_goes_on(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        with pytest.raises(TimeoutError) as info:
            await s.get(test_server.url("/sleep-forever"), timeout=0.2)
        err = info.value
        assert isinstance(err, acurl_rs.AcurlError) and err.code == 28
        assert str(err).startswith("curl failed with code 28")
        assert (await s.get(test_server.url("/echo"))).status_code == 200
        s.close()


async def test_session_timeout_default_applies(test_server):
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session(timeout=0.2)
        with pytest.raises(acurl_rs.AcurlTimeoutError):
            await s.get(test_server.url("/slow?delay=2"))
        s.close()


async def test_closing_a_session_fails_its_requests_in_flight(test_server):
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session()
    task = asyncio.create_task(s.get(test_server.url("/sleep-forever")))
    await asyncio.sleep(0.1)
    s.close()
    with pytest.raises(acurl_rs.SessionClosedError):
        await task
    with pytest.raises(acurl_rs.SessionClosedError):
        await s.get(test_server.url("/echo"))
    wrapper.close()


async def test_closing_the_wrapper_fails_requests_and_unregisters(test_server):
    loop = asyncio.get_running_loop()
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session()
    task = asyncio.create_task(s.get(test_server.url("/sleep-forever")))
    await asyncio.sleep(0.1)
    wrapper.close()
    with pytest.raises(acurl_rs.SessionClosedError):
        await task
    assert watched_fds(loop) == set() and live_timers(loop) == []


async def test_sessions_and_wrappers_are_collected(test_server):
    wrapper = acurl_rs.CurlWrapper()
    s = wrapper.session()
    await s.get(test_server.url("/echo"))
    refs = [
        weakref.ref(wrapper),
        weakref.ref(s),
        weakref.ref(s._native),
        weakref.ref(wrapper._native),
    ]
    del wrapper, s
    gc.collect()
    assert [r() for r in refs] == [None, None, None, None]


def test_closed_loop_tears_down_cleanly(test_server):
    loop = asyncio.new_event_loop()
    wrapper = acurl_rs.CurlWrapper(loop)
    s = wrapper.session()

    async def start():
        return asyncio.ensure_future(s.get(test_server.url("/sleep-forever")))

    task = loop.run_until_complete(start())
    loop.run_until_complete(asyncio.sleep(0.1))
    task.cancel()
    loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
    loop.close()
    s.close()
    wrapper.close()


def test_works_on_uvloop(test_server, nginx):
    async def main():
        async with acurl_rs.CurlWrapper() as wrapper:
            s = wrapper.session(verify=nginx.ca_path)
            plain = await asyncio.gather(*(s.get(test_server.url("/echo")) for _ in range(50)))
            h2 = await asyncio.gather(*(s.get(nginx.https_url + "/") for _ in range(50)))
            with pytest.raises(TimeoutError):
                await s.get(test_server.url("/sleep-forever"), timeout=0.1)
            t = asyncio.ensure_future(s.get(test_server.url("/sleep-forever")))
            await asyncio.sleep(0.05)
            t.cancel()
            await asyncio.gather(t, return_exceptions=True)
            assert wrapper._native.in_flight == 0
            s.close()
            return plain, h2

    plain, h2 = run_on_uvloop(main)
    assert all(r.status_code == 200 for r in plain)
    assert {r.http_version for r in h2} == {"2"}
    assert len({r.conn_id for r in h2}) == 1


async def test_a_timeout_keeps_the_cookies_of_the_session(test_server):
    # After a timeout the session's pool starts afresh (a dead HTTP/2 connection must not be
    # chosen again); its cookie jar must survive that.
    async with acurl_rs.CurlWrapper() as wrapper:
        s = wrapper.session()
        await s.get(test_server.url("/set-cookie?user=alice"))
        with pytest.raises(acurl_rs.AcurlTimeoutError):
            await s.get(test_server.url("/sleep-forever"), timeout=0.1)
        assert s.cookies() == {"user": "alice"}
        assert (await s.get(test_server.url("/cookies"))).json() == "user=alice"
        s.close()
