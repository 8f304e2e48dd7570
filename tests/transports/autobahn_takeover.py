"""A plain autobahn client (no hedgerow) that tries to take a procedure over.

Usage: python autobahn_takeover.py URL PROCEDURE [AUTHID TICKET]

Registers PROCEDURE with ``force_reregister=True`` (which kicks out an
existing registration, if the router allows the registration at all), as
AUTHID with a ticket or anonymously; prints one JSON line, ``{"error":
<uri>}`` or ``{"registered": true}``, then leaves.
"""

from __future__ import annotations

import json
import sys

import txaio

txaio.use_asyncio()

from autobahn.asyncio.component import Component, run  # noqa: E402
from autobahn.wamp.exception import ApplicationError  # noqa: E402
from autobahn.wamp.types import RegisterOptions  # noqa: E402

url, procedure, *credentials = sys.argv[1:]
authentication = (
    {"ticket": {"authid": credentials[0], "ticket": credentials[1]}} if credentials else None
)
comp = Component(
    transports=[{"url": url, "serializers": ["json"], "max_retries": 0}],
    realm="realm1",
    authentication=authentication,
)


@comp.on_join
async def joined(session, _details):
    try:
        await session.register(
            lambda *a, **kw: "impostor", procedure, options=RegisterOptions(force_reregister=True)
        )
    except ApplicationError as exc:
        print(json.dumps({"error": exc.error}), flush=True)  # noqa: T201 - the test reads it
    else:
        print(json.dumps({"registered": True}), flush=True)  # noqa: T201
    await session.leave()


run([comp], log_level="warn")
