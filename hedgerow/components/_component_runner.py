# mypy: disable-error-code="no-untyped-call"
"""`HandlerRunner`: where the handlers of a component with coroutine handlers run.

A `Component` with any ``async def`` handler runs them all on an event loop:
its `ComponentActor` (the supervised thread actor that joins, reconnects and
reports its exits as any child does) starts a `HandlerRunner`, an
`AsyncioActor`, on the transport's own loop (`Transport.handler_loop`: the
``hedgerow-wamp`` loop on asyncio) or on hedgerow's loop. The transport
delivers invocations and events straight into the runner's inbox; each is one
message, handled in order, and an ``await`` inside a handler holds back this
component's next message, not other components. Delivered on the runner's own
loop thread while it is idle, an invocation or event is handled at once, in
the same task and order a queued one would be (`run_now`, `invoke_now`: see
`hedgerow.components._component_inline`). Lifecycle handlers arrive
from the component's actor as asks (``on_join`` and the rest), so what they
raise is raised there, exactly where a plain handler's error is.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import sys
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from autobahn.wamp.types import CloseDetails
from pykka._envelope import Envelope

from hedgerow.actors._async_actor import AsyncioActor
from hedgerow.actors._loop import _actor_codes
from hedgerow.actors._loop_child import RUNNING
from hedgerow.components._component_inline import CAN_START_EAGERLY, Answer, start_eagerly
from hedgerow.transports._base import CLOSE_NORMAL, NOT_AT_ONCE, Closed, Event, Invocation

if TYPE_CHECKING:
    from hedgerow.components._component_seams import RunnerOwner
    from hedgerow.transports._async_session import AsyncSession

__all__ = ["Fire", "HandlerRunner", "Joined", "RunnerDone", "RunnerFailed", "StartMain"]

logger = logging.getLogger("hedgerow.components")

_get_running_loop = asyncio.events._get_running_loop
_current_task = asyncio.current_task
_current_tasks = asyncio.tasks._current_tasks  # type: ignore[attr-defined]
"""The running task of each loop (what current_task(loop) reads, without its call)."""
_AT_ONCE = frozenset({Invocation, Event})
_INVOKED: Envelope[Any] = Envelope(None)
"""The message in hand while a procedure run at once runs (no asker to answer)."""


class Fire:
    """Run the listeners of `event` with `args`, in order (an ask: errors go back)."""

    __slots__ = ("args", "event")

    def __init__(self, event: str, *args: Any) -> None:
        self.event = event
        self.args = args


class Joined:
    """The session joined: adopt it, then run ``on_connect``, ``on_join``, ``on_ready``."""

    __slots__ = ("details", "session", "transport")

    def __init__(self, session: AsyncSession, transport: Any, details: Any) -> None:
        self.session = session
        self.transport = transport
        self.details = details


class StartMain:
    """Start the component's ``main`` in a task of its own, as autobahn does (so the
    component's handlers go on serving meanwhile); the session leaves when it
    returns (told once the start is done)."""

    __slots__ = ()


class RunnerFailed:
    """To the component's actor: a handler that must fail the component raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class RunnerDone:
    """To the component's actor: the session left for good (the component is done),
    or closed with `closed` (the actor decides: reconnect, or fail)."""

    __slots__ = ("closed",)

    def __init__(self, closed: Closed | None) -> None:
        self.closed = closed


