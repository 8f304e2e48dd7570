"""How the `hedgerow` command shows a tree: its spec, its live state, its events.

Three renderings of one event stream: a live rich tree for a terminal, one
line per event for logs and pipes, and JSON lines for machines. The CLI owns
the terminal; nothing here configures logging.

The spec is drawn by `hedgerow.cli._spec_view`, the events written as lines
or JSON by `hedgerow.cli._event_view`; this module keeps the live state.

The live view shares one rich console with the log lines (`hedgerow.cli._live_log`).

A worker process is a child whose ``start`` has a ``container`` (the
`SupervisorSpec` it hosts in its own process): its hosted children are shown
under it, with paths under the worker's (``root/w1/adder``), and what a child
says about itself in its started event (`Event.info`: a worker's pid, port and
guid) is shown in its row, its line and its JSON record.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from rich.tree import Tree as RichTree

from hedgerow._events import Event, EventKind
from hedgerow._exceptions import InboxFull
from hedgerow.actors._reason import describe
from hedgerow.cli._event_view import JsonView, LineView, describe_info, event_line
from hedgerow.cli._spec_view import hosted_spec, spec_tree
from hedgerow.supervision._spec import SupervisorSpec

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import RenderableType

__all__ = [
    "STATES",
    "JsonView",
    "LineView",
    "NodeState",
    "TreeState",
    "describe_info",
    "event_line",
    "hosted_spec",
    "spec_tree",
]


# -- live state --------------------------------------------------------------

_STATE_STYLES = {
    "running": "green",
    "restarting": "yellow",
    "failed": "red",
    "gave up": "bold red",
    "stopped": "dim",
    "abandoned": "red",
    "starting": "dim",
    "lost": "red",
}

STATES = {
    "starting": "not started yet",
    "running": "up; `up` is the time since its last start",
    "restarting": "failed; its supervisor starts it again after the backoff delay shown",
    "failed": "crashed; its supervisor decides what comes next",
    "gave up": "restart intensity exceeded: its supervisor stopped restarting it",
    "stopped": "ended and not restarted (stopped by its supervisor, or done)",
    "abandoned": "ignored its stop within its shutdown time and was left behind",
    "lost": "its parent (a worker process, a supervisor) ended while it was up: no news since",
}
"""What each state of the live view means: its legend shows the states on screen."""

_SELF_EXPLAINED = frozenset({"running", "stopped", "starting"})

INFO_WIDTH = 12
"""The live view cuts longer values of `Event.info` (a guid) to this many characters."""

_UP = frozenset({"running", "starting", "restarting"})
"""States that end when the node's parent (a supervisor, a worker process) ends."""


@dataclass
class NodeState:
    """What the live view knows of one child (or supervisor) from its events.

    `info` is what its last start said about itself (`Event.info`, a worker
    process's pid, port and guid); ``lost`` is the state of a node whose parent
    ended while it was up (the children of a worker process killed at once).
    """

    path: str
    state: str = "starting"
    restarts: int = 0
    started_at: float | None = None
    last_failure: str | None = None
    last_failure_at: float | None = None
    restart_due: float | None = None
    dead_letters: int = 0
    dropped: int = 0
    """Dead letters of a full inbox (an `InboxFull` reason), counted from the events."""
    inbox: tuple[int, int | None] | None = None
    """Its inbox's depth and bound, when the runner can look (a child of this process)."""
    info: dict[str, Any] | None = None
    children: list[str] = field(default_factory=list)


