# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`Component` (autobahn's Component API) and `run`, on hedgerow actors.

A `Component` is a description: its transports, realm, handlers and
registrations. Each time it starts, under a supervisor or by `run`, it builds
a new `ComponentActor`, an incarnation that joins the realm, registers and
subscribes again, and serves until it leaves, is stopped, or fails. So a
component is a child like any other: ``ChildSpec("svc", component)`` (a
component is the factory of its actors) or ``component.child_spec("svc")``.

All handlers of a component run on its actor's thread, one at a time: user
code needs no locks. How they run and what happens when they raise:

- ``on_connect(session, transport)``, ``on_join(session, details)``, the
  `register` and `subscribe` decorators (in the order they were declared),
  then ``on_ready(session)``: while the actor starts. One that raises fails
  the start; the supervisor restarts the child (at once, or with its backoff).
- ``on_connectfailure(component, exc)``: when joining through a transport
  fails (see "Joining" below).
- ``main(actor, session)``: if given, runs once after ``on_ready`` (the
  component's actor stands in for autobahn's reactor: use its
  ``actor_clock`` and ``actor_send_after``). When it returns, the session
  leaves and the component is done (exit reason ``normal``). If it raises,
  the component fails.
- An invocation handler that raises sends the error back to the caller and
  the component goes on (WAMP's rule). An event handler that raises is
  reported, as autobahn reports it, and the component goes on: a
  ``handler_failed`` event on the tree's stream (with the exception, its
  traceback and the event), which is also a log line; the event's other
  handlers still run. So whoever may publish on a topic cannot keep its
  subscribers down with bad events. The child spec's ``event_errors_fail``
  gives Erlang's rule instead: the exception fails the component, its
  supervisor restarts it (the new incarnation subscribes again), and the
  event is the dead letter.
- ``on_leave(session, details)`` then ``on_disconnect(session, was_clean)``:
  when the session leaves (``session.leave()``, the end of ``main``, a stop
  ordered by the supervisor) or the router closes it. An exception there
  fails the component. A component that crashes just drops its session: no
  handler runs.

