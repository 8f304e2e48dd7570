"""A hedgerow node in its own OS process, for the cross-process tests.

Usage: python wamp_node.py URL SERIALIZER [SERIALIZER ...]

For each serializer, one component (offering only that serializer) registers
``com.example.<serializer>.add`` and ``com.example.<serializer>.emit`` (which
publishes ``com.example.<serializer>.tick``). It prints ``ready <serializer>``
once that component is ready and runs until SIGINT. The secret comes from
$HEDGEROW_ROUTER_SECRET.
"""

from __future__ import annotations

import os
import sys

import hedgerow as hr
from hedgerow.transports import PublishOptions


def component(url: str, serializer: str) -> hr.Component:
    secret = os.environ["HEDGEROW_ROUTER_SECRET"]
    comp = hr.Component(
        transports={"url": url, "serializers": [serializer]},
        authentication={"ticket": {"authid": "hedgerow", "ticket": secret}},
        name=f"node-{serializer}",
    )
    prefix = f"com.example.{serializer}"

    @comp.register(f"{prefix}.add")
    def add(a, b):
        return a + b

    @comp.on_join
    def joined(session, details):
        def emit(*args, **kwargs):
            session.publish(
                f"{prefix}.tick", *args, options=PublishOptions(acknowledge=True), **kwargs
            )
            return details.serializer

        session.register(emit, f"{prefix}.emit")

    @comp.on_ready
    def ready(session):
        print(f"ready {serializer} {session.serializer}", flush=True)  # noqa: T201 - the test reads it

    return comp


if __name__ == "__main__":
    url, *serializers = sys.argv[1:]
    hr.run([component(url, s) for s in serializers], log_level="warning", stop_at_close=False)
