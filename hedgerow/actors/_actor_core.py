"""The part of a hedgerow actor that does not depend on its runtime.

`ActorCore` is what the thread runtime (`hedgerow.Actor`) and the event-loop
runtime share: a supervised incarnation's identity (child ref, incarnation,
clock, info), looking up other children, timers, links and monitors, exit
callbacks and reasons, and the protocol a supervisor stops a child by
(`_hr_begin_stop`, `_hr_await_end`, `_hr_abandon`, `_hr_claim_end_report`,
`_hr_account_late`). A runtime subclasses it and pykka's actor, and brings
its own actor loop.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import queue
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import pykka

from hedgerow._clock import default_clock
from hedgerow._events import FailureTrace
from hedgerow._exceptions import ChildNotFound, InboxFull
from hedgerow.actors import _registry
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._links import demonitor, link, monitor, unlink
from hedgerow.actors._messages import _Control, _Internal
from hedgerow.actors._reason import KILLED, NORMAL, SHUTDOWN, Reason, is_normal
from hedgerow.actors._ref import narrow, new_urn
from hedgerow.actors._take_back import take_back_queued

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from pykka._envelope import Envelope

    from hedgerow._clock import Clock, TimerHandle
    from hedgerow.actors._ref import ChildRef

__all__ = ["STARTED", "ActorCore", "IncarnationRef", "fail_if_ended", "take_spawning_inbox"]

A = TypeVar("A", bound=pykka.Actor)

logger = logging.getLogger("hedgerow.actors")

_spawning = threading.local()
"""What `hedgerow.actors._spawn.build` hands the actor it is building: the child
ref's inbox (``inbox``) and the incarnation's context (``context``)."""
_callback_keys = itertools.count(1)
_making = threading.Lock()
"""Guards making an actor's lock or exit flag on first use, and setting the flag."""


def _forked() -> None:
    """In a forked child: a thread of the parent may have held the lock (never released there)."""
    global _making  # noqa: PLW0603 - the module's one lock, made afresh
    _making = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)

KILL_LANDS = 5.0
"""Seconds a supervisor waits (real time) for the kill of an incarnation that
can be killed to land before it reports it killed all the same."""


STARTED = StopFlag()
STARTED.set()
"""The `_hr_started` of every actor nobody waits for (`build` gives the others
theirs; a supervisor puts this one back once the start is over)."""


def take_spawning_inbox() -> Any:
    """The inbox of the supervised child being built in this thread, once; else None.

    A runtime's ``_create_actor_inbox`` returns it, so the incarnation takes
    over its child ref's inbox."""
    inbox = getattr(_spawning, "inbox", None)
    if inbox is not None:
        _spawning.inbox = None
    return inbox


class IncarnationRef(pykka.ActorRef[A]):
    """pykka's `ActorRef` to one incarnation, whose URN is read from the actor when
    first asked for (the actor makes it then), not when the ref is made."""

    _hr_urn: str | None = None

    def __init__(self, actor: A) -> None:  # pykka's, but for the URN
        self._actor_weakref = weakref.ref(actor)
        self.actor_class = actor.__class__
        self.actor_inbox = actor.actor_inbox
        self.actor_stopped = actor.actor_stopped

    @property
    def actor_urn(self) -> str:
        urn = self._hr_urn
        if urn is None:
            actor = self._actor_weakref()
            if actor is not None:
                urn = actor.actor_urn  # (which gives it to this ref too)
            else:  # gone before anybody read it: nobody has seen another
                with _making:
                    urn = self._hr_urn
                    if urn is None:
                        urn = self._hr_urn = new_urn()
        return urn

    @actor_urn.setter
    def actor_urn(self, urn: str) -> None:
        self._hr_urn = urn

    def ask(
        self, message: Any, *, block: bool = True, timeout: float | None = None
    ) -> Any | pykka.Future[Any]:
        """pykka's ask, which is never lost to the actor's end (see `fail_if_ended`)."""
        future = self.actor_class._create_future()
        if not self.is_alive():
            error = pykka.ActorDeadError(f"{self} not found")
            future.set_exception((pykka.ActorDeadError, error, None))
        else:
            self.actor_inbox.put(pykka._envelope.Envelope(message, reply_to=future))
            fail_if_ended(self, future)
        if block:
            return future.get(timeout=timeout)
        return future


