"""How hedgerow's programs write log lines: `hedgerow run` and its worker processes.

One text format for the node and its workers (a worker's lines say which
worker wrote them), and an opt-in JSON format for machines: one object per
line. Library code never configures logging; these are for the programs that do.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from hedgerow._events import event_of

__all__ = [
    "LOG_FORMATS",
    "LOG_FORMAT_ENV",
    "JsonFormatter",
    "TextFormatter",
    "formatter",
]

LOG_FORMATS = ("text", "json")
LOG_FORMAT_ENV = "HEDGEROW_LOG_FORMAT"
"""The environment variable that tells a worker process the node's log format
(`hedgerow run --log-format` sets it for the workers it starts)."""


class TextFormatter(logging.Formatter):
    """``2026-12-02 18:11:04,021 INFO     hedgerow.node: message``, then the
    traceback if any; `origin` (a worker's ``worker w1``) and the pid go
    before the logger name: ``worker w1[4242] hedgerow.node: message``."""

    def __init__(self, origin: str | None = None) -> None:
        prefix = f"{origin.replace('%', '%%')}[%(process)d] " if origin else ""
        super().__init__(f"%(asctime)s %(levelname)-8s {prefix}%(name)s: %(message)s")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, and, if there is one, ``exception`` (the whole
    traceback text); ``origin`` and ``pid`` name a worker process. A tree
    event's record also carries ``event`` (kind, path, incarnation), and its
    traceback is its ``exception``."""

    def __init__(self, origin: str | None = None) -> None:
        super().__init__()
        self.origin = origin

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        exception = None
        event = event_of(record)
        if event is not None:
            message = event.describe()
            exception = event.traceback.rstrip() if event.traceback else None
        if record.exc_info:
            exception = self.formatException(record.exc_info)
        elif record.exc_text:
            exception = record.exc_text
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if exception:
            data["exception"] = exception
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        if event is not None:
            data["event"] = {
                "kind": event.kind.value,
                "path": event.path,
                "incarnation": event.incarnation,
            }
        if self.origin is not None:
            data["origin"] = self.origin
            data["pid"] = record.process
        return json.dumps(data, default=repr)


def formatter(log_format: str | None = None, origin: str | None = None) -> logging.Formatter:
    """The formatter for `log_format` ("text" or "json"; by default the one
    `LOG_FORMAT_ENV` names, else text)."""
    chosen = log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    return JsonFormatter(origin) if chosen == "json" else TextFormatter(origin)
