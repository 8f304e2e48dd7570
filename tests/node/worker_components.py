"""Components that worker processes in tests host (named in tree files)."""

from __future__ import annotations

import os
import sys

import hedgerow as hr
from hedgerow.transports import ComponentSession, selected_framework

adder = hr.Component(name="adder")


@adder.register("com.example.worker.add")
def add(a: int, b: int) -> dict[str, int]:
    return {"sum": a + b, "pid": os.getpid()}


greeter = hr.Component(name="greeter")


@greeter.register("com.example.worker.greet")
def greet(name: str) -> str:
    return f"hello {name}"


def _whoami() -> dict[str, object]:
    """What this process runs its WAMP sessions on, and whether Twisted's reactor runs."""
    reactor = sys.modules.get("twisted.internet.reactor")
    return {
        "framework": selected_framework(),
        "reactor_running": bool(reactor is not None and reactor.running),  # type: ignore[attr-defined]
        "pid": os.getpid(),
    }


asyncio_side = hr.Component(name="asyncio_side")
asyncio_side.register("com.example.frameworks.asyncio.whoami")(_whoami)


@asyncio_side.register("com.example.frameworks.asyncio.double")
def double(n: int) -> int:
    return 2 * n


twisted_side = hr.Component(name="twisted_side")
twisted_side.register("com.example.frameworks.twisted.whoami")(_whoami)
_twisted_sessions: list[ComponentSession] = []


@twisted_side.on_join
def _twisted_joined(session: ComponentSession, _details: object) -> None:
    _twisted_sessions.append(session)


@twisted_side.register("com.example.frameworks.twisted.relay")
def relay(n: int) -> dict[str, object]:
    """Calls the asyncio side through the router, from a handler: Twisted to asyncio."""
    doubled = _twisted_sessions[-1].call("com.example.frameworks.asyncio.double", n).get(timeout=10)
    return {"doubled": doubled, **_whoami()}
