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

import concurrent.futures
import itertools
import logging
import random as _random
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SessionDetails

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
    Subscribe,
    Transport,
    Unregister,
    Unsubscribe,
    register_transport_type,
)
from hedgerow.transports._serializers import (
    DEFAULT_SERIALIZERS,
    SERIALIZERS,
    Serializer,
    check_serializers,
    get_serializer,
    negotiate,
)
from hedgerow.transports._uri import Invoke, Match, check_uri, uri_matches, wildcard_rank

if TYPE_CHECKING:
    from collections.abc import Sequence

    from autobahn.wamp.types import PublishOptions

__all__ = ["InProcessRouter", "RouterStatistics", "default_router"]

logger = logging.getLogger("hedgerow.transports")

TRUSTED = "trusted"
"""The authrole of an in-process session whose authentication names none."""

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


def _key(uri: str, match: Match) -> str:
    return uri if match is Match.EXACT else f"{uri} [{match.value}]"


Future = concurrent.futures.Future


def _done(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def _failed(error: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


class _Registration:
    __slots__ = ("callees", "id", "invoke", "match", "next", "uri")

    def __init__(self, reg_id: int, uri: str, match: Match, invoke: Invoke) -> None:
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list[_Session] = []
        self.next = 0


class _Subscription:
    __slots__ = ("id", "match", "subscribers", "uri")

    def __init__(self, sub_id: int, uri: str, match: Match) -> None:
        self.id = sub_id
        self.uri = uri
        self.match = match
        self.subscribers: list[_Session] = []


class _Realm:
    """Sessions, registrations and subscriptions of one realm (guarded by the router's lock)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions: dict[int, _Session] = {}
        self.registrations: dict[tuple[str, Match], _Registration] = {}
        self.registration_ids: dict[int, _Registration] = {}
        self.patterns: list[_Registration] = []
        """Prefix and wildcard registrations, oldest first."""
        self.subscriptions: dict[tuple[str, Match], _Subscription] = {}
        self.subscription_ids: dict[int, _Subscription] = {}
        self.topic_patterns: list[_Subscription] = []
        """Prefix and wildcard subscriptions, oldest first (exact ones: `subscriptions`)."""

    def best_registration(self, uri: str) -> _Registration | None:
        exact = self.registrations.get((uri, Match.EXACT))
        if exact is not None or not self.patterns:
            return exact
        prefixes = [r for r in self.patterns if r.match is Match.PREFIX and uri.startswith(r.uri)]
        if prefixes:
            return max(prefixes, key=lambda r: len(r.uri))
        best: _Registration | None = None
        for reg in self.patterns:
            if (
                reg.match is Match.WILDCARD
                and uri_matches(reg.uri, Match.WILDCARD, uri)
                and (best is None or wildcard_rank(reg.uri) > wildcard_rank(best.uri))
            ):
                best = reg
        return best

    def matching_subscriptions(self, uri: str) -> list[_Subscription]:
        """Every subscription `uri` matches, oldest first: the exact one by lookup,
        then a scan of the prefix and wildcard ones only."""
        exact = self.subscriptions.get((uri, Match.EXACT))
        if not self.topic_patterns:
            return [] if exact is None else [exact]
        found = [sub for sub in self.topic_patterns if uri_matches(sub.uri, sub.match, uri)]
        if exact is None:
            return found
        if not found:
            return [exact]
        # Ids grow with creation: the order a scan of every subscription gave.
        return sorted([exact, *found], key=lambda sub: sub.id)


class _Pending(Reply):
    """One call in flight: the caller's future, answered once by the callee."""

    __slots__ = ("call", "callee", "caller", "done", "future", "id", "procedure", "router")

    def __init__(
        self,
        router: InProcessRouter,
        call_id: int,
        caller: _Session,
        callee: _Session,
        call: Call,
    ) -> None:
        self.router = router
        self.id = call_id
        self.caller = caller
        self.callee = callee
        self.call = call
        self.procedure = call.procedure
        self.future: Future[Any] = Future()
        self.done = False

    def _finish(self) -> bool:
        with self.router._lock:
            if self.done:
                return False
            self.done = True
            self.callee.in_flight.pop(self.id, None)
        return True

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        on_progress = self.call.on_progress
        if self.done or on_progress is None:
            return
        try:
            args, kwargs = self.router._transfer(self.callee, self.caller, args, kwargs)
        except ApplicationError:
            logger.warning("Progressive result of %s not delivered", self.procedure, exc_info=True)
            return
        on_progress(args, kwargs)

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            args, kwargs = self.router._transfer(self.callee, self.caller, args, kwargs)
        except ApplicationError as exc:
            self._fail(exc)
            return
        if self._finish():
            self.future.set_result(Result(args, kwargs))

    def error(self, error: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            args, kwargs = self.router._transfer(self.callee, self.caller, args, kwargs)
        except ApplicationError as exc:
            self._fail(exc)
            return
        self._fail(ApplicationError(error, *args, **kwargs))

    def _fail(self, exc: ApplicationError) -> None:
        if self._finish():
            self.future.set_exception(exc)


class _Session(Link):
    """A session joined to a realm of an `InProcessRouter`."""

    def __init__(
        self, router: InProcessRouter, realm: _Realm, session_id: int, peer: Peer, serializer: str
    ) -> None:
        self.router = router
        self.realm = realm.name
        self._realm = realm
        self.session_id = session_id
        self.peer = peer
        self.serializer = serializer
        self.codec: Serializer | None = get_serializer(serializer) if router.serialize else None
        self.open = True
        self.registrations: set[_Registration] = set()
        self.subscriptions: set[_Subscription] = set()
        self.in_flight: dict[int, _Pending] = {}
        self.authid: str | None = None
        self.authrole = TRUSTED

    def __repr__(self) -> str:
        return f"<in-process session {self.session_id} on {self.realm!r}>"

    @property
    def details(self) -> SessionDetails:
        """The session's details, as a router's welcome gives them."""
        return SessionDetails(
            realm=self.realm,
            session=self.session_id,
            authid=self.authid,
            authrole=self.authrole,
            serializer=self.serializer,
        )

    @property
    def is_open(self) -> bool:
        return self.open

    def handle(self, request: Request) -> Future[Any]:
        router = self.router
        try:
            if not self.open:
                msg = f"session {self.session_id} has left realm {self.realm!r}"
                raise ApplicationError(ApplicationError.NO_SUCH_SESSION, msg)  # noqa: TRY301
            if isinstance(request, Call):
                return router._call(self, request)
            if isinstance(request, Publish):
                return router._publish(self, request)
            if isinstance(request, Register):
                return _done(router._register(self, request))
            if isinstance(request, Subscribe):
                return _done(router._subscribe(self, request))
            if isinstance(request, Unregister):
                router._unregister(self, request.registration)
            elif isinstance(request, Unsubscribe):
                router._unsubscribe(self, request.subscription)
            elif isinstance(request, Leave):
                router._close(self, None)
            else:
                msg = f"{request!r} is not a request the transport seam knows"
                raise TypeError(msg)
        except ApplicationError as exc:
            return _failed(exc)
        return _done(None)


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
        self._realms: dict[str, _Realm] = {}
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
            return _failed(ApplicationError(ApplicationError.INVALID_URI, msg))
        if self._allowed is not None and realm not in self._allowed:
            msg = (
                f"no realm {realm!r} on {self.name} (it serves {', '.join(sorted(self._allowed))})"
            )
            return _failed(ApplicationError(ApplicationError.NO_SUCH_REALM, msg))
        try:
            serializer = negotiate(serializers, self.serializers, self.name)
        except ValueError as exc:
            return _failed(exc)
        with self._lock:
            state = self._realms.get(realm)
            if state is None:
                state = self._realms[realm] = _Realm(realm)
            session = _Session(self, state, next(self._ids), peer, serializer)
            session.authid, session.authrole = _identity(authentication)
            state.sessions[session.session_id] = session
        return _done(session)

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

    def _close(self, session: _Session, reason: str | None) -> None:
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
                self._drop_callee(realm, reg, session)
            for sub in session.subscriptions:
                self._drop_subscriber(realm, sub, session)
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

    # -- registrations -------------------------------------------------------

    def _register(self, session: _Session, request: Register) -> int:
        options = request.options
        uri = request.procedure
        match = Match.parse(options.match if options else None, uri)
        invoke = Invoke.parse(options.invoke if options else None, uri)
        check_uri(uri, match, "procedure URI")
        if uri.startswith("wamp."):
            msg = f"register for restricted procedure URI {uri!r} (wamp.* is the router's)"
            raise ApplicationError(ApplicationError.INVALID_URI, msg)
        with self._lock:
            realm = session._realm
            reg = realm.registrations.get((uri, match))
            if reg is not None:
                if reg.invoke is Invoke.SINGLE or session in reg.callees:
                    msg = (
                        f"register for already registered procedure {_key(uri, match)!r} "
                        f"on realm {realm.name!r}"
                    )
                    raise ApplicationError(ApplicationError.PROCEDURE_ALREADY_EXISTS, msg)
                if reg.invoke is not invoke:
                    msg = (
                        f"register for already registered procedure {_key(uri, match)!r} with "
                        f"conflicting invocation policy (has {reg.invoke.value} and "
                        f"{invoke.value} was requested)"
                    )
                    raise ApplicationError(
                        ApplicationError.PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT, msg
                    )
            else:
                reg = _Registration(next(self._ids), uri, match, invoke)
                realm.registrations[(uri, match)] = reg
                realm.registration_ids[reg.id] = reg
                if match is not Match.EXACT:
                    realm.patterns.append(reg)
            reg.callees.append(session)
            session.registrations.add(reg)
            return reg.id

    def _unregister(self, session: _Session, registration: int) -> None:
        with self._lock:
            realm = session._realm
            reg = realm.registration_ids.get(registration)
            if reg is None or session not in reg.callees:
                msg = f"session {session.session_id} has no registration {registration}"
                raise ApplicationError(ApplicationError.NO_SUCH_REGISTRATION, msg)
            session.registrations.discard(reg)
            self._drop_callee(realm, reg, session)

    @staticmethod
    def _drop_callee(realm: _Realm, reg: _Registration, session: _Session) -> None:
        if session in reg.callees:
            reg.callees.remove(session)
        if not reg.callees:
            realm.registrations.pop((reg.uri, reg.match), None)
            realm.registration_ids.pop(reg.id, None)
            if reg in realm.patterns:
                realm.patterns.remove(reg)

    # -- subscriptions ---------------------------------------------------------

    def _subscribe(self, session: _Session, request: Subscribe) -> int:
        options = request.options
        uri = request.topic
        match = Match.parse(options.match if options else None, uri)
        check_uri(uri, match, "topic URI")
        with self._lock:
            realm = session._realm
            sub = realm.subscriptions.get((uri, match))
            if sub is None:
                sub = _Subscription(next(self._ids), uri, match)
                realm.subscriptions[(uri, match)] = sub
                realm.subscription_ids[sub.id] = sub
                if match is not Match.EXACT:
                    realm.topic_patterns.append(sub)
            if session not in sub.subscribers:
                sub.subscribers.append(session)
                session.subscriptions.add(sub)
            return sub.id

    def _unsubscribe(self, session: _Session, subscription: int) -> None:
        with self._lock:
            realm = session._realm
            sub = realm.subscription_ids.get(subscription)
            if sub is None or session not in sub.subscribers:
                msg = f"session {session.session_id} has no subscription {subscription}"
                raise ApplicationError(ApplicationError.NO_SUCH_SUBSCRIPTION, msg)
            session.subscriptions.discard(sub)
            self._drop_subscriber(realm, sub, session)

    @staticmethod
    def _drop_subscriber(realm: _Realm, sub: _Subscription, session: _Session) -> None:
        if session in sub.subscribers:
            sub.subscribers.remove(session)
        if not sub.subscribers:
            realm.subscriptions.pop((sub.uri, sub.match), None)
            realm.subscription_ids.pop(sub.id, None)
            if sub.match is not Match.EXACT and sub in realm.topic_patterns:
                realm.topic_patterns.remove(sub)

    # -- calls and events ------------------------------------------------------

    def _call(self, caller: _Session, call: Call) -> Future[Any]:
        uri = check_uri(call.procedure, Match.EXACT, "procedure URI")
        with self._lock:
            realm = caller._realm
            reg = realm.best_registration(uri)
            if reg is None:
                msg = f"no callee registered procedure {uri!r} on realm {realm.name!r}"
                raise ApplicationError(ApplicationError.NO_SUCH_PROCEDURE, msg)
            callee = self._pick(reg)
            pending = _Pending(self, next(self._ids), caller, callee, call)
            callee.in_flight[pending.id] = pending
        try:
            args, kwargs = self._transfer(caller, callee, call.args, call.kwargs)
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

    def _pick(self, reg: _Registration) -> _Session:
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

    def _publish(self, publisher: _Session, request: Publish) -> Future[Any]:
        options = request.options
        acknowledge = bool(options and options.acknowledge)
        try:
            uri = check_uri(request.topic, Match.EXACT, "topic URI")
            if uri.startswith("wamp."):
                msg = f"publish with restricted topic URI {uri!r} (wamp.* is the router's)"
                raise ApplicationError(ApplicationError.INVALID_URI, msg)  # noqa: TRY301
            data = self._encode(publisher, request.args, request.kwargs)
        except ApplicationError as exc:
            if acknowledge:
                raise
            logger.warning("Publication to %r dropped: %s", request.topic, exc.args[0])
            return _done(None)
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
                and _admits(options, session)
            ]
        for session, sub in targets:
            try:
                if data is None:
                    args, kwargs = list(request.args), dict(request.kwargs)
                else:
                    args, kwargs = self._decode(publisher, session, data)
            except ApplicationError as exc:
                logger.warning("Event %r not delivered to %r: %s", uri, session, exc.args[0])
                continue
            session.peer.deliver(Event(session.session_id, sub.id, uri, publication, args, kwargs))
        return _done(publication if acknowledge else None)

    # -- payloads --------------------------------------------------------------

    @staticmethod
    def _encode(sender: _Session, args: list[Any], kwargs: dict[str, Any]) -> bytes | None:
        codec = sender.codec
        if codec is None:
            return None
        try:
            return codec.serialize([list(args), dict(kwargs)])
        except Exception as exc:
            msg = f"payload could not be serialized with {codec.name}: {exc}"
            raise ApplicationError(ApplicationError.INVALID_PAYLOAD, msg) from exc

    @staticmethod
    def _decode(
        sender: _Session, receiver: _Session, data: bytes
    ) -> tuple[list[Any], dict[str, Any]]:
        codec = sender.codec
        assert codec is not None
        payload = codec.unserialize(data)
        other = receiver.codec
        if other is not None and other is not codec:
            try:
                payload = other.roundtrip(payload)
            except Exception as exc:
                msg = f"payload could not be serialized with {other.name}: {exc}"
                raise ApplicationError(ApplicationError.INVALID_PAYLOAD, msg) from exc
        return payload[0], payload[1]

    def _transfer(
        self, sender: _Session, receiver: _Session, args: Any, kwargs: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        """What `receiver` gets of a payload `sender` sends (a copy, when serializing)."""
        args = list(args) if args else []
        kwargs = dict(kwargs) if kwargs else {}
        if sender.codec is None:
            return args, kwargs
        data = self._encode(sender, args, kwargs)
        assert data is not None
        return self._decode(sender, receiver, data)

    # -- introspection ---------------------------------------------------------

    def statistics(self) -> RouterStatistics:
        with self._lock:
            return RouterStatistics(
                sessions={name: len(r.sessions) for name, r in self._realms.items()},
                registrations={
                    name: {_key(u, m): len(reg.callees) for (u, m), reg in r.registrations.items()}
                    for name, r in self._realms.items()
                },
                subscriptions={
                    name: {
                        _key(u, m): len(sub.subscribers) for (u, m), sub in r.subscriptions.items()
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


def _names(value: str | list[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _admits(options: PublishOptions | None, session: _Session) -> bool:
    """True unless the publication's eligible/exclude authid or authrole leaves `session` out."""
    if options is None:
        return True
    for names, value, wanted in (
        (_names(options.eligible_authrole), session.authrole, True),
        (_names(options.exclude_authrole), session.authrole, False),
        (_names(options.eligible_authid), session.authid, True),
        (_names(options.exclude_authid), session.authid, False),
    ):
        if names is not None and (value in names) != wanted:
            return False
    return True


def _identity(authentication: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """The authid and authrole a session's authentication asks for (first method naming one)."""
    authid: str | None = None
    authrole: str | None = None
    for settings in (authentication or {}).values():
        if isinstance(settings, Mapping):
            authid = authid or settings.get("authid")
            authrole = authrole or settings.get("authrole")
    return authid, authrole or TRUSTED


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
