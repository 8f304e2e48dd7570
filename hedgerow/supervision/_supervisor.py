"""`Supervisor`: an actor that starts, watches and restarts its children.

It follows OTP's supervisor: children start in spec order and stop in reverse;
a child's exit is handled by its restart type, the supervisor's strategy, its
restart intensity and, beyond OTP and only if asked for, the child's backoff.
Everything it does is an event on the tree's stream.

The supervisor talks to children only through their refs, inbox messages and
exit callbacks, so it does not assume one thread per child.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeVar, overload

from hedgerow._events import EventKind
from hedgerow._exceptions import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    Shutdown,
    SpecError,
    StartError,
)
from hedgerow.actors._actor import Actor
from hedgerow.actors._reason import SHUTDOWN
from hedgerow.actors._ref import ChildRef, narrow
from hedgerow.supervision._backoff import Backoff
from hedgerow.supervision._children import (
    ChildCounts,
    ChildInfo,
    ChildState,
    _Child,
    _ChildExited,
    _RestartDue,
)
from hedgerow.supervision._plan import same_apart_from_children, same_settings
from hedgerow.supervision._restarts import Restarting
from hedgerow.supervision._spec import (
    ChildSpec,
    Restart,
    SupervisorSpec,
)
from hedgerow.supervision._steps import Steps, run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    import pykka

    from hedgerow.actors._actor_core import ActorCore

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildState",
    "Supervisor",
    "SupervisorBase",
    "supervisor_class",
]

A = TypeVar("A", bound="pykka.Actor")


class SupervisorBase(Restarting):
    """What a supervisor does, whatever runs it: its life cycle and its
    dynamic-children API as steps (see `hedgerow.supervision._steps`), which
    `Supervisor` (a thread) and `LoopSupervisor` (an event loop) perform."""

    def __str__(self) -> str:
        return f"Supervisor ({self.path})"

    # -- life cycle -----------------------------------------------------------

    def _start_children(self) -> Steps[None]:
        """Start the children in order; if one fails, stop the others and fail."""
        if self._simple:
            return
        self._reserve(self.spec.children, self.path)
        for spec in self.spec.children:
            child = self._new_child(spec)
            self._children.append(child)
            error = yield from self._start(child)
            if error is not None:
                yield from self._terminate_all()
                raise StartError(child.id, error)

    def _stop_children(self) -> Steps[None]:
        """Stop the children in reverse start order; restart nothing meanwhile."""
        yield from self._terminate_all()
        self._publish(EventKind.SHUTDOWN, self.path, reason=self._hr_reason or SHUTDOWN)

    def _receive(self, message: Any) -> Steps[None] | None:
        """The steps a supervisor's own message leads to; None for any other message."""
        if isinstance(message, _ChildExited):
            return self._child_exited(message.child, message.actor, message.reason)
        if isinstance(message, _RestartDue):
            return self._restart_due(message)
        return None

    # -- the dynamic-children API, as steps ------------------------------------

    def _start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> Steps[ChildRef[Any]]:
        """`Supervisor.start_child`."""
        if self._simple:
            assert self._template is not None
            args = extra_args if spec_or_arg is None else (spec_or_arg, *extra_args)
            child = self._new_child(self._template, f"{self._template.id}-{next(self._serial)}")
            child.args = (*self._template.args, *args)
        else:
            spec = spec_or_arg
            if not isinstance(spec, ChildSpec):
                raise SpecError(None, "spec", spec, "start_child takes a ChildSpec")
            self.spec.check_child(spec)
            existing = self._find(spec.id)
            if existing is not None:
                if existing.state is ChildState.RUNNING:
                    raise AlreadyStarted(spec.id, existing.ref)
                raise AlreadyPresent(spec.id)
            child = self._new_child(spec)
        self._children.append(child)
        try:
            error = yield from self._start(child)
        except Shutdown as exc:
            error = exc  # abandoned meanwhile: nothing is left of the child
        if error is not None:
            self._remove(child, error)  # its name too: nothing is kept
            raise StartError(child.id, error)
        return child.ref

    def _stop_child(self, child: str | ChildRef[Any]) -> Steps[None]:
        """`Supervisor.stop_child`."""
        record = self._lookup(child, "stop_child")
        self._cancel_restart(record)
        yield from self._terminate([record])
        record.state = ChildState.STOPPED
        if self._simple or record.spec.restart is Restart.NEVER:
            self._remove(record, SHUTDOWN)
        else:
            record.ref._mark_gone(SHUTDOWN)
            self._release(record.ref.path)  # named for a restart that now won't come

    def _restart_child(self, child_id: str) -> Steps[ChildRef[Any]]:
        """`Supervisor.restart_child`."""
        record = self._lookup(child_id, "restart_child")
        if record.state is ChildState.RUNNING:
            raise ChildRunning(child_id)
        if record.state is ChildState.RESTARTING:
            raise ChildRestarting(child_id)
        error = yield from self._start(record)
        if error is not None:
            record.ref._mark_gone(error)
            raise StartError(child_id, error)
        return record.ref

    def delete_child(self, child_id: str) -> None:
        """Forget a stopped child's spec."""
        record = self._lookup(child_id, "delete_child")
        if record.state is ChildState.RUNNING:
            raise ChildRunning(child_id)
        if record.state is ChildState.RESTARTING:
            raise ChildRestarting(child_id)
        self._remove(record, "deleted")

    def _replace_child(self, spec: ChildSpec) -> Steps[ChildRef[Any]]:
        """`Supervisor.replace_child`."""
        if not isinstance(spec, ChildSpec):
            raise SpecError(None, "spec", spec, "replace_child takes a ChildSpec")
        record = self._lookup(spec.id, "replace_child")
        self.spec.check_child(spec)
        self._cancel_restart(record)
        yield from self._terminate([record])
        self._release(record.ref.path)  # named from the old spec for a restart
        record.spec = spec
        record.args = spec.args
        settings = self.spec.backoff_for(spec)
        record.backoff = Backoff.of(settings, self.random) if settings is not None else None
        record.reset_after = settings.retry_reset_after if settings is not None else 0.0
        record.ref.shutdown = spec.shutdown
        record.ref._bound_inbox(self.spec.inbox_for(spec))
        actor_class: Any = Supervisor if spec.is_supervisor else spec.start
        record.ref.actor_class = actor_class if isinstance(actor_class, type) else Actor
        error = yield from self._start(record)
        if error is not None:
            record.ref._mark_gone(error)
            raise StartError(spec.id, error)
        return record.ref

    def reserve_children(self, specs: Iterable[ChildSpec]) -> None:
        """Name children ahead of their `start_child` (and the children of nested
        supervisors among them), as this supervisor's start does for its spec,
        so that a child may look up one that starts later (a reload adding
        both). `release_children` forgets what no `start_child` claimed."""
        self._reserve(specs, self.path)

    def release_children(self, child_ids: Iterable[str]) -> None:
        """Forget the names of these children, which `reserve_children` gave, if
        this supervisor has no such child (it never started, or its start
        failed); messages waiting on them become dead letters."""
        for child_id in child_ids:
            if self._find(child_id) is not None:
                continue
            path = f"{self.path}/{child_id}"
            ref = self.names.get(path)
            if ref is not None:
                self.names.remove(ref)
                ref._mark_gone(SHUTDOWN)
            self._release(path)

    def adopt_spec(self, spec: SupervisorSpec) -> None:
        """Take `spec` as this supervisor's spec, restarting nothing (a reload's last step).

        `spec` must have this supervisor's settings, and each of its children
        that this supervisor has must have that child's spec, or differ only in
        a nested supervisor's children (which that supervisor adopts itself).
        Children then stop (and, for ``rest_for_one``, restart) in `spec`'s
        order; children it does not name (started by `start_child`) come after.
        Raises `SpecError` naming the first difference.
        """
        if not same_settings(self.spec, spec):
            rule = "adopt_spec keeps the settings: restart the supervisor to change them"
            raise SpecError(self.spec.name, "spec", spec, rule)
        records = {child.id: child for child in self._children}
        named = [(records[c.id], c) for c in spec.children if c.id in records]
        for record, child in named:
            if not same_apart_from_children(record.spec, child):
                rule = "adopt_spec keeps each child's spec: replace_child changes one"
                raise SpecError(child.id, "spec", child, rule)
        for record, child in named:
            record.spec = child
        ordered = [record for record, _ in named]
        self._children = ordered + [c for c in self._children if c not in ordered]
        self.spec = spec

    def which_children(self) -> list[ChildInfo]:
        """Every child in start order, with its state."""
        return [
            ChildInfo(
                id=c.id,
                ref=c.ref,
                state=c.state,
                is_supervisor=c.spec.is_supervisor,
                restart=c.spec.restart,  # type: ignore[arg-type]
                incarnation=c.incarnation,
                restarts=c.restarts,
            )
            for c in self._children
        ]

    def count_children(self) -> ChildCounts:
        supervisors = sum(1 for c in self._children if c.spec.is_supervisor)
        return ChildCounts(
            specs=1 if self._simple else len(self._children),
            active=sum(1 for c in self._children if c.state is ChildState.RUNNING),
            supervisors=supervisors,
            workers=len(self._children) - supervisors,
        )

    @overload
    def get_child(self, child_id: str) -> ChildRef[Any]: ...

    @overload
    def get_child(self, child_id: str, actor_class: type[A]) -> ChildRef[A]: ...

    def get_child(self, child_id: str, actor_class: type[A] | None = None) -> ChildRef[Any]:
        """The stable ref of a child, by id; typed as `actor_class`'s if given."""
        record = self._find(child_id)
        if record is None:
            raise ChildNotFound(child_id)
        return narrow(record.ref, actor_class)

    def intensity_remaining(self) -> int:
        """How many more restarts the intensity window allows right now."""
        return self._intensity.remaining

    # -- starting -------------------------------------------------------------

    _ref_class: tuple[ChildSpec, type[Any]] | None = None
    """The last spec `_child_ref` made a ref for, and its refs' actor class
    (every child of a simple_one_for_one template: found once)."""

    def _child_ref(self, spec: ChildSpec, path: str) -> ChildRef[Any]:
        cached = self._ref_class
        if cached is not None and cached[0] is spec:
            actor_class: Any = cached[1]
        else:
            actor_class = Supervisor if spec.is_supervisor else spec.start
            if not isinstance(actor_class, type):
                actor_class = Actor
            self._ref_class = (spec, actor_class)
        return ChildRef(
            actor_class,
            path,
            self._dead_letters,  # one for all its refs
            self.names,
            self.hooks,
            events=self.events,
            shutdown=spec.shutdown,
        )

    def _factory(self, child: _Child) -> Callable[..., ActorCore]:
        start = child.spec.start
        if isinstance(start, SupervisorSpec):
            nested = start

            def build_supervisor(*_args: Any, **_kwargs: Any) -> ActorCore:
                return supervisor_class(nested)(
                    nested,
                    path=child.ref.path,
                    clock=self.clock,
                    events=self.events,
                    random=self.random,
                    names=self.names,
                    hooks=self.hooks,
                )

            return build_supervisor
        return start


