# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`AsyncSession`: autobahn's session API for handlers that run on an event loop.

The session of a component whose handlers are coroutines (see `Component`).
As autobahn's asyncio session, ``call``, ``register``, ``subscribe``,
``publish`` and ``leave`` return awaitables (asyncio futures of the loop the
component runs on); the request is sent at once, awaited or not. Handlers
run on that loop, one at a time, in order: a handler that returns a
coroutine is awaited before the component's next delivery is handled, so an
``await`` holds back this component's next handler, not other components.
Consequently a component that calls its own procedure from a handler (or two
components that call each other in a cycle) waits until the call times out:
give the work to a task (``asyncio.ensure_future``) instead.

Where the transport's loop is the component's (the WAMP transport on
asyncio), a request and its answer never leave the loop's thread.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from types import CoroutineType
from typing import TYPE_CHECKING, Any, Protocol

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import Endpoint, Handler, Publication, Registration, Subscription
from autobahn.wamp.types import CallResult, CloseDetails, EventDetails

from hedgerow.transports._base import (
    CLOSE_NORMAL,
    Call,
    Event,
    Invocation,
    Leave,
    Publish,
    Register,
    Reply,
    Request,
    Subscribe,
    Unregister,
    Unsubscribe,
)
from hedgerow.transports._handler_values import call_result, invocation_kwargs, wamp_error_of
from hedgerow.transports._session import ComponentSession

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable, Coroutine

    from autobahn.wamp.types import (
        CallOptions,
        PublishOptions,
        RegisterOptions,
        SubscribeOptions,
    )

__all__ = ["AsyncOwner", "AsyncSession"]

logger = logging.getLogger("hedgerow.transports")

_get_running_loop = asyncio.events._get_running_loop
_progress_tasks: set[asyncio.Future[Any]] = set()
"""Coroutine ``on_progress`` handlers in flight (kept, so none is collected early)."""


class AsyncOwner(Protocol):
    """The event-loop actor a session belongs to."""

    @property
    def actor_loop(self) -> asyncio.AbstractEventLoop: ...

    async def session_left(self, session: Any, details: CloseDetails) -> None:
        """The session left by its own `leave`: run the leave handlers."""

    def event_handler_failed(self, event: Event, error: Exception) -> None:
        """An event handler raised `error`: report it, or fail the component."""


