"""`hedgerow.Actor`: a pykka ThreadingActor that reports how it exited.

Unsupervised, it behaves exactly as pykka's ThreadingActor (pykka's own test
suite runs against it). Supervised, three things change, all so that a child
can be restarted without losing messages:

- its inbox belongs to its `ChildRef` and outlives the incarnation, so a crash
  does not fail the messages still queued (pykka's teardown would);
- the message whose handling crashed it is reported as a dead letter;
- failures are reported on the tree's event stream instead of pykka's log line;
- ``SystemExit``, ``KeyboardInterrupt`` and other `BaseException`s fail the
  child alone (pykka stops every actor of the process on them).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

import pykka
from pykka import ActorRegistry

from hedgerow._clock import default_clock
from hedgerow._exceptions import (
    ChildNotFound,
    DeadLetterError,
    InboxFull,
    LinkedExit,
    Shutdown,
)
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import Down, Exit, _Control, _Internal
from hedgerow.actors._reason import (
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    Reason,
    describe,
    is_normal,
)
from hedgerow.actors._ref import narrow

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from pykka._actor import ActorInbox
    from pykka._envelope import Envelope

    from hedgerow._clock import Clock, TimerHandle
    from hedgerow.actors._ref import ChildRef, Interceptor

__all__ = ["Actor"]

A = TypeVar("A", bound=pykka.Actor)

logger = logging.getLogger("hedgerow.actors")

ACTOR_THREAD_PREFIX = "hedgerow "
"""Threads of supervised children are named ``hedgerow root/a#2`` (path, incarnation)."""

_spawning = threading.local()
_callback_keys = itertools.count(1)


