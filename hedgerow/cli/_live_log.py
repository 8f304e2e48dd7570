"""The live view's log lines: on the view's own console, one line each.

The live view (`hedgerow.cli._view.TreeState` in a rich ``Live``) shares one
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
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.logging import RichHandler
from rich.text import Text

from hedgerow._events import event_of
from hedgerow._logs import formatter, origin_of, parse_line
from hedgerow.cli._view import event_line

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rich.console import RenderableType
    from rich.live import Live

__all__ = ["ConsoleHandler", "FoldedFormatter", "LiveConsole", "live_handler", "stderr_through"]


class LiveConsole:
    """The live view's console, and the lock that keeps its output in order.

    rich's ``Live`` redraws the tree under each print, moving the cursor up by
    the height it drew last: a print from one thread racing a redraw of another
    height from another leaves a stale line of the tree, or overwrites a line.
    So every print and every redraw holds `lock`, taken before ``Live``'s own
    (``Live`` runs without its refresh thread: the main thread redraws, with
    `redraw`). An RLock: a signal handler in the main thread may print.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.lock = threading.RLock()

    def print(self, line: str) -> None:
        """Print `line` as it is, above the tree."""
        with self.lock:
            self.console.print(Text(line), soft_wrap=True, highlight=False)

    def redraw(self, live: Live, tree: RenderableType) -> None:
        """Show `tree` in `live` (which runs on this console) now."""
        with self.lock:
            live.update(tree, refresh=True)

    @contextlib.contextmanager
    def stdout(self) -> Iterator[None]:
        """Print what is written on ``sys.stdout`` (a print) above the tree, in order."""
        saved = sys.stdout
        sys.stdout = _LockedProxy(self, saved)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stdout = saved


class _LockedProxy(FileProxy):
    """rich's proxy of a file for a live display, writing under the console's lock."""

    def __init__(self, live: LiveConsole, file: Any) -> None:
        super().__init__(live.console, file)
        self._live_lock = live.lock

    def write(self, text: str) -> int:
        with self._live_lock:
            return super().write(text)

    def flush(self) -> None:
        with self._live_lock:
            super().flush()


class _LiveRichHandler(RichHandler):
    """rich's log handler, printing under the live console's lock."""

    def __init__(self, live: LiveConsole) -> None:
        super().__init__(console=live.console, show_path=False, markup=False)
        self._live_lock = live.lock

    def emit(self, record: logging.LogRecord) -> None:
        with self._live_lock:
            super().emit(record)


def live_handler(live: LiveConsole, log_format: str) -> logging.Handler:
    """The handler that prints log lines above the live tree: rich's columns and
    `FoldedFormatter` for text, else one `formatter` line each (JSON)."""
    handler: logging.Handler
    if log_format == "text":
        handler = _LiveRichHandler(live)
        handler.setFormatter(FoldedFormatter())
    else:
        handler = ConsoleHandler(live)
        handler.setFormatter(formatter(log_format))
    return handler


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
            last = record.exc_text.rstrip().splitlines()[-1]
            message += f" ({last}; traceback folded)"
        origin = origin_of(record)
        if origin is not None:  # a worker process's line
            return f"{origin}[{record.process}] {record.name}: {message}"
        return f"{record.name}: {message}"


class ConsoleHandler(logging.Handler):
    """Prints each formatted record above the live tree, as it is."""

    def __init__(self, live: LiveConsole) -> None:
        super().__init__()
        self.live = live

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.live.print(self.format(record))
        except Exception:  # noqa: BLE001 - logging's rule: report, never raise
            self.handleError(record)


LINGER = 1.0
"""Seconds `stderr_through` waits, at its end, for the last lines of processes still writing."""


class _Relay:
    """Shows lines written on stderr in the live view: a worker's log line as
    the node's own (through `handler`), anything else (a print) as it is, and
    a traceback folded to its last line (the exception)."""

    def __init__(self, live: LiveConsole, handler: logging.Handler) -> None:
        self.live = live
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
            self.live.print(line)


_CHAINS = frozenset(
    {
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
    }
)


@contextlib.contextmanager
def stderr_through(live: LiveConsole, handler: logging.Handler) -> Iterator[None]:
    """Show what is written on this process's stderr (file descriptor 2, which
    worker processes inherit) in the live view, line by line, while the
    context lasts: above the tree, not across it (see `_Relay`)."""
    sys.stderr.flush()
    read, write = os.pipe()
    saved = os.dup(2)
    os.dup2(write, 2)
    os.close(write)
    relay = _Relay(live, handler)

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
