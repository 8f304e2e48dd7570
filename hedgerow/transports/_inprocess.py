# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`InProcessRouter`: a small WAMP router for the components of one process.

It is the default transport when a component names no router. It has no
thread of its own: every request runs on the thread that sends it, under one
lock, and what it delivers (invocations, events) is queued into the receiving
component's inbox, so a component's handlers still run on its own thread.

Semantics are WAMP's, as Crossbar.io implements them: realms; one callee per
procedure unless a shared registration policy says otherwise; exact, prefix
and wildcard matching (see `hedgerow.transports._uri`); errors as
`ApplicationError` with their URI, args and kwargs; ``exclude_me`` (default
true) and ``acknowledge`` for publications; progressive call results. When a
session leaves or is lost, its registrations and subscriptions go with it and
the calls in flight to it fail at once with ``wamp.error.canceled``.

Payloads are serialized by default (``serialize=True``): each payload goes
through the sender's negotiated serializer (msgpack unless the component
offers otherwise) and, if the receiver negotiated another one, through that
one too. So a receiver gets a copy, never an object the sender can still
mutate, and a payload that would not survive the network fails here too,
with ``wamp.error.invalid_payload``. It costs about 2 us per small message
with msgpack (a third of a `copy.deepcopy`, a tenth of a pykka ask);
``serialize=False`` passes references (shallow-copied args and kwargs).

As on Crossbar, nobody registers or publishes under ``wamp.``; this router
has no meta API, so a call there finds no procedure.
"""

from __future__ import annotations

import itertools
import logging
import random as _random
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError

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
    Request,
    Subscribe,
    Transport,
    Unregister,
    Unsubscribe,
    register_transport_type,
)
from hedgerow.transports._inprocess_payload import decode, encode, transfer
from hedgerow.transports._inprocess_realm import (
    Future,
    InProcessSession,
    PendingCall,
    Realm,
    Registration,
    admits,
    done_future,
    failed_future,
    identity,
    table_key,
)
from hedgerow.transports._serializers import (
    DEFAULT_SERIALIZERS,
    SERIALIZERS,
    check_serializers,
    negotiate,
)
from hedgerow.transports._uri import Invoke, Match, check_uri

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["InProcessRouter", "RouterStatistics", "default_router"]

logger = logging.getLogger("hedgerow.transports")

CLOSE_SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
_REALM_NAME = re.compile(r"^[A-Za-z][A-Za-z\d_\-@\.]{2,254}$")
"""autobahn's rule for realm names."""


@dataclass(frozen=True)
class RouterStatistics:
    """What the router holds: sessions per realm, and per realm the callee count of
    each registered procedure and the subscriber count of each topic (``uri`` for
    exact, ``uri [prefix]`` / ``uri [wildcard]`` otherwise)."""

    sessions: dict[str, int]
    registrations: dict[str, dict[str, int]]
    subscriptions: dict[str, dict[str, int]]
    calls_in_flight: int


