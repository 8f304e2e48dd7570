# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""The management API on the wire: procedures a container or a node serves to operators.

`ManagementService` runs the management session that a `Management`
(`hedgerow.supervision._management`) describes as a supervised component in a
small tree of its own, so a lost router is retried with the transport's
settings and never touches the tree it manages.

Its procedures are ``<prefix>.<name>`` (the prefixes: `hedgerow.supervision._management`).
A caller whose authrole is not in `roles` gets ``wamp.error.not_authorized``,
whatever the router allowed. What the service publishes goes to sessions in
`roles` only (``eligible_authrole``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from hedgerow.components._component import Component
from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
from hedgerow.supervision._tree import Tree

if TYPE_CHECKING:
    from hedgerow.supervision._management import Management
    from hedgerow.transports._session import ComponentSession

__all__ = ["NOT_AUTHORIZED", "ManagementService", "tree_procedures"]

logger = logging.getLogger("hedgerow.components")

NOT_AUTHORIZED = "wamp.error.not_authorized"


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
