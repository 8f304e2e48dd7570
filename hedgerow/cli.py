"""The `hedgerow` command: check, run and chaos-test trees from tree files; run the router.

Exit status, for every subcommand: 0 when all went well (the tree stopped
normally), 1 when the tree failed (its root gave up, or a child would not
start), 2 for bad input (a bad file or option). Library code never configures
logging; the commands here do (and `hedgerow.run`, as autobahn's `run` does).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import select
import signal
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.live import Live
from rich.logging import RichHandler
from rich.markup import escape
from rich.text import Text

from hedgerow._events import EventStream, drop_event_records
from hedgerow._exceptions import ConfigError, StartCancelled, StartError, UpdateFailed
from hedgerow._extras import MissingExtra
from hedgerow._live_log import LiveConsole, live_handler, stderr_through
from hedgerow._logs import LOG_FORMAT_ENV, LOG_FORMATS, formatter
from hedgerow._seconds import Seconds
from hedgerow._status import status
from hedgerow._version import __version__
from hedgerow._view import JsonView, LineView, TreeState, spec_tree
from hedgerow.actors._reason import describe
from hedgerow.node import Bus, BusState, SignalHandler
from hedgerow.supervision._management import (
    Management,
    ManagementService,
    node_prefix,
    tree_procedures,
)
from hedgerow.supervision._plan import UpdatePlan, plan_update
from hedgerow.supervision._tree import Tree
from hedgerow.supervision._treefile import TreeFile, load_tree, read_tree
from hedgerow.supervision._update import apply_plan, arguments_problem
from hedgerow.testing._chaos import chaos
from hedgerow.transports import FRAMEWORKS, router_command, use_framework
from hedgerow.transports._authorization import Policy, load_principals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

    from hedgerow._events import Event
    from hedgerow.supervision._spec import SupervisorSpec

__all__ = ["cli", "main"]

logger = logging.getLogger("hedgerow")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
"""A second Ctrl-C cut the graceful shutdown short (128 + SIGINT, the shell's convention)."""

LOG_LEVELS = ["debug", "info", "warning", "error", "critical"]
TICK = 0.25
"""Seconds between refreshes of the live view, and between checks of --for."""


class _CutShort(BaseException):
    """The second Ctrl-C: unwind (restoring the terminal), then leave at once.

    Not an `Exception`, so that it passes through the bus's ``publish`` (which
    gathers the Exceptions of its listeners) as KeyboardInterrupt does."""


class _Exit(click.exceptions.Exit):
    """Leave the command with a status, after a message on stderr."""


def _fail(message: str, status: int) -> _Exit:
    click.echo(message, err=True)
    return _Exit(status)


class _Group(click.Group):
    """The command group: a missing optional extra is an install hint and exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MissingExtra as exc:
            raise _fail(f"error: {exc}", EXIT_BAD_INPUT) from None


@click.group(
    cls=_Group,
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

    A router's principals file (``[principals.<authid>]`` tables) is checked
    as `hedgerow router --principals` reads it.

    Prints each tree and exits 0 if all are good; otherwise prints every
    problem (file, key path, value and what is allowed) and exits 2.
    """
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    bad = 0
    for file in files:
        if _is_principals_file(file):
            bad += not _check_principals(file, out, err, quiet)
            continue
        try:
            spec = load_tree(file)
        except ConfigError as exc:
            bad += 1
            err.print(Text.assemble(("error", "red"), f" {exc}"), soft_wrap=True)
            continue
        if not quiet:
            out.print(Text.assemble(("ok", "green"), f" {file}"))
            out.print(spec_tree(spec))
    if bad:
        raise _Exit(EXIT_BAD_INPUT)


def _is_principals_file(file: str) -> bool:
    """Whether FILE is a router's principals file (``[principals.<authid>]``, no supervisor)."""
    path = Path(file)
    if path.suffix.lower() not in (".toml", ".json"):
        return False
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False  # load_tree says what is wrong with it
    return isinstance(data, dict) and "principals" in data and "supervisor" not in data


def _check_principals(file: str, out: Console, err: Console, quiet: bool) -> bool:
    """Validate a principals file as `hedgerow router --principals` would; True if good."""
    try:
        principals = load_principals(file)
        Policy.of(principals)
    except ValueError as exc:
        message = str(exc) if str(exc).startswith(file) else f"{file}: {exc}"
        err.print(f"[red]error[/red] {escape(message)}", markup=True, soft_wrap=True)
        return False
    if not quiet:
        names = ", ".join(p.authid for p in principals)
        out.print(f"[green]ok[/green] {escape(file)} (principals: {escape(names)})", markup=True)
    return True


@cli.command(epilog="Example: hedgerow run examples/pipeline/tree.yaml --for 10 --json")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--for",
    "duration",
    type=Seconds(),
    metavar="SECONDS",
    help="Stop the tree gracefully after this many seconds (default: run until it ends).",
)
@click.option("--json", "as_json", is_flag=True, help="Write events as JSON lines on stdout.")
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
    if _as_program and threading.current_thread() is threading.main_thread():
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