class AsyncSession(ComponentSession):
    """A joined WAMP session whose requests return awaitables (autobahn's asyncio API)."""

    owner: AsyncOwner  # type: ignore[assignment]
    _loop: asyncio.AbstractEventLoop | None = None
    """The owner's loop, once asked for (it runs on that one loop for its life)."""
    _call_here: Callable[..., bool] | None = None
    """The link's `call_here`, once a request found the link's loop to be the
    owner's (the WAMP transport on asyncio): a call without options from that
    loop is answered straight into the future its caller awaits."""

    # -- requests --------------------------------------------------------------------

    def _request(self, request: Request, convert: Callable[[Any], Any]) -> asyncio.Future[Any]:
        """Send `request`; an asyncio future on the owner's loop with its outcome,
        converted. On the transport's own loop thread, the link settles that
        future directly (`_Settle`), with no future for any thread in between."""
        link = self.link
        handle_here = getattr(link, "handle_here", None)
        if handle_here is not None:
            loop = self._loop
            if loop is None:
                loop = self._loop = self.owner.actor_loop
            if _get_running_loop() is loop:
                future: asyncio.Future[Any] = loop.create_future()
                if handle_here(request, _Settle(future, convert)):
                    if getattr(getattr(link, "loop", None), "loop", None) is loop:
                        self._call_here = getattr(link, "call_here", None)
                    return future
        return self._future(link.handle(request), convert)

    def _future(
        self, answer: concurrent.futures.Future[Any], convert: Callable[[Any], Any]
    ) -> asyncio.Future[Any]:
        """An asyncio future on the owner's loop with `answer`'s outcome, converted."""
        loop = self.owner.actor_loop
        future: asyncio.Future[Any] = loop.create_future()

        def settle(done: concurrent.futures.Future[Any]) -> None:
            if future.done():
                return
            error = done.exception()
            if error is not None:
                future.set_exception(error)
                return
            try:
                future.set_result(convert(done.result()))
            except Exception as exc:  # noqa: BLE001 - the awaiter gets it
                future.set_exception(exc)

        def answered(done: concurrent.futures.Future[Any]) -> None:
            if _get_running_loop() is loop:
                settle(done)  # the transport's loop is ours: no hop
            else:
                loop.call_soon_threadsafe(settle, done)

        answer.add_done_callback(answered)
        return future

    def call(  # type: ignore[override]
        self, procedure: str, *args: Any, options: CallOptions | None = None, **kwargs: Any
    ) -> asyncio.Future[Any]:
        """Call `procedure`; an awaitable of its result, as autobahn converts it.

        ``CallOptions(on_progress=fn)``: ``fn`` runs on the component's loop,
        before the final result is delivered.
        """
        if options is None:
            call_here = self._call_here
            if call_here is not None:
                loop = self._loop
                if _get_running_loop() is loop:
                    assert loop is not None  # (set with _call_here)
                    future: asyncio.Future[Any] = loop.create_future()
                    if call_here(procedure, args, kwargs, future):
                        return future
        on_progress = None
        if options is not None and options.on_progress is not None:
            on_progress = self._progress_relay(procedure, options)
        request = Call(procedure, list(args), kwargs, options, on_progress)
        return self._request(request, lambda result: call_result(result, options))

    def _progress_relay(
        self, procedure: str, options: CallOptions
    ) -> Callable[[list[Any], dict[str, Any]], None]:
        """What the link calls with a progressive result: the user's ``on_progress``,
        run on the component's loop."""
        loop, user = self.owner.actor_loop, options.on_progress
        details = options.details

        def deliver(args: list[Any], kwargs: dict[str, Any]) -> None:
            try:
                outcome = user(CallResult(*args, **kwargs)) if details else user(*args, **kwargs)
                if inspect.isawaitable(outcome):
                    task = asyncio.ensure_future(outcome)
                    _progress_tasks.add(task)
                    task.add_done_callback(_progress_tasks.discard)
            except Exception:
                logger.exception("%s: on_progress of a call to %s raised", self.name, procedure)

        def on_progress(args: list[Any], kwargs: dict[str, Any]) -> None:
            if _get_running_loop() is loop:
                deliver(args, kwargs)
            else:
                loop.call_soon_threadsafe(deliver, args, kwargs)

        return on_progress

    def publish(  # type: ignore[override]
        self, topic: str, *args: Any, options: PublishOptions | None = None, **kwargs: Any
    ) -> asyncio.Future[Publication | None]:
        """Publish an event; an awaitable of the `Publication` with
        ``PublishOptions(acknowledge=True)``, else of None (done at once)."""
        answer = self.link.handle(Publish(topic, list(args), kwargs, options))
        if options is None or not options.acknowledge:
            done: asyncio.Future[Publication | None] = self.owner.actor_loop.create_future()
            done.set_result(None)
            return done
        return self._future(answer, lambda pid: Publication(pid, was_encrypted=False))

    def register(  # type: ignore[override]
        self,
        endpoint: Callable[..., Any],
        procedure: str | None = None,
        options: RegisterOptions | None = None,
        check_types: bool | None = None,  # noqa: ARG002 - autobahn's signature; not checked
    ) -> asyncio.Future[Registration]:
        """Register `endpoint` (plain or ``async def``) under `procedure`; an awaitable
        of the (autobahn) `Registration`."""
        if procedure is None or not callable(endpoint):
            msg = f"register({endpoint!r}, {procedure!r}): expected a callable and a procedure URI"
            raise ValueError(msg)
        details_arg = options.details_arg if options is not None else None

        def registered(registration_id: int) -> Registration:
            registration = Registration(
                self, registration_id, procedure, Endpoint(endpoint, None, details_arg)
            )
            self._registrations[registration_id] = registration
            return registration

        request = Register(procedure, options, details=details_arg is not None)
        return self._future(self.link.handle(request), registered)

    def subscribe(  # type: ignore[override]
        self,
        handler: Callable[..., Any],
        topic: str | None = None,
        options: SubscribeOptions | None = None,
        check_types: bool | None = None,  # noqa: ARG002 - autobahn's signature; not checked
    ) -> asyncio.Future[Subscription]:
        """Subscribe `handler` (plain or ``async def``) to `topic`; an awaitable of the
        (autobahn) `Subscription`."""
        if topic is None or not callable(handler):
            msg = f"subscribe({handler!r}, {topic!r}): expected a callable and a topic URI"
            raise ValueError(msg)
        details_arg = options.details_arg if options is not None else None

        def subscribed(subscription_id: int) -> Subscription:
            subscription = Subscription(subscription_id, topic, self, handler)
            subscription.handler = Handler(handler, None, details_arg)
            self._subscriptions.setdefault(subscription_id, []).append(subscription)
            return subscription

        return self._future(self.link.handle(Subscribe(topic, options)), subscribed)

    def leave(  # type: ignore[override]
        self, reason: str | None = None, message: str | None = None
    ) -> asyncio.Future[None]:
        """Leave the realm (the leave handlers run): the component is done."""
        return asyncio.ensure_future(self._leave(reason, message), loop=self.owner.actor_loop)

    async def _leave(self, reason: str | None, message: str | None) -> None:
        if not self._attached:
            return
        self._attached = False
        reason = reason or CLOSE_NORMAL
        await self._future(self.link.handle(Leave(reason, message)), lambda _: None)
        await self.owner.session_left(self, CloseDetails(reason, message))

    def _unregister(self, registration: Registration) -> asyncio.Future[None]:  # type: ignore[override]
        self._registrations.pop(registration.id, None)
        registration.active = False
        return self._future(self.link.handle(Unregister(registration.id)), lambda _: None)

    def _unsubscribe(self, subscription: Subscription) -> asyncio.Future[None]:  # type: ignore[override]
        subscription.active = False
        handlers = self._subscriptions.get(subscription.id, [])
        if subscription in handlers:
            handlers.remove(subscription)
        if handlers:
            done: asyncio.Future[None] = self.owner.actor_loop.create_future()
            done.set_result(None)
            return done
        self._subscriptions.pop(subscription.id, None)
        return self._future(self.link.handle(Unsubscribe(subscription.id)), lambda _: None)

    # -- deliveries, on the owner's loop -----------------------------------------------

    def dispatch(self, message: Any) -> Coroutine[Any, Any, None] | None:  # type: ignore[override]
        """Handle one delivery; a coroutine to await if a handler is one."""
        if isinstance(message, Invocation):
            return self._invoke_async(message)
        if isinstance(message, Event):
            return self._event_async(message)
        return None

    def _invoke_async(self, invocation: Invocation) -> Coroutine[Any, Any, None] | None:
        reply = invocation.reply
        registration = self._registrations.get(invocation.registration)
        if invocation.session != self.session_id or registration is None:
            msg = (
                f"{self.name} no longer serves {invocation.procedure!r} "
                f"(session {invocation.session} has left)"
            )
            reply.error(ApplicationError.CANCELED, [msg], {})
            return None
        endpoint = registration.endpoint
        kwargs = invocation_kwargs(registration, invocation)
        try:
            result = endpoint.fn(*invocation.args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - goes back to the caller
            self._reply_error(invocation, exc)
            return None
        if result.__class__ is CoroutineType or inspect.isawaitable(result):
            return self._answer(invocation, result)
        _reply(reply, result)
        return None

    async def _answer(self, invocation: Invocation, pending: Any) -> None:
        try:
            result = await pending
        except Exception as exc:  # noqa: BLE001 - goes back to the caller
            self._reply_error(invocation, exc)
            return
        _reply(invocation.reply, result)

    def _reply_error(self, invocation: Invocation, exc: Exception) -> None:
        invocation.reply.error(*self._answer_error(invocation.procedure, exc))

    def _answer_error(
        self, procedure: str, exc: Exception
    ) -> tuple[str, list[Any], dict[str, Any]]:
        """The WAMP error a procedure's exception is answered with (logged here)."""
        error, args, kw = wamp_error_of(exc)
        level = logging.DEBUG if isinstance(exc, ApplicationError) else logging.INFO
        logger.log(level, "%s: %s raised %s", self.name, procedure, error, exc_info=exc)
        return error, args, kw

    def error_answer(self, procedure: str, exc: Exception) -> ApplicationError:
        """The `ApplicationError` a procedure's exception is answered with (logged here)."""
        error, args, kw = self._answer_error(procedure, exc)
        return ApplicationError(error, *args, **kw)

    def _event_async(self, event: Event) -> Coroutine[Any, Any, None] | None:
        if event.session != self.session_id:
            return None
        subscriptions = list(self._subscriptions.get(event.subscription, ()))
        for index, subscription in enumerate(subscriptions):
            try:
                outcome = self._run_handler(subscription, event)
            except Exception as exc:  # noqa: BLE001 - the owner reports it, or fails
                self.owner.event_handler_failed(event, exc)
                continue
            if inspect.isawaitable(outcome):
                return self._events_rest(event, outcome, subscriptions[index + 1 :])
        return None

    def _run_handler(self, subscription: Subscription, event: Event) -> Any:
        handler = subscription.handler
        kwargs = dict(event.kwargs)
        if handler.details_arg:
            kwargs[handler.details_arg] = EventDetails(
                subscription, event.publication, publisher=event.publisher, topic=event.topic
            )
        return handler.fn(*event.args, **kwargs)

    async def _events_rest(self, event: Event, pending: Any, rest: list[Subscription]) -> None:
        """Await an event handler, then run the event's other handlers, in order."""
        try:
            await pending
        except Exception as exc:  # noqa: BLE001 - the owner reports it, or fails
            self.owner.event_handler_failed(event, exc)
        for subscription in rest:
            try:
                outcome = self._run_handler(subscription, event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception as exc:  # noqa: BLE001
                self.owner.event_handler_failed(event, exc)


class _Settle:
    """Where the link puts a request's outcome on its own loop thread: into the
    asyncio future `future`, converted (what `convert` raises fails it)."""

    __slots__ = ("convert", "future")

    def __init__(self, future: asyncio.Future[Any], convert: Callable[[Any], Any]) -> None:
        self.future = future
        self.convert = convert

    def set_result(self, value: Any) -> None:
        future = self.future
        if future.done():
            return  # cancelled by its awaiter
        try:
            future.set_result(self.convert(value))
        except Exception as exc:  # noqa: BLE001 - the awaiter gets it
            future.set_exception(exc)

    def set_exception(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


def _reply(reply: Reply, result: Any) -> None:
    if isinstance(result, CallResult):
        reply.result(list(result.results), dict(result.kwresults))
    else:
        reply.result([result], {})
