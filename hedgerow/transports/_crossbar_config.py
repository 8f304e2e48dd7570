"""Crossbar's node configuration for a `RouterConfig`: the JSON ``crossbar start`` reads.

Secrets stay environment variables (``${HEDGEROW_ROUTER_SECRET}``, Crossbar's
own substitution), so the file holds none.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow.transports._authorization import AUTHORIZER_URI, ROUTER_ROLE

if TYPE_CHECKING:
    from hedgerow.transports._router_config import RouterConfig

__all__ = ["AUTHORIZER_CLASS", "node_config"]

_HEDGEROW_ROOT = Path(__file__).resolve().parents[2]
"""The directory holding this hedgerow package (on the router worker's Python path)."""

AUTHORIZER_CLASS = "hedgerow.transports._router_authorizer.RouterAuthorizer"


def node_config(config: RouterConfig) -> dict[str, Any]:
    """Crossbar's node configuration (version 2) for `config`; secrets stay ``${VAR}``.

    Every role is authorized by the router component `AUTHORIZER_CLASS`,
    which Crossbar imports from this hedgerow's directory.
    """
    names = [config.role] if config.shared else []
    names += [principal.role for principal in config.principals if config.auth]
    if config.anonymous:
        names.append(config.anonymous_role)
    if config.management_secret_env is not None:
        names.append(config.management_role)
    roles = [{"name": name, "authorizer": AUTHORIZER_URI} for name in names]
    realms = [{"name": realm, "roles": roles} for realm in config.realms]
    authorizers = [
        {
            "type": "class",
            "classname": AUTHORIZER_CLASS,
            "realm": realm,
            "role": ROUTER_ROLE,
            "extra": config.policy.as_data(),
        }
        for realm in config.realms
    ]
    auth = _auth_section(config)
    serializers = list(config.serializers)
    transports: list[dict[str, Any]] = []
    if config.websocket_port is not None:
        transports.append(
            {
                "type": "websocket",
                "endpoint": _tcp_endpoint(config, config.websocket_port),
                "serializers": serializers,
                "auth": auth,
                # No web page in a browser joins but from an allowed origin.
                "options": {
                    "allowed_origins": list(config.allowed_origins),
                    "allow_null_origin": False,
                },
            }
        )
    if config.rawsocket_port is not None:
        transports.append(
            {
                "type": "rawsocket",
                "endpoint": _tcp_endpoint(config, config.rawsocket_port),
                "serializers": serializers,
                "auth": auth,
            }
        )
    if config.rawsocket_path:
        transports.append(
            {
                "type": "rawsocket",
                "endpoint": {"type": "unix", "path": str(config.rawsocket_path)},
                "serializers": serializers,
                "auth": auth,
            }
        )
    return {
        "version": 2,
        "controller": {},
        "workers": [
            {
                "type": "router",
                "options": {"pythonpath": [str(_HEDGEROW_ROOT)]},
                "realms": realms,
                "components": authorizers,
                "transports": transports,
            }
        ],
    }


def _tcp_endpoint(config: RouterConfig, port: int) -> dict[str, Any]:
    """A listening TCP endpoint on `port`, with Crossbar's ``tls`` section when asked."""
    endpoint: dict[str, Any] = {"type": "tcp", "interface": config.host, "port": port}
    if config.tls:
        endpoint["tls"] = {"key": str(config.tls_key), "certificate": str(config.tls_certificate)}
    return endpoint


def _auth_section(config: RouterConfig) -> dict[str, Any]:
    """Static ticket and WAMP-CRA principals: (authid, ``${VAR}`` of its secret, role)."""
    principals = [(config.authid, config.secret_env, config.role)] if config.shared else []
    principals += [(p.authid, p.variable, p.role) for p in config.principals]
    if config.management_secret_env is not None:
        principals.append(
            (config.management_authid, config.management_secret_env, config.management_role)
        )
    auth: dict[str, Any] = {}
    if "ticket" in config.auth:
        auth["ticket"] = {
            "type": "static",
            "principals": {
                authid: {"ticket": "${" + variable + "}", "role": role}
                for authid, variable, role in principals
            },
        }
    if "wampcra" in config.auth:
        auth["wampcra"] = {
            "type": "static",
            "users": {
                authid: {"secret": "${" + variable + "}", "role": role}
                for authid, variable, role in principals
            },
        }
    if config.anonymous:
        auth["anonymous"] = {"type": "static", "role": config.anonymous_role}
    return auth
