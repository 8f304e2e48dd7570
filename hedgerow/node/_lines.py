"""The node's check of what its workers write: untrusted lines, refused in full.

A worker's stdout is one JSON object per line (`hedgerow.node._wire`). The
node reads it in a reader thread and must not be harmed by a worker that
writes anything else: a line longer than `MAX_LINE` bytes is refused
unread (`hedgerow.node._line_reader`), and `check_line` accepts only a line
of the protocol, each field of the right
type (a kind the node knows, a path as text, a finite delay, JSON nested no
deeper than `MAX_DEPTH`). Anything else raises `BadLine`, and the node kills
the worker: its supervisor restarts it as for any failure.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hedgerow._events import EventKind

__all__ = ["MAX_LINE", "BadLine", "check_line"]

MAX_LINE = 1024 * 1024
"""The longest line a worker may write (1 MiB: a long traceback fits many times)."""
MAX_DEPTH = 32
"""The deepest nesting of a line's JSON."""
MAX_PATH = 1024
"""The longest path of an event."""
_MAX_DIGITS = 4300
_KINDS = frozenset(kind.value for kind in EventKind)


class BadLine(ValueError):
    """A worker wrote a line that is not of the protocol; the message says what is wrong."""


def check_line(raw: bytes) -> dict[str, Any]:
    """The line's object, if it is one of the protocol's (ready, event, exit)."""
    try:
        line = json.loads(raw, parse_int=_int)
    except RecursionError:
        msg = "not JSON: nested too deeply"
        raise BadLine(msg) from None
    except (ValueError, UnicodeDecodeError) as exc:
        msg = f"not JSON: {str(exc)[:80]}"
        raise BadLine(msg) from None
    if not isinstance(line, dict):
        msg = f"not a JSON object: {_short(raw)}"
        raise BadLine(msg)
    _check_depth(line)
    kind = line.get("type")
    if kind == "event":
        _check_event(line)
    elif kind == "ready":
        _want(line, "pid", int)
    elif kind == "exit":
        _want(line, "status", int)
        _want(line, "reason", str, optional=True)
    else:
        msg = f"type {_short(kind)}: expected 'ready', 'event' or 'exit'"
        raise BadLine(msg)
    return line


def _check_event(line: dict[str, Any]) -> None:
    kind = line.get("kind")
    if kind not in _KINDS:
        msg = f"event kind {_short(kind)}: not an event hedgerow knows"
        raise BadLine(msg)
    path = _want(line, "path", str)
    if not path or len(path) > MAX_PATH:
        msg = f"event path {_short(path)}: expected text of 1 to {MAX_PATH} characters"
        raise BadLine(msg)
    incarnation = _want(line, "incarnation", int, optional=True)
    if incarnation is not None and incarnation < 0:
        msg = f"event incarnation {incarnation}: expected a count >= 0"
        raise BadLine(msg)
    delay = _want(line, "delay", (int, float), optional=True)
    if delay is not None and not (math.isfinite(delay) and delay >= 0):
        msg = f"event delay {_short(delay)}: expected finite seconds >= 0"
        raise BadLine(msg)
    _want(line, "traceback", str, optional=True)
    _want(line, "message", str, optional=True)
    _want(line, "info", dict, optional=True)
    reason = line.get("reason")
    if reason is None or isinstance(reason, str):
        return
    if isinstance(reason, dict) and set(reason) == {"shutdown"}:
        return
    if (
        isinstance(reason, dict)
        and set(reason) <= {"error", "message"}
        and isinstance(reason.get("error"), str)
        and isinstance(reason.get("message", ""), str)
    ):
        return
    expected = "expected text, {'shutdown': term} or {'error': ..., 'message': ...}"
    msg = f"event reason {_short(reason)}: {expected}"
    raise BadLine(msg)


def _want(line: dict[str, Any], key: str, kind: Any, *, optional: bool = False) -> Any:
    value = line.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        msg = f"{line.get('type')} line's {key!r} = {_short(value)}: expected {names}"
        raise BadLine(msg)
    return value


def _check_depth(value: Any) -> None:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            msg = f"nested more than {MAX_DEPTH} levels deep"
            raise BadLine(msg)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def _int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_DIGITS:
        msg = f"an integer of {len(text)} digits"
        raise ValueError(msg)
    return int(text)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004
