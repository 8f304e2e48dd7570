"""Testing support: a virtual clock (fault injection and the pytest plugin grow here)."""

from hedgerow.testing._clock import VirtualClock

__all__ = ["VirtualClock"]
