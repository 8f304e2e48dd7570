"""The inbox of a supervised child: a FIFO queue that outlives each incarnation.

Four things beyond `queue.Queue`, as pykka uses it:

- `put_front`, so a supervisor's stop does not wait behind the backlog (and
  the backlog stays in order for the next incarnation);
- `take(stopped)`, the reader's get: it never hands anything to an
  incarnation that has been stopped or abandoned, and `wake_all` wakes such a
  reader so that it can leave; an event-loop reader takes with `take_nowait`
  and is woken through its `loop_reader` instead;
- `close(reason)`: the child is gone for good. What is queued is handed back
  once, and whatever is put later is refused: each envelope goes to the
  dead letters exactly once, and never after `reopen()` (a restart) returns;
- a bound (`bound`): at most ``max_inbox`` user messages wait, and the
  `Overflow` policy says what happens to one more. What is dropped goes to
  the dead letters with an `InboxFull` reason. The runtime's own messages
  (stops, exit signals, monitors' `Down`) are never dropped nor counted.
  Under ``block`` a sender waits for room in `put`, unless it cannot (an
  event loop's thread): `put_deferred` leaves its message waiting here
  instead, without a thread, to be queued in order as room comes.

The settings and policies themselves are in `hedgerow.actors._inbox_policy`.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import InboxFull
from hedgerow.actors._deadlines import cancel
from hedgerow.actors._inbox_deferred import DeferredSends, forget, tell_done
from hedgerow.actors._inbox_policy import (
    DEAD,
    DEFAULT_INBOX_TIMEOUT,
    SENT,
    WAITING,
    WITHDRAWN,
    Blocked,
    Deferred,
    InboxSettings,
    InboxStatistics,
    Overflow,
    detail_of_no_room,
    exempt,
    exempt_by_class,
    is_exempt,
    on_a_loop,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_INBOX_TIMEOUT",
    "Deferred",
    "Inbox",
    "InboxSettings",
    "InboxStatistics",
    "Overflow",
    "exempt",
]


logger = logging.getLogger("hedgerow.actors")

_NO_QUEUE: Any = ()
"""An empty inbox's `queue` until something is put (an empty deque is about 0.6 KiB):
falsy, of length 0, iterable, and never appended to (`_put` makes the deque)."""

_making = threading.RLock()
"""Guards making an inbox's mutex and Conditions on first use (one per process:
rare; reentrant: making a Condition makes the mutex)."""


def _forked() -> None:
    """In a forked child: a thread of the parent may have held the lock (never released there)."""
    global _making  # noqa: PLW0603 - the module's one lock, made afresh
    _making = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class Inbox(DeferredSends, queue.Queue[Any]):
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
    _deferred: deque[Deferred] | None = None
    """Sends waiting for room without blocking their sender (`put_deferred`), in
    order; while there are any, the inbox is full and they come first."""
    loop_reader: Any = None
    """The event-loop incarnation reading it, if one does: its ``_hr_wake()`` is
    called (under the mutex, from the putting thread) after each envelope
    queued, so its loop schedules it. A thread reader waits in `take` instead,
    and leaves it None. (The reader itself, not a bound method of it: one
    object fewer per child.)"""

    # Every field starts as a class-level default, and the mutex is made when
    # first used (`__getattr__`): a new inbox is an empty object, and an idle
    # event-loop child's, never put to nor closed, never makes its lock.
    maxsize = 0
    queue: deque[Any] = _NO_QUEUE
    unfinished_tasks = 0
    _refused: tuple[Any, Callable[[Any, Any], None]] | None = None
    """While closed: (the reason, what to do with an envelope put meanwhile)."""
    owner = "inbox"
    """Who reads it (the child's path), for `InboxFull`'s message."""
    reader: int | None = None
    """The thread of the incarnation reading it: it never waits for room."""
    on_overflow: Callable[[Any, Any], None] | None = None
    """What to do with a dropped envelope: ``on_overflow(envelope, InboxFull)``."""
    max_inbox: int | None = None
    overflow = Overflow.DROP_NEWEST
    timeout = DEFAULT_INBOX_TIMEOUT
    dropped = 0
    _exempt_n = 0  # exempt messages queued (counted only while bounded)
    _peak = 0
    _waiting = 0  # senders blocked for room

    def __init__(self) -> None:  # not Queue.__init__: it makes the mutex and Conditions
        pass

    if TYPE_CHECKING:
        mutex: threading.Lock
    else:

        def __getattr__(self, name: str) -> Any:
            """Make the mutex on first use (only a missing attribute comes here)."""
            if name != "mutex":
                msg = f"{type(self).__name__!r} object has no attribute {name!r}"
                raise AttributeError(msg)
            with _making:
                return self.__dict__.setdefault("mutex", threading.Lock())

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
                self._exempt_n = sum(1 for item in self.queue if is_exempt(item))
                self.overflow = settings.overflow
                self.timeout = settings.timeout
                self.max_inbox = settings.max_inbox
            if self._deferred:
                self._serve()
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
                    reader = self.loop_reader
                    if reader is not None:
                        reader._hr_wake()
                    return
                found = exempt_by_class.get(item.message.__class__)
                depth = len(self.queue) - self._exempt_n
                if found if found is not None else is_exempt(item):
                    self._put(item)
                    self._exempt_n += 1
                elif depth < bound:
                    self._put(item)
                    if depth >= self._peak:
                        self._peak = depth + 1
                elif (room := self._room(item, block, timeout)) is True:
                    return  # queued in its turn (`_serve`), the reader woken
                elif room is not False:  # closed while it waited (reopened since, maybe)
                    refused = room
                    self._refusing(item)
                else:
                    dead, error = self._overflowed(item, block=block)
                    refused = (error, self._drop)
                    item = dead
                if refused is None:
                    self.unfinished_tasks += 1
                    self._wake_reader()
                    reader = self.loop_reader
                    if reader is not None:
                        reader._hr_wake()
                    return
            else:
                self._refusing(item)
        refused[1](item, refused[0])

    def _room(
        self, item: Any, block: bool, timeout: float | None
    ) -> bool | tuple[Any, Callable[[Any, Any], None]]:
        """Under `Overflow.BLOCK`, wait (under the mutex) for room; True once `item`
        is queued, False if no room came, or the refusal of a close meanwhile.

        The wait takes its place in the queue of deferred sends (a `Blocked`),
        so that room goes to senders in the order they began to wait, whether
        threads or event loops' tasks: `_serve` queues `item` in its turn and
        wakes this thread. A sender that cannot wait does not: one that said so
        (``block=False``), the reader itself, and any thread running an event
        loop, asyncio's or Twisted's reactor (its wait would hold every task
        and actor of that loop; `hedgerow.tell` waits without it on asyncio).
        """
        if self.overflow is not Overflow.BLOCK or not block:
            return False
        if threading.get_ident() == self.reader or on_a_loop():
            return False
        wait = self.timeout if timeout is None else timeout
        place = Blocked(item, None, time.monotonic() + wait)
        if self._deferred is None:
            self._deferred = deque()
        self._deferred.append(place)
        self._waiting += 1
        try:
            while place.state is WAITING:
                remaining = place.deadline - time.monotonic()
                if remaining <= 0:
                    place.state = DEAD
                    forget(self._deferred, place)
                    place.item = None
                    return False
                self.not_full.wait(remaining)
            if place.state is SENT:
                return True
            refusal: tuple[Any, Callable[[Any, Any], None]] = place.timer  # set by close
            return refusal
        finally:
            self._waiting -= 1

    def _overflowed(self, item: Any, *, block: bool = True) -> tuple[Any, InboxFull]:
        """One message too many (under the mutex): which envelope is dropped, and why."""
        self.dropped += 1
        overflow = self.overflow
        detail = ""
        if overflow is Overflow.DROP_OLDEST:
            for index, old in enumerate(self.queue):
                if not is_exempt(old):
                    del self.queue[index]
                    self._put(item)
                    self.unfinished_tasks += 1
                    self._wake_reader()
                    if self.loop_reader is not None:
                        self.loop_reader._hr_wake()
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
                if self.max_inbox is not None and is_exempt(item):
                    self._exempt_n += 1
                self.unfinished_tasks += 1
                self._wake_reader()
                if self.loop_reader is not None:
                    self.loop_reader._hr_wake()
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
            if self._exempt_n and is_exempt(item):
                self._exempt_n -= 1
            if self._deferred:
                self._serve()
            return item

    def take_back(self, reply_to: Any) -> bool:
        """Remove the ask that `reply_to` answers, queued or waiting for room (its
        asker was cancelled): True if it was there (it is never handled, nor a
        dead letter), False if the reader has it, or it is gone."""
        with self.mutex:
            for index, item in enumerate(self.queue):
                if item.reply_to is reply_to:
                    del self.queue[index]
                    self._taken_back(item)
                    if self._exempt_n and is_exempt(item):
                        self._exempt_n -= 1
                    if self._deferred:
                        self._serve()  # room for a send that waits
                    return True
            for deferred in self._deferred or ():
                sent = deferred.item
                if deferred.__class__ is Deferred and getattr(sent, "reply_to", None) is reply_to:
                    deferred.state = WITHDRAWN  # as `withdraw`, under the mutex held here
                    forget(self._deferred, deferred)
                    cancel(deferred.timer)
                    deferred.item = deferred.on_done = None
                    return True
        return False

    def take(self, stopped: threading.Event) -> Any | None:
        """The next envelope, waiting for one; None once `stopped` is set."""
        with self.not_empty:
            while True:
                if stopped.is_set():
                    return None
                if self.queue:
                    item = self.queue.popleft()
                    if self._exempt_n and is_exempt(item):
                        self._exempt_n -= 1
                    if self._deferred:
                        self._serve()
                    return item
                self.not_empty.wait()

    def _get(self) -> Any:
        item = self.queue.popleft()
        if self._exempt_n and is_exempt(item):
            self._exempt_n -= 1
        if self._deferred:
            self._serve()
        return item  # Queue.get notifies not_full itself

    def _queued(self) -> None:
        """(Under the mutex.) One more envelope queued: count it, wake the reader."""
        self.unfinished_tasks += 1
        self._wake_reader()
        reader = self.loop_reader
        if reader is not None:
            reader._hr_wake()

    def _put_or_drop(self, item: Any, detail: str) -> None:
        """Queue `item` if there is room, else drop it (as a dead letter) saying `detail`."""
        with self.mutex:
            refused = self._refused
            if refused is None:
                bound = self.max_inbox
                depth = len(self.queue) - self._exempt_n
                exempt_item = is_exempt(item)
                if bound is None or exempt_item or depth < bound:
                    self._put(item)
                    if bound is not None:
                        if exempt_item:
                            self._exempt_n += 1
                        else:
                            self._peak = max(self._peak, depth + 1)
                    self._queued()
                    return
                self.dropped += 1
                self._dropping(item)
                refused = (InboxFull(self.owner, bound, self.overflow.value, detail), self._drop)
            else:
                self._refusing(item)
        refused[1](item, refused[0])

    def wake_all(self) -> None:
        """Wake every reader blocked in `take` (one whose `stopped` is now set leaves),
        or the event-loop reader."""
        with self.mutex:
            if self._not_empty is not None:
                self._not_empty.notify_all()
            if self.loop_reader is not None:
                self.loop_reader._hr_wake()

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
            queued, self._deferred = self._deferred, None
            waiting = []
            for deferred in queued or ():
                deferred.state = DEAD
                if deferred.__class__ is Blocked:
                    deferred.item = None  # its thread, woken, refuses it, even once reopened
                    deferred.timer = self._refused
                    continue
                waiting.append(deferred)
                cancel(deferred.timer)
                self._refusing(deferred.item)
        for deferred in waiting:
            try:
                refuse(deferred.item, reason)
            finally:
                tell_done(deferred)
        return items

    def reopen(self) -> None:
        """Queue again (the child is restarted): nothing is refused once this returns."""
        if self._refused is None:
            return  # never closed (a first start): no lock to make or take
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

    def _taken_back(self, item: Any) -> None:
        """A queued envelope is taken back by its cancelled asker (under the
        mutex): a hook for `hedgerow.testing`, which counts it withdrawn."""
