# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`ComponentActor`: one incarnation of a `Component`, a hedgerow actor holding one
session (how its handlers run, and what happens when they raise: see
`hedgerow.components._component`)."""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CloseDetails, SessionDetails
from pykka import messages as pykka_messages
from pykka._envelope import Envelope

from hedgerow._events import EventKind
from hedgerow.actors._actor import Actor
from hedgerow.actors._async_future import AsyncioFuture
from hedgerow.actors._inbox import Inbox, exempt
from hedgerow.actors._messages import _Control
from hedgerow.components._component_join import (
    Joining,
    Reconnect,
    Rejoined,
    RunMain,
    leave_if_joined,
    leave_request,
    live_links,
    live_links_lock,
)
from hedgerow.components._component_runner import (
    Fire,
    Joined,
    RunnerDone,
    RunnerFailed,
    StartMain,
    start_runner,
)
from hedgerow.transports._async_session import AsyncSession
from hedgerow.transports._base import (
    CLOSE_NORMAL,
    Closed,
    Event,
    Link,
    Transport,
)
from hedgerow.transports._session import _WAKE, ComponentSession, Delivery

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

    from pykka._actor import ActorInbox

    from hedgerow.actors._reason import Reason
    from hedgerow.components._component_runner import HandlerRunner
    from hedgerow.components._component_seams import Handlers
    from hedgerow.supervision._backoff import Backoff

__all__ = ["ComponentActor"]

_DELIVERED = (*Delivery, Closed)
"""What a transport puts in a component's inbox (one tuple, built once)."""
exempt(*_DELIVERED)  # a bounded inbox never drops a session's deliveries (max_inbox)

logger = logging.getLogger("hedgerow.components")

RUNNER_KILL_WAIT = 1.0
"""Seconds an exiting incarnation waits for its handler runner to be killed."""


