"""Virtual time on asyncio loops: a `VirtualClock` drives a loop's own timers, and
its autojump sees when a loop is idle.

hedgerow puts two small instruments on each loop it looks at (a `LoopWatch`),
installed in the loop's own thread, as instance attributes (the loop's class is
untouched):

- ``loop.time``: the loop's clock. Real (`time.monotonic`) until a
  `VirtualClock` drives the loop; then it reads that clock, so ``asyncio.sleep``,
  ``call_later``, ``asyncio.timeout`` and ``wait_for`` in event-loop actors run
  in virtual time. Taking or giving back a loop keeps each pending timer's
  remaining delay (its deadline is moved to the other clock's terms).
- the selector's ``select``: counts the loop's iterations that brought it work
  (ready callbacks or I/O), a fingerprint of progress that autojump compares
  between two looks; and, when the loop is about to wait for a virtual timer,
  wakes an autojump thread that waits for one.

A loop is idle when its thread is blocked in the selector (or in a
``Condition.wait``, as a thread actor is), no callback is ready, no timer of
its driving clock is due, and its default executor (``asyncio.to_thread``,
``run_in_executor(None, ...)``) has no work queued or running (a worker
parked in ``Condition.wait`` is at rest, as a thread actor is). A loop with only
timers pending is idle, as trio's run loop is for its ``autojump_threshold``.
Work a handler hands to threads of its own is not seen: hold the clock
(`VirtualClock.hold`) around it.

The loop internals read here (``_ready``, ``_scheduled``, ``_selector``,
``_default_executor``) are those of CPython's selector event loops;
`LoopWatch.for_loop` refuses any other loop with a clear error.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import contextlib
import heapq
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from hedgerow.actors._loop import LoopRuntime, _runtimes
from hedgerow.testing._frames import blocked

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["DrivingClock", "LoopWatch", "hosts_actors", "watchable"]

INSTALL_TIMEOUT = 10.0
"""Real seconds to wait for a loop's thread to take an instrument (a loop held by
a blocking call cannot)."""

_lock = threading.Lock()
_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopWatch] = (
    weakref.WeakKeyDictionary()
)
_WORKER_CODE = concurrent.futures.thread._worker.__code__


class DrivingClock(Protocol):
    """What a loop reads of the `VirtualClock` that drives it."""

    _now: float
    _sleepers: int

    def now(self) -> float: ...

    def _poke(self) -> None: ...


def _noop() -> None:
    pass


_QUIET = frozenset({_noop, LoopRuntime._beat})
"""Callbacks that wake a loop without giving it work (autojump does not count them)."""


def watchable(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether `loop` is one of asyncio's selector loops, whose internals a watch reads
    (a third-party loop, uvloop's say, has no ``_ready``, ``_scheduled``, ``_selector``)."""
    return (
        getattr(loop, "_selector", None) is not None
        and hasattr(loop, "_scheduled")
        and hasattr(loop, "_ready")
    )


