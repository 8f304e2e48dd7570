"""`hedgerow run`: its options, and the logging it configures."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.logging import RichHandler

from hedgerow._events import drop_event_records
from hedgerow._exceptions import ConfigError
from hedgerow._logs import LOG_FORMAT_ENV, LOG_FORMATS, formatter
from hedgerow._seconds import Seconds
from hedgerow.cli import _main
from hedgerow.cli._live_log import LiveConsole, live_handler
from hedgerow.cli._main import EXIT_BAD_INPUT, LOG_LEVELS, _Exit, _fail, cli
from hedgerow.cli._runner import _Runner
from hedgerow.node._treeload import read_tree
from hedgerow.transports import FRAMEWORKS, use_framework

if TYPE_CHECKING:
    from collections.abc import Callable


@cli.command(epilog="Example: hedgerow run examples/pipeline/tree.yaml --for 10 --json")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--for",
    "duration",
    type=Seconds(),
    metavar="SECONDS",
    help="Stop the tree gracefully after this many seconds (default: run until it ends).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Write events as JSON lines on stdout (what the tree prints goes to stderr).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="Level of the log lines (yours, hedgerow's and its workers'); in the live view, "
    "the tree's events are log lines too (failures at ERROR, restarts at INFO, "
    "starts and stops at DEBUG).",
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    help="Log lines as text, or as JSON objects (one per line: time, level, logger, "
    "message, exception) for machines; worker processes follow.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Also append the log lines to FILE, with the tree's events and their full tracebacks.",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Show the live tree, with the log lines above it, tracebacks folded to one line "
    "(default: when stdout is a terminal, without --json or --log-format json).",
)
@click.option(
    "--framework",
    type=click.Choice(FRAMEWORKS),
    default=None,
    help="Run the WAMP sessions of this process on asyncio (the default) or Twisted's reactor.",
)
def run(
    file: str,
    *,
    duration: float | None,
    as_json: bool,
    log_level: str,
    log_format: str,
    log_file: str | None,
    live: bool | None,
    framework: str | None,
) -> None:
    """Start the tree in FILE and run it until it ends or SIGINT/SIGTERM arrives.

    On the first Ctrl-C (or SIGTERM) the tree shuts down gracefully, children
    in reverse start order; a second one stops at once. SIGHUP (or SIGUSR1)
    re-reads FILE and changes only what changed: added children start (first,
    before anything running is touched), removed ones stop, changed ones
    restart, the others run on with their state. A bad file, or an added
    child that cannot start, is logged and refused with the tree untouched; a
    changed child that cannot start undoes the reload. A changed root
    supervisor restarts the whole tree (the previous one again if the new one
    cannot start).

    The tree's events go to stdout: one line each (JSON with --json), full
    tracebacks included, or the live view in a terminal. Log lines go to
    stderr, or above the live view.

    Exits 0 when the tree stopped normally, 1 when its root gave up or it did
    not start, 2 for a bad file, 130 when a second Ctrl-C cut the shutdown
    short (and 70 if a stop listener of the process bus failed).
    """
    if _main._as_program and threading.current_thread() is threading.main_thread():
        # Until the bus handles them, and once it has put the previous handlers
        # back: a reload signal then must not kill the node (its default action).
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, signal.SIG_IGN)
    if framework is not None:
        try:
            use_framework(framework)
        except RuntimeError as exc:
            raise _fail(f"error: --framework {framework}: {exc}", EXIT_BAD_INPUT) from None
    try:
        tree_file = read_tree(file)
    except ConfigError as exc:
        raise _fail(f"error: {exc}", EXIT_BAD_INPUT) from None
    spec = tree_file.spec
    if live is None:
        live = sys.stdout.isatty() and not as_json and log_format == "text"
    console = LiveConsole() if live else None
    try:
        shown, restore = _configure_logging(
            log_level, log_format, console=console, log_file=log_file
        )
    except OSError as exc:
        raise _fail(f"error: --log-file {log_file}: {exc.strerror}", EXIT_BAD_INPUT) from None
    try:
        view = None if console is None else (console, shown)
        runner = _Runner(file, spec, duration=duration, as_json=as_json, view=view)
        runner.management = tree_file.management
        status = runner.run()
    finally:
        restore()
    raise _Exit(status)


def _configure_logging(
    level: str, log_format: str, *, console: LiveConsole | None, log_file: str | None
) -> tuple[logging.Handler, Callable[[], None]]:
    """Log at `level` on the live view's `console`, else on stderr (where the
    tree's events, shown on stdout, are left out), and to `log_file` if given
    (events and tracebacks in full). Worker processes log in `log_format` too.
    Returns the handler that shows the lines (on the console or stderr), and a
    function that undoes it all (the command may run inside another program,
    such as a test)."""
    handlers: list[logging.Handler] = []
    if log_file is not None:
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(formatter(log_format))
        handlers.append(to_file)
    shown: logging.Handler
    if console is not None:
        shown = live_handler(console, log_format)
    elif log_format == "text" and sys.stderr.isatty():
        shown = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
        shown.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        shown.addFilter(drop_event_records)
    else:
        shown = logging.StreamHandler(sys.stderr)
        shown.setFormatter(formatter(log_format))
        shown.addFilter(drop_event_records)
    handlers.append(shown)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, os.environ.get(LOG_FORMAT_ENV))
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    os.environ[LOG_FORMAT_ENV] = log_format

    def restore() -> None:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        if saved[2] is None:
            os.environ.pop(LOG_FORMAT_ENV, None)
        else:
            os.environ[LOG_FORMAT_ENV] = saved[2]
        if log_file is not None:
            handlers[0].close()

    return shown, restore
