"""`hedgerow run`: the tree on the process bus, its view, signals and reloads."""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from hedgerow._events import EventStream
from hedgerow._exceptions import ConfigError, StartCancelled, StartError, UpdateFailed
from hedgerow.actors._reason import describe
from hedgerow.cli._main import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, TICK, _CutShort
from hedgerow.cli._run_display import Note, RunDisplay
from hedgerow.cli._wakeup import _Signals, _Wakeup
from hedgerow.components._management_service import ManagementService, tree_procedures
from hedgerow.node import Bus, BusState
from hedgerow.node._treeload import read_tree
from hedgerow.supervision._management import Management, node_prefix
from hedgerow.supervision._plan import UpdatePlan, plan_update
from hedgerow.supervision._tree import Tree
from hedgerow.supervision._treefile import TreeFile
from hedgerow.supervision._update import apply_plan, arguments_problem

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow._events import Event
    from hedgerow.cli._live_log import LiveConsole
    from hedgerow.supervision._spec import SupervisorSpec


logger = logging.getLogger("hedgerow.cli")

START_THREAD = "hedgerow-run-start"
"""The name of the thread that starts the tree (a reload's has another)."""


class _Runner:
    """Runs one tree for `hedgerow run` on the process bus (`hedgerow.node.Bus`).

    The bus's ``start`` listener starts the tree, its ``stop`` listener stops it
    gracefully, its ``graceful`` listener (SIGHUP, SIGUSR1) reloads the tree
    file (changing what changed: `hedgerow.update_tree`), and the main thread
    publishes ``main`` whenever events arrive (and every `TICK`): it shows
    them and decides when to stop or reload.
    `SignalHandler` maps SIGTERM and SIGINT to an exit of the bus that the
    main thread begins at its next turn; a second one while the tree stops
    cuts the stop short (status 130).

    All but the tree and the thread that starts it runs in the main thread,
    where Python also runs signal handlers, between any two bytecodes. An
    exit signal's handler only notes the exit (the frame it interrupted may
    hold a lock that the tree's stop needs: an inbox's, read for its depth);
    a bus stopped otherwise may still have its stop listener interrupted by
    a second signal. Hence it shows events only if the handler did not
    interrupt a rendering (`RunDisplay.rendering`), it waits on a pipe, not on a lock
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
        self.started = time.monotonic()
        self.deadline = None if duration is None else self.started + duration
        self.stream = EventStream()
        self.inbox: queue.SimpleQueue[Event | Note] = queue.SimpleQueue()
        self.wakeup = _Wakeup()
        self.bus = Bus()
        self.signals = _Signals(self.bus, on_repeat=self._on_repeat, on_exit=self._on_exit_signal)
        self.exit_requested = False
        """A SIGTERM or SIGINT came: the main thread exits the bus at its next turn."""
        self.display = RunDisplay(spec, started=self.started, as_json=as_json, view=view)
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
            with self.display.live_view():
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

    def _render(self) -> None:
        """Show what arrived since the last time (see `RunDisplay.render`)."""
        self.display.render(self.inbox, self.tree)

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
        if self.exit_requested:  # before waiting on a start: the stop cancels it
            self.bus.exit()
            return
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

    def _on_exit_signal(self) -> None:
        """SIGTERM or SIGINT (in a signal handler): note it, for the main thread to
        exit the bus at its next turn. Not the stop itself, right there: the
        handler may have interrupted the main thread holding a lock (an inbox's,
        read for its depth; a log handler's) that the tree's stop needs in
        another thread, and it would wait for that stop for ever."""
        self.exit_requested = True
        self.wakeup.set()

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

        self.starter = threading.Thread(target=start, name=START_THREAD, daemon=True)
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
            if starter.is_alive() and starter.name == START_THREAD:
                logger.info("cancelling the start under way (%s)", why)
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
            self.inbox.put(Note("reload_failed", {"file": self.file, "error": error}))
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
                self.inbox.put(Note("reload_failed", {"file": self.file, "error": error}))
                return
        self.replacement = (tree_file, plan)

    def _replace(self, tree_file: TreeFile, plan: UpdatePlan) -> None:
        """Stop the tree and start the one `tree_file` describes (in the main thread)."""
        self._stop_tree(f"reloading {self.file}")
        if self.bus.state is not BusState.STARTED or self.exit_requested:  # a signal came meanwhile
            return
        self.previous = TreeFile(self.spec, self.management, self.file)
        self.spec, self.management = tree_file.spec, tree_file.management
        fields = self._reloaded(plan)
        self.inbox.put(Note("reload", fields, self.spec))
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
            self.inbox.put(Note("reload_failed", fields))
            return
        self.spec = tree_file.spec
        if tree_file.management != self.management:
            self._serve_again(tree, tree_file.management)
        self.inbox.put(Note("reload", self._reloaded(applied), self.spec, kept=True))

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
        self.inbox.put(Note("reload_failed", {"file": self.file, "error": error}, self.spec))
        self._begin(self.spec)

    # -- the end --------------------------------------------------------------------

    def _outcome(self) -> int:
        tree = self.tree
        if tree is None:
            if isinstance(self.start_error, StartCancelled):
                self.display.summary(EXIT_OK, str(self.start_error))
                return EXIT_OK
            error = self.start_error or RuntimeError("the tree never started")
            self.display.summary(EXIT_FAILED, _start_failure(error))
            return EXIT_FAILED
        status = EXIT_FAILED if tree.gave_up else EXIT_OK
        if status == EXIT_OK and self.bus.exit_status:
            status = self.bus.exit_status  # a stop or exit listener failed (logged)
        reason = describe(tree.reason if tree.reason is not None else "unknown")
        self.display.summary(status, f"tree {tree.name!r} ended: {reason}")
        return status

    def _cut_short(self) -> None:
        """The second signal: leave now. Every actor is a thread of this process,
        so nothing outlives it; user `on_stop` hooks not yet run are skipped."""
        name = self.display.state.name
        self.display.summary(EXIT_INTERRUPTED, f"tree {name!r} stopped at once (second signal)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)


def _start_failure(error: BaseException) -> str:
    """Why the tree did not start, naming the child (the innermost, for a nested supervisor's)."""
    if not isinstance(error, StartError):
        return f"the tree did not start: {describe(error)}"
    while isinstance(error.cause, StartError):
        error = error.cause
    return f"the tree did not start: child {error.child_id!r} failed to start: " + describe(
        error.cause
    )
