"""The node: the process bus, its signal handling, and worker processes supervised as actors."""

from hedgerow.node._bus import Bus, BusState, ChannelFailures
from hedgerow.node._ports import PortAllocator
from hedgerow.node._signals import SignalHandler
from hedgerow.node._worker import Worker, WorkerActor

__all__ = [
    "Bus",
    "BusState",
    "ChannelFailures",
    "PortAllocator",
    "SignalHandler",
    "Worker",
    "WorkerActor",
]
