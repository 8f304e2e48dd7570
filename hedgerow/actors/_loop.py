"""The event loops that event-loop actors run on, and the watchdog that sees one blocked.

- `hedgerow_loop()`: the asyncio loop hedgerow owns, on one daemon thread
  (``hedgerow-loop``) per process, started on first use.
- `LoopRuntime`: what hedgerow keeps per loop that hosts actors. Messages put
  from other threads are handed over through one queue, and the loop is woken
  with ``call_soon_threadsafe`` only when no wake-up is already pending, so a
  burst of tells from a thread costs one wake-up, not one per message.
- The watchdog: one daemon thread (``hedgerow-watchdog``) for all loops. While
  an actor of a loop has work, it sends that loop a heartbeat every quarter of
  the threshold; a heartbeat that waits longer than the threshold means a
  callback holds the loop, and the loop thread's stack is reported with the
  actor it is in: a ``blocked`` event on the tree's stream for a supervised
  actor (the event is logged too), a warning for any other. A loop whose
  actors are all idle gets no heartbeats.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import traceback
from collections import deque
from typing import TYPE_CHECKING, Any

import pykka

from hedgerow._events import EventKind
from hedgerow.actors._attrs import actor_attr

if TYPE_CHECKING:
    from types import CodeType, FrameType

__all__ = [
    "DEFERRED",
    "LoopRuntime",
    "forget_closed_loops",
    "hedgerow_loop",
    "runtime_for",
    "set_block_threshold",
]

logger = logging.getLogger("hedgerow.actors")

DEFAULT_BLOCK_THRESHOLD = 0.1
"""Seconds a callback may hold a loop before it is reported (asyncio's
``slow_callback_duration`` default)."""

_lock = threading.RLock()
_loop: asyncio.AbstractEventLoop | None = None
_runtimes: dict[asyncio.AbstractEventLoop, LoopRuntime] = {}
"""Every loop that hosts actors; the watchdog forgets those that are closed."""
DEFERRED = object()
"""`LoopRuntime.deferred` once the actor has left its first run to its starter."""
_actor_codes: set[CodeType] = set()
"""Code of the runtime's frames that run a handler, each with the actor as ``self``."""


def hedgerow_loop() -> asyncio.AbstractEventLoop:
    """The loop on hedgerow's own daemon thread, started on first use."""
    loop = _loop
    if loop is not None and not loop.is_closed():
        return loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _start_loop_thread()
        assert _loop is not None
        return _loop


def _start_loop_thread() -> None:
    global _loop  # noqa: PLW0603 - one loop per process
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name="hedgerow-loop", daemon=True)
    thread.start()
    ready.wait()
    runtime_for(loop).thread_id = thread.ident
    _loop = loop


def _forget_after_fork() -> None:
    global _loop  # noqa: PLW0603 - the thread did not survive the fork
    _loop = None
    _runtimes.clear()
    _watchdog_state["thread"] = None


def runtime_for(loop: asyncio.AbstractEventLoop) -> LoopRuntime:
    """The runtime of `loop`, made on first use."""
    runtime = _runtimes.get(loop)
    if runtime is None:
        with _lock:
            runtime = _runtimes.get(loop)
            if runtime is None:
                runtime = _runtimes[loop] = LoopRuntime(loop)
        _ensure_watchdog()
    return runtime


class LoopRuntime:
    """hedgerow's state for one loop: the hand-over queue and the blocked-loop check."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread_id: int | None = None
        self.busy = 0
        """How many actors of this loop have work (a message queued or in hand)."""
        self.deferred: Any = None
        """An actor about to start on this loop, from the loop's own thread, whose
        first run its starter does itself (`DEFERRED` once the actor agreed):
        a supervisor on the loop runs a child's start at once, with no hop."""
        self._remote: deque[Any] = deque()
        self._wake_pending = False
        self._beat_sent: float | None = None
        self._reported: float | None = None

    def notify(self, actor: Any) -> None:
        """From another thread: `actor` has a message; run it on the loop.

        An actor already handed over and not yet taken is not handed over again,
        so a burst of tells costs one hand-over and one wake-up. The loop clears
        the mark before it looks at the actor's inbox, so a message put after
        that look is always handed over anew.
        """
        if actor._hr_notified:
            return
        actor._hr_notified = True
        self._remote.append(actor)
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self.loop.call_soon_threadsafe(self._run_remote)
            except RuntimeError:  # the loop is closed: nobody will run the actor again
                self._wake_pending = False
                while self._remote:
                    self._remote.popleft()._hr_loop_closed()

    def _run_remote(self) -> None:
        self._wake_pending = False  # before draining: a later notify wakes the loop again
        remote = self._remote
        while remote:
            actor = remote.popleft()
            actor._hr_notified = False
            if not actor._hr_busy:
                actor._hr_busy = True
                self.busy += 1
                try:
                    actor._hr_drain()
                except Exception:  # a bug; the other actors handed over still run
                    logger.exception("Running %s failed", actor)

    # -- the watchdog's side (runs in the watchdog thread) -----------------------

    def check(self, now: float, threshold: float) -> None:
        sent = self._beat_sent
        if sent is None:
            if self.busy:
                self._beat_sent = now
                try:
                    self.loop.call_soon_threadsafe(self._beat)
                except RuntimeError:
                    self._beat_sent = None
            return
        waited = now - sent
        if waited >= threshold and self._reported is None:
            self._reported = waited
            self._report(waited, threshold)

    def _beat(self) -> None:
        if self.thread_id is None:
            self.thread_id = threading.get_ident()
        reported = self._reported
        if reported is not None and self._beat_sent is not None:
            held = time.monotonic() - self._beat_sent
            logger.warning("The event loop %r runs again after %.3f s", self.loop, held)
        self._beat_sent = None
        self._reported = None

    def _report(self, waited: float, threshold: float) -> None:
        frame = sys._current_frames().get(self.thread_id) if self.thread_id else None
        if frame is None:
            return
        actor, handler = _actor_in(frame)
        stack = traceback.format_stack(frame)
        if handler is not None:
            stack = traceback.format_stack(frame)[-_depth_below(frame, handler) :]
        del frame, handler  # the loop's frames are not kept
        where = "".join(stack)
        if _publish_blocked(actor, waited, threshold, where):
            return  # the event is also its log line, on the ``hedgerow`` logger
        logger.warning(
            "%s has blocked its event loop for %.3f s (threshold %.3f s) at:\n%s",
            actor if actor is not None else "a callback that is not an actor's",
            waited,
            threshold,
            where.rstrip(),
        )


