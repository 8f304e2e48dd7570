"""Messages the runtime delivers to actors: `Down` for monitors, `Exit` for links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Down", "Exit"]


@dataclass(frozen=True, slots=True)
class Down:
    """A monitored actor exited. `monitor` is the token `actor_monitor` returned."""

    ref: Any
    reason: Any
    monitor: int


@dataclass(frozen=True, slots=True)
class Exit:
    """A linked actor exited; delivered instead of dying when `actor_trap_exits` is set."""

    ref: Any
    reason: Any


class _Internal:
    """Base of the runtime's own messages: never reported as a user's dead letter."""

    __slots__ = ()


class _Control(_Internal):
    """A runtime instruction travelling in an actor's inbox, never shown to user code."""

    __slots__ = ("kind", "reason", "sender", "token")

    STOP = "stop"
    EXIT_SIGNAL = "exit"
    CALL = "call"
    """Run ``reason(actor)`` in the actor's thread, ahead of its queued messages
    (how `hedgerow.testing` crashes, hangs or stops a child now)."""

    def __init__(self, kind: str, token: int, reason: Any = None, sender: Any = None) -> None:
        self.kind = kind
        self.token = token
        self.reason = reason
        self.sender = sender

    def __repr__(self) -> str:
        return f"_Control({self.kind}, incarnation={self.token}, reason={self.reason!r})"
