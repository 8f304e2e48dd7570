"""Who may do what on a router `hedgerow router` configures: namespaces and their owners.

A namespace is a URI prefix at a component boundary: ``com.example.one`` holds
``com.example.one`` and every URI under ``com.example.one.``. A `Policy` says
which role owns which namespaces:

- ``hedgerow.router`` belongs to the router itself (its authorizer), and
  ``hedgerow`` (hedgerow's management API and its announcements) to the
  management role; both are private: no other role may register, subscribe,
  call or publish anything there;
- each `Principal` (its own authid, secret and role) owns its prefixes: only
  it may register or publish there, and it registers nowhere else; the other
  roles may still call and subscribe there;
- the shared application role and anonymous own nothing: they may register
  and publish wherever nobody owns;
- ``wamp`` (Crossbar's meta API: who is connected, with which authid, role
  and address; what is registered and subscribed; its meta events; evicting
  sessions) belongs to the management role too, but for the procedures
  that act on the caller's own session alone (`SELF_SERVICE`: its
  testament, whose publication is authorized as any other).

A request is judged by every URI its pattern can match, not by its text: a
prefix registration of ``hedgerow`` or ``""``, or a wildcard ``..get_tree``,
can match management URIs, so it is refused as ``hedgerow.node.n.get_tree``
is. Crossbar's static permissions judge a pattern by its text (and the empty
prefix is also their catch-all), which cannot say this, so the router asks
`Policy.decision` through a dynamic authorizer
(``hedgerow/transports/_router_authorizer.py``).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AUTHORIZER_URI",
    "MANAGEMENT_NAMESPACE",
    "ROUTER_NAMESPACE",
    "Policy",
    "Principal",
    "load_principals",
]

MANAGEMENT_NAMESPACE = "hedgerow"
"""hedgerow's management API (``hedgerow.node.*``, ``hedgerow.container.*``) and announcements."""

ROUTER_NAMESPACE = "hedgerow.router"
AUTHORIZER_URI = f"{ROUTER_NAMESPACE}.authorize"
"""The procedure Crossbar calls to authorize every role `hedgerow router` defines."""

ROUTER_ROLE = "trusted"
"""Crossbar's built-in role of sessions inside the router (the authorizer's)."""

MATCHES = ("exact", "prefix", "wildcard")
ACTIONS = ("call", "register", "publish", "subscribe")

META_NAMESPACE = "wamp"
"""Crossbar's meta API and meta events (``wamp.session.*``, ``wamp.registration.*``,
``wamp.subscription.*``): the management role's."""

SELF_SERVICE = frozenset({"wamp.session.add_testament", "wamp.session.flush_testaments"})
"""Meta procedures every role may call: they act on the caller's own session only (a
testament is published when it leaves, and Crossbar authorizes that publication)."""

_CLOSED_TO_ALL = frozenset(ACTIONS)
_OWNED = frozenset({"register", "publish"})

_COMPONENT = re.compile(r"[^\s.#]+")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROLE = re.compile(r"[^\s#]+")
_RESERVED = ("hedgerow", "wamp", "crossbar")


# -- namespaces ----------------------------------------------------------------


def _inside(namespace: str, uri: str) -> bool:
    return uri == namespace or uri.startswith(namespace + ".")


def touches(namespace: str, uri: str, match: str) -> bool:
    """True if the pattern (`uri`, `match`) can match some URI in `namespace`."""
    if match == "exact":
        return _inside(namespace, uri)
    if match == "prefix":  # WAMP's prefix match is by characters
        return namespace.startswith(uri) or uri.startswith(namespace + ".")
    pattern, parts = uri.split("."), namespace.split(".")
    return len(pattern) >= len(parts) and all(
        p in ("", n) for p, n in zip(pattern, parts, strict=False)
    )


def within(namespace: str, uri: str, match: str) -> bool:
    """True if every URI the pattern (`uri`, `match`) can match is in `namespace`."""
    if match == "exact":
        return _inside(namespace, uri)
    if match == "prefix":
        return uri.startswith(namespace + ".")
    pattern, parts = uri.split("."), namespace.split(".")
    return len(pattern) >= len(parts) and all(p == n for p, n in zip(pattern, parts, strict=False))


