"""A tree's events as text: one line per event for logs and pipes, JSON lines for machines.

What a child says about itself in its started event (`Event.info`: a worker's
pid, port and guid) is in its line and its JSON record.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TextIO

from hedgerow._events import EventKind
from hedgerow.actors._reason import describe

if TYPE_CHECKING:
    from hedgerow._events import Event

__all__ = ["JsonView", "LineView", "describe_info", "event_line"]


def describe_info(info: dict[str, Any], width: int | None = None) -> str:
    """`Event.info` in one line: ``pid=4242 port=18080 guid=...``; values
    longer than `width` characters (if given) are cut to it, ending in "…"."""
    parts = []
    for key, value in info.items():
        text = str(value)
        if width is not None and len(text) > width:
            text = text[: width - 1] + "…"
        parts.append(f"{key}={text}")
    return " ".join(parts)


def event_line(event: Event) -> str:
    """The event in one line, with what the child says about itself (`Event.info`)."""
    text = event.describe()
    if event.info:
        text += f" {describe_info(event.info)}"
    return text


class LineView:
    """One line per event, with seconds since the run began: for logs and pipes."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started

    def line(self, event: Event, now: float) -> str:
        """The event's line, and its traceback (indented) for a failure."""
        text = f"{now - self.started:8.3f}s  {event_line(event)}"
        if event.traceback:
            text += "\n" + "\n".join(f"           {row}" for row in event.traceback.splitlines())
        return text

    def show(self, event: Event, now: float) -> None:
        self.out.write(self.line(event, now) + "\n")
        self.out.flush()

    def note(self, text: str, now: float) -> None:
        """A line about something that is not a tree event (a reload, say)."""
        self.out.write(f"{now - self.started:8.3f}s  {text}\n")
        self.out.flush()


class JsonView:
    """One JSON object per event, per line: for machines."""

    def __init__(self, out: TextIO, started: float) -> None:
        self.out = out
        self.started = started

    @staticmethod
    def record(event: Event, elapsed: float) -> dict[str, Any]:
        record: dict[str, Any] = {
            "seq": event.seq,
            "elapsed": round(elapsed, 6),
            "kind": event.kind.value,
            "path": event.path,
            "incarnation": event.incarnation,
        }
        if event.reason is not None:
            record["reason"] = describe(event.reason)
        if event.delay is not None:
            record["delay"] = event.delay
        if event.kind in (EventKind.DEAD_LETTER, EventKind.HANDLER_FAILED):
            record["message"] = _plain(event.message)
        if event.info:
            record["info"] = {key: _plain(value) for key, value in event.info.items()}
        if event.traceback:
            record["traceback"] = event.traceback
        return record

    def show(self, event: Event, now: float) -> None:
        self.write(self.record(event, now - self.started))

    def note(self, kind: str, now: float, **fields: Any) -> None:
        """A record of something that is not a tree event (a reload, say):
        ``{"kind": kind, "elapsed": ..., **fields}``."""
        self.write({"kind": kind, "elapsed": round(now - self.started, 6), **fields})

    def write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, default=repr) + "\n")
        self.out.flush()


def _plain(value: Any) -> Any:
    """The value if JSON can carry it as is, else its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value
