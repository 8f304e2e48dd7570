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

Each joined session is a `WampLink` (`hedgerow.transports._wamp_link`),
which says which thread does what.

Settings are validated as autobahn's ``_create_transport`` validates them
(the same keys, rules and messages, minus a few of its slips: a float
``timeout`` is fine, a RawSocket ``serializer`` is checked by name).
Serializers: WebSocket offers a list (msgpack, cbor, json by default) and the
router picks the first it speaks, in the offered order; RawSocket carries one
(``serializer``, msgpack by default; autobahn's default is cbor).

A session that is lost (the router went away or closed it) fails every later
request at once with ``hedgerow.error.not_connected``. Joining again is the component's job, with
this transport's retry settings (`WampTransport.retry`), for its first join as
for a reconnect; a failed TLS handshake is a `TransportRefused`, which no
retry mends.
"""

from __future__ import annotations

import concurrent.futures
import ssl
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError

from hedgerow.transports._asyncio_loop import AsyncioLoop
from hedgerow.transports._base import (
    Link,
    Peer,
    RetryPolicy,
    Transport,
    TransportRefused,
    register_transport_type,
)
from hedgerow.transports._framework import event_loop
from hedgerow.transports._serializers import SERIALIZERS, negotiate
from hedgerow.transports._twisted_tls import is_twisted_tls
from hedgerow.transports._wamp_answers import NOT_CONNECTED
from hedgerow.transports._wamp_link import LinkState, WampLink, new_session
from hedgerow.transports._wamp_settings import (
    DEFAULT_TIMEOUT,
    RETRY_KEYS,
    check_transport_settings,
)

if TYPE_CHECKING:
    import asyncio

    from hedgerow.transports._event_loop import EventLoop

__all__ = ["WampTransport"]


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
        session = new_session(loop, link, authenticators)
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
            link._state = LinkState.LOST  # a WELCOME that comes now is too late
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


register_transport_type("websocket", WampTransport)
register_transport_type("rawsocket", WampTransport)
