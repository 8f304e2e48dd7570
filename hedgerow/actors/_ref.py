"""`ChildRef`: a stable reference to a supervised child, across its restarts."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

import pykka
from pykka import messages
from pykka._envelope import Envelope

from hedgerow._exceptions import DeadLetterError, InboxFull
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._inbox import Inbox, InboxSettings, InboxStatistics
from hedgerow.actors._messages import _Internal
from hedgerow.actors._reason import Reason, describe

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from hedgerow._events import EventStream

__all__ = ["ChildRef", "Interceptor", "NameLookup", "TreeHooks", "new_urn"]

_stopped_lock = threading.Lock()
"""Orders making a ref's `actor_stopped` against the child going and coming back."""


def _forked() -> None:
    """In a forked child: a thread of the parent may have held the lock (never released there)."""
    global _stopped_lock  # noqa: PLW0603 - the module's one lock, made afresh
    _stopped_lock = threading.Lock()


A = TypeVar("A", bound="pykka.Actor")


class Interceptor(Protocol):
    """What a test harness plugs into a tree's `TreeHooks` (`hedgerow.testing.Faults` does).

    Every method runs in the thread named; an exception from `before_start`
    fails the start, one from `before_receive` fails the actor (even while it
    answers an ask), and the message counts as the one that crashed it.
    """

    def child_created(self, ref: ChildRef[Any]) -> None:
        """A supervisor made a new child ref (in the supervisor's thread, before any send)."""

    def before_start(self, actor: Any) -> None:
        """An incarnation is about to run ``on_start`` (in its own thread)."""

    def before_receive(self, actor: Any, envelope: Envelope[Any]) -> Awaitable[Any] | None:
        """A user message is about to be handled (in the actor's thread).

        It may block (the actor hangs), raise (the actor fails), or stop the
        actor (``actor._stop()``): the message then goes back to the front of
        the inbox, for the next incarnation or the dead letters. On an
        event-loop actor it must not block: it returns an awaitable instead,
        which the actor awaits before it goes on.
        """

    def after_receive(
        self, actor: Any, envelope: Envelope[Any], error: BaseException | None
    ) -> None:
        """The handler returned, or raised `error` (in the actor's thread)."""


class NameLookup(Protocol):
    """What a ref uses of its tree's names (a `hedgerow.actors._names.Names`,
    which maps paths to refs): the lookup its actor's `actor_lookup` makes."""

    def get(self, path: str) -> ChildRef[Any] | None: ...


class TreeHooks:
    """One per tree, shared by its supervisors and child refs: where a test
    harness plugs in an `Interceptor`.

    Empty in production: a child's message loop then pays one attribute check
    per message. Set `interceptor` to see every child's starts and messages.
    `loop` is the event loop the tree's event-loop actors run on (None:
    hedgerow's own loop thread), as `hedgerow.start_tree` was told.
    """

    __slots__ = ("interceptor", "loop")

    def __init__(self) -> None:
        self.interceptor: Interceptor | None = None
        self.loop: asyncio.AbstractEventLoop | None = None


