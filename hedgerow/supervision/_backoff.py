"""Restart backoff, with autobahn's names and its code's arithmetic.

Off by default for children: as in OTP, a failed child restarts at once and
its supervisor's intensity decides when to give up. A child (or a supervisor,
for all its children) opts in; `BackoffSettings` is what it then gets.
"""

from __future__ import annotations

import math
import random as _random
from dataclasses import dataclass

__all__ = ["DEFAULT_MAX_RETRIES", "Backoff", "BackoffSettings"]

_HUGE = 1e300
"""Where a growing delay stops growing before its jitter (far above any cap)."""

DEFAULT_MAX_RETRIES = 10
"""Restarts in a row a child under backoff gets by default before its supervisor
gives up (autobahn's transports retry for ever; a child in a crash loop must not).
With the other defaults, the tenth restart comes about three minutes after the
first failure."""


@dataclass(frozen=True)
class BackoffSettings:
    """A child's backoff once enabled: its spec's values, else its supervisor's,
    else these defaults (autobahn's code's, and a bounded `max_retries`).

    `retry_reset_after`: seconds a child must stay up for its next restart to be
    immediate again and its `max_retries` count to start over.
    """

    initial_retry_delay: float = 1.5
    max_retry_delay: float = 300.0
    retry_delay_growth: float = 1.5
    retry_delay_jitter: float = 0.1
    max_retries: int = DEFAULT_MAX_RETRIES
    retry_reset_after: float = 5.0


class Backoff:
    """Delays between restarts (or reconnects), as autobahn's `_Transport` computes them.

    The first attempt after a reset is immediate. Each later one multiplies the
    delay by `retry_delay_growth`, draws it from a normal distribution with
    standard deviation ``delay * retry_delay_jitter`` and caps it at
    `max_retry_delay` (floored at 0, which autobahn does not do). At most
    `max_retries` attempts in a row are allowed (-1: no limit).
    """

    def __init__(
        self,
        *,
        initial_retry_delay: float = 1.5,
        max_retry_delay: float = 300.0,
        retry_delay_growth: float = 1.5,
        retry_delay_jitter: float = 0.1,
        max_retries: int = -1,
        random: _random.Random | None = None,
    ) -> None:
        self.initial_retry_delay = initial_retry_delay
        self.max_retry_delay = max_retry_delay
        self.retry_delay_growth = retry_delay_growth
        self.retry_delay_jitter = retry_delay_jitter
        self.max_retries = max_retries
        self._random = random or _random.Random()  # noqa: S311 - jitter, not crypto
        self.attempts = 0
        self.retry_delay = initial_retry_delay

    @classmethod
    def of(cls, settings: BackoffSettings, random: _random.Random | None = None) -> Backoff:
        """The backoff state of a child with these settings."""
        return cls(
            initial_retry_delay=settings.initial_retry_delay,
            max_retry_delay=settings.max_retry_delay,
            retry_delay_growth=settings.retry_delay_growth,
            retry_delay_jitter=settings.retry_delay_jitter,
            max_retries=settings.max_retries,
            random=random,
        )

    def reset(self) -> None:
        """It stayed up (or joined): the next attempt is immediate again."""
        self.attempts = 0
        self.retry_delay = self.initial_retry_delay

    def can_retry(self) -> bool:
        return self.max_retries == -1 or self.attempts < self.max_retries

    def next_delay(self) -> float:
        """The wait before the next attempt; counts that attempt."""
        if self.attempts == 0:
            delay = 0.0
        else:
            # Bounded before the jitter: a huge growth would overflow to inf,
            # and inf's jitter is NaN (a delay no clock can wait).
            mean = min(self.retry_delay * self.retry_delay_growth, _HUGE)
            drawn = self._random.normalvariate(mean, mean * self.retry_delay_jitter)
            if not math.isfinite(drawn):
                drawn = mean
            self.retry_delay = min(max(drawn, 0.0), self.max_retry_delay)
            delay = self.retry_delay
        self.attempts += 1
        return delay
