"""What `hedgerow run` shows: the tree's events and reload notes, as lines, JSON
records or the live view; the children's inbox depths; the closing summary."""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.live import Live

from hedgerow.cli._live_log import LiveConsole, stderr_through
from hedgerow.cli._main import EXIT_OK
from hedgerow.cli._view import JsonView, LineView, TreeState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from hedgerow._events import Event
    from hedgerow.supervision._spec import SupervisorSpec
    from hedgerow.supervision._tree import Tree

__all__ = ["Note", "RunDisplay"]

logger = logging.getLogger("hedgerow.cli")


@dataclass(frozen=True)
class Note:
    """Something to report in order with the tree's events: a reload, or a
    failed one. `spec`, if given, is the tree the view shows from now on (a
    new tree's; or, with `kept`, the same tree's, its unchanged children as
    they were)."""

    kind: str
    fields: dict[str, Any]
    spec: SupervisorSpec | None = None
    kept: bool = False


class RunDisplay:
    """How `hedgerow run` shows a tree (`hedgerow.cli._runner._Runner` hands it what to
    show, in the main thread): line by line, as JSON records (`as_json`), or
    in the live view (`view`: its console, and the log handler that prints on it)."""

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        started: float,
        as_json: bool,
        view: tuple[LiveConsole, logging.Handler] | None,
    ) -> None:
        self.as_json = as_json
        self.view = view
        """The live view's console, and the log handler that prints on it; or None."""
        self.live = view is not None
        self.state = TreeState(spec, spec.name or "root")
        self.lines = LineView(sys.stdout, started)
        self.json = JsonView(sys.stdout, started)
        self.show: Callable[[Event, float], None] = (self.json if as_json else self.lines).show
        self.tick: Callable[[], None] = lambda: None
        self.rendering = False

    @contextlib.contextmanager
    def live_view(self) -> Iterator[None]:
        """The live view: the tree at the bottom of the console, the log lines
        (the tree's events among them, see `_configure_logging`) and whatever
        is written on stderr above it. With ``--json``, no view, and stdout is
        the records' alone: the tree's prints go to stderr meanwhile."""
        if self.view is None:
            if not self.as_json:
                yield
                return
            # One record per line on stdout, for machines: what the tree's code
            # prints goes to stderr (a print from another thread could otherwise
            # land between a record's text and its newline, or glue onto one).
            with contextlib.redirect_stdout(sys.stderr):
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

    def render(self, inbox: queue.SimpleQueue[Event | Note], tree: Tree | None) -> None:
        """Show what arrived since the last time. Skipped in a signal handler
        that interrupted a rendering (it goes on when the handler returns)."""
        if self.rendering:
            return
        self.rendering = True
        try:
            while True:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                now = time.monotonic()
                if isinstance(item, Note):
                    self._report(item, now)
                else:
                    self.state.apply(item, now)
                    self.show(item, now)
            self._poll_inboxes(tree)
            self.tick()
        finally:
            self.rendering = False

    def _poll_inboxes(self, tree: Tree | None) -> None:
        """Read the children's inbox depths for the live view; with --json, a
        record ``{"kind": "inbox", "path", "depth", "max_inbox", "overflow",
        "dropped"}`` for each bounded inbox that changed since the last one."""
        if tree is None:
            return
        changed = self.state.poll_inboxes(tree.names.get)
        if self.as_json:
            now = time.monotonic()
            for path, stats in changed:
                self.json.note("inbox", now, path=path, **stats)

    def _report(self, note: Note, now: float) -> None:
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

    def summary(self, status: int, message: str) -> None:
        if self.as_json:
            self.json.write({"kind": "exit", "status": status, "message": message})
        if status == EXIT_OK:
            logger.info("%s", message)
        else:
            logger.error("%s", message)
