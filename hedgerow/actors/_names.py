"""`Names`: the children of one tree by path, so actors can find each other.

Erlang processes find each other by registered name; hedgerow children by their
path in the tree (``root/pipeline/parser``). A name maps to the child's stable
`ChildRef`, so it stays valid across the child's restarts, for as long as its
supervisor holds its spec.

A supervisor reserves the names of its whole spec before it starts its first
child, so a child may look up a sibling (or a cousin) that starts after it:
messages to a reserved ref wait in its inbox, as they do across a restart,
and the supervisor that starts the child claims the ref. A supervisor that
restarts a nested supervisor names that one's children again, before the
restart. What is never claimed is released (its messages dead-lettered) when
its supervisor stops, or stops that nested supervisor for good.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hedgerow.actors._ref import ChildRef

__all__ = ["Names"]


class Names:
    """A thread-safe map from path to `ChildRef`, one per tree."""

    def __init__(self) -> None:
        self._refs: dict[str, ChildRef[Any]] = {}
        self._reserved: set[str] = set()
        self._lock = threading.Lock()

    def add(self, ref: ChildRef[Any]) -> None:
        with self._lock:
            self._refs[ref.path] = ref

    def remove(self, ref: ChildRef[Any]) -> None:
        """Forget `ref`, unless its path already names a newer child."""
        with self._lock:
            if self._refs.get(ref.path) is ref:
                del self._refs[ref.path]
                self._reserved.discard(ref.path)

    def reserve(self, ref: ChildRef[Any]) -> bool:
        """Name `ref` ahead of its child's start, unless its path is taken; True if named."""
        with self._lock:
            if ref.path in self._refs:
                return False
            self._refs[ref.path] = ref
            self._reserved.add(ref.path)
            return True

    def claim(self, path: str) -> ChildRef[Any] | None:
        """The ref reserved for `path`, now its supervisor's; None if none is reserved."""
        if path not in self._reserved:  # (one atomic read: most starts have none)
            return None
        with self._lock:
            if path not in self._reserved:
                return None
            self._reserved.discard(path)
            return self._refs[path]

    def release_under(self, path: str) -> list[ChildRef[Any]]:
        """Forget the reserved, unclaimed refs below `path`; returns them."""
        prefix = path + "/"
        with self._lock:
            paths = [p for p in self._reserved if p.startswith(prefix)]
            self._reserved.difference_update(paths)
            return [self._refs.pop(p) for p in paths]

    def get(self, path: str) -> ChildRef[Any] | None:
        with self._lock:
            return self._refs.get(path)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)