class Supervisor(SupervisorBase, Actor):
    """Supervises the children of a `SupervisorSpec`; itself a hedgerow `Actor`.

    The dynamic-children API (`start_child`, `stop_child`, `restart_child`,
    `delete_child`, `which_children`, `count_children`, `get_child`) runs in the
    supervisor's thread: call it through a proxy, a `SupervisorHandle`, or
    `Tree`. It raises the `ChildError` subclasses for OTP's ``{error, ...}``
    answers. Never call it from a child's ``on_start`` (the supervisor is
    waiting for that start to finish).

    A spec with ``runtime="loop"`` runs as a `LoopSupervisor` instead: the
    same supervisor on an event loop. A ref to either is typed as this class.
    """

    # -- life cycle -----------------------------------------------------------

    def on_start(self) -> None:
        """Start the children in order; if one fails, stop the others and fail."""
        run(self._start_children())

    def on_stop(self) -> None:
        """Stop the children in reverse start order; restart nothing meanwhile."""
        run(self._stop_children())

    def on_failure(
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002
        exception_value: BaseException | None,  # noqa: ARG002
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> None:
        """Whatever failed the supervisor, leave no child running."""
        run(self._terminate_all())

    def on_receive(self, message: Any) -> Any:
        steps = self._receive(message)
        if steps is None:
            return super().on_receive(message)
        run(steps)
        return None

    # -- the dynamic-children API ---------------------------------------------

    def start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> ChildRef[Any]:
        """Add a child and start it; returns its ref.

        With simple_one_for_one, the arguments are extra args appended to the
        template's. Otherwise pass a `ChildSpec`. Raises `AlreadyStarted`,
        `AlreadyPresent`, `SpecError` or `StartError` (nothing is kept then).
        """
        return run(self._start_child(spec_or_arg, *extra_args))

    def stop_child(self, child: str | ChildRef[Any]) -> None:
        """Stop a child (OTP's ``terminate_child``); it is not restarted.

        Its spec is kept, except for restart=never children and children of a
        simple_one_for_one supervisor (given by ref), which are removed.
        """
        run(self._stop_child(child))

    def restart_child(self, child_id: str) -> ChildRef[Any]:
        """Start a stopped child again from its kept spec."""
        return run(self._restart_child(child_id))

    def replace_child(self, spec: ChildSpec) -> ChildRef[Any]:
        """Restart the child ``spec.id`` with `spec` instead of its spec (a reload).

        The child is stopped as its supervisor stops it (its old shutdown), then
        started from `spec`, keeping its stable ref: messages sent meanwhile wait
        for the new incarnation, as across a restart. No restart is counted. A
        stopped or restarting child is started too. Raises `ChildNotFound`,
        `SpecError`, or `StartError` if the new incarnation fails to start (the
        child is left stopped with `spec` then, its ref closed, as after a failed
        `restart_child`).
        """
        return run(self._replace_child(spec))


def supervisor_class(spec: SupervisorSpec) -> type[SupervisorBase]:
    """The class that runs a supervisor of `spec`: `Supervisor` (a thread), or
    `LoopSupervisor` for ``runtime="loop"``. That one builds on this module, so
    it is found by name (and imported only then: a process of thread actors
    never loads asyncio for it)."""
    if spec.runtime == "loop":
        module = importlib.import_module(LOOP_SUPERVISOR_MODULE)
        return module.LoopSupervisor  # type: ignore[no-any-return]
    return Supervisor


LOOP_SUPERVISOR_MODULE = "hedgerow.supervision._loop_supervisor"
