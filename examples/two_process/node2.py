"""Node 2: subscribes to ``com.example.adder.added``, calls ``com.example.adder.add``
five times, waits for the five events, then leaves (and the process exits).

Reads the router's URL from $HEDGEROW_ROUTER_URL (default
ws://127.0.0.1:8080/ws) and its own secret from $HEDGEROW_NODE2_SECRET: it
joins as principal ``node2``, which may call node 1 but not take its names.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import hedgerow
from hedgerow.transports import ComponentSession  # noqa: TC001 - annotations only, but readable

URL = os.environ.get("HEDGEROW_ROUTER_URL", "ws://127.0.0.1:8080/ws")
SECRET = os.environ["HEDGEROW_NODE2_SECRET"]
CALLS = 5

events: list[Any] = []


def main(actor: Any, session: ComponentSession) -> None:
    """Runs on the component's actor thread once it joined (and subscribed)."""
    for n in range(CALLS):
        total = session.call("com.example.adder.add", n, 10).get(timeout=10)
        print(f"node 2: add({n}, 10) -> {total}", flush=True)
    # Let the actor handle its deliveries until the events are all in.
    if not actor.serve_until(lambda: len(events) >= CALLS, 10):
        print(f"node 2: only {len(events)} of {CALLS} events arrived", flush=True)
        sys.exit(1)


caller = hedgerow.Component(
    main=main,
    transports={"url": URL, "serializers": ["cbor"]},
    realm="realm1",
    authentication={"wampcra": {"authid": "node2", "secret": SECRET}},
    name="caller",
)


@caller.subscribe("com.example.adder.added")
def added(a: int, b: int, total: int) -> None:
    events.append((a, b, total))
    print(f"node 2: event {a} + {b} = {total}", flush=True)


if __name__ == "__main__":
    reason = hedgerow.run([caller], log_level="warning")
    print(f"node 2: done ({len(events)} events)", flush=True)
    sys.exit(0 if hedgerow.is_normal(reason) and len(events) == CALLS else 1)
