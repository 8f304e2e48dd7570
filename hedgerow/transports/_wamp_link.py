# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`WampLink`: one joined autobahn session of a `WampTransport`, and the requests it carries.

Threads: `Link.handle` may be called from any thread; it schedules the
request on the loop (``call_soon_threadsafe``) and returns a
`concurrent.futures.Future` that the loop completes. What arrives (an
invocation, an event, the session's end) is handed to the session's peer
on the loop thread; a component's peer only queues it for its actor. A
callee's answer (`Reply`) hops back onto the loop.

A session that is lost (the router went away or closed it) fails every later
request at once with ``hedgerow.error.not_connected``; its peer gets
`Closed` with the WAMP close reason.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import re
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, RegisterOptions, SubscribeOptions

from hedgerow.transports._base import (
    Call,
    Closed,
    Event,
    Leave,
    Link,
    Peer,
    Publish,
    Register,
    Request,
    Subscribe,
    TransportRefused,
    Unregister,
    Unsubscribe,
)
from hedgerow.transports._event_loop import reject_future, resolve_future
from hedgerow.transports._uri import Invoke, Match, check_uri
from hedgerow.transports._wamp_answers import (
    NOT_CONNECTED,
    CallAnswer,
    DirectCallAnswer,
    answer_directly,
    describe_request,
    result_of,
    wamp_error,
)
from hedgerow.transports._wamp_endpoints import DETAILS, detailed_endpoint, plain_endpoint

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from hedgerow.transports._event_loop import EventLoop, WampEndpoint

__all__ = ["LinkState", "WampLink", "new_session"]

logger = logging.getLogger("hedgerow.transports")

TRANSPORT_LOST = "wamp.close.transport_lost"


class LinkState(enum.Enum):
    JOINING = "joining"
    OPEN = "open"
    LEAVING = "leaving"
    LEFT = "left"
    LOST = "lost"


def new_session(loop: EventLoop, link: WampLink, authenticators: list[Any]) -> Any:
    """A new autobahn Session of the loop's framework, reporting to `link`."""
    from autobahn.wamp.types import ComponentConfig  # noqa: PLC0415 - after the framework

    session = loop.session_type(_SessionMixin)(ComponentConfig(realm=link.realm))
    session.hedgerow_link = link
    for authenticator in authenticators:
        session.add_authenticator(authenticator)
    link.session = session
    return session


class _SessionMixin:
    """autobahn's Session, reporting to its `WampLink` (runs on the loop)."""

    hedgerow_link: WampLink

    def onJoin(self, details: Any) -> None:  # noqa: N802 - autobahn's name
        self.hedgerow_link._joined(details)

    def onLeave(self, details: Any) -> Any:  # noqa: N802 - autobahn's name
        self.hedgerow_link._left(details.reason, details.message)
        return super().onLeave(details)  # type: ignore[misc]

    def onDisconnect(self) -> Any:  # noqa: N802 - autobahn's name
        self.hedgerow_link._disconnected()
        return super().onDisconnect()  # type: ignore[misc]

    def onUserError(self, fail: Any, msg: str) -> None:  # noqa: N802 - autobahn's name
        # autobahn calls this for every error a callee answers with too; those are
        # the component session's answers, which it has logged already.
        answered = isinstance(getattr(fail, "value", None), ApplicationError)
        level = logging.DEBUG if answered else logging.WARNING
        logger.log(level, "WAMP session on %r: %s: %s", self.hedgerow_link.realm, msg, fail)


_SERIALIZER_ID = re.compile(r"^(msgpack|cbor|json)")


class WampLink(Link):
    """One autobahn session on a `WampTransport` (see the module docstring)."""

    def __init__(
        self,
        transport: WampEndpoint,
        realm: str,
        peer: Peer,
        loop: EventLoop,
    ) -> None:
        self.transport = transport
        self.realm = realm
        self.peer = peer
        self.loop = loop
        self.session: Any = None
        self.session_id = 0
        self.serializer = ""
        self.details: Any = None
        self.joined: Any = loop.create_future()
        self._left_future: Any = None
        self._state = LinkState.JOINING
        self._lost_reason: str | None = None
        self._pending: set[Any] = set()
        """Requests in flight: their futures (or sinks, answers) fail if the session is lost."""
        self._registrations: dict[int, Any] = {}
        self._subscriptions: dict[int, Any] = {}

    def __repr__(self) -> str:
        return (
            f"<WampLink session={self.session_id} realm={self.realm!r} "
            f"{self._state.value} via {self.transport.describe()}>"
        )

    @property
    def is_open(self) -> bool:
        return self._state is LinkState.OPEN

    # -- session events (on the loop) ----------------------------------------------

    def _joined(self, details: Any) -> None:
        if self._state is not LinkState.JOINING:
            return  # the join timed out (or the connection closed) before the WELCOME came
        self.session_id = details.session
        self.details = details
        serializer = getattr(
            getattr(self.session._transport, "_serializer", None), "SERIALIZER_ID", ""
        )
        match = _SERIALIZER_ID.match(str(serializer))
        self.serializer = match.group(1) if match else str(details.serializer or "")
        self._state = LinkState.OPEN
        self.loop.resolve(self.joined, self)

    def _left(self, reason: str, message: str | None) -> None:
        state = self._state
        if state is LinkState.JOINING:
            self._state = LinkState.LOST
            self.loop.reject(self.joined, ApplicationError(reason, message or reason))
            return
        if state is LinkState.LEAVING:
            self._state = LinkState.LEFT
            if self._left_future is not None:
                self.loop.resolve(self._left_future, None)
            return
        if state is LinkState.OPEN:
            self._lose(reason, message)

    def _disconnected(self) -> None:
        if self._state is LinkState.JOINING:
            self._connection_lost(None)
        elif self._state is LinkState.LEAVING:
            self._left("wamp.close.normal", None)
        elif self._state is LinkState.OPEN:
            self._lose(TRANSPORT_LOST, "connection lost")

    def _connection_lost(self, error: BaseException | None) -> None:
        """The connection closed; before the join, that fails it, saying why when known."""
        if self._state is not LinkState.JOINING:
            return
        self._state = LinkState.LOST
        msg = self.transport.tls_failure(self.loop, error) if error is not None else None
        failure: ApplicationError
        if msg is not None:
            failure = TransportRefused(NOT_CONNECTED, msg)
        else:
            msg = f"connection to {self.transport.describe()} closed before the session joined"
            failure = ApplicationError(NOT_CONNECTED, f"{msg}: {error}" if error else msg)
        failure.__cause__ = error
        self.loop.reject(self.joined, failure)

    def _lose(self, reason: str, message: str | None) -> None:
        self._state = LinkState.LOST
        self._lost_reason = reason
        pending, self._pending = self._pending, set()
        for future in pending:
            reject_future(future, self._not_connected("request in flight"))
        logger.info("WAMP session %s on %r closed: %s", self.session_id, self.realm, reason)
        self.peer.deliver(Closed(self.session_id, reason, message))

    def _not_connected(self, what: str) -> ApplicationError:
        msg = (
            f"{what}: session {self.session_id} on {self.realm!r} through "
            f"{self.transport.describe()} is not connected ({self._lost_reason or 'not joined'})"
        )
        return ApplicationError(NOT_CONNECTED, msg)

    # -- requests ------------------------------------------------------------------

    def handle(self, request: Request) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._state is not LinkState.OPEN:
            reject_future(future, self._closed_error(request))
            return future
        if self.loop.on_loop_thread():
            self._dispatch(request, future)  # an async component on the loop: no hop
            return future
        try:
            self.loop.call_soon_threadsafe(self._dispatch, request, future)
        except RuntimeError:
            reject_future(future, self._not_connected(describe_request(request)))
        return future

    def handle_here(self, request: Request, sink: Any) -> bool:
        """As `handle`, from the loop's own thread: the outcome goes to `sink` (its
        ``set_result`` and ``set_exception``, called on this thread) rather than to
        a future for any thread; a call's, as autobahn reads it (`CallAnswer`).
        False, and nothing done, elsewhere."""
        if not self.loop.on_loop_thread():
            return False
        self._dispatch(request, sink)
        return True

    def call_here(
        self,
        procedure: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: asyncio.Future[Any],
    ) -> bool:
        """A call without options from an async component on this link's own loop
        thread (its caller makes sure): its answer goes straight into `future`
        (`DirectCallAnswer`), as `handle_here` with a sink would put it there,
        in fewer steps. False, with nothing sent, when the link is not open or
        the URI is not one: `handle_here` then answers with the error."""
        if self._state is not LinkState.OPEN:
            return False
        if procedure not in _checked_procedures:
            try:
                check_uri(procedure, Match.EXACT, "procedure URI")
            except ApplicationError:
                return False
            if len(_checked_procedures) < _CHECKED_MAX:
                _checked_procedures.add(procedure)
        answer = DirectCallAnswer(self, future, procedure)
        session = self.session
        try:
            outcome = session.call(procedure, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the caller gets it, as through _dispatch
            future.set_exception(wamp_error(exc, Call(procedure, list(args), kwargs)))
            return True
        self._pending.add(answer)
        calls = session._call_reqs
        call = calls[next(reversed(calls))]
        if call.on_reply is outcome:
            call.on_reply = answer  # autobahn settles the answer as it reads the RESULT
        else:  # pragma: no cover - another autobahn: its future settles the answer
            self.loop.when_done(outcome, answer.set_result, answer.set_exception)
        return True

    def _closed_error(self, request: Request) -> ApplicationError:
        if self._state is LinkState.LOST:
            return self._not_connected(describe_request(request))
        if isinstance(request, Leave):
            return ApplicationError(ApplicationError.NO_SUCH_SESSION, "already left")
        msg = f"{describe_request(request)}: session {self.session_id} on {self.realm!r} has left"
        return ApplicationError(ApplicationError.NO_SUCH_SESSION, msg)

    def _dispatch(self, request: Request, future: concurrent.futures.Future[Any]) -> None:
        if self._state is not LinkState.OPEN:
            if isinstance(request, Leave) and self._state is not LinkState.LOST:
                resolve_future(future, None)
            else:
                reject_future(future, self._closed_error(request))
            return
        try:
            _HANDLERS[type(request)](self, request, future)
        except Exception as exc:  # noqa: BLE001 - every error goes back through the future
            reject_future(future, wamp_error(exc, request))

    def _track(
        self,
        outcome: Any,
        future: concurrent.futures.Future[Any],
        request: Request,
        convert: Callable[[Any], Any],
    ) -> None:
        """Complete `future` from what autobahn returned, `outcome` (on the loop)."""
        self._pending.add(future)

        def succeeded(value: Any) -> None:
            self._pending.discard(future)
            try:
                resolve_future(future, convert(value))
            except Exception as exc:  # noqa: BLE001
                reject_future(future, wamp_error(exc, request))

        def failed(error: BaseException) -> None:
            self._pending.discard(future)
            reject_future(future, self.request_error(error, request))

        self.loop.when_done(outcome, succeeded, failed)

    def request_error(self, error: BaseException, request: Request) -> BaseException:
        """What a request's future fails with when autobahn's fails with `error`."""
        if self.loop.is_cancellation(error):
            return ApplicationError(ApplicationError.CANCELED, describe_request(request))
        if self._state is LinkState.LOST:
            error = self._not_connected(describe_request(request))
        return wamp_error(error, request)

    def _call(self, request: Call, future: concurrent.futures.Future[Any]) -> None:

        check_uri(request.procedure, Match.EXACT, "procedure URI")
        user = request.options
        on_progress = None
        if request.on_progress is not None:
            relay = request.on_progress

            def on_progress(*args: Any, **kwargs: Any) -> None:
                relay(list(args), kwargs)

        timeout = getattr(user, "timeout", None) if user else None
        if timeout is not None and timeout.__class__ is not int:
            # autobahn's CallOptions takes a float; its CALL message, only an int
            # (milliseconds on the wire, as WAMP says): a bare AssertionError otherwise.
            msg = (
                f"call to {request.procedure!r}: CallOptions timeout must be an int "
                f"(milliseconds, as WAMP's CALL carries it), not {timeout!r}"
            )
            raise ApplicationError(ApplicationError.INVALID_ARGUMENT, msg)
        if on_progress is None and timeout is None:  # (no options: what autobahn sends then)
            outcome = self.session.call(request.procedure, *request.args, **request.kwargs)
        else:
            options = CallOptions(on_progress=on_progress, timeout=timeout)
            outcome = self.session.call(
                request.procedure, *request.args, options=options, **request.kwargs
            )
        if future.__class__ is not concurrent.futures.Future and answer_directly(
            self.session, outcome, CallAnswer(self, future, request)
        ):
            self._pending.add(future)  # (handle_here's sink, on this thread)
            return
        self._track(outcome, future, request, result_of)

    def _publish(self, request: Publish, future: concurrent.futures.Future[Any]) -> None:
        acknowledge = bool(request.options is not None and request.options.acknowledge)
        if not acknowledge:
            try:
                check_uri(request.topic, Match.EXACT, "topic URI")
                self.session.publish(
                    request.topic, *request.args, options=request.options, **request.kwargs
                )
            except Exception:
                logger.debug("unacknowledged publish to %r failed", request.topic, exc_info=True)
            resolve_future(future, None)
            return
        check_uri(request.topic, Match.EXACT, "topic URI")
        outcome = self.session.publish(
            request.topic, *request.args, options=request.options, **request.kwargs
        )
        self._track(outcome, future, request, lambda publication: publication.id)

    def _register(self, request: Register, future: concurrent.futures.Future[Any]) -> None:

        user = request.options
        match = Match.parse(getattr(user, "match", None), request.procedure)
        invoke = Invoke.parse(getattr(user, "invoke", None), request.procedure)
        check_uri(request.procedure, match, "procedure URI")
        # autobahn makes a call's details only for an endpoint that asks for them.
        known: list[int] | None = None
        if match is Match.EXACT and not request.details:
            endpoint, known = plain_endpoint(self, request.procedure)
        else:
            endpoint = detailed_endpoint(self, request.procedure)
        options = RegisterOptions(
            match=match.value,
            invoke=invoke.value,
            concurrency=getattr(user, "concurrency", None),
            details_arg=None if known is not None else DETAILS,
        )
        outcome = self.session.register(endpoint, request.procedure, options=options)

        def registered(registration: Any) -> int:
            self._registrations[registration.id] = registration
            if known is not None:
                known[0] = int(registration.id)
            return int(registration.id)

        self._track(outcome, future, request, registered)

    def _subscribe(self, request: Subscribe, future: concurrent.futures.Future[Any]) -> None:

        match = Match.parse(getattr(request.options, "match", None), request.topic)
        check_uri(request.topic, match, "topic URI")
        options = SubscribeOptions(match=match.value, details_arg=DETAILS)
        topic, peer = request.topic, self.peer

        def handler(*args: Any, **kwargs: Any) -> None:
            details = kwargs.pop(DETAILS)
            peer.deliver(
                Event(
                    session=self.session_id,
                    subscription=details.subscription.id,
                    topic=details.topic or topic,
                    publication=details.publication,
                    args=list(args),
                    kwargs=kwargs,
                    publisher=details.publisher,
                )
            )

        outcome = self.session.subscribe(handler, request.topic, options=options)

        def subscribed(subscription: Any) -> int:
            self._subscriptions[subscription.id] = subscription
            return int(subscription.id)

        self._track(outcome, future, request, subscribed)

    def _unregister(self, request: Unregister, future: concurrent.futures.Future[Any]) -> None:
        registration = self._registrations.pop(request.registration, None)
        if registration is None or not registration.active:
            msg = f"no registration {request.registration} in session {self.session_id}"
            raise ApplicationError(ApplicationError.NO_SUCH_REGISTRATION, msg)
        self._track(registration.unregister(), future, request, lambda _: None)

    def _unsubscribe(self, request: Unsubscribe, future: concurrent.futures.Future[Any]) -> None:
        subscription = self._subscriptions.pop(request.subscription, None)
        if subscription is None or not subscription.active:
            msg = f"no subscription {request.subscription} in session {self.session_id}"
            raise ApplicationError(ApplicationError.NO_SUCH_SUBSCRIPTION, msg)
        self._track(subscription.unsubscribe(), future, request, lambda _: None)

    def _leave(self, request: Leave, future: concurrent.futures.Future[Any]) -> None:
        self._state = LinkState.LEAVING
        self._left_future = self.loop.create_future()
        try:
            self.session.leave(request.reason, request.message)
        except Exception:  # noqa: BLE001 - the connection is gone already: we have left
            self._state = LinkState.LEFT
            resolve_future(future, None)
            return
        self.loop.when_done(
            self._left_future,
            lambda _: resolve_future(future, None),
            lambda _: resolve_future(future, None),
        )


_checked_procedures: set[str] = set()
"""Procedure URIs a direct call found valid (`WampLink.call_here`): checked once."""
_CHECKED_MAX = 10_000


_HANDLERS: dict[type[Any], Callable[[WampLink, Any, concurrent.futures.Future[Any]], None]] = {
    Call: WampLink._call,
    Publish: WampLink._publish,
    Register: WampLink._register,
    Subscribe: WampLink._subscribe,
    Unregister: WampLink._unregister,
    Unsubscribe: WampLink._unsubscribe,
    Leave: WampLink._leave,
}
