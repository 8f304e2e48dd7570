"""An index for pykka's `ActorRegistry`, so that many actors stop in linear time.

pykka keeps the ref of every running actor in a list
(``ActorRegistry._actor_refs``): registering appends, but unregistering scans
the list and shifts it, O(n) per actor, so stopping n actors is O(n²). With
many event-loop actors that dominates: in ``bench/bench_loop_tree.py``, the
stop of a tree of 20,000 children spent 2.6 s of its 3.0 s there, and a
million would take hours. `index_registry` puts a `RefTable` in the list's
place: a dict in registration order, with the list operations pykka's
registry uses (``append``, ``remove``, ``in``, ``[:]``, iteration, ``len``), so
the registry answers exactly as before, in the same order, and each
operation is O(1) (a copy for ``[:]`` and iteration, as before).

It is installed when hedgerow first needs it (a supervisor is built, an
event-loop actor starts), never at import.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pykka import ActorRegistry

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

__all__ = ["RefTable", "index_registry", "register", "unregister"]

_pykka_logger = logging.getLogger("pykka")


class RefTable:
    """pykka's registry list, as an insertion-ordered dict of refs (by identity,
    as pykka's refs compare)."""

    __slots__ = ("_refs",)

    def __init__(self, refs: Iterable[Any] = ()) -> None:
        self._refs: dict[Any, None] = dict.fromkeys(refs)

    def append(self, ref: Any) -> None:
        self._refs[ref] = None

    def remove(self, ref: Any) -> None:
        try:
            del self._refs[ref]
        except KeyError:
            msg = f"{ref!r} is not registered"
            raise ValueError(msg) from None

    def __contains__(self, ref: object) -> bool:
        return ref in self._refs

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._refs))

    def __len__(self) -> int:
        return len(self._refs)

    def __getitem__(self, index: Any) -> Any:
        return list(self._refs)[index]

    def __repr__(self) -> str:
        return f"RefTable({list(self._refs)!r})"


def index_registry() -> None:
    """Put a `RefTable` in place of pykka's registry list (once; keeps what is in it)."""
    registry: Any = ActorRegistry
    if registry._actor_refs.__class__ is RefTable:
        return
    with registry._actor_refs_lock:
        refs = registry._actor_refs
        if refs.__class__ is not RefTable:
            registry._actor_refs = RefTable(refs)


def register(actor_ref: Any) -> None:
    """`ActorRegistry.register`, whose debug line (the ref's text, made at every
    register) is made only when the ``pykka`` logger would emit it."""
    registry: Any = ActorRegistry
    with registry._actor_refs_lock:
        registry._actor_refs.append(actor_ref)
    if _pykka_logger.isEnabledFor(logging.DEBUG):
        _pykka_logger.debug(f"Registered {actor_ref}")  # noqa: G004 - pykka's own line


def unregister(actor_ref: Any) -> None:
    """`ActorRegistry.unregister`, its debug line made only when it would be emitted
    (the ref's text: an incarnation's URN, otherwise made only when read)."""
    registry: Any = ActorRegistry
    removed = False
    with registry._actor_refs_lock:
        if actor_ref in registry._actor_refs:
            registry._actor_refs.remove(actor_ref)
            removed = True
    if _pykka_logger.isEnabledFor(logging.DEBUG):
        if removed:
            _pykka_logger.debug(f"Unregistered {actor_ref}")  # noqa: G004 - pykka's own line
        else:
            _pykka_logger.debug(f"Unregistered {actor_ref} (not found in registry)")  # noqa: G004