def _overlap(a: str, b: str) -> bool:
    return _inside(a, b) or _inside(b, a)


def check_namespace(prefix: str, where: str) -> str:
    """`prefix` as a namespace (a trailing dot dropped); ValueError naming `where` if it is
    not a URI, or is one of the router's or hedgerow's own."""
    namespace = prefix[:-1] if isinstance(prefix, str) and prefix.endswith(".") else prefix
    if not isinstance(namespace, str) or not all(
        _COMPONENT.fullmatch(part) for part in namespace.split(".")
    ):
        msg = (
            f"{where}: {prefix!r} is not a URI prefix (dot-separated non-empty components, "
            "no spaces or '#'), e.g. 'com.example.adder'"
        )
        raise ValueError(msg)
    for reserved in _RESERVED:
        if _overlap(namespace, reserved):
            msg = f"{where}: {prefix!r} overlaps {reserved!r}, which is reserved"
            raise ValueError(msg)
    return namespace


# -- principals ----------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """A client identity of its own: `authid`, the secret it proves, its role and namespaces.

    The secret comes from the environment variable `secret_env`, else the
    file `secret_file`. `role` defaults to the authid. Only this principal may
    register or publish under its `prefixes`, and it registers nowhere else.
    `source` says where it was defined (``"principals.toml: principals.adder"``),
    for error messages.
    """

    authid: str
    prefixes: tuple[str, ...]
    secret_env: str | None = None
    secret_file: Path | None = None
    role: str = ""
    source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        where = self.where
        if not isinstance(self.authid, str) or not _COMPONENT.fullmatch(self.authid):
            msg = f"{where}: expected an authid without spaces, dots or '#'"
            raise ValueError(msg)
        if isinstance(self.prefixes, str) or not self.prefixes:
            msg = f"{where}: prefixes={self.prefixes!r}: expected a non-empty list of URI prefixes"
            raise ValueError(msg)
        prefixes = tuple(check_namespace(p, f"{where}: prefixes") for p in self.prefixes)
        object.__setattr__(self, "prefixes", prefixes)
        if not isinstance(self.role, str) or (self.role and not _ROLE.fullmatch(self.role)):
            msg = f"{self.key('role')} = {self.role!r}: expected a role name (no spaces or '#')"
            raise ValueError(msg)
        object.__setattr__(self, "role", self.role or self.authid)
        if self.secret_env is None and self.secret_file is None:
            msg = f"{where}: give secret_env (a variable's name) or secret_file"
            raise ValueError(msg)
        if self.secret_env is not None and (
            not isinstance(self.secret_env, str) or not _ENV_NAME.fullmatch(self.secret_env)
        ):
            msg = (
                f"{self.key('secret_env')} = {self.secret_env!r}: "
                "expected an environment variable name"
            )
            raise ValueError(msg)
        if self.secret_file is not None:
            if not isinstance(self.secret_file, str | os.PathLike):
                msg = f"{self.key('secret_file')} = {self.secret_file!r}: expected a file's path"
                raise ValueError(msg)
            object.__setattr__(self, "secret_file", Path(self.secret_file).absolute())

    @property
    def where(self) -> str:
        """Where this principal was defined, for messages: its `source`, or its authid."""
        return self.source or f"principal {self.authid!r}"

    def key(self, name: str) -> str:
        """The setting `name` of this principal, for messages (``file: principals.a.role``)."""
        return f"{self.source}.{name}" if self.source else f"principal {self.authid!r}: {name}"

    @property
    def variable(self) -> str:
        """The variable the router's config names for this principal's secret."""
        if self.secret_env is not None:
            return self.secret_env
        return "HEDGEROW_SECRET_" + re.sub(r"\W", "_", self.authid).upper()

    def secret(self) -> str | None:
        """The secret: from `secret_env`, else `secret_file`; None if neither holds one.

        Raises ValueError naming the file if it cannot be read."""
        if self.secret_env is not None and os.environ.get(self.secret_env):
            return os.environ[self.secret_env]
        if self.secret_file is None:
            return None
        try:
            text = self.secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            msg = f"{self.key('secret_file')}: cannot read {str(self.secret_file)!r}: {exc}"
            raise ValueError(msg) from None
        return text or None


def check_distinct(principals: Sequence[Principal], taken: Mapping[str, str] | None = None) -> None:
    """ValueError naming the principal and key if two principals could prove one secret:
    the same variable (given as `secret_env`, or made for a `secret_file`), the same
    `secret_file`, or a variable in `taken` (variable -> whose it is). Also if two
    have one role, or their prefixes overlap."""
    variables = dict(taken or {})
    files: dict[str, str] = {}
    roles: dict[str, str] = {}
    namespaces: list[tuple[str, str]] = []
    own = "each principal needs a secret of its own"
    for principal in principals:
        name = principal.variable
        if name in variables:
            if principal.secret_env is not None:
                msg = f"{principal.key('secret_env')} = {name!r}: {variables[name]} has it too"
            else:  # the variable made for its secret_file
                msg = f"{principal.key('secret_file')}: its variable ${name} is {variables[name]}'s"
            msg = f"{msg}; {own}"
            raise ValueError(msg)
        variables[name] = f"principal {principal.authid!r}"
        if principal.secret_file is not None:
            real = os.path.realpath(principal.secret_file)
            if real in files:
                msg = (
                    f"{principal.key('secret_file')} = {str(principal.secret_file)!r}: "
                    f"{files[real]} has it too; {own}"
                )
                raise ValueError(msg)
            files[real] = f"principal {principal.authid!r}"
        if principal.role in roles:
            msg = (
                f"{principal.key('role')} = {principal.role!r}: {roles[principal.role]} has it too"
            )
            raise ValueError(msg)
        roles[principal.role] = f"principal {principal.authid!r}"
        for namespace in principal.prefixes:
            for other, whose in namespaces:
                if _overlap(namespace, other):
                    msg = (
                        f"{principal.key('prefixes')}: prefix {namespace!r} overlaps {other!r} "
                        f"of {whose}: a name has one owner"
                    )
                    raise ValueError(msg)
            namespaces.append((namespace, f"principal {principal.authid!r}"))


_PRINCIPAL_KEYS = ("prefixes", "secret_env", "secret_file", "role")


def load_principals(path: str | Path) -> tuple[Principal, ...]:
    """The principals of a TOML or JSON file: ``[principals.<authid>]`` tables with
    ``prefixes``, ``secret_env`` or ``secret_file`` (relative to the file), and ``role``.

    Raises ValueError naming the file and the key at fault, also when two
    principals would share a secret (one variable or one file), a role, or
    overlapping prefixes.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        msg = f"{path}: cannot read principals: {str(exc)[:300]}"
        raise ValueError(msg) from None
    tables = data.get("principals") if isinstance(data, dict) else None
    if not isinstance(tables, dict) or not tables:
        msg = f"{path}: expected [principals.<authid>] tables (key 'principals')"
        raise ValueError(msg)
    unknown = sorted(set(data) - {"principals"})
    if unknown:  # a misspelt table would leave its principal out without a word
        msg = f"{path}: unknown keys {unknown} (expected principals)"
        raise ValueError(msg)
    principals = []
    for authid, table in tables.items():
        key = f"principals.{authid}"
        if not isinstance(table, dict):
            msg = f"{path}: {key}: expected a table"
            raise ValueError(msg)  # noqa: TRY004 - a config value error
        unknown = sorted(set(table) - set(_PRINCIPAL_KEYS))
        if unknown:
            msg = f"{path}: {key}: unknown keys {unknown} (expected {', '.join(_PRINCIPAL_KEYS)})"
            raise ValueError(msg)
        prefixes = table.get("prefixes")
        if isinstance(prefixes, str):
            prefixes = [prefixes]
        if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
            msg = f"{path}: {key}.prefixes = {str(prefixes)[:200]}: expected a list of URI prefixes"
            raise ValueError(msg)
        secret_file = table.get("secret_file")
        source = f"{path}: {key}"
        if isinstance(secret_file, str):
            secret_file = path.parent / secret_file
        principals.append(
            Principal(
                authid,
                tuple(prefixes),
                secret_env=table.get("secret_env"),
                secret_file=secret_file,
                role=table.get("role", ""),
                source=source,
            )
        )
    check_distinct(principals)
    return tuple(principals)


