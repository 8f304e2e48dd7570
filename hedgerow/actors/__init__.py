"""Actors: `Actor` (on pykka's threads) and `AsyncioActor` (on an event loop),
stable `ChildRef`s, links and monitors. (WAMP-style components, supervised
actors, are a layer above: `hedgerow.components`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from hedgerow.actors._actor import Actor
    from hedgerow.actors._ask import ask
    from hedgerow.actors._async_actor import AsyncioActor
    from hedgerow.actors._async_future import AsyncioFuture
    from hedgerow.actors._inbox import InboxSettings, InboxStatistics, Overflow
    from hedgerow.actors._links import demonitor, link, monitor, unlink
    from hedgerow.actors._loop import set_block_threshold
    from hedgerow.actors._messages import Down, Exit
    from hedgerow.actors._reason import (
        KILLED,
        NOPROC,
        NORMAL,
        SHUTDOWN,
        Reason,
        describe,
        is_normal,
    )
    from hedgerow.actors._ref import ChildRef
    from hedgerow.actors._tell import tell

__all__ = [
    "KILLED",
    "NOPROC",
    "NORMAL",
    "SHUTDOWN",
    "Actor",
    "AsyncioActor",
    "AsyncioFuture",
    "ChildRef",
    "Down",
    "Exit",
    "InboxSettings",
    "InboxStatistics",
    "Overflow",
    "Reason",
    "ask",
    "demonitor",
    "describe",
    "is_normal",
    "link",
    "monitor",
    "set_block_threshold",
    "tell",
    "unlink",
]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Actor": "hedgerow.actors._actor",
        "demonitor": "hedgerow.actors._links",
        "link": "hedgerow.actors._links",
        "monitor": "hedgerow.actors._links",
        "unlink": "hedgerow.actors._links",
        "ask": "hedgerow.actors._ask",
        "tell": "hedgerow.actors._tell",
        "AsyncioActor": "hedgerow.actors._async_actor",
        "AsyncioFuture": "hedgerow.actors._async_future",
        "set_block_threshold": "hedgerow.actors._loop",
        "InboxSettings": "hedgerow.actors._inbox",
        "InboxStatistics": "hedgerow.actors._inbox",
        "Overflow": "hedgerow.actors._inbox",
        "Down": "hedgerow.actors._messages",
        "Exit": "hedgerow.actors._messages",
        "KILLED": "hedgerow.actors._reason",
        "NOPROC": "hedgerow.actors._reason",
        "NORMAL": "hedgerow.actors._reason",
        "SHUTDOWN": "hedgerow.actors._reason",
        "Reason": "hedgerow.actors._reason",
        "describe": "hedgerow.actors._reason",
        "is_normal": "hedgerow.actors._reason",
        "ChildRef": "hedgerow.actors._ref",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
