"""The management API's settings: where a container's or a node's management session joins.

A `Management` says where the management session joins (transports, realm,
authentication, as a component's), under which URI prefix its procedures are
registered, and which caller roles may call them. The session itself, a
component, is `hedgerow.components._management_service`'s `ManagementService`.

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_ROLES",
    "Management",
    "container_prefix",
    "node_prefix",
    "worker_prefix",
]

DEFAULT_ROLES = ("management",)
"""The caller roles allowed by default."""

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
