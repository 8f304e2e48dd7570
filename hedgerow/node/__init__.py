"""The node: the process bus and its signal handling (CherryPy's wspbus)."""

from hedgerow.node._bus import Bus, BusState, ChannelFailures
from hedgerow.node._signals import SignalHandler

__all__ = ["Bus", "BusState", "ChannelFailures", "SignalHandler"]
