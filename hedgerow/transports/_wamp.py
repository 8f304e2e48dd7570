# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""The WAMP transport: autobahn sessions to a WAMP router (Crossbar.io), on an event-loop thread.

The second implementation of the seam (`hedgerow.transports._base`). Each
`WampTransport.join` opens one autobahn session over its own connection
(WebSocket or RawSocket, over TCP or a Unix socket, TLS when asked: see
`WampTransport.tls_request`), as autobahn's Component does. Every session
of the process runs on the process's one `EventLoop` (asyncio by default,
Twisted after ``hedgerow.use_framework("twisted")``), on a daemon thread
started on first use (``hedgerow-wamp``); the code here is the same for both.

Threads: `Link.handle` may be called from any thread; it schedules the
request on the loop (``call_soon_threadsafe``) and returns a
`concurrent.futures.Future` that the loop completes. What arrives (an
invocation, an event, the session's end) is handed to the session's peer
on the loop thread; a component's peer only queues it for its actor. A
callee's answer (`Reply`) hops back onto the loop.

Settings are validated as autobahn's ``_create_transport`` validates them
(the same keys, rules and messages, minus a few of its slips: a float
``timeout`` is fine, a RawSocket ``serializer`` is checked by name).
Serializers: WebSocket offers a list (msgpack, cbor, json by default) and the
router picks the first it speaks, in the offered order; RawSocket carries one
(``serializer``, msgpack by default; autobahn's default is cbor).

A session that is lost (the router went away or closed it) fails every later
request at once with ``hedgerow.error.not_connected``; its peer gets
`Closed` with the WAMP close reason. Joining again is the component's job, with
this transport's retry settings (`WampTransport.retry`), for its first join as
for a reconnect; a failed TLS handshake is a `TransportRefused`, which no
retry mends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import enum
import logging
import re
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions, SubscribeOptions

from hedgerow.transports._asyncio_loop import AsyncioLoop
from hedgerow.transports._base import (
    Call,
    Closed,
    Event,
    Invocation,
    Leave,
    Link,
    Peer,
    Publish,
    Register,
    Reply,
    Request,
    Result,
    RetryPolicy,
    Subscribe,
    Transport,
    TransportRefused,
    Unregister,
    Unsubscribe,
    register_transport_type,
)
from hedgerow.transports._event_loop import EventLoop, reject_future, resolve_future
from hedgerow.transports._framework import event_loop
from hedgerow.transports._serializers import SERIALIZERS, negotiate
from hedgerow.transports._twisted_tls import is_twisted_tls
from hedgerow.transports._uri import Invoke, Match, check_uri
from hedgerow.transports._wamp_settings import (
    DEFAULT_TIMEOUT,
    RETRY_KEYS,
    check_transport_settings,
)

if TYPE_CHECKING:
    import asyncio

__all__ = ["NOT_CONNECTED", "WampLink", "WampTransport"]

logger = logging.getLogger("hedgerow.transports")

NOT_CONNECTED = "hedgerow.error.not_connected"
"""The error of a request on a session whose connection was lost (or never made)."""

TRANSPORT_LOST = "wamp.close.transport_lost"

_DETAILS = "_hedgerow_details"


# -- the transport --------------------------------------------------------------


class WampTransport(Transport):
    """A WAMP router reached over WebSocket or RawSocket, with autobahn's transport settings.

    Build it from a settings dict (``{"type": "websocket", "url": ...}``, as
    autobahn's Component takes it) or a URL. Each `join` makes its own
    connection and session. Raises ValueError for invalid settings.
    """

    def __init__(self, settings: Mapping[str, Any] | str) -> None:
        if isinstance(settings, str):
            kind = "rawsocket" if settings.startswith(("rs://", "rss://")) else "websocket"
            settings = {"type": kind, "url": settings}
        self.settings = check_transport_settings(settings)
        self.kind: str = self.settings["type"]
        self.url: str | None = self.settings["url"]
        self.endpoint: dict[str, Any] = self.settings["endpoint"]
        self.offered_serializers: tuple[str, ...] = tuple(self.settings["serializers"])
        explicit = "serializers" in settings or "serializer" in settings
        self._allowed = self.offered_serializers if explicit else SERIALIZERS
        self.retry = RetryPolicy(**{k: self.settings[k] for k in RETRY_KEYS if k in self.settings})
        self.timeout = float(self.endpoint.get("timeout", DEFAULT_TIMEOUT))

    def describe(self) -> str:
        where = self.url or (
            f"unix:{self.endpoint['path']}"
            if self.endpoint["type"] == "unix"
            else f"{self.endpoint['host']}:{self.endpoint['port']}"
        )
        return f"{self.kind} {where}"

    def __repr__(self) -> str:
        return f"<WampTransport {self.describe()}>"

    def handler_loop(self) -> asyncio.AbstractEventLoop | None:
        """The ``hedgerow-wamp`` loop itself on asyncio (None on Twisted: a reactor
        runs no coroutines, so async components run on hedgerow's loop)."""
        loop = event_loop()
        return loop.loop if isinstance(loop, AsyncioLoop) else None

    def join(
        self,
        realm: str,
        peer: Peer,
        *,
        serializers: Sequence[str] = SERIALIZERS,
        authentication: Mapping[str, Any] | None = None,
    ) -> concurrent.futures.Future[Link]:
        """Connect and join `realm`; a future of the `WampLink`.

        It fails with `ApplicationError` as the router answers
        (``wamp.error.not_authorized``, ``wamp.error.no_such_realm``), with
        ``hedgerow.error.not_connected`` when the router cannot be reached or
        the connection drops before the join (a TLS handshake that fails
        says so, and why: an untrusted certificate names what it was checked
        against), and with ValueError for serializers, authentication or a
        TLS ``trust_root`` that cannot be used.
        """
        try:
            offered = self._offer(serializers)
            authenticators = _authenticators(authentication or {})
            loop = event_loop()
            tls = loop.tls(self)
        except Exception as exc:  # noqa: BLE001 - reported through the future
            failed: concurrent.futures.Future[Link] = concurrent.futures.Future()
            failed.set_exception(exc)
            return failed
        return loop.submit(
            lambda: self._join(
                loop, realm, peer, offered=offered, authenticators=authenticators, tls=tls
            )
        )

    def _offer(self, serializers: Sequence[str]) -> list[str]:
        """What to offer: the component's list as far as this transport allows."""
        mine = self._allowed
        supported = [s for s in serializers if s in mine]
        if not supported:
            negotiate(serializers, mine, where=f"transport {self.describe()}")
        return supported if self.kind == "websocket" else supported[:1]

    async def _join(
        self,
        loop: EventLoop,
        realm: str,
        peer: Peer,
        *,
        offered: list[str],
        authenticators: list[Any],
        tls: Any,
    ) -> Link:
        link = WampLink(self, realm, peer, loop)
        session = _Session(loop, link, authenticators)
        factory = self._factory(loop, session, offered, link)
        try:
            protocol = await loop.with_timeout(loop.connect(factory, self, tls), self.timeout)
        except Exception as exc:
            failure = self._connect_failure(loop, exc)
            if failure is None:
                raise
            raise failure from exc
        try:
            await loop.with_timeout(link.joined, self.timeout)
        except TimeoutError:
            link._state = _State.LOST  # a WELCOME that comes now is too late
            loop.abort(protocol)  # the router may hold the connection open without a word
            msg = (
                f"no answer to joining {realm!r} through {self.describe()} within {self.timeout} s"
            )
            raise ApplicationError(NOT_CONNECTED, msg) from None
        return link

    def _connect_failure(self, loop: EventLoop, exc: BaseException) -> ApplicationError | None:
        """Why connecting failed, as the join's error; None for errors that are not about it."""
        tls = self.tls_failure(loop, exc)
        if tls is not None:
            return TransportRefused(NOT_CONNECTED, tls)
        if isinstance(exc, TimeoutError):
            msg = f"cannot connect to {self.describe()}: no connection within {self.timeout} s"
            return ApplicationError(NOT_CONNECTED, msg)
        if isinstance(exc, OSError):  # ConnectionError included
            msg = f"cannot connect to {self.describe()}: {str(exc) or type(exc).__name__}"
            return ApplicationError(NOT_CONNECTED, msg)
        return None

    def _factory(self, loop: EventLoop, session: Any, offered: list[str], link: WampLink) -> Any:
        from autobahn.wamp.serializer import SERID_TO_SER  # noqa: PLC0415 - after ensure_framework

        serializers = [SERID_TO_SER[name]() for name in offered]
        if self.kind == "websocket":
            factory = loop.client_factory(
                "websocket",
                lambda: session,
                link._connection_lost,
                url=self.url,
                serializers=serializers,
                proxy=self.settings["proxy"],
                headers=self.settings["headers"],
            )
        else:
            factory = loop.client_factory(
                "rawsocket", lambda: session, link._connection_lost, serializer=serializers[0]
            )
        for key, value in self.settings["options"].items():
            try:
                factory.setProtocolOptions(**{key: value})
            except (TypeError, KeyError):
                try:
                    factory.setProtocolOptions(**{_camel_case(key): value})
                except (TypeError, KeyError):
                    msg = f"Unknown {self.kind} transport option: {key}={value}"
                    raise ValueError(msg) from None
        return factory

    def tls_context(self) -> tuple[ssl.SSLContext | None, str | None]:
        """The TLS context and server name to connect with; (None, None) without TLS.

        As autobahn's asyncio Component reads the endpoint's ``tls``: a dict
        gives a default client context (verifying the certificate and the
        host name) trusting ``trust_root`` (a PEM file of CA certificates;
        the system's store without it) and checking ``hostname`` (the
        endpoint's host by default); ``True`` is the same with the system's
        store; an `ssl.SSLContext` is used as it is. Called on each connect,
        so a renewed CA file is read again. Raises ValueError naming
        ``trust_root`` if that file cannot be loaded.
        """
        request = self.tls_request()
        if request is None:
            return None, None
        tls, hostname, trust_root = request
        if isinstance(tls, ssl.SSLContext):
            return tls, hostname
        if is_twisted_tls(tls):
            msg = (
                f"transport {self.describe()}: the endpoint's 'tls' holds Twisted's TLS options, "
                "which only Twisted can use: call hedgerow.use_framework('twisted') first, or "
                "give a dict, True or an ssl.SSLContext"
            )
            raise ValueError(msg)
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=trust_root)
        except (OSError, ssl.SSLError) as exc:
            raise self.unreadable_trust_root(trust_root, exc) from exc
        return context, hostname

    def tls_request(self) -> tuple[Any, str, Any] | None:
        """What the endpoint asks of TLS: (its ``tls`` setting, the name to check, the
        ``trust_root`` or None); None without TLS (no ``tls``, a Unix socket, a proxy)."""
        endpoint = self.endpoint
        tls = endpoint.get("tls") if endpoint["type"] == "tcp" else None
        if tls is None or tls is False or self.settings["proxy"] is not None:
            return None
        host: str = endpoint["host"]
        if isinstance(tls, Mapping):
            return tls, tls.get("hostname", host), tls.get("trust_root")
        return tls, host, None

    def unreadable_trust_root(self, trust_root: Any, exc: BaseException) -> ValueError:
        """The error for a ``trust_root`` file that cannot be loaded, naming it."""
        msg = (
            f"cannot load the trusted CA certificates of {self.describe()} from "
            f"'trust_root' ({trust_root}): {exc}"
        )
        return ValueError(msg)

    def tls_failure(self, loop: EventLoop, exc: BaseException) -> str | None:
        """`exc` as a failed TLS handshake, in words that say what to change; None when
        it is something else."""
        problem = loop.tls_problem(exc)
        if problem is None:
            return None
        failed = f"TLS handshake with {self.describe()} failed"
        reason = problem.reason
        if problem.kind == "other":
            return f"{failed}: {reason}"
        if problem.kind == "hostname":
            return (
                f"{failed}: the router's certificate is not valid for the name checked "
                f'({reason}); set the endpoint\'s "tls": {{"hostname": ...}} to a name '
                "it was issued for"
            )
        tls = self.endpoint.get("tls")
        if isinstance(tls, Mapping) and tls.get("trust_root") is not None:
            trusted = f"the CA certificates in {tls['trust_root']}"
        elif isinstance(tls, ssl.SSLContext):
            trusted = "the given SSLContext"
        elif tls is not None and not isinstance(tls, (bool, Mapping)):
            trusted = "the given TLS options"
        else:
            trusted = "the system's trust store"
        return (
            f"{failed}: the router's certificate is not trusted ({reason}); it was checked "
            f"against {trusted}. Trust its CA with the endpoint's "
            f'"tls": {{"trust_root": "<ca.pem>"}} or {loop.tls_hint}'
        )


def _camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _authenticators(authentication: Mapping[str, Any]) -> list[Any]:
    """autobahn authenticators from a component's ``authentication`` dict (autobahn's format)."""
    from autobahn.wamp.auth import create_authenticator  # noqa: PLC0415
    from autobahn.wamp.interfaces import IAuthenticator  # noqa: PLC0415

    made = []
    for method, config in authentication.items():
        if isinstance(config, IAuthenticator):
            made.append(config)
            continue
        if not isinstance(config, Mapping):
            msg = f"authentication[{method!r}] must be a dict of settings, not {type(config)}"
            raise ValueError(msg)  # noqa: TRY004
        try:
            made.append(create_authenticator(method, **config))
        except (TypeError, ValueError) as exc:
            msg = f"authentication[{method!r}]: {exc}"
            raise ValueError(msg) from exc
    return made


# -- the session and its link ---------------------------------------------------


class _State(enum.Enum):
    JOINING = "joining"
    OPEN = "open"
    LEAVING = "leaving"
    LEFT = "left"
    LOST = "lost"


def _Session(loop: EventLoop, link: WampLink, authenticators: list[Any]) -> Any:  # noqa: N802
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


class _WampReply(Reply):
    """Answers one invocation: hops onto the loop and resolves autobahn's future there."""

    __slots__ = ("_answered", "_future", "_lock", "_loop", "_progress")

    def __init__(
        self,
        loop: EventLoop,
        future: Any,
        progress: Callable[..., None] | None,
    ) -> None:
        self._loop = loop
        self._future = future
        self._progress = progress
        self._lock = threading.Lock()
        self._answered = False

    def _final(self) -> bool:
        with self._lock:
            if self._answered:
                return False
            self._answered = True
            return True

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop.on_loop_thread():
            fn(*args)  # answered by an async component on the loop: no hop
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to answer
            self._loop.call_soon_threadsafe(fn, *args)

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._progress is None or self._answered:
            return
        self._soon(self._send_progress, args, kwargs)

    def _send_progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._loop.done(self._future) or self._progress is None:
            return
        try:
            self._progress(*args, **kwargs)
        except Exception:
            logger.debug("progressive result not sent", exc_info=True)

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._final():
            self._soon(self._loop.resolve, self._future, CallResult(*args, **kwargs))

    def error(self, error: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._final():
            self._soon(self._loop.reject, self._future, ApplicationError(error, *args, **kwargs))


_SERIALIZER_ID = re.compile(r"^(msgpack|cbor|json)")


class WampLink(Link):
    """One autobahn session on a `WampTransport` (see the module docstring)."""

    def __init__(
        self,
        transport: WampTransport,
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
        self._state = _State.JOINING
        self._lost_reason: str | None = None
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._registrations: dict[int, Any] = {}
        self._subscriptions: dict[int, Any] = {}

    def __repr__(self) -> str:
        return (
            f"<WampLink session={self.session_id} realm={self.realm!r} "
            f"{self._state.value} via {self.transport.describe()}>"
        )

    @property
    def is_open(self) -> bool:
        return self._state is _State.OPEN

    # -- session events (on the loop) ----------------------------------------------

    def _joined(self, details: Any) -> None:
        if self._state is not _State.JOINING:
            return  # the join timed out (or the connection closed) before the WELCOME came
        self.session_id = details.session
        self.details = details
        serializer = getattr(
            getattr(self.session._transport, "_serializer", None), "SERIALIZER_ID", ""
        )
        match = _SERIALIZER_ID.match(str(serializer))
        self.serializer = match.group(1) if match else str(details.serializer or "")
        self._state = _State.OPEN
        self.loop.resolve(self.joined, self)

    def _left(self, reason: str, message: str | None) -> None:
        state = self._state
        if state is _State.JOINING:
            self._state = _State.LOST
            self.loop.reject(self.joined, ApplicationError(reason, message or reason))
            return
        if state is _State.LEAVING:
            self._state = _State.LEFT
            if self._left_future is not None:
                self.loop.resolve(self._left_future, None)
            return
        if state is _State.OPEN:
            self._lose(reason, message)

    def _disconnected(self) -> None:
        if self._state is _State.JOINING:
            self._connection_lost(None)
        elif self._state is _State.LEAVING:
            self._left("wamp.close.normal", None)
        elif self._state is _State.OPEN:
            self._lose(TRANSPORT_LOST, "connection lost")

    def _connection_lost(self, error: BaseException | None) -> None:
        """The connection closed; before the join, that fails it, saying why when known."""
        if self._state is not _State.JOINING:
            return
        self._state = _State.LOST
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
        self._state = _State.LOST
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
        if self._state is not _State.OPEN:
            reject_future(future, self._closed_error(request))
            return future
        if self.loop.on_loop_thread():
            self._dispatch(request, future)  # an async component on the loop: no hop
            return future
        try:
            self.loop.call_soon_threadsafe(self._dispatch, request, future)
        except RuntimeError:
            reject_future(future, self._not_connected(_describe(request)))
        return future

    def _closed_error(self, request: Request) -> ApplicationError:
        if self._state is _State.LOST:
            return self._not_connected(_describe(request))
        if isinstance(request, Leave):
            return ApplicationError(ApplicationError.NO_SUCH_SESSION, "already left")
        msg = f"{_describe(request)}: session {self.session_id} on {self.realm!r} has left"
        return ApplicationError(ApplicationError.NO_SUCH_SESSION, msg)

    def _dispatch(self, request: Request, future: concurrent.futures.Future[Any]) -> None:
        if self._state is not _State.OPEN:
            if isinstance(request, Leave) and self._state is not _State.LOST:
                resolve_future(future, None)
            else:
                reject_future(future, self._closed_error(request))
            return
        try:
            _HANDLERS[type(request)](self, request, future)
        except Exception as exc:  # noqa: BLE001 - every error goes back through the future
            reject_future(future, _wamp_error(exc, request))

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
                reject_future(future, _wamp_error(exc, request))

        def failed(error: BaseException) -> None:
            self._pending.discard(future)
            if self.loop.is_cancellation(error):
                reject_future(
                    future, ApplicationError(ApplicationError.CANCELED, _describe(request))
                )
                return
            if self._state is _State.LOST:
                error = self._not_connected(_describe(request))
            reject_future(future, _wamp_error(error, request))

        self.loop.when_done(outcome, succeeded, failed)

    def _call(self, request: Call, future: concurrent.futures.Future[Any]) -> None:

        check_uri(request.procedure, Match.EXACT, "procedure URI")
        user = request.options
        on_progress = None
        if request.on_progress is not None:
            relay = request.on_progress

            def on_progress(*args: Any, **kwargs: Any) -> None:
                relay(list(args), kwargs)

        options = CallOptions(
            on_progress=on_progress, timeout=getattr(user, "timeout", None) if user else None
        )
        outcome = self.session.call(
            request.procedure, *request.args, options=options, **request.kwargs
        )
        self._track(outcome, future, request, _result_of)

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
        options = RegisterOptions(
            match=match.value,
            invoke=invoke.value,
            concurrency=getattr(user, "concurrency", None),
            details_arg=_DETAILS,
        )
        endpoint = self._endpoint(request.procedure)
        outcome = self.session.register(endpoint, request.procedure, options=options)

        def registered(registration: Any) -> int:
            self._registrations[registration.id] = registration
            return int(registration.id)

        self._track(outcome, future, request, registered)

    def _endpoint(self, procedure: str) -> Callable[..., Any]:
        loop, peer = self.loop, self.peer

        def endpoint(*args: Any, **kwargs: Any) -> Any:
            details = kwargs.pop(_DETAILS)
            answer = loop.create_future()
            reply = _WampReply(loop, answer, details.progress)
            peer.deliver(
                Invocation(
                    session=self.session_id,
                    registration=details.registration.id,
                    procedure=details.procedure or procedure,
                    args=list(args),
                    kwargs=kwargs,
                    reply=reply,
                    receive_progress=details.progress is not None,
                    caller=details.caller,
                    caller_authid=details.caller_authid,
                    caller_authrole=details.caller_authrole,
                )
            )
            return answer

        return endpoint

    def _subscribe(self, request: Subscribe, future: concurrent.futures.Future[Any]) -> None:

        match = Match.parse(getattr(request.options, "match", None), request.topic)
        check_uri(request.topic, match, "topic URI")
        options = SubscribeOptions(match=match.value, details_arg=_DETAILS)
        topic, peer = request.topic, self.peer

        def handler(*args: Any, **kwargs: Any) -> None:
            details = kwargs.pop(_DETAILS)
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
        self._state = _State.LEAVING
        self._left_future = self.loop.create_future()
        try:
            self.session.leave(request.reason, request.message)
        except Exception:  # noqa: BLE001 - the connection is gone already: we have left
            self._state = _State.LEFT
            resolve_future(future, None)
            return
        self.loop.when_done(
            self._left_future,
            lambda _: resolve_future(future, None),
            lambda _: resolve_future(future, None),
        )


_HANDLERS: dict[type[Any], Callable[[WampLink, Any, concurrent.futures.Future[Any]], None]] = {
    Call: WampLink._call,
    Publish: WampLink._publish,
    Register: WampLink._register,
    Subscribe: WampLink._subscribe,
    Unregister: WampLink._unregister,
    Unsubscribe: WampLink._unsubscribe,
    Leave: WampLink._leave,
}


def _describe(request: Request) -> str:
    if isinstance(request, Call):
        return f"call to {request.procedure!r}"
    if isinstance(request, Publish):
        return f"publish to {request.topic!r}"
    if isinstance(request, Register):
        return f"register {request.procedure!r}"
    if isinstance(request, Subscribe):
        return f"subscribe to {request.topic!r}"
    return type(request).__name__.lower()


def _result_of(value: Any) -> Result:

    if isinstance(value, CallResult):
        return Result(list(value.results), dict(value.kwresults))
    if value is None:
        return Result([], {})
    return Result([value], {})


def _wamp_error(exc: BaseException, request: Request) -> BaseException:
    """What a request's future fails with: an `ApplicationError` with a WAMP URI."""
    if isinstance(exc, ApplicationError):
        if exc.error == ApplicationError.CANCELED and isinstance(request, Call):
            # The router's words ("callee disconnected from in-flight request")
            # do not say which call: name it, as every hedgerow error does.
            detail = exc.args[0] if exc.args else "canceled"
            msg = f"{_describe(request)} was cancelled: {detail}"
            return ApplicationError(exc.error, msg, *exc.args[1:], **(exc.kwargs or {}))
        return exc
    from autobahn.wamp.exception import (  # noqa: PLC0415
        InvalidUriError,
        ProtocolError,
        SerializationError,
        TransportLost,
    )

    what = _describe(request)
    if isinstance(exc, TransportLost):
        return ApplicationError(NOT_CONNECTED, f"{what}: the connection was lost")
    if isinstance(exc, (SerializationError, TypeError)) and isinstance(request, (Call, Publish)):
        return ApplicationError(
            ApplicationError.INVALID_PAYLOAD, f"{what}: the payload cannot be serialized: {exc}"
        )
    if isinstance(exc, (InvalidUriError, ProtocolError)):
        return ApplicationError(ApplicationError.INVALID_URI, f"{what}: {exc}")
    return exc


register_transport_type("websocket", WampTransport)
register_transport_type("rawsocket", WampTransport)
