# mypy: disable-error-code="no-untyped-call"
# (autobahn and Twisted leave many constructors unannotated.)
"""The process's WAMP framework and event loop: asyncio (the default) or Twisted, through txaio.

txaio serves one framework per process, and autobahn binds it when its WAMP
modules are first imported. `use_framework` chooses one (call it before
anything joins a WAMP router or uses a serializer); `ensure_framework`
chooses asyncio unless a choice was made, by `use_framework` or by the
application's own ``txaio.use_twisted()``.

Anything that joins a WAMP router or uses a serializer (an in-process
component copies its payloads through one) chooses asyncio if nothing was
chosen, so a Twisted process chooses first.

`event_loop` gives the process's one `EventLoop`: the framework's loop (an
asyncio loop, or Twisted's reactor) with the few operations the WAMP
transport needs from it (run a coroutine, make and settle a future, wait with
a timeout, connect a client factory). The transport is written against this
class only, so both frameworks run the same session code. The loop runs on a
daemon thread, ``hedgerow-wamp``, started on first use; when Twisted's
reactor already runs (an application that runs it and starts hedgerow from
it), that reactor is used and no thread is started. An application that
means to run the reactor itself must start it before anything joins, and
must not block its thread waiting on hedgerow. Twisted's reactor cannot run
twice: once it has stopped, `event_loop` raises RuntimeError.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import ssl
import sys
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from hedgerow._extras import require

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hedgerow.transports._wamp import WampTransport

__all__ = [
    "FRAMEWORKS",
    "EventLoop",
    "TlsProblem",
    "ensure_framework",
    "event_loop",
    "is_twisted_tls",
    "reject_future",
    "resolve_future",
    "selected_framework",
    "twisted_tls",
    "use_framework",
]

FRAMEWORKS = ("asyncio", "twisted")
"""The frameworks the WAMP transport runs on (txaio's names)."""

T = TypeVar("T")

_lock = threading.RLock()
_loop: EventLoop | None = None

_X509_V_ERR_HOSTNAME_MISMATCH = 62  # OpenSSL's verify code for a certificate of another name
_IPV6 = 6


def selected_framework() -> str | None:
    """The framework txaio serves in this process, or None before one is chosen."""
    txaio = sys.modules.get("txaio")
    if txaio is None:
        return None
    if getattr(txaio, "using_twisted", False):
        return "twisted"
    if getattr(txaio, "using_asyncio", False):
        return "asyncio"
    return None


def use_framework(name: str) -> str:
    """Run this process's WAMP sessions on `name` ("asyncio" or "twisted"); returns it.

    Call it first: a join, or a serializer's first use (an in-process component
    copies payloads through one), chooses asyncio if nothing was chosen.
    Choosing the framework already chosen is a no-op. Raises ValueError for
    an unknown name, and RuntimeError when the process already uses the other
    framework (txaio cannot switch), and `MissingExtra` (a RuntimeError) when
    Twisted is not installed.
    """
    if name not in FRAMEWORKS:
        msg = f"unknown framework {name!r}: expected one of {', '.join(FRAMEWORKS)}"
        raise ValueError(msg)
    import txaio  # noqa: PLC0415 - txaio is selected lazily, never at import

    with _lock:
        current = selected_framework()
        if current == name:
            return name
        if current is not None:
            msg = (
                f"this process already runs WAMP on {current} (txaio serves one framework "
                f"per process): choose {name} with hedgerow.use_framework({name!r}) before "
                "any component joins a router or any serializer is used"
            )
            raise RuntimeError(msg)
        if "autobahn.wamp.serializer" in sys.modules:
            msg = (
                "autobahn.wamp.serializer was imported before a txaio framework was "
                "selected, so its serializers cannot work in this process: call "
                f"hedgerow.use_framework({name!r}) (or txaio.use_{name}()) before importing it"
            )
            raise RuntimeError(msg)
        if name == "twisted":
            require("twisted")
            txaio.use_twisted()
        else:
            txaio.use_asyncio()
        return name


def ensure_framework() -> str:
    """The process's framework, choosing asyncio if none was chosen yet.

    Call before anything imports ``autobahn.wamp.serializer``. Never starts
    txaio's logging (that would change the root logger).
    """
    with _lock:
        return selected_framework() or use_framework("asyncio")


def event_loop() -> EventLoop:
    """The process's WAMP event loop, for its framework, running (started on first use)."""
    global _loop  # noqa: PLW0603 - one loop per process, made on first use
    with _lock:
        if _loop is None or not _loop.is_running():
            framework = ensure_framework()
            _loop = TwistedLoop() if framework == "twisted" else AsyncioLoop()
        return _loop


def resolve_future(future: concurrent.futures.Future[Any], value: Any) -> None:
    """Complete a `concurrent.futures.Future`, unless its owner cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_result(value)


def reject_future(future: concurrent.futures.Future[Any], error: BaseException) -> None:
    """Fail a `concurrent.futures.Future`, unless its owner cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        future.set_exception(error)


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
    def tls(self, transport: WampTransport) -> Any:
        """What to connect `transport` with for TLS, in the framework's terms; None without.

        Called in `WampTransport.join`'s caller, so a bad setting (a
        ``trust_root`` that cannot be read) fails the join at once with ValueError.
        """

    @abstractmethod
    def connect(self, factory: Any, transport: WampTransport, tls: Any) -> Awaitable[Any]:
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


# -- asyncio ----------------------------------------------------------------------


class AsyncioLoop(EventLoop):
    """A new asyncio event loop on the ``hedgerow-wamp`` daemon thread."""

    framework = "asyncio"
    tls_hint = "an ssl.SSLContext"

    def __init__(self) -> None:
        super().__init__()
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        threading.Thread(target=run, name="hedgerow-wamp", daemon=True).start()
        ready.wait()
        self.loop = loop
        self.call_soon_threadsafe = loop.call_soon_threadsafe

    def __repr__(self) -> str:
        return f"<AsyncioLoop {'running' if self.is_running() else 'closed'}>"

    def is_running(self) -> bool:
        return not self.loop.is_closed()

    def on_loop_thread(self) -> bool:
        return asyncio.events._get_running_loop() is self.loop

    def submit(self, start: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(start(), self.loop)  # type: ignore[arg-type]

    def create_future(self) -> Any:
        return self.loop.create_future()

    def done(self, future: Any) -> bool:
        return bool(future.done())

    def resolve(self, future: Any, value: Any) -> None:
        if not future.done():
            future.set_result(value)

    def reject(self, future: Any, error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def when_done(
        self,
        outcome: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        def done(future: asyncio.Future[Any]) -> None:
            if future.cancelled():
                on_error(asyncio.CancelledError())
                return
            error = future.exception()
            if error is not None:
                on_error(error)
            else:
                on_result(future.result())

        asyncio.ensure_future(outcome, loop=self.loop).add_done_callback(done)

    def is_cancellation(self, error: BaseException) -> bool:
        return isinstance(error, asyncio.CancelledError)

    def with_timeout(self, awaitable: Any, seconds: float) -> Awaitable[Any]:
        return asyncio.wait_for(awaitable, seconds)

    def tls(self, transport: WampTransport) -> Any:
        return transport.tls_context()

    async def connect(self, factory: Any, transport: WampTransport, tls: Any) -> Any:
        loop, endpoint = self.loop, transport.endpoint
        proxy = transport.settings["proxy"]
        if proxy is not None:
            _, protocol = await loop.create_connection(
                factory, host=proxy["host"], port=proxy["port"]
            )
        elif endpoint["type"] == "unix":
            _, protocol = await loop.create_unix_connection(factory, path=endpoint["path"])
        else:
            context, hostname = tls
            _, protocol = await loop.create_connection(
                factory,
                host=endpoint["host"],
                port=endpoint["port"],
                ssl=context,
                server_hostname=hostname if context is not None else None,
            )
        return protocol

    def abort(self, protocol: Any) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.abort()

    def tls_problem(self, error: BaseException) -> TlsProblem | None:
        if isinstance(error, ssl.SSLCertVerificationError):
            kind = "hostname" if error.verify_code == _X509_V_ERR_HOSTNAME_MISMATCH else "untrusted"
            return TlsProblem(kind, str(error.verify_message or error.reason))
        if isinstance(error, ssl.SSLError):
            return TlsProblem("other", str(error.reason or error))
        return None

    def _session_base(self) -> type[Any]:
        from autobahn.asyncio.wamp import Session  # noqa: PLC0415 - after the framework is chosen

        return Session

    def _factory_types(self, kind: str) -> tuple[type[Any], type[Any]]:
        if kind == "websocket":
            from autobahn.asyncio import websocket  # noqa: PLC0415

            return websocket.WampWebSocketClientFactory, websocket.WampWebSocketClientProtocol
        from autobahn.asyncio import rawsocket  # noqa: PLC0415

        return rawsocket.WampRawSocketClientFactory, rawsocket.WampRawSocketClientProtocol

    def _hooked(self, protocol: type[Any]) -> type[Any]:
        def connection_lost(self: Any, exc: BaseException | None) -> None:
            # First: once the session is attached, autobahn reports the close without
            # its reason (onDisconnect), and a join that fails should say why.
            self.factory.hedgerow_lost(exc)
            protocol.connection_lost(self, exc)

        return type(protocol.__name__, (protocol,), {"connection_lost": connection_lost})


# -- Twisted ------------------------------------------------------------------------


class TwistedLoop(EventLoop):
    """Twisted's reactor, run on the ``hedgerow-wamp`` daemon thread (or already running).

    When hedgerow starts the reactor, Twisted's log events (autobahn's among
    them) also go to the standard `logging` module, under the ``twisted``
    logger, as autobahn's do under asyncio.
    """

    framework = "twisted"
    tls_hint = "twisted.internet.ssl.optionsForClientTLS(...)"

    def __init__(self) -> None:
        super().__init__()
        from twisted.internet import reactor  # noqa: PLC0415 - installs the default reactor

        self.reactor: Any = reactor
        if not self.reactor.running:
            if getattr(self.reactor, "_startedBefore", False):
                msg = (
                    "Twisted's reactor has stopped, and a reactor cannot run twice: "
                    "no WAMP session can run in this process any more"
                )
                raise RuntimeError(msg)
            _log_to_stdlib()
            ready = threading.Event()
            failed: list[BaseException] = []
            self.reactor.callWhenRunning(ready.set)

            def spin() -> None:
                try:
                    self.reactor.run(installSignalHandlers=False)
                except BaseException as exc:  # noqa: BLE001 - reported to the starter
                    failed.append(exc)
                finally:
                    ready.set()

            threading.Thread(target=spin, name="hedgerow-wamp", daemon=True).start()
            ready.wait()
            if failed:
                msg = f"Twisted's reactor did not start: {failed[0]!r}"
                raise RuntimeError(msg) from failed[0]

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self.reactor.running:
            msg = "Twisted's reactor has stopped"
            raise RuntimeError(msg)
        self.reactor.callFromThread(fn, *args)

    def __repr__(self) -> str:
        return f"<TwistedLoop {'running' if self.is_running() else 'stopped'}>"

    def is_running(self) -> bool:
        return bool(self.reactor.running)

    def submit(self, start: Callable[[], Awaitable[T]]) -> concurrent.futures.Future[T]:
        from twisted.internet.defer import Deferred  # noqa: PLC0415

        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                deferred: Any = Deferred.fromCoroutine(start())  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - reported through the future
                reject_future(future, exc)
                return
            deferred.addCallbacks(
                lambda value: resolve_future(future, value),
                lambda failure: reject_future(future, failure.value),
            )

        try:
            self.call_soon_threadsafe(run)
        except RuntimeError as exc:
            reject_future(future, exc)
        return future

    def create_future(self) -> Any:
        from twisted.internet.defer import Deferred  # noqa: PLC0415

        return Deferred()

    def done(self, future: Any) -> bool:
        return bool(future.called)

    def resolve(self, future: Any, value: Any) -> None:
        if not future.called:
            future.callback(value)

    def reject(self, future: Any, error: BaseException) -> None:
        if not future.called:
            future.errback(error)

    def when_done(
        self,
        outcome: Any,
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        from twisted.internet.defer import ensureDeferred  # noqa: PLC0415

        def failed(failure: Any) -> None:
            on_error(failure.value)

        ensureDeferred(outcome).addCallbacks(on_result, failed)

    def is_cancellation(self, error: BaseException) -> bool:
        from twisted.internet.defer import CancelledError  # noqa: PLC0415

        return isinstance(error, CancelledError | asyncio.CancelledError)

    async def with_timeout(self, awaitable: Any, seconds: float) -> Any:
        from twisted.internet import defer, error  # noqa: PLC0415

        deferred = defer.ensureDeferred(awaitable)
        deferred.addTimeout(seconds, self.reactor)
        try:
            return await deferred
        except (defer.TimeoutError, error.TimeoutError):
            raise TimeoutError from None

    def tls(self, transport: WampTransport) -> Any:
        return twisted_tls(transport)

    def connect(self, factory: Any, transport: WampTransport, tls: Any) -> Awaitable[Any]:
        from twisted.internet import endpoints, error  # noqa: PLC0415

        endpoint, proxy = transport.endpoint, transport.settings["proxy"]
        timeout = transport.timeout
        client: Any
        if proxy is not None:
            client = endpoints.HostnameEndpoint(
                self.reactor, proxy["host"], proxy["port"], timeout=timeout
            )
        elif endpoint["type"] == "unix":
            client = endpoints.UNIXClientEndpoint(self.reactor, endpoint["path"], timeout=timeout)
        else:
            # Any address family, as asyncio's create_connection (autobahn: IPv4 unless
            # version 6); "version": 6 keeps to IPv6.
            tcp = (
                endpoints.TCP6ClientEndpoint
                if endpoint.get("version") == _IPV6
                else endpoints.HostnameEndpoint
            )
            client = tcp(self.reactor, endpoint["host"], endpoint["port"], timeout=timeout)
            if tls is not None:
                client = endpoints.wrapClientTLS(tls, client)

        def failed(failure: Any) -> None:
            reason = failure.value
            if isinstance(reason, error.TimeoutError | error.ConnectingCancelledError):
                raise TimeoutError from None
            if isinstance(reason, error.ConnectError):
                raise ConnectionError(str(reason).strip()) from None
            failure.raiseException()

        return client.connect(factory).addErrback(failed)  # type: ignore[no-any-return]

    def abort(self, protocol: Any) -> None:
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.abortConnection()

    def tls_problem(self, error: BaseException) -> TlsProblem | None:
        openssl = sys.modules.get("OpenSSL.SSL")
        if openssl is not None and isinstance(error, openssl.Error):
            reasons = [entry[-1] for entry in error.args[0] if entry] if error.args else []
            reason = "; ".join(str(r) for r in reasons if r) or str(error)
            kind = "untrusted" if "certificate verify failed" in reason else "other"
            return TlsProblem(kind, reason)
        identity = sys.modules.get("service_identity.exceptions")
        if identity is not None and isinstance(
            error, identity.VerificationError | identity.CertificateError
        ):
            return TlsProblem("hostname", str(error))
        return None

    def _session_base(self) -> type[Any]:
        from autobahn.twisted.wamp import Session  # noqa: PLC0415 - after the framework is chosen

        return Session

    def _factory_types(self, kind: str) -> tuple[type[Any], type[Any]]:
        if kind == "websocket":
            from autobahn.twisted import websocket  # noqa: PLC0415

            return websocket.WampWebSocketClientFactory, websocket.WampWebSocketClientProtocol
        from autobahn.twisted import rawsocket  # noqa: PLC0415

        return rawsocket.WampRawSocketClientFactory, rawsocket.WampRawSocketClientProtocol

    def _hooked(self, protocol: type[Any]) -> type[Any]:
        from twisted.internet.error import ConnectionDone  # noqa: PLC0415

        def connectionLost(self: Any, reason: Any = None) -> None:  # noqa: N802 - Twisted's name
            # First, as for asyncio: autobahn's onDisconnect carries no reason.
            value = getattr(reason, "value", None)
            self.factory.hedgerow_lost(None if isinstance(value, ConnectionDone) else value)
            if reason is None:
                protocol.connectionLost(self)
            else:
                protocol.connectionLost(self, reason)

        return type(protocol.__name__, (protocol,), {"connectionLost": connectionLost})


def twisted_tls(transport: WampTransport) -> Any:
    """A Twisted TLS connection creator for `transport`, as autobahn's Twisted Component
    makes it; None without TLS.

    The endpoint's ``tls`` dict trusts ``trust_root`` (every certificate in
    that PEM file; the system's store without it) and checks ``hostname``
    (the endpoint's host by default); ``True`` is the same with the system's
    store; Twisted's own options (``optionsForClientTLS``, a
    ``CertificateOptions``) are used as they are. An `ssl.SSLContext` is
    asyncio's and is refused with ValueError, as is a ``trust_root`` that
    cannot be read.
    """
    request = transport.tls_request()
    if request is None:
        return None
    setting, hostname, trust_root = request
    if is_twisted_tls(setting):
        return setting
    if isinstance(setting, ssl.SSLContext):
        msg = (
            f"transport {transport.describe()}: an ssl.SSLContext in the endpoint's 'tls' "
            "is for asyncio; under Twisted give a dict ({'trust_root': ..., 'hostname': "
            "...}), True, or twisted.internet.ssl.optionsForClientTLS(...)"
        )
        raise ValueError(msg)  # noqa: TRY004 - a bad setting, as every other is reported
    from twisted.internet import ssl as tls  # noqa: PLC0415

    trust = None
    if trust_root is not None:
        try:
            pem = Path(os.fspath(trust_root)).read_text(encoding="ascii")
            blocks = _PEM_CERTIFICATE.findall(pem)
            if not blocks:
                msg = "no PEM certificate in it"
                raise ValueError(msg)  # noqa: TRY301 - reported as the other failures are
            trust = tls.trustRootFromCertificates(
                [tls.Certificate.loadPEM(block) for block in blocks]
            )
        except (OSError, ValueError, tls.SSL.Error) as exc:  # type: ignore[attr-defined]
            raise transport.unreadable_trust_root(trust_root, exc) from exc
    return tls.optionsForClientTLS(hostname, trustRoot=trust)


def _log_to_stdlib() -> None:
    """Send Twisted's log events to the standard `logging` module (logger ``twisted``),
    once; Twisted's own logging set-up (``globalLogBeginner``) is left to the application."""
    from twisted.logger import STDLibLogObserver, globalLogPublisher  # noqa: PLC0415

    global _stdlib_observer  # noqa: PLW0603 - one observer per process
    if _stdlib_observer is None:
        _stdlib_observer = STDLibLogObserver(name="twisted")
        globalLogPublisher.addObserver(_stdlib_observer)


_stdlib_observer: Any = None


_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def is_twisted_tls(value: Any) -> bool:
    """Whether `value` is Twisted's TLS options (a connection creator or CertificateOptions).

    False without importing Twisted when the application has not imported it.
    """
    interfaces = sys.modules.get("twisted.internet.interfaces")
    if interfaces is not None and interfaces.IOpenSSLClientConnectionCreator.providedBy(value):
        return True
    twisted_ssl = sys.modules.get("twisted.internet._sslverify")
    return twisted_ssl is not None and isinstance(value, twisted_ssl.OpenSSLCertificateOptions)
