"""Stopping children: `Terminating`, the part of `Supervisor` that ends incarnations."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from hedgerow._events import EventKind
from hedgerow.actors._reason import KILLED, SHUTDOWN, Reason
from hedgerow.supervision._children import (
    ChildState,
    _Child,
)
from hedgerow.supervision._steps import Steps, WaitEnded, run
from hedgerow.supervision._supervisor_core import SupervisorCore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from hedgerow.actors._actor_core import ActorCore

__all__ = ["Terminating"]


class Terminating(SupervisorCore):
    """How a supervisor stops its children: in reverse order, each within its
    shutdown (or killed), reporting each; and how a parent takes over the stop
    of a supervisor it abandoned."""

    _taken_over = False
    """A parent took this supervisor's stop over: from then on only the take-over
    reports its children's ends, in order. Its own stop (in its thread, which
    outlives its abandonment) still stops and waits for them, reporting none: it
    ran late, it claimed a child's end the take-over waited for, and the
    take-over reported the next child first."""

    # -- stopping -------------------------------------------------------------

    def _terminate_all(self) -> Steps[None]:
        if self._terminated:
            return
        with self._gate:
            self._terminated = True
        yield from self._stop_all_children()

    def _take_over(self) -> Steps[None]:
        """This supervisor was killed or abandoned by its parent: stop its
        children from the caller's thread all the same, in reverse order, each
        with its own shutdown (abandoning what will not stop), and report each.

        Its own thread may be busy (restarting a group, waiting for a child):
        from now on it starts nothing, and a stop it had begun is waited for
        here too, so when this returns none of its children is running.
        Its waits are performed by the caller's runtime (see `_steps`).
        """
        with self._gate:
            self._terminated = True
            self._taken_over = True
        yield from self._stop_all_children(taking_over=True)

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
        if isinstance(actor, Terminating) and not actor._hr_started.is_set():
            actor._hr_begin_stop(0.0, self.clock)
        else:
            actor._hr_begin_stop(child.spec.shutdown_timeout, self.clock)

        def end() -> None:
            if actor._hr_await_end(self.clock) == KILLED and isinstance(actor, Terminating):
                run(actor._take_over())

        name = f"hedgerow stop {child.ref.path}#{actor.actor_incarnation}"
        threading.Thread(target=end, name=name, daemon=True).start()

    def _cancel_start(self) -> None:
        """The root's start is cancelled (from the starting thread): it starts
        nothing more, runs no on_stop, and what had started is stopped from
        the caller's thread, in reverse order, each with its own shutdown."""
        self._hr_abandon()
        run(self._take_over())

    def _stop_all_children(self, *, taking_over: bool = False) -> Steps[None]:
        children = list(self._children)
        for child in children:
            self._cancel_restart(child)
        yield from self._terminate(
            reversed(children), parallel=self._simple, taking_over=taking_over
        )
        for child in children:
            child.state = ChildState.STOPPED
            child.ref._mark_gone(SHUTDOWN)
            self.names.remove(child.ref)
        self._release(self.path)

    def _terminate(
        self, children: Iterable[_Child], *, parallel: bool = False, taking_over: bool = False
    ) -> Steps[None]:
        """Stop the children's incarnations (in the order given, or all at once)
        and report each; those that exited already were reported then. Once
        taken over, only the take-over (`taking_over`) reports them."""
        ending = []
        for child in children:
            actor = child.ref.incarnation
            if actor is None or actor._hr_child_ref is not child.ref:
                continue
            if parallel:
                self._begin_stop(child, actor)
                ending.append((child, actor))
            else:
                yield from self._end(child, actor, taking_over=taking_over)
        for child, actor in ending:
            yield from self._end(child, actor, taking_over=taking_over)

    def _begin_stop(self, child: _Child, actor: ActorCore) -> None:
        if child.actor is actor:
            child.actor = None
            child.state = ChildState.STOPPED
        actor._hr_begin_stop(child.spec.shutdown_timeout, self.clock)

    def _end(self, child: _Child, actor: ActorCore, *, taking_over: bool = False) -> Steps[None]:
        """Stop one incarnation (gracefully within its shutdown, or killed) and
        wait for it; an abandoned supervisor's children are stopped from here."""
        if isinstance(actor, Terminating) and not actor._hr_started.is_set():
            # Taken over while it starts its own children (a cancelled start):
            # it cannot read a stop before they have all started, so it is
            # abandoned now and its children are stopped from here.
            actor._hr_begin_stop(0.0, self.clock)
        self._begin_stop(child, actor)
        reason = yield WaitEnded(actor, self.clock)
        if reason == KILLED and isinstance(actor, Terminating):
            yield from actor._take_over()
        if self._taken_over and not taking_over:
            return  # the take-over reports it, and the children after it, in order
        if actor._hr_claim_end_report():
            self._report_terminated(child, actor, reason)

    def _report_terminated(self, child: _Child, actor: ActorCore, reason: Reason) -> None:
        if reason == KILLED:
            # A thread cannot be killed: one whose stop ran out is abandoned. An
            # event-loop actor's task is cancelled: it is stopped, reason killed.
            abandoned = child.spec.shutdown_timeout != 0.0 and not actor._hr_can_kill
            kind = EventKind.ABANDONED if abandoned else EventKind.STOPPED
            self._publish(kind, child.ref.path, incarnation=actor.actor_incarnation, reason=KILLED)
            return
        # Stopped as asked (shutdown), or exited by itself meanwhile: its own reason.
        self._report_exit(child, actor, reason)