**Lost sessions.** A router-side close with a reason other than
``wamp.close.normal`` is a failure of the connection. On a transport with a
retry policy (the WAMP transport: its ``max_retries``, ``initial_retry_delay``,
``max_retry_delay``, ``retry_delay_growth``, ``retry_delay_jitter``, with
autobahn's defaults) the incarnation reconnects by itself, as autobahn's
Component does: the first attempt at once, later ones after growing delays
on the tree's clock, cycling through the transports; every failed attempt runs
``on_connectfailure``; ``is_fatal(exc)`` true ends retrying on that
transport; a join resets its count and runs ``on_connect``, ``on_join`` (the
registrations and subscriptions come back) and ``on_ready`` again. Meanwhile
the old session fails every request at once with
``hedgerow.error.not_connected``, and the supervisor sees nothing: an outage
spends none of its restart intensity. Only when no transport may retry does
the component fail with `TransportLost` (autobahn: "Exhausted all transport
connect attempts"), for its supervisor to handle. On a transport without a
retry policy (the in-process router) the component fails with `TransportLost`
at once, and its supervisor restarts it. ``main`` runs once per incarnation,
not once per join.

**Joining.** The first join, in ``on_start``, follows the same retry settings,
as autobahn's Component starts: each transport's first attempt at once, then
growing delays, until one joins. So a node may start before its router: the
start (and the supervisor's, and the tree's) waits meanwhile, and the
supervisor's intensity is not spent on a router that is late. The start fails
only when no transport may try again: ``max_retries`` retries spent (autobahn
counts them after the first attempt), or ``is_fatal(exc)`` true. A transport
without a retry policy (the in-process router) is tried once. ``is_fatal``
defaults to `hedgerow.transports.join_error_is_permanent`: a refused secret,
realm or role, an untrusted TLS certificate or unusable settings end retrying
at once (autobahn's default retries even those; give ``is_fatal=lambda exc:
False`` for that).

When an incarnation exits for any reason, its session is closed: its
registrations and subscriptions leave the router, and calls in flight to it
fail at once with ``wamp.error.canceled``.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError, TransportLost
from autobahn.wamp.types import CloseDetails, RegisterOptions, SessionDetails, SubscribeOptions
from pykka import messages as pykka_messages
from pykka._envelope import Envelope

from hedgerow.actors._actor import Actor
from hedgerow.actors._inbox import Inbox, exempt
from hedgerow.actors._messages import _Control, _Internal
from hedgerow.transports._base import (
    CLOSE_NORMAL,
    Closed,
    Event,
    Link,
    Transport,
    TransportConfig,
    join_error_is_permanent,
    resolve_transports,
)
from hedgerow.transports._session import ComponentSession, Delivery

if TYPE_CHECKING:
    import concurrent.futures

    from pykka._actor import ActorInbox

    from hedgerow.actors._reason import Reason
    from hedgerow.supervision._backoff import Backoff
    from hedgerow.supervision._spec import ChildSpec
    from hedgerow.supervision._tree import Tree

__all__ = ["Component", "ComponentActor", "run"]

_DELIVERED = (*Delivery, Closed)
"""What a transport puts in a component's inbox (one tuple, built once)."""
exempt(*_DELIVERED)  # a bounded inbox never drops a session's deliveries (max_inbox)

logger = logging.getLogger("hedgerow.actors")

EVENTS = ("connect", "join", "ready", "leave", "disconnect", "connectfailure")
"""The events a component's listeners can observe (autobahn's, less ``start``)."""

SETTINGS = ("transports", "realm", "extra", "authentication")
"""Where and as whom a component joins: what `Component.configured` may change."""

_configured_lock = threading.Lock()

DEFAULT_JOIN_TIMEOUT = 10.0
"""Seconds to wait for a transport to join (autobahn's default endpoint timeout)."""


class Component:
    """A WAMP application component, as autobahn's: how to join, and what to serve.

    Arguments keep autobahn's names and meaning. `transports` is None (the
    process's in-process router), a URL, a dict (``type``, ``url``,
    ``serializers``, ...), a `Transport`, or a list of them, tried in order.
    `main` is called with ``(actor, session)``. `config` is kept as given;
    `extra` reaches handlers as ``session.config.extra``. `authentication` is
    passed to the transport (the in-process router trusts every session).
    `is_fatal(exc)` is asked about each failed join, the first or a reconnect:
    true ends retrying on that transport (default:
    `hedgerow.transports.join_error_is_permanent`; see the module docstring).
    `session_factory` is not supported (the session is hedgerow's). `name`
    (hedgerow's addition) names the component in logs, errors and `run`'s tree.
    """

    def __init__(  # noqa: PLR0917 - autobahn's Component signature, positional too
        self,
        main: Callable[[Any, ComponentSession], Any] | None = None,
        transports: Any = None,
        config: Any = None,
        realm: str = "realm1",
        extra: Any = None,
        authentication: dict[str, Any] | None = None,
        session_factory: Any = None,
        is_fatal: Callable[[BaseException], bool] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if main is not None and not callable(main):
            msg = '"main" must be a callable if given'
            raise ValueError(msg)
        if is_fatal is not None and not callable(is_fatal):
            msg = '"is_fatal" must be a callable or None'
            raise ValueError(msg)
        if session_factory is not None:
            msg = "session_factory is not supported: hedgerow components use hedgerow's session"
            raise ValueError(msg)
        _check_realm(realm)
        self.name = (
            name or (getattr(main, "__name__", None) if main is not None else None) or "component"
        )
        self.main = main
        self.transports = resolve_transports(transports)
        self.config = config
        self.realm = realm
        self.extra = extra
        self.authentication = dict(authentication or {})
        self.is_fatal = is_fatal
        self._listeners: dict[str, list[Callable[..., Any]]] = {event: [] for event in EVENTS}
        self.module: str | None = sys._getframe(1).f_globals.get("__name__")
        """The module that built this component: where a tree file's ``module:name`` points."""
        self.origin: Component | None = None
        """The component this one was `configured` from (None for one built in code)."""
        self.settings: dict[str, Any] = {}
        """The `SETTINGS` given to `configured`, as given."""
        self._configured: dict[str, Component] = {}
        self._joining: weakref.WeakSet[ComponentActor] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"<Component {self.name!r} realm={self.realm!r}>"

    def _cancel_first_joins(self) -> None:
        """Give up the first joins in progress (`run` on Ctrl-C): each start fails at
        once instead of waiting for a router that may never come."""
        for actor in list(self._joining):
            actor._cancel_first_join()

    def configured(self, **settings: Any) -> Component:
        """This component joining elsewhere: the same handlers, other `SETTINGS`.

        What a tree file or a container's ``start_component`` does with a
        component named in code. Equal settings give the same copy, so specs
        built twice from one file compare equal. Raises ValueError as the
        constructor does for a bad value.
        """
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            msg = (
                f"{self.name}: unknown settings {unknown} (expected some of {', '.join(SETTINGS)})"
            )
            raise ValueError(msg)
        origin = self.origin or self
        merged = {**self.settings, **settings}
        key = repr(sorted(merged.items()))
        with _configured_lock:
            copy = origin._configured.get(key)
            if copy is not None:
                return copy
        copy = Component.__new__(Component)
        copy.__dict__.update(origin.__dict__)
        if "transports" in merged:
            copy.transports = resolve_transports(merged["transports"])
        if "realm" in merged:
            _check_realm(merged["realm"])
            copy.realm = merged["realm"]
        if "extra" in merged:
            copy.extra = merged["extra"]
        if "authentication" in merged:
            copy.authentication = dict(merged["authentication"] or {})
        copy.origin = origin
        copy.settings = merged
        copy._configured = {}
        copy._joining = weakref.WeakSet()
        with _configured_lock:
            return origin._configured.setdefault(key, copy)

    # -- building actors -------------------------------------------------------

    def __call__(self) -> ComponentActor:
        """Build a new, unstarted incarnation (what a `ChildSpec` calls on each start)."""
        return ComponentActor(self)

    def child_spec(self, child_id: str | None = None, **options: Any) -> ChildSpec:
        """A `ChildSpec` that starts this component; `options` are ChildSpec's fields."""
        from hedgerow.supervision._spec import ChildSpec  # noqa: PLC0415 - supervision uses actors

        return ChildSpec(child_id or self.name, self, **options)

    # -- listeners (autobahn's decorators) -------------------------------------

    def on(self, event: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Call `fn` on `event` (one of `EVENTS`); returns `fn`."""
        if event not in self._listeners:
            msg = f"{self.name}: unknown event {event!r} (expected one of {', '.join(EVENTS)})"
            raise ValueError(msg)
        if not callable(fn):
            msg = f"{self.name}: a listener for {event!r} must be callable, not {fn!r}"
            raise ValueError(msg)  # noqa: TRY004 - autobahn raises ValueError for bad settings
        self._listeners[event].append(fn)
        return fn

    def on_connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(session, transport)`` once the transport is connected, before the join."""
        return self.on("connect", fn)

    def on_join(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(session, details)`` once the session joined its realm."""
        return self.on("join", fn)

    def on_ready(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(session)`` after every join listener (registrations included) ran."""
        return self.on("ready", fn)

    def on_leave(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(session, details)`` when the session leaves or is closed."""
        return self.on("leave", fn)

    def on_disconnect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(session, was_clean)`` after ``on_leave``."""
        return self.on("disconnect", fn)

    def on_connectfailure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn(component, exc)`` when joining through a transport failed."""
        return self.on("connectfailure", fn)

    def register(
        self, uri: str, options: RegisterOptions | None = None, check_types: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register the function under `uri` on every join."""
        if options is not None and not isinstance(options, RegisterOptions):
            msg = f"{self.name}: register({uri!r}) options must be RegisterOptions, not {options!r}"
            raise ValueError(msg)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            def do_registration(session: ComponentSession, _details: Any) -> None:
                session.register(fn, procedure=uri, options=options, check_types=check_types)

            self.on("join", do_registration)
            return fn

        return decorator

    def subscribe(
        self, topic: str, options: SubscribeOptions | None = None, check_types: bool = False
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: subscribe the function to `topic` on every join."""
        if options is not None and not isinstance(options, SubscribeOptions):
            msg = (
                f"{self.name}: subscribe({topic!r}) options must be SubscribeOptions, "
                f"not {options!r}"
            )
            raise ValueError(msg)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            def do_subscription(session: ComponentSession, _details: Any) -> None:
                session.subscribe(fn, topic=topic, options=options, check_types=check_types)

            self.on("join", do_subscription)
            return fn

        return decorator

    def _fire(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners[event]):
            listener(*args)


def _check_realm(realm: Any) -> None:
    if not isinstance(realm, str) or not realm:
        msg = f"realm={realm!r}: expected a realm name"
        raise ValueError(msg)


class _JoinCancelled(Exception):
    """A first join given up from outside (`run` on Ctrl-C): the start fails."""


class _Peer:
    """Where the transport delivers: straight into the actor's inbox (any thread)."""

    __slots__ = ("inbox",)

    def __init__(self, inbox: Any) -> None:
        self.inbox = inbox

    def deliver(self, message: Any) -> None:
        self.inbox.put(Envelope(message))


class _RunMain(_Internal):
    """Run the component's ``main`` (queued by ``on_start``)."""

    __slots__ = ()


class _Reconnect(_Internal):
    """Time for the next attempt to join again through transport `index`."""

    __slots__ = ("index", "token")

    def __init__(self, index: int, token: int) -> None:
        self.index = index
        self.token = token


class _Rejoined(_Internal):
    """An attempt to join again finished (with a link, or an error)."""

    __slots__ = ("future", "index", "token")

    def __init__(self, index: int, token: int, future: concurrent.futures.Future[Link]) -> None:
        self.index = index
        self.token = token
        self.future = future


_live_links: weakref.WeakKeyDictionary[Any, Link] = weakref.WeakKeyDictionary()
_live_links_lock = threading.Lock()


class ComponentActor(Actor):
    """One incarnation of a `Component`: a hedgerow `Actor` holding one session."""

    def __init__(self, component: Component) -> None:
        super().__init__()
        self.component = component
        self.session: ComponentSession | None = None
        self._depth = 0
        self._deferred: BaseException | None = None
        self._left = False
        self._index = 0
        self._backoffs: dict[int, Backoff] = {}
        self._given_up: set[int] = set()
        self._reconnecting = False
        self._token = 0
        self._pending_join: concurrent.futures.Future[Link] | None = None
        self._next = 0
        self._join_cancelled = False
        self._join_wake: threading.Event | None = None
        self._hr_add_exit_callback(self._exited)

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        inbox = Actor._create_actor_inbox()
        return inbox if isinstance(inbox, Inbox) else Inbox()

    def __str__(self) -> str:
        ref = self.actor_child_ref
        where = f" ({ref.path})" if ref is not None else ""
        return f"Component {self.component.name}{where}"

    # -- life cycle ------------------------------------------------------------

    def on_start(self) -> None:
        """Join through the first transport that works, then run the join listeners."""
        self._replace_predecessor()
        self.component._joining.add(self)
        try:
            link, index = self._join()
        finally:
            self.component._joining.discard(self)
        self._adopt(link, index)
        if self.component.main is not None:
            self.actor_inbox.put(Envelope(_RunMain()))

    def _adopt(self, link: Link, index: int) -> None:
        """Take `link` as this incarnation's session and run the join listeners."""
        component = self.component
        transport = component.transports[index].transport
        self._index = index
        self._left = False
        with _live_links_lock:
            if self.actor_child_ref is not None:
                _live_links[self.actor_child_ref] = link
        session = ComponentSession(
            self, link, extra=component.extra, transport=transport, name=component.name
        )
        self.session = session
        details = SessionDetails(
            realm=link.realm,
            session=link.session_id,
            authrole=getattr(getattr(link, "details", None), "authrole", None) or "trusted",
            serializer=link.serializer,
        )
        self._top(lambda: self._joined(session, transport, details))

    def _joined(self, session: ComponentSession, transport: Transport, details: Any) -> None:
        component = self.component
        component._fire("connect", session, transport)
        component._fire("join", session, details)
        component._fire("ready", session)

    def _join(self) -> tuple[Link, int]:
        """The first join, as autobahn's Component starts: through each transport in
        turn, each first attempt at once; a transport with a retry policy is tried
        again after its growing delays (on the tree's clock) until it joins,
        `is_fatal` says its error is for good, or its `max_retries` retries are
        spent; one without (the in-process router) is tried once. Raises the last
        error when no transport may try again: the start fails."""
        transports = self.component.transports
        tries: list[Backoff | None] = [_first_join_backoff(c.transport) for c in transports]
        error: BaseException | None = None
        index = 0
        while True:
            chosen = next(
                (
                    i
                    for i in ((index + step) % len(tries) for step in range(len(tries)))
                    if (backoff := tries[i]) is not None and backoff.can_retry()
                ),
                None,
            )
            if chosen is None:
                assert error is not None
                raise error
            backoff = tries[chosen]
            assert backoff is not None
            config = transports[chosen]
            delay = backoff.next_delay()
            if delay > 0:
                logger.info(
                    "%s: next attempt to join through %s in %.2f s",
                    self,
                    config.transport.describe(),
                    delay,
                )
                self.actor_clock.wait(self._join_waker(), delay)
            try:
                link = self._attempt_first_join(config)
            except _JoinCancelled:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again, or raised when none may
                self._join_failed(config, exc)
                error = exc
                if self._is_fatal(exc):
                    tries[chosen] = None
                index = chosen + 1
                continue
            return link, chosen

    def _join_waker(self) -> threading.Event:
        """A fresh event that `_cancel_first_join` sets; raises if it already ran."""
        wake = self._join_wake = threading.Event()
        if self._join_cancelled:
            msg = f"{self}: its start was cancelled while it waited to join"
            raise _JoinCancelled(msg)
        return wake

    def _attempt_first_join(self, config: TransportConfig) -> Link:
        """One join attempt, waited for up to its timeout, or until cancelled."""
        wake = self._join_waker()
        future = self._join_through(config)
        future.add_done_callback(lambda _: wake.set())
        timeout = config.settings.get("timeout", _join_timeout(config))
        wake.wait(timeout)
        if self._join_cancelled:
            future.add_done_callback(_leave_if_joined)
            self._join_waker()  # raises
        if not future.done():
            future.add_done_callback(_leave_if_joined)
            where = config.transport.describe()
            msg = f"no answer to joining {self.component.realm!r} through {where} in {timeout} s"
            raise TimeoutError(msg)
        return future.result()

    def _cancel_first_join(self) -> None:
        """(Any thread.) End the first join: its start fails with `_JoinCancelled`."""
        self._join_cancelled = True
        wake = self._join_wake
        if wake is not None:
            wake.set()

    def _is_fatal(self, error: BaseException) -> bool:
        """The component's `is_fatal`, or hedgerow's default (`join_error_is_permanent`)."""
        is_fatal = self.component.is_fatal
        return is_fatal(error) if is_fatal is not None else join_error_is_permanent(error)

    def _join_through(self, config: TransportConfig) -> concurrent.futures.Future[Link]:
        component = self.component
        return config.transport.join(
            component.realm,
            _Peer(self.actor_inbox),
            serializers=config.serializers,
            authentication=component.authentication,
        )

    def _join_failed(self, config: TransportConfig, exc: BaseException) -> None:
        component = self.component
        logger.info(
            "%s: joining %r through %s failed: %s",
            self,
            component.realm,
            config.transport.describe(),
            exc,
        )
        component._fire("connectfailure", component, exc)

    def _replace_predecessor(self) -> None:
        """A supervisor may abandon an incarnation that ignored its stop: its session
        must not outlive it, or the new one could not register again."""
        ref = self.actor_child_ref
        if ref is None:
            return
        with _live_links_lock:
            old = _live_links.pop(ref, None)
        if old is not None and old.is_open:
            old.handle(_leave())

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _DELIVERED):
            self._top(lambda: self._dispatch(message))
            return None
        if isinstance(message, _RunMain):
            self._top(self._run_main)
            return None
        if isinstance(message, _Reconnect):
            self._attempt(message)
            return None
        if isinstance(message, _Rejoined):
            self._rejoined(message)
            return None
        return super().on_receive(message)

    def _run_main(self) -> None:
        session = self.session
        main = self.component.main
        if session is None or main is None or not session.is_attached():
            return
        main(self, session)
        if session.is_attached():
            session.leave()

    def on_stop(self) -> None:
        """A stop (by the supervisor, or after leaving): leave cleanly, run leave handlers."""
        session = self.session
        if session is not None and session.is_attached():
            session.leave()

    def _exited(self, _actor: Actor, _reason: Reason) -> None:
        """Any exit, even a crash: the session must go, so nothing waits on this incarnation."""
        pending, self._pending_join = self._pending_join, None
        if pending is not None:
            pending.add_done_callback(_leave_if_joined)
        session = self.session
        if session is not None:
            session.detach()
            if session.link.is_open:
                session.link.handle(_leave())
        ref = self.actor_child_ref
        if ref is not None and session is not None:
            with _live_links_lock:
                if _live_links.get(ref) is session.link:
                    del _live_links[ref]

    # -- the session's owner -----------------------------------------------------

    def post(self, message: Any) -> None:
        self.actor_inbox.put(Envelope(message))

    def on_owner_thread(self) -> bool:
        return threading.get_ident() == self._hr_thread_id

    def session_left(
        self, session: ComponentSession, details: CloseDetails, *, done: bool = True
    ) -> None:
        """The session left: run the leave handlers; if `done`, the component stops."""
        if self._left:
            return
        self._left = True
        self.component._fire("leave", session, details)
        self.component._fire("disconnect", session, details.reason == CLOSE_NORMAL)
        if done and not self.actor_stopped.is_set():
            self._stop()

    def event_handler_failed(self, event: Event, error: Exception) -> None:
        """An event handler raised: report it and go on (autobahn), or fail (Erlang's
        rule, the child spec's ``event_errors_fail``)."""
        if self._hr_event_errors_fail:
            raise error
        ref = self.actor_child_ref
        if ref is None or ref.events is None:
            logger.error(
                "%s: a handler of %r raised",
                self,
                event.topic,
                exc_info=(type(error), error, error.__traceback__),
            )
            return
        from hedgerow._events import EventKind  # noqa: PLC0415 - events import actors

        ref.events.publish(
            EventKind.HANDLER_FAILED,
            ref.path,
            self.actor_clock.now(),
            incarnation=self.actor_incarnation,
            reason=error,
            traceback="".join(traceback.format_exception(error)),
            message=event,
        )

    def serve_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """Handle this session's deliveries until `done()`: see `hedgerow.transports._session`.

        Other messages are kept, in order, for after the current handler. A
        stop or exit signal ends the wait with ``wamp.error.canceled``.
        """
        inbox = self.actor_inbox
        assert isinstance(inbox, Inbox)
        deadline = None if timeout is None else time.monotonic() + timeout
        kept: list[Envelope[Any]] = []
        interrupt: Envelope[Any] | None = None
        self._depth += 1
        try:
            while not done():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    envelope = inbox.get(timeout=remaining)
                except queue.Empty:
                    return False
                message = envelope.message
                if isinstance(message, _DELIVERED):
                    self._dispatch(message)
                elif message.__class__ is _Control or isinstance(
                    message, pykka_messages._ActorStop
                ):
                    interrupt = envelope
                    msg = f"{self} is stopping: its wait for a call was cancelled"
                    raise ApplicationError(ApplicationError.CANCELED, msg)
                else:
                    kept.append(envelope)
            return True
        finally:
            self._depth -= 1
            for envelope in reversed(kept):
                inbox.put_front(envelope)
            if interrupt is not None:
                inbox.put_front(interrupt)

    def _top(self, fn: Callable[[], None]) -> None:
        """Run a handler; then raise what an event handler raised in a nested wait."""
        fn()
        if self._depth == 0 and self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, Closed):
            self._closed(message)
            return
        session = self.session
        if session is None:
            return
        if self._depth == 0:
            session.dispatch(message)
            return
        try:
            session.dispatch(message)
        except Exception as exc:  # noqa: BLE001 - raised once the outer handler is done
            if self._deferred is None:
                self._deferred = exc

    def _closed(self, closed: Closed) -> None:
        session = self.session
        if session is None or closed.session != session.session_id or self._left:
            return
        session.detach()
        normal = closed.reason == CLOSE_NORMAL
        self.session_left(session, CloseDetails(closed.reason, closed.message), done=normal)
        if normal:
            return
        where = session.transport.describe() if session.transport else "the router"
        if session.transport is not None and session.transport.retry is not None:
            logger.warning(
                "%s: session %s on realm %r was lost (%s, through %s): reconnecting",
                self,
                closed.session,
                session.realm,
                closed.reason,
                where,
            )
            self._reconnecting = True
            self._schedule_attempt(first=self._index)
            return
        msg = (
            f"{self}: session {closed.session} on realm {session.realm!r} was closed "
            f"by {where}: {closed.reason}"
        )
        raise TransportLost(msg)

    # -- reconnecting (autobahn's Component rules, on this actor's clock) -------------

    def _backoff(self, index: int) -> Backoff | None:
        """The retry state of transport `index` (None: it does not reconnect)."""
        policy = self.component.transports[index].transport.retry
        if policy is None:
            return None
        found = self._backoffs.get(index)
        if found is None:
            from hedgerow.supervision._backoff import Backoff  # noqa: PLC0415 - supervision uses actors

            found = self._backoffs[index] = Backoff(
                initial_retry_delay=policy.initial_retry_delay,
                max_retry_delay=policy.max_retry_delay,
                retry_delay_growth=policy.retry_delay_growth,
                retry_delay_jitter=policy.retry_delay_jitter,
                max_retries=policy.max_retries,
            )
        return found

    def _schedule_attempt(self, first: int) -> None:
        """Plan the next attempt, on the next transport (from `first`) that may retry.

        Raises `TransportLost` when none may: the component fails, and its
        supervisor decides what happens next.
        """
        transports = self.component.transports
        for step in range(len(transports)):
            index = (first + step) % len(transports)
            backoff = self._backoff(index)
            if backoff is None or index in self._given_up or not backoff.can_retry():
                continue
            delay = backoff.next_delay()
            self._token += 1
            message = _Reconnect(index, self._token)
            self._next = (index + 1) % len(transports)
            if delay <= 0:
                self.post(message)
            else:
                logger.info(
                    "%s: next attempt through %s in %.2f s",
                    self,
                    transports[index].transport.describe(),
                    delay,
                )
                self.actor_send_after(delay, message)
            return
        self._reconnecting = False
        msg = (
            f"{self}: exhausted all transport connect attempts to realm "
            f"{self.component.realm!r} (max_retries, or is_fatal)"
        )
        raise TransportLost(msg)

    def _attempt(self, message: _Reconnect) -> None:
        if not self._reconnecting or message.token != self._token:
            return
        config = self.component.transports[message.index]
        future = self._join_through(config)
        self._pending_join = future
        index, token = message.index, message.token
        future.add_done_callback(lambda done: self.post(_Rejoined(index, token, done)))

    def _rejoined(self, message: _Rejoined) -> None:
        future = message.future
        if future is not self._pending_join:
            _leave_if_joined(future)
            return
        self._pending_join = None
        config = self.component.transports[message.index]
        error = future.exception()
        if error is not None:
            self._join_failed(config, error)
            if self._is_fatal(error):
                self._given_up.add(message.index)
            self._schedule_attempt(first=self._next)
            return
        backoff = self._backoff(message.index)
        if backoff is not None:
            backoff.reset()
        self._reconnecting = False
        logger.info(
            "%s: joined %r again through %s",
            self,
            self.component.realm,
            config.transport.describe(),
        )
        self._adopt(future.result(), message.index)


def _leave_if_joined(future: concurrent.futures.Future[Link]) -> None:
    """A join that finished after its incarnation gave up on it: leave at once."""
    if future.cancelled() or future.exception() is not None:
        return
    link = future.result()
    if link.is_open:
        link.handle(_leave())


def _first_join_backoff(transport: Transport) -> Backoff:
    """The attempts of a first join through `transport`: one, and as many retries as
    its retry policy allows (autobahn counts ``max_retries`` after the first attempt)."""
    from hedgerow.supervision._backoff import Backoff  # noqa: PLC0415 - supervision uses actors

    policy = transport.retry
    if policy is None:
        return Backoff(max_retries=1)
    return Backoff(
        initial_retry_delay=policy.initial_retry_delay,
        max_retry_delay=policy.max_retry_delay,
        retry_delay_growth=policy.retry_delay_growth,
        retry_delay_jitter=policy.retry_delay_jitter,
        max_retries=-1 if policy.max_retries == -1 else policy.max_retries + 1,
    )


def _join_timeout(config: TransportConfig) -> float:
    """How long a start waits for a transport to join (twice its own connect timeout)."""
    timeout = getattr(config.transport, "timeout", None)
    return 2 * float(timeout) + 1.0 if timeout is not None else DEFAULT_JOIN_TIMEOUT


def _leave() -> Any:
    from hedgerow.transports._base import Leave  # noqa: PLC0415

    return Leave(CLOSE_NORMAL, "incarnation exited")


# -- run ---------------------------------------------------------------------

_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def run(  # noqa: C901, PLR0912, PLR0915 - validation, start, wait and Ctrl-C in one place
    components: Component | Sequence[Component],
    log_level: str | None = "info",
    stop_at_close: bool = True,
) -> Reason:
    """Run components until they are done, as autobahn's ``run``; Ctrl-C stops them.

    Each component is a child of one supervisor (restarted at once if it fails,
    under the default intensity; done when it leaves or its ``main``
    returns). Returns the tree's exit reason once every component is done (or
    after Ctrl-C); with ``stop_at_close=False`` it keeps running (and the
    in-process router serving) until Ctrl-C. `log_level` configures logging
    the way autobahn's ``start_logging`` does, but only if the application has
    not configured any (None: leave logging alone). Raises `StartError` if a
    component cannot start; a Ctrl-C while a component still waits for its
    router to answer its first join ends that wait and raises KeyboardInterrupt.
    """
    from hedgerow.supervision._spec import (  # noqa: PLC0415 - supervision uses actors
        ChildSpec,
        Restart,
        ShutdownPolicy,
        SupervisorSpec,
    )
    from hedgerow.supervision._tree import start_tree  # noqa: PLC0415

    if isinstance(components, Component):
        components = [components]
    if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
        msg = f'"components" must be a list of Component objects - encountered {type(components)}'
        raise ValueError(msg)  # noqa: TRY004 - autobahn raises ValueError here
    children: list[ChildSpec] = []
    for index, component in enumerate(components):
        if not isinstance(component, Component):
            msg = (
                '"components" must be a list of Component objects - encountered '
                f"item of type {type(component)}"
            )
            raise ValueError(msg)  # noqa: TRY004
        child_id = component.name
        if any(c.id == child_id for c in children):
            child_id = f"{child_id}-{index + 1}"
        children.append(ChildSpec(child_id, component, restart=Restart.FAILED, significant=True))
    _start_logging(log_level)
    spec = SupervisorSpec(
        children, shutdown_policy=ShutdownPolicy.ON_LAST_COMPONENT_STOPPED, name="components"
    )
    # Started on a helper thread, so that a Ctrl-C while components start
    # (their join handlers run then) still finds a tree to stop.
    started: list[Tree] = []
    failed: list[BaseException] = []
    starting_done = threading.Event()

    def start() -> None:
        try:
            started.append(start_tree(spec))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(exc)
        finally:
            starting_done.set()

    # Waits are on events, not Thread.join: a KeyboardInterrupt in join can
    # mark a live thread as stopped (CPython's bpo-45274 handling).
    starter = threading.Thread(target=start, name="hedgerow.run: starting components")
    try:
        starter.start()
        while not starting_done.wait(1.0):
            pass
        if failed:
            raise failed[0]
        tree = started[0]
        while not tree.done:
            tree._done.wait(1.0)
        if not stop_at_close:
            forever = threading.Event()
            while True:
                forever.wait(1.0)
    except KeyboardInterrupt:
        logger.info("Interrupted: stopping the components")
        for component in components:
            component._cancel_first_joins()  # a router that never came: stop waiting
        if starter.ident is not None:
            starting_done.wait()
        if not started:
            raise
        tree = started[0]
        tree.stop()
    starter.join()
    assert tree.reason is not None
    return tree.reason


def _start_logging(level: str | None) -> None:
    if level is None:
        return
    if level not in _LEVELS:
        msg = f"log_level={level!r}: expected one of {', '.join(_LEVELS)} or None"
        raise ValueError(msg)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=_LEVELS[level], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
