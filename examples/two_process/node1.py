"""Node 1: serves ``com.example.adder.add`` and publishes each sum on
``com.example.adder.added``, names only its principal (``node1``) may take.

Runs until Ctrl-C. Reads the router's URL from $HEDGEROW_ROUTER_URL (default
ws://127.0.0.1:8080/ws) and its own secret from $HEDGEROW_NODE1_SECRET.
With ``--twisted`` its WAMP session runs on Twisted's reactor instead of asyncio
(node 2 does not need to know).
"""

from __future__ import annotations

import os
import sys

import hedgerow
from hedgerow.transports import ComponentSession, selected_framework

URL = os.environ.get("HEDGEROW_ROUTER_URL", "ws://127.0.0.1:8080/ws")
SECRET = os.environ["HEDGEROW_NODE1_SECRET"]

adder = hedgerow.Component(
    transports={"url": URL, "max_retries": -1, "initial_retry_delay": 0.5},
    realm="realm1",
    authentication={"ticket": {"authid": "node1", "ticket": SECRET}},
    name="adder",
)
sessions: list[ComponentSession] = []


@adder.on_join
def joined(session: ComponentSession, _details: object) -> None:
    sessions.append(session)  # the latest session: the one to publish on
    print(f"node 1: joined {session.realm} as session {session.session_id}", flush=True)


@adder.register("com.example.adder.add")
def add(a: int, b: int) -> int:
    total = a + b
    sessions[-1].publish("com.example.adder.added", a, b, total=total)
    print(f"node 1: add({a}, {b}) = {total}", flush=True)
    return total


@adder.on_ready
def ready(_session: ComponentSession) -> None:
    print(f"node 1: ready (on {selected_framework()})", flush=True)


if __name__ == "__main__":
    if "--twisted" in sys.argv[1:]:
        hedgerow.use_framework("twisted")  # before anything joins: one framework per process
    # A router that is not up yet, or lost, is retried with the transport's backoff
    # (the first join too, as autobahn's Component starts); Ctrl-C stops the node.
    hedgerow.run([adder], log_level="warning", stop_at_close=False)
