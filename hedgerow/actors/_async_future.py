"""`AsyncioFuture`: a pykka future that a thread can block on and a coroutine can await.

pykka's own `Future.__await__` blocks: awaiting an ask inside a running asyncio
loop stops the loop until the answer comes. This future keeps pykka's
`get(timeout=...)` for threads and adds an `await` that suspends only the
awaiting task: the setter wakes it on its own loop (at once, when the setter
runs on that loop; through ``call_soon_threadsafe`` from any other thread).

It subclasses `pykka.ThreadingFuture`, so that code checking for pykka's
thread future accepts it, but holds no `threading.Condition`: a future that
nobody blocks on costs one small object, and a thread that must block makes
its own lock only then. Waiters (a blocked thread's lock, an awaiting task's
loop future, a done-callback) are run exactly once, by whoever sees the value
first under a short module lock; setting a future nobody waits for takes no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sys
import threading
from asyncio import events
from typing import TYPE_CHECKING, Any, TypeVar

import pykka
from pykka._future import _Unset

from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._take_back import take_back_queued

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable

    from pykka._future import GetHookFunc
    from pykka._types import OptExcInfo

__all__ = ["AsyncioFuture"]

T = TypeVar("T")
J = TypeVar("J")
M = TypeVar("M")
R = TypeVar("R")

logger = logging.getLogger("hedgerow.actors")

_PENDING, _VALUE, _ERROR = 0, 1, 2
_DONE = object()  # in place of the waiters of a future whose waiters have run
_waiters_lock = threading.Lock()


def _forked() -> None:
    """In a forked child: a thread of the parent may have held the lock (never released there)."""
    global _waiters_lock  # noqa: PLW0603 - the module's one lock, made afresh
    _waiters_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

_LockType = type(threading.Lock())
_FutureType = asyncio.Future
_get_running_loop = events._get_running_loop  # asyncio's C fast path


class AsyncioFuture(pykka.ThreadingFuture[T]):
    """A pykka future that can be awaited without blocking the running loop.

    ``future.get(timeout=...)`` blocks the calling thread, as pykka's
    `ThreadingFuture` does. ``await future`` in a coroutine suspends that
    coroutine only; other tasks on its loop run meanwhile. Either works
    whichever thread or loop sets the future: the futures of event-loop actors
    (`AsyncioActor`) are of this class, and it can stand in for
    `pykka.ThreadingFuture` wherever a thread actor answers.

    ``get()`` without a timeout, called on the loop thread that must set the
    future (a handler of an event-loop actor asking another actor of its own
    loop and blocking on the answer), would wait forever: it raises
    RuntimeError saying to await the future instead.
    """

    # Defaults on the class, so that a new future sets no attribute at all
    # (pykka.Future's own two included; a hook's result replaces the shared
    # "unset" marker on the instance).
    _get_hook = None
    _get_hook_result = _Unset()
    _hr_state = _PENDING
    _hr_value: Any = None
    _hr_exc_info: OptExcInfo | None = None
    _hr_waiters: Any = None
    """None, one waiter, a list of them, or _DONE once they have run."""
    _hr_sources: tuple[pykka.Future[Any], ...] | None = None
    _hr_owner: asyncio.AbstractEventLoop | None = None
    """The loop whose thread will set this future, when known (an event-loop actor's)."""
    _hr_inbox: Any = None
    """The inbox holding the ask this future answers, until it is answered: a
    cancelled await takes the message back from it (`_hr_take_back`)."""

    if TYPE_CHECKING:

        def __init__(self) -> None: ...

    else:
        # Not ThreadingFuture's __init__ (its Condition is not needed), nor a
        # Python one: object's, so that making a future runs no Python code.
        __init__ = object.__init__

    def __repr__(self) -> str:
        state = ("pending", "done", "failed")[self._hr_state]
        return f"<hedgerow.AsyncioFuture {state}>"

    # -- outcome -------------------------------------------------------------

    def done(self) -> bool:
        """Whether the value (or exception) is set; a get hook counts as not done."""
        return self._hr_state != _PENDING

    def set(self, value: Any | None = None) -> None:
        if self._hr_state != _PENDING or self._get_hook is not None:
            raise queue.Full
        self._hr_value = value
        self._hr_state = _VALUE
        self._hr_inbox = None  # answered: the inbox (and its actor) is not kept
        if self._hr_waiters is not None:
            # _hr_run_waiters, inlined for an answer's common case: one task of
            # this loop awaits it.
            lock = _waiters_lock
            lock.acquire()
            waiters = self._hr_waiters
            self._hr_waiters = _DONE
            lock.release()
            if waiters.__class__ is _FutureType and waiters.get_loop() is _get_running_loop():
                if not waiters.done():
                    waiters.set_result(None)
            elif waiters is not _DONE and waiters is not None:
                # (None: its one waiter was discarded meanwhile, by a cancelled await.)
                _run_waiters(self, waiters)

    def set_exception(self, exc_info: OptExcInfo | None = None) -> None:
        assert exc_info is None or len(exc_info) == 3  # noqa: PLR2004 - sys.exc_info()'s shape
        if exc_info is None:
            exc_info = sys.exc_info()
        if self._hr_state != _PENDING or self._get_hook is not None:
            raise queue.Full
        self._hr_exc_info = exc_info
        self._hr_state = _ERROR
        self._hr_inbox = None
        if self._hr_waiters is not None:
            self._hr_run_waiters()

    def set_get_hook(self, func: GetHookFunc[T]) -> None:
        if self._hr_state != _PENDING:
            raise queue.Full
        pykka.Future.set_get_hook(self, func)
        # A thread blocked in get() must now call the hook.
        self._hr_run_waiters()

    def get(self, *, timeout: float | None = None) -> Any:
        if self._hr_state == _PENDING and self._get_hook is None:
            self._hr_block(timeout)
        if self._get_hook is not None:
            return pykka.Future.get(self, timeout=timeout)
        return self._hr_outcome()

    def add_done_callback(self, callback: Callable[[AsyncioFuture[T]], None]) -> None:
        """Call ``callback(future)`` once the future is set (at once if it is).

        It runs in the thread that sets the future, so it must be quick and
        must not block; what it raises is logged. A future with a get hook
        never calls it.
        """
        self._hr_add_waiter(callback)

    def _hr_outcome(self) -> Any:
        if self._hr_state == _VALUE:
            return self._hr_value
        exc_info = self._hr_exc_info
        assert exc_info is not None
        exc_type, exc_value, exc_traceback = exc_info
        assert exc_type is not None
        if exc_value is None:
            exc_value = exc_type()
        if exc_value.__traceback__ is not exc_traceback:
            raise exc_value.with_traceback(exc_traceback)
        raise exc_value

    # -- waiters -------------------------------------------------------------

    def _hr_add_waiter(self, waiter: Any) -> None:
        # _hr_waiters: None, one waiter, a list of them, or _DONE once they have run.
        # (acquire and release: a with statement costs twice as much, and nothing
        # between them can raise.)
        lock = _waiters_lock
        lock.acquire()
        waiters = self._hr_waiters
        if waiters is None:
            self._hr_waiters = waiter
            waiter = None
        elif waiters is not _DONE:
            if waiters.__class__ is list:
                waiters.append(waiter)
            else:
                self._hr_waiters = [waiters, waiter]
            waiter = None
        lock.release()
        if waiter is not None:
            _run_waiter(self, waiter)
        elif self._hr_state != _PENDING or self._get_hook is not None:
            # The setter may have looked for waiters before this one was added.
            self._hr_run_waiters()

    def _hr_run_waiters(self) -> None:
        lock = _waiters_lock
        lock.acquire()
        waiters = self._hr_waiters
        self._hr_waiters = _DONE
        lock.release()
        if waiters is not None and waiters is not _DONE:
            _run_waiters(self, waiters)

    def _hr_discard_waiter(self, waiter: Any) -> None:
        """Forget a waiter that no longer waits (a cancelled await), so that a
        future awaited and cancelled many times over does not keep them all."""
        with _waiters_lock:
            waiters = self._hr_waiters
            if waiters is waiter:
                self._hr_waiters = None
            elif waiters.__class__ is list and waiter in waiters:
                waiters.remove(waiter)

    def _hr_drop_marker(self, marker: _Marker | None) -> bool:
        """Forget `marker` (see `_hr_await_hook`); whether it was the future's only
        waiter while the future was pending."""
        with _waiters_lock:
            waiters = self._hr_waiters
            if waiters is marker or (waiters.__class__ is list and waiters == [marker]):
                self._hr_waiters = None  # (a list left by discarded waiters counts as one)
                return self._hr_state == _PENDING
            if waiters.__class__ is list and marker in waiters:
                waiters.remove(marker)
        return False

    def _hr_block(self, timeout: float | None) -> None:
        owner = self._hr_owner
        if owner is None:  # an event-loop actor's inbox knows its loop
            owner = getattr(self._hr_inbox, "_loop", None)
        if owner is not None and (timeout is None or timeout > 0) and _get_running_loop() is owner:
            # (With a timeout too: nothing can answer while the loop is held, so
            # it would hold every actor of the loop for `timeout`, then time out.
            # A poll, timeout 0, waits for nothing: its Timeout is the answer.)
            msg = (
                "get() on the loop thread that must answer it would block "
                f"{'forever' if timeout is None else f'for {timeout} s, then time out'}: "
                "inside an event-loop actor, await the future "
                "(await ref.ask(message, block=False)) instead of blocking on it"
            )
            raise RuntimeError(msg)
        # hedgerow.testing's virtual clock takes a thread blocked here (this
        # method's code, its `lock` still held) for an idle actor: keep both names.
        lock = threading.Lock()
        lock.acquire()
        self._hr_add_waiter(lock)
        if not lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            self._hr_discard_waiter(lock)
            msg = f"{timeout} seconds"
            raise pykka.Timeout(msg)

    # -- await ---------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, T]:  # noqa: C901 - every awaited ask, in one frame
        if self._hr_state == _PENDING:
            if self._get_hook is None:
                # _hr_until_set and _hr_add_waiter, inlined: every awaited ask's path.
                loop = _get_running_loop()
                if loop is None:
                    loop = events.get_running_loop()  # raises the usual RuntimeError
                inbox = self._hr_inbox
                if inbox is not None and (
                    getattr(inbox, "_loop", None) is loop or self._hr_owner is loop
                ):
                    self._hr_refuse_own_handler(inbox, loop)
                waiter = loop.create_future()
                lock = _waiters_lock
                lock.acquire()
                if self._hr_waiters is None:
                    self._hr_waiters = waiter
                    lock.release()
                    if self._hr_state != _PENDING or self._get_hook is not None:
                        self._hr_run_waiters()  # set meanwhile, by another thread
                else:
                    lock.release()
                    self._hr_add_waiter(waiter)
                if not waiter.done():
                    try:
                        yield from waiter
                    except BaseException:  # cancelled: forget the waiter, not the future
                        self._hr_discard_waiter(waiter)
                        if self._hr_inbox is not None:
                            self._hr_take_back()
                        raise
            if self._get_hook is not None:
                return (yield from self._hr_await_hook())
        if self._hr_state == _VALUE:
            return self._hr_value  # type: ignore[no-any-return]
        return self._hr_outcome()  # type: ignore[no-any-return]

    __iter__ = __await__

    def _hr_refuse_own_handler(self, inbox: Any, loop: asyncio.AbstractEventLoop) -> None:
        """An event-loop actor's handler awaiting an ask of its own inbox would wait
        for itself for ever: take the message back and say so."""
        actor = getattr(inbox, "_actor", None)  # a LoopInbox's
        if actor is None:  # a child's Inbox: its reader's wake-up is the incarnation's
            actor = getattr(inbox, "loop_reader", None)
        task = actor_attr(actor, "_hr_task")
        if task is not None and task is asyncio.current_task(loop):
            self._hr_take_back()
            msg = (
                f"{actor} awaits an ask of its own ref in its handler: the answer would "
                "never come (an actor handles one message at a time); tell itself instead"
            )
            raise RuntimeError(msg)

    def _hr_take_back(self) -> None:
        """The await of an ask was cancelled: take its message back from the inbox if
        the actor has not taken it yet. Then nobody will answer it: the future
        fails with CancelledError, so that any other waiter stops waiting. If the
        actor has it already, nothing changes (its answer goes to nobody)."""
        inbox = self._hr_inbox
        if inbox is None or self._hr_state != _PENDING:
            return
        take_back = getattr(inbox, "take_back", None)  # an event-loop actor's, a child's
        if take_back is not None:
            taken = take_back(self)
        elif isinstance(inbox, queue.Queue):  # pykka's thread actors'
            taken = take_back_queued(inbox, self)
        else:
            return
        if taken:
            error = asyncio.CancelledError("the ask was cancelled before its actor took it")
            with contextlib.suppress(queue.Full):  # (nobody else can answer it)
                self.set_exception((asyncio.CancelledError, error, None))

    def _hr_until_set(self) -> Generator[Any, None, None]:
        loop = events.get_running_loop()
        waiter = loop.create_future()
        self._hr_add_waiter(waiter)
        if not waiter.done():
            try:
                yield from waiter
            except BaseException:
                self._hr_discard_waiter(waiter)
                raise

    def _hr_await_hook(self, *, marked: bool = False) -> Generator[Any, None, T]:
        """A future made by map, filter, reduce or join: await its sources, then
        run the hook (which then does not block); any other hook runs in the
        loop's default executor, so the loop does not block either.

        While awaited, each unanswered source ask carries a do-nothing marker
        waiter (`marked`: an outer combinator's await has marked them already):
        a cancelled await takes back, from their inboxes, the asks whose only
        waiter is its marker (nobody else waits for them), as a cancelled await
        of the ask itself does."""
        sources = self._hr_sources
        if sources is not None and all(isinstance(s, AsyncioFuture) for s in sources):
            marker = None if marked else _Marker()
            leaves = [] if marker is None else _mark_asks(sources, marker)
            try:
                for source in sources:
                    assert isinstance(source, AsyncioFuture)
                    if source._hr_state == _PENDING and source._get_hook is None:
                        yield from source._hr_until_set()
                    elif source._get_hook is not None:
                        yield from source._hr_await_hook(marked=True)
            except BaseException:  # cancelled: take back the asks only this await wanted
                for leaf in leaves:
                    if leaf._hr_drop_marker(marker) and leaf._hr_inbox is not None:
                        leaf._hr_take_back()
                raise
            for leaf in leaves:  # (set by now: the marker has run, or is dropped here)
                leaf._hr_drop_marker(marker)
            return pykka.Future.get(self)
        loop = events.get_running_loop()
        return (yield from loop.run_in_executor(None, self.get))  # type: ignore[no-any-return]

    # -- derived futures keep their sources, so that awaiting them does not block

    def filter(
        self: AsyncioFuture[Iterable[J]], func: Callable[[J], bool]
    ) -> pykka.Future[Iterable[J]]:
        future = super().filter(func)
        _keep_sources(future, (self,))
        return future

    def join(self, *futures: pykka.Future[Any]) -> pykka.Future[Iterable[Any]]:
        future = super().join(*futures)
        _keep_sources(future, (self, *futures))
        return future

    def map(self, func: Callable[[T], M]) -> pykka.Future[M]:
        future = super().map(func)
        _keep_sources(future, (self,))
        return future

    def reduce(
        self: AsyncioFuture[Iterable[J]], func: Callable[[R, J], R], *args: R
    ) -> pykka.Future[R]:
        future = super().reduce(func, *args)
        _keep_sources(future, (self,))
        return future


class _Marker:
    """A waiter that does nothing: a combinator's await marks with it the source
    asks it waits for (see `AsyncioFuture._hr_await_hook`)."""

    __slots__ = ()

    def __call__(self, future: AsyncioFuture[Any]) -> None:
        pass


def _mark_asks(sources: Iterable[pykka.Future[Any]], marker: _Marker) -> list[AsyncioFuture[Any]]:
    """Add `marker` as a waiter to each unanswered ask among `sources` and their own
    sources (a combinator's), once each; those asks."""
    marked: list[AsyncioFuture[Any]] = []
    seen: set[int] = set()
    stack = list(sources)
    while stack:
        source = stack.pop()
        if not isinstance(source, AsyncioFuture) or id(source) in seen:
            continue
        seen.add(id(source))
        if source._get_hook is not None:
            stack.extend(source._hr_sources or ())
        elif source._hr_state == _PENDING and source._hr_inbox is not None:
            source._hr_add_waiter(marker)
            marked.append(source)
    return marked


def _keep_sources(future: pykka.Future[Any], sources: tuple[pykka.Future[Any], ...]) -> None:
    if isinstance(future, AsyncioFuture):
        future._hr_sources = sources


def _run_waiters(future: AsyncioFuture[Any], waiters: Any) -> None:
    """Run `waiters` (one, or a list of them), taken from `future` once it is set."""
    if waiters.__class__ is list:
        for waiter in waiters:
            _run_waiter(future, waiter)
    else:
        _run_waiter(future, waiters)


def _run_waiter(future: AsyncioFuture[Any], waiter: Any) -> None:
    if waiter.__class__ is _FutureType and waiter.get_loop() is _get_running_loop():
        # An awaiting task of this very loop: the common case.
        if not waiter.done():
            waiter.set_result(None)
        return
    if waiter.__class__ is _LockType:
        waiter.release()
    elif isinstance(waiter, asyncio.Future):
        loop = waiter.get_loop()
        if _get_running_loop() is loop:
            if not waiter.done():
                waiter.set_result(None)
        else:
            try:
                loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:
                logger.debug("The loop awaiting %r is closed", future)
    else:
        try:
            waiter(future)
        except Exception:
            logger.exception("Done-callback %r of %r failed", waiter, future)


def _wake(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(None)
