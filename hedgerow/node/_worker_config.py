"""A worker's config line: read from stdin within a time and a size, then checked.

The node writes one JSON line on the worker's stdin (`hedgerow.node._wire`
describes it). It is untrusted input: `read_config_line` reads at most
`MAX_CONFIG_BYTES` (a line without end cannot grow the worker), and
`parse_config` refuses anything but the protocol's object, each key of the
right type, nested no deeper than a tree file may be, numbers finite, paths
the system takes, with a `BadConfig` naming the key (the worker exits 2).
"""

from __future__ import annotations

import json
import logging
import math
import os
import select
import time
from typing import Any

from hedgerow._clock import MAX_DELAY
from hedgerow._exceptions import ConfigError
from hedgerow.node._wire import CONFIG_KEYS
from hedgerow.supervision._treeparse import MAX_DIGITS, TooManyDigits, check_data
from hedgerow.transports._choice import FRAMEWORKS

__all__ = [
    "MAX_CONFIG_BYTES",
    "PARENT_POLL",
    "BadConfig",
    "NoConfig",
    "config_timeout",
    "node_gone",
    "node_pidfd",
    "parse_config",
    "read_config_line",
    "timeout_seconds",
    "watch_node_pidfd",
]

PARENT_POLL = 1.0
"""Seconds between two looks at the parent pid (the backstop to stdin's end of file)."""
MAX_CONFIG_BYTES = 8 * 1024 * 1024
"""The longest config line a worker reads (8 MiB); a longer one is bad config (exit 2)."""


_node_pidfd: int | None = None
"""A forked worker's (`hedgerow.node._zygote`) pidfd of its node; None in a spawned one."""


def watch_node_pidfd(fd: int) -> None:
    """Watch the node through its pidfd `fd`, not through the parent pid: a worker
    forked by a fork server has the server as its parent, and outlives it."""
    global _node_pidfd  # noqa: PLW0603 - one per process, set once before the worker runs
    _node_pidfd = fd


def node_pidfd() -> int | None:
    """The node's pidfd, in a worker forked by a fork server."""
    return _node_pidfd


