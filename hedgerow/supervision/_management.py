# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""The management API on the wire: procedures a container or a node serves to operators.

A `Management` says where the management session joins (transports, realm,
authentication, as a component's), under which URI prefix its procedures are
registered, and which caller roles may call them. `ManagementService` runs
that session as a supervised component in a small tree of its own, so a lost
router is retried with the transport's settings and never touches the tree
it manages.

Procedures are ``<prefix>.<name>``: ``hedgerow.container.<container>.start_component``
for a container on its own, ``hedgerow.node.<node>.worker.<worker>.start_component``
for the container of a worker process, ``hedgerow.node.<node>.get_tree`` for a
node (as Crossbar's ``crossbar.worker.<worker>.start_component``). A caller
whose authrole is not in `roles` gets ``wamp.error.not_authorized``, whatever
the router allowed; the routers that `hedgerow router` configures also keep
every other role from registering, subscribing, calling or publishing
anything that can match ``hedgerow.``. What the service publishes goes to
sessions in `roles` only (``eligible_authrole``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from hedgerow.actors._component import Component
from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
from hedgerow.supervision._tree import Tree

if TYPE_CHECKING:
    from hedgerow.transports._session import ComponentSession

__all__ = [
    "DEFAULT_ROLES",
    "NOT_AUTHORIZED",
    "Management",
    "ManagementService",
    "container_prefix",
    "node_prefix",
    "tree_procedures",
    "worker_prefix",
]

logger = logging.getLogger("hedgerow.supervision")

DEFAULT_ROLES = ("management",)
"""The caller roles allowed by default."""

NOT_AUTHORIZED = "wamp.error.not_authorized"

_SEGMENT = re.compile(r"[a-z0-9_]+")


def _segment(name: str) -> str:
    """`name` as one URI component (WAMP's strict rule: lower case, digits, ``_``)."""
    text = "_".join(_SEGMENT.findall(name.lower()))
    return text or "_"


def container_prefix(container: str) -> str:
    """The management prefix of a container on its own."""
    return f"hedgerow.container.{_segment(container)}"


def node_prefix(node: str) -> str:
    """The management prefix of a node (``hedgerow run`` with a management table)."""
    return f"hedgerow.node.{_segment(node)}"


def worker_prefix(node: str, worker: str) -> str:
    """The management prefix of the container in one of a node's worker processes."""
    return f"{node_prefix(node)}.worker.{_segment(worker)}"


@dataclass(frozen=True)
class Management:
    """Where a management session joins, and who may call it.

    `transports`, `realm` and `authentication` are a component's (None: the
    process's in-process router). `prefix` defaults to the owner's (see the
    module docstring). `roles` are the caller authroles allowed.
    """

    transports: Any = None
    realm: str = "realm1"
    authentication: Mapping[str, Any] | None = None
    prefix: str | None = None
    roles: Sequence[str] = DEFAULT_ROLES

    @classmethod
    def parse(cls, value: Management | Mapping[str, Any] | None) -> Management | None:
        """A `Management` from itself, a mapping of its fields (a tree file's table), or None."""
        if value is None or isinstance(value, Management):
            return value
        if not isinstance(value, Mapping):
            msg = f"management={value!r}: expected a table of settings"
            raise ValueError(msg)  # noqa: TRY004 - a config value error
        unknown = sorted(set(value) - set(cls.__dataclass_fields__))
        if unknown:
            msg = f"management: unknown keys {unknown}"
            raise ValueError(msg)
        roles = value.get("roles", DEFAULT_ROLES)
        if isinstance(roles, str) or not all(isinstance(r, str) for r in roles):
            msg = f"management.roles={roles!r}: expected a list of role names"
            raise ValueError(msg)
        return cls(**{**value, "roles": tuple(roles)})

    def as_data(self) -> dict[str, Any]:
        """The JSON-able settings (what a worker process receives)."""
        data: dict[str, Any] = {"realm": self.realm, "roles": list(self.roles)}
        if self.transports is not None:
            data["transports"] = self.transports
        if self.authentication is not None:
            data["authentication"] = dict(self.authentication)
        if self.prefix is not None:
            data["prefix"] = self.prefix
        return data

    def with_prefix(self, prefix: str) -> Management:
        """These settings with `prefix`, unless they name their own."""
        if self.prefix is not None:
            return self
        return Management(self.transports, self.realm, self.authentication, prefix, self.roles)


Procedure = Callable[..., Any]


class ManagementService:
    """Serves `procedures` (name to function) under `settings.prefix`, for allowed roles.

    Each function is called on the management component's thread with the
    call's arguments; what it returns goes back to the caller, and what it
    raises goes back as an error (`ApplicationError` keeps its URI).
    """

    def __init__(
        self,
        settings: Management,
        procedures: Mapping[str, Procedure],
        *,
        name: str,
    ) -> None:
        if settings.prefix is None:
            msg = f"{name}: management settings need a prefix"
            raise ValueError(msg)
        self.settings = settings
        self.prefix = settings.prefix
        self.name = name
        self.procedures = dict(procedures)
        self.component = Component(
            transports=settings.transports,
            realm=settings.realm,
            authentication=dict(settings.authentication or {}),
            name=f"{name} management",
        )
        self.component.on_join(self._register)
        self._tree: Tree | None = None
        self._session: ComponentSession | None = None

    def uri(self, procedure: str) -> str:
        return f"{self.prefix}.{procedure}"

    def start(self) -> None:
        """Join and register (returns once the procedures are registered)."""
        spec = SupervisorSpec(
            [ChildSpec("management", self.component, initial_retry_delay=0.5)],
            max_restarts=10,
            period=60,
        )
        self._tree = Tree(spec, name=f"{self.name}.management")

    def stop(self) -> None:
        tree, self._tree = self._tree, None
        if tree is not None:
            tree.stop()

    def publish(self, topic: str, *args: Any, **kwargs: Any) -> None:
        """Publish ``<prefix>.<topic>`` on the management session, if it is joined, to
        sessions in the allowed `roles` only (``eligible_authrole``)."""
        session = self._session
        if session is None:
            return
        options = PublishOptions(eligible_authrole=list(self.settings.roles))
        try:
            session.publish(self.uri(topic), *args, options=options, **kwargs)
        except Exception:
            logger.debug("%s: could not publish %s", self.name, topic, exc_info=True)

    def _register(self, session: ComponentSession, _details: Any) -> None:
        self._session = session
        for name, fn in self.procedures.items():
            session.register(
                self._guarded(name, fn),
                self.uri(name),
                options=RegisterOptions(details_arg="details"),
            )

    def _guarded(self, name: str, fn: Procedure) -> Procedure:
        roles = frozenset(self.settings.roles)
        uri = self.uri(name)

        def call(*args: Any, details: Any = None, **kwargs: Any) -> Any:
            role = getattr(details, "caller_authrole", None)
            if role not in roles:
                allowed = ", ".join(sorted(roles))
                msg = f"{uri}: caller role {role!r} may not call this (allowed: {allowed})"
                logger.warning("%s: refused a call from role %r", uri, role)
                raise ApplicationError(NOT_AUTHORIZED, msg)
            return fn(*args, **kwargs)

        return call


def tree_procedures(tree: Tree) -> dict[str, Procedure]:
    """A node's management API over its tree: ``get_tree`` and ``shutdown``."""
    started = time.time()

    def get_tree() -> dict[str, Any]:
        return {
            "name": tree.name,
            "pid": os.getpid(),
            "uptime": round(time.time() - started, 3),
            "children": tree.describe(),
        }

    def shutdown() -> list[str]:
        ids = [child.id for child in tree.which_children()]
        tree.request_stop()
        return ids

    return {"get_tree": get_tree, "shutdown": shutdown}
