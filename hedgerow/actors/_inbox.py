"""The inbox of a supervised child: a FIFO queue that outlives each incarnation.

Four things beyond `queue.Queue`, as pykka uses it:

- `put_front`, so a supervisor's stop does not wait behind the backlog (and
  the backlog stays in order for the next incarnation);
- `take(stopped)`, the reader's get: it never hands anything to an
  incarnation that has been stopped or abandoned, and `wake_all` wakes such a
  reader so that it can leave; an event-loop reader takes with `take_nowait`
  and is woken by its `waker` instead;
- `close(reason)`: the child is gone for good. What is queued is handed back
  once, and whatever is put later is refused: each envelope goes to the
  dead letters exactly once, and never after `reopen()` (a restart) returns;
- a bound (`bound`): at most ``max_inbox`` user messages wait, and the
  `Overflow` policy says what happens to one more. What is dropped goes to
  the dead letters with an `InboxFull` reason. The runtime's own messages
  (stops, exit signals, monitors' `Down`) are never dropped nor counted.
"""

from __future__ import annotations

import enum
import queue
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from pykka import messages

from hedgerow._exceptions import InboxFull
from hedgerow.actors._messages import Down, _Internal

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Inbox", "InboxSettings", "InboxStatistics", "Overflow", "exempt"]


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
    an event loop (``await hedgerow.tell(ref, message)`` waits there)."""


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


_NO_QUEUE: Any = ()
"""An empty inbox's `queue` until something is put (an empty deque is about 0.6 KiB):
falsy, of length 0, iterable, and never appended to (`_put` makes the deque)."""

_making = threading.Lock()
"""Guards making an inbox's Condition on first use (one per process: rare)."""

_EXEMPT: tuple[type, ...] = (_Internal, messages._ActorStop, Down)
_exempt_by_class: dict[type, bool] = {}
"""Whether messages of a class are exempt from the bound: `_EXEMPT`, cached per class."""


def exempt(*classes: type) -> None:
    """Never drop nor count messages of these classes (a transport's deliveries)."""
    global _EXEMPT  # noqa: PLW0603 - extended at import
    _EXEMPT = (*_EXEMPT, *classes)
    _exempt_by_class.clear()


