"""Click types for the commands' numbers: finite, in range, or the option is refused.

click's ``float`` and ``FloatRange`` take ``nan``, ``inf`` and ``1e400`` (which
is inf); a duration of NaN never comes due and an infinite one never ends.
`Seconds` and `Finite` refuse them, naming the option (exit 2).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from hedgerow._clock import MAX_DELAY

__all__ = ["Finite", "Seconds"]

if TYPE_CHECKING:
    _ParamType = click.ParamType[float]  # generic from click 8.2; 8.1 is allowed too
else:
    _ParamType = click.ParamType


class Finite(_ParamType):
    """A finite number within ``[minimum, maximum]`` (above `minimum` with `min_open`)."""

    name = "number"

    def __init__(
        self, minimum: float = 0.0, maximum: float | None = None, *, min_open: bool = False
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.min_open = min_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value).strip())
            except (ValueError, OverflowError):
                self.fail(f"{_quote(value)} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{_quote(value)} is not a finite number (no NaN or infinity)", param, ctx)
        low = number <= self.minimum if self.min_open else number < self.minimum
        high = self.maximum is not None and number > self.maximum
        if low or high:
            self.fail(f"{_quote(value)} is not {self.describe()}", param, ctx)
        return number

    def describe(self) -> str:
        bound = f"> {self.minimum:g}" if self.min_open else f">= {self.minimum:g}"
        if self.maximum is not None:
            bound += f" and <= {self.maximum:g}"
        return f"a number {bound}"


class Seconds(Finite):
    """A finite number of seconds, positive unless `allow_zero`, at most `MAX_DELAY`."""

    name = "seconds"

    def __init__(self, *, allow_zero: bool = False) -> None:
        super().__init__(0.0, MAX_DELAY, min_open=not allow_zero)

    def describe(self) -> str:
        return super().describe().replace("a number", "seconds")


def _quote(value: Any) -> str:
    text = repr(str(value))
    return text if len(text) <= 40 else text[:37] + "..."  # noqa: PLR2004