class LoopWatch:
    """hedgerow's instruments on one loop: its time, and a count of its progress.

    One per loop, shared by every clock that looks at it (`users`); at most one
    of them drives it (`clock`). Made and dropped with `for_loop` and `release`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.clock: DrivingClock | None = None
        """The clock that drives the loop's time, if any."""
        self.progress = 0
        """Iterations of the loop that brought it work, since the watch was made."""
        self.thread_id: int | None = None
        self.installed = False
        self.users = 0
        selector = getattr(loop, "_selector", None)
        if selector is None or not watchable(loop):
            msg = (
                f"{loop!r} is not one of asyncio's selector event loops: a VirtualClock "
                "can only drive or watch those (use asyncio's default loop in tests)"
            )
            raise TypeError(msg)
        self._selector = selector
        # The class's own select (not whatever is installed now: another watch's).
        self._select: Callable[..., Any] = type(selector).select.__get__(selector)
        self._select_code = type(selector).select.__code__
        ssock = getattr(loop, "_ssock", None)
        self._wakeup_fd = ssock.fileno() if ssock is not None else -1
        """The loop's self-pipe (what ``call_soon_threadsafe`` writes to)."""

    # -- making and dropping ----------------------------------------------------------

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> LoopWatch:
        """The watch of `loop`, made (and installed, in the loop's thread) on first use."""
        with _lock:
            watch = _watches.get(loop)
            if watch is None:
                watch = _watches[loop] = cls(loop)
            watch.users += 1
        if not watch.installed:
            watch.in_loop(watch._install, wait=False)
        return watch

    def release(self) -> None:
        """One user fewer; the last one takes the instruments off the loop."""
        with _lock:
            self.users -= 1
            if self.users > 0 or self.clock is not None:
                return
            if _watches.get(self.loop) is self:
                del _watches[self.loop]
        self.in_loop(self._uninstall, wait=False)

    def _install(self) -> None:
        if self.installed:
            return
        if _running_loop() is self.loop:
            self.thread_id = threading.get_ident()
        self._selector.select = self._counting_select
        self.loop.time = self.time  # type: ignore[method-assign]
        self.installed = True

    def _uninstall(self) -> None:
        with _lock:
            if self.users > 0 or _watches.get(self.loop) is self:
                return  # watched again meanwhile
        if not self.installed:
            return
        # Only this watch's own: a watch made since may have put its instruments on.
        if vars(self._selector).get("select") == self._counting_select:
            del self._selector.select
        if vars(self.loop).get("time") == self.time:
            del self.loop.time
        self.installed = False

    def in_loop(self, fn: Callable[[], None], *, wait: bool) -> None:
        """Run `fn` in the loop's thread (at once if this is it, or if nothing runs
        the loop); if `wait`, block until it has run."""
        loop = self.loop
        if loop.is_closed() or _running_loop() is loop or not loop.is_running():
            fn()
            return
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        try:
            loop.call_soon_threadsafe(run)
        except RuntimeError:  # closed meanwhile
            fn()
            return
        if wait and not done.wait(INSTALL_TIMEOUT):
            msg = f"the thread of {loop!r} did not run for {INSTALL_TIMEOUT} s: is it blocked?"
            raise TimeoutError(msg)

    # -- driving --------------------------------------------------------------------

    def drive(self, clock: DrivingClock) -> None:
        """Make `clock` the loop's time, keeping each pending timer's remaining delay."""
        with _lock:
            if self.clock is not None and self.clock is not clock:
                msg = f"{self.loop!r} is driven by {self.clock!r} already: close that clock first"
                raise RuntimeError(msg)

        def take() -> None:
            self._install()
            if self.clock is None:
                self._retime(clock.now() - time.monotonic())
                self.clock = clock

        self.in_loop(take, wait=True)
        if self.clock is not clock:  # another clock took it meanwhile
            msg = f"{self.loop!r} is driven by {self.clock!r} already: close that clock first"
            raise RuntimeError(msg)
        self.wake()

    def undrive(self, clock: DrivingClock) -> None:
        """Give the loop back to real time, keeping each pending timer's remaining delay."""

        def give_back() -> None:
            if self.clock is clock:
                self.clock = None
                self._retime(time.monotonic() - clock.now())

        with contextlib.suppress(TimeoutError):  # a blocked loop: given back when it runs
            self.in_loop(give_back, wait=True)
        self.wake()

    def _retime(self, delta: float) -> None:
        """Move every pending timer by `delta` (in the loop's thread)."""
        scheduled: list[Any] = self.loop._scheduled  # type: ignore[attr-defined]
        for handle in scheduled:
            handle._when += delta
        heapq.heapify(scheduled)

    def time(self) -> float:
        """The loop's ``time()`` while watched: its driving clock's, or real time."""
        clock = self.clock
        return time.monotonic() if clock is None else clock._now

    def wake(self) -> None:
        """Have the loop look at its timers again (from any thread)."""
        with contextlib.suppress(RuntimeError):  # closed: nothing to wake
            self.loop.call_soon_threadsafe(_noop)

    def _counting_select(self, timeout: float | None = None) -> Any:
        self.thread_id = threading.get_ident()
        clock = self.clock
        if clock is not None and timeout and clock._sleepers:
            clock._poke()  # about to wait for a virtual timer: wake who waits for one
        events = self._select(timeout)
        if self._brings_work(events):
            self.progress += 1
        return events

    def _brings_work(self, events: list[Any]) -> bool:
        """Did the loop wake for work: I/O, or a callback that is not a quiet one
        (hedgerow's watchdog heartbeat, a clock's wake-up)? The heartbeat comes
        every quarter of the block threshold while an actor awaits, and would
        otherwise look like progress to an autojump threshold longer than that."""
        wakeup = self._wakeup_fd
        if any(key.fd != wakeup for key, _ in events):
            return True
        return any(
            getattr(callback, "__func__", callback) not in _QUIET
            for callback in (getattr(h, "_callback", None) for h in list(self.loop._ready))  # type: ignore[attr-defined]
        )

    # -- what autojump reads (from its own thread) ---------------------------------

    def next_timer(self) -> float | None:
        """When the loop's earliest pending timer is due (its loop time), or None."""
        whens = self.timers()
        return min(whens) if whens else None

    def timers(self) -> list[float]:
        """When each pending timer of the loop is due (its loop time)."""
        try:
            scheduled = list(self.loop._scheduled)  # type: ignore[attr-defined]
        except RuntimeError:  # changed while copied
            return []
        return [h._when for h in scheduled if not h._cancelled]

    def idle(self, frames: dict[int, Any]) -> bool:  # noqa: PLR0911 - one return per rule
        """Is the loop idle: waiting, with nothing ready and nothing due?"""
        loop = self.loop
        if loop.is_closed() or not loop.is_running():
            return True  # nothing runs on it
        if not self.installed or self.thread_id is None or loop._ready:  # type: ignore[attr-defined]
            return False
        clock = self.clock
        if clock is not None:
            due = self.next_timer()
            if due is not None and due < clock._now + _resolution(loop):
                self.wake()  # it must look at its timers again
                return False
        frame = frames.get(self.thread_id)
        if frame is None:
            return False
        try:
            code = frame.f_code
        except Exception:  # noqa: BLE001 - another thread's frame can change under us
            return False
        if code is not self._select_code and not blocked(frame):
            return False
        return not _executor_busy(loop, frames)


