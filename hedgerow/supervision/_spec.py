"""Child and supervisor specs: what to start, and how to treat its exits.

Specs are plain frozen data, validated when built: every error names the child
id, the field and the bad value. Code builds them directly; tree files build the
same objects.
"""

from __future__ import annotations

import enum
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hedgerow._clock import MAX_DELAY
from hedgerow._exceptions import SpecError
from hedgerow.actors._actor_core import ActorCore
from hedgerow.actors._inbox import DEFAULT_INBOX_TIMEOUT, InboxSettings, Overflow
from hedgerow.supervision._backoff import BackoffSettings

if TYPE_CHECKING:
    from hedgerow.actors._actor import Actor
    from hedgerow.actors._async_actor import AsyncioActor  # typing only: no asyncio at import

__all__ = [
    "BACKOFF_FIELDS",
    "BRUTAL_KILL",
    "INBOX_FIELDS",
    "INFINITY",
    "ChildSpec",
    "Restart",
    "ShutdownPolicy",
    "Strategy",
    "SupervisorSpec",
]

BRUTAL_KILL = "brutal_kill"
"""Stop a child without waiting (a thread child is abandoned at once)."""
INFINITY = "infinity"
"""Wait as long as the child takes to stop (the default for supervisor children)."""

DEFAULT_WORKER_SHUTDOWN = 5.0


class _Choice(enum.Enum):
    """An enum that also accepts the aliases other systems use for its values."""

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {}

    @classmethod
    def parse(cls, value: Any, child_id: str | None, field_name: str) -> Any:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            key = value.strip().lower()
            key = cls._aliases().get(key, key)
            for member in cls:
                if member.value == key:
                    return member
        allowed = sorted({m.value for m in cls} | set(cls._aliases()))
        rule = f"expected one of {', '.join(allowed)}"
        raise SpecError(child_id, field_name, value, rule)


class Restart(_Choice):
    """When a child is restarted: Crossbar's restart modes, OTP's restart types."""

    ALWAYS = "always"
    """Restart on any exit (OTP ``permanent``, Crossbar ``restart-always``)."""
    FAILED = "failed"
    """Restart only after an abnormal exit (OTP ``transient``)."""
    NEVER = "never"
    """Never restart; the spec is dropped when the child exits (OTP ``temporary``)."""

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {
            "restart-always": "always",
            "permanent": "always",
            "restart-failed": "failed",
            "restart-on-failed": "failed",
            "transient": "failed",
            "restart-never": "never",
            "temporary": "never",
        }


