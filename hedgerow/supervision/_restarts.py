"""Exits and restarts: `Restarting`, the part of `Supervisor` that decides what a
child's exit leads to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykka._envelope import Envelope

from hedgerow._events import EventKind
from hedgerow._exceptions import (
    IntensityExceeded,
    RetriesExhausted,
    Shutdown,
)
from hedgerow.actors._reason import SHUTDOWN, Reason, is_normal
from hedgerow.supervision._children import (
    ChildState,
    _Child,
    _RestartDue,
)
from hedgerow.supervision._spec import (
    Restart,
    ShutdownPolicy,
    Strategy,
)
from hedgerow.supervision._starting import Starting

if TYPE_CHECKING:
    from hedgerow.actors._actor_core import ActorCore
    from hedgerow.supervision._steps import Steps

__all__ = ["Restarting"]


class Restarting(Starting):
    """How a supervisor handles a child's exit: its restart type, the strategy's
    group, the intensity, the backoff, and the shutdown policy."""

    # -- exits ----------------------------------------------------------------

    def _child_exited(self, child: _Child, actor: ActorCore, reason: Reason) -> Steps[None]:
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
        yield from self._restart(child, self._group(child))

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

    def _restart(self, failed: _Child, group: list[_Child]) -> Steps[None]:
        """Count the restart, stop the group's other members, then start it (maybe later)."""
        if not self._intensity.add_restart():
            yield from self._give_up(
                IntensityExceeded(self.path, failed.id, self.spec.max_restarts, self.spec.period)
            )
        delay = yield from self._backoff_delay(failed)
        others = [c for c in group if c is not failed]
        yield from self._terminate(reversed(others))
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
            yield from self._start_group(restartable)
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

    def _backoff_delay(self, failed: _Child) -> Steps[float]:
        """The wait before restarting `failed`: none without backoff; under backoff,
        give up once it has failed `max_retries` times in a row without staying up."""
        backoff = failed.backoff
        if backoff is None:
            return 0.0
        if failed.incarnation and self.clock.now() - failed.started_at >= failed.reset_after:
            backoff.reset()
        if not backoff.can_retry():
            yield from self._give_up(RetriesExhausted(self.path, failed.id, backoff.max_retries))
        return backoff.next_delay()

    def _restart_due(self, due: _RestartDue) -> Steps[None]:
        group = [c for c in due.group if c.timer is due.timer and c in self._children]
        if not group:
            return
        yield from self._start_group(group)

    def _start_group(self, group: list[_Child]) -> Steps[None]:
        for index, child in enumerate(group):
            child.timer = None
            if child.state is not ChildState.RESTARTING or self._stop_asked:
                continue
            child.restarts += 1
            error = yield from self._start(child)
            if error is not None and not self._stop_asked:
                # A failed restart is retried under the same intensity and backoff.
                yield from self._restart(child, group[index:])
                return

    def _give_up(self, error: Exception) -> Steps[None]:
        self._publish(EventKind.INTENSITY_EXCEEDED, self.path, reason=error)
        yield from self._terminate_all()
        raise error