class ChildRef(pykka.ActorRef[A]):
    """Reach a supervised child with tell, ask and proxy, as a pykka `ActorRef`.

    The reference and its inbox outlive each incarnation: messages sent while
    the child restarts wait, and the next incarnation handles them in order.
    When the child is gone for good (stopped and not to be restarted), every
    message still queued and every later one becomes a dead letter: an event
    on the tree's stream, and a `DeadLetterError` for an asker. `tell` never
    raises, as sending to a dead process in Erlang does not, except to a
    bounded inbox whose overflow policy is ``fail`` (`InboxFull`).

    The inbox may be bounded (the child spec's ``max_inbox``): a message it
    has no room for is a dead letter with an `InboxFull` reason, and
    `inbox_statistics` counts them across restarts.
    """

    actor_inbox: Inbox

    _stopped: StopFlag | None = None
    """`actor_stopped`, once asked for."""

    def __init__(
        self,
        actor_class: type[A],
        path: str,
        dead_letters: Callable[[str, Any, Reason], None] | None = None,
        names: NameLookup | None = None,
        hooks: TreeHooks | None = None,
        *,
        events: EventStream | None = None,
        shutdown: float | str | None = None,
    ) -> None:
        # pykka's ActorRef.__init__ wants a live actor; a ChildRef exists before one.
        self.actor_class = actor_class
        self._urn: str | None = None  # made when first read (`actor_urn`): rarely
        self.actor_inbox = Inbox()
        self.actor_inbox.owner = path
        self.path = path
        self._dead_letters = dead_letters
        """``dead_letters(path, message, reason)``: the supervisor's, shared by its refs."""
        self.names = names
        self.hooks = hooks
        self.events = events
        """The tree's event stream (a worker republishes its process's events there)."""
        self.shutdown = shutdown
        """The child spec's shutdown: seconds, ``brutal_kill`` or ``infinity``
        (a worker process uses it to time its SIGTERM and SIGKILL); None unsupervised."""
        self._gone: Reason | None = None
        self._incarnation: A | None = None

    def __repr__(self) -> str:
        return f"<ChildRef {self.path}>"

    @property  # type: ignore[override]
    def actor_stopped(self) -> StopFlag:
        """Set while the child is gone for good (pykka's ``actor_stopped``); made
        when first asked for (`is_alive` does not need it)."""
        flag = self._stopped
        if flag is None:
            with _stopped_lock:
                flag = self._stopped
                if flag is None:
                    flag = StopFlag()
                    flag._flag = self._gone is not None  # set before any reader can find it
                    self._stopped = flag
        return flag

    @actor_stopped.setter
    def actor_stopped(self, flag: StopFlag) -> None:
        self._stopped = flag

    def _on_dead_letter(self, message: Any, reason: Reason) -> None:
        """A message to this child is a dead letter: the supervisor reports it."""
        if self._dead_letters is not None:
            self._dead_letters(self.path, message, reason)

    @property
    def actor_urn(self) -> str:
        """A URN of its own (not its incarnation's), made when first read: a ref
        is found by its path, and most are never asked for one."""
        urn = self._urn
        if urn is None:
            urn = self._urn = new_urn()
        return urn

    @actor_urn.setter
    def actor_urn(self, urn: str) -> None:
        self._urn = urn

    def __str__(self) -> str:
        return f"{self.actor_class.__name__} ({self.path})"

    def _actor_weakref(self) -> A | None:  # type: ignore[override]
        """The current (or last) incarnation; pykka's ActorProxy introspects it."""
        return self._incarnation

    @property
    def incarnation(self) -> A | None:
        """The actor now handling this child's messages (or the last one): an
        instance of `actor_class` (a `hedgerow.Actor`, of either runtime)."""
        return self._incarnation

    def is_alive(self) -> bool:
        """True unless the child is gone for good; a restarting child is alive."""
        return self._gone is None

    def tell(self, message: Any) -> None:
        self.actor_inbox.put(Envelope(message))  # a gone child's inbox dead-letters it

    @overload
    def ask(
        self, message: Any, *, block: Literal[False], timeout: float | None = None
    ) -> pykka.Future[Any]: ...

    @overload
    def ask(
        self, message: Any, *, block: Literal[True] = True, timeout: float | None = None
    ) -> Any: ...

    @overload
    def ask(
        self, message: Any, *, block: bool = True, timeout: float | None = None
    ) -> Any | pykka.Future[Any]: ...

    def ask(
        self, message: Any, *, block: bool = True, timeout: float | None = None
    ) -> Any | pykka.Future[Any]:
        future = answer_future()
        if future.__class__ is not pykka.ThreadingFuture:
            # An event-loop child's answer: its get() refuses to block that loop's thread.
            future._hr_owner = actor_attr(self._incarnation, "_hr_loop")  # type: ignore[attr-defined]
            future._hr_inbox = self.actor_inbox  # type: ignore[attr-defined] # a cancelled await takes it back
        with contextlib.suppress(InboxFull):  # the future holds it (inbox_overflow="fail")
            self.actor_inbox.put(Envelope(message, reply_to=future))
        if block:
            return future.get(timeout=timeout)
        return future

    def inbox_statistics(self) -> InboxStatistics:
        """The inbox now: messages waiting, its bound, and how many it dropped
        (since this ref was made: across the child's restarts)."""
        return self.actor_inbox.statistics()

    # -- used by the supervisor ----------------------------------------------

    def _bound_inbox(self, settings: InboxSettings | None) -> None:
        if settings is None and self.actor_inbox.max_inbox is None:
            return  # unbounded already (every new ref's inbox): nothing to change
        # Only a bounded inbox overflows: an unbounded one holds no callback.
        self.actor_inbox.on_overflow = self._refuse
        self.actor_inbox.bound(settings)

    def _attach(self, actor: A) -> None:
        self._incarnation = actor
        hooks = self.hooks
        # Before its start: an event-loop actor of a tree with a loop of its own
        # (start_tree's `loop`) runs on that loop, unless told another.
        loop = hooks.loop if hooks is not None else None
        if loop is not None and actor_attr(actor, "_hr_start_loop", False) is None:
            actor._hr_start_loop = loop  # type: ignore[attr-defined]

    def _revive(self) -> None:
        """The child is started again: its inbox queues once more."""
        if self._gone is not None or self._stopped is not None:  # (not a first start)
            with _stopped_lock:
                self._gone = None
                flag = self._stopped
            if flag is not None:
                flag.clear()
        self.actor_inbox.reopen()

    def _mark_gone(self, reason: Reason) -> None:
        """The child will not run again: dead-letter what is queued and what comes."""
        with _stopped_lock:
            self._gone = reason
            flag = self._stopped
        if flag is not None:
            flag.set()
        for envelope in self.actor_inbox.close(reason, self._refuse):
            self._refuse(envelope, reason)

    def _refuse(self, envelope: Envelope[Any], reason: Reason) -> None:
        # Looked up at each call: `hedgerow.testing` wraps `_dead_letter` per ref.
        self._dead_letter(envelope, reason)

    def _dead_letter(self, envelope: Envelope[Any], reason: Reason) -> None:
        message = envelope.message
        if isinstance(message, _Internal):
            return  # the runtime's own (a supervisor's _ChildExited): not a user's letter
        if envelope.reply_to is not None:
            if isinstance(reason, DeadLetterError):
                error = reason
            else:
                error = DeadLetterError(str(self), describe(reason))
            envelope.reply_to.set_exception((type(error), error, None))
        if isinstance(message, messages._ActorStop):
            return
        if self._dead_letters is not None:
            self._dead_letters(self.path, message, reason)


