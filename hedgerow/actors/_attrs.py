"""`actor_attr`: read an optional attribute of an actor without its ``__getattr__``.

hedgerow reads attributes of an actor that a plain actor may not have (its
loop, its handler task, its thread, its child ref ...). An actor class is the
user's: its ``__getattr__`` may raise anything or answer anything for a name
it does not know, and ``getattr(actor, name, default)`` would pass that on.
This reads the instance's ``__dict__`` and its class (descriptors included),
as ``object.__getattribute__`` does, and never calls ``__getattr__`` (nor an
overriding ``__getattribute__``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["actor_attr"]

_getattribute = object.__getattribute__


def actor_attr(actor: object, name: str, default: Any = None) -> Any:
    """``getattr(actor, name, default)``, without ``actor``'s own ``__getattr__``."""
    try:
        return _getattribute(actor, name)
    except AttributeError:
        return default
