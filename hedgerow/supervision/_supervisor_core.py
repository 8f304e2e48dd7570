"""The base of `Supervisor`: its state, and the child bookkeeping its parts share
(finding, removing and reporting children, cancelling a scheduled restart).
"""

from __future__ import annotations

import itertools
import random as _random
import threading
from typing import TYPE_CHECKING, Any

from hedgerow._clock import default_clock
from hedgerow._events import EventKind, EventStream
from hedgerow._exceptions import (
    ChildNotFound,
    NotAllowedForSimpleOneForOne,
    Shutdown,
)
from hedgerow.actors._actor_core import ActorCore
from hedgerow.actors._messages import _Internal
from hedgerow.actors._names import Names
from hedgerow.actors._reason import SHUTDOWN, Reason, is_normal
from hedgerow.actors._ref import ChildRef, TreeHooks
from hedgerow.actors._registry import index_registry
from hedgerow.supervision._children import (
    ChildState,
    _Child,
)
from hedgerow.supervision._intensity import RestartIntensity
from hedgerow.supervision._spec import (
    Strategy,
    SupervisorSpec,
)

if TYPE_CHECKING:
    from hedgerow._clock import Clock

__all__ = ["SupervisorCore"]


class SupervisorCore(ActorCore):
    """A supervisor's state and the bookkeeping every part of it uses (see `Supervisor`).

    It and its parts (`Terminating`, `Starting`, `Restarting`) do not depend on
    the runtime: `Supervisor` runs them in a thread, `LoopSupervisor` on an
    event loop (see `hedgerow.supervision._steps`)."""

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
        index_registry()  # many children: O(1) unregisters (see hedgerow.actors._registry)
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
        self._settings: tuple[Any, ...] | None = None
        """The last child spec's (supervisor spec, child spec, inbox, backoff) settings."""
        self._dead_letters = self._dead_letter
        """What its children's refs report their dead letters to (one bound method for all)."""
        self._gate = threading.Lock()
        """Orders starting an incarnation against `_terminated` being set from
        another thread (a parent taking over an abandoned supervisor's stop)."""

    def __str__(self) -> str:
        return f"Supervisor ({self.path})"

    def _release(self, path: str) -> None:
        """Dead-letter what waits for children below `path` that never started."""
        for ref in self.names.release_under(path):
            ref._mark_gone(SHUTDOWN)

    def _check_not_abandoned(self) -> None:
        if self._hr_abandoned:
            msg = f"{self} was abandoned by its parent: it starts nothing more"
            raise Shutdown(msg)

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

    def _cancel_restart(self, child: _Child) -> None:
        timer = child.timer
        child.timer = None
        # Members of a group restart share one timer: keep it for the others.
        if timer is not None and not any(c.timer is timer for c in self._children):
            timer.cancel()
        if child.state is ChildState.RESTARTING:
            child.state = ChildState.STOPPED

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
        self.events.publish_if_seen(kind, path, self.clock.now(), **details)