class ComponentActor(Actor, Joining):
    """One incarnation of a `Component`: a hedgerow `Actor` holding one session."""

    def __init__(self, component: Handlers) -> None:
        super().__init__()
        self.component = component
        self.session: ComponentSession | None = None
        self._depth = 0
        self._deferred: BaseException | None = None
        self._left = False
        self._index = 0
        self._backoffs: dict[int, Backoff] = {}
        self._given_up: set[int] = set()
        self._reconnecting = False
        self._token = 0
        self._pending_join: concurrent.futures.Future[Link] | None = None
        self._next = 0
        self._join_cancelled = False
        self._join_wake: threading.Event | None = None
        self._runner: HandlerRunner | None = None
        """Where the handlers run, if any is a coroutine (None: on this actor's thread)."""
        self._failed_events: list[tuple[Event, BaseException]] = []
        self._abandoned = threading.Event()
        """Set when this incarnation is abandoned: ends a wait in `serve_until`."""
        self._hr_add_exit_callback(self._exited)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = Actor._create_actor_inbox()
        return inbox if isinstance(inbox, Inbox) else Inbox()

    def __str__(self) -> str:
        ref = self.actor_child_ref
        where = f" ({ref.path})" if ref is not None else ""
        return f"Component {self.component.name}{where}"

    # -- life cycle ------------------------------------------------------------

    def on_start(self) -> None:
        """Join through the first transport that works, then run the join listeners."""
        self._replace_predecessor()
        if self.component.is_async:
            self._runner = start_runner(self)
        try:
            self.component._joining.add(self)
            try:
                link, index = self._join()
            finally:
                self.component._joining.discard(self)
            self._adopt(link, index)
        except BaseException:
            self._stop_runner()  # before the start is reported failed
            raise
        if self.component.main is not None:
            runner = self._runner
            if runner is None:
                self.actor_inbox.put(Envelope(RunMain()))
            elif not runner.actor_stopped.is_set():  # (a stop cancelled on_join)
                runner.actor_ref.tell(StartMain())

    def _fire(self, event: str, *args: Any) -> None:
        """Run the listeners of `event`, here or (coroutine handlers) on the runner,
        waiting for them; what one raises is raised here."""
        runner = self._runner
        if runner is None:
            self.component._fire(event, *args)
        else:
            self._ask_runner(runner, Fire(event, *args))

    def _ask_runner(self, runner: HandlerRunner, message: Fire | Joined) -> None:
        """Have the runner run lifecycle handlers, and wait: what they raise is raised
        here. On this actor's thread the wait ends early, as a plain handler's wait
        for a call does, when a stop (or an exit signal) arrives: the handlers'
        task is cancelled (the runner is killed) and the stop goes on. So a handler
        that awaits for ever (an ``on_join`` waiting for what never comes) does not
        hold the stop back until the supervisor abandons this incarnation."""
        answer = runner.actor_ref.ask(message, block=False)
        assert isinstance(answer, AsyncioFuture)  # an event-loop actor's
        if not answer.done() and self.on_owner_thread():
            waiting = [True]  # no wake-up for a wait that has ended (no dead letter)

            def wake(_: Any) -> None:
                if waiting[0] and not self._abandoned.is_set():
                    self.post(_WAKE)

            answer.add_done_callback(wake)
            try:
                self.serve_until(answer.done, None)
            except ApplicationError as exc:
                if exc.error != ApplicationError.CANCELED:
                    raise
                waiting[0] = False
                logger.info("%s: stopping: its %s handlers are cancelled", self, _what(message))
                self._stop_runner()
                self._cancel_first_join()  # (stopped in on_connectfailure: no more tries)
                return
            waiting[0] = False
        answer.get()

    def _adopt(self, link: Link, index: int) -> None:
        """Take `link` as this incarnation's session and run the join listeners."""
        component = self.component
        transport = component.transports[index].transport
        self._index = index
        self._left = False
        with live_links_lock:
            if self.actor_child_ref is not None:
                live_links[self.actor_child_ref] = link
        details = SessionDetails(
            realm=link.realm,
            session=link.session_id,
            authrole=getattr(getattr(link, "details", None), "authrole", None) or "trusted",
            serializer=link.serializer,
        )
        runner = self._runner
        if runner is not None:
            session: ComponentSession = AsyncSession(
                runner,  # type: ignore[arg-type] # an AsyncOwner
                link,
                extra=component.extra,
                transport=transport,
                name=component.name,
            )
            self.session = session
            self._ask_runner(runner, Joined(session, transport, details))  # type: ignore[arg-type]
            return
        session = ComponentSession(
            self, link, extra=component.extra, transport=transport, name=component.name
        )
        self.session = session
        self._top(lambda: self._joined(session, transport, details))

    def _joined(self, session: ComponentSession, transport: Transport, details: Any) -> None:
        component = self.component
        component._fire("connect", session, transport)
        component._fire("join", session, details)
        component._fire("ready", session)

    def _replace_predecessor(self) -> None:
        """A supervisor may abandon an incarnation that ignored its stop: its session
        must not outlive it, or the new one could not register again."""
        ref = self.actor_child_ref
        if ref is None:
            return
        with live_links_lock:
            old = live_links.pop(ref, None)
        if old is not None and old.is_open:
            old.handle(leave_request())

    def on_receive(self, message: Any) -> Any:
        if self._runner is not None and self._from_runner(message):
            return None
        if isinstance(message, _DELIVERED):
            self._top(lambda: self._dispatch(message))
            return None
        if isinstance(message, RunMain):
            self._top(self._run_main)
            return None
        if isinstance(message, Reconnect):
            self._attempt(message)
            return None
        if isinstance(message, Rejoined):
            self._rejoined(message)
            return None
        return super().on_receive(message)

    def _from_runner(self, message: Any) -> bool:
        """Handle what the runner told this actor; False if `message` is no such thing."""
        failed = self._failed_events
        if failed and message is failed[0][0]:
            raise failed.pop(0)[1]  # the event is the dead letter (event_errors_fail)
        if isinstance(message, RunnerFailed):
            raise message.error
        if isinstance(message, RunnerDone):
            if message.closed is None or message.closed.reason == CLOSE_NORMAL:
                self._stop()
            else:
                self._lost(message.closed)
            return True
        return False

    def fail_on(self, event: Event, error: BaseException) -> None:
        """(Any thread.) Fail with `error` when `event` comes up in this actor's inbox."""
        self._failed_events.append((event, error))
        self.post(event)

    def _run_main(self) -> None:
        session = self.session
        main = self.component.main
        if session is None or main is None or not session.is_attached():
            return
        main(self, session)
        if session.is_attached():
            session.leave()

    def on_stop(self) -> None:
        """A stop (by the supervisor, or after leaving): leave cleanly, run leave handlers."""
        session = self.session
        if session is None or not session.is_attached():
            return
        runner = self._runner
        if runner is None:
            session.leave()
            return
        # As a plain handler's wait is cancelled by a stop: the handler in hand is
        # cancelled (and nothing else runs), then the session leaves on the loop.
        self._stop_runner()
        asyncio.run_coroutine_threadsafe(runner.leave_on_stop(), runner.actor_loop).result()

    def _stop_runner(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.cancel_main()
            runner._hr_kill()  # a handler still awaiting is cancelled
            # The kill runs on the runner's loop: wait for it (a moment, unless the
            # loop is blocked), so that this incarnation is gone when its exit is seen.
            runner.actor_stopped.wait(RUNNER_KILL_WAIT)

    def _hr_after_abandon(self) -> None:
        self._abandoned.set()  # (before the inbox wakes its reader)
        super()._hr_after_abandon()
        self._cancel_first_join()  # a wait to join again ends: the thread goes
        runner = self._runner
        if runner is not None:
            # Given up on (killed, or its shutdown ran out): the handlers' task is
            # cancelled now, as an event-loop actor's is. A wait for them on this
            # actor's thread then ends, and its exit leaves the session.
            runner.cancel_main()
            runner._hr_kill()

    def _hr_finish(self) -> None:
        # The runner goes first: the exit is told (its supervisor's callback runs
        # before `_exited`) only once it is gone, e.g. after ``main`` left.
        self._stop_runner()
        super()._hr_finish()

    def _exited(self, _actor: Actor, _reason: Reason) -> None:
        """Any exit, even a crash: the session must go, so nothing waits on this incarnation."""
        self._stop_runner()
        pending, self._pending_join = self._pending_join, None
        if pending is not None:
            pending.add_done_callback(leave_if_joined)
        session = self.session
        if session is not None:
            session.detach()
            if session.link.is_open:
                session.link.handle(leave_request())
        ref = self.actor_child_ref
        if ref is not None and session is not None:
            with live_links_lock:
                if live_links.get(ref) is session.link:
                    del live_links[ref]

    # -- the session's owner -----------------------------------------------------

    def post(self, message: Any) -> None:
        self.actor_inbox.put(Envelope(message))

    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._hr_thread_id

    def session_left(
        self, session: ComponentSession, details: CloseDetails, *, done: bool = True
    ) -> None:
        """The session left: run the leave handlers; if `done`, the component stops."""
        if self._left:
            return
        self._left = True
        self._fire("leave", session, details)
        self._fire("disconnect", session, details.reason == CLOSE_NORMAL)
        if done and not self.actor_stopped.is_set():
            self._stop()

    def event_handler_failed(self, event: Event, error: Exception) -> None:
        """An event handler raised: report it and go on (autobahn), or fail (Erlang's
        rule, the child spec's ``event_errors_fail``)."""
        if self._hr_event_errors_fail:
            raise error
        self.report_handler_failure(event, error)

    def report_handler_failure(self, event: Event, error: BaseException) -> None:
        """(Any thread.) A ``handler_failed`` event on the tree's stream, or a log line."""
        ref = self.actor_child_ref
        if ref is None or ref.events is None:
            logger.error(
                "%s: a handler of %r raised",
                self,
                event.topic,
                exc_info=(type(error), error, error.__traceback__),
            )
            return
        ref.events.publish(
            EventKind.HANDLER_FAILED,
            ref.path,
            self.actor_clock.now(),
            incarnation=self.actor_incarnation,
            reason=error,
            traceback="".join(traceback.format_exception(error)),
            message=event,
        )

    def serve_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Handle this session's deliveries until `done()`: see `hedgerow.transports._session`.

        Other messages are kept, in order, for after the current handler. A
        stop or exit signal ends the wait with ``wamp.error.canceled``, and so
        does being abandoned (killed, or the shutdown ran out), when nothing
        more can come.
        """
        inbox = self.actor_inbox
        assert isinstance(inbox, Inbox)
        deadline = None if timeout is None else time.monotonic() + timeout
        kept: list[Envelope[Any]] = []
        interrupt: Envelope[Any] | None = None
        self._depth += 1
        try:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if remaining is None:
                    envelope = inbox.take(self._abandoned)
                    if envelope is None:  # abandoned: nothing more comes to this inbox
                        msg = f"{self} was given up on: its wait was cancelled"
                        raise ApplicationError(ApplicationError.CANCELED, msg)
                else:
                    try:
                        envelope = inbox.get(timeout=remaining)
                    except queue.Empty:
                        return False
                message = envelope.message
                if isinstance(message, _DELIVERED):
                    self._dispatch(message)
                elif message.__class__ is _Control or isinstance(
                    message, pykka_messages._ActorStop
                ):
                    interrupt = envelope
                    msg = f"{self} is stopping: its wait for a call was cancelled"
                    raise ApplicationError(ApplicationError.CANCELED, msg)
                else:
                    kept.append(envelope)
            return True
        finally:
            self._depth -= 1
            for envelope in reversed(kept):
                inbox.put_front(envelope)
            if interrupt is not None:
                inbox.put_front(interrupt)

    def _top(self, fn: Callable[[], None]) -> None:
        """Run a handler; then raise what an event handler raised in a nested wait."""
        fn()
        if self._depth == 0 and self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, Closed):
            self._closed(message)
            return
        session = self.session
        if session is None:
            return
        if self._depth == 0:
            session.dispatch(message)
            return
        try:
            session.dispatch(message)
        except Exception as exc:  # noqa: BLE001 - raised once the outer handler is done
            if self._deferred is None:
                self._deferred = exc

    def _closed(self, closed: Closed) -> None:
        session = self.session
        if session is None or closed.session != session.session_id or self._left:
            return
        session.detach()
        normal = closed.reason == CLOSE_NORMAL
        self.session_left(session, CloseDetails(closed.reason, closed.message), done=normal)
        if not normal:
            self._lost(closed)


def _what(message: Fire | Joined) -> str:
    """Which lifecycle handlers `message` runs, for a log line."""
    return f"on_{message.event}" if isinstance(message, Fire) else "on_connect/on_join/on_ready"
