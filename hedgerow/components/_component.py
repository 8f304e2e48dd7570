# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""`Component` (autobahn's Component API) and `run`, on hedgerow actors.

A `Component` is a description: its transports, realm, handlers and
registrations. Each time it starts, under a supervisor or by `run`, it builds
a new `ComponentActor`, an incarnation that joins the realm, registers and
subscribes again, and serves until it leaves, is stopped, or fails. So a
component is a child like any other: ``ChildSpec("svc", component)`` (a
component is the factory of its actors) or ``component.child_spec("svc")``.

All handlers of a component run one at a time: user code needs no locks.
Plain ones run on its actor's thread. If any handler (or ``main``) is
``async def``, all of them run on an event loop instead, as autobahn's do:
the transport's own loop (the WAMP transport on asyncio) or hedgerow's, in
an event-loop actor (`hedgerow.components._component_runner`), and the session's
requests return awaitables (`hedgerow.transports._async_session`); an
``await`` holds back the component's next handler, and ``main`` runs as a
task beside them. A coroutine function given to a plain component's session,
or an awaitable returned by one of its listeners, is a TypeError. How
handlers run and what happens when they raise (the same in both styles):

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

import inspect
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from autobahn.wamp.types import RegisterOptions, SubscribeOptions

from hedgerow.components._component_actor import ComponentActor
from hedgerow.supervision._spec import ChildSpec
from hedgerow.supervision._treecomponents import register_component_type
from hedgerow.transports._base import resolve_transports

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow.transports._session import ComponentSession

__all__ = ["EVENTS", "SETTINGS", "Component"]

EVENTS = ("connect", "join", "ready", "leave", "disconnect", "connectfailure")
"""The events a component's listeners can observe (autobahn's, less ``start``)."""

SETTINGS = ("transports", "realm", "extra", "authentication")
"""Where and as whom a component joins: what `Component.configured` may change."""

_configured_lock = threading.Lock()


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
        self._async = inspect.iscoroutinefunction(main)

    def __repr__(self) -> str:
        return f"<Component {self.name!r} realm={self.realm!r}>"

    @property
    def is_async(self) -> bool:
        """True if any handler (or `main`) is a coroutine function: then every
        handler of this component runs on an event loop (see the module docstring)."""
        return self._async

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
        if inspect.iscoroutinefunction(fn):
            self._async = True
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
            def do_registration(session: ComponentSession, _details: Any) -> Any:
                return session.register(fn, procedure=uri, options=options, check_types=check_types)

            self.on("join", do_registration)
            if inspect.iscoroutinefunction(fn):
                self._async = True
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
            def do_subscription(session: ComponentSession, _details: Any) -> Any:
                return session.subscribe(fn, topic=topic, options=options, check_types=check_types)

            self.on("join", do_subscription)
            if inspect.iscoroutinefunction(fn):
                self._async = True
            return fn

        return decorator

    def _fire(self, event: str, *args: Any) -> None:
        """Run the listeners of `event` on the calling thread (a component whose
        handlers are all plain functions)."""
        for listener in list(self._listeners[event]):
            outcome = listener(*args)
            if inspect.isawaitable(outcome):
                if inspect.iscoroutine(outcome):
                    outcome.close()  # never "never awaited": it cannot run here
                msg = (
                    f"{self.name}: the {event!r} listener {listener!r} returned an awaitable, "
                    "but this component's handlers run on its actor's thread: declare it "
                    "with async def, so that the component runs its handlers on an event loop"
                )
                raise TypeError(msg)


register_component_type(Component)  # a tree file's child may be one (_treecomponents)


def _check_realm(realm: Any) -> None:
    if not isinstance(realm, str) or not realm:
        msg = f"realm={realm!r}: expected a realm name"
        raise ValueError(msg)
