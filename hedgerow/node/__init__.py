"""The node: the process bus, its signal handling, worker processes supervised as actors,
and loading tree files (whose worker tables build workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from hedgerow.node._bus import Bus, BusState, ChannelFailures
    from hedgerow.node._ports import PortAllocator
    from hedgerow.node._signals import SignalHandler
    from hedgerow.node._treeload import load_tree, loads_tree
    from hedgerow.node._worker import Worker
    from hedgerow.node._worker_actor import WorkerActor

__all__ = [
    "Bus",
    "BusState",
    "ChannelFailures",
    "PortAllocator",
    "SignalHandler",
    "Worker",
    "WorkerActor",
    "load_tree",
    "loads_tree",
]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Bus": "hedgerow.node._bus",
        "BusState": "hedgerow.node._bus",
        "ChannelFailures": "hedgerow.node._bus",
        "PortAllocator": "hedgerow.node._ports",
        "SignalHandler": "hedgerow.node._signals",
        "load_tree": "hedgerow.node._treeload",
        "loads_tree": "hedgerow.node._treeload",
        "Worker": "hedgerow.node._worker",
        "WorkerActor": "hedgerow.node._worker_actor",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
