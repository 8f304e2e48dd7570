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

What does not depend on the thread (identity, lookup, timers, links and
monitors, exit callbacks, the supervisor's stop protocol) is in
`hedgerow.actors._actor_core`; this module keeps the thread's actor loop.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
from typing import TYPE_CHECKING, Any

import pykka
from pykka import ActorRegistry

from hedgerow._exceptions import DeadLetterError, LinkedExit, Shutdown
from hedgerow.actors import _registry
from hedgerow.actors._actor_core import ActorCore, take_spawning_inbox
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import Exit, _Control, _Internal
from hedgerow.actors._reason import SHUTDOWN, describe, is_normal
from hedgerow.actors._ref import answer_future
from hedgerow.actors._spawn import build, launch, spawn

if TYPE_CHECKING:
    from types import TracebackType

    from pykka._actor import ActorInbox
    from pykka._envelope import Envelope

    from hedgerow.actors._ref import Interceptor

__all__ = ["ACTOR_THREAD_PREFIX", "Actor", "build", "launch", "spawn"]
# build, launch and spawn live in hedgerow.actors._spawn; imported from here too.

logger = logging.getLogger("hedgerow.actors")

ACTOR_THREAD_PREFIX = "hedgerow "
"""Threads of supervised children are named ``hedgerow root/a#2`` (path, incarnation)."""


class Actor(ActorCore, pykka.ThreadingActor):
    """A pykka ThreadingActor that can be supervised, linked and monitored.

    Hooks run as in pykka: `on_start`, `on_receive`, `on_stop` and `on_failure`
    run in the actor's own thread, one at a time. An exception from `on_start`,
    from a told message, or from `on_stop` fails the actor; its supervisor is
    told, with the exception as the exit reason. An exception while answering an
    ask goes back to the asker and the actor goes on, as in pykka, unless the
    child spec sets ``ask_errors_fail``. Raise `hedgerow.Shutdown` to stop with
    a reason that counts as normal.
    """

    _hr_thread_id: int = 0
    """The thread running this actor (the virtual clock's autojump looks for idle ones)."""

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = take_spawning_inbox()
        if inbox is not None:
            return inbox  # type: ignore[no-any-return]
        return pykka.ThreadingActor._create_actor_inbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return answer_future()  # once asyncio is in use, awaited without blocking a loop

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
                    self._hr_on_started(self)
                    self._hr_on_started = None  # not kept while the actor lives
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
            _registry.unregister(self.actor_ref)
            self.actor_stopped.set()
            return
        super()._stop()

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
        """pykka's: each ask left in the inbox fails with ActorDeadError (a stop's
        is answered). But an asker may take its ask back meanwhile (see
        `fail_if_ended`), so the inbox is read without waiting."""
        if self._hr_child_ref is not None:
            return  # the child's inbox outlives the incarnation
        inbox = self.actor_inbox
        while True:
            try:
                envelope = inbox.get(block=False)  # type: ignore[call-arg]
            except queue.Empty:
                return
            if envelope.reply_to is None:
                continue
            if isinstance(envelope.message, pykka.messages._ActorStop):
                envelope.reply_to.set(None)
            else:
                error = pykka.ActorDeadError(
                    f"{self.actor_ref} stopped before handling the message"
                )
                envelope.reply_to.set_exception((pykka.ActorDeadError, error, None))

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
            _registry.unregister(self.actor_ref)
            self.actor_stopped.set()


pykka_logger = logging.getLogger("pykka")
"""pykka's own log lines keep pykka's logger, so pykka users see what they expect."""
