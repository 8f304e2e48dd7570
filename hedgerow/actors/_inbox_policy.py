"""What a bounded inbox does: its settings, its overflow policies, the messages it
never drops, why a send found no room, and a send that waits for room without a thread.

`hedgerow.actors._inbox.Inbox` applies them; they are here so that the inbox
itself stays one concept (a queue that outlives each incarnation).
"""

from __future__ import annotations

import enum
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pykka import messages

from hedgerow.actors._messages import Down, _Internal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEAD",
    "DEFAULT_INBOX_TIMEOUT",
    "NO_ROOM_ON_A_LOOP",
    "NO_ROOM_ON_THE_REACTOR",
    "SENT",
    "WAITING",
    "WITHDRAWN",
    "Blocked",
    "Deferred",
    "InboxSettings",
    "InboxStatistics",
    "Overflow",
    "detail_of_no_room",
    "exempt",
    "exempt_by_class",
    "is_exempt",
    "on_a_loop",
    "on_the_reactor",
]


class Overflow(enum.Enum):
    """What a bounded inbox does with a message when it is full."""

    DROP_NEWEST = "drop_newest"
    """The new message is a dead letter; the sender is not told (Erlang's send never fails)."""
    DROP_OLDEST = "drop_oldest"
    """The oldest waiting message is a dead letter; the new one is queued."""
    FAIL = "fail"
    """The new message is a dead letter and the sender gets `InboxFull`: raised by
    ``tell``, the answer of an ``ask``."""
    BLOCK = "block"
    """The sender waits for room, up to the timeout; then the message is a dead
    letter (as Akka's mailbox push timeout). A send that cannot wait does not:
    from the actor's own thread, with ``block=False``, or from a thread running
    an asyncio event loop (``await hedgerow.tell(ref, message)`` waits there)
    or Twisted's reactor."""


DEFAULT_INBOX_TIMEOUT = 5.0
"""How long a sender waits for room under `Overflow.BLOCK`, unless told otherwise."""


@dataclass(frozen=True)
class InboxSettings:
    """A child's inbox bound: at most `max_inbox` messages, then `overflow`
    (`timeout`: a blocked sender's wait, in seconds)."""

    max_inbox: int
    overflow: Overflow = Overflow.DROP_NEWEST
    timeout: float = DEFAULT_INBOX_TIMEOUT


class InboxStatistics(NamedTuple):
    """A child's inbox now: `depth` user messages waiting (of `max_inbox`, None:
    unbounded), `dropped` since the child's ref was made (across restarts), and
    `peak`, the largest depth seen (bounded inboxes only; else 0)."""

    depth: int
    max_inbox: int | None
    overflow: Overflow | None
    dropped: int
    peak: int

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for JSON (``hedgerow status --json``, ``hedgerow run --json``)."""
        return {
            "depth": self.depth,
            "max_inbox": self.max_inbox,
            "overflow": self.overflow.value if self.overflow is not None else None,
            "dropped": self.dropped,
        }


_EXEMPT: tuple[type, ...] = (_Internal, messages._ActorStop, Down)
exempt_by_class: dict[type, bool] = {}
"""Whether messages of a class are exempt from the bound: `_EXEMPT`, cached per class."""


def exempt(*classes: type) -> None:
    """Never drop nor count messages of these classes (a transport's deliveries)."""
    global _EXEMPT  # noqa: PLW0603 - extended at import
    _EXEMPT = (*_EXEMPT, *classes)
    exempt_by_class.clear()


WAITING, SENT, WITHDRAWN, DEAD = "waiting", "sent", "withdrawn", "dead"


class Deferred:
    """A send waiting for room in a full inbox without blocking its sender
    (`Inbox.put_deferred`): its envelope, what to call once it is done, its
    deadline (and the timer that keeps it), and its state (waiting, then sent,
    withdrawn or dead). Once done it lets go of its envelope and callback."""

    __slots__ = ("deadline", "item", "on_done", "state", "timer")

    def __init__(
        self, item: Any, on_done: Callable[[Deferred], None] | None, deadline: float
    ) -> None:
        self.item = item
        self.on_done = on_done
        self.deadline = deadline
        self.state = WAITING
        self.timer: Any = None


class Blocked(Deferred):
    """The place in the queue of a thread blocked in ``put`` for room: it is
    served in its turn with the deferred sends (its envelope queued for it,
    its thread woken), so that neither kind overtakes the other. Its thread
    keeps its deadline (no timer) and refuses its envelope itself if the
    inbox closes."""

    __slots__ = ()


def on_a_loop() -> bool:
    """Whether this thread runs an event loop that a wait would block: a running
    asyncio loop, or Twisted's running reactor (neither is imported for it)."""
    return _on_asyncio() or on_the_reactor()


def _on_asyncio() -> bool:
    aio = sys.modules.get("asyncio")
    return aio is not None and aio.events._get_running_loop() is not None


def on_the_reactor() -> bool:
    """Whether this thread runs Twisted's reactor, now: only if Twisted already is
    imported and its reactor installed (a dict look-up otherwise). Twisted marks
    the thread that runs ``reactor.run`` as its I/O thread; the reactor says
    whether it runs (a reactor that stopped frees its thread to wait again)."""
    threadable = sys.modules.get("twisted.python.threadable")
    if threadable is None or getattr(threadable, "ioThread", None) != threading.get_ident():
        return False
    reactor = sys.modules.get("twisted.internet.reactor")
    return reactor is not None and bool(
        getattr(reactor, "_started", False) or getattr(reactor, "running", False)
    )


NO_ROOM_ON_A_LOOP = (
    "sent from an event loop's thread, which a wait for room would block "
    "(await hedgerow.tell(ref, message), or hedgerow.ask, waits without blocking it)"
)
NO_ROOM_ON_THE_REACTOR = (
    "sent from the thread of Twisted's reactor, which a wait for room would block "
    "(not hedgerow.tell, which awaits on asyncio: send it from a thread, "
    "deferToThread(ref.tell, message), which waits there)"
)


def detail_of_no_room(reader: int | None, *, block: bool = True) -> str:
    """Why a sender under `Overflow.BLOCK` got no room (in its own thread)."""
    if not block:
        return "sent without waiting for room (a timer's tick, or block=False)"
    if _on_asyncio():  # (Twisted's asyncio reactor included: hedgerow.tell works there)
        return NO_ROOM_ON_A_LOOP
    if on_the_reactor():
        return NO_ROOM_ON_THE_REACTOR
    if threading.get_ident() == reader:
        return "sent from the actor's own thread, which cannot wait for room"
    return "no room within the timeout"


def is_exempt(item: Any) -> bool:
    cls = getattr(item, "message", None).__class__
    found = exempt_by_class.get(cls)
    if found is None:
        found = exempt_by_class[cls] = issubclass(cls, _EXEMPT)
    return found
