"""The transport seam: how a component's session talks to a WAMP router.

Three small pieces, in the spirit of httpx's one-method transport:

- `Transport.join(realm, peer, ...)` opens a session on a realm and returns
  (a future of) a `Link`;
- `Link.handle(request)` sends one request (`Call`, `Register`, `Unregister`,
  `Subscribe`, `Unsubscribe`, `Publish`, `Leave`) and returns a
  `concurrent.futures.Future` of its answer; it never blocks, so a transport
  may answer from another thread (``asyncio.run_coroutine_threadsafe`` gives
  exactly such a future);
- `Peer.deliver(message)` is how the transport hands the session what
  arrives for it (`Invocation`, `Event`, `Closed`), from the transport's own
  thread: the peer only queues it (a component puts it in its actor inbox).

Payloads travel as WAMP does, as ``args`` (a list) and ``kwargs`` (a dict);
errors as `autobahn.wamp.exception.ApplicationError` (an error URI with args
and kwargs). The in-process router is the first implementation; the WAMP
transport (an autobahn session on an event-loop thread) is the second: its
``handle`` schedules the autobahn call on the loop and completes the future
from there, and its endpoints and event handlers call ``peer.deliver``.

Transport settings are resolved by `resolve_transports`, which maps a
``type`` to a factory (`register_transport_type`), so tree files and
autobahn-style dicts name transports the same way.
"""

from __future__ import annotations

import abc
import importlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from autobahn.wamp.exception import ApplicationError

from hedgerow.transports._serializers import DEFAULT_SERIALIZERS, check_serializers

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

    from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions

__all__ = [
    "Call",
    "Closed",
    "Event",
    "Invocation",
    "Leave",
    "Link",
    "Peer",
    "Publish",
    "Register",
    "Reply",
    "Request",
    "Result",
    "RetryPolicy",
    "Subscribe",
    "Transport",
    "TransportConfig",
    "TransportRefused",
    "Unregister",
    "Unsubscribe",
    "join_error_is_permanent",
    "register_transport_type",
    "resolve_transports",
]

CLOSE_NORMAL = "wamp.close.normal"
"""The reason of a clean leave (WAMP's GOODBYE reason)."""


# -- requests: session -> transport ----------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """Call `procedure`; the answer is a `Result`, or an `ApplicationError`.

    `on_progress(args, kwargs)` receives progressive results, on the
    transport's thread, always before the final answer is set.
    """

    procedure: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: CallOptions | None = None
    on_progress: Callable[[list[Any], dict[str, Any]], None] | None = None


@dataclass(frozen=True, slots=True)
class Register:
    """Register `procedure`; the answer is the registration id (an int)."""

    procedure: str
    options: RegisterOptions | None = None
    details: bool = True
    """False: the registering session needs no details of its invocations (their
    ``receive_progress``, ``caller``, ``caller_authid``, ``caller_authrole``), so
    a transport may leave them out (the WAMP transport then asks autobahn for
    none, for a registration of an exact URI)."""


@dataclass(frozen=True, slots=True)
class Unregister:
    """Drop a registration of this session; the answer is None."""

    registration: int


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Subscribe to `topic`; the answer is the subscription id (an int)."""

    topic: str
    options: SubscribeOptions | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Drop a subscription of this session; the answer is None."""

    subscription: int


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish an event; the answer is the publication id with ``acknowledge``, else None.

    Without ``acknowledge`` the answer is None at once and errors are not
    reported (as WAMP: an unacknowledged publish gets no reply).
    """

    topic: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    options: PublishOptions | None = None


@dataclass(frozen=True, slots=True)
class Leave:
    """Leave the realm; the link is closed afterwards and the answer is None."""

    reason: str = CLOSE_NORMAL
    message: str | None = None


Request = Call | Register | Unregister | Subscribe | Unsubscribe | Publish | Leave


@dataclass(frozen=True, slots=True)
class Result:
    """A call's answer as it travels: WAMP's ``args`` and ``kwargs``."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


# -- deliveries: transport -> session ---------------------------------------


class Reply(abc.ABC):
    """How a callee answers one `Invocation`: progress any number of times,
    then `result` or `error` once. Thread-safe; answers after the first final
    one (or after the call was cancelled) are ignored. Never raises for a lost
    caller."""

    @abc.abstractmethod
    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def error(self, error: str, args: list[Any], kwargs: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Invocation:
    """A call for one of the session's registrations; answer it through `reply`."""

    session: int
    registration: int
    procedure: str
    args: list[Any]
    kwargs: dict[str, Any]
    reply: Reply
    receive_progress: bool = False
    caller: int | None = None
    """The caller's session id, its authid and authrole (as the router discloses them)."""
    caller_authid: str | None = None
    caller_authrole: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """An event for one of the session's subscriptions."""

    session: int
    subscription: int
    topic: str
    publication: int
    args: list[Any]
    kwargs: dict[str, Any]
    publisher: int | None = None