class Actor(pykka.ThreadingActor):
    """A pykka ThreadingActor that can be supervised, linked and monitored.

    Hooks run as in pykka: `on_start`, `on_receive`, `on_stop` and `on_failure`
    run in the actor's own thread, one at a time. An exception from `on_start`,
    from a told message, or from `on_stop` fails the actor; its supervisor is
    told, with the exception as the exit reason. An exception while answering an
    ask goes back to the asker and the actor goes on, as in pykka, unless the
    child spec sets ``ask_errors_fail``. Raise `hedgerow.Shutdown` to stop with
    a reason that counts as normal.
    """

    actor_trap_exits: ClassVar[bool] = False
    """If True, a linked actor's exit arrives as an `Exit` message instead of
    failing this actor (Erlang's ``trap_exit``). May also be set per instance."""

    _hr_child_ref: ChildRef[Any] | None
    _hr_incarnation: int
    _hr_ask_errors_fail: bool
    _hr_event_errors_fail: bool
    """Erlang's rule for a component's event handlers (its child spec's ``event_errors_fail``)."""
    _hr_thread_id: int = 0
    """The thread running this actor (the virtual clock's autojump looks for idle ones)."""

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = getattr(_spawning, "inbox", None)
        if inbox is not None:
            _spawning.inbox = None
            return inbox  # type: ignore[no-any-return]
        return pykka.ThreadingActor._create_actor_inbox()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        context = getattr(_spawning, "context", None)
        _spawning.context = None
        self._hr_child_ref = context[0] if context else None
        self._hr_incarnation = context[1] if context else 0
        self._hr_ask_errors_fail = context[2] if context else False
        self._hr_clock: Clock | None = context[3] if context else None
        self._hr_event_errors_fail = context[4] if context else False
        self._hr_timers: set[TimerHandle] = set()
        self._hr_reason: Reason | None = None
        self._hr_traceback: str | None = None
        self._hr_crashed: Envelope[Any] | None = None
        self._hr_started = threading.Event()
        self._hr_start_error: BaseException | None = None
        self._hr_on_started: Callable[[], None] | None = None
        self._hr_exited = threading.Event()
        self._hr_exit_reason: Reason = NORMAL
        self._hr_lock = threading.Lock()
        self._hr_exit_callbacks: dict[int, Callable[[Actor, Reason], None]] = {}
        self._hr_watch_keys: set[int] = set()
        """The exit callbacks of links and monitors: an abandonment fires them (killed)."""
        self._hr_links: dict[int, int] = {}
        self._hr_reported = False  # True: whoever spawned it reports its failure
        self._hr_abandoned = False
        """Killed or abandoned by its supervisor: it runs no on_stop, takes no more
        messages, and accounts for a late handler's outcome itself."""
        self._hr_stop_deadline: float | None = None
        """When its supervisor's stop gives up on it (the clock's time); None until asked."""
        self._hr_end_reported = False

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
                self._hr_timers.discard(handle)
                if self._hr_exited.is_set() or self.actor_stopped.is_set():
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
        self, callback: Callable[[Actor, Reason], None], *, watch: bool = False
    ) -> int | None:
        """Register `callback(actor, reason)`; None if the actor has already exited.

        A `watch` (a link's or a monitor's) fires with ``killed`` as soon as the
        incarnation is abandoned, as Erlang's links see a killed process at
        once, not when its thread ends (after its child may have restarted);
        None if it has been abandoned already.
        """
        with self._hr_lock:
            if self._hr_exited.is_set() or (watch and self._hr_abandoned):
                return None
            key = next(_callback_keys)
            self._hr_exit_callbacks[key] = callback
            if watch:
                self._hr_watch_keys.add(key)
            return key

    def _hr_remove_exit_callback(self, key: int) -> None:
        with self._hr_lock:
            self._hr_exit_callbacks.pop(key, None)
            self._hr_watch_keys.discard(key)

    def _hr_set_reason(self, reason: Reason, tb: TracebackType | None = None) -> None:
        """Keep the first reason, except that a failure replaces a normal one
        (an ``on_stop`` that raises during a shutdown is a failure)."""
        current = self._hr_reason
        if current is None or (is_normal(current) and not is_normal(reason)):
            self._hr_reason = reason
            if tb is not None and isinstance(reason, BaseException):
                self._hr_traceback = "".join(traceback.format_exception(type(reason), reason, tb))

    # -- pykka's actor loop, with exit reasons --------------------------------

    def _actor_loop(self) -> None:
        self._hr_thread_id = threading.get_ident()
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.reader = self._hr_thread_id  # it never waits for room in its own inbox
        try:
            super()._actor_loop()
        finally:
            self._hr_finish()

    def _actor_loop_setup(self) -> None:
        try:
            try:
                hooks = self._hr_child_ref.hooks if self._hr_child_ref is not None else None
                if hooks is not None and hooks.interceptor is not None:
                    hooks.interceptor.before_start(self)
                super()._actor_loop_setup()
            except BaseException as exc:  # noqa: BLE001 - pykka would let these kill the thread
                # ... and leave the actor registered: fail it like any start error.
                self._handle_failure(type(exc), exc, exc.__traceback__)
            reason = self._hr_reason
            if self.actor_stopped.is_set() and reason is not None and not is_normal(reason):
                self._hr_start_error = reason  # type: ignore[assignment]
            elif self._hr_on_started is not None and not self._hr_abandoned:
                # Before the first message, so "started" always precedes its effects.
                try:
                    self._hr_on_started()
                except Exception:
                    logger.exception("Start callback of %s failed", self)
        finally:
            self._hr_started.set()

    def _actor_loop_running(self) -> None:  # noqa: C901 - the hot loop stays in one frame
        inbox = self.actor_inbox
        stopped = self.actor_stopped
        hooks = self._hr_child_ref.hooks if self._hr_child_ref is not None else None
        take = inbox.take if isinstance(inbox, Inbox) else None
        while not stopped.is_set():
            if take is not None:
                envelope = take(stopped)  # None: stopped, or abandoned while idle
                if envelope is None:
                    break
            else:
                envelope = inbox.get()
            if stopped.is_set():
                self._hr_leave(envelope)
                break
            message = envelope.message
            try:
                if message.__class__ is _Control:
                    self._hr_handle_control(message)
                    continue
                if hooks is not None and hooks.interceptor is not None:
                    self._hr_intercept(hooks.interceptor, envelope)
                    continue
                response = self._handle_receive(message)
                if envelope.reply_to is not None:
                    envelope.reply_to.set(response)
            except Shutdown as exc:
                self._hr_set_reason(exc)
                if envelope.reply_to is not None:
                    envelope.reply_to.set_exception()
                self._stop()
            except Exception:  # noqa: BLE001 - any handler error is the actor's failure
                self._hr_on_error(envelope, sys.exc_info())
            except BaseException:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, ...
                self._hr_on_base_exception(envelope, sys.exc_info())

    def _hr_on_base_exception(self, envelope: Envelope[Any], exc_info: Any) -> None:
        """pykka stops every actor of the process on SystemExit and its kin; an
        unsupervised actor keeps that rule. A supervised one fails alone: the
        message is a dead letter (an asker gets `DeadLetterError` naming the
        exception) and its supervisor applies its policy."""
        exception_value = exc_info[1]
        if self._hr_child_ref is None and not self._hr_reported:
            pykka_logger.debug("%r in %s. Stopping all actors.", exception_value, self)
            self._hr_set_reason(exception_value, exc_info[2])
            self._stop()
            ActorRegistry.stop_all()
            return
        if envelope.reply_to is not None:
            error = DeadLetterError(str(self), describe(exception_value))
            envelope.reply_to.set_exception((DeadLetterError, error, None))
        self._hr_fail(exc_info, envelope)

    def _hr_leave(self, envelope: Envelope[Any]) -> None:
        """Stopped (or abandoned by the supervisor) while holding `envelope`:
        leave it to the next incarnation, in front, where it was; if the child
        is gone for good, its closed inbox dead-letters it."""
        self.actor_inbox.put_front(envelope)  # type: ignore[attr-defined]

    def _hr_intercept(self, interceptor: Interceptor, envelope: Envelope[Any]) -> None:
        """Handle (and answer) one message with the tree's interceptor around it:
        the test harness's faults. Errors propagate as from `_handle_receive`."""
        message = envelope.message
        if isinstance(message, _Internal):
            response = self._handle_receive(message)
            if envelope.reply_to is not None:
                envelope.reply_to.set(response)
            return
        try:
            interceptor.before_receive(self, envelope)
        except Shutdown:
            raise
        except Exception:  # noqa: BLE001 - an injected failure fails the actor, ask or tell
            exc_info = sys.exc_info()
            if envelope.reply_to is not None:
                envelope.reply_to.set_exception(exc_info)
            self._hr_fail(exc_info, envelope)
            return
        if self.actor_stopped.is_set():
            self._hr_leave(envelope)
            return
        try:
            response = self._handle_receive(message)
        except BaseException as exc:
            interceptor.after_receive(self, envelope, exc)
            raise
        interceptor.after_receive(self, envelope, None)
        if envelope.reply_to is not None:
            envelope.reply_to.set(response)

    def _hr_on_error(self, envelope: Envelope[Any], exc_info: Any) -> None:
        """An ask's error goes back to the asker (and fails the actor only under
        Erlang's rule); a tell's error fails the actor, as in pykka."""
        if envelope.reply_to is None:
            self._hr_fail(exc_info, envelope)
            return
        pykka_logger.info("Exception returned from %s to caller:", self, exc_info=exc_info)
        envelope.reply_to.set_exception(exc_info)
        if self._hr_ask_errors_fail:
            self._hr_fail(exc_info, None)

    def _hr_fail(self, exc_info: Any, envelope: Envelope[Any] | None) -> None:
        if envelope is not None and not isinstance(envelope.message, _Internal):
            self._hr_crashed = envelope
        self._handle_failure(*exc_info)
        try:
            self.on_failure(*exc_info)
        except Exception:  # noqa: BLE001 - pykka's rule: a failing on_failure is logged
            self._handle_failure(*sys.exc_info())

    def _hr_handle_control(self, control: _Control) -> None:
        if control.token != self._hr_incarnation:
            return  # meant for an earlier incarnation of this child
        if control.kind == _Control.STOP:
            self._hr_set_reason(control.reason or SHUTDOWN)
            self._stop()
            return
        if control.kind == _Control.CALL:
            control.reason(self)  # run in this thread; what it raises fails the actor
            return
        # An exit signal from a linked actor.
        if self.actor_trap_exits:
            self.on_receive(Exit(control.sender, control.reason))
        elif not is_normal(control.reason):
            raise LinkedExit(str(control.sender), control.reason)

    def _stop(self) -> None:
        if self._hr_abandoned:
            # Killed or abandoned: the supervisor's decision won, no graceful stop.
            ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()
            return
        super()._stop()

    # -- being stopped by a supervisor (from the supervisor's thread) ----------

    def _hr_begin_stop(self, timeout: float | None, clock: Clock) -> None:
        """Ask this incarnation to stop within `timeout` seconds of `clock` (None:
        for ever; 0: kill it now, with no graceful stop). Only the first call counts."""
        with self._hr_lock:
            if self._hr_stop_deadline is not None:
                return
            self._hr_stop_deadline = clock.now() + timeout if timeout is not None else math.inf
            if self._hr_exited.is_set():
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
        abandon it); its exit reason, or ``killed``. Any thread may wait, and
        all get the same answer."""
        deadline = self._hr_stop_deadline
        if deadline is None:
            msg = f"{self}: _hr_await_end before _hr_begin_stop"
            raise RuntimeError(msg)
        if not self._hr_abandoned and not self._hr_exited.is_set():
            waiter = threading.Event()  # the clock may set it at the deadline: ours alone
            key = self._hr_add_exit_callback(lambda _actor, _reason: waiter.set())
            if key is not None:
                remaining = None if math.isinf(deadline) else max(deadline - clock.now(), 0.0)
                if remaining != 0.0:
                    clock.wait(waiter, remaining)
                self._hr_remove_exit_callback(key)
        if self._hr_abandon():
            return KILLED
        return self._hr_exit_reason

    def _hr_abandon(self) -> bool:
        """Give up on this incarnation unless it has exited: it takes no more
        messages, runs no on_stop, and leaves pykka's registry. True if it is
        (now or already) abandoned, False if it had exited first."""
        with self._hr_lock:
            if self._hr_abandoned:
                return True
            if self._hr_exited.is_set():
                return False
            self._hr_abandoned = True
            timers = list(self._hr_timers)
            self._hr_timers.clear()
            watches = [self._hr_exit_callbacks.pop(key) for key in self._hr_watch_keys]
            self._hr_watch_keys.clear()
        for timer in timers:
            timer.cancel()
        for watch in watches:
            try:
                watch(self, KILLED)
            except Exception:
                logger.exception("Exit callback of %s failed", self)
        ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        inbox = self.actor_inbox
        if isinstance(inbox, Inbox):
            inbox.wake_all()  # an idle incarnation leaves its loop at once
        self._hr_started.set()  # a supervisor waiting for its on_start goes on
        return True

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
        on_dead_letter = child_ref._on_dead_letter
        if on_dead_letter is not None:
            on_dead_letter(crashed.message, reason)

    def _start_actor_loop(self) -> None:
        child_ref = self._hr_child_ref
        if child_ref is None:
            super()._start_actor_loop()
            return
        # A daemon thread: an abandoned child must never keep the process up
        # (its supervisor's thread, the root's, does while the tree runs).
        thread = threading.Thread(
            target=self._actor_loop,
            name=f"{ACTOR_THREAD_PREFIX}{child_ref.path}#{self._hr_incarnation}",
            daemon=True,
        )
        thread.start()

    def _actor_loop_teardown(self) -> None:
        if self._hr_child_ref is None:
            super()._actor_loop_teardown()

    def _handle_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exception_value is not None:
            self._hr_set_reason(exception_value, traceback)
        if self._hr_child_ref is None and not self._hr_reported:
            super()._handle_failure(exception_type, exception_value, traceback)
        else:
            # The supervisor (or the tree, for its root) reports it as an event.
            ActorRegistry.unregister(self.actor_ref)
            self.actor_stopped.set()

    def _hr_finish(self) -> None:
        reason: Reason = self._hr_reason if self._hr_reason is not None else NORMAL
        with self._hr_lock:
            self._hr_exit_reason = reason
            self._hr_exited.set()
            late = self._hr_abandoned
            callbacks = list(self._hr_exit_callbacks.values())
            self._hr_exit_callbacks.clear()
            timers = list(self._hr_timers)
            self._hr_timers.clear()
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


pykka_logger = logging.getLogger("pykka")
"""pykka's own log lines keep pykka's logger, so pykka users see what they expect."""


def spawn(
    factory: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    child_ref: ChildRef[Any] | None = None,
    incarnation: int = 0,
    ask_errors_fail: bool = False,
    event_errors_fail: bool = False,
    clock: Clock | None = None,
    on_exit: Callable[[Actor, Reason], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> Actor:
    """Build an actor with `factory` and start its thread, as `Actor.start` does.

    For a supervised child, the new incarnation takes over `child_ref`'s inbox.
    `on_exit` is registered before the thread starts, so no exit is missed;
    `on_started` runs in the actor's thread after a successful ``on_start``.
    Raises what the factory raises, or TypeError if it built no hedgerow Actor.
    """
    actor = build(
        factory,
        args,
        kwargs,
        child_ref=child_ref,
        incarnation=incarnation,
        ask_errors_fail=ask_errors_fail,
        event_errors_fail=event_errors_fail,
        clock=clock,
        on_exit=on_exit,
        on_started=on_started,
    )
    launch(actor)
    return actor


def build(
    factory: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    child_ref: ChildRef[Any] | None = None,
    incarnation: int = 0,
    ask_errors_fail: bool = False,
    event_errors_fail: bool = False,
    clock: Clock | None = None,
    on_exit: Callable[[Actor, Reason], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> Actor:
    """`spawn`'s first half: the actor, built and not yet started (see `launch`)."""
    if child_ref is not None:
        _spawning.inbox = child_ref.actor_inbox
        _spawning.context = (child_ref, incarnation, ask_errors_fail, clock, event_errors_fail)
    try:
        actor = factory(*args, **(kwargs or {}))
    finally:
        _spawning.inbox = None
        _spawning.context = None
    if not isinstance(actor, Actor):
        msg = f"{factory!r} returned {actor!r}, which is not a hedgerow.Actor"
        raise TypeError(msg)
    if child_ref is not None and actor.actor_inbox is not child_ref.actor_inbox:
        msg = f"{factory!r} did not call hedgerow.Actor.__init__ on the actor it built"
        raise TypeError(msg)
    if on_exit is not None:
        actor._hr_add_exit_callback(on_exit)
        actor._hr_reported = True
    actor._hr_on_started = on_started
    return actor


