"""`Names`: the children of one tree by path, so actors can find each other.

Erlang processes find each other by registered name; hedgerow children by their
path in the tree (``root/pipeline/parser``). A name maps to the child's stable
`ChildRef`, so it stays valid across the child's restarts, for as long as its
supervisor holds its spec.
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
        self._lock = threading.Lock()

    def add(self, ref: ChildRef[Any]) -> None:
        with self._lock:
            self._refs[ref.path] = ref

    def remove(self, ref: ChildRef[Any]) -> None:
        """Forget `ref`, unless its path already names a newer child."""
        with self._lock:
            if self._refs.get(ref.path) is ref:
                del self._refs[ref.path]

    def get(self, path: str) -> ChildRef[Any] | None:
        with self._lock:
            return self._refs.get(path)

    def paths(self) -> list[str]:
        with self._lock:
            return sorted(self._refs)