def hosts_actors(loop: asyncio.AbstractEventLoop) -> bool:
    """Does `loop` run an event-loop actor's work now: an actor with a message
    queued or in hand (its `LoopRuntime`'s ``busy``), or a task of an actor's
    body (a handler that awaits, a start or a stop in progress, a supervisor
    waiting for its children's exits), whether or not the actor is still
    registered?

    A loop that hosted actors once and hosts none now is not counted: one that
    never settles (a leftover task of the test's own) would keep time still."""
    if loop.is_closed():
        return False
    runtime = _runtimes.get(loop)
    if runtime is not None and runtime.busy:
        return True
    try:
        tasks = asyncio.all_tasks(loop)  # (a copy, safe from another thread)
    except RuntimeError:  # changed while copied, too often
        return True
    for task in tasks:
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and code.co_name == "_hr_body":
            return True
    return False


def _resolution(loop: asyncio.AbstractEventLoop) -> float:
    return float(getattr(loop, "_clock_resolution", 1e-9))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    return asyncio._get_running_loop()


def _executor_busy(loop: asyncio.AbstractEventLoop, frames: dict[int, Any]) -> bool:
    """Has the loop's default executor work queued or running?

    A worker is at rest when blocked for its next item (``_worker`` innermost)
    or, as any thread, parked in ``Condition.wait``; any other is at work. A
    worker counts as an idle place (``_idle_semaphore``) only once its item
    is done, and a submit takes one back at once: more workers in ``_worker``
    than idle places means one has just taken an item, or just finished one.
    """
    executor = getattr(loop, "_default_executor", None)
    if executor is None:
        return False
    try:
        if executor._work_queue.qsize():
            return True
        threads = list(executor._threads)
        places = executor._idle_semaphore._value
    except (AttributeError, RuntimeError):  # not CPython's ThreadPoolExecutor
        return False
    at_rest = 0
    for thread in threads:
        frame = frames.get(thread.ident or 0)
        if frame is None:
            continue  # not started yet, or ended
        try:
            code = frame.f_code
        except Exception:  # noqa: BLE001 - another thread's frame can change under us
            return True
        if code is _WORKER_CODE:
            at_rest += 1
        elif not blocked(frame):
            return True
    return bool(at_rest > places)
