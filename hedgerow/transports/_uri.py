# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""WAMP URIs: validation, and the match and invoke policies a router applies.

The rules are WAMP's, as Crossbar.io implements them (``crossbar/router/
observation.py`` and ``wildcard.py``):

- ``exact``: the URI itself.
- ``prefix``: any URI that starts with the pattern, character by character
  (``com.myapp.topic.emergency`` matches ``com.myapp.topic.emergency-low`` and
  ``com.myapp.topic.emergency.11``, as the WAMP spec says).
- ``wildcard``: empty components match any one component, and the component
  count must be equal (``com.myapp..update`` matches ``com.myapp.x.update``,
  not ``com.myapp.update``).

For a call, the best registration wins: an exact one, else the longest
matching prefix, else a wildcard one; among wildcards (where Crossbar takes
any) hedgerow takes the one whose first wildcard component comes latest, then
the oldest.
"""

from __future__ import annotations

import enum
import re

from autobahn.wamp.exception import ApplicationError

__all__ = ["Invoke", "Match", "check_uri", "uri_matches", "wildcard_rank"]

# autobahn's "loose" URI rules (autobahn/wamp/message.py), which Crossbar applies by default.
_NON_EMPTY = re.compile(r"^([^\s\.#]+\.)*([^\s\.#]+)$")
_LAST_EMPTY = re.compile(r"^([^\s\.#]+\.)*([^\s\.#]*)$")
_EMPTY = re.compile(r"^(([^\s\.#]+\.)|\.)*([^\s\.#]+)?$")


class Match(enum.Enum):
    """How a registration or subscription URI matches (``RegisterOptions(match=...)``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    WILDCARD = "wildcard"

    @classmethod
    def parse(cls, value: str | None, uri: str) -> Match:
        if value is None:
            return cls.EXACT
        try:
            return cls(value)
        except ValueError:
            msg = f"match={value!r} for {uri!r}: expected exact, prefix or wildcard"
            raise ApplicationError(ApplicationError.INVALID_ARGUMENT, msg) from None


class Invoke(enum.Enum):
    """Which callee of a shared registration gets a call (``RegisterOptions(invoke=...)``).

    ``single`` (the default) allows one callee per procedure; the others let
    several callees register the same procedure with the same policy.
    """

    SINGLE = "single"
    ROUNDROBIN = "roundrobin"
    RANDOM = "random"
    FIRST = "first"
    """The callee that registered first (the oldest still registered)."""
    LAST = "last"
    """The callee that registered last."""

    @classmethod
    def parse(cls, value: str | None, uri: str) -> Invoke:
        if value is None:
            return cls.SINGLE
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(m.value for m in cls)
            msg = f"invoke={value!r} for {uri!r}: expected one of {allowed}"
            raise ApplicationError(ApplicationError.INVALID_ARGUMENT, msg) from None


def check_uri(uri: object, match: Match = Match.EXACT, what: str = "URI") -> str:
    """Return `uri` if it is a valid WAMP URI (or pattern, for `match`).

    Raises `ApplicationError` ``wamp.error.invalid_uri`` naming the URI and the rule.
    """
    if match is Match.EXACT:
        pattern, rule = _NON_EMPTY, "non-empty components separated by '.', no spaces or '#'"
    elif match is Match.PREFIX:
        pattern, rule = _LAST_EMPTY, "components separated by '.'; only the last may be empty"
    else:
        pattern, rule = _EMPTY, "components separated by '.'; empty ones are wildcards"
    if not isinstance(uri, str) or pattern.match(uri) is None:
        msg = f"invalid {what} {uri!r} (match={match.value}): expected {rule}"
        raise ApplicationError(ApplicationError.INVALID_URI, msg)
    return uri


def uri_matches(pattern: str, match: Match, uri: str) -> bool:
    """True if `uri` matches `pattern` under `match`."""
    if match is Match.EXACT:
        return uri == pattern
    if match is Match.PREFIX:
        return uri.startswith(pattern)
    parts = uri.split(".")
    wanted = pattern.split(".")
    if len(parts) != len(wanted):
        return False
    return all(not w or w == p for w, p in zip(wanted, parts, strict=True))


def wildcard_rank(pattern: str) -> tuple[bool, ...]:
    """Sort key: the larger, the more specific (concrete components further left)."""
    return tuple(bool(part) for part in pattern.split("."))