def fail_if_ended(ref: pykka.ActorRef[Any], future: pykka.Future[Any]) -> None:
    """Call right after putting an ask answered by `future` into `ref`'s inbox.

    The actor may have stopped between the ask's liveness check and the put,
    and drained its inbox already: nobody would ever answer. So if it has
    stopped, take the message back and fail `future` with `pykka.ActorDeadError`;
    if it cannot be taken back, the draining (or the actor) has it and answers.
    Only a hedgerow thread actor's plain `queue.Queue` inbox, which its end
    drains without waiting (pykka's own end waits on it, so a plain pykka
    actor's ask is left as pykka leaves it); a supervised child's `Inbox`
    outlives the incarnation (its next one, or the dead letters of a gone
    child, take the message)."""
    if not ref.actor_stopped.is_set():
        return
    inbox: Any = ref.actor_inbox  # (pykka types it as its own protocol)
    if (
        not isinstance(ref, IncarnationRef)  # (a plain pykka actor's end may wait on its inbox)
        or inbox.__class__ is not queue.Queue
        or not take_back_queued(inbox, future)
    ):
        return
    error = pykka.ActorDeadError(f"{ref} stopped before handling the message")
    with contextlib.suppress(queue.Full):  # (nobody else can answer it)
        future.set_exception((pykka.ActorDeadError, error, None))


