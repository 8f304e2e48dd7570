# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.) autobahn and
# the management session are imported only by a container that serves its API.
"""`Container`: Crossbar's container, a supervisor of components with a management API.

A container runs its components (and any other actors) as the children of one
supervisor, in a tree of its own. Crossbar's modes keep their names:

- ``restart``: ``restart-always``, ``restart-failed`` (``restart-on-failed``,
  the name Crossbar's config checker accepts, is the same) or ``restart-never``
  (Crossbar's default): the restart type of every component whose config names
  none. Unlike Crossbar's, restarts wait for the child's backoff and count
  against the supervisor's intensity, so a crash loop ends.
- ``shutdown``: ``shutdown-manual`` (the default),
  ``shutdown-on-any-component-failed``, ``shutdown-on-any-component-stopped``,
  ``shutdown-on-last-component-stopped``. Components count for it unless they
  are restarted always (Crossbar's config checker rejects that combination too),
  and a stop the container itself ordered (``stop_component``) never triggers it.

The management API is Crossbar's: `start_component`, `stop_component`,
`restart_component`, `get_component`, `get_components`, `shutdown`, with the
same arguments and results (plus a component's state, incarnation and restart
count). Call it in process, or give a `Management` and it is also served as
WAMP procedures ``<prefix>.<name>`` (see `hedgerow.supervision._management`),
and ``<prefix>.on_component_started``, ``on_component_stopped`` and
``on_component_restarted`` are published. Errors keep Crossbar's meaning under
hedgerow's URIs: ``hedgerow.error.no_such_object``,
``hedgerow.error.already_running``, ``hedgerow.error.invalid_configuration``.

A component's config is its tree-file table less the id: ``start``
(``module:name``), the component settings ``realm``, ``transports``,
``extra``, ``authentication``, and a child's ``restart``, ``shutdown`` and
backoff keys. ``reload_modules=True`` first re-imports the user modules that
changed on disk (`ModuleReloader`), so a fixed component comes back with its
new code.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Self

from hedgerow._events import EventKind, EventStream
from hedgerow._exceptions import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ConfigError,
    ConfigProblem,
    SpecError,
    StartError,
)
from hedgerow.actors._reason import describe
from hedgerow.supervision._management import Management, container_prefix
from hedgerow.supervision._reloader import ModuleReloader
from hedgerow.supervision._spec import (
    BACKOFF_FIELDS,
    ChildSpec,
    Restart,
    ShutdownPolicy,
    SupervisorSpec,
)
from hedgerow.supervision._supervisor import ChildState
from hedgerow.supervision._tree import Tree
from hedgerow.supervision._treefile import child_from_data, child_to_data

if TYPE_CHECKING:
    from types import TracebackType

    from hedgerow._clock import Clock
    from hedgerow._events import Event
    from hedgerow.actors._reason import Reason
    from hedgerow.components._management_service import ManagementService

__all__ = [
    "ALREADY_RUNNING",
    "CANNOT_START",
    "INVALID_CONFIGURATION",
    "NO_SUCH_OBJECT",
    "REDACTED",
    "Container",
    "redacted",
]

logger = logging.getLogger("hedgerow.components")

NO_SUCH_OBJECT = "hedgerow.error.no_such_object"
ALREADY_RUNNING = "hedgerow.error.already_running"
CANNOT_START = "hedgerow.error.cannot_start"
INVALID_CONFIGURATION = "hedgerow.error.invalid_configuration"

REDACTED = "<redacted>"
"""What an announcement shows in place of a secret."""

_IDENTITY = ("authid", "authrole")

ComponentConfig = Mapping[str, Any]


def redacted(value: Any) -> Any:
    """`value` as announced: under every ``authentication`` key all but the authid and
    authrole, and every string that names a ``${VAR}``, replaced by `REDACTED`."""
    if isinstance(value, Mapping):
        return {
            key: _redacted_authentication(item) if key == "authentication" else redacted(item)
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redacted(item) for item in value]
    if isinstance(value, str) and "${" in value:
        return REDACTED
    return value


def _redacted_authentication(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return REDACTED
    methods: dict[str, Any] = {}
    for method, settings in value.items():
        if not isinstance(settings, Mapping):
            methods[method] = REDACTED
            continue
        methods[method] = {
            key: redacted(item) if key in _IDENTITY and isinstance(item, str) else REDACTED
            for key, item in settings.items()
        }
    return methods


class Container:
    """Components under one supervisor, with Crossbar's modes and management API.

    `components` maps ids to configs (or is a list of `ChildSpec`). The
    container starts with `start()` (or as a context manager) and runs until
    `shutdown()`, `stop()`, or its shutdown mode ends it; `wait()` returns
    its root's exit reason, as `Tree.wait` does. `backoff` holds the backoff
    defaults for its components (`SupervisorSpec`'s ``backoff`` and backoff
    fields, by name); without it they restart at once.
    """

    def __init__(
        self,
        components: Mapping[str, ComponentConfig] | Iterable[ChildSpec] = (),
        *,
        name: str = "container",
        restart: Restart | str = Restart.NEVER,
        shutdown: ShutdownPolicy | str = ShutdownPolicy.MANUAL,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Mapping[str, Any] | None = None,
        management: Management | Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        events: EventStream | None = None,
    ) -> None:
        self.name = name
        self.restart = Restart.parse(restart, name, "restart")
        self.shutdown_mode = ShutdownPolicy.parse(shutdown, name, "shutdown")
        if self.restart is Restart.ALWAYS and self.shutdown_mode is not ShutdownPolicy.MANUAL:
            rule = (
                f"restart-always never lets a component stop, so {self.shutdown_mode.value} "
                "could never happen: use restart-failed or restart-never"
            )
            raise SpecError(name, "restart", "restart-always", rule)
        self.management: Management | None = None
        if management is not None:
            settings = Management.parse(management)
            self.management = settings.with_prefix(container_prefix(name)) if settings else None
        self.events = events if events is not None else EventStream()
        self.reloader = ModuleReloader()
        self._clock = clock
        self._lock = threading.RLock()
        self._configs: dict[str, dict[str, Any]] = {}
        self._started: dict[str, float] = {}
        children = self._initial_children(components)
        defaults = dict(backoff or {})
        unknown = sorted(set(defaults) - {"backoff", *BACKOFF_FIELDS})
        if unknown:
            rule = f"expected some of backoff, {', '.join(BACKOFF_FIELDS)}"
            raise SpecError(name, "backoff", unknown, rule)
        self.spec = SupervisorSpec(
            children,
            name=name,
            shutdown_policy=self.shutdown_mode,
            max_restarts=max_restarts,
            period=period,
            **defaults,
        )
        self.tree: Tree | None = None
        self._service: ManagementService | None = None

    # -- life --------------------------------------------------------------

    def start(self) -> Self:
        """Start the components, then the management session (if any)."""
        if self.tree is not None:
            msg = f"container {self.name!r} has already started"
            raise RuntimeError(msg)
        self.events.subscribe(self._on_event)
        self.tree = Tree(self.spec, name=self.name, clock=self._clock, events=self.events)
        if self.management is not None:
            from hedgerow.components._management_service import (  # noqa: PLC0415
                ManagementService,
            )

            self._service = ManagementService(
                self.management, self.procedures(), name=f"container {self.name}"
            )
            try:
                self._service.start()
            except BaseException:
                self.tree.stop()
                raise
        return self

    def procedures(self) -> dict[str, Any]:
        """The management API as served over WAMP: name to function."""
        return {
            "start_component": self._wamp(self.start_component),
            "stop_component": self._wamp(self.stop_component),
            "restart_component": self._wamp(self.restart_component),
            "get_component": self._wamp(self._get_component_shown),
            "get_components": self._wamp(self.get_components),
            "shutdown": self._wamp(self.shutdown),
        }

    @property
    def done(self) -> bool:
        return self.tree is not None and self.tree.done

    @property
    def reason(self) -> Reason | None:
        """The root's exit reason, once the container has ended (as `Tree.reason`)."""
        return self.tree.reason if self.tree is not None else None

    @property
    def gave_up(self) -> bool:
        return self.tree is not None and self.tree.gave_up

    def request_stop(self) -> None:
        """Begin stopping every component (reverse order); don't wait."""
        self._running().request_stop()

    def wait(self, timeout: float | None = None) -> Reason:
        """Block until the container ends (and its management session has left)."""
        reason = self._running().wait(timeout)
        self._stop_service()
        return reason

    def stop(self, timeout: float | None = None) -> Reason:
        """Stop every component (reverse order) and the management session; wait."""
        tree = self._running()
        tree.request_stop()
        return self.wait(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.tree is not None:
            self.stop()

    # -- the management API ------------------------------------------------

    def start_component(
        self, component_id: str, config: ComponentConfig, reload_modules: bool = False
    ) -> dict[str, Any]:
        """Start a component under `component_id`; ``{"id", "config", "started"}``.

        Raises `ConfigError` for a bad config and `AlreadyStarted` if a
        component with that id is running (or restarting).
        """
        tree = self._running()
        with self._lock:
            if not isinstance(component_id, str) or not component_id:
                problem = ConfigProblem("component_id", component_id, "expected a non-empty string")
                raise ConfigError(f"container {self.name}", [problem])
            reloaded = self.reloader.reload() if reload_modules else []
            spec = self._child(component_id, config)
            try:
                tree.start_child(spec)
            except AlreadyPresent:
                if self._known(component_id).state is not ChildState.STOPPED:
                    raise AlreadyStarted(component_id, None) from None
                # Kept after it stopped (restart-failed, normal exit): replace it.
                tree.delete_child(component_id)
                tree.start_child(spec)
            self._configs[component_id] = dict(config)
            started: dict[str, Any] = {
                "id": component_id,
                "config": dict(config),
                "started": self._when(component_id),
            }
            if reload_modules:
                started["reloaded"] = reloaded
        self._announce("on_component_started", started)
        return started

    def stop_component(self, component_id: str) -> dict[str, Any]:
        """Stop a component and forget it; ``{"component_id", "uptime"}``."""
        tree = self._running()
        with self._lock:
            self._known(component_id)
            uptime = self._uptime(component_id)
            tree.stop_child(component_id)
            with contextlib.suppress(ChildNotFound):  # restart-never: dropped already
                tree.delete_child(component_id)
            self._started.pop(component_id, None)
            self._configs.pop(component_id, None)
            stopped = {"component_id": component_id, "uptime": uptime}
        self._announce("on_component_stopped", stopped)
        return stopped

    def restart_component(self, component_id: str, reload_modules: bool = False) -> dict[str, Any]:
        """Stop a component and start it again from the config it was started with
        (re-importing changed modules first if `reload_modules`); ``{"stopped", "started"}``."""
        with self._lock:
            config = self._config_of(component_id)
            stopped = self.stop_component(component_id)
            started = self.start_component(component_id, config, reload_modules)
        restarted = {"stopped": stopped, "started": started}
        self._announce("on_component_restarted", restarted)
        return restarted

    def get_component(self, component_id: str) -> dict[str, Any]:
        """What the container knows of a component: id, started, uptime, config, state,
        incarnation and restarts."""
        info = self._known(component_id)
        return {
            "id": component_id,
            "started": self._when(component_id),
            "uptime": self._uptime(component_id),
            "config": self._config_of(component_id),
            "state": info.state.value,
            "incarnation": info.incarnation,
            "restarts": info.restarts,
        }

    def _get_component_shown(self, component_id: str) -> dict[str, Any]:
        """`get_component` as a management client sees it: the config's secrets redacted
        (the process that holds them keeps them; nobody reads them back over WAMP)."""
        return redacted(self.get_component(component_id))  # type: ignore[no-any-return]

    def get_components(self) -> list[str]:
        """The sorted ids of the components running or about to restart."""
        children = self._running().which_children()
        return sorted(c.id for c in children if c.state is not ChildState.STOPPED)

    def shutdown(self) -> list[str]:
        """Stop every component, then the container; the ids of those that were running.

        Returns at once; `wait()` returns when all have stopped.
        """
        tree = self._running()
        ids = self.get_components()
        tree.request_stop()
        return ids

    # -- helpers -------------------------------------------------------------

    def _initial_children(
        self, components: Mapping[str, ComponentConfig] | Iterable[ChildSpec]
    ) -> list[ChildSpec]:
        children: list[ChildSpec] = []
        if isinstance(components, Mapping):
            for component_id, config in components.items():
                children.append(self._child(component_id, config))
                self._configs[component_id] = dict(config)
        else:
            children.extend(components)
        return children

    def _child(self, component_id: str, config: ComponentConfig) -> ChildSpec:
        """The spec for a config, with the container's modes where it names none."""
        data = dict(config) if isinstance(config, Mapping) else config
        if isinstance(data, dict):
            data.setdefault("restart", self.restart.value)
            with contextlib.suppress(SpecError):  # child_from_data reports it with its key
                restart = Restart.parse(data["restart"], component_id, "restart")
                if "significant" not in data:
                    counts = self.shutdown_mode is not ShutdownPolicy.MANUAL
                    data["significant"] = counts and restart is not Restart.ALWAYS
        try:
            spec = child_from_data(
                component_id,
                data,
                source=f"container {self.name}",
                key=f"components.{component_id}",
            )
        finally:
            self.reloader.track()
        return spec

    def _running(self) -> Tree:
        if self.tree is None:
            msg = f"container {self.name!r} has not started"
            raise RuntimeError(msg)
        return self.tree

    def _known(self, component_id: str) -> Any:
        for info in self._running().which_children():
            if info.id == component_id:
                return info
        raise ChildNotFound(component_id)

    def _config_of(self, component_id: str) -> dict[str, Any]:
        config = self._configs.get(component_id)
        if config is not None:
            return config
        for spec in self.spec.children:  # given as a ChildSpec, not a config
            if spec.id == component_id:
                try:
                    return child_to_data(spec)
                except SpecError:
                    return {"start": repr(spec.start)}
        raise ChildNotFound(component_id)

    def _on_event(self, event: Event) -> None:
        prefix = f"{self.name}/"
        if not event.path.startswith(prefix) or "/" in event.path[len(prefix) :]:
            return
        if event.kind in (EventKind.STARTED, EventKind.RESTARTED):
            self._started[event.child_id] = time.time()

    def _when(self, component_id: str) -> str | None:
        started = self._started.get(component_id)
        if started is None:
            return None
        import datetime as dt  # noqa: PLC0415 - a worker pays for it only when asked

        return dt.datetime.fromtimestamp(started, dt.UTC).isoformat()

    def _uptime(self, component_id: str) -> float:
        started = self._started.get(component_id)
        return 0.0 if started is None else round(time.time() - started, 6)

    def _announce(self, topic: str, details: dict[str, Any]) -> None:
        """Publish `details`, secrets hidden, to the management roles."""
        if self._service is not None:
            self._service.publish(topic, redacted(details))

    def _stop_service(self) -> None:
        service, self._service = self._service, None
        if service is not None:
            service.stop()

    def _wamp(self, method: Any) -> Any:
        """`method` with hedgerow's errors turned into WAMP errors with Crossbar's meaning."""
        from autobahn.wamp.exception import ApplicationError  # noqa: PLC0415 - served over WAMP

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except ChildNotFound as exc:
                msg = f"no component with ID {exc.child_id!r} in container {self.name!r}"
                raise ApplicationError(NO_SUCH_OBJECT, msg) from None
            except (AlreadyStarted, AlreadyPresent) as exc:
                msg = f"duplicate component {exc.child_id!r}: one with this ID is running"
                raise ApplicationError(ALREADY_RUNNING, msg) from None
            except StartError as exc:
                msg = f"component {exc.child_id!r} failed to start: {describe(exc.cause)}"
                raise ApplicationError(CANNOT_START, msg) from None
            except (ConfigError, SpecError, TypeError) as exc:
                msg = f"invalid component configuration: {exc}"
                raise ApplicationError(INVALID_CONFIGURATION, msg) from None

        call.__name__ = getattr(method, "__name__", "call")
        return call
