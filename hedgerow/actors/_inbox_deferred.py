"""Sends that wait for room without blocking their sender: `DeferredSends`, the
part of `Inbox` behind `put_deferred`.

Under ``block``, a sender on an event loop's thread must not wait for room in
`Inbox.put`: its message waits in the inbox instead, without a thread, in
order with the threads blocked for room, and whoever makes room (the reader's
take, a new bound) queues it; after the inbox's timeout it is a dead letter.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import InboxFull
from hedgerow.actors._deadlines import at, cancel
from hedgerow.actors._inbox_policy import (
    DEAD,
    SENT,
    WAITING,
    WITHDRAWN,
    Blocked,
    Deferred,
    Overflow,
    is_exempt,
)

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

__all__ = ["DeferredSends", "forget", "tell_done"]

logger = logging.getLogger("hedgerow.actors")


class DeferredSends:
    """`Inbox`'s deferred sends (see the module docstring); it uses the inbox's state."""

    if TYPE_CHECKING:  # the inbox's, which this part reads and changes
        mutex: threading.Lock
        queue: deque[Any]
        max_inbox: int | None
        overflow: Overflow
        timeout: float
        owner: str
        dropped: int
        on_overflow: Callable[[Any, Any], None] | None
        _refused: tuple[Any, Callable[[Any, Any], None]] | None
        _exempt_n: int
        _peak: int
        _deferred: deque[Deferred] | None

        def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None: ...
        def _put(self, item: Any) -> None: ...
        def _queued(self) -> None: ...
        def _put_or_drop(self, item: Any, detail: str) -> None: ...
        def _wake_senders(self, *, every: bool = False) -> None: ...
        def _dropping(self, item: Any) -> None: ...

    def put_deferred(
        self, item: Any, on_done: Callable[[Deferred], None] | None = None, *, wait: bool = True
    ) -> Deferred | None:
        """Put `item` as a send that never blocks the calling thread (an event loop's).

        Under `Overflow.BLOCK` with no room (or earlier deferred sends still
        waiting: they go first, in order), `item` waits here, without a thread:
        whoever makes room (the reader's take, a new bound) queues it, or,
        after the inbox's timeout, it is a dead letter as a blocked sender's
        would be; ``on_done(deferred)`` is called then (in that thread: it must
        be quick), and the `Deferred` is returned, to `withdraw` while it waits.
        Otherwise it is put as ``put(item, block=False)`` would (queued, dropped
        or refused by a closed inbox, raising what that raises) and None is
        returned. With `wait` False (the reader sending to itself) it never waits.
        """
        with self.mutex:
            bound = self.max_inbox
            if (
                wait
                and self._refused is None
                and bound is not None
                and self.overflow is Overflow.BLOCK
                and not is_exempt(item)
            ):
                depth = len(self.queue) - self._exempt_n
                if not self._deferred and depth < bound:
                    self._put(item)
                    self._peak = max(self._peak, depth + 1)
                    self._queued()
                    return None
                deferred = Deferred(item, on_done, time.monotonic() + self.timeout)
                deferred.timer = at(deferred.deadline, partial(self._expire, deferred))
                if self._deferred is None:
                    self._deferred = deque()
                self._deferred.append(deferred)
                return deferred
        if not wait and self.overflow is Overflow.BLOCK:
            self._put_or_drop(
                item, "sent by the actor reading this inbox, which cannot wait for room"
            )
        else:
            self.put(item, block=False)
        return None

    def withdraw(self, deferred: Deferred) -> bool:
        """Take back a deferred send still waiting for room: True if it was (it will
        never be sent, nor be a dead letter); False if it is sent or dead already."""
        with self.mutex:
            if deferred.state is not WAITING:
                return False
            deferred.state = WITHDRAWN
            forget(self._deferred, deferred)
            cancel(deferred.timer)
            deferred.item = deferred.on_done = None
            return True

    def _serve(self) -> None:
        """(Under the mutex, room may have come.) Queue the waiting sends there is room
        for, in order: deferred sends, and blocked threads' (which are woken)."""
        deferred = self._deferred
        assert deferred is not None
        bound = self.max_inbox
        woken = False
        while deferred:
            depth = len(self.queue) - self._exempt_n
            if bound is not None and depth >= bound:
                break
            sent = deferred.popleft()
            self._put(sent.item)
            self._peak = max(self._peak, depth + 1)
            sent.state = SENT
            self._queued()
            if sent.__class__ is Blocked:
                sent.item = None
                woken = True
            else:
                cancel(sent.timer)
                tell_done(sent)
        if woken:
            self._wake_senders(every=True)  # each looks at its own place

    def _expire(self, deferred: Deferred) -> None:
        """Its deadline has come (in the deadlines' thread): a dead letter, if it still waits."""
        with self.mutex:
            if deferred.state is not WAITING:
                return
            deferred.state = DEAD
            forget(self._deferred, deferred)
            self.dropped += 1
            self._dropping(deferred.item)
            error = InboxFull(
                self.owner, self.max_inbox or 0, self.overflow.value, "no room within the timeout"
            )
        self._dead(deferred, error)

    def _dead(self, deferred: Deferred, error: Any) -> None:
        """A deferred send is a dead letter (outside the mutex), then its sender is told."""
        try:
            on_overflow = self.on_overflow
            if on_overflow is not None:
                on_overflow(deferred.item, error)
        finally:
            tell_done(deferred)


def forget(waiting: deque[Deferred] | None, deferred: Deferred) -> None:
    """Take `deferred` out of the waiting sends (most often the first or the last)."""
    if not waiting:
        return
    if waiting[0] is deferred:
        waiting.popleft()
    elif waiting[-1] is deferred:
        waiting.pop()
    else:
        waiting.remove(deferred)


def tell_done(deferred: Deferred) -> None:
    """A deferred send is done: tell its sender (what that raises is logged), let go."""
    on_done = deferred.on_done
    deferred.item = deferred.on_done = None
    if on_done is not None:
        try:
            on_done(deferred)
        except Exception:
            logger.exception("The sender's callback of a deferred send failed")
