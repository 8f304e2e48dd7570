"""`TreeFactory`: start trees for a test on one clock and one event stream, and
stop them all (faults first) when the test ends."""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING

from hedgerow.node._treeload import load_tree
from hedgerow.supervision._tree import start_tree
from hedgerow.testing._faults import Faults, running_tree

if TYPE_CHECKING:
    from hedgerow._clock import Clock
    from hedgerow._events import EventStream
    from hedgerow.supervision._async_tree import AsyncioTree
    from hedgerow.supervision._spec import SupervisorSpec
    from hedgerow.supervision._tree import Tree

__all__ = ["TreeFactory"]

STOP_TIMEOUT = 30.0


class TreeFactory:
    """Call it with a `SupervisorSpec` or a tree file path to start a tree.

    Every tree runs on `clock` and publishes to `events`; its backoff jitter
    draws from ``random.Random(seed)``, so a run can be repeated exactly.
    `faults(tree)` gives the tree's one `Faults`. `close()` clears the faults
    and stops every tree still running, in reverse start order.
    """

    def __init__(self, clock: Clock, events: EventStream, *, seed: int = 0) -> None:
        self.clock = clock
        self.events = events
        self.seed = seed
        self.trees: list[Tree] = []
        self._faults: dict[int, Faults] = {}

    def __call__(self, spec: SupervisorSpec | str | Path, *, name: str | None = None) -> Tree:
        if isinstance(spec, str | Path):
            spec = load_tree(spec)
        tree = start_tree(
            spec,
            name=name,
            clock=self.clock,
            events=self.events,
            random=random.Random(self.seed),  # noqa: S311 - jitter for a test
        )
        self.trees.append(tree)
        return tree

    def faults(self, tree: Tree | AsyncioTree | None = None) -> Faults:
        """The `Faults` of `tree` (the last one started, if None), made on first use;
        an `AsyncioTree` has its `Tree`'s."""
        if tree is None:
            if not self.trees:
                msg = "no tree started yet: call the factory with a spec or a tree file first"
                raise RuntimeError(msg)
            tree = self.trees[-1]
        tree = running_tree(tree, "TreeFactory.faults")
        faults = self._faults.get(id(tree))
        if faults is None:
            faults = self._faults[id(tree)] = Faults(tree, seed=self.seed)
        return faults

    def close(self) -> None:
        """Undo every fault, then stop every tree (reverse start order)."""
        faults, self._faults = list(self._faults.values()), {}
        for fault_set in faults:
            fault_set.close()
        trees, self.trees = self.trees[::-1], []
        for tree in trees:
            tree.stop(timeout=STOP_TIMEOUT)
