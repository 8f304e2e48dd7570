"""What a node and its worker processes say to each other: one JSON object per line.

The node writes ONE config line on the worker's stdin, then keeps stdin open
(its end of file tells the worker that the node is gone)::

    {"guid": "3f2a...",            # this incarnation's id (the same as --guid)
     "port": 8100,                 # its allocated port (the same as --port)
     "name": "w1",                 # the worker's name: the root of the tree it hosts
     "node": {"name": "root", "pid": 1234, "path": "root/w1"},
     "container": {"supervisor": {...}},   # tree-file data (tree_to_data)
     "base_dir": "/srv/app",       # the tree's pythonpath is relative to it (or null)
     "pythonpath": ["/srv/app"],   # put in front of sys.path before importing
     "management": {...},          # opaque: for the container's management session
     "log_level": "INFO",          # the worker's logging level (to its stderr)
     "framework": "twisted",       # what its WAMP sessions run on (null: asyncio)
     "orphan_timeout": 5.0}        # once the node is gone: seconds to stop, then exit

The worker writes lines on a private copy of its stdout (user code's prints
go to stderr)::

    {"type": "ready", "guid": "...", "pid": 4321, "port": 8100, "name": "w1"}
    {"type": "event", "kind": "failed", "path": "w1/a", "incarnation": 1,
     "reason": {"error": "RuntimeError", "message": "boom"}, "traceback": "..."}
    {"type": "exit", "status": 0, "reason": "shutdown"}

An event's fields are `hedgerow.Event`'s (those at their defaults are left
out); its path is in the worker's tree. A reason is a string (``normal``,
``shutdown``, ``killed``...), ``{"shutdown": term}`` for a user shutdown, or
``{"error": class name, "message": text}`` for an exception; a dead letter's
message travels as its repr.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hedgerow._events import EventKind
from hedgerow._exceptions import RemoteError, Shutdown

if TYPE_CHECKING:
    from hedgerow._events import Event
    from hedgerow.actors._reason import Reason

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_CONFIG_TIMEOUT",
    "DEFAULT_ORPHAN_TIMEOUT",
    "EXIT_BAD_CONFIG",
    "EXIT_FAILED",
    "EXIT_NO_CONFIG",
    "EXIT_OK",
    "EXIT_STOP_TIMEOUT",
    "decode_event",
    "decode_reason",
    "describe_status",
    "dumps",
    "encode_event",
    "encode_reason",
]

DEFAULT_CONFIG_TIMEOUT = 10.0
"""Seconds a worker waits for its config line (``--config-timeout``; turberfield waits 3)."""
DEFAULT_ORPHAN_TIMEOUT = 10.0
"""Seconds a worker may take to stop once its node is gone, if the config gives none."""

EXIT_OK = 0
"""The hosted tree stopped: on SIGTERM, when the node went away, or by itself normally."""
EXIT_FAILED = 1
"""The hosted tree failed: it could not start, or its root gave up."""
EXIT_BAD_CONFIG = 2
"""The config line was not JSON, lacked a key, or named a tree that does not validate."""
EXIT_NO_CONFIG = 3
"""No config line came on stdin within ``--config-timeout`` seconds."""
EXIT_STOP_TIMEOUT = 4
"""The node went away and the hosted tree did not stop within ``orphan_timeout``."""

_STATUS_TEXT = {
    EXIT_OK: "stopped",
    EXIT_FAILED: "its tree failed",
    EXIT_BAD_CONFIG: "bad config",
    EXIT_NO_CONFIG: "no config",
    EXIT_STOP_TIMEOUT: "its tree did not stop in time",
}

CONFIG_KEYS: dict[str, tuple[type, ...]] = {
    "guid": (str,),
    "port": (int,),
    "name": (str,),
    "container": (dict,),
}
"""The keys a config line must have, and their JSON types."""


def describe_status(status: int) -> str:
    """What a worker's exit status means, in a few words."""
    return _STATUS_TEXT.get(status, "unexpected status")


def dumps(obj: dict[str, Any]) -> bytes:
    """One line of JSON; what JSON cannot hold is written as its repr."""
    return json.dumps(obj, default=repr, separators=(",", ":")).encode() + b"\n"


def encode_reason(reason: Reason | None) -> Any:
    if reason is None or isinstance(reason, str):
        return reason
    if isinstance(reason, Shutdown):
        term = reason.term
        try:
            json.dumps(term)
        except (TypeError, ValueError):
            term = repr(term)
        return {"shutdown": term}
    if isinstance(reason, RemoteError):  # from a worker of this worker: keep the first name
        return {"error": reason.remote_type, "message": reason.message}
    return {"error": type(reason).__name__, "message": str(reason)}


def decode_reason(data: Any) -> Reason | None:
    if data is None or isinstance(data, str):
        return data
    if isinstance(data, dict):
        if "shutdown" in data:
            return Shutdown(data["shutdown"])
        if "error" in data:
            return RemoteError(str(data["error"]), str(data.get("message", "")))
    return str(data)


def encode_event(event: Event) -> dict[str, Any]:
    line: dict[str, Any] = {"type": "event", "kind": event.kind.value, "path": event.path}
    if event.incarnation:
        line["incarnation"] = event.incarnation
    if event.reason is not None:
        line["reason"] = encode_reason(event.reason)
    for name in ("traceback", "delay", "info"):
        value = getattr(event, name)
        if value is not None:
            line[name] = value
    if event.kind in (EventKind.DEAD_LETTER, EventKind.HANDLER_FAILED):
        line["message"] = repr(event.message)
    return line


def decode_event(line: dict[str, Any]) -> tuple[EventKind, str, dict[str, Any]]:
    """The kind, path and the other fields of `EventStream.publish` for an event line.

    Raises KeyError or ValueError for a line that is not an event.
    """
    kind = EventKind(line["kind"])
    path = line["path"]
    if not isinstance(path, str):
        msg = f"event path {path!r}: expected a string"
        raise ValueError(msg)  # noqa: TRY004 - a malformed line, reported as such
    details: dict[str, Any] = {}
    if "incarnation" in line:
        details["incarnation"] = int(line["incarnation"])
    if "reason" in line:
        details["reason"] = decode_reason(line["reason"])
    for name in ("traceback", "delay", "info", "message"):
        if name in line:
            details[name] = line[name]
    return kind, path, details