class Inbox(queue.Queue[Any]):
    """`queue.Queue` (unbounded unless `bound` is called) with `put_front`,
    `take`, `wake_all` and `close`."""

    # queue.Queue's three Conditions (each with its waiters' deque, about 1 KiB)
    # are made when first waited on: most inboxes never have a blocked sender,
    # and an event-loop reader never waits. One that nobody waits on is not
    # notified: a waiter makes it before it takes the mutex, then checks under
    # the mutex, so a put that saw none leaves nothing to wake.
    _not_empty: threading.Condition | None = None
    _not_full: threading.Condition | None = None
    _all_tasks_done: threading.Condition | None = None

    def __init__(self) -> None:  # not Queue.__init__: it makes the Conditions
        self.maxsize = 0
        self.queue: deque[Any] = _NO_QUEUE
        self.mutex = threading.Lock()
        self.unfinished_tasks = 0
        self._refused: tuple[Any, Callable[[Any, Any], None]] | None = None
        """While closed: (the reason, what to do with an envelope put meanwhile)."""
        self.owner = "inbox"
        """Who reads it (the child's path), for `InboxFull`'s message."""
        self.reader: int | None = None
        """The thread of the incarnation reading it: it never waits for room."""
        self.on_overflow: Callable[[Any, Any], None] | None = None
        """What to do with a dropped envelope: ``on_overflow(envelope, InboxFull)``."""
        self.max_inbox: int | None = None
        self.overflow = Overflow.DROP_NEWEST
        self.timeout = DEFAULT_INBOX_TIMEOUT
        self.dropped = 0
        self._exempt_n = 0  # exempt messages queued (counted only while bounded)
        self._peak = 0
        self._waiting = 0  # senders blocked for room
        self.waker: Callable[[], None] | None = None
        """An event-loop reader's: called (under the mutex, from the putting
        thread) after each envelope queued, so its loop schedules the reader.
        A thread reader waits in `take` instead, and leaves it None."""

    @property
    def not_empty(self) -> threading.Condition:  # type: ignore[override]
        cond = self._not_empty
        if cond is None:
            with _making:
                cond = self._not_empty
                if cond is None:
                    cond = self._not_empty = threading.Condition(self.mutex)
        return cond

    @property
    def not_full(self) -> threading.Condition:  # type: ignore[override]
        cond = self._not_full
        if cond is None:
            with _making:
                cond = self._not_full
                if cond is None:
                    cond = self._not_full = threading.Condition(self.mutex)
        return cond

    @property
    def all_tasks_done(self) -> threading.Condition:  # type: ignore[override]
        cond = self._all_tasks_done
        if cond is None:
            with _making:
                cond = self._all_tasks_done
                if cond is None:
                    cond = self._all_tasks_done = threading.Condition(self.mutex)
        return cond

    def _put(self, item: Any) -> None:
        queue = self.queue
        if queue is _NO_QUEUE:
            queue = self.queue = deque()
        queue.append(item)

    def _wake_reader(self) -> None:
        """(Under the mutex.) Wake a reader waiting in `take`, if one ever waited."""
        cond = self._not_empty
        if cond is not None:
            cond.notify()

    def _wake_senders(self, *, every: bool = False) -> None:
        """(Under the mutex.) Wake one sender waiting for room (or all), if any ever did."""
        cond = self._not_full
        if cond is not None:
            if every:
                cond.notify_all()
            else:
                cond.notify()

    def bound(self, settings: InboxSettings | None) -> None:
        """Bound (or, with None, unbound) this inbox from now on."""
        with self.mutex:
            if settings is None:
                self.max_inbox = None
                self._exempt_n = 0
            else:
                self._exempt_n = sum(1 for item in self.queue if _exempt(item))
                self.overflow = settings.overflow
                self.timeout = settings.timeout
                self.max_inbox = settings.max_inbox
            self._wake_senders(every=True)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:  # noqa: C901 - the hot path in one frame
        with self.mutex:
            refused = self._refused
            if refused is None:
                bound = self.max_inbox
                if bound is None:
                    self._put(item)
                    self.unfinished_tasks += 1
                    self._wake_reader()
                    waker = self.waker
                    if waker is not None:
                        waker()
                    return
                found = _exempt_by_class.get(item.message.__class__)
                depth = len(self.queue) - self._exempt_n
                if found if found is not None else _exempt(item):
                    self._put(item)
                    self._exempt_n += 1
                elif depth < bound:
                    self._put(item)
                    if depth >= self._peak:
                        self._peak = depth + 1
                elif self._room(block, timeout):
                    self._put(item)
                    self._peak = max(self._peak, len(self.queue) - self._exempt_n)
                elif self._refused is None:
                    dead, error = self._overflowed(item, block=block)
                    refused = (error, self._drop)
                    item = dead
                else:  # closed while the sender waited for room
                    refused = self._refused
                    self._refusing(item)
                if refused is None:
                    self.unfinished_tasks += 1
                    self._wake_reader()
                    waker = self.waker
                    if waker is not None:
                        waker()
                    return
            else:
                self._refusing(item)
        refused[1](item, refused[0])

    def _room(self, block: bool, timeout: float | None) -> bool:
        """Under `Overflow.BLOCK`, wait (under the mutex) for room; True if there is.

        A sender that cannot wait does not: one that said so (``block=False``),
        the reader itself, and any thread running an event loop (its wait would
        hold every task and actor of that loop; `hedgerow.tell` waits without it).
        """
        if self.overflow is not Overflow.BLOCK or not block:
            return False
        if threading.get_ident() == self.reader or _on_a_loop():
            return False
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        self._waiting += 1
        try:
            while self._refused is None:
                bound = self.max_inbox
                if bound is None or len(self.queue) - self._exempt_n < bound:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.not_full.wait(remaining)
            return False
        finally:
            self._waiting -= 1

    def _overflowed(self, item: Any, *, block: bool = True) -> tuple[Any, InboxFull]:
        """One message too many (under the mutex): which envelope is dropped, and why."""
        self.dropped += 1
        overflow = self.overflow
        detail = ""
        if overflow is Overflow.DROP_OLDEST:
            for index, old in enumerate(self.queue):
                if not _exempt(old):
                    del self.queue[index]
                    self._put(item)
                    self.unfinished_tasks += 1
                    self._wake_reader()
                    if self.waker is not None:
                        self.waker()
                    return old, InboxFull(self.owner, self.max_inbox or 0, overflow.value)
        elif overflow is Overflow.BLOCK:
            detail = detail_of_no_room(self.reader, block=block)
        self._dropping(item)
        return item, InboxFull(self.owner, self.max_inbox or 0, overflow.value, detail)

    def _drop(self, envelope: Any, error: Any) -> None:
        """Dead-letter `envelope` (outside the mutex, in the sender's thread)."""
        on_overflow = self.on_overflow
        if on_overflow is not None:
            on_overflow(envelope, error)
        if self.overflow is Overflow.FAIL:
            raise error

    def put_front(self, item: Any) -> None:
        with self.mutex:
            refused = self._refused
            if refused is None:
                queue = self.queue
                if queue is _NO_QUEUE:
                    queue = self.queue = deque()
                queue.appendleft(item)
                if self.max_inbox is not None and _exempt(item):
                    self._exempt_n += 1
                self.unfinished_tasks += 1
                self._wake_reader()
                if self.waker is not None:
                    self.waker()
                return
        refused[1](item, refused[0])

    def take_nowait(self) -> Any | None:
        """The next envelope, or None if there is none (an event-loop reader's get)."""
        with self.mutex:
            queue = self.queue
            if not queue:
                return None
            item = queue.popleft()
            if not queue:
                self.queue = _NO_QUEUE  # an idle event-loop child keeps no deque
            if self._exempt_n and _exempt(item):
                self._exempt_n -= 1
            if self._waiting:
                self._wake_senders()
            return item

    def take(self, stopped: threading.Event) -> Any | None:
        """The next envelope, waiting for one; None once `stopped` is set."""
        with self.not_empty:
            while True:
                if stopped.is_set():
                    return None
                if self.queue:
                    item = self.queue.popleft()
                    if self._exempt_n and _exempt(item):
                        self._exempt_n -= 1
                    if self._waiting:
                        self._wake_senders()
                    return item
                self.not_empty.wait()

    def _get(self) -> Any:
        item = self.queue.popleft()
        if self._exempt_n and _exempt(item):
            self._exempt_n -= 1
        return item  # Queue.get notifies not_full itself

    def wake_all(self) -> None:
        """Wake every reader blocked in `take` (one whose `stopped` is now set leaves),
        or the event-loop reader."""
        with self.mutex:
            if self._not_empty is not None:
                self._not_empty.notify_all()
            if self.waker is not None:
                self.waker()

    def close(self, reason: Any, refuse: Callable[[Any, Any], None]) -> list[Any]:
        """Refuse from now on (``refuse(envelope, reason)``, in the sender's thread);
        what was queued, for the caller to dead-letter (each envelope once).
        Senders waiting for room are woken: their messages are refused too."""
        with self.mutex:
            self._refused = (reason, refuse)
            items = list(self.queue)
            self.queue = _NO_QUEUE
            self._exempt_n = 0
            self._wake_senders(every=True)
            return items

    def reopen(self) -> None:
        """Queue again (the child is restarted): nothing is refused once this returns."""
        with self.mutex:
            self._refused = None

    @property
    def closed(self) -> bool:
        return self._refused is not None

    def statistics(self) -> InboxStatistics:
        """Its depth, bound and drops now (a snapshot; it may change at once)."""
        with self.mutex:
            bounded = self.max_inbox is not None
            return InboxStatistics(
                depth=len(self.queue) - self._exempt_n,
                max_inbox=self.max_inbox,
                overflow=self.overflow if bounded else None,
                dropped=self.dropped,
                peak=self._peak,
            )

    def _refusing(self, item: Any) -> None:
        """An envelope is refused (under the mutex): a hook for `hedgerow.testing`."""

    def _dropping(self, item: Any) -> None:
        """A new envelope is dropped before it was queued (under the mutex): a
        hook for `hedgerow.testing`, which counts it as sent."""


def _on_a_loop() -> bool:
    """Whether this thread is running an asyncio event loop (asyncio is not imported for it)."""
    aio = sys.modules.get("asyncio")
    return aio is not None and aio.events._get_running_loop() is not None


NO_ROOM_ON_A_LOOP = (
    "sent from an event loop's thread, which a wait for room would block "
    "(await hedgerow.tell(ref, message) waits without blocking it)"
)


def detail_of_no_room(reader: int | None, *, block: bool = True) -> str:
    """Why a sender under `Overflow.BLOCK` got no room (in its own thread)."""
    if not block:
        return "sent without waiting (block=False)"
    if _on_a_loop():
        return NO_ROOM_ON_A_LOOP
    if threading.get_ident() == reader:
        return "sent from the actor's own thread, which cannot wait for room"
    return "no room within the timeout"


def _exempt(item: Any) -> bool:
    cls = getattr(item, "message", None).__class__
    found = _exempt_by_class.get(cls)
    if found is None:
        found = _exempt_by_class[cls] = issubclass(cls, _EXEMPT)
    return found
