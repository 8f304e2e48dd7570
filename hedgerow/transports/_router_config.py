"""What a router `hedgerow router` runs looks like: `RouterConfig`.

`RouterConfig` describes a router as hedgerow needs one: realms, a WebSocket
and a RawSocket transport on 127.0.0.1 (over TLS when given a key and
certificate), ticket or WAMP-CRA authentication with one shared secret
(anonymous access only when asked for), a management principal, and
principals with secrets and URI prefixes of their own. Every role is
authorized by hedgerow's `Policy` (``hedgerow/transports/_authorization.py``)
through a dynamic authorizer the router runs.
`hedgerow.transports._crossbar_config.node_config` turns it into Crossbar's
JSON. Secrets are never written to disk: the config names
environment variables (``${HEDGEROW_ROUTER_SECRET}``, Crossbar's own
substitution) that the crossbar process gets in its environment.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow.transports._authorization import (
    ROUTER_ROLE,
    Policy,
    Principal,
    check_distinct,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "AUTH_METHODS",
    "MANAGEMENT_PREFIX",
    "SECRET_ENV",
    "CrossbarError",
    "RouterConfig",
    "free_port",
]

SECRET_ENV = "HEDGEROW_ROUTER_SECRET"  # noqa: S105 - the variable's name, not a secret
"""The environment variable the router (and components) read the shared secret from."""

AUTH_METHODS = ("ticket", "wampcra")
"""Authentication methods with a shared secret that `RouterConfig` can enable."""

_SERIALIZERS = ("msgpack", "cbor", "json")


class CrossbarError(RuntimeError):
    """Crossbar.io could not be found, configured, started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class RouterConfig:
    """A Crossbar.io router for hedgerow components.

    `websocket_port` / `rawsocket_port`: a port, 0 for a free one (chosen by
    `resolved`), or None for no such transport. `rawsocket_path` adds a
    RawSocket transport on a Unix socket. `auth` lists the methods enabled
    for the principal `authid` (ticket, wampcra); the secret comes from the
    environment variable `secret_env` or the file `secret_file`. `anonymous`
    lets clients in without credentials, in role `anonymous_role`.

    `tls_key` and `tls_certificate` (PEM files, given together) put the TCP
    transports behind TLS: Crossbar's ``"tls": {"key": ..., "certificate":
    ...}`` on their endpoints, so clients use ``wss://`` and ``rss://`` URLs
    (Crossbar listens with TLS 1.3 only). The paths are made absolute
    (Crossbar reads relative ones from its node directory). The Unix socket
    transport stays plain.

    `management_secret_env` names the variable holding a second secret, for
    the principal `management_authid` in role `management_role`: the only
    role that may register, subscribe, call or publish anything that can
    match ``hedgerow.`` (hedgerow's management API and its announcements).

    `principals` have secrets, roles and URI prefixes of their own: only a
    principal may register or publish under its prefixes, and it registers
    nowhere else. With principals, the shared principal `authid` is optional:
    it is there when its secret is set.

    `allowed_origins` lists the origins (autobahn's patterns, such as
    ``"https://*.example.com"``) whose web pages may open the WebSocket
    transport in a browser; none by default. A browser lets any page it shows
    open a WebSocket to 127.0.0.1 and names the page in an ``Origin`` header:
    without this, any page a local user visits could join (as anonymous,
    with `anonymous`). Clients that send no ``Origin`` (not browsers: hedgerow,
    autobahn) are not concerned.
    """

    realms: Sequence[str] = ("realm1",)
    host: str = "127.0.0.1"
    websocket_port: int | None = 8080
    websocket_path: str = "ws"
    rawsocket_port: int | None = 8081
    rawsocket_path: str | None = None
    serializers: Sequence[str] = _SERIALIZERS
    auth: Sequence[str] = AUTH_METHODS
    authid: str = "hedgerow"
    role: str = "hedgerow"
    secret_env: str = SECRET_ENV
    secret_file: Path | str | None = None
    anonymous: bool = False
    anonymous_role: str = "anonymous"
    extra_env: Mapping[str, str] = field(default_factory=dict)
    tls_key: Path | str | None = None
    tls_certificate: Path | str | None = None
    management_secret_env: str | None = None
    management_authid: str = "management"
    management_role: str = "management"
    principals: Sequence[Principal] = ()
    allowed_origins: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.realms, str) or not self.realms:
            msg = f"realms={self.realms!r}: expected a non-empty list of realm names"
            raise ValueError(msg)
        object.__setattr__(self, "realms", tuple(self.realms))
        for name, port in (
            ("websocket_port", self.websocket_port),
            ("rawsocket_port", self.rawsocket_port),
        ):
            if port is not None and (
                not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535  # noqa: PLR2004
            ):
                msg = f"{name}={port!r}: expected a port number (0: a free one) or None"
                raise ValueError(msg)
        if self.websocket_port is None and self.rawsocket_port is None and not self.rawsocket_path:
            msg = "the router needs a transport: websocket_port, rawsocket_port or rawsocket_path"
            raise ValueError(msg)
        for serializer in self.serializers:
            if serializer not in _SERIALIZERS:
                expected = ", ".join(_SERIALIZERS)
                msg = f"serializers: invalid serializer {serializer!r} (expected one of {expected})"
                raise ValueError(msg)
        object.__setattr__(self, "serializers", tuple(self.serializers))
        object.__setattr__(self, "auth", tuple(self.auth))
        for method in self.auth:
            if method not in AUTH_METHODS:
                msg = f"auth: invalid method {method!r} (expected one of {', '.join(AUTH_METHODS)})"
                raise ValueError(msg)
        if not self.auth and not self.anonymous:
            msg = "auth=[] and anonymous=False: nobody could join; enable a method or anonymous"
            raise ValueError(msg)
        self._check_origins()
        self._check_tls()
        self._check_principals()

    def _check_origins(self) -> None:
        if isinstance(self.allowed_origins, str) or not all(
            isinstance(origin, str) and origin for origin in self.allowed_origins
        ):
            msg = f"allowed_origins={self.allowed_origins!r}: expected a list of origin patterns"
            raise ValueError(msg)
        object.__setattr__(self, "allowed_origins", tuple(self.allowed_origins))

    def _check_principals(self) -> None:
        object.__setattr__(self, "principals", tuple(self.principals))
        named = {"role": self.role, "anonymous_role": self.anonymous_role}
        for name, role in named.items():
            if role in (ROUTER_ROLE, self.management_role):
                msg = (
                    f"{name}={role!r}: that is the router's own or the management role; "
                    "pick another name"
                )
                raise ValueError(msg)
        if self.management_role == ROUTER_ROLE:
            msg = f"management_role={ROUTER_ROLE!r}: that is the router's own role"
            raise ValueError(msg)
        authids = {self.authid, self.management_authid}
        roles = {self.role, self.anonymous_role, self.management_role, ROUTER_ROLE}
        for principal in self.principals:
            if principal.authid in authids:
                msg = f"{principal.where}: the authid is taken (the shared or management one)"
                raise ValueError(msg)
            if principal.role in roles:
                msg = f"{principal.key('role')}: role {principal.role!r} is taken"
                raise ValueError(msg)
            authids.add(principal.authid)
            roles.add(principal.role)
        self._check_secrets_apart()
        self.policy  # noqa: B018 - checks that no two principals share a name

    def _check_secrets_apart(self) -> None:
        """No two principals (shared, management, `principals`) read one variable or file."""
        if self.management_secret_env == self.secret_env:
            msg = (
                f"management_secret_env={self.management_secret_env!r}: that is the shared "
                "secret's variable; the management principal needs a secret of its own"
            )
            raise ValueError(msg)
        taken = {self.secret_env: "the shared principal"}
        if self.management_secret_env is not None:
            taken[self.management_secret_env] = "the management principal"
        check_distinct(self.principals, taken)
        shared_file = None if self.secret_file is None else os.path.realpath(self.secret_file)
        for principal in self.principals:
            if principal.secret_file is not None and (
                os.path.realpath(principal.secret_file) == shared_file
            ):
                msg = (
                    f"{principal.key('secret_file')}: the shared principal's secret file; "
                    "each principal needs a secret of its own"
                )
                raise ValueError(msg)

    @property
    def policy(self) -> Policy:
        """What each role may do (`Policy`): the management and principals' namespaces."""
        return Policy.of(self.principals, self.management_role)

    @property
    def shared(self) -> bool:
        """True if the shared principal `authid` is served: always without principals,
        with them only when its secret is set."""
        if not self.auth:
            return False
        return (
            not self.principals
            or bool(os.environ.get(self.secret_env))
            or (self.secret_file is not None and Path(self.secret_file).is_file())
        )

    def _check_tls(self) -> None:
        if (self.tls_key is None) != (self.tls_certificate is None):
            given, missing = (
                ("tls_key", "tls_certificate")
                if self.tls_certificate is None
                else ("tls_certificate", "tls_key")
            )
            msg = f"{given} without {missing}: TLS needs both the private key and the certificate"
            raise ValueError(msg)
        if self.tls and self.websocket_port is None and self.rawsocket_port is None:
            msg = "TLS is for TCP transports: give websocket_port or rawsocket_port"
            raise ValueError(msg)
        for name in ("tls_key", "tls_certificate"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).absolute())

    # -- derived ---------------------------------------------------------------

    def resolved(self) -> RouterConfig:
        """This config with every port 0 replaced by a free port."""
        changes: dict[str, Any] = {}
        if self.websocket_port == 0:
            changes["websocket_port"] = free_port(self.host)
        if self.rawsocket_port == 0:
            changes["rawsocket_port"] = free_port(self.host)
        return replace(self, **changes) if changes else self

    @property
    def tls(self) -> bool:
        """True when the TCP transports listen with TLS (`tls_key` and `tls_certificate`)."""
        return self.tls_key is not None

    @property
    def websocket_url(self) -> str | None:
        if self.websocket_port is None:
            return None
        scheme = "wss" if self.tls else "ws"
        return f"{scheme}://{self.host}:{self.websocket_port}/{self.websocket_path}"

    @property
    def rawsocket_url(self) -> str | None:
        if self.rawsocket_port is None:
            return None
        scheme = "rss" if self.tls else "rs"
        return f"{scheme}://{self.host}:{self.rawsocket_port}"

    def secret(self) -> str | None:
        """The shared secret: from `secret_env`, else `secret_file`; None if neither is set.

        Raises CrossbarError naming the file if it cannot be read or is empty.
        """
        value = os.environ.get(self.secret_env)
        if value:
            return value
        if self.secret_file is None:
            return None
        path = Path(self.secret_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            msg = f"secret_file={str(path)!r}: cannot read the router secret: {exc}"
            raise CrossbarError(msg) from exc
        if not text:
            msg = f"secret_file={str(path)!r}: the file is empty; it must hold the router secret"
            raise CrossbarError(msg)
        return text

    def secret_variables(self) -> list[str]:
        """The variables the router's config names for the secrets of the principals
        it serves (`secrets` gives their values)."""
        names = [self.secret_env] if self.shared else []
        names += [principal.variable for principal in self.principals if self.auth]
        if self.management_secret_env is not None:
            names.append(self.management_secret_env)
        return names

    def secrets(self) -> dict[str, str]:
        """Each served principal's secret, by the variable the router's config names.

        Raises CrossbarError naming the principal (and its file and key) if a
        secret is missing or cannot be read, or if two principals (shared,
        management and `principals`) have the same secret: each holder could
        then act as the other.
        """
        found: list[tuple[str, str, str]] = []  # (whose, variable, secret)
        if self.shared:
            secret = self.secret()
            if secret is None:
                raise CrossbarError(self._no_secret())
            found.append(("the shared principal", self.secret_env, secret))
        for principal in self.principals if self.auth else ():
            try:
                secret = principal.secret()
            except ValueError as exc:
                raise CrossbarError(str(exc)) from None
            if secret is None:
                msg = f"principal {principal.authid!r} needs its secret: set ${principal.variable}"
                msg = f"{principal.source}: {msg}" if principal.source else msg
                raise CrossbarError(msg)
            found.append((f"principal {principal.authid!r}", principal.variable, secret))
        name = self.management_secret_env
        if name is not None:
            secret = os.environ.get(name)
            if not secret:
                msg = f"the management principal needs its secret: set ${name}"
                raise CrossbarError(msg)
            found.append(("the management principal", name, secret))
        _check_distinct_values(found)
        return {variable: secret for _, variable, secret in found}

    def authentication(self, method: str | None = None) -> dict[str, Any]:
        """A component's ``authentication`` dict (autobahn's format) for this router."""
        if not self.auth:
            return {}
        method = method or self.auth[0]
        secret = self.secret()
        if secret is None:
            raise CrossbarError(self._no_secret())
        key = "ticket" if method == "ticket" else "secret"
        return {method: {"authid": self.authid, key: secret}}

    def _no_secret(self) -> str:
        return (
            f"the router needs a secret for {', '.join(self.auth)} authentication: set "
            f"${self.secret_env}, give a secret file, or allow anonymous access explicitly"
        )


def _check_distinct_values(found: Sequence[tuple[str, str, str]]) -> None:
    """CrossbarError if two of (whose, variable, secret) have the same secret."""
    seen: dict[str, tuple[str, str]] = {}
    for whose, variable, secret in found:
        if secret in seen:
            other, other_variable = seen[secret]
            both = f"{other} and {whose}"
            if other.startswith("principal ") and whose.startswith("principal "):
                both = f"principals {other.split()[1]} and {whose.split()[1]}"
            msg = (
                f"{both} have the same secret (from ${other_variable} and ${variable}): "
                "each principal needs a secret of its own"
            )
            raise CrossbarError(msg)
        seen[secret] = (whose, variable)


MANAGEMENT_PREFIX = "hedgerow."
"""Where hedgerow's management procedures live (``hedgerow.node.*``, ``hedgerow.container.*``)."""
