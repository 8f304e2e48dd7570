"""`Supervisor`: an actor that starts, watches and restarts its children.

It follows OTP's supervisor: children start in spec order and stop in reverse;
a child's exit is handled by its restart type, the supervisor's strategy, its
restart intensity and, beyond OTP and only if asked for, the child's backoff.
Everything it does is an event on the tree's stream.

The supervisor talks to children only through their refs, inbox messages and
exit callbacks, so it does not assume one thread per child.
"""

from __future__ import annotations

import enum
import itertools
import random as _random
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pykka._envelope import Envelope

from hedgerow._clock import default_clock
from hedgerow._events import EventKind, EventStream
from hedgerow._exceptions import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    IntensityExceeded,
    NotAllowedForSimpleOneForOne,
    RetriesExhausted,
    Shutdown,
    SpecError,
    StartError,
)
from hedgerow.actors._actor import Actor
from hedgerow.actors._messages import _Internal
from hedgerow.actors._names import Names
from hedgerow.actors._reason import KILLED, SHUTDOWN, Reason, is_normal
from hedgerow.actors._ref import ChildRef, TreeHooks, narrow
from hedgerow.actors._spawn import build, launch
from hedgerow.supervision._backoff import Backoff, BackoffSettings
from hedgerow.supervision._intensity import RestartIntensity
from hedgerow.supervision._spec import (
    ChildSpec,
    Restart,
    ShutdownPolicy,
    Strategy,
    SupervisorSpec,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    import pykka

    from hedgerow._clock import Clock, TimerHandle
    from hedgerow.actors._actor_core import ActorCore

__all__ = ["ChildCounts", "ChildInfo", "ChildState", "Supervisor"]

A = TypeVar("A", bound="pykka.Actor")


class ChildState(enum.Enum):
    """Where a child is in its life, as `which_children` reports it."""

    RUNNING = "running"
    RESTARTING = "restarting"
    """Waiting for its backoff delay, or for a failed restart to be retried."""
    STOPPED = "stopped"
    """Not running; its spec is kept (``restart_child`` starts it again)."""


@dataclass(frozen=True)
class ChildInfo:
    """One row of `which_children` (OTP: ``{Id, Child, Type, Modules}``)."""

    id: str
    ref: ChildRef[Any]
    state: ChildState
    is_supervisor: bool
    restart: Restart
    incarnation: int
    restarts: int


@dataclass(frozen=True)
class ChildCounts:
    """OTP's ``count_children``: specs, live children, and specs by kind."""

    specs: int
    active: int
    supervisors: int
    workers: int


class _Child:
    """The supervisor's record of one child (its spec, ref and current incarnation)."""

    __slots__ = (
        "actor",
        "args",
        "backoff",
        "id",
        "incarnation",
        "ref",
        "reset_after",
        "restarts",
        "spec",
        "started_at",
        "state",
        "timer",
    )

    def __init__(
        self,
        spec: ChildSpec,
        ref: ChildRef[Any],
        backoff: BackoffSettings | None,
        random: _random.Random,
    ) -> None:
        self.spec = spec
        self.id = spec.id
        self.ref = ref
        self.args = spec.args
        self.backoff = Backoff.of(backoff, random) if backoff is not None else None
        self.reset_after = backoff.retry_reset_after if backoff is not None else 0.0
        self.actor: ActorCore | None = None
        self.incarnation = 0
        self.restarts = 0
        self.started_at = 0.0
        self.state = ChildState.STOPPED
        self.timer: TimerHandle | None = None


class _ChildExited(_Internal):
    __slots__ = ("actor", "child", "reason")

    def __init__(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        self.child = child
        self.actor = actor
        self.reason = reason


class _RestartDue(_Internal):
    __slots__ = ("group", "timer")

    def __init__(self, group: list[_Child]) -> None:
        self.group = group
        self.timer: TimerHandle | None = None


class Supervisor(Actor):
    """Supervises the children of a `SupervisorSpec`; itself a hedgerow `Actor`.

    The dynamic-children API (`start_child`, `stop_child`, `restart_child`,
    `delete_child`, `which_children`, `count_children`, `get_child`) runs in the
    supervisor's thread: call it through a proxy, a `SupervisorHandle`, or
    `Tree`. It raises the `ChildError` subclasses for OTP's ``{error, ...}``
    answers. Never call it from a child's ``on_start`` (the supervisor is
    waiting for that start to finish).
    """

    def __init__(
        self,
        spec: SupervisorSpec,
        *,
        path: str = "root",
        clock: Clock | None = None,
        events: EventStream | None = None,
        random: _random.Random | None = None,
        names: Names | None = None,
        hooks: TreeHooks | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.path = path
        self.clock: Clock = clock if clock is not None else default_clock()
        self.events = events if events is not None else EventStream()
        self.names = names if names is not None else Names()
        self.hooks = hooks if hooks is not None else TreeHooks()
        """Shared by the whole tree: where `hedgerow.testing` plugs in its faults."""
        self._hr_clock = self.clock
        self.random = random if random is not None else _random.Random()  # noqa: S311
        self._intensity = RestartIntensity(spec.max_restarts, spec.period, self.clock)
        self._children: list[_Child] = []
        self._simple = spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE
        self._template = spec.children[0] if self._simple else None
        self._serial = itertools.count(1)
        self._terminated = False
        """Shutting down (or abandoned): nothing is started or restarted any more."""
        self._starting: tuple[_Child, ActorCore] | None = None
        """The child whose on_start this supervisor's thread waits for, if any."""
        self._stop_asked = False
        """A stop was asked for from another thread: nothing more (re)starts."""
        self._gate = threading.Lock()
        """Orders starting an incarnation against `_terminated` being set from
        another thread (a parent taking over an abandoned supervisor's stop)."""

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
        # Only a tree being updated needs the planner (a worker starts without it).
        from hedgerow.supervision._plan import (  # noqa: PLC0415
            same_apart_from_children,
            same_settings,
        )

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
            lambda message, reason: self._dead_letter(path, message, reason),
            self.names,
            self.hooks,
            events=self.events,
            shutdown=spec.shutdown,
        )

    def _reserve(self, specs: Iterable[ChildSpec], parent: str) -> None:
        """Name every child of `specs` and below before any starts (see `Names`)."""
        for spec in specs:
            path = f"{parent}/{spec.id}"
            self.names.reserve(self._child_ref(spec, path))
            nested = spec.start
            if (
                isinstance(nested, SupervisorSpec)
                and nested.strategy is not Strategy.SIMPLE_ONE_FOR_ONE
            ):
                self._reserve(nested.children, path)

    def _reserve_below(self, child: _Child) -> None:
        """Name the children of a nested supervisor about to (re)start, and below."""
        nested = child.spec.start
        if (
            isinstance(nested, SupervisorSpec)
            and nested.strategy is not Strategy.SIMPLE_ONE_FOR_ONE
        ):
            self._reserve(nested.children, child.ref.path)

    def _release(self, path: str) -> None:
        """Dead-letter what waits for children below `path` that never started."""
        for ref in self.names.release_under(path):
            ref._mark_gone(SHUTDOWN)

    def _new_child(self, spec: ChildSpec, child_id: str | None = None) -> _Child:
        cid = child_id or spec.id
        path = f"{self.path}/{cid}"
        ref = self.names.claim(path) or self._child_ref(spec, path)
        ref._bound_inbox(self.spec.inbox_for(spec))
        interceptor = self.hooks.interceptor
        if interceptor is not None:
            interceptor.child_created(ref)
        self.names.add(ref)
        child = _Child(spec, ref, self.spec.backoff_for(spec), self.random)
        child.id = cid
        return child

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

    def _start(self, child: _Child) -> BaseException | None:
        """Start one incarnation and wait for its ``on_start``; the error, if any.

        Raises `Shutdown` if this supervisor is abandoned meanwhile: whoever
        took its stop over stops the incarnation, and nothing more starts.
        """
        with self._gate:
            self._check_not_abandoned()
            child.incarnation += 1
            child.ref._revive()
        try:
            actor = build(
                self._factory(child),
                child.args,
                child.spec.kwargs,  # type: ignore[arg-type]
                child_ref=child.ref,
                incarnation=child.incarnation,
                ask_errors_fail=child.spec.ask_errors_fail,
                event_errors_fail=child.spec.event_errors_fail,
                clock=self.clock,
                on_exit=self._exit_notifier(child),
                on_started=self._start_notifier(child),
            )
        except Exception as exc:  # noqa: BLE001 - any constructor error is a start failure
            return self._start_failed(child, exc, exc.__traceback__)
        with self._gate:
            self._check_not_abandoned()
            launch(actor)
            self._starting = (child, actor)
        try:
            actor._hr_started.wait()
        finally:
            with self._gate:
                self._starting = None
        self._check_not_abandoned()
        if actor._hr_abandoned and actor._hr_start_error is None:
            # Abandoned while it started (a stop interrupted the start): killed.
            child.actor = None
            child.state = ChildState.STOPPED
            if actor._hr_claim_end_report():
                self._report_terminated(child, actor, KILLED)
            return Shutdown(f"{actor} was abandoned while it started")
        if actor._hr_start_error is not None:
            actor._hr_claim_end_report()  # start_failed reports its end: stopping it reports none
            return self._start_failed(child, actor._hr_start_error, None, actor._hr_traceback)
        child.actor = actor
        child.state = ChildState.RUNNING
        return None

    def _check_not_abandoned(self) -> None:
        if self._hr_abandoned:
            msg = f"{self} was abandoned by its parent: it starts nothing more"
            raise Shutdown(msg)

    def _start_notifier(self, child: _Child) -> Callable[[], None]:
        incarnation = child.incarnation
        kind = EventKind.RESTARTED if incarnation > 1 else EventKind.STARTED

        def notify() -> None:
            child.started_at = self.clock.now()
            actor = child.ref.incarnation
            info = actor.actor_info() if actor is not None else None
            self._publish(kind, child.ref.path, incarnation=incarnation, info=info)

        return notify

    def _start_failed(
        self,
        child: _Child,
        error: BaseException,
        tb: TracebackType | None,
        text: str | None = None,
    ) -> BaseException:
        child.actor = None
        child.state = ChildState.STOPPED
        child.started_at = self.clock.now()  # zero uptime: its retry keeps backing off
        if text is None and tb is not None:
            import traceback as tb_module  # noqa: PLC0415 - only on the failure path

            text = "".join(tb_module.format_exception(type(error), error, tb))
        self._publish(
            EventKind.START_FAILED,
            child.ref.path,
            incarnation=child.incarnation,
            reason=error,
            traceback=text,
        )
        return error

    def _exit_notifier(self, child: _Child) -> Callable[[ActorCore, Reason], None]:
        inbox = self.actor_inbox

        def notify(actor: ActorCore, reason: Reason) -> None:
            inbox.put(Envelope(_ChildExited(child, actor, reason)))

        return notify

    # -- exits ----------------------------------------------------------------

    def _child_exited(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        if child.actor is not actor or self._terminated:
            return  # ordered by this supervisor, and already handled
        if not actor._hr_claim_end_report():
            return  # reported by whoever stopped it
        child.actor = None
        child.state = ChildState.STOPPED
        self._report_exit(child, actor, reason)
        spec = child.spec
        if spec.significant and self._auto_shutdown_due(child, reason):
            self._forget(child, reason)
            raise Shutdown(f"auto shutdown: {child.id} exited")
        if spec.restart is Restart.NEVER or (spec.restart is Restart.FAILED and is_normal(reason)):
            self._forget(child, reason)
            if spec.significant and self._no_significant_left():
                raise Shutdown(f"auto shutdown: {child.id} was the last significant child")
            return
        self._restart(child, self._group(child))

    def _auto_shutdown_due(self, child: _Child, reason: Reason) -> bool:
        policy = self.spec.shutdown_policy
        if policy is ShutdownPolicy.ON_ANY_COMPONENT_FAILED:
            return not is_normal(reason)
        if policy is ShutdownPolicy.ON_ANY_COMPONENT_STOPPED:
            return child.spec.restart is Restart.NEVER or is_normal(reason)
        return False

    def _no_significant_left(self) -> bool:
        if self.spec.shutdown_policy is not ShutdownPolicy.ON_LAST_COMPONENT_STOPPED:
            return False
        return not any(
            c.spec.significant and c.state is not ChildState.STOPPED for c in self._children
        )

    def _forget(self, child: _Child, reason: Reason) -> None:
        """The child will not be restarted: drop a never-child's spec, close its ref."""
        if child.spec.restart is Restart.NEVER or self._simple:
            self._remove(child, reason)
        else:
            child.ref._mark_gone(reason)

    def _remove(self, child: _Child, reason: Reason) -> None:
        if child in self._children:
            self._children.remove(child)
        self.names.remove(child.ref)
        child.ref._mark_gone(reason)
        if child.spec.is_supervisor:
            self._release(child.ref.path)

    def _report_exit(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        crashed = actor._hr_crashed
        kind = EventKind.STOPPED if is_normal(reason) else EventKind.FAILED
        self._publish(
            kind,
            child.ref.path,
            incarnation=actor.actor_incarnation,
            reason=reason,
            traceback=actor._hr_traceback,
        )
        if crashed is not None and not isinstance(crashed.message, _Internal):
            self._dead_letter(child.ref.path, crashed.message, reason)

    def _dead_letter(self, path: str, message: Any, reason: Reason) -> None:
        self._publish(EventKind.DEAD_LETTER, path, reason=reason, message=message)

    # -- restarting -----------------------------------------------------------

    def _group(self, failed: _Child) -> list[_Child]:
        """The failed child and the siblings its strategy restarts with it."""
        strategy = self.spec.strategy
        if strategy is Strategy.ONE_FOR_ALL:
            group = list(self._children)
        elif strategy is Strategy.REST_FOR_ONE:
            group = self._children[self._children.index(failed) :]
        else:
            return [failed]
        return [c for c in group if c is failed or c.state is not ChildState.STOPPED]

    def _restart(self, failed: _Child, group: list[_Child]) -> None:
        """Count the restart, stop the group's other members, then start it (maybe later)."""
        if not self._intensity.add_restart():
            self._give_up(
                IntensityExceeded(self.path, failed.id, self.spec.max_restarts, self.spec.period)
            )
        delay = self._backoff_delay(failed)
        others = [c for c in group if c is not failed]
        self._terminate(reversed(others))
        restartable = []
        for child in group:
            self._cancel_restart(child)
            if child is not failed and child.spec.restart is Restart.NEVER:
                self._remove(child, SHUTDOWN)
                continue
            child.state = ChildState.RESTARTING
            restartable.append(child)
        for child in restartable:  # as on_start: a sibling may look up a cousin meanwhile
            self._reserve_below(child)
        if delay <= 0:
            self._start_group(restartable)
            return
        due = _RestartDue(restartable)
        inbox = self.actor_inbox
        due.timer = self.clock.call_later(delay, lambda: inbox.put(Envelope(due)))
        for child in restartable:
            child.timer = due.timer
        self._publish(
            EventKind.RESTART_SCHEDULED,
            failed.ref.path,
            incarnation=failed.incarnation,
            delay=delay,
        )

    def _backoff_delay(self, failed: _Child) -> float:
        """The wait before restarting `failed`: none without backoff; under backoff,
        give up once it has failed `max_retries` times in a row without staying up."""
        backoff = failed.backoff
        if backoff is None:
            return 0.0
        if failed.incarnation and self.clock.now() - failed.started_at >= failed.reset_after:
            backoff.reset()
        if not backoff.can_retry():
            self._give_up(RetriesExhausted(self.path, failed.id, backoff.max_retries))
        return backoff.next_delay()

    def _restart_due(self, due: _RestartDue) -> None:
        group = [c for c in due.group if c.timer is due.timer and c in self._children]
        if not group:
            return
        self._start_group(group)

    def _start_group(self, group: list[_Child]) -> None:
        for index, child in enumerate(group):
            child.timer = None
            if child.state is not ChildState.RESTARTING or self._stop_asked:
                continue
            child.restarts += 1
            if self._start(child) is not None and not self._stop_asked:
                # A failed restart is retried under the same intensity and backoff.
                self._restart(child, group[index:])
                return

    def _cancel_restart(self, child: _Child) -> None:
        timer = child.timer
        child.timer = None
        # Members of a group restart share one timer: keep it for the others.
        if timer is not None and not any(c.timer is timer for c in self._children):
            timer.cancel()
        if child.state is ChildState.RESTARTING:
            child.state = ChildState.STOPPED

    def _give_up(self, error: Exception) -> None:
        self._publish(EventKind.INTENSITY_EXCEEDED, self.path, reason=error)
        self._terminate_all()
        raise error

    # -- stopping -------------------------------------------------------------

    def _terminate_all(self) -> None:
        if self._terminated:
            return
        with self._gate:
            self._terminated = True
        self._stop_all_children()

    def _take_over(self) -> None:
        """This supervisor was killed or abandoned by its parent: stop its
        children from the caller's thread all the same, in reverse order, each
        with its own shutdown (abandoning what will not stop), and report each.

        Its own thread may be busy (restarting a group, waiting for a child):
        from now on it starts nothing, and a stop it had begun is waited for
        here too, so when this returns none of its children is running.
        """
        with self._gate:
            self._terminated = True
        self._stop_all_children()

    def _interrupt_start(self) -> None:
        """A stop is asked for from another thread (`Tree.request_stop`): if this
        supervisor's thread waits for a child's on_start (a restart), that child
        is stopped as its shutdown says, so the wait, and the stop queued behind
        it, end in bounded time: stopped once its on_start returns, or abandoned
        after its shutdown (a nested supervisor still starting: at once, its own
        children stopped from a thread of their own). Nothing more restarts."""
        with self._gate:
            self._stop_asked = True
            starting = self._starting
        if starting is None:
            return
        child, actor = starting
        if isinstance(actor, Supervisor) and not actor._hr_started.is_set():
            actor._hr_begin_stop(0.0, self.clock)
        else:
            actor._hr_begin_stop(child.spec.shutdown_timeout, self.clock)

        def end() -> None:
            if actor._hr_await_end(self.clock) == KILLED and isinstance(actor, Supervisor):
                actor._take_over()

        name = f"hedgerow stop {child.ref.path}#{actor.actor_incarnation}"
        threading.Thread(target=end, name=name, daemon=True).start()

    def _cancel_start(self) -> None:
        """The root's start is cancelled (from the starting thread): it starts
        nothing more, runs no on_stop, and what had started is stopped from
        the caller's thread, in reverse order, each with its own shutdown."""
        self._hr_abandon()
        self._take_over()

    def _stop_all_children(self) -> None:
        children = list(self._children)
        for child in children:
            self._cancel_restart(child)
        self._terminate(reversed(children), parallel=self._simple)
        for child in children:
            child.state = ChildState.STOPPED
            child.ref._mark_gone(SHUTDOWN)
            self.names.remove(child.ref)
        self._release(self.path)

    def _terminate(self, children: Iterable[_Child], *, parallel: bool = False) -> None:
        """Stop the children's incarnations (in the order given, or all at once)
        and report each; those that exited already were reported then."""
        ending = []
        for child in children:
            actor = child.ref.incarnation
            if actor is None or actor._hr_child_ref is not child.ref:
                continue
            if parallel:
                self._begin_stop(child, actor)
                ending.append((child, actor))
            else:
                self._end(child, actor)
        for child, actor in ending:
            self._end(child, actor)

    def _begin_stop(self, child: _Child, actor: ActorCore) -> None:
        if child.actor is actor:
            child.actor = None
            child.state = ChildState.STOPPED
        actor._hr_begin_stop(child.spec.shutdown_timeout, self.clock)

    def _end(self, child: _Child, actor: ActorCore) -> None:
        """Stop one incarnation (gracefully within its shutdown, or killed) and
        wait for it; an abandoned supervisor's children are stopped from here."""
        if isinstance(actor, Supervisor) and not actor._hr_started.is_set():
            # Taken over while it starts its own children (a cancelled start):
            # it cannot read a stop before they have all started, so it is
            # abandoned now and its children are stopped from here.
            actor._hr_begin_stop(0.0, self.clock)
        self._begin_stop(child, actor)
        reason = actor._hr_await_end(self.clock)
        if reason == KILLED and isinstance(actor, Supervisor):
            actor._take_over()
        if actor._hr_claim_end_report():
            self._report_terminated(child, actor, reason)

    def _report_terminated(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        if reason == KILLED:
            kind = EventKind.ABANDONED if child.spec.shutdown_timeout != 0.0 else EventKind.STOPPED
            self._publish(kind, child.ref.path, incarnation=actor.actor_incarnation, reason=KILLED)
            return
        # Stopped as asked (shutdown), or exited by itself meanwhile: its own reason.
        self._report_exit(child, actor, reason)

    # -- helpers --------------------------------------------------------------

    def _find(self, child_id: str) -> _Child | None:
        for child in self._children:
            if child.id == child_id:
                return child
        return None

    def _lookup(self, child: str | ChildRef[Any], call: str) -> _Child:
        if self._simple and (call != "stop_child" or not isinstance(child, ChildRef)):
            raise NotAllowedForSimpleOneForOne(child, call)
        if isinstance(child, ChildRef):
            for record in self._children:
                if record.ref is child:
                    return record
            raise ChildNotFound(child.path)
        found = self._find(child)
        if found is None:
            raise ChildNotFound(child)
        return found

    def _publish(self, kind: EventKind, path: str, **details: Any) -> None:
        self.events.publish(kind, path, self.clock.now(), **details)