# -- the policy ----------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    """The namespaces each role owns (see the module docstring), and the decisions they imply.

    `owners` maps a principal's role to its namespaces; the management
    namespace belongs to `management_role`, the router's to Crossbar's
    trusted role. Every other role owns nothing.
    """

    management_role: str = "management"
    owners: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owners: dict[str, tuple[str, ...]] = {}
        seen: list[tuple[str, str]] = []
        for role, prefixes in self.owners.items():
            if role in (self.management_role, ROUTER_ROLE):
                msg = f"role {role!r} is the router's or management's: pick another"
                raise ValueError(msg)
            namespaces = tuple(check_namespace(p, f"role {role!r}") for p in prefixes)
            for namespace in namespaces:
                for other_role, other in seen:
                    if _overlap(namespace, other):
                        msg = (
                            f"role {role!r}: prefix {namespace!r} overlaps {other!r} of role "
                            f"{other_role!r}: a name has one owner"
                        )
                        raise ValueError(msg)
                seen.append((role, namespace))
            owners[role] = namespaces
        object.__setattr__(self, "owners", owners)

    @classmethod
    def of(cls, principals: Sequence[Principal], management_role: str = "management") -> Policy:
        """The policy of `principals` (one role each)."""
        owners: dict[str, tuple[str, ...]] = {}
        for principal in principals:
            if principal.role in owners:
                msg = f"principal {principal.authid!r}: role {principal.role!r} is taken"
                raise ValueError(msg)
            owners[principal.role] = principal.prefixes
        return cls(management_role, owners)

    def _namespaces(self) -> list[tuple[str, str, frozenset[str]]]:
        """(owner role, namespace, the actions closed to other roles) for each namespace."""
        found = [
            (ROUTER_ROLE, ROUTER_NAMESPACE, _CLOSED_TO_ALL - {"subscribe"}),
            (self.management_role, MANAGEMENT_NAMESPACE, _CLOSED_TO_ALL),
            (self.management_role, META_NAMESPACE, _CLOSED_TO_ALL),
        ]
        found.extend(
            (role, namespace, _OWNED)
            for role, namespaces in self.owners.items()
            for namespace in namespaces
        )
        return found

    def allows(self, role: str, uri: str, action: str, match: str = "exact") -> bool:
        """May a session in `role` do `action` on the pattern (`uri`, `match`)?"""
        if action not in ACTIONS or match not in MATCHES or not isinstance(uri, str):
            return False
        if action in ("call", "publish") and match != "exact":
            return False
        if action == "call" and uri in SELF_SERVICE:
            return True
        own: list[str] = []
        for owner, namespace, closed in self._namespaces():
            if owner == role:
                own.append(namespace)
            elif action in closed and touches(namespace, uri, match):
                return False
        if action == "register" and own:
            return any(within(namespace, uri, match) for namespace in own)
        return True

    def decision(
        self, role: str, uri: str, action: str, options: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Crossbar's authorization answer: ``allow``, ``disclose`` and ``cache``.

        Crossbar caches by (realm, role, URI, action), not by match policy, so
        an answer is cached only when every match policy gets the same one.
        """
        options = options if isinstance(options, Mapping) else {}
        match = options.get("match") or "exact"
        allow = self.allows(role, uri, action, match)
        if action in ("register", "subscribe"):
            cache = all(self.allows(role, uri, action, m) == allow for m in MATCHES)
        else:
            cache = True
        return {"allow": allow, "disclose": action in ("call", "publish"), "cache": cache}

    def as_data(self) -> dict[str, Any]:
        """The JSON-able policy (the authorizer's ``extra`` in the router's config)."""
        return {
            "management_role": self.management_role,
            "owners": {role: list(spaces) for role, spaces in self.owners.items()},
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Policy:
        owners = data.get("owners") or {}
        return cls(
            str(data.get("management_role", "management")),
            {str(role): tuple(spaces) for role, spaces in owners.items()},
        )