@dataclass(frozen=True, slots=True)
class Closed:
    """The session ended without a `Leave` from this side (router closed, link lost)."""

    session: int
    reason: str
    message: str | None = None


class Peer(Protocol):
    """The session's side of a link: where the transport delivers what arrives.

    `deliver` is called on the transport's thread (for the in-process router,
    the sender's thread; for the WAMP transport, its event loop's). It must
    return at once and must not raise: it only queues the message.
    """

    def deliver(self, message: Invocation | Event | Closed) -> None: ...


NOT_AT_ONCE: Any = object()
"""What a peer's optional ``invoke_now(session, registration, procedure, args, kwargs)``
returns when it cannot run the endpoint at once, on the transport's loop thread
(the invocation is then delivered as any other). Otherwise ``invoke_now`` returns
what the endpoint answers with (a value, or a future of it on that loop) or raises
the `ApplicationError` to answer with (see `hedgerow.components._component_inline`)."""


class Link(abc.ABC):
    """One joined session on a transport."""

    session_id: int
    realm: str
    serializer: str
    """The serializer negotiated at join."""

    @abc.abstractmethod
    def handle(self, request: Request) -> concurrent.futures.Future[Any]:
        """Send `request`; a future of its answer (see each request type).

        Never blocks. The future is a `concurrent.futures.Future`, so an answer
        can come from any thread and a session can react with a done-callback.
        Errors come back through it as `ApplicationError` with a WAMP error URI;
        a link that left fails every request with ``wamp.error.no_such_session``,
        one whose connection was lost with ``hedgerow.error.not_connected``.
        """

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How a component reconnects after its session on a transport was lost.

    autobahn's transport retry settings, with its defaults: the first attempt
    after a loss is immediate, later ones wait ``initial_retry_delay *
    retry_delay_growth**n`` (with jitter, capped at `max_retry_delay`);
    ``max_retries=-1`` retries for ever. A successful join resets the count.
    """

    max_retries: int = -1
    initial_retry_delay: float = 1.5
    max_retry_delay: float = 300.0
    retry_delay_growth: float = 1.5
    retry_delay_jitter: float = 0.1


class TransportRefused(ApplicationError):
    """A join that failed in a way no later attempt mends (a TLS certificate that is
    not trusted, or not issued for the name checked); its URI stays the transport's
    (``hedgerow.error.not_connected``), its message says what to change."""


REFUSALS = frozenset(
    {
        ApplicationError.NOT_AUTHORIZED,
        ApplicationError.AUTHENTICATION_FAILED,
        ApplicationError.AUTHORIZATION_FAILED,
        ApplicationError.NO_AUTH_METHOD,
        ApplicationError.NO_SUCH_PRINCIPAL,
        ApplicationError.NO_SUCH_REALM,
        ApplicationError.NO_SUCH_ROLE,
    }
)
"""The router's answers to a join that trying again with the same settings cannot change."""


def join_error_is_permanent(error: BaseException) -> bool:
    """hedgerow's default ``is_fatal``: is `error`, from joining, there to stay?

    True for a router that refuses the credentials, realm or role (`REFUSALS`), a
    `TransportRefused`, and settings that cannot be used (ValueError, TypeError);
    False for what a router that is late, restarting or unreachable answers. So a
    wrong secret fails a component's start at once, and a late router is waited
    for. autobahn's default treats every error as passing: give a component
    ``is_fatal=lambda exc: False`` for that.
    """
    if isinstance(error, TransportRefused):
        return True
    if isinstance(error, ApplicationError):
        return error.error in REFUSALS
    return isinstance(error, (ValueError, TypeError))


