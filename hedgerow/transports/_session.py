# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`ComponentSession`: autobahn's session API (call, publish, register, subscribe,
leave) over a `Link`, for code that runs on one owner thread (a component's actor).

Everything a session receives is queued to its owner and handled on the
owner's thread: invocations, events, progressive results, and the final
answers of its own calls. So handlers run one at a time and never need locks.

**How a call returns.** `call` returns a `CallFuture` at once (a pykka
future, so several calls can be in flight). ``future.get(timeout)`` on the
owner's thread does not just block: while it waits, the owner keeps handling
the invocations, events and answers that arrive for its session, in order,
exactly where an autobahn handler awaiting ``session.call(...)`` would let
its event loop run other handlers. That is why a component can call its own
procedures, and two components can call each other (A calls B, B's handler
calls A), without deadlock: the waiting thread serves the invocation itself.
Handlers still never run at the same time; they only interleave at a
``get()``, as coroutines interleave at an ``await``. Other messages (pykka
asks and tells) wait until the handler returns; a stop or exit signal from
the supervisor ends the wait at once with ``wamp.error.canceled``.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any, Protocol

import pykka
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import Endpoint, Handler, Publication, Registration, Subscription
from autobahn.wamp.types import (
    CallOptions,
    CallResult,
    CloseDetails,
    ComponentConfig,
    EventDetails,
    PublishOptions,
    RegisterOptions,
    SubscribeOptions,
)

from hedgerow.transports._base import (
    CLOSE_NORMAL,
    Call,
    Event,
    Invocation,
    Leave,
    Link,
    Publish,
    Register,
    Result,
    Subscribe,
    Unregister,
    Unsubscribe,
)
from hedgerow.transports._handler_values import call_result, invocation_kwargs, wamp_error_of

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Callable

__all__ = ["CallFuture", "ComponentSession", "Owner"]

logger = logging.getLogger("hedgerow.transports")


class Owner(Protocol):
    """The thread a session belongs to (a component's actor)."""

    def post(self, message: Any) -> None:
        """Queue `message` for the owner's thread; any thread, never blocks."""

    def on_owner_thread(self) -> bool: ...

    def serve_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """On the owner's thread: handle deliveries until `done()`; False on timeout."""

    def session_left(self, session: ComponentSession, details: CloseDetails) -> None:
        """The session left by its own `leave` (on the owner's thread)."""

    def event_handler_failed(self, event: Event, error: Exception) -> None:
        """An event handler raised `error` (on the owner's thread, in its ``except``):
        report it, or raise to fail the owner."""


class _Progress:
    """A progressive result of one of the session's calls (handled on the owner's thread)."""

    __slots__ = ("args", "future", "kwargs")

    def __init__(self, future: CallFuture, args: list[Any], kwargs: dict[str, Any]) -> None:
        self.future = future
        self.args = args
        self.kwargs = kwargs


class _Settle:
    """The final answer of one of the session's calls."""

    __slots__ = ("answer", "future")

    def __init__(self, future: CallFuture, answer: concurrent.futures.Future[Any]) -> None:
        self.future = future
        self.answer = answer


class _Wake:
    """An answer to one of the session's own requests arrived (from the transport's
    thread): wakes an owner that waits for it in `ComponentSession._wait`."""

    __slots__ = ()


_WAKE = _Wake()

Delivery = (Invocation, Event, _Progress, _Settle, _Wake)
"""What a session handles on its owner's thread (plus the transport's `Closed`)."""


class CallFuture(pykka.ThreadingFuture[Any]):
    """The answer of `ComponentSession.call`: a pykka future.

    `get` on the owner's thread handles the session's deliveries while it
    waits (see the module docstring); elsewhere it simply blocks. It raises
    `ApplicationError` for a call that failed, and `pykka.Timeout` when
    `timeout` passes first (the call itself goes on; a later `get` may succeed).
    """

    def __init__(
        self, session: ComponentSession, procedure: str, options: CallOptions | None
    ) -> None:
        super().__init__()
        self.session = session
        self.procedure = procedure
        self.options = options
        self.progress_posted = 0

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<CallFuture {self.procedure!r} {state}>"

    def done(self) -> bool:
        return self._result is not None

    def get(self, *, timeout: float | None = None) -> Any:
        owner = self.session.owner
        if (
            self._result is None
            and owner.on_owner_thread()
            and not owner.serve_until(self.done, timeout)
        ):
            msg = f"call to {self.procedure!r} not answered within {timeout} s"
            raise pykka.Timeout(msg)
        return super().get(timeout=timeout)


class ComponentSession:
    """A joined WAMP session, with autobahn's ``ISession`` API, bound to one owner thread.

    Handlers registered here run on the owner's thread. An invocation handler
    that raises sends the error back to the caller (``ApplicationError`` keeps
    its URI, args and kwargs; another exception becomes
    ``wamp.error.runtime_error`` with its args, or uses its ``uri`` attribute
    if it has one) and the session goes on, as in WAMP. An event handler that
    raises is reported by the owner, which goes on, as in autobahn (or fails,
    under Erlang's rule: see `Component`); the event's other handlers still run.
    """

    def __init__(
        self,
        owner: Owner,
        link: Link,
        *,
        extra: Any = None,
        transport: Any = None,
        name: str = "component",
    ) -> None:
        self.owner = owner
        self.link = link
        self.transport = transport
        self.name = name
        self.config = ComponentConfig(realm=link.realm, extra=extra)
        self._registrations: dict[int, Registration] = {}
        self._subscriptions: dict[int, list[Subscription]] = {}
        self._attached = True

    def __repr__(self) -> str:
        return f"<ComponentSession {self.name} session={self.session_id} realm={self.realm!r}>"

    # -- state -----------------------------------------------------------------

    @property
    def session_id(self) -> int:
        return self.link.session_id

    @property
    def realm(self) -> str:
        return self.link.realm

    @property
    def serializer(self) -> str:
        return self.link.serializer

    def is_attached(self) -> bool:
        """True until the session leaves or is closed."""
        return self._attached and self.link.is_open

    # -- the ISession API --------------------------------------------------------

    def call(
        self, procedure: str, *args: Any, options: CallOptions | None = None, **kwargs: Any
    ) -> CallFuture:
        """Call `procedure`; a `CallFuture` of its result, as autobahn converts it:
        a single value, None, or a `CallResult` for several values or keyword results.

        ``CallOptions(on_progress=fn)`` asks for progressive results: ``fn`` runs
        on this owner's thread, before the final result is delivered.
        """
        on_progress = None
        if options is not None and options.on_progress is not None:
            _refuse_coroutine(options.on_progress, f"call({procedure!r}) on_progress", "")
        future = CallFuture(self, procedure, options)
        if options is not None and options.on_progress is not None:
            owner = self.owner

            def on_progress(args: list[Any], kwargs: dict[str, Any]) -> None:
                future.progress_posted += 1
                owner.post(_Progress(future, args, kwargs))

        answer = self.link.handle(Call(procedure, list(args), kwargs, options, on_progress))
        answer.add_done_callback(lambda done: self._answered(future, done))
        return future

    def _answered(self, future: CallFuture, answer: concurrent.futures.Future[Any]) -> None:
        if future.progress_posted == 0 and self.owner.on_owner_thread():
            self._settle(future, answer)  # nothing to keep in order: no hop needed
        else:
            self.owner.post(_Settle(future, answer))

    def publish(
        self, topic: str, *args: Any, options: PublishOptions | None = None, **kwargs: Any
    ) -> Publication | None:
        """Publish an event. With ``PublishOptions(acknowledge=True)``, wait for the
        router and return the `Publication` (errors raise `ApplicationError`);
        otherwise return None at once (errors are not reported, as in WAMP)."""
        answer = self.link.handle(Publish(topic, list(args), kwargs, options))
        if options is None or not options.acknowledge:
            return None
        return Publication(self._wait(answer), was_encrypted=False)

    def register(
        self,
        endpoint: Callable[..., Any],
        procedure: str | None = None,
        options: RegisterOptions | None = None,
        check_types: bool | None = None,  # noqa: ARG002 - autobahn's signature; not checked
    ) -> Registration:
        """Register `endpoint` under `procedure`; returns the (autobahn) `Registration`.

        Raises `ApplicationError` (``wamp.error.procedure_already_exists``, ...).
        """
        if procedure is None or not callable(endpoint):
            msg = f"register({endpoint!r}, {procedure!r}): expected a callable and a procedure URI"
            raise ValueError(msg)
        _refuse_coroutine(endpoint, f"register({procedure!r})", "Component.register")
        details_arg = options.details_arg if options is not None else None
        request = Register(procedure, options, details=details_arg is not None)
        registration_id = self._wait(self.link.handle(request))
        registration = Registration(
            self, registration_id, procedure, Endpoint(endpoint, None, details_arg)
        )
        self._registrations[registration_id] = registration
        return registration

    def subscribe(
        self,
        handler: Callable[..., Any],
        topic: str | None = None,
        options: SubscribeOptions | None = None,
        check_types: bool | None = None,  # noqa: ARG002 - autobahn's signature; not checked
    ) -> Subscription:
        """Subscribe `handler` to `topic`; returns the (autobahn) `Subscription`."""
        if topic is None or not callable(handler):
            msg = f"subscribe({handler!r}, {topic!r}): expected a callable and a topic URI"
            raise ValueError(msg)
        _refuse_coroutine(handler, f"subscribe({topic!r})", "Component.subscribe")
        subscription_id = self._wait(self.link.handle(Subscribe(topic, options)))
        subscription = Subscription(subscription_id, topic, self, handler)
        details_arg = options.details_arg if options is not None else None
        subscription.handler = Handler(handler, None, details_arg)
        self._subscriptions.setdefault(subscription_id, []).append(subscription)
        return subscription

    def leave(self, reason: str | None = None, message: str | None = None) -> None:
        """Leave the realm: the component is done (it stops with reason ``normal``)."""
        if not self._attached:
            return
        self._attached = False
        reason = reason or CLOSE_NORMAL
        self._wait(self.link.handle(Leave(reason, message)))
        self.owner.session_left(self, CloseDetails(reason, message))

    # autobahn's Registration.unregister() and Subscription.unsubscribe() call these.

    def _unregister(self, registration: Registration) -> None:
        self._registrations.pop(registration.id, None)
        registration.active = False
        self._wait(self.link.handle(Unregister(registration.id)))

    def _unsubscribe(self, subscription: Subscription) -> None:
        subscription.active = False
        handlers = self._subscriptions.get(subscription.id, [])
        if subscription in handlers:
            handlers.remove(subscription)
        if not handlers:
            self._subscriptions.pop(subscription.id, None)
            self._wait(self.link.handle(Unsubscribe(subscription.id)))

    def _wait(self, answer: concurrent.futures.Future[Any]) -> Any:
        if not answer.done() and self.owner.on_owner_thread():
            owner = self.owner
            answer.add_done_callback(lambda _: owner.post(_WAKE))
            owner.serve_until(answer.done, None)
        return answer.result()

    def detach(self) -> None:
        """Mark the session as no longer attached (its link was closed)."""
        self._attached = False
        for registration in self._registrations.values():
            registration.active = False
        self._registrations.clear()
        self._subscriptions.clear()

    # -- deliveries, on the owner's thread ---------------------------------------

    def dispatch(self, message: Any) -> None:
        """Handle one delivery. What an event handler raises goes to the owner's
        `Owner.event_handler_failed`."""
        if isinstance(message, Invocation):
            self._invoke(message)
        elif isinstance(message, Event):
            self._event(message)
        elif isinstance(message, _Settle):
            self._settle(message.future, message.answer)
        elif isinstance(message, _Progress):
            self._progress(message)

    def _invoke(self, invocation: Invocation) -> None:
        reply = invocation.reply
        registration = self._registrations.get(invocation.registration)
        if invocation.session != self.session_id or registration is None:
            msg = (
                f"{self.name} no longer serves {invocation.procedure!r} "
                f"(session {invocation.session} has left)"
            )
            reply.error(ApplicationError.CANCELED, [msg], {})
            return
        endpoint = registration.endpoint
        kwargs = invocation_kwargs(registration, invocation)
        try:
            result = endpoint.fn(*invocation.args, **kwargs)
        except Exception as exc:
            error, args, kw = wamp_error_of(exc)
            level = logging.DEBUG if isinstance(exc, ApplicationError) else logging.INFO
            logger.log(
                level, "%s: %s raised %s", self.name, invocation.procedure, error, exc_info=True
            )
            reply.error(error, args, kw)
            return
        if isinstance(result, CallResult):
            reply.result(list(result.results), dict(result.kwresults))
        else:
            reply.result([result], {})

    def _event(self, event: Event) -> None:
        if event.session != self.session_id:
            return
        for subscription in list(self._subscriptions.get(event.subscription, ())):
            handler = subscription.handler
            kwargs = dict(event.kwargs)
            if handler.details_arg:
                kwargs[handler.details_arg] = EventDetails(
                    subscription, event.publication, publisher=event.publisher, topic=event.topic
                )
            try:
                handler.fn(*event.args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the owner reports it, or fails
                self.owner.event_handler_failed(event, exc)

    def _progress(self, message: _Progress) -> None:
        options = message.future.options
        if options is None or options.on_progress is None or message.future.session is not self:
            return
        try:
            if options.details:
                options.on_progress(CallResult(*message.args, **message.kwargs))
            else:
                options.on_progress(*message.args, **message.kwargs)
        except Exception:
            logger.exception(
                "%s: on_progress of a call to %s raised", self.name, message.future.procedure
            )

    @staticmethod
    def _settle(future: CallFuture, answer: concurrent.futures.Future[Any]) -> None:
        if future.done():
            return
        error = answer.exception()
        if error is not None:
            future.set_exception((type(error), error, error.__traceback__))
            return
        result: Result = answer.result()
        future.set(call_result(result, future.options))


def _refuse_coroutine(fn: Callable[..., Any], what: str, decorator: str) -> None:
    """A coroutine function cannot run on a thread session: a TypeError saying why."""
    if inspect.iscoroutinefunction(fn):
        name = getattr(fn, "__qualname__", repr(fn))
        msg = (
            f"{what}: {name} is async def, but this session's handlers run on its "
            "component's actor thread, where a coroutine cannot run. "
            + (
                f"Declare it with @{decorator}(...) (or make any handler async def)"
                if decorator
                else "Make the component's handlers async def"
            )
            + ", so that the component runs its handlers on an event loop"
        )
        raise TypeError(msg)
