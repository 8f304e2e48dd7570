"""`plan_update`: what a reload changes, child by child (supervisord's ``update``).

The running tree's spec and the file's new spec are compared child by child,
by id, under each supervisor:

- a child in both whose spec is equal is kept running, with its state;
- a child only in the running spec is removed (stopped, then forgotten);
- a child only in the new spec is added (started);
- a child in both whose spec differs is changed (restarted with the new spec,
  keeping its stable ref, so that messages sent meanwhile wait for it);
- a nested supervisor whose own settings are equal (strategy, intensity,
  policy, backoff defaults, and its child-spec fields: restart, shutdown ...)
  is kept, and its children are compared in turn; one whose settings differ
  is changed: it restarts with its whole subtree;
- a kept child whose place among its kept siblings changed is moved: not
  restarted, but it starts and stops in its new place from then on.

A child whose id changed is one child removed and another added. A
``simple_one_for_one`` supervisor's template is one of its settings (its
children are started at run time, not named by the file). A worker process is
one child: any change in its table, its components included, restarts it.
A changed root supervisor (its name or its settings) means a new tree.

Plans are plain data, computed from specs alone; `hedgerow.supervision._update`
applies them to a running tree.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

from hedgerow.supervision._spec import ChildSpec, Strategy, SupervisorSpec

__all__ = [
    "ChangeKind",
    "ChildChange",
    "SupervisorUpdate",
    "UpdatePlan",
    "plan_update",
    "same_apart_from_children",
    "same_settings",
]


class ChangeKind(enum.Enum):
    """What a reload does to one child."""

    ADDED = "added"
    """Only in the new spec: started."""
    REMOVED = "removed"
    """Only in the running spec: stopped, then forgotten."""
    CHANGED = "changed"
    """In both, with another spec: restarted with the new one (a supervisor, with its subtree)."""
    MOVED = "moved"
    """In both, equal, in another place among its siblings: kept running."""


@dataclass(frozen=True)
class ChildChange:
    """One child's change: its path (``root/pipeline/parser``), its specs, and for a
    changed child the fields that differ (``kwargs``, ``supervisor.strategy``)."""

    path: str
    kind: ChangeKind
    old: ChildSpec | None = None
    new: ChildSpec | None = None
    fields: tuple[str, ...] = ()

    @property
    def parent(self) -> str:
        """The path of the supervisor the child belongs to."""
        return self.path.rpartition("/")[0]

    @property
    def id(self) -> str:
        return self.path.rpartition("/")[2]

    def as_data(self) -> dict[str, Any]:
        """``{"path", "change"}``, and ``"fields"`` for a changed child: for ``--json``."""
        data: dict[str, Any] = {"path": self.path, "change": self.kind.value}
        if self.fields:
            data["fields"] = list(self.fields)
        return data

    def __str__(self) -> str:
        fields = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.path} {self.kind.value}{fields}"


@dataclass(frozen=True)
class SupervisorUpdate:
    """A supervisor kept running: its spec before and after the reload."""

    path: str
    old: SupervisorSpec
    new: SupervisorSpec


@dataclass(frozen=True)
class UpdatePlan:
    """Every change a reload makes, in the tree's start order (depth first).

    `root_fields` is not empty when the root supervisor itself changed: then
    the whole tree is replaced, and `changes` holds only the root's change.
    `supervisors` are the kept supervisors whose spec changes (the root
    first), which take their new spec once the changes are made.
    """

    name: str
    changes: tuple[ChildChange, ...] = ()
    supervisors: tuple[SupervisorUpdate, ...] = ()
    root_fields: tuple[str, ...] = ()

    @property
    def replaces_tree(self) -> bool:
        return bool(self.root_fields)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.supervisors

    def of(self, *kinds: ChangeKind) -> list[ChildChange]:
        """The changes of these kinds, in start order."""
        return [c for c in self.changes if c.kind in kinds]

    def summary(self) -> str:
        """One line: every change, or ``nothing changed``."""
        if not self.changes:
            return "nothing changed"
        return ", ".join(str(change) for change in self.changes)


def plan_update(old: SupervisorSpec, new: SupervisorSpec, name: str) -> UpdatePlan:
    """The changes that turn the tree running `old` (named `name`) into `new`."""
    fields = _settings_fields(old, new)
    if (old.name or name) != (new.name or name):  # the first part of every path
        fields = ("name", *fields)
    if fields:
        root = ChildChange(name, ChangeKind.CHANGED, fields=fields)
        return UpdatePlan(name, (root,), root_fields=fields)
    changes: list[ChildChange] = []
    supervisors: list[SupervisorUpdate] = []
    _compare(name, old, new, changes, supervisors)
    return UpdatePlan(name, tuple(changes), tuple(supervisors))


def same_settings(old: SupervisorSpec, new: SupervisorSpec) -> bool:
    """Whether two supervisor specs differ at most in their (non-template) children."""
    return not _settings_fields(old, new)


def same_apart_from_children(old: ChildSpec, new: ChildSpec) -> bool:
    """Whether two child specs are equal, or are the same nested supervisor whose
    children may differ (the nested supervisor takes those itself)."""
    return not _child_fields(old, new) and (
        not isinstance(old.start, SupervisorSpec) or old == new or _kept_supervisor(old, new)
    )


def _compare(
    path: str,
    old: SupervisorSpec,
    new: SupervisorSpec,
    changes: list[ChildChange],
    supervisors: list[SupervisorUpdate],
) -> None:
    if old != new:
        supervisors.append(SupervisorUpdate(path, old, new))
    before = {child.id: child for child in old.children}
    after = {child.id: child for child in new.children}
    removed = [c for c in old.children if c.id not in after]
    changes.extend(ChildChange(f"{path}/{c.id}", ChangeKind.REMOVED, old=c) for c in removed)
    kept_before = {cid: at for at, cid in enumerate(c.id for c in old.children if c.id in after)}
    kept_after = {cid: at for at, cid in enumerate(c.id for c in new.children if c.id in before)}
    for child in new.children:
        child_path = f"{path}/{child.id}"
        previous = before.get(child.id)
        if previous is None:
            changes.append(ChildChange(child_path, ChangeKind.ADDED, new=child))
            continue
        fields = _child_fields(previous, child)
        if fields:
            changes.append(ChildChange(child_path, ChangeKind.CHANGED, previous, child, fields))
            continue
        if kept_before[child.id] != kept_after[child.id]:
            changes.append(ChildChange(child_path, ChangeKind.MOVED, previous, child))
        if isinstance(previous.start, SupervisorSpec) and isinstance(child.start, SupervisorSpec):
            _compare(child_path, previous.start, child.start, changes, supervisors)


def _kept_supervisor(old: ChildSpec, new: ChildSpec) -> bool:
    return (
        isinstance(old.start, SupervisorSpec)
        and isinstance(new.start, SupervisorSpec)
        and same_settings(old.start, new.start)
    )


def _child_fields(old: ChildSpec, new: ChildSpec) -> tuple[str, ...]:
    """The fields in which two child specs differ; a nested supervisor's children
    are not among them (they are compared one by one), its settings are."""
    differ = [
        f.name
        for f in dataclasses.fields(ChildSpec)
        if f.name not in ("id", "start") and getattr(old, f.name) != getattr(new, f.name)
    ]
    if old.start == new.start:
        return tuple(differ)
    if isinstance(old.start, SupervisorSpec) and isinstance(new.start, SupervisorSpec):
        differ += [f"supervisor.{name}" for name in _settings_fields(old.start, new.start)]
    else:
        differ.append(_start_field(old) if _start_field(old) == _start_field(new) else "start")
    return tuple(differ)


def _start_field(child: ChildSpec) -> str:
    """How the file names a child's start: ``supervisor``, ``worker`` or ``start``."""
    if isinstance(child.start, SupervisorSpec):
        return "supervisor"
    return "worker" if hasattr(child.start, "container") else "start"


def _settings_fields(old: SupervisorSpec, new: SupervisorSpec) -> tuple[str, ...]:
    """The settings in which two supervisor specs differ (not the name: it is the
    child's id, or the tree's; not the children, unless one is a template)."""
    differ = [
        f.name
        for f in dataclasses.fields(SupervisorSpec)
        if f.name not in ("children", "name") and getattr(old, f.name) != getattr(new, f.name)
    ]
    template = Strategy.SIMPLE_ONE_FOR_ONE
    if (old.strategy is template or new.strategy is template) and old.children != new.children:
        differ.append("children")
    return tuple(differ)