class Transport(abc.ABC):
    """Something a session can join a realm through: a router in this process,
    or a WAMP connection to Crossbar.io."""

    retry: RetryPolicy | None = None
    """How components reconnect when a session on this transport is lost; None
    (the in-process router): a lost session fails the component, and its
    supervisor restarts it."""

    offered_serializers: tuple[str, ...] | None = None
    """What a component offers through this transport when its settings name the
    serializers themselves (the WAMP transport validates its own, as autobahn)."""

    @abc.abstractmethod
    def join(
        self,
        realm: str,
        peer: Peer,
        *,
        serializers: Sequence[str] = DEFAULT_SERIALIZERS,
        authentication: Mapping[str, Any] | None = None,
    ) -> concurrent.futures.Future[Link]:
        """Open a session on `realm`; deliveries for it go to `peer`.

        The future fails with `ApplicationError` (``wamp.error.no_such_realm``,
        ``wamp.error.not_authorized``, ...) or the transport's own error.
        """

    def describe(self) -> str:
        return type(self).__name__

    def handler_loop(self) -> asyncio.AbstractEventLoop | None:
        """The asyncio loop a component with coroutine handlers should run on to
        talk through this transport without a thread hop; None: hedgerow's own."""
        return None


# -- transport settings -----------------------------------------------------


@dataclass(frozen=True)
class TransportConfig:
    """One entry of a component's ``transports``: what to join through, with
    which serializers offered, and the settings it was built from."""

    transport: Transport
    serializers: tuple[str, ...] = DEFAULT_SERIALIZERS
    settings: Mapping[str, Any] = field(default_factory=dict)


TransportFactory = Callable[[Mapping[str, Any]], Transport]
_types: dict[str, TransportFactory] = {}
_types_lock = threading.Lock()
_BUILTIN_TYPES = {
    "inprocess": "hedgerow.transports._inprocess",
    "websocket": "hedgerow.transports._wamp",
    "rawsocket": "hedgerow.transports._wamp",
}
"""The built-in types, each registered by its module when first used (imports stay lazy)."""


def register_transport_type(name: str, factory: TransportFactory) -> None:
    """Make ``{"type": name, ...}`` build a transport with ``factory(settings)``."""
    with _types_lock:
        _types[name] = factory


def resolve_transports(value: Any, *, default_type: str = "inprocess") -> list[TransportConfig]:
    """Turn a component's ``transports`` into transport configs, in order.

    As autobahn's Component: a URL string, a dict, or a list of them; also a
    `Transport` object. None means one transport of `default_type` (the
    in-process router). A dict's ``type`` picks the factory; ``serializers``
    lists what to offer. Raises ValueError naming the entry and the rule.
    """
    if value is None:
        value = [{"type": default_type}]
    elif isinstance(value, (str, Mapping, Transport)):
        value = [value]
    elif not isinstance(value, Sequence):
        msg = f"transports={value!r}: expected a URL, a dict, a Transport or a list of them"
        raise ValueError(msg)
    return [_resolve_one(index, entry) for index, entry in enumerate(value)]


def _factory(kind: Any) -> TransportFactory | None:
    """The factory registered for `kind`, importing a built-in type's module first."""
    with _types_lock:
        factory = _types.get(kind)
    if factory is None and isinstance(kind, str) and kind in _BUILTIN_TYPES:
        importlib.import_module(_BUILTIN_TYPES[kind])
        with _types_lock:
            factory = _types.get(kind)
    return factory


def _resolve_one(index: int, entry: Any) -> TransportConfig:
    where = f"transports[{index}]"
    if isinstance(entry, Transport):
        return TransportConfig(entry)
    if isinstance(entry, str):
        kind = "rawsocket" if entry.startswith(("rs://", "rss://")) else "websocket"
        entry = {"type": kind, "url": entry}
    if not isinstance(entry, Mapping):
        msg = f"{where}={entry!r}: expected a URL, a dict or a Transport"
        raise ValueError(msg)  # noqa: TRY004 - a config value error, as autobahn raises
    kind = entry.get("type", "websocket" if "url" in entry else "inprocess")
    factory = _factory(kind)
    if factory is None:
        with _types_lock:
            known = ", ".join(sorted(set(_types) | set(_BUILTIN_TYPES)))
        msg = f"{where}: invalid transport type {kind!r} (expected one of: {known})"
        raise ValueError(msg)
    try:
        transport = factory(entry)
    except ValueError as exc:
        msg = f"{where}: {exc}"
        raise ValueError(msg) from exc
    serializers = transport.offered_serializers or check_serializers(
        entry.get("serializers", DEFAULT_SERIALIZERS), f"{where}.serializers"
    )
    return TransportConfig(transport, tuple(serializers), dict(entry))
