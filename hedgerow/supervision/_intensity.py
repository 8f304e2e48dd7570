"""Restart intensity: how many restarts a supervisor allows within a period."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hedgerow._clock import Clock

__all__ = ["RestartIntensity"]


class RestartIntensity:
    """OTP's ``add_restart``: remember restart times, forget those older than `period`.

    A restart is allowed while the restarts within the last `period` seconds,
    this one included, number at most `max_restarts`.
    """

    def __init__(self, max_restarts: int, period: float, clock: Clock) -> None:
        self.max_restarts = max_restarts
        self.period = period
        self._clock = clock
        self._times: deque[float] = deque()

    def add_restart(self) -> bool:
        """Count one restart now; False if that is one too many."""
        now = self._clock.now()
        self._times.append(now)
        horizon = now - self.period
        while self._times and self._times[0] < horizon:
            self._times.popleft()
        return len(self._times) <= self.max_restarts

    @property
    def remaining(self) -> int:
        """Restarts still allowed in the current window (the headroom)."""
        horizon = self._clock.now() - self.period
        recent = sum(1 for t in self._times if t >= horizon)
        return max(self.max_restarts - recent, 0)
