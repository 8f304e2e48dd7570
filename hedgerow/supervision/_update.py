"""`update_tree`: give a running tree a new spec, changing only what changed.

The plan (`plan_update`) is applied through each supervisor's dynamic-children
API. First the args and kwargs of every added or changed child are bound to
what starts it (`arguments_problem`): one that does not bind refuses the
update before anything is done. Then three steps, so that a mistake shows as
early as it can:

1. added children start, in start order, before anything running is touched:
   one that fails to start stops those started before it, and the update is
   refused with the tree as it was;
2. removed children stop, in reverse start order;
3. changed children restart with their new spec, in start order, each keeping
   its stable ref (`Supervisor.replace_child`).

If a step fails (a changed child's new spec does not start), what was done is
undone in reverse order: changed children restart with their old spec,
removed ones start again, added ones stop; and `UpdateFailed` says why.
Children the plan does not name are never stopped, restarted or started. Once
all went well, removed children are forgotten and each kept supervisor takes
its new spec (`Supervisor.adopt_spec`: the new order of its children).

A kept nested supervisor that is not running (waiting out its backoff delay,
or stopped) has no children to change: it is changed as a whole instead
(restarted with its new spec, as a changed child is), and the plan returned
says so (``root/sub changed (supervisor.children)``).

An added child starts while the children being removed still run: one that
needs what a removed child holds (a renamed child on the same port) fails to
start, and the update is refused; remove the old child in one update and add
the new one in the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import ChildNotFound, StartError, UpdateFailed
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._reason import describe
from hedgerow.actors._tell import runs_the_handler_of
from hedgerow.supervision._ask_chain import AskChains
from hedgerow.supervision._plan import ChangeKind, ChildChange, UpdatePlan, plan_update
from hedgerow.supervision._spec import ChildSpec, Strategy, SupervisorSpec
from hedgerow.supervision._supervisor import ChildState
from hedgerow.supervision._tree import SupervisorHandle, Tree, check_spec
from hedgerow.supervision._waiters import waiting_for

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = [
    "UPDATE_CALL_TIMEOUT",
    "apply_plan",
    "arguments_problem",
    "check_update",
    "update_tree",
    "update_tree_unless_cancelled",
]

UPDATE_CALL_TIMEOUT = 3600.0
"""Seconds one step may take (a child's stop waits for its shutdown, a worker's start
for its process): a bound against a supervisor that never answers, not a deadline."""


def update_tree(tree: Tree, spec: SupervisorSpec) -> UpdatePlan:
    """Give the running `tree` the spec `spec`, changing only what changed; the plan.

    Unchanged children keep running with their state (same incarnation);
    removed ones stop, added ones start, changed ones restart (see the module's
    docstring for the order, and `plan_update` for what counts as a change).
    Raises `UpdateFailed` if the root supervisor itself changed (a new tree is
    needed), or if a step failed (what was done is undone then). Updates of
    one tree run one at a time (a second waits for the first, then starts from
    it); not from a child of the tree. The plan returned is the one applied
    (see the module's docstring for a nested supervisor that is not running).
    From asyncio code, ``await tree.update_tree(spec)`` on the `AsyncioTree`.
    """
    caller = (threading.get_ident(), _current_task())
    plan = update_tree_unless_cancelled(tree, spec, lambda: True, caller)
    assert plan is not None
    return plan


def update_tree_unless_cancelled(
    tree: Tree,
    spec: SupervisorSpec,
    begin: Callable[[], bool],
    caller: tuple[int, object] | None = None,
) -> UpdatePlan | None:
    """`update_tree`, where ``begin()``, called once the updates before this one have
    ended (under the tree's update lock), says whether it is still wanted: if not,
    nothing is done and None is returned (an awaited update cancelled meanwhile).
    `caller` is who waits for it (its thread's id and asyncio task, or None): a
    child's handler waiting for an update that stops that very child is refused."""
    check_update(tree, spec)
    with _lock_of(tree):
        if not begin():
            return None
        if tree.done:
            ended = describe(tree.reason) if tree.reason is not None else "ended"
            msg = f"tree {tree.name!r} has ended ({ended}): nothing running was touched"
            raise UpdateFailed(msg)
        plan = plan_update(tree.spec, spec, tree.name)
        if not plan.replaces_tree:
            _refuse_stopping_the_caller(tree, plan, caller)
        return apply_plan(tree, plan, spec)


def _refuse_stopping_the_caller(
    tree: Tree, plan: UpdatePlan, caller: tuple[int, object] | None
) -> None:
    """`UpdateFailed` if `plan` stops or restarts the child whose handler waits for
    it (`caller`), itself or through a task it waits for (`waiting_for`), or
    through a chain of asks (`AskChains`: the child waits for an ask that the
    caller's actor handles, or holds queued, maybe through other actors' asks):
    that child's stop would wait for its handler, which waits for the update,
    until the child's shutdown timeout had it killed."""
    stopped = [c.path for c in plan.changes if c.kind is not ChangeKind.ADDED]
    if caller is None or not stopped:
        return
    thread, task = caller
    waiters = waiting_for(task)  # (the tasks that wait for the caller's, if any)

    def runs_caller(actor: Any) -> bool:
        return runs_the_handler_of(actor, thread, task) or any(
            runs_the_handler_of(actor, 0, waiter) for waiter in waiters
        )

    chains = AskChains(runs_caller)
    for path in tree.names.paths():
        if not any(_at_or_below(path, top) for top in stopped):
            continue
        ref = tree.names.get(path)
        if ref is None:
            continue
        actor = ref.incarnation
        if runs_the_handler_of(actor, thread, task):
            through = ""
        elif any(runs_the_handler_of(actor, 0, waiter) for waiter in waiters):
            through = ", through the task that awaits the update"
        elif (chain := chains.to_caller(actor)) is not None:
            asked = " which waits for ".join(_name_of(a) for a in chain)
            through = f", through its ask of {asked}"
        else:
            continue
        msg = (
            f"{path}: the update would stop the child whose handler waits for it{through} "
            "(a wait for its own stop); nothing running was touched. Update it from "
            "outside that handler (another actor, or a task of its own that the "
            "handler does not wait for)"
        )
        raise UpdateFailed(msg)


def _name_of(actor: Any) -> str:
    """A child's path, or the actor itself."""
    ref = actor_attr(actor, "_hr_child_ref")
    path = getattr(ref, "path", None)
    return str(path) if path is not None else str(actor)


def check_update(tree: object, spec: object) -> None:
    """TypeError, saying what to give, unless `tree` is a `Tree` and `spec` a `SupervisorSpec`."""
    if not isinstance(tree, Tree):
        hint = ""
        if isinstance(getattr(tree, "sync", None), Tree):
            hint = ": an AsyncioTree (hedgerow.open_tree) updates with await tree.update_tree(spec)"
        msg = f"update_tree takes the Tree of start_tree, not {type(tree).__name__}{hint}"
        raise TypeError(msg)
    check_spec(spec, "update_tree needs", "to update from a tree file")


def _current_task() -> object:
    """The running asyncio task, if this thread runs a loop (asyncio is not imported for it)."""
    aio = sys.modules.get("asyncio")
    if aio is None or aio.events._get_running_loop() is None:
        return None
    return aio.current_task()


_locks: weakref.WeakKeyDictionary[Tree, threading.Lock] = weakref.WeakKeyDictionary()
_locks_lock = threading.Lock()


def _forked() -> None:
    """In a forked child: a thread of the parent may have held a lock (an update
    running there), never released in the child."""
    global _locks_lock  # noqa: PLW0603 - the module's one lock, made afresh
    _locks_lock = threading.Lock()
    _locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def _lock_of(tree: Tree) -> threading.Lock:
    """The lock that runs `tree`'s updates one at a time."""
    with _locks_lock:
        lock = _locks.get(tree)
        if lock is None:
            lock = _locks[tree] = threading.Lock()
        return lock


def apply_plan(tree: Tree, plan: UpdatePlan, spec: SupervisorSpec) -> UpdatePlan:
    """Apply `plan` (made from ``tree.spec`` and `spec`) to `tree`; see `update_tree`.

    Returns the plan as applied: `plan`, unless a kept nested supervisor was
    not running (see `_whole_if_idle`).
    """
    if plan.replaces_tree:
        fields = ", ".join(plan.root_fields)
        msg = f"the root supervisor {tree.name!r} changed ({fields}): it needs a new tree"
        raise UpdateFailed(msg)
    steps = _Steps(tree)
    plan = _prepared(plan, steps, spec)
    added = plan.of(ChangeKind.ADDED)
    try:
        steps.reserve(added)
        for change in added:
            steps.add(change)
        for change in reversed(plan.of(ChangeKind.REMOVED)):
            steps.remove(change)
        for change in plan.of(ChangeKind.CHANGED):
            steps.change(change)
    except Exception as exc:
        steps.undo()
        steps.release(added)
        for supervisor in plan.supervisors:  # the old order again
            steps.attempt(supervisor.path, partial(steps.adopt, supervisor.path, supervisor.old))
        if _ending(tree):  # overtaken by the tree's stop: every step and undo failed
            raise UpdateFailed(steps.overtaken(), exc, rolled_back=False) from exc
        problems = steps.problems
        message = steps.failure(exc)
        raise UpdateFailed(message, exc, rolled_back=not problems, problems=problems) from exc
    steps.commit()
    for supervisor in plan.supervisors:
        steps.adopt(supervisor.path, supervisor.new)
    tree.spec = spec
    return plan


_ENDING_WAIT = 5.0
"""Seconds an update overtaken by the tree's stop waits for its end, to say why it ended."""


def _ending(tree: Tree) -> bool:
    """Whether the tree has ended, or its root has stopped (it is ending)."""
    return tree.done or not tree.ref.is_alive()


def _prepared(plan: UpdatePlan, steps: _Steps, spec: SupervisorSpec) -> UpdatePlan:
    """`plan` as it can be applied (`_whole_if_idle`), once every added or changed
    child's args and kwargs are known to bind; else `UpdateFailed`, with
    nothing running touched."""
    try:
        plan = _whole_if_idle(plan, steps, spec)
    except Exception as exc:  # the tree ended meanwhile, say
        msg = f"{steps.tree.name}: {_why(exc)}; nothing running was touched"
        raise UpdateFailed(msg, exc) from exc
    for change in plan.of(ChangeKind.ADDED, ChangeKind.CHANGED):
        assert change.new is not None
        problem = arguments_problem(change.new, change.path)
        if problem is not None:
            raise UpdateFailed(f"{problem}; nothing running was touched")
    return plan


def _whole_if_idle(plan: UpdatePlan, steps: _Steps, spec: SupervisorSpec) -> UpdatePlan:
    """`plan`, where each kept nested supervisor that is not running (waiting out
    its backoff delay, or stopped) is changed as a whole instead of child by
    child: it has no children to change, and asking it would wait for its
    restart (or fail, if stopped). Like any changed child, it restarts with its
    new spec; its state went with its children already."""
    changes, supervisors = list(plan.changes), list(plan.supervisors)
    for kept in plan.supervisors[1:]:  # not the root: it runs
        path = kept.path
        if not any(s.path == path for s in supervisors):
            continue  # below one that is changed as a whole already
        old = _child_at(steps.tree.spec, path)
        if steps.state(ChildChange(path, ChangeKind.CHANGED, old=old)) is ChildState.RUNNING:
            continue
        at = next((i for i, c in enumerate(changes) if _at_or_below(c.path, path)), len(changes))
        changes = [c for c in changes if not _at_or_below(c.path, path)]
        fields = ("supervisor.children",)
        changes.insert(
            at, ChildChange(path, ChangeKind.CHANGED, old, _child_at(spec, path), fields)
        )
        supervisors = [s for s in supervisors if not _at_or_below(s.path, path)]
    if changes == list(plan.changes):
        return plan
    return dataclasses.replace(plan, changes=tuple(changes), supervisors=tuple(supervisors))


def _at_or_below(path: str, top: str) -> bool:
    return path == top or path.startswith(f"{top}/")


def _child_at(spec: SupervisorSpec, path: str) -> ChildSpec:
    """The child spec at `path` (``root/sub/leaf``: below the root, by id) in `spec`."""
    supervisor: Any = spec
    child: ChildSpec | None = None
    for child_id in path.split("/")[1:]:
        child = next(c for c in supervisor.children if c.id == child_id)
        supervisor = child.start
    assert child is not None
    return child


@dataclass
class _Done:
    """A step done, and how to undo it: the child's change and its state before."""

    change: ChildChange
    kind: ChangeKind
    state: ChildState | None = None


class _Steps:
    """The steps of one update, each through the child's supervisor, and their undoing."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.handles: dict[str, SupervisorHandle] = {
            tree.name: SupervisorHandle(tree.ref, UPDATE_CALL_TIMEOUT)
        }
        self.done: list[_Done] = []
        self.current: ChildChange | None = None
        self.touched = False
        """Whether a running child has been stopped or restarted yet."""
        self.problems: tuple[str, ...] = ()

    def handle(self, path: str) -> SupervisorHandle:
        """The supervisor at `path` (the root, or a nested supervisor kept running)."""
        handle = self.handles.get(path)
        if handle is None:
            parent, _, child_id = path.rpartition("/")
            ref = self.handle(parent).get_child(child_id)
            handle = self.handles[path] = SupervisorHandle(ref, UPDATE_CALL_TIMEOUT)
        return handle

    def state(self, change: ChildChange) -> ChildState | None:
        """The child's state now, or None if its supervisor has no such child."""
        for info in self.handle(change.parent).which_children():
            if info.id == change.id:
                return info.state
        return None

    # -- the steps ----------------------------------------------------------------

    def reserve(self, added: list[ChildChange]) -> None:
        """Name the added children before any starts: one may look up another."""
        for parent, changes in _by_parent(added).items():
            self.handle(parent).reserve_children([c.new for c in changes if c.new is not None])

    def release(self, added: list[ChildChange]) -> None:
        """Forget the names of added children that did not start (or were stopped again)."""
        for parent, changes in _by_parent(added).items():
            self.attempt(parent, partial(self._release, parent, [c.id for c in changes]))

    def _release(self, parent: str, child_ids: list[str]) -> None:
        self.handle(parent).release_children(child_ids)

    def add(self, change: ChildChange) -> None:
        assert change.new is not None
        self.current = change
        self.handle(change.parent).start_child(change.new)
        self.done.append(_Done(change, ChangeKind.ADDED))

    def remove(self, change: ChildChange) -> None:
        self.current = change
        state = self.state(change)
        if state is None:  # it ended for good meanwhile (restart=never)
            return
        self.touched = True
        self.done.append(_Done(change, ChangeKind.REMOVED, state))
        self.handle(change.parent).stop_child(change.id)

    def change(self, change: ChildChange) -> None:
        assert change.new is not None
        self.current = change
        state = self.state(change)
        self.touched = True
        supervisor = self.handle(change.parent)
        if state is None:  # it ended for good meanwhile (restart=never): start the new one
            supervisor.start_child(change.new)
            self.done.append(_Done(change, ChangeKind.ADDED))
            return
        self.done.append(_Done(change, ChangeKind.CHANGED, state))
        supervisor.replace_child(change.new)

    def adopt(self, path: str, spec: SupervisorSpec) -> None:
        self.handle(path).adopt_spec(spec)

    def commit(self) -> None:
        """Forget the removed children (their specs were kept until now, for an undo)."""
        for done in self.done:
            if done.kind is ChangeKind.REMOVED:
                self.attempt(done.change.path, partial(self._delete, done.change))

    # -- undoing ------------------------------------------------------------------

    def undo(self) -> None:
        """Undo every step done, last first; what cannot be undone goes to `problems`."""
        for done in reversed(self.done):
            self.attempt(done.change.path, partial(self._undo, done))

    def _undo(self, done: _Done) -> None:
        change = done.change
        supervisor = self.handle(change.parent)
        if done.kind is ChangeKind.ADDED:
            self._stop(change)
            self._delete(change)
        elif done.kind is ChangeKind.REMOVED:
            assert change.old is not None
            if done.state is ChildState.STOPPED:
                return  # it was not running: nothing to start again
            if self.state(change) is None:  # stop_child forgot it (restart=never)
                supervisor.start_child(change.old)
            else:
                supervisor.restart_child(change.id)
        else:
            assert change.old is not None
            supervisor.replace_child(change.old)
            if done.state is ChildState.STOPPED:
                supervisor.stop_child(change.id)

    def _stop(self, change: ChildChange) -> None:
        with contextlib.suppress(ChildNotFound):  # it ended for good meanwhile
            self.handle(change.parent).stop_child(change.id)

    def _delete(self, change: ChildChange) -> None:
        with contextlib.suppress(ChildNotFound):  # stop_child forgot it (restart=never)
            self.handle(change.parent).delete_child(change.id)

    def attempt(self, path: str, step: Callable[[], object]) -> None:
        """Run `step`, noting a failure as a problem of `path` instead of raising."""
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - every step is attempted, failures reported
            self.problems = (*self.problems, f"{path}: {_why(exc)}")

    # -- saying what went wrong ---------------------------------------------------

    def overtaken(self) -> str:
        """Why the update failed when the tree stopped meanwhile."""
        tree = self.tree
        with contextlib.suppress(TimeoutError, RuntimeError):  # its root stopped: it ends at once
            tree.wait(_ENDING_WAIT)
        reason = describe(tree.reason) if tree.reason is not None else "stopping"
        where = self.current.path if self.current is not None else tree.name
        return (
            f"tree {tree.name!r} stopped during the update ({reason}), at {where}: "
            "its children stop with it, nothing is left to update or undo"
        )

    def failure(self, exc: BaseException) -> str:
        """Why the update failed, and what became of the tree."""
        where = self.current.path if self.current is not None else self.tree.name
        if isinstance(exc, StartError):
            text = f"child {where!r} failed to start: {_why(exc)}"
        else:
            text = f"{where}: {_why(exc)}"
        if self.problems:
            return f"{text}; could not undo: {'; '.join(self.problems)}"
        if not self.touched:
            return f"{text}; nothing running was touched"
        return f"{text}; what was changed was undone"


def arguments_problem(child: ChildSpec, path: str) -> str | None:
    """Why `child`'s args and kwargs do not bind to what starts it (or, for a
    nested supervisor or a worker process, its children's or components' to
    theirs); None if they do, or if that
    cannot be told before the start (a simple_one_for_one template's args come
    with each `start_child`; some callables have no signature)."""
    start = child.start
    container = getattr(start, "container", None)  # a worker process's components
    if isinstance(container, SupervisorSpec):
        start = container
    if isinstance(start, SupervisorSpec):
        if start.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            return None
        for grandchild in start.children:
            problem = arguments_problem(grandchild, f"{path}/{grandchild.id}")
            if problem is not None:
                return problem
        return None
    try:
        signature = inspect.signature(start)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*child.args, **child.kwargs)
    except TypeError as exc:
        return f"child {path!r} cannot take its args and kwargs: {exc}"
    return None


def _by_parent(changes: list[ChildChange]) -> dict[str, list[ChildChange]]:
    grouped: dict[str, list[ChildChange]] = {}
    for change in changes:
        grouped.setdefault(change.parent, []).append(change)
    return grouped


def _why(exc: BaseException) -> str:
    """An error, described; a start error by its innermost cause."""
    cause: Any = exc
    while isinstance(cause, StartError):
        cause = cause.cause
    return describe(cause)
