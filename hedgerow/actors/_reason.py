"""Exit reasons, as OTP has them: normal, shutdown, a user shutdown, or a failure."""

from __future__ import annotations

from hedgerow._exceptions import Shutdown

__all__ = ["KILLED", "NOPROC", "NORMAL", "SHUTDOWN", "Reason", "describe", "is_normal"]

Reason = str | BaseException
"""An exit reason: one of the string constants below, or the exception that failed."""

NORMAL = "normal"
"""The actor stopped by itself (``stop()``, end of work)."""
SHUTDOWN = "shutdown"
"""The actor was stopped by its supervisor."""
KILLED = "killed"
"""The actor was abandoned or killed without a graceful stop."""
NOPROC = "noproc"
"""A monitor or link was set on an actor that had already exited."""

_NORMAL_REASONS = frozenset({NORMAL, SHUTDOWN})


def is_normal(reason: Reason) -> bool:
    """True for exits that are not failures: normal, shutdown, or a user `Shutdown`."""
    if isinstance(reason, str):
        return reason in _NORMAL_REASONS
    return isinstance(reason, Shutdown)


def describe(reason: Reason) -> str:
    """A short text for logs and events."""
    if isinstance(reason, str):
        return reason
    if isinstance(reason, Shutdown):
        return f"shutdown({reason.term!r})"
    return f"{type(reason).__name__}: {reason}"