def new_urn() -> str:
    """A random version-4 UUID URN, as pykka's ``uuid.uuid4().urn``, without its
    system call (the generator is seeded from the OS, and again after a fork):
    an actor's ``actor_urn``."""
    digits = f"{_random_bits(122):031x}"
    variant = "89ab"[int(digits[15], 16) & 3]
    return (
        f"urn:uuid:{digits[:8]}-{digits[8:12]}-4{digits[12:15]}-"
        f"{variant}{digits[16:19]}-{digits[19:31]}"
    )


_urn_random = random.Random()  # noqa: S311 - unique names, not secrets
_random_bits = _urn_random.getrandbits
if hasattr(os, "register_at_fork"):  # a forked process must not repeat its parent's urns
    os.register_at_fork(after_in_child=_urn_random.seed)
    os.register_at_fork(after_in_child=_forked)


_asyncio_future: Callable[[], pykka.Future[Any]] | None = None


def answer_future() -> pykka.Future[Any]:
    """The future of an ask's answer: a `hedgerow.AsyncioFuture` (a thread blocks
    in ``get()``, a coroutine awaits it without blocking its loop) once the
    process uses asyncio; pykka's `ThreadingFuture` before, so that a process
    of thread actors (a worker) never imports asyncio for it."""
    global _asyncio_future  # noqa: PLW0603 - loaded once, on first use
    make = _asyncio_future
    if make is None:
        if "asyncio" not in sys.modules:
            return pykka.ThreadingFuture()
        from hedgerow.actors._async_future import AsyncioFuture  # noqa: PLC0415 - imports asyncio

        make = _asyncio_future = AsyncioFuture
    return make()


def narrow(ref: ChildRef[Any], actor_class: type[A] | None) -> ChildRef[A]:
    """`ref`, typed as a ref to `actor_class`; TypeError if its child is another class.

    A ref knows its child's class from the spec (a child started by a
    factory is only known to be an `Actor`): a subclass of that is taken at
    the caller's word, as it cannot be checked before the child runs.
    """
    if actor_class is None:
        return ref
    if not (issubclass(ref.actor_class, actor_class) or issubclass(actor_class, ref.actor_class)):
        msg = f"{ref.path} is a {ref.actor_class.__qualname__}, not a {actor_class.__qualname__}"
        raise TypeError(msg)
    return ref
