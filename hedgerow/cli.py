"""The `hedgerow` command: check, run and chaos-test trees from tree files; run the router.

Exit status, for every subcommand: 0 when all went well (the tree stopped
normally), 1 when the tree failed (its root gave up, or a child would not
start), 2 for bad input (a bad file or option). Library code never configures
logging; the commands here do (and `hedgerow.run`, as autobahn's `run` does).
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler

from hedgerow._events import EventKind, EventStream, quiet_event_log
from hedgerow._exceptions import ConfigError, StartError
from hedgerow._version import __version__
from hedgerow._view import JsonView, LineView, TreeState, spec_tree
from hedgerow.actors._reason import describe
from hedgerow.supervision._tree import Tree
from hedgerow.supervision._treefile import load_tree
from hedgerow.testing._chaos import chaos
from hedgerow.transports import router_command

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from hedgerow._events import Event
    from hedgerow.supervision._spec import SupervisorSpec

__all__ = ["cli", "main"]

logger = logging.getLogger("hedgerow.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""A second Ctrl-C cut the graceful shutdown short (128 + SIGINT, the shell's convention)."""

LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]
TICK = 0.25
"""Seconds between refreshes of the live view, and between checks of --for."""


class _CutShort(Exception):
    """The second Ctrl-C: unwind (restoring the terminal), then leave at once."""


class _Exit(click.exceptions.Exit):
    """Leave the command with a status, after a message on stderr."""


def _fail(message: str, status: int) -> _Exit:
    click.echo(message, err=True)
    return _Exit(status)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: hedgerow run examples/flaky_worker/tree.toml",
)
@click.version_option(__version__, "--version", prog_name="hedgerow")
def cli() -> None:
    """Run Erlang-style supervision trees of Python actors, described in tree files.

    A tree file (TOML, YAML or JSON) names supervisors, their strategies and
    children; `hedgerow check` validates one, `hedgerow run` runs one.
    """


@cli.command(epilog="Example: hedgerow check examples/*/tree.*")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
def check(files: tuple[str, ...], quiet: bool) -> None:
    """Validate tree FILES and import every class they name, starting nothing.

    Prints each tree and exits 0 if all are good; otherwise prints every
    problem (file, key path, value and what is allowed) and exits 2.
    """
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    bad = 0
    for file in files:
        try:
            spec = load_tree(file)
        except ConfigError as exc:
            bad += 1
            err.print(f"[red]error[/red] {exc}", markup=True, soft_wrap=True)
            continue
        if not quiet:
            out.print(f"[green]ok[/green] {file}", markup=True)
            out.print(spec_tree(spec))
    if bad:
        raise _Exit(EXIT_BAD_INPUT)


@cli.command(epilog="Example: hedgerow run examples/pipeline/tree.yaml --for 10 --json")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Stop the tree gracefully after this many seconds (default: run until it ends).",
)
@click.option("--json", "as_json", is_flag=True, help="Write events as JSON lines on stdout.")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="Level of the log lines (yours and hedgerow's) written to stderr.",
)
@click.option(
    "--live/--no-live",
    default=None,
    help="Show the live tree (default: when stdout is a terminal and not --json).",
)
def run(
    file: str,
    duration: float | None,
    as_json: bool,
    log_level: str,
    live: bool | None,
) -> None:
    """Start the tree in FILE and run it until it ends or SIGINT/SIGTERM arrives.

    On the first Ctrl-C (or SIGTERM) the tree shuts down gracefully, children
    in reverse start order; a second one stops at once. Exits 0 when the tree
    stopped normally, 1 when its root gave up, 2 for a bad file, and 130 when
    a second Ctrl-C cut the shutdown short.
    """
    try:
        spec = load_tree(file)
    except ConfigError as exc:
        raise _fail(f"error: {exc}", EXIT_BAD_INPUT) from None
    if live is None:
        live = sys.stdout.isatty() and not as_json
    restore = _configure_logging(log_level, rich=live or sys.stderr.isatty())
    try:
        with quiet_event_log():  # the view shows every event, with its traceback
            status = _Runner(spec, duration=duration, as_json=as_json, live=live).run()
    finally:
        restore()
    raise _Exit(status)


def _configure_logging(level: str, *, rich: bool) -> Callable[[], None]:
    """Send log lines to stderr at `level`; returns a function that undoes it
    (the command may run inside another program, such as a test)."""
    handler: logging.Handler
    if rich:
        handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

    def restore() -> None:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])

    return restore