class TreeState:
    """The tree's live state, folded from its events (the spec gives the shape).

    Children that the spec does not name (``simple_one_for_one`` children, the
    children of a worker process whose spec is not known) are added as their
    first events arrive, under the nearest node the view knows.
    """

    def __init__(self, spec: SupervisorSpec, name: str) -> None:
        self.name = name
        self.nodes: dict[str, NodeState] = {}
        self._add(name, spec, parent=None)
        self._named = frozenset(self.nodes)
        """The paths the spec names (the others were added by their events)."""
        self._polled: dict[str, tuple[int, int]] = {}
        """Per path: (depth, dropped) at the last `poll_inboxes`."""

    def _add(self, path: str, spec: SupervisorSpec | None, parent: str | None) -> None:
        self.nodes[path] = NodeState(path)
        if parent is not None and path not in self.nodes[parent].children:
            self.nodes[parent].children.append(path)
        if spec is not None and spec.strategy.value != "simple_one_for_one":  # type: ignore[union-attr]
            for child in spec.children:
                nested = child.start if isinstance(child.start, SupervisorSpec) else None
                self._add(f"{path}/{child.id}", nested or hosted_spec(child), parent=path)

    def reshaped(self, spec: SupervisorSpec) -> TreeState:
        """The same tree with a new spec (a reload that kept it running): the
        shape is the new spec's, each node it still has keeps its state."""
        state = TreeState(spec, self.name)
        for path, node in list(state.nodes.items()):
            known = self.nodes.get(path)
            if known is None:
                continue
            state.nodes[path] = dataclasses.replace(known, children=node.children)
            for extra in known.children:  # not named by the spec: started at run time
                if extra not in self._named and extra not in state._named:
                    node.children.append(extra)
                    state._adopt(self, extra)
        return state

    def _adopt(self, other: TreeState, path: str) -> None:
        """Take `path` and the nodes under it from `other`."""
        node = other.nodes[path]
        self.nodes[path] = node
        for child in node.children:
            self._adopt(other, child)

    def apply(self, event: Event, now: float) -> None:
        node = self.nodes.get(event.path) or self._add_path(event.path)
        if node is None:  # not in this tree
            return
        handler = _APPLY.get(event.kind)
        if handler is not None:
            handler(node, event, now)
        if node.state not in _UP:
            self._lose_descendants(node)

    def poll_inboxes(self, lookup: Callable[[str], Any]) -> list[tuple[str, dict[str, Any]]]:
        """Read the inbox of each child `lookup(path)` finds (a `ChildRef` of this
        process, else None); the bounded ones whose depth or drops changed since
        the last poll, as ``(path, InboxStatistics.as_dict())``."""
        changed = []
        for path, node in self.nodes.items():
            ref = lookup(path)
            statistics = getattr(ref, "inbox_statistics", None)
            if statistics is None:
                continue
            stats = statistics()
            before = node.inbox
            node.inbox = (stats.depth, stats.max_inbox)
            seen = self._polled.get(path)
            now = (stats.depth, stats.dropped)
            if stats.max_inbox is not None and now != seen and (seen or before or any(now)):
                changed.append((path, stats.as_dict()))
            self._polled[path] = now
        return changed

    def _add_path(self, path: str) -> NodeState | None:
        """Add `path` and any missing ancestors below the nearest known one."""
        parent, _, _ = path.rpartition("/")
        if not parent:
            return None
        if parent not in self.nodes and self._add_path(parent) is None:
            return None
        self._add(path, None, parent)
        return self.nodes[path]

    def _lose_descendants(self, node: NodeState) -> None:
        for path in node.children:
            child = self.nodes[path]
            if child.state in _UP:
                child.state = "lost"
                child.started_at = None
                child.restart_due = None
            self._lose_descendants(child)

    def render(self, now: float, footer: str = "") -> RenderableType:
        """The tree, a legend of the states on it that need one, and `footer`."""
        root = RichTree(self._label(self.nodes[self.name], now))
        self._render_children(root, self.nodes[self.name], now)
        parts: list[RenderableType] = [root]
        shown = {node.state for node in self.nodes.values()} - _SELF_EXPLAINED
        for state in (state for state in STATES if state in shown):
            legend = Text(f"  {state}", style=_STATE_STYLES.get(state, ""))
            legend.append(f": {STATES[state]}", style="dim")
            parts.append(legend)
        if footer:
            parts.append(Text(footer, style="dim"))
        return root if len(parts) == 1 else Group(*parts)

    def _render_children(self, branch: RichTree, node: NodeState, now: float) -> None:
        for path in node.children:
            child = self.nodes[path]
            sub = branch.add(self._label(child, now))
            self._render_children(sub, child, now)

    def _label(self, node: NodeState, now: float) -> Text:
        label = Text(node.path.rsplit("/", 1)[-1], style="bold")
        label.append(f"  {node.state}", style=_STATE_STYLES.get(node.state, ""))
        if node.state == "running" and node.info:
            label.append(f"  {describe_info(node.info, INFO_WIDTH)}", style="cyan")
        if node.state == "running" and node.started_at is not None:
            label.append(f"  up {now - node.started_at:.1f} s")
        if node.state == "restarting" and node.restart_due is not None:
            label.append(f"  in {max(node.restart_due - now, 0.0):.1f} s")
        if node.restarts:
            label.append(f"  restarts {node.restarts}", style="yellow")
        if node.inbox is not None and (node.inbox[0] or node.inbox[1] is not None):
            depth, bound = node.inbox
            full = bound is not None and depth >= bound
            label.append(
                f"  inbox {depth}" + (f"/{bound}" if bound is not None else ""),
                style="yellow" if full else "",
            )
        if node.dead_letters:
            label.append(f"  dead letters {node.dead_letters}", style="yellow")
        if node.dropped:
            label.append(f" (dropped {node.dropped})", style="yellow")
        if node.last_failure is not None and node.last_failure_at is not None:
            ago = now - node.last_failure_at
            label.append(f"  last failure {ago:.1f} s ago: {node.last_failure}", style="red")
        return label


def _started(node: NodeState, event: Event, now: float) -> None:
    node.state = "running"
    node.started_at = now
    node.restart_due = None
    node.info = event.info
    if event.kind is EventKind.RESTARTED:
        node.restarts += 1


def _failed(node: NodeState, event: Event, now: float) -> None:
    node.state = "gave up" if event.kind is EventKind.INTENSITY_EXCEEDED else "failed"
    node.started_at = None
    node.last_failure = describe(event.reason)
    node.last_failure_at = now


def _restart_scheduled(node: NodeState, event: Event, now: float) -> None:
    node.state = "restarting"
    node.restart_due = now + (event.delay or 0.0)


def _ended(node: NodeState, event: Event, _now: float) -> None:
    node.state = "abandoned" if event.kind is EventKind.ABANDONED else "stopped"
    node.started_at = None


def _dead_letter(node: NodeState, event: Event, _now: float) -> None:
    node.dead_letters += 1
    reason = event.reason
    if isinstance(reason, InboxFull) or getattr(reason, "remote_type", None) == "InboxFull":
        node.dropped += 1


_APPLY: dict[EventKind, Callable[[NodeState, Event, float], None]] = {
    EventKind.STARTED: _started,
    EventKind.RESTARTED: _started,
    EventKind.FAILED: _failed,
    EventKind.START_FAILED: _failed,
    EventKind.INTENSITY_EXCEEDED: _failed,
    EventKind.RESTART_SCHEDULED: _restart_scheduled,
    EventKind.STOPPED: _ended,
    EventKind.ABANDONED: _ended,
    EventKind.DEAD_LETTER: _dead_letter,
}