class HandlerRunner(AsyncioActor):
    """An event-loop actor running one component incarnation's handlers."""

    def __init__(self, owner: RunnerOwner, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.owner = owner
        self._hr_start_loop = loop
        self.session: AsyncSession | None = None
        self._left = False
        self._main_task: asyncio.Task[None] | None = None
        self._stopping = False

    def __str__(self) -> str:
        return f"{self.owner} (its handlers)"

    def on_receive(self, message: Any) -> Any:
        session = self.session
        if isinstance(message, (Invocation, Event)):
            return session.dispatch(message) if session is not None else None
        if isinstance(message, Closed):
            return self._closed(message)
        if isinstance(message, Fire):
            return self._fire(message.event, *message.args)
        if isinstance(message, Joined):
            return self._joined(message)
        if isinstance(message, StartMain):
            self._main_task = self.actor_loop.create_task(self._main())
            return None
        return None

    def run_now(self, message: Any) -> bool:
        """(The transport's delivery, from any thread.) Handle an invocation or event
        now, exactly as this runner's wake-up would, if it is idle on this very
        thread outside any task (a coroutine handler starts in the runner's task,
        eagerly: see `hedgerow.components._component_inline`). False: queue it."""
        loop = self._hr_loop
        session = self.session
        if message.__class__ not in _AT_ONCE or session is None or not self._hr_can_run_now(loop):
            return False
        if message.__class__ is Invocation and message.registration not in session._registrations:
            return False  # registered, but not yet known here: queued, it finds it known
        self._hr_busy = True
        self._hr_runtime.busy += 1
        envelope: Envelope[Any] = Envelope(message)
        self._hr_current = envelope
        try:
            response = session.dispatch(message)  # what on_receive does with it
        except BaseException:  # noqa: BLE001 - handled as the wake-up handles it
            self._hr_failed_at_once(loop, envelope)
            return True
        if response.__class__ is CoroutineType:
            start_eagerly(loop, self._hr_body(envelope, response), self)
            return True
        self._hr_done_at_once(loop)
        return True

    def invoke_now(
        self,
        session_id: int,
        registration_id: int,
        procedure: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """(The WAMP transport's endpoint, on its loop.) Run a procedure's endpoint now,
        as `run_now` would run its invocation, and answer autobahn directly: the
        endpoint's value, or a future of it, or raise the `ApplicationError` it is
        answered with. `NOT_AT_ONCE` if the invocation must be delivered instead
        (the runner is not idle here, or the endpoint asked for its call's details)."""
        loop = self._hr_loop
        session = self.session
        # Idle on its loop's thread outside any task, as _hr_can_run_now (inlined).
        if (
            session is None
            or session.link.session_id != session_id
            or self._hr_busy
            or _get_running_loop() is not loop
            or self.actor_inbox._queue
            or self._hr_phase != RUNNING
            or self.actor_stopped._flag
            or not CAN_START_EAGERLY
            or _current_tasks.get(loop) is not None
        ):
            return NOT_AT_ONCE
        registration = session._registrations.get(registration_id)
        if registration is None or registration.endpoint.details_arg:
            return NOT_AT_ONCE
        self._hr_busy = True
        self._hr_runtime.busy += 1
        self._hr_current = _INVOKED
        try:
            result = registration.endpoint.fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - goes back to the caller
            self._hr_done_at_once(loop)
            raise session.error_answer(procedure, exc) from None
        except BaseException:  # noqa: BLE001 - handled as the wake-up handles it
            self._hr_failed_at_once(loop, _INVOKED)
            return loop.create_future()  # never answered, as a queued invocation's
        if result.__class__ is not CoroutineType and not inspect.isawaitable(result):
            self._hr_done_at_once(loop)
            return result
        answer = Answer()
        pending = answer.run(result, session, procedure)
        start_eagerly(loop, self._hr_body(_INVOKED, pending), self)
        if answer.finished:  # answered in its first step
            error = answer.error
            if error is not None:
                answer.error = None
                raise error
            return answer.value
        future = answer.future = loop.create_future()
        return future

    def _hr_can_run_now(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Idle (nothing queued, nothing in hand, running), and called on its loop's
        thread outside any task."""
        return not (
            self._hr_busy
            or _get_running_loop() is not loop
            or self.actor_inbox._queue
            or self._hr_phase != RUNNING
            or self.actor_stopped._flag
            or not CAN_START_EAGERLY
            or _current_task(loop) is not None
        )

    def _hr_failed_at_once(self, loop: asyncio.AbstractEventLoop, envelope: Envelope[Any]) -> None:
        """A handler run at once raised what the wake-up handles (being handled)."""
        hook = self._hr_failed(envelope)
        self._hr_current = None
        if hook is not None:
            start_eagerly(loop, self._hr_body(None, hook), self)
            return
        self._hr_done_at_once(loop)

    def _hr_done_at_once(self, loop: asyncio.AbstractEventLoop) -> None:
        """A handler run at once is done: idle again, or (a message came meanwhile, or
        the runner stopped) the wake-up goes on from here, the runner still busy."""
        self._hr_current = None
        if self.actor_inbox._queue or self.actor_stopped._flag:
            loop.call_soon(self._hr_drain)
        else:
            self._hr_idle()

    def _tell_owner(self, message: Any) -> None:
        self.owner.actor_inbox.put(Envelope(message))

    async def _fire(self, event: str, *args: Any) -> None:
        for listener in list(self.owner.component._listeners[event]):
            outcome = listener(*args)
            if inspect.isawaitable(outcome):
                await outcome

    async def _joined(self, joined: Joined) -> None:
        self.session = joined.session
        self._left = False
        await self._fire("connect", joined.session, joined.transport)
        await self._fire("join", joined.session, joined.details)
        await self._fire("ready", joined.session)

    async def _main(self) -> None:
        session, main = self.session, self.owner.component.main
        if session is None or main is None or not session.is_attached():
            return
        try:
            outcome = main(self.owner, session)
            if inspect.isawaitable(outcome):
                await outcome
            if session.is_attached():
                await session.leave()
        except Exception as exc:  # noqa: BLE001 - fails the component, as a plain main's
            self._tell_owner(RunnerFailed(exc))

    def cancel_main(self) -> None:
        """(Any thread.) Cancel ``main`` if it still runs (the incarnation exited)."""
        task = self._main_task
        if task is not None and not task.done():
            with contextlib.suppress(RuntimeError):  # the loop is closed
                self.actor_loop.call_soon_threadsafe(task.cancel)

    async def leave_on_stop(self) -> None:
        """The component stops (its runner was killed first): leave, running the
        leave handlers here; what they raise is raised to the stopping actor."""
        self._stopping = True
        session = self.session
        if session is not None and session.is_attached():
            await session.leave()

    async def session_left(self, session: Any, details: CloseDetails) -> None:
        """The session left by its own `leave`: the leave handlers, then the
        component is done (its actor stops)."""
        if await self._run_leave_handlers(session, details):
            self._tell_owner(RunnerDone(None))

    async def _run_leave_handlers(self, session: Any, details: CloseDetails) -> bool:
        """``on_leave`` then ``on_disconnect``; False if one raised (the component fails)."""
        if self._left:
            return False
        self._left = True
        try:
            await self._fire("leave", session, details)
            await self._fire("disconnect", session, details.reason == CLOSE_NORMAL)
        except Exception as exc:
            if self._stopping:
                raise  # to the stopping actor's on_stop
            self._tell_owner(RunnerFailed(exc))
            return False
        return not self._stopping

    async def _closed(self, closed: Closed) -> None:
        session = self.session
        if session is None or closed.session != session.session_id or self._left:
            return
        session.detach()
        details = CloseDetails(closed.reason, closed.message)
        if await self._run_leave_handlers(session, details):
            self._tell_owner(RunnerDone(closed))

    def event_handler_failed(self, event: Event, error: Exception) -> None:
        """An event handler raised: reported, or (``event_errors_fail``) the
        component fails with the event as its dead letter."""
        if self.owner._hr_event_errors_fail:
            self.owner.fail_on(event, error)
            return
        self.owner.report_handler_failure(event, error)

    @property
    def actor_loop(self) -> asyncio.AbstractEventLoop:  # for AsyncOwner
        return super().actor_loop

    def _handle_failure(self, *exc_info: Any) -> None:
        # A bug of the runner itself (a handler's error never gets here): the
        # component fails with it rather than serving no more.
        super()._handle_failure(*exc_info)
        error = exc_info[1] if exc_info else sys.exc_info()[1]
        if isinstance(error, BaseException):
            self._tell_owner(RunnerFailed(error))


# A blocked loop's report names the component whose handler runs at once.
_actor_codes.update((HandlerRunner.run_now.__code__, HandlerRunner.invoke_now.__code__))


def start_runner(owner: RunnerOwner) -> HandlerRunner:
    """Start the runner of `owner` on its first transport's loop, or on hedgerow's."""
    from hedgerow.actors._loop import hedgerow_loop  # noqa: PLC0415 - started only when needed

    transport = owner.component.transports[0].transport
    loop = transport.handler_loop() or hedgerow_loop()
    inbox: Any = HandlerRunner.start(owner, loop).actor_inbox
    runner: HandlerRunner = inbox._actor
    return runner
