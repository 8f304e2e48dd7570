"""Testing support: a virtual clock and an event recorder (fault injection grows here)."""

from hedgerow.testing._clock import VirtualClock
from hedgerow.testing._recorder import EventRecorder

__all__ = ["EventRecorder", "VirtualClock"]
