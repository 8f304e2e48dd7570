# mypy: disable-error-code="no-untyped-call"
"""What a component's actor needs to join and join again: the peer the transport
delivers to, the actor's own messages, and the retry plan of a first join."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

from hedgerow.actors._messages import _Internal
from hedgerow.transports._base import CLOSE_NORMAL, Link, Transport, TransportConfig

if TYPE_CHECKING:
    import concurrent.futures

    from hedgerow.supervision._backoff import Backoff

__all__ = [
    "DEFAULT_JOIN_TIMEOUT",
    "JoinCancelled",
    "Peer",
    "Reconnect",
    "Rejoined",
    "RunMain",
    "first_join_backoff",
    "join_timeout",
    "leave_if_joined",
    "leave_request",
    "live_links",
    "live_links_lock",
]

DEFAULT_JOIN_TIMEOUT = 10.0
"""Seconds to wait for a transport to join (autobahn's default endpoint timeout)."""


class JoinCancelled(Exception):
    """A first join given up from outside (`run` on Ctrl-C): the start fails."""


class Peer:
    """Where the transport delivers: straight into the actor's inbox (any thread)."""

    __slots__ = ("inbox",)

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox

    def deliver(self, message: Any) -> None:
        self.inbox.put(Envelope(message))


class RunMain(_Internal):
    """Run the component's ``main`` (queued by ``on_start``)."""

    __slots__ = ()


class Reconnect(_Internal):
    """Time for the next attempt to join again through transport `index`."""

    __slots__ = ("index", "token")

    def __init__(self, index: int, token: int) -> None:
        self.index = index
        self.token = token


class Rejoined(_Internal):
    """An attempt to join again finished (with a link, or an error)."""

    __slots__ = ("future", "index", "token")

    def __init__(self, index: int, token: int, future: concurrent.futures.Future[Link]) -> None:
        self.index = index
        self.token = token
        self.future = future


live_links: weakref.WeakKeyDictionary[Any, Link] = weakref.WeakKeyDictionary()
live_links_lock = threading.Lock()


def leave_if_joined(future: concurrent.futures.Future[Link]) -> None:
    """A join that finished after its incarnation gave up on it: leave at once."""
    if future.cancelled() or future.exception() is not None:
        return
    link = future.result()
    if link.is_open:
        link.handle(leave_request())


def first_join_backoff(transport: Transport) -> Backoff:
    """The attempts of a first join through `transport`: one, and as many retries as
    its retry policy allows (autobahn counts ``max_retries`` after the first attempt)."""
    from hedgerow.supervision._backoff import Backoff  # noqa: PLC0415 - supervision uses actors

    policy = transport.retry
    if policy is None:
        return Backoff(max_retries=1)
    return Backoff(
        initial_retry_delay=policy.initial_retry_delay,
        max_retry_delay=policy.max_retry_delay,
        retry_delay_growth=policy.retry_delay_growth,
        retry_delay_jitter=policy.retry_delay_jitter,
        max_retries=-1 if policy.max_retries == -1 else policy.max_retries + 1,
    )


def join_timeout(config: TransportConfig) -> float:
    """How long a start waits for a transport to join (twice its own connect timeout)."""
    timeout = getattr(config.transport, "timeout", None)
    return 2 * float(timeout) + 1.0 if timeout is not None else DEFAULT_JOIN_TIMEOUT


def leave_request() -> Any:
    from hedgerow.transports._base import Leave  # noqa: PLC0415

    return Leave(CLOSE_NORMAL, "incarnation exited")
