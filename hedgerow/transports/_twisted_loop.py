# mypy: disable-error-code="no-untyped-call"
# (autobahn and Twisted leave many constructors unannotated.)
"""The WAMP transport's loop under Twisted: the reactor, on the ``hedgerow-wamp`` thread
(or already running, started by the application)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from hedgerow.transports._event_loop import EventLoop, TlsProblem, reject_future, resolve_future
from hedgerow.transports._twisted_tls import twisted_tls

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from hedgerow.transports._event_loop import WampEndpoint

__all__ = ["TwistedLoop"]

T = TypeVar("T")

_IPV6 = 6


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

    def tls(self, transport: WampEndpoint) -> Any:
        return twisted_tls(transport)

    def connect(self, factory: Any, transport: WampEndpoint, tls: Any) -> Awaitable[Any]:
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


def _log_to_stdlib() -> None:
    """Send Twisted's log events to the standard `logging` module (logger ``twisted``),
    once; Twisted's own logging set-up (``globalLogBeginner``) is left to the application."""
    from twisted.logger import STDLibLogObserver, globalLogPublisher  # noqa: PLC0415

    global _stdlib_observer  # noqa: PLW0603 - one observer per process
    if _stdlib_observer is None:
        _stdlib_observer = STDLibLogObserver(name="twisted")
        globalLogPublisher.addObserver(_stdlib_observer)


_stdlib_observer: Any = None
