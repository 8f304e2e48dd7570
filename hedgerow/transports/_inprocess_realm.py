# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""A realm of the in-process router: its sessions, registrations, subscriptions and calls in flight.

The router (`hedgerow.transports._inprocess`) routes between them and guards
all of it with its one lock; a session hands each request to the router, and
a call in flight (`PendingCall`) is answered once by its callee, from any
thread.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import SessionDetails

from hedgerow.transports._base import Call, Link, Peer, Reply, Request, Result
from hedgerow.transports._inprocess_payload import transfer
from hedgerow.transports._serializers import Serializer, get_serializer
from hedgerow.transports._uri import Invoke, Match, uri_matches, wildcard_rank

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from autobahn.wamp.types import PublishOptions

__all__ = [
    "TRUSTED",
    "InProcessSession",
    "PendingCall",
    "Realm",
    "Registration",
    "Subscription",
    "admits",
    "done_future",
    "failed_future",
    "identity",
    "table_key",
]

logger = logging.getLogger("hedgerow.transports")

TRUSTED = "trusted"
"""The authrole of an in-process session whose authentication names none."""

Future = concurrent.futures.Future


def table_key(uri: str, match: Match) -> str:
    """How a registration or subscription is named in `RouterStatistics`."""
    return uri if match is Match.EXACT else f"{uri} [{match.value}]"


def done_future(value: Any) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(value)
    return future


