"""How hedgerow's programs write log lines: `hedgerow run` and its worker processes.

One text format for the node and its workers (a worker's lines say which
worker wrote them), and an opt-in JSON format for machines: one object per
line. The node reads its workers' lines back into log records (`parse_line`)
to show them in its live view as its own. Library code never configures
logging; these are for the programs that do.
"""

from __future__ import annotations

import json
import logging
import os
import re
from typing import Any

from hedgerow._events import event_of

__all__ = [
    "LOG_FORMATS",
    "LOG_FORMAT_ENV",
    "ORIGIN_ATTRIBUTE",
    "JsonFormatter",
    "TextFormatter",
    "formatter",
    "origin_of",
    "parse_line",
]

LOG_FORMATS = ("text", "json")
LOG_FORMAT_ENV = "HEDGEROW_LOG_FORMAT"
"""The environment variable that tells a worker process the node's log format
(`hedgerow run --log-format` sets it for the workers it starts)."""
ORIGIN_ATTRIBUTE = "hedgerow_origin"
"""The attribute of a record read back from a worker's line that names the worker."""

_TIME = "%Y-%m-%d %H:%M:%S"


def origin_of(record: logging.LogRecord) -> str | None:
    """The worker a record read back from its line came from (``worker w1``), else None."""
    origin = getattr(record, ORIGIN_ATTRIBUTE, None)
    return origin if isinstance(origin, str) else None


class TextFormatter(logging.Formatter):
    """``2026-12-02 18:11:04,021 INFO     hedgerow.node: message``, then the
    traceback if any; `origin` (a worker's ``worker w1``) and the pid go
    before the logger name: ``worker w1[4242] hedgerow.node: message``."""

    def __init__(self, origin: str | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)-8s %(name)s: %(message)s")
        self.origin = origin

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        origin = self.origin or origin_of(record)
        if origin is None:
            return super().formatMessage(record)
        return (
            f"{record.asctime} {record.levelname:<8} {origin}[{record.process}] "
            f"{record.name}: {record.message}"
        )


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
        from datetime import UTC, datetime  # noqa: PLC0415 - a worker logs in text, mostly

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
        origin = self.origin or origin_of(record)
        if origin is not None:
            data["origin"] = origin
            data["pid"] = record.process
        return json.dumps(data, default=repr)


def formatter(log_format: str | None = None, origin: str | None = None) -> logging.Formatter:
    """The formatter for `log_format` ("text" or "json"; by default the one
    `LOG_FORMAT_ENV` names, else text)."""
    chosen = log_format or os.environ.get(LOG_FORMAT_ENV) or "text"
    return JsonFormatter(origin) if chosen == "json" else TextFormatter(origin)


_TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(?P<ms>\d{3}) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) +"
    r"(?P<origin>.+?)\[(?P<pid>\d+)\] (?P<name>\S+): (?P<message>.*)"
)


def parse_line(line: str) -> logging.LogRecord | None:
    """The log record a worker's line (text or JSON, with its origin) says,
    else None (a print, a line of a traceback)."""
    from datetime import datetime  # noqa: PLC0415 - the node's, not a worker's

    fields: dict[str, Any]
    if line.startswith("{"):
        try:
            data = json.loads(line)
            time = datetime.fromisoformat(data["time"])
            fields = {
                "created": time.timestamp(),
                "msecs": time.microsecond // 1000,
                "levelname": data["level"],
                "name": data["logger"],
                "msg": data["message"],
                "exc_text": data.get("exception"),
                "process": int(data["pid"]),
                ORIGIN_ATTRIBUTE: str(data["origin"]),
            }
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
    else:
        match = _TEXT_LINE.fullmatch(line)
        if match is None:
            return None
        stamp = datetime.strptime(match["time"], _TIME).timestamp()  # noqa: DTZ007 - local, as written
        fields = {
            "created": stamp + int(match["ms"]) / 1000,
            "msecs": int(match["ms"]),
            "levelname": match["level"],
            "name": match["name"],
            "msg": match["message"],
            "process": int(match["pid"]),
            ORIGIN_ATTRIBUTE: match["origin"],
        }
    level = logging.getLevelName(fields["levelname"])
    if not isinstance(level, int):
        return None
    return logging.makeLogRecord({**fields, "levelno": level, "args": None})
