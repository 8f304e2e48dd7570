# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""Serializers: ``msgpack``, ``cbor`` and ``json``, named and negotiated as autobahn does.

A component offers a list of serializers (``msgpack`` first by default: about
3x faster than ``json`` for small messages, and autobahn's json serializer is
4-5x slower than the standard library's); the router picks the first one it
also speaks, in the component's order, as a WAMP WebSocket server picks among
the subprotocols a client offers.

autobahn's serializer module binds txaio's functions when it is first
imported and fails ever after if no txaio framework was selected by then. So
it is imported here only after `ensure_framework` has selected one (asyncio,
unless `hedgerow.use_framework` or the application chose Twisted). Nothing
happens at import of this module, and txaio's logging is never started.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hedgerow.transports._framework import ensure_framework

__all__ = [
    "DEFAULT_SERIALIZERS",
    "SERIALIZERS",
    "Serializer",
    "check_serializers",
    "get_serializer",
    "negotiate",
]

SERIALIZERS = ("msgpack", "cbor", "json")
"""The serializers hedgerow speaks on every transport (autobahn's names)."""

DEFAULT_SERIALIZERS = SERIALIZERS
"""What a component offers unless told otherwise: msgpack first."""

_cache: dict[str, Serializer] = {}


class Serializer:
    """One of autobahn's object serializers, by name: bytes in, Python objects out.

    `roundtrip` is what a payload goes through on the wire: lists stay lists,
    tuples become lists, and anything the format cannot carry raises.
    """

    __slots__ = ("_impl", "binary", "name")

    def __init__(self, name: str) -> None:
        ensure_framework()
        from autobahn.wamp import serializer  # noqa: PLC0415 - after ensure_framework

        self.name = name
        self._impl = serializer.SERID_TO_OBJSER[name]()
        self.binary: bool = self._impl.BINARY

    def __repr__(self) -> str:
        return f"<Serializer {self.name}>"

    def serialize(self, obj: Any) -> bytes:
        return self._impl.serialize(obj)  # type: ignore[no-any-return]

    def unserialize(self, data: bytes) -> Any:
        return self._impl.unserialize(data)[0]

    def roundtrip(self, obj: Any) -> Any:
        """Serialize and unserialize `obj`: a copy, as the receiving peer would see it."""
        return self._impl.unserialize(self._impl.serialize(obj))[0]


def get_serializer(name: str) -> Serializer:
    """The (shared, thread-safe) serializer called `name`; ValueError if unknown."""
    found = _cache.get(name)
    if found is None:
        if name not in SERIALIZERS:
            msg = f"unknown serializer {name!r}: expected one of {', '.join(SERIALIZERS)}"
            raise ValueError(msg)
        found = _cache[name] = Serializer(name)
    return found


def check_serializers(value: Any, where: str = "serializers") -> tuple[str, ...]:
    """Validate a list of serializer names as autobahn's transport config does.

    Raises ValueError naming `where`, the value and the rule it breaks.
    """
    if isinstance(value, str) or not isinstance(value, Sequence):
        msg = f"{where}={value!r}: '{where}' must be a list of strings"
        raise ValueError(msg)  # noqa: TRY004 - autobahn raises ValueError here
    if not value:
        msg = f"{where}=[]: offer at least one serializer"
        raise ValueError(msg)
    for name in value:
        if not isinstance(name, str):
            msg = f"{where}={value!r}: '{where}' must be a list of strings"
            raise ValueError(msg)  # noqa: TRY004 - autobahn raises ValueError here too
        if name not in SERIALIZERS:
            expected = ", ".join(repr(s) for s in SERIALIZERS)
            msg = f"{where}: invalid serializer {name!r} (expected one of: {expected})"
            raise ValueError(msg)
    return tuple(value)


def negotiate(offered: Sequence[str], supported: Sequence[str], where: str = "router") -> str:
    """The first serializer in `offered` that is also `supported` (the offerer's order wins).

    Raises ValueError naming both lists when there is none.
    """
    for name in offered:
        if name in supported:
            return name
    msg = (
        f"no common serializer: the component offers {', '.join(offered)}; "
        f"the {where} speaks {', '.join(supported)}"
    )
    raise ValueError(msg)
