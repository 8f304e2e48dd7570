"""What a chaos run records as it goes, and the report made of it.

The report counts faults by kind, restarts per child, recovery times (from a
fault to the child serving again: its next start, its next handled message, or
the release of a hang, whichever comes first), and messages sent, handled,
dead-lettered and lost, counted through the tree's hooks: a message is lost if
it was put in a child's inbox and neither handled nor reported as a dead letter
(nor taken back by its cancelled asker: withdrawn).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from hedgerow._events import Event, EventKind
from hedgerow.actors._reason import describe, is_normal
from hedgerow.supervision._spec import SupervisorSpec
from hedgerow.testing._chaos_plan import ChaosKind, ChaosOptions, PlannedFault
from hedgerow.testing._faults import Fault, FaultKind, FaultRecord

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from hedgerow._exceptions import StartError

__all__ = ["ChaosReport", "ChaosRun", "Messages", "Recovery", "make_report"]


@dataclass(frozen=True)
class Recovery:
    """Recovery times in seconds of the tree's clock (None without samples)."""

    count: int
    p50: float | None
    p99: float | None
    max: float | None
    unrecovered: int


@dataclass(frozen=True)
class Messages:
    sent: int
    handled: int
    dead_lettered: int
    lost: int
    withdrawn: int = 0
    """Asks taken back out of an inbox by their cancelled askers: not lost."""


