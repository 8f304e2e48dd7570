"""Actors: `Actor` (on pykka), stable `ChildRef`s, links and monitors, WAMP-style `Component`s."""

from hedgerow.actors._actor import Actor, demonitor, link, monitor, unlink
from hedgerow.actors._component import Component, ComponentActor, run
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

__all__ = [
    "KILLED",
    "NOPROC",
    "NORMAL",
    "SHUTDOWN",
    "Actor",
    "ChildRef",
    "Component",
    "ComponentActor",
    "Down",
    "Exit",
    "Reason",
    "demonitor",
    "describe",
    "is_normal",
    "link",
    "monitor",
    "run",
    "unlink",
]