def launch(actor: Actor) -> None:
    """`spawn`'s second half: register the actor, make it its ref's incarnation, start it."""
    ActorRegistry.register(actor.actor_ref)
    child_ref = actor._hr_child_ref
    if child_ref is not None:
        child_ref._attach(actor)
    actor._start_actor_loop()


# -- links and monitors ------------------------------------------------------

_monitors: dict[int, tuple[Actor, int]] = {}
_monitors_lock = threading.Lock()


def _incarnation_of(ref: pykka.ActorRef[Any]) -> Actor | None:
    actor = ref._actor_weakref()
    return actor if isinstance(actor, Actor) else None


def monitor(watcher: pykka.ActorRef[Any], target: pykka.ActorRef[Any]) -> int:
    """Tell `watcher` a `Down(target, reason, token)` when `target` exits; returns the token."""
    token = next(_callback_keys)
    actor = _incarnation_of(target)

    def on_exit(_actor: Actor, reason: Reason) -> None:
        with _monitors_lock:
            if _monitors.pop(token, None) is None:
                return
        _deliver(watcher, Down(target, reason, token))

    with _monitors_lock:
        key = actor._hr_add_exit_callback(on_exit, watch=True) if actor is not None else None
        if key is not None:
            _monitors[token] = (actor, key)  # type: ignore[assignment]
    if key is None:
        _deliver(watcher, Down(target, NOPROC, token))
    return token