class _Runner:
    """Runs one tree for `hedgerow run`: starts it, shows its events, handles signals."""

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        duration: float | None,
        as_json: bool,
        live: bool,
    ) -> None:
        self.spec = spec
        self.name = spec.name or "root"
        self.duration = duration
        self.as_json = as_json
        self.live = live
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.started = time.monotonic()
        self.signals = 0
        self.wake = threading.Event()
        self.state = TreeState(spec, self.name)
        self.stop_reason: str | None = None
        self.lines = LineView(sys.stdout, self.started)
        self.json = JsonView(sys.stdout, self.started)

    def run(self) -> int:
        stream = EventStream()
        stream.subscribe(self._on_event)
        previous = self._install_signal_handlers()
        try:
            try:
                tree = Tree(self.spec, name=self.name, events=stream)
            except StartError as exc:
                self._drain(None)
                while isinstance(exc.cause, StartError):  # a nested supervisor's child
                    exc = exc.cause
                message = f"the tree did not start: child {exc.child_id!r} failed to start: "
                message += describe(exc.cause)
                self._summary(EXIT_FAILED, message)
                return EXIT_FAILED
            try:
                if self.live:
                    self._run_live(tree)
                else:
                    self._run_plain(tree)
            except _CutShort:
                self._cut_short(tree)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        status = EXIT_FAILED if tree.gave_up else EXIT_OK
        reason = describe(tree.reason if tree.reason is not None else "unknown")
        self._summary(status, f"tree {self.name!r} ended: {reason}")
        return status

    def _on_event(self, event: Event) -> None:
        # Called in the supervisors' threads: hand over, render in the main thread.
        self.events.put(event)
        self.wake.set()

    def _install_signal_handlers(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous  # click's test runner may call us from another thread
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals += 1
        self.stop_reason = signal.Signals(signum).name
        self.wake.set()

    def _loop(
        self,
        tree: Tree,
        show: Callable[[Event, float], None],
        tick: Callable[[], None],
    ) -> None:
        deadline = None if self.duration is None else self.started + self.duration
        stopping = False
        while True:
            self._drain(show)
            if tree.done and self.events.empty():
                self._drain(show)
                return
            if self.signals >= 2:  # noqa: PLR2004 - the second Ctrl-C
                self._drain(show)
                raise _CutShort
            expired = deadline is not None and time.monotonic() >= deadline
            if not stopping and (self.signals or expired):
                stopping = True
                why = self.stop_reason or f"--for {self.duration:g}"
                logger.info("stopping the tree (%s); Ctrl-C again to stop at once", why)
                tree.request_stop()
            tick()
            timeout = TICK if deadline is None else min(TICK, max(deadline - time.monotonic(), 0.0))
            self.wake.wait(timeout)
            self.wake.clear()

    def _drain(self, show: Callable[[Event, float], None] | None) -> None:
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                return
            now = time.monotonic()
            self.state.apply(event, now)
            if show is not None:
                show(event, now)

    def _run_plain(self, tree: Tree) -> None:
        view = self.json if self.as_json else self.lines
        self._loop(tree, view.show, lambda: None)

    def _run_live(self, tree: Tree) -> None:
        console = Console()
        footer = "Ctrl-C: stop gracefully; twice: at once"
        with Live(console=console, refresh_per_second=4, transient=False) as live:

            def show(event: Event, now: float) -> None:
                if event.kind is not EventKind.STARTED or event.path == self.name:
                    live.console.print(self.lines.line(event, now), highlight=False)

            def tick() -> None:
                live.update(self.state.render(time.monotonic(), footer))

            tick()
            self._loop(tree, show, tick)
            live.update(self.state.render(time.monotonic()))

    def _cut_short(self, tree: Tree) -> None:
        """The second Ctrl-C: leave now. Every actor is a thread of this process,
        so nothing outlives it; user `on_stop` hooks not yet run are skipped."""
        self._summary(EXIT_INTERRUPTED, f"tree {tree.name!r} stopped at once (second signal)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)

    def _summary(self, status: int, message: str) -> None:
        if self.as_json:
            self.json.write({"kind": "exit", "status": status, "message": message})
        if status == EXIT_OK:
            logger.info("%s", message)
        else:
            logger.error("%s", message)


cli.add_command(chaos)
cli.add_command(router_command)


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (also ``python -m hedgerow``)."""
    cli.main(args=argv, prog_name="hedgerow")