def failed_future(error: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(error)
    return future


class Registration:
    __slots__ = ("callees", "id", "invoke", "match", "next", "uri")

    def __init__(self, reg_id: int, uri: str, match: Match, invoke: Invoke) -> None:
        self.id = reg_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list[InProcessSession] = []
        self.next = 0


class Subscription:
    __slots__ = ("id", "match", "subscribers", "uri")

    def __init__(self, sub_id: int, uri: str, match: Match) -> None:
        self.id = sub_id
        self.uri = uri
        self.match = match
        self.subscribers: list[InProcessSession] = []


class Realm:
    """Sessions, registrations and subscriptions of one realm; callers hold the router lock."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sessions: dict[int, InProcessSession] = {}
        self.registrations: dict[tuple[str, Match], Registration] = {}
        self.registration_ids: dict[int, Registration] = {}
        self.patterns: list[Registration] = []
        """Prefix and wildcard registrations, oldest first."""
        self.subscriptions: dict[tuple[str, Match], Subscription] = {}
        self.subscription_ids: dict[int, Subscription] = {}
        self.topic_patterns: list[Subscription] = []
        """Prefix and wildcard subscriptions, oldest first (exact ones: `subscriptions`)."""

    def register(
        self, session: InProcessSession, uri: str, match: Match, invoke: Invoke, ids: Iterator[int]
    ) -> int:
        """Add `session` as a callee of `uri`; the registration's id (a new one from `ids`
        for a new procedure). Raises ApplicationError as a WAMP router answers."""
        reg = self.registrations.get((uri, match))
        if reg is not None:
            if reg.invoke is Invoke.SINGLE or session in reg.callees:
                msg = (
                    f"register for already registered procedure {table_key(uri, match)!r} "
                    f"on realm {self.name!r}"
                )
                raise ApplicationError(ApplicationError.PROCEDURE_ALREADY_EXISTS, msg)
            if reg.invoke is not invoke:
                msg = (
                    f"register for already registered procedure {table_key(uri, match)!r} with "
                    f"conflicting invocation policy (has {reg.invoke.value} and "
                    f"{invoke.value} was requested)"
                )
                raise ApplicationError(
                    ApplicationError.PROCEDURE_EXISTS_INVOCATION_POLICY_CONFLICT, msg
                )
        else:
            reg = Registration(next(ids), uri, match, invoke)
            self.registrations[(uri, match)] = reg
            self.registration_ids[reg.id] = reg
            if match is not Match.EXACT:
                self.patterns.append(reg)
        reg.callees.append(session)
        session.registrations.add(reg)
        return reg.id

    def unregister(self, session: InProcessSession, registration: int) -> None:
        """Remove `session` as a callee of its `registration`."""
        reg = self.registration_ids.get(registration)
        if reg is None or session not in reg.callees:
            msg = f"session {session.session_id} has no registration {registration}"
            raise ApplicationError(ApplicationError.NO_SUCH_REGISTRATION, msg)
        session.registrations.discard(reg)
        self.drop_callee(reg, session)

    def drop_callee(self, reg: Registration, session: InProcessSession) -> None:
        """Remove `session` as a callee of `reg`, and `reg` with its last callee."""
        if session in reg.callees:
            reg.callees.remove(session)
        if not reg.callees:
            self.registrations.pop((reg.uri, reg.match), None)
            self.registration_ids.pop(reg.id, None)
            if reg in self.patterns:
                self.patterns.remove(reg)

    def subscribe(
        self, session: InProcessSession, uri: str, match: Match, ids: Iterator[int]
    ) -> int:
        """Add `session` as a subscriber of `uri`; the subscription's id (a new one from
        `ids` for a new topic)."""
        sub = self.subscriptions.get((uri, match))
        if sub is None:
            sub = Subscription(next(ids), uri, match)
            self.subscriptions[(uri, match)] = sub
            self.subscription_ids[sub.id] = sub
            if match is not Match.EXACT:
                self.topic_patterns.append(sub)
        if session not in sub.subscribers:
            sub.subscribers.append(session)
            session.subscriptions.add(sub)
        return sub.id

    def unsubscribe(self, session: InProcessSession, subscription: int) -> None:
        """Remove `session` as a subscriber of its `subscription`."""
        sub = self.subscription_ids.get(subscription)
        if sub is None or session not in sub.subscribers:
            msg = f"session {session.session_id} has no subscription {subscription}"
            raise ApplicationError(ApplicationError.NO_SUCH_SUBSCRIPTION, msg)
        session.subscriptions.discard(sub)
        self.drop_subscriber(sub, session)

    def drop_subscriber(self, sub: Subscription, session: InProcessSession) -> None:
        """Remove `session` as a subscriber of `sub`, and `sub` with its last subscriber."""
        if session in sub.subscribers:
            sub.subscribers.remove(session)
        if not sub.subscribers:
            self.subscriptions.pop((sub.uri, sub.match), None)
            self.subscription_ids.pop(sub.id, None)
            if sub.match is not Match.EXACT and sub in self.topic_patterns:
                self.topic_patterns.remove(sub)

    def best_registration(self, uri: str) -> Registration | None:
        exact = self.registrations.get((uri, Match.EXACT))
        if exact is not None or not self.patterns:
            return exact
        prefixes = [r for r in self.patterns if r.match is Match.PREFIX and uri.startswith(r.uri)]
        if prefixes:
            return max(prefixes, key=lambda r: len(r.uri))
        best: Registration | None = None
        for reg in self.patterns:
            if (
                reg.match is Match.WILDCARD
                and uri_matches(reg.uri, Match.WILDCARD, uri)
                and (best is None or wildcard_rank(reg.uri) > wildcard_rank(best.uri))
            ):
                best = reg
        return best

    def matching_subscriptions(self, uri: str) -> list[Subscription]:
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


class PendingCall(Reply):
    """One call in flight: the caller's future, answered once by the callee."""

    __slots__ = ("call", "callee", "caller", "done", "future", "id", "lock", "procedure", "timer")

    def __init__(
        self,
        lock: threading.Lock,
        call_id: int,
        caller: InProcessSession,
        callee: InProcessSession,
        call: Call,
    ) -> None:
        self.lock = lock
        self.id = call_id
        self.caller = caller
        self.callee = callee
        self.call = call
        self.procedure = call.procedure
        self.future: Future[Any] = Future()
        self.done = False
        self.timer: threading.Timer | None = None

    def time_out_after(self, seconds: float) -> None:
        """End the call with ``wamp.error.canceled`` if no answer comes within
        `seconds` (the caller's ``CallOptions(timeout=...)``, as Crossbar does; the
        callee is not interrupted: its late answer goes to no one)."""
        timer = threading.Timer(seconds, self._timed_out)
        timer.daemon = True
        self.timer = timer
        timer.start()

    def _timed_out(self) -> None:
        msg = f"call to {self.procedure!r} was cancelled: timeout reached"
        self._fail(ApplicationError(ApplicationError.CANCELED, msg))

    def _finish(self) -> bool:
        with self.lock:
            if self.done:
                return False
            self.done = True
            self.callee.in_flight.pop(self.id, None)
        if self.timer is not None:
            self.timer.cancel()
        return True

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        on_progress = self.call.on_progress
        if self.done or on_progress is None:
            return
        try:
            args, kwargs = transfer(self.callee.codec, self.caller.codec, args, kwargs)
        except ApplicationError:
            logger.warning("Progressive result of %s not delivered", self.procedure, exc_info=True)
            return
        on_progress(args, kwargs)

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            args, kwargs = transfer(self.callee.codec, self.caller.codec, args, kwargs)
        except ApplicationError as exc:
            self._fail(exc)
            return
        if self._finish():
            self.future.set_result(Result(args, kwargs))

    def error(self, error: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        try:
            args, kwargs = transfer(self.callee.codec, self.caller.codec, args, kwargs)
        except ApplicationError as exc:
            self._fail(exc)
            return
        self._fail(ApplicationError(error, *args, **kwargs))

    def _fail(self, exc: ApplicationError) -> None:
        if self._finish():
            self.future.set_exception(exc)


class InProcessSession(Link):
    """A session joined to a realm of an `InProcessRouter`."""

    def __init__(
        self,
        dispatch: Callable[[InProcessSession, Request], Future[Any]],
        realm: Realm,
        session_id: int,
        peer: Peer,
        serializer: str,
        *,
        serialize: bool,
    ) -> None:
        self._dispatch = dispatch
        self.realm = realm.name
        self._realm = realm
        self.session_id = session_id
        self.peer = peer
        self.serializer = serializer
        self.codec: Serializer | None = get_serializer(serializer) if serialize else None
        self.open = True
        self.registrations: set[Registration] = set()
        self.subscriptions: set[Subscription] = set()
        self.in_flight: dict[int, PendingCall] = {}
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
        return self._dispatch(self, request)


def _names(value: str | list[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def admits(options: PublishOptions | None, session: InProcessSession) -> bool:
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


def identity(authentication: Mapping[str, Any] | None) -> tuple[str | None, str]:
    """The authid and authrole a session's authentication asks for (first method naming one)."""
    authid: str | None = None
    authrole: str | None = None
    for settings in (authentication or {}).values():
        if isinstance(settings, Mapping):
            authid = authid or settings.get("authid")
            authrole = authrole or settings.get("authrole")
    return authid, authrole or TRUSTED