class Strategy(_Choice):
    """Which children a supervisor restarts when one of them fails."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    SIMPLE_ONE_FOR_ONE = "simple_one_for_one"

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {m.value.replace("_", "-"): m.value for m in cls}


class ShutdownPolicy(_Choice):
    """When a supervisor shuts itself down: Crossbar's container modes.

    Only `significant` children count, and only exits that the supervisor did
    not order itself (OTP's ``auto_shutdown`` rules).
    """

    MANUAL = "shutdown-manual"
    """Never by itself (OTP ``never``)."""
    ON_ANY_COMPONENT_FAILED = "shutdown-on-any-component-failed"
    """When a significant child exits abnormally; it is not restarted."""
    ON_ANY_COMPONENT_STOPPED = "shutdown-on-any-component-stopped"
    """When a significant child stops for good (OTP ``any_significant``)."""
    ON_LAST_COMPONENT_STOPPED = "shutdown-on-last-component-stopped"
    """When no significant child is left running (OTP ``all_significant``)."""

    @classmethod
    def _aliases(cls) -> Mapping[str, str]:
        return {
            "manual": "shutdown-manual",
            "never": "shutdown-manual",
            "any_significant": "shutdown-on-any-component-stopped",
            "all_significant": "shutdown-on-last-component-stopped",
        }


Shutdown = float | str
Factory = Callable[..., "Actor | AsyncioActor"]
"""What builds a child: an actor of either runtime."""

BACKOFF_FIELDS = (
    "initial_retry_delay",
    "max_retry_delay",
    "retry_delay_growth",
    "retry_delay_jitter",
    "max_retries",
    "retry_reset_after",
)
"""The backoff settings a child spec, or a supervisor spec for its children, may give."""


INBOX_FIELDS = ("max_inbox", "inbox_overflow", "inbox_timeout")
"""The inbox bound a child spec, or a supervisor spec for its children, may give."""

_SECONDS = frozenset(
    {
        "shutdown",
        "period",
        "initial_retry_delay",
        "max_retry_delay",
        "retry_reset_after",
        "inbox_timeout",
    }
)
"""Fields in seconds: at most `MAX_DELAY`, so that no clock is asked to wait longer."""


def _check_number(
    child_id: str | None,
    name: str,
    value: Any,
    *,
    minimum: float,
    strict: bool = False,
    integer: bool = False,
) -> None:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool)
    if ok and not integer:
        try:
            ok = math.isfinite(value)
        except OverflowError:  # an int beyond any float
            ok = False
    if ok:
        ok = value > minimum if strict else value >= minimum
    limit = MAX_DELAY if name in _SECONDS else None
    if ok and limit is not None:
        ok = value <= limit
    if not ok:
        what = "an integer" if integer else "a number"
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        if limit is not None:
            bound += f" and <= {limit:g} (seconds)"
        raise SpecError(child_id, name, value, f"expected {what} {bound}")


@dataclass(frozen=True)
class ChildSpec:
    """One child: what starts it, and how its supervisor treats its exits.

    `start` is a `hedgerow.Actor` or `hedgerow.AsyncioActor` subclass (the
    class decides the child's runtime: a thread, or the shared event loop;
    both may be siblings), a factory that returns a new
    (unstarted) actor, or a `SupervisorSpec` for a nested supervisor. `args`
    and `kwargs` go to it on every start.

    Restarts are immediate, as in OTP: the supervisor's intensity decides when
    to give up. Backoff is opt-in: ``backoff=True``, or any of the backoff
    fields (autobahn's names), turns it on; None inherits the supervisor's
    choice and values (`SupervisorSpec.backoff_for`); ``backoff=False`` turns
    off a supervisor's default. Under backoff the first restart is immediate,
    later ones wait ``initial_retry_delay * retry_delay_growth**n`` (with
    jitter, capped at `max_retry_delay`); once the child stayed up for
    `retry_reset_after` seconds (default: the supervisor's `period`) the next
    restart is immediate again. A child that never stays up that long gives up
    after `max_retries` restarts in a row (default `DEFAULT_MAX_RETRIES`; -1:
    never), and its supervisor escalates as for an exceeded intensity.

    `ask_errors_fail` and `event_errors_fail` choose Erlang's rule (the actor
    fails) over pykka's and autobahn's (the error is reported and the actor
    goes on) for exceptions raised answering an ask, or in a component's
    event handler.

    `max_inbox` bounds the child's inbox (None: unbounded, or the
    supervisor's default): one message more is handled by `inbox_overflow`
    (`Overflow`: ``drop_newest``, the default, ``drop_oldest``, ``fail`` or
    ``block``, whose sender waits up to `inbox_timeout` seconds). What is
    dropped is a dead letter with an `InboxFull` reason. Each setting is the
    child's, else its supervisor's (`SupervisorSpec.inbox_for`). A nested
    supervisor's own inbox is never bounded.
    """

    id: str
    start: type[Actor | AsyncioActor] | Factory | SupervisorSpec
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    restart: Restart | str = Restart.ALWAYS
    shutdown: Shutdown | None = None
    significant: bool = False
    ask_errors_fail: bool = False
    event_errors_fail: bool = False
    backoff: bool | None = None
    initial_retry_delay: float | None = None
    max_retry_delay: float | None = None
    retry_delay_growth: float | None = None
    retry_delay_jitter: float | None = None
    max_retries: int | None = None
    retry_reset_after: float | None = None
    max_inbox: int | None = None
    inbox_overflow: Overflow | str | None = None
    inbox_timeout: float | None = None

    def __post_init__(self) -> None:
        cid = self.id
        if not isinstance(cid, str) or not cid or "/" in cid:
            raise SpecError(None, "id", cid, "expected a non-empty string without '/'")
        object.__setattr__(self, "restart", Restart.parse(self.restart, cid, "restart"))
        object.__setattr__(self, "args", tuple(self.args))
        if not isinstance(self.kwargs, Mapping):
            raise SpecError(cid, "kwargs", self.kwargs, "expected a mapping")
        object.__setattr__(self, "kwargs", dict(self.kwargs))
        self._check_start()
        object.__setattr__(self, "shutdown", self._parse_shutdown())
        if not isinstance(self.significant, bool):
            raise SpecError(cid, "significant", self.significant, "expected true or false")
        if self.significant and self.restart is Restart.ALWAYS:
            rule = "a significant child cannot have restart=always (OTP: permanent)"
            raise SpecError(cid, "significant", self.significant, rule)
        for name in ("ask_errors_fail", "event_errors_fail"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(cid, name, getattr(self, name), "expected true or false")
        if self.event_errors_fail and self.is_supervisor:
            rule = "a supervisor has no event handlers: event_errors_fail is for components"
            raise SpecError(cid, "event_errors_fail", self.event_errors_fail, rule)
        _check_backoff(cid, self)
        _check_inbox(cid, self)

    def _check_start(self) -> None:
        start = self.start
        if isinstance(start, SupervisorSpec):
            return
        if inspect.isclass(start):
            if issubclass(start, ActorCore):  # the class decides its runtime
                return
            rule = (
                "a class to start must subclass hedgerow.Actor (a thread actor)"
                " or hedgerow.AsyncioActor (an event-loop actor)"
            )
            raise SpecError(self.id, "start", start, rule)
        if callable(start):
            return
        rule = (
            "expected a hedgerow.Actor or hedgerow.AsyncioActor subclass,"
            " a factory callable or a SupervisorSpec"
        )
        raise SpecError(self.id, "start", start, rule)

    def _parse_shutdown(self) -> Shutdown:
        value = self.shutdown
        if value is None:
            return INFINITY if self.is_supervisor else DEFAULT_WORKER_SHUTDOWN
        if isinstance(value, str):
            key = value.strip().lower().replace("-", "_")
            if key in (BRUTAL_KILL, INFINITY):
                return key
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            _check_number(self.id, "shutdown", value, minimum=0)
            return float(value)
        rule = "expected seconds >= 0, 'brutal_kill' or 'infinity'"
        raise SpecError(self.id, "shutdown", value, rule)

    @property
    def is_supervisor(self) -> bool:
        return isinstance(self.start, SupervisorSpec)

    @property
    def shutdown_timeout(self) -> float | None:
        """Seconds to wait for a graceful stop: 0 for brutal_kill, None for infinity."""
        if self.shutdown == BRUTAL_KILL:
            return 0.0
        if self.shutdown == INFINITY:
            return None
        return float(self.shutdown)  # type: ignore[arg-type]


SUPERVISOR_RUNTIMES = ("thread", "loop")
"""Where a supervisor runs (`SupervisorSpec.runtime`)."""


@dataclass(frozen=True)
class SupervisorSpec:
    """A supervisor: its children in start order, strategy, intensity and policy.

    ``max_restarts`` restarts within ``period`` seconds are allowed (default 3
    in 5, as Elixir); one more and the supervisor stops its children in reverse
    order and fails, escalating to its parent. `backoff` and the backoff fields
    are defaults for its own children (not its grandchildren), which a child's
    spec overrides field by field (see `ChildSpec`). So are `max_inbox`,
    `inbox_overflow` and `inbox_timeout` (see `inbox_for`).

    `runtime` is where the supervisor itself runs: ``"thread"`` (the default,
    a `hedgerow.Supervisor` on a thread of its own) or ``"loop"`` (a
    `hedgerow.LoopSupervisor` on the event loop of the tree's event-loop
    actors: no thread, and no thread hop to start or stop a child of that
    loop). Both supervise children of either runtime, with the same semantics.
    """

    children: Sequence[ChildSpec] = ()
    strategy: Strategy | str = Strategy.ONE_FOR_ONE
    max_restarts: int = 3
    period: float = 5.0
    shutdown_policy: ShutdownPolicy | str = ShutdownPolicy.MANUAL
    name: str | None = None
    backoff: bool | None = None
    initial_retry_delay: float | None = None
    max_retry_delay: float | None = None
    retry_delay_growth: float | None = None
    retry_delay_jitter: float | None = None
    max_retries: int | None = None
    retry_reset_after: float | None = None
    max_inbox: int | None = None
    inbox_overflow: Overflow | str | None = None
    inbox_timeout: float | None = None
    runtime: str = "thread"

    def __post_init__(self) -> None:
        name = self.name
        if self.runtime not in SUPERVISOR_RUNTIMES:
            rule = "expected 'thread' or 'loop' (where the supervisor runs)"
            raise SpecError(name, "runtime", self.runtime, rule)
        object.__setattr__(self, "strategy", Strategy.parse(self.strategy, name, "strategy"))
        policy = ShutdownPolicy.parse(self.shutdown_policy, name, "shutdown_policy")
        object.__setattr__(self, "shutdown_policy", policy)
        _check_number(name, "max_restarts", self.max_restarts, minimum=0, integer=True)
        _check_number(name, "period", self.period, minimum=0, strict=True)
        _check_backoff(name, self)
        _check_inbox(name, self)
        if isinstance(self.children, (str, bytes)) or not isinstance(self.children, Sequence):
            raise SpecError(name, "children", self.children, "expected a list of ChildSpec")
        object.__setattr__(self, "children", tuple(self.children))
        seen: set[str] = set()
        for index, child in enumerate(self.children):
            if not isinstance(child, ChildSpec):
                raise SpecError(name, f"children[{index}]", child, "expected a ChildSpec")
            if child.id in seen:
                raise SpecError(child.id, "id", child.id, "duplicate child id")
            seen.add(child.id)
            self.check_child(child)
        if self.strategy is Strategy.SIMPLE_ONE_FOR_ONE:
            if len(self.children) != 1:
                rule = "simple_one_for_one needs exactly one child spec (the template)"
                raise SpecError(name, "children", len(self.children), rule)
            if self.shutdown_policy is not ShutdownPolicy.MANUAL:
                rule = "simple_one_for_one supervisors take only shutdown-manual (as OTP)"
                raise SpecError(name, "shutdown_policy", policy.value, rule)

    def check_child(self, child: ChildSpec) -> None:
        """Rules that depend on the supervisor: significant needs a shutdown policy."""
        if child.significant and self.shutdown_policy is ShutdownPolicy.MANUAL:
            rule = "significant children need a shutdown policy other than shutdown-manual"
            raise SpecError(child.id, "significant", child.significant, rule)

    @property
    def backoff_defaults(self) -> dict[str, Any]:
        """The backoff settings this spec gives its children, by name (those set)."""
        names = ("backoff", *BACKOFF_FIELDS)
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def backoff_for(self, child: ChildSpec) -> BackoffSettings | None:
        """The backoff `child` restarts with under this supervisor; None: restart at once.

        Each setting is the child's, else this supervisor's, else the default
        (`BackoffSettings`; `retry_reset_after` defaults to `period`).
        """
        enabled = _asks_for_backoff(child)
        if enabled is None:
            enabled = _asks_for_backoff(self)
        if not enabled:
            return None
        values: dict[str, Any] = {"retry_reset_after": self.period}
        for name in BACKOFF_FIELDS:
            value = getattr(child, name)
            if value is None:
                value = getattr(self, name)
            if value is not None:
                values[name] = value
        return BackoffSettings(**values)

    def inbox_for(self, child: ChildSpec) -> InboxSettings | None:
        """The inbox bound of `child` under this supervisor; None: unbounded.

        Each setting is the child's, else this supervisor's, else the default
        (``drop_newest``; a blocked sender waits `DEFAULT_INBOX_TIMEOUT` s).
        """
        if child.is_supervisor:
            return None
        max_inbox = child.max_inbox if child.max_inbox is not None else self.max_inbox
        if max_inbox is None:
            return None
        overflow = child.inbox_overflow or self.inbox_overflow or Overflow.DROP_NEWEST
        timeout = child.inbox_timeout
        if timeout is None:
            timeout = self.inbox_timeout
        return InboxSettings(
            max_inbox,
            overflow,  # type: ignore[arg-type]
            DEFAULT_INBOX_TIMEOUT if timeout is None else timeout,
        )


def _check_inbox(owner: str | None, spec: ChildSpec | SupervisorSpec) -> None:
    if isinstance(spec, ChildSpec) and spec.is_supervisor:
        for name in INBOX_FIELDS:
            if getattr(spec, name) is not None:
                rule = (
                    "a supervisor's own inbox is not bounded: set it in its"
                    " SupervisorSpec, as its children's default"
                )
                raise SpecError(owner, name, getattr(spec, name), rule)
    if spec.max_inbox is not None:
        _check_number(owner, "max_inbox", spec.max_inbox, minimum=1, integer=True)
    overflow = spec.inbox_overflow
    if overflow is not None and not isinstance(overflow, Overflow):
        key = overflow.strip().lower().replace("-", "_") if isinstance(overflow, str) else None
        parsed = next((m for m in Overflow if m.value == key), None)
        if parsed is None:
            allowed = ", ".join(sorted(m.value for m in Overflow))
            raise SpecError(owner, "inbox_overflow", overflow, f"expected one of {allowed}")
        object.__setattr__(spec, "inbox_overflow", parsed)
    if spec.inbox_timeout is not None:
        _check_number(owner, "inbox_timeout", spec.inbox_timeout, minimum=0)
        if spec.inbox_overflow not in (None, Overflow.BLOCK):
            rule = "inbox_timeout is only for inbox_overflow=block (how long a sender waits)"
            raise SpecError(owner, "inbox_timeout", spec.inbox_timeout, rule)


def _asks_for_backoff(spec: ChildSpec | SupervisorSpec) -> bool | None:
    """`backoff` as given, else True if a backoff field is set, else None (no opinion)."""
    if spec.backoff is not None:
        return spec.backoff
    for name in BACKOFF_FIELDS:  # a loop, not any(): asked at each start_child
        if getattr(spec, name) is not None:
            return True
    return None


def _check_backoff(owner: str | None, spec: ChildSpec | SupervisorSpec) -> None:
    if spec.backoff is not None and not isinstance(spec.backoff, bool):
        raise SpecError(owner, "backoff", spec.backoff, "expected true or false")
    for name, minimum in (
        ("initial_retry_delay", 0),
        ("max_retry_delay", 0),
        ("retry_delay_growth", 1),
        ("retry_delay_jitter", 0),
        ("retry_reset_after", 0),
    ):
        value = getattr(spec, name)
        if value is not None:
            _check_number(owner, name, value, minimum=minimum)
    if spec.max_retries is not None:
        _check_number(owner, "max_retries", spec.max_retries, minimum=-1, integer=True)
    if spec.backoff is False:
        for name in BACKOFF_FIELDS:
            value = getattr(spec, name)
            if value is not None:
                rule = "backoff=false restarts at once: drop this setting, or backoff=false"
                raise SpecError(owner, name, value, rule)
