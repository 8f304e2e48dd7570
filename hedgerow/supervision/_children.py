"""What a supervisor keeps per child: `_Child`, and what it reports (`ChildState`,
`ChildInfo`, `ChildCounts`); the messages it sends itself about children."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hedgerow.actors._messages import _Internal
from hedgerow.supervision._backoff import Backoff, BackoffSettings

if TYPE_CHECKING:
    import random as _random

    from hedgerow._clock import TimerHandle
    from hedgerow.actors._actor_core import ActorCore
    from hedgerow.actors._reason import Reason
    from hedgerow.actors._ref import ChildRef
    from hedgerow.supervision._spec import ChildSpec, Restart

__all__ = ["ChildCounts", "ChildInfo", "ChildState", "_Child", "_ChildExited", "_RestartDue"]


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


class _Watcher(Protocol):
    """What a child's record tells of its incarnations (its supervisor)."""

    def _child_started(self, child: _Child, actor: ActorCore) -> None: ...

    def _child_exit_notice(self, child: _Child, actor: ActorCore, reason: Reason) -> None: ...


class _Child:
    """The supervisor's record of one child (its spec, ref and current incarnation).

    It is also what each incarnation calls back: ``record(actor, reason)`` when
    it exits (its ``on_exit``) and ``record.started(actor)`` once its
    ``on_start`` is over, passed on to the supervisor (`supervisor`), so that a
    live child costs no callback objects of its own.
    """

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
        "supervisor",
        "timer",
    )

    def __init__(
        self,
        spec: ChildSpec,
        ref: ChildRef[Any],
        backoff: BackoffSettings | None,
        random: _random.Random,
        supervisor: _Watcher,
    ) -> None:
        self.supervisor = supervisor
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

    def __call__(self, actor: ActorCore, reason: Reason) -> None:
        """An incarnation exited (in its thread or loop): tell the supervisor."""
        self.supervisor._child_exit_notice(self, actor, reason)

    def started(self, actor: ActorCore) -> None:
        """An incarnation's ``on_start`` is over (in its thread or loop)."""
        self.supervisor._child_started(self, actor)


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
