"""A mite 2.11 scenario: journeys of 5 sequential GETs over HTTP/2 + TLS, run on acurl_rs.

Which ``mite_http`` decorates the journey is chosen per process by the environment variable
``ACURL_RS_MITE_FLAVOUR``:

- ``alias`` (default): mite's own ``mite_http``, imported after ``sys.modules["acurl"] =
  acurl_rs`` (docs/MITE_NOTES.md, "Using mite's own mite_http with acurl_rs");
- ``adapter``: ``acurl_rs.mite.mite_http``; with ``ACURL_RS_MITE_SCOPE=session`` (or
  ``wrapper``) it is ``acurl_rs.mite.mite_http(connection_scope=...)`` instead of the bare
  decorator (the tests' control run: one connection per journey).

Config (``--add-to-config=key:value`` on ``mite scenario test`` or ``mite controller``):

- ``base_url`` (required): ``https://127.0.0.1:PORT`` of the nginx test server; the CA comes
  from ``SSL_CERT_FILE`` in the runner's environment (mite's ``mite_http`` passes no options);
- ``journeys`` (default 40): the datapool's size, so exactly that many journeys run, each once,
  and then the scenario ends (the datapool is exhausted);
- ``volume`` (default 4): concurrent journeys (mite's volume model counts journeys in flight);
- ``think_time`` (default 0): seconds a journey sleeps after each request;
- ``max_seconds`` (default 30): the volume model stops the scenario after this, come what may.

Each request is ``GET {base_url}/?f=<flavour>&j=<journey>&s=<step>``: nginx's access log and
the ``http_metrics`` messages can then be matched one to one. Every ``http_metrics`` also
carries ``flavour`` and ``journey_no`` through ``ctx.http.additional_metrics``.
"""

import asyncio
import os
import sys

from mite.datapools import IterableDataPool
from mite.scenario import StopVolumeModel

from .results import REQUESTS_PER_JOURNEY

FLAVOUR = os.environ.get("ACURL_RS_MITE_FLAVOUR", "alias")
if FLAVOUR == "alias":
    import acurl_rs

    sys.modules["acurl"] = acurl_rs  # before anything imports mite_http
    from mite_http import mite_http
elif FLAVOUR == "adapter":
    from acurl_rs.mite import mite_http

    if os.environ.get("ACURL_RS_MITE_SCOPE"):
        mite_http = mite_http(connection_scope=os.environ["ACURL_RS_MITE_SCOPE"])
else:
    raise ValueError(f"ACURL_RS_MITE_FLAVOUR must be 'alias' or 'adapter', not {FLAVOUR!r}")

JOURNEY_SPEC = "mite_scenarios.h2_journeys:journey"


@mite_http
async def journey(ctx, journey_no):
    base_url = ctx.config.get("base_url")
    think_time = float(ctx.config.get("think_time", 0))
    ctx.http.additional_metrics.update(flavour=FLAVOUR, journey_no=journey_no)
    for step in range(REQUESTS_PER_JOURNEY):
        async with ctx.transaction(f"get {step}"):
            response = await ctx.http.get(f"{base_url}/?f={FLAVOUR}&j={journey_no}&s={step}")
            if response.status_code != 200 or response.text != "hello\n":
                raise AssertionError(f"step {step}: {response.status_code} {response.text!r}")
        if think_time:
            await asyncio.sleep(think_time)


def scenario(config):
    journeys = int(config.get("journeys", 40))
    volume = int(config.get("volume", 4))
    max_seconds = float(config.get("max_seconds", 30))

    def volume_model(start, end):
        if start > max_seconds:
            raise StopVolumeModel
        return volume

    datapool = IterableDataPool((journey_no,) for journey_no in range(journeys))
    return [(JOURNEY_SPEC, datapool, volume_model)]
