"""`VirtualClock`: time that moves only when a test says so, or when the actors are idle.

Autojump (as trio's ``MockClock.autojump_threshold``): when no actor has anything
to do for the threshold of real time, the clock jumps to its next deadline and
runs that one timer (the next, due at the same instant or later, waits until the
actors are idle again). In a
threaded runtime "nothing to do" is decided by looking at every actor in pykka's
registry. An actor is idle when

- its thread is blocked in ``threading.Condition.wait`` (so also in
  ``Event.wait`` and ``Queue.get``) and not yet woken: waiting for a message
  (its inbox is then empty), for the answer to an ask, on this clock's `wait`
  (a supervisor waiting out a shutdown timeout, a child slowed by a fault), or
  for a hang fault's release. A woken waiter's lock is released at once by the
  notifying thread, so a thread that is about to run never looks idle;
- an event-loop actor has no thread of its own: it is idle when its loop is
  (blocked in its selector with nothing ready, nothing of this clock due, its
  default executor at rest: `hedgerow.testing._loop_clock`), and a loop that
  made progress between two looks is not quiescent. A loop this clock drives
  (`VirtualClock.drive`) counts its own timers among the clock's deadlines;

and the system is quiescent when every actor is idle (pykka's registry, plus
actors that left it but still run: every live thread actor's thread, so a
thread supervisor stopping its children in its ``on_stop`` is seen even if no
look saw it registered; and each loop that called `now` or `call_later` while
it hosts actors' work, so is a loop supervisor stopping its children), no
thread is inside `hold()`, a timer is pending, and nothing was sent to any inbox nor
scheduled on the clock between two looks at least the threshold apart (and at
least `POLL` apart). Time therefore never moves while a message is on its way or
a handler runs, so the virtual times of events do not depend on thread timing.

Threads that are not actors (the test itself) are not watched: a test that
must do several things at one virtual instant wraps them in ``clock.hold()``,
and an actor blocked on an event that only the test will set counts as idle.
An actor running code, or blocked in real I/O or ``time.sleep``, counts as busy,
so time waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Self

import pykka

from hedgerow._clock import TimerHandle, seconds
from hedgerow.actors._async_actor import AsyncioActor
from hedgerow.actors._attrs import actor_attr
from hedgerow.testing._frames import blocked, current_frames
from hedgerow.testing._loop_clock import LoopWatch, hosts_actors, watchable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["VirtualClock"]

_get_running_loop = asyncio._get_running_loop  # the C fast path: now() is called often

logger = logging.getLogger("hedgerow.testing")

POLL = 0.0002
"""Shortest real time (s) between two looks at the actors before a jump."""
SETTLE_PATIENCE = 1.0
"""Real seconds the actors must stay idle before autojump overrides `settling()`."""
_MAX_POLL = 0.002


class VirtualClock:
    """A `Clock` for tests: `advance()` moves time and runs the timers that fall due.

    Backoff delays, intensity windows and shutdown timeouts read this clock,
    so a test of five restarts with exponential backoff takes no real time.
    Due callbacks run in the thread that calls `advance` (the autojump thread
    when autojumping), in time order.

    `drive(loop)` makes an asyncio loop's own time this clock's, so that
    ``asyncio.sleep`` and the loop's other timers in event-loop actors are
    virtual too (see `hedgerow.testing._loop_clock`); `close()` gives it back.
    ``drive=True`` drives hedgerow's own loop from the start.

    `autojump_threshold` (seconds of real time, ``inf`` = off) turns on
    autojump: see the module docstring for when the clock decides the actors
    are idle. ``0`` jumps as soon as they are. Call `close()` (or use the clock
    as a context manager) to stop the autojump thread; it also ends when the
    clock is garbage collected.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        autojump_threshold: float = math.inf,
        drive: bool = False,
    ) -> None:
        self._now = start
        self._heap: list[tuple[float, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._lock = threading.Condition()
        self._exiting: weakref.WeakSet[Any] = weakref.WeakSet()
        self._holds = 0
        self._settling = 0
        self._changes = 0
        self._closed = False
        self._jumps = 0
        self._thread: threading.Thread | None = None
        self._watches: dict[asyncio.AbstractEventLoop, LoopWatch] = {}
        """The loops this clock looks at (those of event-loop actors, and its driven ones)."""
        self._driven: list[LoopWatch] = []
        self._sleepers = 0
        """Threads waiting on `_lock` for a timer (a driven loop about to wait wakes them)."""
        self._noted: dict[int, weakref.ref[asyncio.AbstractEventLoop]] = {}
        """The loops `now` or `call_later` were called from, by id: autojump watches
        each while it hosts actors (`hosts_actors`), registered or not. (A dict
        of weak refs: a WeakSet's ``in`` costs `now` half a microsecond.)"""
        self._autojump_threshold = math.inf
        self.autojump_threshold = autojump_threshold
        if drive:
            self.drive()

    # -- the Clock protocol ---------------------------------------------------

    def now(self) -> float:
        loop = _get_running_loop()
        if loop is not None:
            noted = self._noted.get(id(loop))
            if noted is None or noted() is not loop:
                self._note(loop)
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        loop = _get_running_loop()
        if loop is not None:
            noted = self._noted.get(id(loop))
            if noted is None or noted() is not loop:
                self._note(loop)
        with self._lock:
            handle = TimerHandle(self._now + max(seconds(delay), 0.0), callback, args)
            heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
            self._changes += 1
            self._lock.notify_all()
        return handle

    def wait(self, waiter: threading.Event, timeout: float | None) -> None:
        if timeout is None:
            waiter.wait()
            return
        handle = self.call_later(timeout, waiter.set)
        try:
            waiter.wait()
        finally:
            handle.cancel()

    # -- manual control -------------------------------------------------------

    def pending(self) -> list[float]:
        """When the timers not yet run are due (cancelled ones left out)."""
        with self._lock:
            times = [h.when for _, _, h in self._heap if not h.cancelled]
            driven = list(self._driven)
        for watch in driven:
            times.extend(watch.timers())
        return sorted(times)

    def next_deadline(self) -> float | None:
        times = self.pending()
        return times[0] if times else None

    def wait_for_timer(self, timeout: float | None = 10.0) -> float:
        """Block (in real time) until some timer is pending; its due time."""
        with self._lock:
            self._sleepers += 1
            try:
                ok = self._lock.wait_for(
                    lambda: (
                        any(not h.cancelled for _, _, h in self._heap)
                        or any(w.next_timer() is not None for w in self._driven)
                    ),
                    timeout,
                )
            finally:
                self._sleepers -= 1
        if not ok:
            msg = f"no timer was scheduled within {timeout} s"
            raise TimeoutError(msg)
        deadline = self.next_deadline()
        assert deadline is not None
        return deadline

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, running every timer that falls due."""
        if seconds < 0:
            msg = f"cannot move a clock backwards ({seconds} s)"
            raise ValueError(msg)
        target = self._now + seconds
        while True:
            with self._lock:
                self._changes += 1
                if not self._heap or self._heap[0][0] > target:
                    self._now = target
                    break
                when, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, when)
            self._wake_loops()
            handle._run()
        self._wake_loops()

    def jump_to_next(self) -> float:
        """Advance exactly to the next pending timer (waiting for one if needed),
        a driven loop's included."""
        deadline = self.wait_for_timer()
        self.advance(max(deadline - self._now, 0.0))
        return deadline

    # -- asyncio loops ---------------------------------------------------------

    def drive(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Make `loop`'s time this clock's until `undrive` or `close`.

        `loop` defaults to the loop hedgerow runs event-loop actors on. Its
        ``time()`` then reads this clock, its timers (``asyncio.sleep``,
        ``call_later``, timeouts) fall due as this clock moves, and autojump
        jumps to them too. A timer pending at the switch keeps its remaining
        delay. One clock drives a loop at a time: `RuntimeError` otherwise.
        `TypeError` for a loop that is not one of asyncio's selector loops.
        """
        if loop is None:
            from hedgerow.actors._loop import hedgerow_loop  # noqa: PLC0415 - starts a thread

            loop = hedgerow_loop()
        watch = self._watch(loop)
        with self._lock:
            if watch in self._driven:
                return
        try:
            watch.drive(self)
        except TimeoutError:
            # The loop's thread is held: it takes this clock when it runs again,
            # and `close` must give it back then.
            with self._lock:
                self._driven.append(watch)
            raise
        with self._lock:
            self._driven.append(watch)
            self._changes += 1
            self._lock.notify_all()

    def undrive(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Give `loop` (by default hedgerow's) back to real time; its pending
        timers keep their remaining delay."""
        with self._lock:
            watches = [w for w in self._driven if loop is None or w.loop is loop]
            for watch in watches:
                self._driven.remove(watch)
            self._changes += 1
        for watch in watches:
            watch.undrive(self)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> LoopWatch:
        with self._lock:
            watch = self._watches.get(loop)
            if watch is None:
                watch = self._watches[loop] = LoopWatch.for_loop(loop)
            return watch

    def _note(self, loop: asyncio.AbstractEventLoop) -> None:
        """A loop reads this clock: an actor on it (a loop supervisor stopping,
        unregistered, say) may be at work that no look at the registry sees."""
        with self._lock:
            self._noted[id(loop)] = weakref.ref(loop)

    def _wake_loops(self) -> None:
        for watch in list(self._driven):
            watch.wake()

    def _poke(self) -> None:
        """A driven loop is about to wait for a timer: wake who waits for one."""
        with self._lock:
            self._lock.notify_all()

    def _next_loop_timer(self) -> tuple[float, LoopWatch | None]:
        """The earliest pending timer of a driven loop, and its loop."""
        best: tuple[float, LoopWatch | None] = (math.inf, None)
        for watch in self._driven:
            when = watch.next_timer()
            if when is not None and when < best[0]:
                best = (when, watch)
        return best

    # -- autojump -------------------------------------------------------------

    @property
    def autojump_threshold(self) -> float:
        """Real seconds of quiescence before the clock jumps to its next deadline."""
        return self._autojump_threshold

    @autojump_threshold.setter
    def autojump_threshold(self, value: float) -> None:
        if not value >= 0:
            msg = f"autojump_threshold={value!r}: expected a number >= 0 (inf turns it off)"
            raise ValueError(msg)
        with self._lock:
            self._autojump_threshold = float(value)
            self._lock.notify_all()
            start = not math.isinf(value) and self._thread is None and not self._closed
            if start:
                self._thread = threading.Thread(
                    target=_autojump_loop,
                    args=(weakref.ref(self), self._lock),
                    name="hedgerow-autojump",
                    daemon=True,
                )
        if start:
            assert self._thread is not None
            self._thread.start()

    @property
    def jumps(self) -> int:
        """How many times autojump has moved the clock."""
        return self._jumps

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No autojump while inside: a test does several things at one virtual instant."""
        with self._lock:
            self._holds += 1
            self._changes += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                self._changes += 1
                self._lock.notify_all()

    @contextlib.contextmanager
    def settling(self) -> Iterator[None]:
        """Like `hold`, unless the actors stay idle for `SETTLE_PATIENCE` real
        seconds meanwhile: then they are waiting for time, and it moves.

        For a test thread's setup whose end the actors cannot see (a tree
        starting, then faults plugged in): time moves at the same points every
        run, unless the setup itself waits for the clock (a component retrying
        its first join), which `hold` would turn into a deadlock.
        """
        with self._lock:
            self._settling += 1
            self._changes += 1
        try:
            yield
        finally:
            with self._lock:
                self._settling -= 1
                self._changes += 1
                self._lock.notify_all()

    def close(self) -> None:
        """Stop autojumping and end the autojump thread."""
        with self._lock:
            self._closed = True
            self._autojump_threshold = math.inf
            self._lock.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.undrive()
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _has_pending(self) -> bool:
        """Is a timer due at some finite time? (Autojump never jumps to ``inf``.)"""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if self._heap and math.isfinite(self._heap[0][0]):
            return True
        return math.isfinite(self._next_loop_timer()[0])

    def _snapshot(self) -> tuple[Any, ...] | None:
        """A fingerprint of the whole system if it is quiescent now, else None."""
        with self._lock:
            if self._holds or not self._has_pending():
                return None
            changes = self._changes
        fingerprint: list[Any] = [changes]
        frames = current_frames()
        registered = [ref._actor_weakref() for ref in pykka.ActorRegistry.get_all()]
        # pykka unregisters an actor before its on_stop and exit callbacks run:
        # keep watching each one seen until its exit is complete, and a thread
        # actor until its thread has ended (it marks itself exited before it
        # runs its exit callbacks, which tell its supervisor).
        self._exiting.update(a for a in registered if hasattr(a, "_hr_exited"))
        exiting = [a for a in list(self._exiting) if _exiting(a, frames)]
        # An actor can leave the registry before any look saw it there (a
        # supervisor stopping its children in its on_stop, while no timer was
        # pending): it still runs in its thread. A loop supervisor has no thread:
        # its loop is watched while one of its actors is seen, or while a loop
        # that read this clock hosts actors' work (`hosts_actors`). Not every
        # loop that ever did: one that never settles would keep time still.
        loops: set[asyncio.AbstractEventLoop] = set()
        with self._lock:
            noted = [ref() for ref in self._noted.values()]
        loops.update(loop for loop in noted if loop is not None and hosts_actors(loop))
        actors = [*registered, *exiting, *_thread_actors()]
        for actor in {id(a): a for a in actors if a is not None}.values():
            inbox = actor.actor_inbox
            if isinstance(actor, AsyncioActor):  # no thread of its own: idle when its loop is
                loop = actor_attr(actor, "_hr_loop")
                if loop is None:
                    pass
                elif watchable(loop):
                    loops.add(loop)
                elif actor_attr(actor, "_hr_busy", False):
                    # A loop whose internals cannot be read (not asyncio's): judged
                    # by its actors, idle while none has a message in hand or due.
                    return None
            elif not blocked(frames.get(actor_attr(actor, "_hr_thread_id", 0))):
                return None
            fingerprint.append((actor.actor_urn, _sends(inbox)))
        with self._lock:
            driven = list(self._driven)
        watches = {id(w.loop): w for w in [*driven, *map(self._watch, loops)]}
        for key, watch in sorted(watches.items()):
            if not watch.idle(frames):
                return None
            fingerprint.append((key, watch.progress))
        return tuple(fingerprint)

    def _jump(self, snapshot: tuple[Any, ...]) -> None:
        """Run the next timer, moving time to it, unless anything changed since
        `snapshot`. One timer per jump: timers due at the same instant run one at
        a time, each once the actors are idle again, so what a timer sees never
        depends on how far the threads woken by the one before it have got.
        A driven loop's next timer is one too: the loop runs those due at that
        instant (asyncio runs every due timer in one iteration)."""
        with self._lock:
            if self._changes != snapshot[0] or self._holds or not self._has_pending():
                return
            loop_when, watch = self._next_loop_timer()
            handle: TimerHandle | None = None
            if self._heap and self._heap[0][0] <= loop_when:
                when, _, handle = heapq.heappop(self._heap)
            else:
                when = loop_when
            if when > self._now:
                self._now = when
                self._jumps += 1
            self._changes += 1
        if handle is not None:
            handle._run()
        elif watch is not None:
            watch.wake()


def _exiting(actor: Any, frames: dict[int, Any]) -> bool:
    """Is `actor` still on its way out: not marked exited, or its thread alive?"""
    if not actor._hr_exited.is_set():
        return True
    thread_id = actor_attr(actor, "_hr_thread_id")
    return thread_id is not None and thread_id in frames and not isinstance(actor, AsyncioActor)


def _thread_actors() -> list[Any]:
    """The actors whose threads are alive, registered or not (a pykka thread
    actor's thread runs its ``_actor_loop``)."""
    actors = []
    for thread in threading.enumerate():
        actor = getattr(getattr(thread, "_target", None), "__self__", None)
        if isinstance(actor, pykka.Actor):
            actors.append(actor)
    return actors


def _sends(inbox: Any) -> int:
    """How many envelopes an inbox ever got: pykka never calls ``task_done``, so
    ``unfinished_tasks`` counts every put (0 for an inbox that is not a Queue)."""
    return int(getattr(inbox, "unfinished_tasks", 0))


def _look(clock: VirtualClock) -> tuple[Any, ...] | None:
    """`clock._snapshot()`, or None if looking failed: the autojump thread must
    never die of it, or time would stop for good."""
    try:
        return clock._snapshot()
    except Exception:
        logger.exception("Autojump of %r could not look at the actors", clock)
        return None


def _autojump_loop(clock_ref: weakref.ref[VirtualClock], cond: threading.Condition) -> None:
    """Watch the actors; jump the clock when they stay quiescent for the threshold."""
    poll = POLL
    seen: tuple[Any, ...] | None = None
    since = 0.0
    while True:
        clock = clock_ref()
        if clock is None:
            return
        with cond:
            if clock._closed:
                return
            threshold = clock._autojump_threshold
            idle = math.isinf(threshold) or clock._holds or not clock._has_pending()
            if idle:
                clock._sleepers += 1  # a driven loop that sets a timer wakes us
                try:
                    cond.wait(timeout=1.0)
                finally:
                    clock._sleepers -= 1
                del clock
                seen = None
                continue
        snapshot = _look(clock)
        now = time.monotonic()
        if snapshot is None:
            seen = None
            del clock
            time.sleep(poll)
            poll = min(poll * 2, _MAX_POLL)
            continue
        if snapshot != seen:
            seen, since = snapshot, now
            del clock
            time.sleep(max(threshold, POLL))
            continue
        if clock._settling and now - since < max(threshold, SETTLE_PATIENCE):
            del clock
            time.sleep(POLL)
            continue
        if now - since >= threshold:
            try:
                clock._jump(snapshot)
            except Exception:
                logger.exception("Autojump of %r failed", clock)
            seen = None
            poll = POLL
            continue
        del clock
        time.sleep(max(threshold - (now - since), POLL))