class _Signals(SignalHandler):
    """The bus's signal handling, remembering the last signal for the log line
    that says why the tree stops."""

    def __init__(self, bus: Bus, on_repeat: Callable[[int], None]) -> None:
        super().__init__(bus, on_repeat)
        self.last: str | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.last = signal.Signals(signum).name
        super()._handle(signum, frame)


class _Wakeup:
    """Wakes the main thread: set from any thread or signal handler, waited on
    by the main thread, also from a signal handler that interrupted its wait.

    A pipe, not a `threading.Event`: the bus's stop listener often runs in a
    signal handler and waits too, and an Event's lock, held by the frame the
    handler interrupted, would deadlock it.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._lock = threading.Lock()  # only threads take it (and close): never a handler
        self._closed = False

    def set(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._poke()  # perhaps in a signal handler: no lock
            return
        with self._lock:
            if not self._closed:
                self._poke()

    def _poke(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake-up is pending
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> None:
        poll = select.poll()  # one per call: a poll object refuses a nested poll()
        poll.register(self._read, select.POLLIN)
        poll.poll(timeout * 1000)
        with contextlib.suppress(BlockingIOError):
            os.read(self._read, 4096)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            os.close(self._read)
            os.close(self._write)


@dataclass(frozen=True)
class _Note:
    """Something to report in order with the tree's events: a reload, or a
    failed one. `spec`, if given, is the tree the view shows from now on (a
    new tree's; or, with `kept`, the same tree's, its unchanged children as
    they were)."""

    kind: str
    fields: dict[str, Any]
    spec: SupervisorSpec | None = None
    kept: bool = False


class _Runner:
    """Runs one tree for `hedgerow run` on the process bus (`hedgerow.node.Bus`).

    The bus's ``start`` listener starts the tree, its ``stop`` listener stops it
    gracefully, its ``graceful`` listener (SIGHUP, SIGUSR1) reloads the tree
    file (changing what changed: `hedgerow.update_tree`), and the main thread
    publishes ``main`` whenever events arrive (and every `TICK`): it shows
    them and decides when to stop or reload.
    `SignalHandler` maps SIGTERM and SIGINT to the bus's ``exit``; a second one
    while the tree stops cuts the stop short (status 130).

    All but the tree and the thread that starts it runs in the main thread,
    where Python also runs signal handlers, between any two bytecodes; the
    handlers call the bus's ``exit`` right there, so the stop listener often
    runs inside a handler. Hence it shows events only if the handler did not
    interrupt a rendering (`rendering`), it waits on a pipe, not on a lock
    (`_Wakeup`), and the graceful listener only notes the reload, which the
    main thread begins at its next turn. The start listener returns at once,
    the tree starting in a thread of its own: the bus is STARTED meanwhile, so
    a signal during a long start (worker processes) takes the usual way, and
    the view shows the start as it goes. A reload reads the file and changes
    the tree in a thread of its own too (a module it names may be slow to
    import); only a new tree (a changed root) is stopped and started by the
    main thread.
    """

    def __init__(
        self,
        file: str,
        spec: SupervisorSpec,
        *,
        duration: float | None,
        as_json: bool,
        view: tuple[LiveConsole, logging.Handler] | None,
    ) -> None:
        self.file = file
        self.spec = spec
        self.management: Management | None = None
        """Where to serve the node's management API (the file's [management] table)."""
        self.service: ManagementService | None = None
        self.duration = duration
        self.as_json = as_json
        self.view = view
        """The live view's console, and the log handler that prints on it; or None."""
        self.live = view is not None
        self.started = time.monotonic()
        self.deadline = None if duration is None else self.started + duration
        self.stream = EventStream()
        self.inbox: queue.SimpleQueue[Event | _Note] = queue.SimpleQueue()
        self.wakeup = _Wakeup()
        self.bus = Bus()
        self.signals = _Signals(self.bus, on_repeat=self._on_repeat)
        self.state = TreeState(spec, spec.name or "root")
        self.lines = LineView(sys.stdout, self.started)
        self.json = JsonView(sys.stdout, self.started)
        self.show: Callable[[Event, float], None] = (self.json if as_json else self.lines).show
        self.tick: Callable[[], None] = lambda: None
        self.tree: Tree | None = None
        self.starter: threading.Thread | None = None
        self.cancel = threading.Event()
        """Set by a stop: cancels the tree's start if it is still under way."""
        self.start_error: Exception | None = None
        self.previous: TreeFile | None = None
        """What ran before a reload, until the reloaded tree has started."""
        self.reload_requested = False
        self.replacement: tuple[TreeFile, UpdatePlan] | None = None
        """A reload's new tree, read in the reload's thread, for the main thread to start."""
        self.stop_reason: str | None = None
        self.cut = False
        self.rendering = False

    # -- the main thread --------------------------------------------------------

    def run(self) -> int:
        bus = self.bus
        bus.subscribe("start", self._on_start)
        bus.subscribe("stop", self._on_stop)
        bus.subscribe("graceful", self._on_graceful)
        bus.subscribe("main", self._on_main)
        unsubscribe = self.stream.subscribe(self._on_event)
        self.signals.subscribe()  # not off the main thread (click's test runner)
        # Keep the handlers past the bus's exit, until the summary is out: a
        # signal once the tree has stopped is a repeat then, not a kill.
        bus.unsubscribe("exit", self.signals.unsubscribe)
        cut = False
        try:
            with self._view():
                try:
                    self._serve()
                except _CutShort:
                    self._render()
                    cut = True
            if cut:
                self._cut_short()
            return self._outcome()
        finally:
            self.signals.unsubscribe()
            unsubscribe()
            self.wakeup.close()

    def _serve(self) -> None:
        bus = self.bus
        bus.start()
        try:
            while True:
                bus.publish("main")
                if bus.state is BusState.EXITING:
                    break
                self.wakeup.wait(self._timeout())
        except Exception:
            bus.exit()  # a bug here: stop the tree all the same
            raise
        self._stop_tree("exit")  # a tree that a reload started as the bus exited
        self._render()

    def _timeout(self) -> float:
        if self.deadline is None:
            return TICK
        return min(TICK, max(self.deadline - time.monotonic(), 0.0))

    @contextlib.contextmanager
    def _view(self) -> Iterator[None]:
        """The live view: the tree at the bottom of the console, the log lines
        (the tree's events among them, see `_configure_logging`) and whatever
        is written on stderr above it."""
        if self.view is None:
            yield
            return
        console, shown = self.view
        footer = "Ctrl-C: stop gracefully; twice: at once. SIGHUP: reload the file"
        live = Live(
            console=console.console,
            auto_refresh=False,  # the main thread redraws, under the console's lock
            transient=False,
            redirect_stdout=False,  # console.stdout() does, under the lock
            redirect_stderr=False,  # stderr_through does, for worker processes too
        )

        def tick() -> None:
            console.redraw(live, self.state.render(time.monotonic(), footer))

        with stderr_through(console, shown), console.stdout():
            with console.lock:
                live.start()
            try:
                self.show, self.tick = lambda _event, _now: None, tick
                tick()
                yield
            finally:
                with console.lock:
                    console.redraw(live, self.state.render(time.monotonic()))
                    live.stop()

    def _render(self) -> None:
        """Show what arrived since the last time. Skipped in a signal handler
        that interrupted a rendering (it goes on when the handler returns)."""
        if self.rendering:
            return
        self.rendering = True
        try:
            while True:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                now = time.monotonic()
                if isinstance(item, _Note):
                    self._report(item, now)
                else:
                    self.state.apply(item, now)
                    self.show(item, now)
            self._poll_inboxes()
            self.tick()
        finally:
            self.rendering = False

    def _poll_inboxes(self) -> None:
        """Read the children's inbox depths for the live view; with --json, a
        record ``{"kind": "inbox", "path", "depth", "max_inbox", "overflow",
        "dropped"}`` for each bounded inbox that changed since the last one."""
        tree = self.tree
        if tree is None:
            return
        changed = self.state.poll_inboxes(tree.names.get)
        if self.as_json:
            now = time.monotonic()
            for path, stats in changed:
                self.json.note("inbox", now, path=path, **stats)

    def _report(self, note: _Note, now: float) -> None:
        if note.spec is not None and note.kept:
            self.state = self.state.reshaped(note.spec)
        elif note.spec is not None:
            self.state = TreeState(note.spec, note.spec.name or "root")
        fields = dict(note.fields)
        if note.kind == "reload":
            summary = fields.pop("summary")
            text = f"reloaded {fields['file']} (tree {fields['tree']!r}): {summary}"
            logger.info("%s", text)
        else:
            text = f"reload failed: {fields['error']}"
            logger.error("%s", text)
        if self.as_json:
            self.json.note(note.kind, now, **fields)
        elif not self.live:  # the live view has the log line
            self.lines.note(text, now)

    def _pump_until(self, done: Callable[[], bool]) -> None:
        """Show events until `done()`; raise `_CutShort` after a second signal."""
        while True:
            self._render()
            if self.cut:
                raise _CutShort
            if done():
                return
            self.wakeup.wait(TICK)

    # -- bus listeners ------------------------------------------------------------

    def _on_start(self) -> None:
        """The ``start`` channel: begin starting the tree (see `_begin`)."""
        self._begin(self.spec)

    def _on_stop(self) -> None:
        """The ``stop`` channel: stop the tree gracefully, showing its events.

        Runs in the thread that stops the bus: the main thread, often in a
        signal handler. Raises `_CutShort` (which the bus lets through, as it
        does KeyboardInterrupt) when a second signal cuts the stop short.
        """
        if self.stop_reason is not None:  # nobody pressed Ctrl-C: the first one cuts short
            self._stop_tree(self.stop_reason, "; Ctrl-C to stop at once")
        else:
            self._stop_tree(self.signals.last or "stop", "; Ctrl-C again to stop at once")

    def _on_graceful(self) -> None:
        """The ``graceful`` channel (SIGHUP, SIGUSR1): reload the tree file at
        the main thread's next turn (this may run in a signal handler that
        interrupted the view, so it only takes note)."""
        self.reload_requested = True
        self.wakeup.set()

    def _on_main(self) -> None:
        """The ``main`` channel: show the events, then stop or reload if it is time."""
        self._render()
        starter = self.starter
        if starter is not None and starter.is_alive():
            return
        if self.start_error is not None:
            self._start_failed()
            return
        self.previous = None  # the tree has started
        tree = self.tree
        if tree is not None and tree.done:  # it ended by itself
            self.bus.exit()
        elif self.deadline is not None and time.monotonic() >= self.deadline:
            # Before a reload: SIGHUPs that keep coming must not hold off --for.
            self.stop_reason = f"time is up: --for {self.duration:g} s"
            self.bus.exit()
        elif self.replacement is not None:
            replacement, self.replacement = self.replacement, None
            self._replace(*replacement)
        elif self.reload_requested:
            self.reload_requested = False
            self._reload()

    def _on_repeat(self, _signum: int) -> None:
        """A second SIGINT or SIGTERM while stopping: the stop's wait gives up."""
        self.cut = True
        self.wakeup.set()

    def _on_event(self, event: Event) -> None:
        # Called in the supervisors' threads: hand over, render in the main thread.
        self.inbox.put(event)
        self.wakeup.set()

    # -- the tree -------------------------------------------------------------------

    def _begin(self, spec: SupervisorSpec) -> None:
        """Start a tree for `spec` in a thread of its own (its children may take a
        while: worker processes), so that the main thread shows its events and
        handles signals meanwhile; `_on_main` sees how it went."""
        self.tree = None
        self.start_error = None
        cancel = self.cancel = threading.Event()

        def start() -> None:
            try:
                self.tree = Tree(spec, name=spec.name or "root", events=self.stream, cancel=cancel)
                self._serve_management(self.tree)
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                self.start_error = exc
            finally:
                self.wakeup.set()

        self.starter = threading.Thread(target=start, name="hedgerow-run-start", daemon=True)
        self.starter.start()

    def _serve_management(self, tree: Tree) -> None:
        """Serve the node's management API for `tree`, if the file asks for it."""
        if self.management is None:
            return
        name = tree.name
        settings = self.management.with_prefix(node_prefix(name))
        self.service = ManagementService(settings, tree_procedures(tree), name=f"node {name}")
        self.service.start()
        logger.info(
            "management API at %s.* (roles: %s)", settings.prefix, ", ".join(settings.roles)
        )

    def _stop_tree(self, why: str, hint: str = "") -> None:
        """Stop the tree gracefully (once it has started) and wait, showing events."""
        starter = self.starter
        if starter is not None:
            self.cancel.set()  # a start under way stops in bounded time (StartCancelled)
            self._pump_until(lambda: not starter.is_alive())
        service, self.service = self.service, None
        if service is not None:
            service.stop()
        tree = self.tree
        if tree is None or tree.done:
            return
        logger.info("stopping the tree (%s)%s", why, hint)
        tree.request_stop()
        self._pump_until(lambda: tree.done)

    def _reload(self) -> None:
        """Re-read the tree file and change what changed, in a thread of its own
        (as `_begin` starts a tree): a module the file names may take its time
        to import, and the main thread shows the events and handles signals
        meanwhile; a SIGHUP then reloads again once this one is done, and a
        SIGTERM stops the tree once it is done (a second one at once)."""
        tree = self.tree
        assert tree is not None  # _on_main reloads a tree that has started

        def reload() -> None:
            try:
                self._prepare(tree)
            finally:
                self.wakeup.set()

        self.starter = threading.Thread(target=reload, name="hedgerow-run-reload", daemon=True)
        self.starter.start()

    def _prepare(self, tree: Tree) -> None:
        """Keep the tree if the file is bad; else change what changed (`_update`),
        or, if the root supervisor itself changed, leave `replacement` for the
        main thread to stop the tree and start the new one (modules already
        imported are not re-imported)."""
        try:
            tree_file = read_tree(self.file)
            plan = plan_update(self.spec, tree_file.spec, tree.name)
        except Exception as exc:  # noqa: BLE001 - a user's module or object may raise anything
            error = str(exc) if isinstance(exc, ConfigError) else describe(exc)
            self.inbox.put(_Note("reload_failed", {"file": self.file, "error": error}))
            return
        logger.info("reloading %s: %s", self.file, plan.summary())
        if not plan.replaces_tree:
            self._update(tree, tree_file, plan)
            return
        name = tree_file.spec.name or "root"
        for child in tree_file.spec.children:  # a mistake found now leaves the tree running
            problem = arguments_problem(child, f"{name}/{child.id}")
            if problem is not None:
                error = f"{problem}; nothing running was touched"
                self.inbox.put(_Note("reload_failed", {"file": self.file, "error": error}))
                return
        self.replacement = (tree_file, plan)

    def _replace(self, tree_file: TreeFile, plan: UpdatePlan) -> None:
        """Stop the tree and start the one `tree_file` describes (in the main thread)."""
        self._stop_tree(f"reloading {self.file}")
        if self.bus.state is not BusState.STARTED:  # a signal stopped the node meanwhile
            return
        self.previous = TreeFile(self.spec, self.management, self.file)
        self.spec, self.management = tree_file.spec, tree_file.management
        fields = self._reloaded(plan)
        self.inbox.put(_Note("reload", fields, self.spec))
        self._begin(self.spec)

    def _reloaded(self, plan: UpdatePlan) -> dict[str, Any]:
        """The fields of a reload's note, once `spec` is the file's."""
        return {
            "file": self.file,
            "tree": self.spec.name or "root",
            "changes": [change.as_data() for change in plan.changes],
            "summary": plan.summary(),
        }

    def _update(self, tree: Tree, tree_file: TreeFile, plan: UpdatePlan) -> None:
        """Apply `plan` to the running tree (in the reload's thread)."""
        try:
            applied = apply_plan(tree, plan, tree_file.spec)
        except Exception as exc:  # noqa: BLE001 - reported: the tree runs on
            error = str(exc) if isinstance(exc, UpdateFailed) else describe(exc)
            changes = [change.as_data() for change in plan.changes]
            fields = {"file": self.file, "error": error, "changes": changes}
            self.inbox.put(_Note("reload_failed", fields))
            return
        self.spec = tree_file.spec
        if tree_file.management != self.management:
            self._serve_again(tree, tree_file.management)
        self.inbox.put(_Note("reload", self._reloaded(applied), self.spec, kept=True))

    def _serve_again(self, tree: Tree, management: Management | None) -> None:
        """The file's [management] table changed: serve the API as it now says."""
        service, self.service = self.service, None
        if service is not None:
            service.stop()
        self.management = management
        try:
            self._serve_management(tree)
        except Exception:
            logger.exception("the management API could not be served again")

    def _start_failed(self) -> None:
        """The tree did not start: at first, the command fails; after a reload,
        the tree that ran before starts again."""
        assert self.start_error is not None
        if isinstance(self.start_error, StartCancelled):
            return  # a stop cancelled it: the stop ends the node
        message = _start_failure(self.start_error)
        previous = self.previous
        if previous is None:
            self.bus.exit()
            return
        self.previous = None
        self.spec, self.management = previous.spec, previous.management
        error = f"{message}; starting the previous tree again"
        self.inbox.put(_Note("reload_failed", {"file": self.file, "error": error}, self.spec))
        self._begin(self.spec)

    # -- the end --------------------------------------------------------------------

    def _outcome(self) -> int:
        tree = self.tree
        if tree is None:
            if isinstance(self.start_error, StartCancelled):
                self._summary(EXIT_OK, str(self.start_error))
                return EXIT_OK
            error = self.start_error or RuntimeError("the tree never started")
            self._summary(EXIT_FAILED, _start_failure(error))
            return EXIT_FAILED
        status = EXIT_FAILED if tree.gave_up else EXIT_OK
        if status == EXIT_OK and self.bus.exit_status:
            status = self.bus.exit_status  # a stop or exit listener failed (logged)
        reason = describe(tree.reason if tree.reason is not None else "unknown")
        self._summary(status, f"tree {tree.name!r} ended: {reason}")
        return status

    def _cut_short(self) -> None:
        """The second signal: leave now. Every actor is a thread of this process,
        so nothing outlives it; user `on_stop` hooks not yet run are skipped."""
        name = self.state.name
        self._summary(EXIT_INTERRUPTED, f"tree {name!r} stopped at once (second signal)")
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


def _start_failure(error: BaseException) -> str:
    """Why the tree did not start, naming the child (the innermost, for a nested supervisor's)."""
    if not isinstance(error, StartError):
        return f"the tree did not start: {describe(error)}"
    while isinstance(error.cause, StartError):
        error = error.cause
    return f"the tree did not start: child {error.child_id!r} failed to start: " + describe(
        error.cause
    )


cli.add_command(chaos)
cli.add_command(router_command)
cli.add_command(status)


_as_program = False
"""True in `main`: the process is the `hedgerow` command, not a program that calls it."""


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point (also ``python -m hedgerow``)."""
    global _as_program  # noqa: PLW0603 - set once, by the entry point
    _as_program = True
    cli.main(args=argv, prog_name="hedgerow")
