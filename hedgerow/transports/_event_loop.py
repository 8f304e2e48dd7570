"""The event loop the WAMP transport runs on, as the transport sees it.

`EventLoop` is one framework's loop (an asyncio loop, or Twisted's reactor)
with the few operations the WAMP transport needs from it: run a coroutine,
make and settle a future, wait with a timeout, connect a client factory. The
transport is written against this class only, so both frameworks run the
same session code (`hedgerow.transports._asyncio_loop`,
`hedgerow.transports._twisted_loop`); `hedgerow.transports._framework`
chooses the framework and gives the process's one loop. `WampEndpoint` is
what a loop needs of the transport it connects.
"""

from __future__ import annotations

import concurrent.futures
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

if TYPE_CHECKING:
    import ssl
    from collections.abc import Awaitable, Callable, Mapping

__all__ = [
    "EventLoop",
    "TlsProblem",
    "WampEndpoint",
    "reject_future",
    "resolve_future",
]

T = TypeVar("T")


class WampEndpoint(Protocol):
    """What a loop (and a session's link) needs of a WAMP transport: its checked
    settings, and its TLS (`hedgerow.transports.WampTransport` is the one)."""

    @property
    def settings(self) -> Mapping[str, Any]: ...

    @property
    def endpoint(self) -> Mapping[str, Any]: ...

    @property
    def timeout(self) -> float: ...

    def describe(self) -> str: ...

    def tls_context(self) -> tuple[ssl.SSLContext | None, str | None]: ...

    def tls_request(self) -> tuple[Any, str, Any] | None: ...

    def unreadable_trust_root(self, trust_root: Any, exc: BaseException) -> ValueError: ...

    def tls_failure(self, loop: EventLoop, exc: BaseException) -> str | None: ...


def resolve_future(future: concurrent.futures.Future[Any], value: Any) -> None:
    """Complete a `concurrent.futures.Future`, unless its owner cancelled it."""
    try:  # noqa: SIM105 - on every request's path: three calls fewer than suppress
        future.set_result(value)
    except concurrent.futures.InvalidStateError:
        pass


def reject_future(future: concurrent.futures.Future[Any], error: BaseException) -> None:
    """Fail a `concurrent.futures.Future`, unless its owner cancelled it."""
    try:  # noqa: SIM105 - as above
        future.set_exception(error)
    except concurrent.futures.InvalidStateError:
        pass


class TlsProblem:
    """A failed TLS handshake, as the transport words it: ``kind`` and the library's reason.

    ``kind`` is ``untrusted`` (the certificate's chain is not trusted),
    ``hostname`` (it was issued for another name) or ``other``.
    """

    __slots__ = ("kind", "reason")

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason


class EventLoop(ABC):
    """One framework's loop on its thread, and what the WAMP transport does with it.

    Futures made here are the framework's own (an asyncio future, a Twisted
    Deferred); only the loop's thread may touch them, except through
    `call_soon_threadsafe` and `submit`.
    """

    framework: ClassVar[str]
    tls_hint: ClassVar[str]
    """What the framework's own TLS settings object is, for messages."""
    call_soon_threadsafe: Callable[..., Any]
    """Run ``fn(*args)`` on the loop, from any thread; RuntimeError once the loop is closed."""

    def __init__(self) -> None:
        self._protocols: dict[str, type[Any]] = {}
        self._session_type: type[Any] | None = None

    @abstractmethod
    def is_running(self) -> bool:
        """Whether the loop still runs (a closed one is replaced by `event_loop`)."""

    def on_loop_thread(self) -> bool:
        """True when called by the loop itself (what it runs may then skip the hop)."""
        return False

    @abstractmethod
    def submit(self, start: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        """Run the coroutine ``start()`` on the loop; its outcome, for any thread."""

    @abstractmethod
    def create_future(self) -> Any:
        """A new future of the framework (on the loop)."""

    @abstractmethod
    def done(self, future: Any) -> bool:
        """Whether the framework's `future` has its outcome (or was cancelled)."""

    @abstractmethod
    def resolve(self, future: Any, value: Any) -> None:
        """Give `future` its value, unless it has its outcome already."""

    @abstractmethod
    def reject(self, future: Any, error: BaseException) -> None:
        """Fail `future` with `error`, unless it has its outcome already."""

    @abstractmethod
    def when_done(
        self,
        outcome: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """Call `on_result` or `on_error` (on the loop) when `outcome` (what autobahn returned:
        a future, a Deferred or a coroutine) is done; a cancellation is an error
        for which `is_cancellation` holds."""

    @abstractmethod
    def is_cancellation(self, error: BaseException) -> bool:
        """Whether `error` says a future was cancelled."""

    @abstractmethod
    def with_timeout(self, awaitable: Any, seconds: float) -> Awaitable[Any]:
        """Wait for `awaitable` inside a coroutine on the loop; TimeoutError after `seconds`."""

    @abstractmethod
    def tls(self, transport: WampEndpoint) -> Any:
        """What to connect `transport` with for TLS, in the framework's terms; None without.

        Called in `WampTransport.join`'s caller, so a bad setting (a
        ``trust_root`` that cannot be read) fails the join at once with ValueError.
        """

    @abstractmethod
    def connect(self, factory: Any, transport: WampEndpoint, tls: Any) -> Awaitable[Any]:
        """Open `transport`'s connection with the client `factory`, in a coroutine on the loop;
        the protocol the factory built for it.

        Fails with OSError (TimeoutError included) when the router cannot be
        reached, and with the framework's TLS error when the handshake fails.
        """

    @abstractmethod
    def abort(self, protocol: Any) -> None:
        """Close `protocol`'s connection now, whatever state its handshakes are in."""

    @abstractmethod
    def tls_problem(self, error: BaseException) -> TlsProblem | None:
        """`error` as a failed TLS handshake, or None when it is something else."""

    @abstractmethod
    def _session_base(self) -> type[Any]:
        """autobahn's Session class for the framework."""

    @abstractmethod
    def _factory_types(self, kind: str) -> tuple[type[Any], type[Any]]:
        """autobahn's client factory and protocol for `kind` (websocket, rawsocket)."""

    @abstractmethod
    def _hooked(self, protocol: type[Any]) -> type[Any]:
        """`protocol`, subclassed to tell its factory's ``hedgerow_lost`` how it closed."""

    def session_type(self, mixin: type[Any]) -> type[Any]:
        """autobahn's Session for the framework with `mixin` first (made once)."""
        if self._session_type is None:
            self._session_type = type("WampSession", (mixin, self._session_base()), {})
        return self._session_type

    def client_factory(
        self,
        kind: str,
        make_session: Callable[[], Any],
        lost: Callable[[BaseException | None], None],
        **options: Any,
    ) -> Any:
        """autobahn's client factory for `kind`; `lost` hears how each connection ended.

        `lost` tells a connection that closed before its session could open
        (a failed TLS or WebSocket handshake), which autobahn does not report.
        """
        factory_type, protocol = self._factory_types(kind)
        factory = factory_type(make_session, **options)
        hooked = self._protocols.get(kind)
        if hooked is None:
            hooked = self._protocols[kind] = self._hooked(protocol)
        factory.protocol = hooked
        factory.hedgerow_lost = lost
        return factory
