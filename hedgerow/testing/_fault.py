"""`Fault`: one injected fault (crash, failed start, hang, slowness, exit), its
kinds, errors and records.

A `Fault` is made and kept by `hedgerow.testing.Faults`; it takes effect in the
child's own thread (`_fire`), and `cancel()` undoes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import enum
import inspect
import random
import threading
from typing import TYPE_CHECKING, Any, NamedTuple

from hedgerow._exceptions import HedgerowError, Shutdown
from hedgerow.actors._async_actor import AsyncioActor

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from hedgerow.actors._actor import Actor
    from hedgerow.testing._faults import Faults

__all__ = ["ErrorSpec", "Fault", "FaultError", "FaultKind", "FaultRecord", "InjectedFault"]

ErrorSpec = BaseException | type[BaseException] | None


class FaultKind(enum.Enum):
    """What a fault does to the child it hits."""

    CRASH = "crash"
    """Raise an exception in the child's thread: it fails, its supervisor decides."""
    FAIL_START = "fail_start"
    """Raise an exception before ``on_start``: the start fails."""
    HANG = "hang"
    """Block the child's thread until the fault is cleared; stop requests wait too."""
    SLOW = "slow"
    """Wait a delay of the tree's clock before each message."""
    EXIT = "exit"
    """Stop the child with reason ``normal``."""
    SHUTDOWN = "shutdown"
    """Stop the child with a `hedgerow.Shutdown` reason (it counts as normal)."""


class InjectedFault(Exception):
    """The exception a crash or start fault raises when the test names none."""


class FaultError(HedgerowError):
    """A fault cannot be injected (the child is not running, an argument is wrong)."""


class FaultRecord(NamedTuple):
    """One firing of a fault: when (the tree's clock), what, where, which incarnation."""

    time: float
    kind: FaultKind
    path: str
    incarnation: int


class Fault:
    """One injected fault; `cancel()` undoes it (releasing a hang, waking a slow child)."""

    def __init__(
        self,
        owner: Faults,
        kind: FaultKind,
        path: str,
        *,
        error: ErrorSpec = None,
        at_message: int | None = None,
        probability: float | None = None,
        times: int | None = None,
        delay: float = 0.0,
        term: Any = None,
        serial: int = 0,
    ) -> None:
        self.kind = kind
        self.path = path
        self.fired = 0
        """How many times it took effect."""
        self.active = True
        """Armed, or in effect (a hang until released); False once spent or cancelled."""
        self._armed = True
        self._owner = owner
        self._error = error
        self._countdown = at_message
        self._probability = probability
        self._times = times
        self._delay = delay
        self._term = term
        self._rng = random.Random(f"{owner.seed}:{serial}")  # noqa: S311 - a test's dice
        self._release = threading.Event()
        self._fired = threading.Event()
        self._wakers: set[Callable[[], None]] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "active" if self.active else "done"
        return f"<Fault {self.kind.value} {self.path} fired={self.fired} {state}>"

    def wait_fired(self, timeout: float = 10.0) -> None:
        """Block until it has taken effect at least once (an immediate fault is
        applied by the child's own thread, a moment after the call)."""
        if not self._fired.wait(timeout):
            msg = f"{self!r} did not take effect within {timeout} s"
            raise TimeoutError(msg)

    def cancel(self) -> None:
        """Disarm it; a child it hangs or slows goes on."""
        self._disarm()
        self._wake()

    def _disarm(self) -> None:
        with self._lock:
            self.active = self._armed = False
        self._owner._forget(self)

    def _wake(self) -> None:
        """Release the child it hangs, wake the one it slows (once disarmed)."""
        with self._lock:
            wakers = list(self._wakers)
        self._release.set()
        for waker in wakers:
            waker()

    # -- in the child's thread -----------------------------------------------

    def _should_fire(self) -> bool:
        """Does this message (or start) set it off? Disarms it when spent."""
        with self._lock:
            if not self._armed:
                return False
            if self._countdown is not None:
                self._countdown -= 1
                if self._countdown > 0:
                    return False
                self._spend()
            elif self._probability is not None:
                return self._rng.random() < self._probability
            elif self._times is not None:
                self._times -= 1
                if self._times <= 0:
                    self._spend()
            return True

    def _fire_now(self, actor: Actor) -> Coroutine[Any, Any, None] | None:
        """An immediate fault, run by the child's loop as a control message."""
        with self._lock:
            if not self._armed:
                return None  # cancelled before the child got to it
            self._spend()
        return self._fire(actor)

    def _spend(self) -> None:
        """No more firings; a hang stays in effect until released (under the lock)."""
        self._armed = False
        self.active = self.kind is FaultKind.HANG and not self._release.is_set()
        if not self.active:
            self._owner._forget_later(self)

    def _fire(self, actor: Actor) -> Coroutine[Any, Any, None] | None:
        """Take effect in `actor`'s thread: raise, block, wait or stop it.

        On an event-loop actor, a hang or a slow message must not block the
        loop: the coroutine to await instead is returned (a hang is an await
        that completes only when released, or cancelled by a kill), and so is
        a stop's ``on_stop`` coroutine.
        """
        self.fired += 1
        self._owner._record(self, actor)
        self._fired.set()
        on_loop = isinstance(actor, AsyncioActor)
        stop: Callable[[], object] = actor._stop  # an event-loop actor's may return a coroutine
        match self.kind:
            case FaultKind.CRASH | FaultKind.FAIL_START:
                raise self._make_error()
            case FaultKind.HANG:
                if on_loop:
                    return self._owner._hang_async(self, actor)
                self._owner._hang(self, actor)
            case FaultKind.SLOW:
                if on_loop:
                    return self._released(self._delay)
                self._wait(self._delay)
            case FaultKind.EXIT:
                return _coroutine(stop())
            case FaultKind.SHUTDOWN:
                actor._hr_set_reason(Shutdown(self._term))
                return _coroutine(stop())
        return None

    def _wait(self, delay: float) -> None:
        waker = threading.Event()
        with self._lock:
            if self._release.is_set():
                return  # cleared meanwhile: go on at once
            self._wakers.add(waker.set)
        try:
            self._owner.clock.wait(waker, delay)
        finally:
            with self._lock:
                self._wakers.discard(waker.set)

    async def _released(self, delay: float | None) -> None:
        """On an event-loop actor's loop: wait until released, or (if `delay` is
        not None) `delay` seconds of the tree's clock have passed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def wake() -> None:  # any thread: the clock's, or the one that clears the fault
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(_finish, done)

        with self._lock:
            if self._release.is_set():
                return  # cleared meanwhile: go on at once
            self._wakers.add(wake)
        timer = None if delay is None else self._owner.clock.call_later(delay, wake)
        try:
            await done
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._wakers.discard(wake)

    def _make_error(self) -> BaseException:
        error = self._error
        if error is None:
            return InjectedFault(f"injected {self.kind.value} of {self.path}")
        if isinstance(error, type):
            try:
                return error(f"injected {self.kind.value} of {self.path}")
            except TypeError:
                return error()
        return error if self.fired <= 1 else copy.copy(error)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _coroutine(result: Any) -> Coroutine[Any, Any, None] | None:
    """`result` if it is a coroutine to await (an ``async def`` hook's), else None."""
    return result if inspect.iscoroutine(result) else None
