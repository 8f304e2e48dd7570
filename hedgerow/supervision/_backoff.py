"""Per-child restart backoff, with autobahn's names and its code's arithmetic."""

from __future__ import annotations

import random as _random

__all__ = ["Backoff"]


class Backoff:
    """Delays between a child's restarts, as autobahn's `_Transport` reconnects.

    The first restart after a reset is immediate. Each later one multiplies the
    delay by `retry_delay_growth`, draws it from a normal distribution with
    standard deviation ``delay * retry_delay_jitter`` and caps it at
    `max_retry_delay` (floored at 0, which autobahn does not do). At most
    `max_retries` restarts in a row are allowed (-1: no limit).
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

    def reset(self) -> None:
        """The child stayed up: its next restart is immediate again."""
        self.attempts = 0
        self.retry_delay = self.initial_retry_delay

    def can_retry(self) -> bool:
        return self.max_retries == -1 or self.attempts < self.max_retries

    def next_delay(self) -> float:
        """The wait before the next restart; counts that restart as an attempt."""
        if self.attempts == 0:
            delay = 0.0
        else:
            self.retry_delay *= self.retry_delay_growth
            self.retry_delay = self._random.normalvariate(
                self.retry_delay, self.retry_delay * self.retry_delay_jitter
            )
            self.retry_delay = min(max(self.retry_delay, 0.0), self.max_retry_delay)
            delay = self.retry_delay
        self.attempts += 1
        return delay