class InProcessRouter(Transport):
    """A WAMP router inside this process; components join it through the seam.

    `realms` limits the realms sessions may join (None: any realm, created on
    first join). `serialize` copies payloads through the negotiated serializer
    (see the module docstring); `serializers` are the ones it speaks. Every
    session is trusted: `authentication` settings are accepted and not checked.
    `random` picks callees of ``invoke="random"`` registrations.
    """

    def __init__(
        self,
        *,
        realms: Sequence[str] | None = None,
        serialize: bool = True,
        serializers: Sequence[str] = SERIALIZERS,
        random: _random.Random | None = None,
        name: str = "in-process router",
    ) -> None:
        self.name = name
        self.serialize = serialize
        self.serializers = check_serializers(serializers, f"{name}: serializers")
        self._allowed = None if realms is None else frozenset(realms)
        self._random = random if random is not None else _random.Random()  # noqa: S311
        self._lock = threading.Lock()
        self._realms: dict[str, Realm] = {}
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<InProcessRouter {self.name!r}>"

    def describe(self) -> str:
        return self.name

    # -- joining and leaving ---------------------------------------------------

    def join(
        self,
        realm: str,
        peer: Peer,
        *,
        serializers: Sequence[str] = DEFAULT_SERIALIZERS,
        authentication: Mapping[str, Any] | None = None,
    ) -> Future[Link]:
        """Join `realm`. Every session is trusted: it gets the ``authid`` and
        ``authrole`` its `authentication` names (autobahn's dict, any method;
        no secret is checked), or role ``trusted``."""
        if not isinstance(realm, str) or _REALM_NAME.match(realm) is None:
            msg = f"invalid realm name {realm!r}: expected a letter, then 2-254 of A-Z a-z 0-9 _-@."
            return failed_future(ApplicationError(ApplicationError.INVALID_URI, msg))
        if self._allowed is not None and realm not in self._allowed:
            msg = (
                f"no realm {realm!r} on {self.name} (it serves {', '.join(sorted(self._allowed))})"
            )
            return failed_future(ApplicationError(ApplicationError.NO_SUCH_REALM, msg))
        try:
            serializer = negotiate(serializers, self.serializers, self.name)
        except ValueError as exc:
            return failed_future(exc)
        with self._lock:
            state = self._realms.get(realm)
            if state is None:
                state = self._realms[realm] = Realm(realm)
            session = InProcessSession(
                self._handle, state, next(self._ids), peer, serializer, serialize=self.serialize
            )
            session.authid, session.authrole = identity(authentication)
            state.sessions[session.session_id] = session
        return done_future(session)

    def _handle(self, session: InProcessSession, request: Request) -> Future[Any]:
        """Do what `session` asks (its `Link.handle`), on the sender's thread."""
        try:
            if not session.open:
                msg = f"session {session.session_id} has left realm {session.realm!r}"
                raise ApplicationError(ApplicationError.NO_SUCH_SESSION, msg)  # noqa: TRY301
            if isinstance(request, Call):
                return self._call(session, request)
            if isinstance(request, Publish):
                return self._publish(session, request)
            if isinstance(request, Register):
                return done_future(self._register(session, request))
            if isinstance(request, Subscribe):
                return done_future(self._subscribe(session, request))
            if isinstance(request, Unregister):
                self._unregister(session, request.registration)
            elif isinstance(request, Unsubscribe):
                self._unsubscribe(session, request.subscription)
            elif isinstance(request, Leave):
                self._close(session, None)
            else:
                msg = f"{request!r} is not a request the transport seam knows"
                raise TypeError(msg)
        except ApplicationError as exc:
            return failed_future(exc)
        return done_future(None)

    def close_sessions(self, realm: str | None = None, reason: str = CLOSE_SYSTEM_SHUTDOWN) -> int:
        """Close every session (of `realm`, or of all realms), as a router going away does.

        Each peer gets `Closed` with `reason`; calls in flight to them fail.
        Returns how many sessions were closed. The router stays usable.
        """
        with self._lock:
            realms = [self._realms[realm]] if realm in self._realms else []
            if realm is None:
                realms = list(self._realms.values())
            sessions = [s for r in realms for s in r.sessions.values()]
        for session in sessions:
            self._close(session, reason)
        return len(sessions)

    def _close(self, session: InProcessSession, reason: str | None) -> None:
        """Drop a session, its registrations, subscriptions and the calls in flight to it.

        `reason` None: the session left by itself; else tell its peer why it was closed.
        """
        with self._lock:
            if not session.open:
                return
            session.open = False
            realm = session._realm
            realm.sessions.pop(session.session_id, None)
            for reg in session.registrations:
                realm.drop_callee(reg, session)
            for sub in session.subscriptions:
                realm.drop_subscriber(sub, session)
            session.registrations.clear()
            session.subscriptions.clear()
            in_flight = list(session.in_flight.values())
        for pending in in_flight:
            pending._fail(
                ApplicationError(
                    ApplicationError.CANCELED,
                    f"callee disconnected from in-flight request: session "
                    f"{session.session_id} left while handling {pending.procedure!r}",
                )
            )
        if reason is not None:
            session.peer.deliver(Closed(session.session_id, reason))

    # -- registrations and subscriptions ----------------------------------------

    def _register(self, session: InProcessSession, request: Register) -> int:
        options = request.options
        uri = request.procedure
        match = Match.parse(options.match if options else None, uri)
        invoke = Invoke.parse(options.invoke if options else None, uri)
        check_uri(uri, match, "procedure URI")
        if uri.startswith("wamp."):
            msg = f"register for restricted procedure URI {uri!r} (wamp.* is the router's)"
            raise ApplicationError(ApplicationError.INVALID_URI, msg)
        with self._lock:
            return session._realm.register(session, uri, match, invoke, self._ids)

    def _unregister(self, session: InProcessSession, registration: int) -> None:
        with self._lock:
            session._realm.unregister(session, registration)

    def _subscribe(self, session: InProcessSession, request: Subscribe) -> int:
        options = request.options
        uri = request.topic
        match = Match.parse(options.match if options else None, uri)
        check_uri(uri, match, "topic URI")
        with self._lock:
            return session._realm.subscribe(session, uri, match, self._ids)

    def _unsubscribe(self, session: InProcessSession, subscription: int) -> None:
        with self._lock:
            session._realm.unsubscribe(session, subscription)

    # -- calls and events ------------------------------------------------------

    def _call(self, caller: InProcessSession, call: Call) -> Future[Any]:
        uri = check_uri(call.procedure, Match.EXACT, "procedure URI")
        timeout = getattr(call.options, "timeout", None) if call.options else None
        if timeout is not None and timeout.__class__ is not int:
            msg = (
                f"call to {uri!r}: CallOptions timeout must be an int "
                f"(milliseconds, as WAMP's CALL carries it), not {timeout!r}"
            )
            raise ApplicationError(ApplicationError.INVALID_ARGUMENT, msg)
        with self._lock:
            realm = caller._realm
            reg = realm.best_registration(uri)
            if reg is None:
                msg = f"no callee registered procedure {uri!r} on realm {realm.name!r}"
                raise ApplicationError(ApplicationError.NO_SUCH_PROCEDURE, msg)
            callee = self._pick(reg)
            pending = PendingCall(self._lock, next(self._ids), caller, callee, call)
            callee.in_flight[pending.id] = pending
        if timeout:  # as a router does: the caller gets wamp.error.canceled then
            pending.time_out_after(timeout / 1000)
        try:
            args, kwargs = transfer(caller.codec, callee.codec, call.args, call.kwargs)
        except ApplicationError as exc:
            pending._fail(exc)
            return pending.future
        callee.peer.deliver(
            Invocation(
                session=callee.session_id,
                registration=reg.id,
                procedure=uri,
                args=args,
                kwargs=kwargs,
                reply=pending,
                receive_progress=call.on_progress is not None,
                caller=caller.session_id,
                caller_authid=caller.authid,
                caller_authrole=caller.authrole,
            )
        )
        return pending.future

    def _pick(self, reg: Registration) -> InProcessSession:
        callees = reg.callees
        invoke = reg.invoke
        if invoke is Invoke.LAST:
            return callees[-1]
        if invoke is Invoke.ROUNDROBIN:
            reg.next += 1
            return callees[(reg.next - 1) % len(callees)]
        if invoke is Invoke.RANDOM:
            return self._random.choice(callees)
        return callees[0]  # single, first

    def _publish(self, publisher: InProcessSession, request: Publish) -> Future[Any]:
        options = request.options
        acknowledge = bool(options and options.acknowledge)
        try:
            uri = check_uri(request.topic, Match.EXACT, "topic URI")
            if uri.startswith("wamp."):
                msg = f"publish with restricted topic URI {uri!r} (wamp.* is the router's)"
                raise ApplicationError(ApplicationError.INVALID_URI, msg)  # noqa: TRY301
            data = encode(publisher.codec, request.args, request.kwargs)
        except ApplicationError as exc:
            if acknowledge:
                raise
            logger.warning("Publication to %r dropped: %s", request.topic, exc.args[0])
            return done_future(None)
        exclude_me = options is None or options.exclude_me is None or options.exclude_me
        excluded = _ids(options.exclude if options else None) or set()
        eligible = _ids(options.eligible if options else None)
        with self._lock:
            publication = next(self._ids)
            targets = [
                (session, sub)
                for sub in publisher._realm.matching_subscriptions(uri)
                for session in sub.subscribers
                if not (exclude_me and session is publisher)
                and session.session_id not in excluded
                and (eligible is None or session.session_id in eligible)
                and admits(options, session)
            ]
        for session, sub in targets:
            try:
                if data is None:
                    args, kwargs = list(request.args), dict(request.kwargs)
                else:
                    args, kwargs = decode(publisher.codec, session.codec, data)
            except ApplicationError as exc:
                logger.warning("Event %r not delivered to %r: %s", uri, session, exc.args[0])
                continue
            session.peer.deliver(Event(session.session_id, sub.id, uri, publication, args, kwargs))
        return done_future(publication if acknowledge else None)

    # -- introspection ---------------------------------------------------------

    def statistics(self) -> RouterStatistics:
        with self._lock:
            return RouterStatistics(
                sessions={name: len(r.sessions) for name, r in self._realms.items()},
                registrations={
                    name: {
                        table_key(u, m): len(reg.callees) for (u, m), reg in r.registrations.items()
                    }
                    for name, r in self._realms.items()
                },
                subscriptions={
                    name: {
                        table_key(u, m): len(sub.subscribers)
                        for (u, m), sub in r.subscriptions.items()
                    }
                    for name, r in self._realms.items()
                },
                calls_in_flight=sum(
                    len(s.in_flight) for r in self._realms.values() for s in r.sessions.values()
                ),
            )


def _ids(value: int | list[int] | None) -> set[int] | None:
    if value is None:
        return None
    return {value} if isinstance(value, int) else set(value)


_default: InProcessRouter | None = None
_default_lock = threading.Lock()


def default_router() -> InProcessRouter:
    """The process's own router: where components go when they name no transport."""
    global _default  # noqa: PLW0603 - one router per process, made on first use
    with _default_lock:
        if _default is None:
            _default = InProcessRouter(name="default in-process router")
        return _default


def _from_settings(settings: Mapping[str, Any]) -> Transport:
    router = settings.get("router")
    if router is None:
        return default_router()
    if not isinstance(router, InProcessRouter):
        msg = f"router={router!r}: expected an InProcessRouter (or no router: the default one)"
        raise ValueError(msg)  # noqa: TRY004 - a config value error
    return router


register_transport_type("inprocess", _from_settings)
