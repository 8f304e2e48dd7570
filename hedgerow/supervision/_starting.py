"""Starting children: `Starting`, the part of `Supervisor` that names children and
starts their incarnations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykka._envelope import Envelope

from hedgerow._events import EventKind
from hedgerow._exceptions import (
    Shutdown,
)
from hedgerow.actors._actor_core import STARTED, ActorCore
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._reason import KILLED, Reason
from hedgerow.actors._spawn import build, launch
from hedgerow.supervision._children import (
    ChildState,
    _Child,
    _ChildExited,
)
from hedgerow.supervision._spec import (
    ChildSpec,
    Strategy,
    SupervisorSpec,
)
from hedgerow.supervision._steps import Steps, WaitStarted
from hedgerow.supervision._termination import Terminating

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType

    from hedgerow._events import FailureTrace
    from hedgerow.actors._ref import ChildRef

__all__ = ["Starting"]

_no_info = ActorCore.actor_info
"""The default `actor_info` (None): a start does not call it."""


class Starting(Terminating):
    """How a supervisor starts one incarnation of a child and waits for its ``on_start``."""

    if TYPE_CHECKING:  # what `SupervisorBase` provides

        def _child_ref(self, spec: ChildSpec, path: str) -> ChildRef[Any]:
            """A new stable ref for a child of `spec` at `path`."""

        def _factory(self, child: _Child) -> Callable[..., ActorCore]:
            """What builds `child`'s next incarnation."""

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

    def _new_child(self, spec: ChildSpec, child_id: str | None = None) -> _Child:
        cid = child_id or spec.id
        path = f"{self.path}/{cid}"
        ref = self.names.claim(path) or self._child_ref(spec, path)
        settings = self._settings
        if settings is None or settings[0] is not self.spec or settings[1] is not spec:
            # (The same for every child of a simple_one_for_one template: once.)
            settings = (self.spec, spec, self.spec.inbox_for(spec), self.spec.backoff_for(spec))
            self._settings = settings
        ref._bound_inbox(settings[2])
        interceptor = self.hooks.interceptor
        if interceptor is not None:
            interceptor.child_created(ref)
        self.names.add(ref)
        child = _Child(spec, ref, settings[3], self.random, self)
        child.id = cid
        return child

    def _start_flag(self) -> StopFlag:
        """The flag an incarnation sets once its ``on_start`` is over (a
        supervisor on a loop gives one that wakes it)."""
        return StopFlag()

    def _launch(self, actor: ActorCore) -> None:
        """Start `actor` (under `_gate`): `launch`, unless the runtime has its own way."""
        launch(actor)

    def _launched(self, actor: ActorCore) -> None:
        """After `_launch`, out of `_gate`: a supervisor on a loop may run the
        start of a child of its loop right here (see `LoopSupervisor`)."""

    def _start(self, child: _Child) -> Steps[BaseException | None]:
        """Start one incarnation and wait for its ``on_start``; the error, if any.

        Raises `Shutdown` if this supervisor is abandoned meanwhile: whoever
        took its stop over stops the incarnation, and nothing more starts.
        """
        with self._gate:
            if self._hr_abandoned:
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
                on_exit=child,  # (its record passes both on: no objects per child)
                on_started=child.started,
                started=self._start_flag(),
            )
        except Exception as exc:  # noqa: BLE001 - any constructor error is a start failure
            return self._start_failed(child, exc, exc.__traceback__)
        with self._gate:
            if self._hr_abandoned:
                self._check_not_abandoned()
            self._launch(actor)
            self._starting = (child, actor)
        self._launched(actor)
        try:
            if not actor._hr_started._flag:
                yield WaitStarted(actor)
        finally:
            # (One store: `_interrupt_start` reads it once, under the gate.)
            self._starting = None
        # Nobody else waits for it: drop the Condition the wait may have made.
        actor._hr_started = STARTED
        # (Abandoned meanwhile: the incarnation runs, and its record stays for
        # whoever takes this supervisor's stop over to stop it and report it.)
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

    def _child_started(self, child: _Child, actor: ActorCore) -> None:
        """`actor`'s ``on_start`` is over (in its thread or loop): its event."""
        now = child.started_at = self.clock.now()
        incarnation = actor._hr_incarnation
        kind = EventKind.RESTARTED if incarnation > 1 else EventKind.STARTED
        info = None
        if actor.__class__.actor_info is not _no_info:
            info = actor.actor_info()  # (most have none: not called, a start is faster)
        self.events.publish_if_seen(kind, child.ref.path, now, incarnation=incarnation, info=info)

    def _start_failed(
        self,
        child: _Child,
        error: BaseException,
        tb: TracebackType | None,
        text: str | FailureTrace | None = None,
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

    def _child_exit_notice(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        """An incarnation of `child` exited (in its thread or loop): tell this supervisor."""
        self.actor_inbox.put(Envelope(_ChildExited(child, actor, reason)))
