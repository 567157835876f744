"""pytest plugin for the run of acurl 1.2.1's published tests (tests/test_acurl_published.py).

Loaded with ``-p acurl_alias`` from this directory (on PYTHONPATH), before pytest collects
anything, so acurl's test modules find acurl_rs when they ``import acurl``: nothing of acurl's
is installed, and none of its files is changed. The sdist ships acurl's tests without their
conftest.py and helpers.py, so this plugin supplies the one fixture they use
(``acurl_session``) and ``helpers.py`` beside it supplies ``create_request``; the ``httpbin``
and ``httpserver`` fixtures come from pytest-httpbin and pytest-httpserver, loaded by ``-p``.

It also skips (with the reason given in ACURL_HARNESS_SKIPS, a JSON object nodeid -> reason)
the tests that would reach outside the machine, refuses to run if one of those is not
collected, and, when ACURL_HARNESS_NETNS=1, checks that only the loopback interface exists.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import acurl_rs

sys.modules["acurl"] = acurl_rs

_SKIPS: dict[str, str] = json.loads(os.environ.get("ACURL_HARNESS_SKIPS", "{}"))


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("ACURL_HARNESS_NETNS") == "1":
        interfaces = sorted(name for _, name in socket.if_nameindex())
        if interfaces != ["lo"]:
            raise pytest.UsageError(f"expected a network namespace with only lo: {interfaces}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    by_id = {item.nodeid: item for item in items}
    missing = sorted(set(_SKIPS) - set(by_id))
    if missing:
        raise pytest.UsageError(f"tests to skip were not collected: {missing}")
    for nodeid, reason in _SKIPS.items():
        by_id[nodeid].add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session", autouse=True)
def _acurl_is_acurl_rs(record_testsuite_property) -> None:
    # Read back by the outer test: proof that `import acurl` gave acurl_rs, from this tree.
    import acurl

    record_testsuite_property("acurl_module", acurl.__name__)
    record_testsuite_property("acurl_file", acurl.__file__ or "")


@pytest_asyncio.fixture
async def acurl_session() -> AsyncIterator[acurl_rs.Session]:
    """A session of a wrapper bound to the test's loop, as acurl's own conftest made it."""
    wrapper = acurl_rs.CurlWrapper(asyncio.get_running_loop())
    session = wrapper.session()
    try:
        yield session
    finally:
        session.close()
        wrapper.close()