def _publish_blocked(actor: Any, waited: float, threshold: float, where: str) -> bool:
    """A supervised actor's block is a ``blocked`` event on its tree's stream
    (from the watchdog thread); False if `actor` is not in a tree."""
    child_ref = actor_attr(actor, "_hr_child_ref")
    events = getattr(child_ref, "events", None)
    if child_ref is None or events is None:
        return False
    clock = actor._hr_clock
    events.publish(
        EventKind.BLOCKED,
        child_ref.path,
        clock.now() if clock is not None else time.monotonic(),
        incarnation=actor.actor_incarnation,
        delay=waited,
        traceback=where,
        info={"threshold": threshold},
    )
    return True


def _actor_in(frame: FrameType) -> tuple[Any, FrameType | None]:
    """The actor whose handler `frame` is in, and the frame of its handler call."""
    below: FrameType | None = None
    current: FrameType | None = frame
    while current is not None:
        if current.f_code in _actor_codes:
            return current.f_locals.get("self"), below
        below = current
        current = current.f_back
    return None, None


def _depth_below(frame: FrameType, handler: FrameType) -> int:
    depth = 1
    current: FrameType | None = frame
    while current is not None and current is not handler:
        depth += 1
        current = current.f_back
    return depth


# -- the watchdog thread --------------------------------------------------------

_watchdog_state: dict[str, Any] = {
    "threshold": DEFAULT_BLOCK_THRESHOLD,
    "thread": None,
    "wake": threading.Event(),
}


def set_block_threshold(seconds: float | None) -> float | None:
    """Report an event-loop actor that holds its loop longer than `seconds`; None: never.

    The report names the actor and the stack where its handler is stuck (CPU
    work or a blocking call in a handler holds every actor of that loop): for
    a supervised actor, a ``blocked`` event on its tree's stream (logged as a
    warning on the ``hedgerow`` logger, as every event is); for any other, a
    warning on the ``hedgerow.actors`` logger. The default is 0.1 s. Returns
    the previous setting.
    """
    if seconds is not None and not seconds > 0:
        msg = f"block threshold must be a positive number of seconds or None, not {seconds!r}"
        raise ValueError(msg)
    previous: float | None = _watchdog_state["threshold"]
    _watchdog_state["threshold"] = seconds
    _watchdog_state["wake"].set()
    return previous


def _ensure_watchdog() -> None:
    with _lock:
        if _watchdog_state["thread"] is not None:
            return
        thread = threading.Thread(target=_watch, name="hedgerow-watchdog", daemon=True)
        _watchdog_state["thread"] = thread
        thread.start()


def _watch() -> None:
    wake: threading.Event = _watchdog_state["wake"]
    while True:
        threshold: float | None = _watchdog_state["threshold"]
        if wake.wait(1.0 if threshold is None else max(threshold / 4, 0.001)):
            wake.clear()
            continue
        forget_closed_loops()
        if threshold is None:
            continue
        now = time.monotonic()
        for runtime in list(_runtimes.values()):
            try:
                runtime.check(now, threshold)
            except Exception:
                logger.exception("The blocked-loop check of %r failed", runtime.loop)


def forget_closed_loops() -> None:
    """Drop the runtimes of loops that are closed, and stop the actors left on
    them (the watchdog calls it on every pass).

    An actor idle on a loop that has ended (``asyncio.run`` returned) would
    otherwise stay registered and alive, and a message to it would wait
    forever: it is stopped as by a kill, so its refs say it is dead.
    """
    with _lock:
        closed = [loop for loop in _runtimes if loop.is_closed()]
        for loop in closed:
            del _runtimes[loop]
    if not closed:
        return
    for ref in pykka.ActorRegistry.get_all():
        inbox = ref.actor_inbox
        if getattr(inbox, "_loop", None) in closed:
            actor = getattr(inbox, "_actor", None)
            if actor is not None:
                actor._hr_loop_closed()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
