"""The live view's log lines: on the view's own console, one line each.

The live view (`hedgerow._view.TreeState` in a rich ``Live``) shares one
console with the log lines: the tree stays at the bottom, each log line (the
tree's events are log lines there) is printed once above it, its traceback
folded to one line (`FoldedFormatter`), and what anything else writes on the
process's stderr (worker processes, prints) is printed there too
(`stderr_through`), a worker's log lines as the node's own. The full text goes
to ``--log-file``, ``--json`` and the event lines when not live.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING

from rich.text import Text

from hedgerow._events import event_of
from hedgerow._logs import origin_of, parse_line
from hedgerow._view import event_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import Console

__all__ = ["ConsoleHandler", "FoldedFormatter", "stderr_through"]


class FoldedFormatter(logging.Formatter):
    """``logger: message`` in one line, for the live view: a traceback folds to
    its last line (the exception), and a tree event shows as `event_line` (its
    reason names the exception). The full text goes to ``--log-file``."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        event = event_of(record)
        message = event_line(event) if event is not None else record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message += f" ({type(error).__name__}: {error}; traceback folded)"
        elif record.exc_text:
            message += f" ({record.exc_text.rstrip().rsplit(chr(10), 1)[-1]}; traceback folded)"
        origin = origin_of(record)
        if origin is not None:  # a worker process's line
            return f"{origin}[{record.process}] {record.name}: {message}"
        return f"{record.name}: {message}"


class ConsoleHandler(logging.Handler):
    """Prints each formatted record on a rich console, as one text line (above
    a live display, if one runs there)."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(Text(self.format(record)), soft_wrap=True, highlight=False)
        except Exception:  # noqa: BLE001 - logging's rule: report, never raise
            self.handleError(record)


LINGER = 1.0
"""Seconds `stderr_through` waits, at its end, for the last lines of processes still writing."""


class _Relay:
    """Shows lines written on stderr in the live view: a worker's log line as
    the node's own (through `handler`), anything else (a print) as it is, and
    a traceback folded to its last line (the exception)."""

    def __init__(self, console: Console, handler: logging.Handler) -> None:
        self.console = console
        self.handler = handler
        self.in_traceback = False

    def line(self, line: str) -> None:
        if line == "Traceback (most recent call last):":
            self.in_traceback = True
            return
        if self.in_traceback:
            if line[:1].isspace() or not line or line in _CHAINS:
                return
            self.in_traceback = False
            line += " (traceback folded)"
        record = parse_line(line)
        if record is not None:
            self.handler.handle(record)
        else:
            self.console.print(Text(line), soft_wrap=True, highlight=False)


_CHAINS = frozenset(
    {
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    }
)


@contextlib.contextmanager
def stderr_through(console: Console, handler: logging.Handler) -> Iterator[None]:
    """Show what is written on this process's stderr (file descriptor 2, which
    worker processes inherit) in the live view on `console`, line by line,
    while the context lasts: above the tree, not across it (see `_Relay`)."""
    sys.stderr.flush()
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    os.close(write)
    relay = _Relay(console, handler)

    def run() -> None:
        with os.fdopen(read, "rb") as pipe:
            for raw in pipe:
                relay.line(raw.decode(errors="replace").rstrip("\r\n"))

    thread = threading.Thread(target=run, name="hedgerow-stderr", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # our last copy of the pipe's write end closes
        os.close(saved)
        thread.join(LINGER)  # end of file, unless a process left behind still holds it