def node_gone(parent: int) -> bool:
    """Whether the node went away: its pidfd says it exited, or (spawned) the parent
    pid is no longer `parent`. The backstop to stdin's end of file."""
    if _node_pidfd is not None:
        try:
            ready, _, _ = select.select([_node_pidfd], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(ready)
    return os.getppid() != parent


class NoConfig(Exception):
    """No config line came in time, or stdin closed before one."""


class BadConfig(Exception):
    """The config line cannot be used; the message names the key."""


# -- reading the config ----------------------------------------------------------


def read_config_line(fd: int, timeout: float | None) -> bytes:
    """Read stdin (`fd`) up to the first newline, within `timeout` seconds (None: no limit).

    Raises `NoConfig` on timeout, or if stdin closes (or the parent changes)
    before a line came; `BadConfig` if the line is longer than `MAX_CONFIG_BYTES`
    (what is read stops there: a line without end cannot grow the worker).
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    parent = os.getppid()
    data = bytearray()
    while b"\n" not in data:
        wait = PARENT_POLL
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                msg = f"no config on stdin within {timeout:g} s (--config-timeout)"
                raise NoConfig(msg)
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            if node_gone(parent):
                msg = "the node went away before sending a config"
                raise NoConfig(msg)
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            if data.strip():
                break
            msg = "stdin closed before a config line came"
            raise NoConfig(msg)
        data += chunk
        end = data.find(b"\n")
        if (end if end >= 0 else len(data)) > MAX_CONFIG_BYTES:
            msg = f"the config line is longer than {MAX_CONFIG_BYTES} bytes"
            raise BadConfig(msg)
    return bytes(data.split(b"\n", 1)[0])


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."  # noqa: PLR2004


def parse_config(line: bytes, *, guid: str, port: int) -> dict[str, Any]:
    """Check a config line: JSON, an object, every key of `CONFIG_KEYS` with its type,
    and the same guid and port as the command line. Raises `BadConfig`."""
    try:
        config = json.loads(line, parse_int=_json_int)
    except RecursionError:
        msg = "the config line is not JSON the worker takes: nested too deeply"
        raise BadConfig(msg) from None
    except ValueError as exc:
        msg = f"the config line is not JSON: {str(exc)[:200]}"
        raise BadConfig(msg) from None
    if not isinstance(config, dict):
        msg = f"the config line is {_short(config)}: expected a JSON object"
        raise BadConfig(msg)
    try:
        check_data(config, "the config line")
    except ConfigError as exc:
        problem = exc.problems[0]
        msg = f"key {problem.key!r}: {problem.rule}" if problem.key else problem.rule
        raise BadConfig(msg) from None
    for key, types in CONFIG_KEYS.items():
        if key not in config:
            msg = f"key {key!r} is missing"
            raise BadConfig(msg)
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types)
            msg = f"key {key!r} = {_short(value)}: expected {names}"
            raise BadConfig(msg)
    for key, expected in (("guid", guid), ("port", port)):
        if config[key] != expected:
            msg = f"key {key!r} = {_short(config[key])}: expected {expected!r} (--{key})"
            raise BadConfig(msg)
    _check_optional(config)
    return config


def _check_optional(config: dict[str, Any]) -> None:
    pythonpath = config.get("pythonpath", [])
    if not isinstance(pythonpath, list) or not all(_path_ok(p) for p in pythonpath):
        msg = f"key 'pythonpath' = {_short(pythonpath)}: expected a list of directories"
        raise BadConfig(msg)
    base_dir = config.get("base_dir")
    if base_dir is not None and not _path_ok(base_dir):
        msg = f"key 'base_dir' = {_short(base_dir)}: expected a directory or null"
        raise BadConfig(msg)
    level = config.get("log_level")
    if level is not None and (
        not isinstance(level, str) or not isinstance(logging.getLevelName(level), int)
    ):
        msg = f"key 'log_level' = {_short(level)}: expected a logging level name"
        raise BadConfig(msg)
    framework = config.get("framework")
    if framework is not None and framework not in FRAMEWORKS:
        msg = f"key 'framework' = {_short(framework)}: expected one of {', '.join(FRAMEWORKS)}"
        raise BadConfig(msg)
    timeout = config.get("orphan_timeout")
    if timeout is not None and not _seconds_ok(timeout):
        msg = f"key 'orphan_timeout' = {_short(timeout)}: expected finite seconds >= 0 or null"
        raise BadConfig(msg)


def _path_ok(value: Any) -> bool:
    """A path the system can take (a NUL byte in sys.path breaks every later import)."""
    return isinstance(value, str) and "\x00" not in value and len(value) <= _MAX_PATH


_MAX_PATH = 4096


def _seconds_ok(value: Any) -> bool:
    """Seconds a clock can wait: a number >= 0, finite, at most `MAX_DELAY`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value) and 0 <= value <= MAX_DELAY
    except OverflowError:  # an int beyond any float
        return False


def _json_int(text: str) -> Any:
    """An integer of the config line, or `TooManyDigits` (reported with its key)."""
    digits = len(text.lstrip("-"))
    return TooManyDigits(digits) if digits > MAX_DIGITS else int(text)


def timeout_seconds(text: str) -> float | None:
    """``--config-timeout``'s value: finite seconds > 0, else None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if _seconds_ok(value) and value > 0 else None


def config_timeout(text: str) -> float:
    """``--config-timeout`` for argparse: finite seconds > 0."""
    value = timeout_seconds(text)
    if value is None:
        import argparse  # noqa: PLC0415 - a worker imports it for mistakes only

        msg = f"{text!r}: expected finite seconds > 0"
        raise argparse.ArgumentTypeError(msg)
    return value
