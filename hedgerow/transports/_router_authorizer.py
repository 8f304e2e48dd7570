# mypy: disable-error-code="no-untyped-call,misc"
# (autobahn ships py.typed but leaves its constructors unannotated; its session is untyped.)
"""The dynamic authorizer inside the routers `hedgerow router` runs (Crossbar loads it).

Every role of those routers names ``hedgerow.router.authorize`` as its
authorizer; this router component registers it on each realm, with the
`Policy` from its ``extra``, before the router's transports listen. Crossbar
runs it on Twisted in its router worker: hedgerow itself never imports this
module (importing it selects Twisted for txaio).

The procedure runs on the router worker's reactor thread. If it raises,
Crossbar refuses the action; an unknown role, action or match is refused.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.wamp import ApplicationSession

from hedgerow.transports._authorization import AUTHORIZER_URI, Policy

__all__ = ["RouterAuthorizer"]


class RouterAuthorizer(ApplicationSession):
    """Registers `AUTHORIZER_URI`, which answers Crossbar from the policy in ``config.extra``."""

    def onJoin(self, details: Any) -> Any:  # noqa: N802, ARG002 - autobahn's hook
        self.policy = Policy.from_data(self.config.extra or {})
        return self.register(self.authorize, AUTHORIZER_URI)

    def authorize(
        self, session: dict[str, Any], uri: str, action: str, options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Crossbar's question: may this session do `action` on `uri` (with `options`)?"""
        role = session.get("authrole") if isinstance(session, dict) else None
        answer = self.policy.decision(str(role), uri, action, options)
        if not answer["allow"]:
            self.log.info(
                "hedgerow: refused {action} {uri!r} (match {match}) to role {role!r}",
                action=action,
                uri=uri,
                match=(options or {}).get("match", "exact"),
                role=role,
            )
        return answer
