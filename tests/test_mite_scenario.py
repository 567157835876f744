"""mite 2.11 itself runs a scenario on acurl_rs: ``mite scenario test`` in a subprocess.

The scenario (tests/mite_scenarios/h2_journeys.py) runs JOURNEYS journeys, VOLUME at a time,
each of 5 sequential GETs over HTTP/2 + TLS to a private nginx on 127.0.0.1, with

- ``alias``: mite's own ``mite_http`` with ``sys.modules["acurl"] = acurl_rs``;
- ``adapter``: ``acurl_rs.mite.mite_http``.

What mite emitted is read back from the collector files that ``scenario test`` writes
(``./collector_data``, msgpack) and checked against nginx's access log: one ``http_metrics``
per request and per nginx log line, no ``error``/``exception``/``http_error``, and
connections bounded by the concurrency, not by the number of journeys (acurl's model: the
wrapper, one per event loop, owns the connections). A control run in session scope (one
connection per journey) shows that the connection count tells the two models apart.

Needs mite 2.11.0 (``pip install --no-deps mite==2.11.0``) plus what ``scenario test``
imports: msgpack docopt ujson uvloop flask packaging prettytable pyzmq (Makefile ``dev``).
Skips only when mite itself is not installed.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mite_scenarios.results import (
    check_messages,
    check_nginx,
    mite_env,
    of_type,
    read_collector,
    request_key,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mite") is None,
    reason="mite is not installed (make dev: pip install --no-deps mite==2.11.0 ...)",
)

SCENARIO = "mite_scenarios.h2_journeys:scenario"
JOURNEYS = 40
VOLUME = 4  # concurrent journeys


def run_mite_scenario(nginx, tmp_path: Path, flavour: str, **env: str):
    cmd = [
        sys.executable,
        "-m",
        "mite",
        "scenario",
        "test",
        SCENARIO,
        f"--add-to-config=base_url:{nginx.https_url}",
        f"--add-to-config=journeys:{JOURNEYS}",
        f"--add-to-config=volume:{VOLUME}",
        "--max-loop-delay=0.2",  # the runner asks for work at least every 0.2 s
    ]
    t0 = time.monotonic()
    out = subprocess.run(
        cmd,
        cwd=tmp_path,  # scenario test writes ./collector_data and ./recorder_data
        env=mite_env(nginx, flavour, **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - t0
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    assert "Traceback" not in log, log[-4000:]
    assert "unsendable" not in log, log[-4000:]
    return read_collector(tmp_path / "collector_data"), elapsed, log


@pytest.mark.parametrize("flavour", ["alias", "adapter"])
def test_mite_scenario_test_on_acurl_rs(flavour, nginx_factory, tmp_path):
    nginx = nginx_factory()
    messages, elapsed, _log = run_mite_scenario(nginx, tmp_path, flavour)

    metrics = check_messages(messages, flavours={flavour}, journeys=JOURNEYS)
    entries = check_nginx(nginx, journeys=JOURNEYS)
    assert {request_key(e["uri"])[0] for e in entries} == {flavour}
    assert len(metrics) == len(entries)
    # the in-process controller reported to the same message bus
    assert of_type(messages, "controller_report")

    # Connections: bounded by the journeys in flight, not by the journeys run. In session
    # scope every journey would open its own (see the control test below).
    assert JOURNEYS >= 5 * VOLUME
    connections = {e["conn"] for e in entries}
    assert 1 <= len(connections) <= VOLUME, sorted(connections)
    if flavour == "adapter":
        # the adapter reports libcurl's connection ids: as many as nginx saw
        conn_ids = {m["conn_id"] for m in metrics}
        assert len(conn_ids) == len(connections), (conn_ids, connections)
    print(
        f"{flavour}: {len(metrics)} http_metrics, {len(entries)} nginx requests, "
        f"{len(connections)} connections, {elapsed:.2f} s"
    )


def test_mite_scenario_test_session_scope_control(nginx_factory, tmp_path):
    """The control: acurl_rs.mite in session scope gives each journey its own connection,
    so the count above is what tells wrapper scope apart."""
    nginx = nginx_factory()
    messages, _elapsed, _log = run_mite_scenario(
        nginx, tmp_path, "adapter", ACURL_RS_MITE_SCOPE="session"
    )
    metrics = check_messages(messages, flavours={"adapter"}, journeys=JOURNEYS)
    entries = check_nginx(nginx, journeys=JOURNEYS)
    connections = {e["conn"] for e in entries}
    assert len(connections) == JOURNEYS
    # and all the requests of one journey share its connection
    by_journey = {}
    for e in entries:
        by_journey.setdefault(request_key(e["uri"])[1], set()).add(e["conn"])
    assert all(len(c) == 1 for c in by_journey.values())
    # conn_id (CURLINFO_CONN_ID) numbers the connections of one pool: in session scope each
    # session's pool starts again, so here it only shows one connection per journey
    conn_ids = {}
    for m in metrics:
        conn_ids.setdefault(m["journey_no"], set()).add(m["conn_id"])
    assert all(len(c) == 1 for c in conn_ids.values())