@dataclass(frozen=True)
class ChaosReport:
    """What a chaos run did and how the tree coped. `clean`: nothing lost, the root
    kept going, no thread of the tree left over."""

    file: str
    seed: int
    duration: float
    clock: str
    elapsed: float
    """Seconds of the tree's clock the run lasted."""
    real_seconds: float
    ended: str
    """``duration``, ``stopped`` (the tree ended by itself), ``gave_up`` or ``start_failed``."""
    gave_up: bool
    reason: str | None
    planned: int
    not_reached: int
    """Planned after the tree had ended."""
    injected: dict[str, int]
    skipped: dict[str, int]
    """Attempted without effect: the child was not running, or a trigger never came."""
    restarts: dict[str, int]
    recovery: Recovery
    messages: Messages
    schedule: list[PlannedFault] = field(default_factory=list)
    leftover_threads: list[str] = field(default_factory=list)
    """Threads of the tree still alive once the run's clock was closed and
    `LEFTOVER_GRACE` had passed: the names of its children's threads (an
    abandoned child still in its handler), and any thread that would keep the
    process from exiting. Empty in a clean run."""

    @property
    def clean(self) -> bool:
        return self.messages.lost == 0 and not self.gave_up and not self.leftover_threads

    def to_data(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        data = asdict(self)
        data["schedule"] = [
            {"time": f.time, "kind": f.kind.value, "path": f.path} for f in self.schedule
        ]
        data["clean"] = self.clean
        return data


class ChaosRun:
    """One chaos run's bookkeeping: a timeline of fault firings and "serving" marks."""

    def __init__(self, seed: int = 0, root: str = "root") -> None:
        self.root = root
        self.timeline: list[tuple[str, str, float]] = []
        self.events: list[Event] = []
        self.made: dict[int, tuple[ChaosKind, Fault]] = {}
        self.fired_at_end: dict[int, int] = {}
        """How many times each made fault had fired when the run ended."""
        self.skipped: Counter[str] = Counter()
        self.attempted = 0
        self.picks = random.Random(seed)  # noqa: S311 - reproducible picks, not a secret
        """Picks the dynamic child a pattern's fault hits (used in schedule order)."""
        self.finished = threading.Event()
        self.end_time: float | None = None
        self.root_reason: Any = None
        """The root's exit reason if the tree ended by itself, else None."""
        self.on_finish: Callable[[], None] = lambda: None
        self._lock = threading.RLock()

    def finish(self, when: float, root_reason: Any = None) -> None:
        """The run ends now (its duration is up, or the root has ended): nothing
        after this is recorded. Called once quiescent (a timer of the run's clock)
        or from the root's last event; only the first call counts."""
        with self._lock:
            if self.finished.is_set():
                return
            self.end_time = when
            self.root_reason = root_reason
            self.fired_at_end = {key: fault.fired for key, (_, fault) in self.made.items()}
            self.finished.set()
        self.on_finish()

    def fired(self, record: FaultRecord) -> None:
        with self._lock:
            if record.kind is not FaultKind.SLOW and not self.finished.is_set():
                self.timeline.append(("fault", record.path, record.time))

    def handled(self, path: str, when: float) -> None:
        with self._lock:
            if not self.finished.is_set():
                self.timeline.append(("serving", path, when))

    def event(self, event: Event) -> None:
        with self._lock:
            if self.finished.is_set():
                return
            self.events.append(event)
            if event.kind in (EventKind.STARTED, EventKind.RESTARTED):
                self.timeline.append(("serving", event.path, event.time))
        if event.path == self.root and event.kind in (EventKind.STOPPED, EventKind.FAILED):
            self.finish(event.time, event.reason)

    def recovery(self) -> Recovery:
        samples: list[float] = []
        unrecovered = 0
        timeline = list(self.timeline)
        for index, (what, path, when) in enumerate(timeline):
            if what != "fault":
                continue
            later = (t for w, p, t in timeline[index + 1 :] if w == "serving" and p == path)
            back = next(later, None)
            if back is None:
                unrecovered += 1
            else:
                samples.append(max(back - when, 0.0))
        samples.sort()
        if not samples:
            return Recovery(0, None, None, None, unrecovered)
        return Recovery(
            len(samples), _rank(samples, 0.5), _rank(samples, 0.99), samples[-1], unrecovered
        )


def _rank(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of sorted samples."""
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def make_report(
    source: str | Path | SupervisorSpec,
    options: ChaosOptions,
    schedule: list[PlannedFault],
    run: ChaosRun,
    *,
    root: Any,
    start_error: StartError | None,
    began: float,
    elapsed: float,
    counts: Any,
) -> ChaosReport:
    injected: Counter[str] = Counter()
    for key, (kind, _fault) in run.made.items():
        fired = run.fired_at_end.get(key, 0)
        if kind is ChaosKind.FLAKY:
            injected[kind.value] += fired
        elif fired:
            injected[kind.value] += 1
        else:
            run.skipped[kind.value] += 1  # armed, never triggered
    restarts = Counter(e.path for e in run.events if e.kind is EventKind.RESTARTED)
    # Counted per message by Faults: the dead letters of messages it counted as sent.
    sent = counts.sent if counts is not None else 0
    handled = counts.handled if counts is not None else 0
    dead = counts.dead_lettered if counts is not None else 0
    withdrawn = counts.withdrawn if counts is not None else 0
    if start_error is not None:
        ended, gave_up, reason = "start_failed", True, str(start_error)
    elif root is None:
        ended, gave_up, reason = "duration", False, None
    else:
        gave_up = isinstance(root, BaseException) and not _is_shutdown(root)
        ended, reason = ("gave_up" if gave_up else "stopped"), describe(root)
    file = str(source) if not isinstance(source, SupervisorSpec) else "<spec>"
    return ChaosReport(
        file=file,
        seed=options.seed,
        duration=options.duration,
        clock="real" if options.real_time else "virtual",
        elapsed=round(elapsed, 6),
        real_seconds=round(time.perf_counter() - began, 3),
        ended=ended,
        gave_up=gave_up,
        reason=reason,
        planned=len(schedule),
        not_reached=len(schedule) - run.attempted,
        injected=dict(sorted(injected.items())),
        skipped=dict(sorted(run.skipped.items())),
        restarts=dict(sorted(restarts.items())),
        recovery=run.recovery(),
        messages=Messages(sent, handled, dead, sent - handled - dead - withdrawn, withdrawn),
        schedule=schedule,
    )


def _is_shutdown(reason: Any) -> bool:
    return bool(is_normal(reason))