def demonitor(token: int) -> None:
    """Cancel a monitor; nothing more is delivered for it."""
    with _monitors_lock:
        entry = _monitors.pop(token, None)
    if entry is not None:
        actor, key = entry
        actor._hr_remove_exit_callback(key)


def _deliver(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("Not delivered to %s, which has exited: %r", ref, message)


def _signal(actor: Actor, sender: pykka.ActorRef[Any], reason: Reason) -> None:
    """Send an exit signal to one incarnation, ahead of its queued messages."""
    if actor._hr_exited.is_set():
        return
    control = _Control(_Control.EXIT_SIGNAL, actor._hr_incarnation, reason, sender)
    envelope = pykka._envelope.Envelope(control)
    inbox = actor.actor_inbox
    if isinstance(inbox, Inbox):
        inbox.put_front(envelope)
    else:
        inbox.put(envelope)


def link(a: pykka.ActorRef[Any], b: pykka.ActorRef[Any]) -> None:
    """Link the current incarnations of `a` and `b` (at most one link per pair)."""
    actor_a, actor_b = _incarnation_of(a), _incarnation_of(b)
    if actor_a is None:
        msg = f"{a} is not a hedgerow.Actor"
        raise TypeError(msg)
    if actor_b is None or actor_b._hr_exited.is_set() or actor_b._hr_abandoned:
        _signal(actor_a, b, NOPROC)
        return
    if id(actor_b) in actor_a._hr_links:
        return
    key_a = actor_a._hr_add_exit_callback(lambda _x, r: _signal(actor_b, a, r), watch=True)
    key_b = actor_b._hr_add_exit_callback(lambda _x, r: _signal(actor_a, b, r), watch=True)
    if key_a is None or key_b is None:
        for actor, key in ((actor_a, key_a), (actor_b, key_b)):
            if key is not None:
                actor._hr_remove_exit_callback(key)
        if key_b is None:
            _signal(actor_a, b, NOPROC)
        return
    actor_a._hr_links[id(actor_b)] = key_a
    actor_b._hr_links[id(actor_a)] = key_b


def unlink(a: pykka.ActorRef[Any], b: pykka.ActorRef[Any]) -> None:
    """Remove the link between `a` and `b`, if any."""
    actor_a, actor_b = _incarnation_of(a), _incarnation_of(b)
    if actor_a is None or actor_b is None:
        return
    for actor, other in ((actor_a, actor_b), (actor_b, actor_a)):
        key = actor._hr_links.pop(id(other), None)
        if key is not None:
            actor._hr_remove_exit_callback(key)
