"""`Supervisor`: an actor that starts, watches and restarts its children.

It follows OTP's supervisor: children start in spec order and stop in reverse;
a child's exit is handled by its restart type, the supervisor's strategy, its
restart intensity and, beyond OTP and only if asked for, the child's backoff.
Everything it does is an event on the tree's stream.

The supervisor talks to children only through their refs, inbox messages and
exit callbacks, so it does not assume one thread per child.
"""

from __future__ import annotations

import functools
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

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    import pykka

    from hedgerow.actors._actor_core import ActorCore

__all__ = ["ChildCounts", "ChildInfo", "ChildState", "Supervisor"]

A = TypeVar("A", bound="pykka.Actor")


class Supervisor(Restarting):
    """Supervises the children of a `SupervisorSpec`; itself a hedgerow `Actor`.

    The dynamic-children API (`start_child`, `stop_child`, `restart_child`,
    `delete_child`, `which_children`, `count_children`, `get_child`) runs in the
    supervisor's thread: call it through a proxy, a `SupervisorHandle`, or
    `Tree`. It raises the `ChildError` subclasses for OTP's ``{error, ...}``
    answers. Never call it from a child's ``on_start`` (the supervisor is
    waiting for that start to finish).
    """

    def __str__(self) -> str:
        return f"Supervisor ({self.path})"

    # -- life cycle -----------------------------------------------------------

    def on_start(self) -> None:
        """Start the children in order; if one fails, stop the others and fail."""
        if self._simple:
            return
        self._reserve(self.spec.children, self.path)
        for spec in self.spec.children:
            child = self._new_child(spec)
            self._children.append(child)
            error = self._start(child)
            if error is not None:
                self._terminate_all()
                raise StartError(child.id, error)

    def on_stop(self) -> None:
        """Stop the children in reverse start order; restart nothing meanwhile."""
        self._terminate_all()
        self._publish(EventKind.SHUTDOWN, self.path, reason=self._hr_reason or SHUTDOWN)

    def on_failure(
        self,
        exception_type: type[BaseException] | None,  # noqa: ARG002
        exception_value: BaseException | None,  # noqa: ARG002
        traceback: TracebackType | None,  # noqa: ARG002
    ) -> None:
        """Whatever failed the supervisor, leave no child running."""
        self._terminate_all()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _ChildExited):
            self._child_exited(message.child, message.actor, message.reason)
        elif isinstance(message, _RestartDue):
            self._restart_due(message)
        else:
            return super().on_receive(message)
        return None

    # -- the dynamic-children API ---------------------------------------------

    def start_child(self, spec_or_arg: Any = None, *extra_args: Any) -> ChildRef[Any]:
        """Add a child and start it; returns its ref.

        With simple_one_for_one, the arguments are extra args appended to the
        template's. Otherwise pass a `ChildSpec`. Raises `AlreadyStarted`,
        `AlreadyPresent`, `SpecError` or `StartError` (nothing is kept then).
        """
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
            error = self._start(child)
        except Shutdown as exc:
            error = exc  # abandoned meanwhile: nothing is left of the child
        if error is not None:
            self._remove(child, error)  # its name too: nothing is kept
            raise StartError(child.id, error)
        return child.ref

    def stop_child(self, child: str | ChildRef[Any]) -> None:
        """Stop a child (OTP's ``terminate_child``); it is not restarted.

        Its spec is kept, except for restart=never children and children of a
        simple_one_for_one supervisor (given by ref), which are removed.
        """
        record = self._lookup(child, "stop_child")
        self._cancel_restart(record)
        self._terminate([record])
        record.state = ChildState.STOPPED
        if self._simple or record.spec.restart is Restart.NEVER:
            self._remove(record, SHUTDOWN)
        else:
            record.ref._mark_gone(SHUTDOWN)
            self._release(record.ref.path)  # named for a restart that now won't come

    def restart_child(self, child_id: str) -> ChildRef[Any]:
        """Start a stopped child again from its kept spec."""
        record = self._lookup(child_id, "restart_child")
        if record.state is ChildState.RUNNING:
            raise ChildRunning(child_id)
        if record.state is ChildState.RESTARTING:
            raise ChildRestarting(child_id)
        error = self._start(record)
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
        if not isinstance(spec, ChildSpec):
            raise SpecError(None, "spec", spec, "replace_child takes a ChildSpec")
        record = self._lookup(spec.id, "replace_child")
        self.spec.check_child(spec)
        self._cancel_restart(record)
        self._terminate([record])
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
        error = self._start(record)
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

    def _child_ref(self, spec: ChildSpec, path: str) -> ChildRef[Any]:
        actor_class: Any = Supervisor if spec.is_supervisor else spec.start
        if not isinstance(actor_class, type):
            actor_class = Actor
        return ChildRef(
            actor_class,
            path,
            functools.partial(self._dead_letter, path),  # (smaller than a closure)
            self.names,
            self.hooks,
            events=self.events,
            shutdown=spec.shutdown,
        )

    def _factory(self, child: _Child) -> Callable[..., ActorCore]:
        start = child.spec.start
        if isinstance(start, SupervisorSpec):
            nested = start

            def build_supervisor(*_args: Any, **_kwargs: Any) -> Actor:
                return Supervisor(
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
