"""Three components written the way autobahn users write them: every handler is
``async def``, and each ``await session.call(...)`` suspends only its component.

- ``store`` serves ``com.example.store.put`` and ``.get``, and publishes each
  change on ``com.example.store.changed``;
- ``auditor`` follows the changes; a change without a value is a bad event
  (what a subscriber meets when anyone may publish), and its handler raises;
- ``writer`` is a ``main`` (autobahn's: it runs once joined, and the session
  leaves when it returns): it writes 12 values, one every 0.1 s, the seventh
  without a value, reads one back, and says it is closing.

Run as a script, they run with `hedgerow.run`, as autobahn's ``run``: the
auditor's error is reported and it goes on (autobahn's rule). The tree file
next to this one runs them under a supervisor with Erlang's rule for the
auditor (``event_errors_fail``): it fails on the bad event, and is restarted.

    python examples/async_components/components.py
    hedgerow run examples/async_components/tree.toml
"""

from __future__ import annotations

import asyncio
from typing import Any

import hedgerow as hr

WRITES = 12
INTERVAL = 0.1
BAD = 7
"""The write that carries no value."""

# -- the store -------------------------------------------------------------------

store = hr.Component(name="store")
values: dict[str, Any] = {}
store_sessions: list[Any] = []


@store.on_join
async def store_joined(session: Any, details: Any) -> None:
    store_sessions.append(session)  # the latest session: the one to publish on
    print(f"store: joined {details.realm}", flush=True)


@store.register("com.example.store.put")
async def put(key: str, value: Any) -> int:
    await asyncio.sleep(0)  # as a write through an async database driver would
    values[key] = value
    await store_sessions[-1].publish("com.example.store.changed", key, value)
    return len(values)


@store.register("com.example.store.get")
async def get(key: str) -> Any:
    return values.get(key)


@store.subscribe("com.example.store.closing")
async def store_closing() -> None:
    await store_sessions[-1].leave()


# -- the auditor ------------------------------------------------------------------

auditor = hr.Component(name="auditor")
auditor_sessions: list[Any] = []
audited: list[str] = []


@auditor.on_join
async def auditor_joined(session: Any, _details: Any) -> None:
    auditor_sessions.append(session)
    again = " again" if len(auditor_sessions) > 1 else ""
    print(f"auditor: joined{again}, {len(audited)} changes audited so far", flush=True)


@auditor.subscribe("com.example.store.changed")
async def changed(key: str, value: Any) -> None:
    if value is None:
        raise ValueError(f"auditor: {key} changed without a value")
    audited.append(key)
    print(f"auditor: {key} = {value}", flush=True)


@auditor.subscribe("com.example.store.closing")
async def auditor_closing() -> None:
    await auditor_sessions[-1].leave()


# -- the writer -------------------------------------------------------------------


async def write(_actor: Any, session: Any) -> None:
    for number in range(1, WRITES + 1):
        value = None if number == BAD else number * 10
        count = await session.call("com.example.store.put", f"k{number}", value)
        print(f"writer: k{number} written, {count} keys in the store", flush=True)
        await asyncio.sleep(INTERVAL)
    last = await session.call("com.example.store.get", f"k{WRITES}")
    print(f"writer: read back k{WRITES} = {last}; closing", flush=True)
    await session.publish("com.example.store.closing")


writer = hr.Component(write, name="writer")


if __name__ == "__main__":
    # As autobahn's run: returns once every component is done (the writer's main
    # has returned, and the store and the auditor have left).
    reason = hr.run([store, auditor, writer], log_level="warning")
    print(f"run: done ({reason}); the auditor audited {len(audited)} changes", flush=True)
