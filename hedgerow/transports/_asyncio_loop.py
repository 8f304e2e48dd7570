"""The WAMP transport's loop under asyncio: a new event loop on the ``hedgerow-wamp`` thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
from typing import TYPE_CHECKING, Any, TypeVar

from hedgerow.transports._event_loop import EventLoop, TlsProblem

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Awaitable, Callable

    from hedgerow.transports._event_loop import WampEndpoint

__all__ = ["AsyncioLoop"]

T = TypeVar("T")

_X509_V_ERR_HOSTNAME_MISMATCH = 62  # OpenSSL's verify code for a certificate of another name


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

    def tls(self, transport: WampEndpoint) -> Any:
        return transport.tls_context()

    async def connect(self, factory: Any, transport: WampEndpoint, tls: Any) -> Any:
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