class ActorCore(pykka.Actor):
    """What every hedgerow actor has, whatever runs it (see the module docstring)."""

    actor_trap_exits: ClassVar[bool] = False
    """If True, a linked actor's exit arrives as an `Exit` message instead of
    failing this actor (Erlang's ``trap_exit``). May also be set per instance."""

    # Class-level defaults: an instance holds only what differs (an idle
    # event-loop actor's memory is mostly its attributes).
    _hr_child_ref: ChildRef[Any] | None = None
    _hr_incarnation: int = 0
    _hr_ask_errors_fail: bool = False
    _hr_event_errors_fail: bool = False
    """Erlang's rule for a component's event handlers (its child spec's ``event_errors_fail``)."""
    _hr_clock: Clock | None = None
    _hr_can_kill: ClassVar[bool] = False
    """True if the runtime can end an incarnation at once (cancel its task): a
    stop that runs out kills it (reported ``stopped``, reason ``killed``)
    instead of abandoning it (reported ``abandoned``)."""
    _hr_reason: Reason | None = None
    _hr_traceback: str | FailureTrace | None = None
    """The failure's traceback, formatted only if its event's text is read."""
    _hr_crashed: Envelope[Any] | None = None
    _hr_started: StopFlag = STARTED
    """Set once ``on_start`` is over (what `build` starts; an unsupervised actor's is
    the shared, set `STARTED`)."""
    _hr_start_error: BaseException | None = None
    _hr_on_started: Callable[[Any], None] | None = None
    _hr_exit_reason: Reason = NORMAL
    _hr_has_exited = False
    """Its exit is over (`_hr_finish`); `_hr_exited` is the flag to wait on."""
    _hr_exited_flag: StopFlag | None = None
    _hr_lock_made: threading.Lock | None = None
    _hr_timers: set[TimerHandle] | None = None
    _hr_on_exit: Callable[[Any, Reason], None] | None = None
    """Who spawned it, told of its exit before any other callback (`spawn`'s ``on_exit``)."""
    _hr_exit_callbacks: dict[int, Callable[[Any, Reason], None]] | None = None
    _hr_watch_keys: set[int] | None = None
    """The exit callbacks of links and monitors: an abandonment fires them (killed)."""
    _hr_links: dict[int, int] | None = None
    _hr_reported = False  # True: whoever spawned it reports its failure
    _hr_abandoned = False
    """Killed or abandoned by its supervisor: it runs no on_stop, takes no more
    messages, and accounts for a late handler's outcome itself."""
    _hr_stop_deadline: float | None = None
    """When its supervisor's stop gives up on it (the clock's time); None until asked."""
    _hr_end_reported = False
    _hr_urn: str | None = None

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        # pykka.Actor.__init__'s fields, made cheaper: the URN when first read, an
        # actor_stopped without a Condition until waited on.
        self.actor_inbox = self._create_actor_inbox()
        self.actor_stopped = StopFlag()
        self._actor_ref = IncarnationRef(self)
        context = getattr(_spawning, "context", None)
        if context:
            _spawning.context = None
            self._hr_child_ref = context[0]
            self._hr_incarnation = context[1]
            self._hr_ask_errors_fail = context[2]
            self._hr_clock = context[3]
            self._hr_event_errors_fail = context[4]

    @property
    def actor_urn(self) -> str:
        """pykka's ``actor_urn``: a random version-4 UUID URN, made when first read
        (most incarnations are found by their child's path, never by URN)."""
        urn = self._hr_urn
        if urn is None:
            with _making:
                urn = self._hr_urn
                if urn is None:
                    urn = self._hr_urn = new_urn()
                    ref = actor_attr(self, "_actor_ref")
                    if ref is not None and ref.__class__ is IncarnationRef:
                        ref._hr_urn = urn
        return urn

    @actor_urn.setter
    def actor_urn(self, urn: str) -> None:
        self._hr_urn = urn

    @property
    def _hr_lock(self) -> threading.Lock:
        """Guards its exit, stop and callbacks; made on first use (a start takes
        none: an idle actor does not carry one until it stops or is watched)."""
        lock = self._hr_lock_made
        if lock is None:
            with _making:
                lock = self._hr_lock_made
                if lock is None:
                    lock = self._hr_lock_made = threading.Lock()
        return lock

    @property
    def _hr_exited(self) -> StopFlag:
        """Set once its exit is over, to wait on; made when first asked for (what
        does not wait reads `_hr_has_exited`)."""
        flag = self._hr_exited_flag
        if flag is None:
            with _making:
                flag = self._hr_exited_flag
                if flag is None:
                    flag = StopFlag()
                    flag._flag = self._hr_has_exited  # set before any reader can find it
                    self._hr_exited_flag = flag
        return flag

    # -- public API -----------------------------------------------------------

    @property
    def actor_child_ref(self) -> ChildRef[Any] | None:
        """The stable reference of the supervised child this actor incarnates.

        Pass it around instead of `actor_ref`: it survives restarts. None when
        the actor is not supervised.
        """
        return self._hr_child_ref

    @property
    def actor_incarnation(self) -> int:
        """1 for a child's first start, 2 after its first restart, ...; 0 unsupervised."""
        return self._hr_incarnation

    @property
    def actor_clock(self) -> Clock:
        """The clock of this actor's tree (a virtual one under test)."""
        if self._hr_clock is None:
            self._hr_clock = default_clock()
        return self._hr_clock

    def actor_info(self) -> dict[str, Any] | None:
        """Facts about this incarnation for its "started" event and `Tree.describe`
        (a worker's pid and port); the default has none.

        Called once ``on_start`` has returned, from any thread: return plain
        data already known, without waiting for the actor.
        """
        return None

    @overload
    def actor_lookup(self, name: str) -> ChildRef[Any]: ...

    @overload
    def actor_lookup(self, name: str, actor_class: type[A]) -> ChildRef[A]: ...

    def actor_lookup(self, name: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of a sibling (by id) or of any child of this tree (by path).

        A name without ``/`` is a sibling's id; ``root/pipeline/parser`` is a
        path. A child in the tree's spec is found even before it has started
        (messages to it wait for its start), so children may look each other
        up in ``on_start`` in any order. Raises `ChildNotFound` at once if no
        supervisor of this tree holds the name. Given `actor_class`, the ref
        is typed as that class's (TypeError if the child is another class).
        """
        child_ref = self._hr_child_ref
        if child_ref is None or child_ref.names is None:
            msg = f"{name} (looked up by {self}, which is not in a supervision tree)"
            raise ChildNotFound(msg)
        path = name if "/" in name else f"{child_ref.path.rpartition('/')[0]}/{name}"
        found = child_ref.names.get(path)
        if found is None:
            raise ChildNotFound(path)
        return narrow(found, actor_class)

    def actor_send_after(self, delay: float, message: Any) -> TimerHandle:
        """Tell this actor `message` after `delay` seconds of its clock.

        The timer belongs to this incarnation (as an Erlang ``send_after`` to a
        pid): it is cancelled when the actor exits, so a restarted child does
        not get its predecessor's ticks. `cancel()` the handle to stop it.
        """

        def deliver() -> None:
            with self._hr_lock:
                if self._hr_timers is not None:
                    self._hr_timers.discard(handle)
                if self._hr_has_exited or self.actor_stopped.is_set():
                    return
            inbox = self.actor_inbox
            if not isinstance(inbox, Inbox):
                self.actor_ref.tell(message)
                return
            # The clock's thread never waits for room: a full inbox drops the tick.
            with contextlib.suppress(InboxFull):
                inbox.put(pykka._envelope.Envelope(message), block=False)

        with self._hr_lock:
            handle = self.actor_clock.call_later(delay, deliver)
            if self._hr_timers is None:
                self._hr_timers = set()
            self._hr_timers.add(handle)
        return handle

    def actor_monitor(self, target: pykka.ActorRef[Any]) -> int:
        """Get a `Down` message when `target`'s current incarnation exits.

        The monitor belongs to this incarnation (as to an Erlang process): a
        restarted child does not get its predecessor's `Down` messages.

        Returns a token for `actor_demonitor`. Monitoring an actor that has
        already exited delivers `Down` with reason ``noproc`` at once, as Erlang.
        """
        return monitor(self.actor_ref, target)

    def actor_demonitor(self, token: int) -> None:
        """Stop a monitor; a `Down` already delivered stays in the inbox."""
        demonitor(token)

    def actor_link(self, target: pykka.ActorRef[Any]) -> None:
        """Link both ways: if either exits abnormally, the other fails too,
        unless it traps exits (then it gets an `Exit` message)."""
        link(self.actor_ref, target)

    def actor_unlink(self, target: pykka.ActorRef[Any]) -> None:
        unlink(self.actor_ref, target)

    # -- exit notification (used by supervisors, monitors and links) --------

    def _hr_add_exit_callback(
        self, callback: Callable[[Any, Reason], None], *, watch: bool = False
    ) -> int | None:
        """Register `callback(actor, reason)`; None if the actor has already exited.

        A `watch` (a link's or a monitor's) fires with ``killed`` as soon as the
        incarnation is abandoned, as Erlang's links see a killed process at
        once, not when its thread ends (after its child may have restarted);
        None if it has been abandoned already.
        """
        with self._hr_lock:
            if self._hr_has_exited or (watch and self._hr_abandoned):
                return None
            key = next(_callback_keys)
            if self._hr_exit_callbacks is None:
                self._hr_exit_callbacks = {}
            self._hr_exit_callbacks[key] = callback
            if watch:
                if self._hr_watch_keys is None:
                    self._hr_watch_keys = set()
                self._hr_watch_keys.add(key)
            return key

    def _hr_remove_exit_callback(self, key: int) -> None:
        with self._hr_lock:
            if self._hr_exit_callbacks is not None:
                self._hr_exit_callbacks.pop(key, None)
            if self._hr_watch_keys is not None:
                self._hr_watch_keys.discard(key)

    def _hr_set_reason(self, reason: Reason, tb: TracebackType | None = None) -> None:
        """Keep the first reason, except that a failure replaces a normal one
        (an ``on_stop`` that raises during a shutdown is a failure)."""
        current = self._hr_reason
        if current is None or (is_normal(current) and not is_normal(reason)):
            self._hr_reason = reason
            if tb is not None and isinstance(reason, BaseException):
                self._hr_traceback = FailureTrace(reason, tb)

    # -- being stopped by a supervisor (from the supervisor's thread) ----------

    def _hr_begin_stop(self, timeout: float | None, clock: Clock) -> None:
        """Ask this incarnation to stop within `timeout` seconds of `clock` (None:
        for ever; 0: kill it now, with no graceful stop). Only the first call counts."""
        with self._hr_lock:
            if self._hr_stop_deadline is not None:
                return
            self._hr_stop_deadline = clock.now() + timeout if timeout is not None else math.inf
            if self._hr_has_exited:
                return
        if timeout == 0.0:
            # The kill is decided before anything reaches the inbox: the actor's
            # loop never hands it the stop below, so no graceful stop can run.
            self._hr_abandon()
        # A stop in front of the inbox also interrupts a handler waiting on
        # the inbox itself (a component's call in progress).
        control = _Control(_Control.STOP, self._hr_incarnation, SHUTDOWN)
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.put_front(pykka._envelope.Envelope(control))
        else:
            inbox.put(pykka._envelope.Envelope(control))

    def _hr_await_end(self, clock: Clock) -> Reason:
        """Wait until this incarnation exits or its stop deadline passes (then
        abandon it, or kill it if its runtime can); its exit reason, or
        ``killed``. Any thread may wait, and all get the same answer."""
        deadline = self._hr_stop_deadline
        if deadline is None:
            msg = f"{self}: _hr_await_end before _hr_begin_stop"
            raise RuntimeError(msg)
        if not self._hr_abandoned and not self._hr_has_exited:
            waiter = threading.Event()  # the clock may set it at the deadline: ours alone
            key = self._hr_add_exit_callback(lambda _actor, _reason: waiter.set())
            if key is not None:
                remaining = None if math.isinf(deadline) else max(deadline - clock.now(), 0.0)
                if remaining != 0.0:
                    clock.wait(waiter, remaining)
                self._hr_remove_exit_callback(key)
        if self._hr_abandon():
            if self._hr_can_kill:
                # Its task is cancelled on its loop: once that has landed, the
                # message it held is a dead letter before its end is reported.
                # (Bounded: a handler that holds the loop delays the cancel.)
                self._hr_exited.wait(KILL_LANDS)
            return KILLED
        return self._hr_exit_reason

    def _hr_abandon(self) -> bool:
        """Give up on this incarnation unless it has exited: it takes no more
        messages, runs no on_stop, and leaves pykka's registry. True if it is
        (now or already) abandoned, False if it had exited first."""
        with self._hr_lock:
            if self._hr_abandoned:
                return True
            if self._hr_has_exited:
                return False
            self._hr_abandoned = True
            timers = list(self._hr_timers or ())
            self._hr_timers = None
            keys = self._hr_watch_keys or ()
            callbacks = self._hr_exit_callbacks
            watches = [callbacks.pop(key) for key in keys] if callbacks is not None else []
            self._hr_watch_keys = None
        for timer in timers:
            timer.cancel()
        for watch in watches:
            try:
                watch(self, KILLED)
            except Exception:
                logger.exception("Exit callback of %s failed", self)
        _registry.unregister(self.actor_ref)
        self.actor_stopped.set()
        self._hr_after_abandon()
        self._hr_started.set()  # a supervisor waiting for its on_start goes on
        return True

    def _hr_after_abandon(self) -> None:
        """The runtime's part of `_hr_abandon` (any thread): make the incarnation
        leave its loop. A thread's is woken if idle (a busy one finishes its
        handler, whose outcome `_hr_account_late` reports); an event-loop
        actor's task is cancelled."""
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.wake_all()  # an idle incarnation leaves its loop at once

    def _hr_claim_end_report(self) -> bool:
        """True once: whoever gets it reports this incarnation's end."""
        with self._hr_lock:
            if self._hr_end_reported:
                return False
            self._hr_end_reported = True
            return True

    def _hr_account_late(self, reason: Reason) -> None:
        """An abandoned incarnation's thread ends: the message its late handler
        failed on is a dead letter, reported as the supervisor reports one."""
        crashed = self._hr_crashed
        child_ref = self._hr_child_ref
        if crashed is None or child_ref is None or isinstance(crashed.message, _Internal):
            return
        child_ref._on_dead_letter(crashed.message, reason)

    def _hr_finish(self) -> None:
        reason: Reason = self._hr_reason if self._hr_reason is not None else NORMAL
        with self._hr_lock:
            self._hr_exit_reason = reason
            with _making:  # (as `_hr_exited` reads it, making its flag)
                self._hr_has_exited = True
                flag = self._hr_exited_flag
            late = self._hr_abandoned
            callbacks = list((self._hr_exit_callbacks or {}).values())
            self._hr_exit_callbacks = None
            timers = list(self._hr_timers or ())
            self._hr_timers = None
            on_exit = self._hr_on_exit
            self._hr_on_exit = None
        if flag is not None:
            flag.set()
        if on_exit is not None:
            callbacks.insert(0, on_exit)  # told first, as it was watching first
        for timer in timers:
            timer.cancel()
        if late:
            try:
                self._hr_account_late(reason)
            except Exception:
                logger.exception("Reporting the late end of %s failed", self)
        for callback in callbacks:
            try:
                callback(self, reason)
            except Exception:
                logger.exception("Exit callback of %s failed", self)
