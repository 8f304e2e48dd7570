"""A plain autobahn client (no hedgerow), for the interoperability test.

Usage: python autobahn_client.py URL SECRET PREFIX

Calls ``PREFIX.add(2, 3)``, subscribes to ``PREFIX.tick``, calls
``PREFIX.emit("hello")`` and waits for the event; prints one JSON line with
what it got, then leaves.
"""

from __future__ import annotations

import asyncio
import json
import sys

import txaio

txaio.use_asyncio()

from autobahn.asyncio.component import Component, run  # noqa: E402

url, secret, prefix = sys.argv[1:]
comp = Component(
    transports=[{"url": url, "serializers": ["json"], "max_retries": 0}],
    realm="realm1",
    authentication={"wampcra": {"authid": "hedgerow", "secret": secret}},
)


@comp.on_join
async def joined(session, details):
    got = asyncio.get_running_loop().create_future()
    await session.subscribe(
        lambda *a, **kw: got.done() or got.set_result([a, kw]), f"{prefix}.tick"
    )
    total = await session.call(f"{prefix}.add", 2, 3)
    await session.call(f"{prefix}.emit", "hello", n=1)
    event = await asyncio.wait_for(got, 10)
    print(json.dumps({"add": total, "event": event, "authid": details.authid}), flush=True)  # noqa: T201 - the test reads it
    await session.leave()


run([comp], log_level="warn")
