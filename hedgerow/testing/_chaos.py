"""The chaos engine: run a tree file under a seeded random fault schedule, and report.

The schedule depends only on the seed, the options and the tree file's
children (never on how the run goes), so the same seed and file give the same
schedule. A simple_one_for_one supervisor's template names no running child:
its children are started later, as ``<template id>-1``, ``-2``... So the
schedule names them by a pattern (``root/pool/conn-*``), and a fault planned
there hits one of the children the pattern matches when it is due (picked
with a generator seeded by the seed), or is skipped if there are none.

By default the tree runs on a `VirtualClock` with autojump: a minute of
chaos takes the real time its actors need to do their work, no more.

In virtual time the same seed and file give the same report; only
`real_seconds` differs. That rests on four rules: no time passes until the
faults are plugged in and planned (`VirtualClock.settling`); timers run one at a
time, each once the actors are idle, so what a fault meets does not depend on
thread timing; the run ends at `duration` or when the root ends, and the report
is cut there (events, fault firings and recovery marks after it, the
shutdown's included, are left out, messages sent after it are not counted, and
time stops with a tree that ended); at a `duration` end the faults are all
disarmed before any held child is released, and the tree is stopped once those
children have settled. Two things are outside those rules: a start that waits
for its clock (a component retrying its first join) lets time move after
`SETTLE_PATIENCE` real seconds of idleness, and actors that race each other at
one virtual instant (two senders to one child) keep their real-time order. In
real time (`real_time=True`) nothing is promised beyond the schedule.

The report counts faults by kind, restarts per child, recovery times (from a
fault to the child serving again: its next start, its next handled message, or
the release of a hang, whichever comes first), and messages sent, handled,
dead-lettered and lost, counted through the tree's hooks: a message is lost if
it was put in a child's inbox and neither handled nor reported as a dead letter.
"""

from __future__ import annotations

import contextlib
import enum
import fnmatch
import math
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from hedgerow._clock import MonotonicClock
from hedgerow._events import Event, EventKind, EventStream
from hedgerow._exceptions import StartError
from hedgerow.actors._actor import ACTOR_THREAD_PREFIX
from hedgerow.actors._reason import describe, is_normal
from hedgerow.supervision._spec import Strategy, SupervisorSpec
from hedgerow.supervision._tree import start_tree
from hedgerow.supervision._treefile import load_tree
from hedgerow.testing._clock import VirtualClock
from hedgerow.testing._faults import Fault, FaultError, FaultKind, FaultRecord, Faults

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from hedgerow._clock import Clock

__all__ = [
    "DYNAMIC",
    "ChaosKind",
    "ChaosOptions",
    "ChaosReport",
    "PlannedFault",
    "child_paths",
    "plan_faults",
    "resolve_path",
    "run_chaos",
]

STOP_TIMEOUT = 60.0
LEFTOVER_GRACE = 5.0
"""Real seconds the tree's threads get to end once its run is over (an abandoned
child finishing a late handler) before the report counts them as left over."""
"""Real seconds to wait for the tree to stop at the end of a run."""


class ChaosKind(enum.Enum):
    """The faults a chaos run draws from."""

    CRASH = "crash"
    """Crash the child now."""
    CRASH_MESSAGE = "crash_message"
    """Crash it at one of its next five messages."""
    FLAKY = "flaky"
    """Crash it with `flaky_probability` per message, for `window` seconds."""
    FAIL_START = "fail_start"
    """Make its next start fail."""
    HANG = "hang"
    """Hang it for `hang_time` seconds."""
    SLOW = "slow"
    """Delay each of its messages by `slow_delay`, for `window` seconds."""
    EXIT = "exit"
    """Stop it normally."""
    SHUTDOWN = "shutdown"
    """Stop it with a `hedgerow.Shutdown` reason."""


@dataclass(frozen=True)
class ChaosOptions:
    """How a chaos run goes; times are seconds of the tree's clock."""

    seed: int = 0
    duration: float = 30.0
    rate: float = 0.5
    """Faults per second, on average (their arrivals are a Poisson process)."""
    kinds: tuple[ChaosKind, ...] = tuple(ChaosKind)
    targets: tuple[str, ...] = ()
    """Globs of the child paths to hit (``root/pipeline/*``); empty: every child."""
    hang_time: float = 1.0
    slow_delay: float = 0.1
    window: float = 2.0
    flaky_probability: float = 0.3
    real_time: bool = False
    """Run on the real clock instead of a virtual one (the run then takes `duration`)."""

    def check(self) -> None:
        """Raise ValueError naming the first option out of range."""
        for name in ("duration", "rate"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                msg = f"{name}={value!r}: expected a number > 0"
                raise ValueError(msg)
        for name in ("hang_time", "slow_delay", "window"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                msg = f"{name}={value!r}: expected a number >= 0"
                raise ValueError(msg)
        if not 0 <= self.flaky_probability <= 1:
            msg = f"flaky_probability={self.flaky_probability!r}: expected a number within [0, 1]"
            raise ValueError(msg)
        if not self.kinds:
            msg = "kinds: expected at least one fault kind"
            raise ValueError(msg)


@dataclass(frozen=True)
class PlannedFault:
    """One fault of the schedule: when (from the start), what, where.

    `path` is a child's path, or the pattern of a simple_one_for_one
    supervisor's dynamic children (``root/pool/conn-*``; see `DYNAMIC`).
    """

    time: float
    kind: ChaosKind
    path: str
    at_message: int = 1


DYNAMIC = "-*"
"""The suffix of a path pattern that stands for a simple_one_for_one supervisor's
dynamic children: ``<supervisor path>/<template id>-*``."""


def child_paths(spec: SupervisorSpec, prefix: str) -> list[str]:
    """The paths a chaos run can hit, in start order: each static child, and for a
    simple_one_for_one supervisor the pattern of its dynamic children (never the
    template's own path, which no child has)."""
    paths: list[str] = []
    dynamic = spec.strategy is Strategy.SIMPLE_ONE_FOR_ONE
    for child in spec.children:
        path = f"{prefix}/{child.id}{DYNAMIC if dynamic else ''}"
        paths.append(path)
        if isinstance(child.start, SupervisorSpec):
            paths.extend(child_paths(child.start, path))
    return paths


def _is_pattern(path: str) -> bool:
    return f"{DYNAMIC}/" in f"{path}/"


def _same_depth(a: str, b: str) -> bool:
    return a.count("/") == b.count("/")


def _targeted(path: str, targets: tuple[str, ...]) -> bool:
    """True if a target glob matches `path`; for a pattern, also if a target names
    one of the children it stands for (``root/pool/conn-2``)."""
    for target in targets:
        if fnmatch.fnmatchcase(path, target):
            return True
        if _is_pattern(path) and _same_depth(path, target) and fnmatch.fnmatchcase(target, path):
            return True
    return False


def resolve_path(
    path: str, running: list[str], targets: tuple[str, ...], rng: random.Random
) -> str:
    """The child a planned fault hits: `path` itself, or for a pattern one of the
    `running` paths it matches (and the targets, if any), picked by `rng`.

    Raises `FaultError` if a pattern matches no child now.
    """
    if not _is_pattern(path):
        return path
    matching = [
        p
        for p in running
        if _same_depth(p, path)
        and fnmatch.fnmatchcase(p, path)
        and (not targets or any(fnmatch.fnmatchcase(p, t) for t in targets))
    ]
    if not matching:
        msg = f"{path}: no dynamic child is running to take the fault"
        raise FaultError(msg)
    return rng.choice(sorted(matching))


def plan_faults(spec: SupervisorSpec, options: ChaosOptions, name: str) -> list[PlannedFault]:
    """The fault schedule for `spec`: a function of the seed, the options and the
    spec's children only (see `child_paths`). ValueError if no child matches the
    targets."""
    options.check()
    paths = child_paths(spec, name)
    if options.targets:
        paths = [p for p in paths if _targeted(p, options.targets)]
    if not paths:
        targets = ", ".join(options.targets) or "(all)"
        msg = f"targets {targets}: no child of the tree matches"
        raise ValueError(msg)
    rng = random.Random(options.seed)  # noqa: S311 - a reproducible schedule, not a secret
    kinds = list(options.kinds)
    schedule: list[PlannedFault] = []
    when = 0.0
    while True:
        when += rng.expovariate(options.rate)
        if when >= options.duration:
            return schedule
        kind = rng.choice(kinds)
        path = rng.choice(paths)
        schedule.append(PlannedFault(round(when, 6), kind, path, rng.randint(1, 5)))


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


class _Run:
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


def run_chaos(
    source: str | Path | SupervisorSpec,
    options: ChaosOptions,
    *,
    progress: Callable[[float], None] | None = None,
) -> ChaosReport:
    """Run the tree of `source` (a tree file or a spec) under chaos; its report.

    Raises `ConfigError` for a bad tree file and ValueError for bad options or
    targets; a tree that fails to start is a report with ``ended="start_failed"``.
    `progress(elapsed)` is called from this thread as the tree's clock moves.
    """
    options.check()
    spec = source if isinstance(source, SupervisorSpec) else load_tree(source)
    name = spec.name or "root"
    schedule = plan_faults(spec, options, name)
    clock: Clock = MonotonicClock() if options.real_time else VirtualClock(autojump_threshold=0)
    run = _Run(options.seed, name)
    events = EventStream()
    events.subscribe(run.event)
    threads_before = set(threading.enumerate())
    began = time.perf_counter()
    # No time moves until the faults are plugged in and planned: in virtual time the
    # run then starts from the same point every time (see VirtualClock.settling).
    with clock.settling() if isinstance(clock, VirtualClock) else contextlib.nullcontext():
        try:
            tree = start_tree(
                spec,
                name=name,
                clock=clock,
                events=events,
                random=random.Random(options.seed),  # noqa: S311 - reproducible jitter
            )
        except StartError as exc:
            _close(clock)
            return _report(
                source,
                options,
                schedule,
                run,
                root=None,
                start_error=exc,
                began=began,
                elapsed=0.0,
                counts=None,
            )
        faults = Faults(tree, seed=options.seed, on_handled=run.handled, on_fired=run.fired)
        start = clock.now()
        if tree.done:  # it ended while starting, before the run had its hooks in
            run.finish(start, tree.reason)

        def stop_at_the_end() -> None:
            faults.stop_counting()
            if run.root_reason is None:
                # The duration is up (in the clock's thread, the actors idle): undo
                # the faults, then stop the tree once what they held has settled
                # (the next timer runs after quiescence). A tree that ended needs
                # neither.
                faults.clear()
                clock.call_later(0.0, tree.request_stop)
            elif isinstance(clock, VirtualClock):
                clock.autojump_threshold = math.inf  # the tree has ended: time stops too

        run.on_finish = stop_at_the_end
        for planned in schedule:
            faults.at(start + planned.time, _inject, faults, run, options, planned)
        clock.call_later(options.duration, lambda: run.finish(clock.now()))
    try:
        while not run.finished.wait(0.05):
            if progress is not None:
                progress(min(clock.now() - start, options.duration))
        tree.wait(timeout=STOP_TIMEOUT)
        counts = faults.messages
    finally:
        faults.close()
        tree.request_stop()  # if the wait above failed: stop it all the same
        _close(clock)
    leftover = _leftover_threads(threads_before, name)
    if progress is not None:
        progress(options.duration)
    assert run.end_time is not None
    report = _report(
        source,
        options,
        schedule,
        run,
        root=run.root_reason,
        start_error=None,
        began=began,
        elapsed=min(run.end_time - start, options.duration),
        counts=counts,
    )
    return replace(report, leftover_threads=leftover)


def _leftover_threads(before: set[threading.Thread], root: str) -> list[str]:
    """The threads the run started that are still alive after `LEFTOVER_GRACE`:
    its children's (daemon, named for their path) and any non-daemon one."""
    prefix = f"{ACTOR_THREAD_PREFIX}{root}/"
    current = threading.current_thread()
    mine = [
        t
        for t in threading.enumerate()
        if t not in before and t is not current and (not t.daemon or t.name.startswith(prefix))
    ]
    deadline = time.monotonic() + LEFTOVER_GRACE
    for thread in mine:
        thread.join(max(deadline - time.monotonic(), 0.0))
    return sorted(t.name for t in mine if t.is_alive())


def _inject(faults: Faults, run: _Run, options: ChaosOptions, planned: PlannedFault) -> None:
    """Put one planned fault into the tree (on the clock's thread, at its time)."""
    kind = planned.kind
    if run.finished.is_set():
        return  # planned after the tree had ended: not reached
    run.attempted += 1
    try:
        path = resolve_path(planned.path, faults.tree.names.paths(), options.targets, run.picks)
        fault = _make(faults, options, path, planned)
    except Exception:  # noqa: BLE001 - the child is restarting or gone: skip it
        run.skipped[kind.value] += 1
        return
    run.made[id(fault)] = (kind, fault)
    if kind in (ChaosKind.FLAKY, ChaosKind.SLOW):
        faults.after(options.window, fault.cancel)
    elif kind is ChaosKind.HANG:

        def release() -> None:
            # The mark first: once woken, the child may record a fault of its own
            # at this same instant, and the timeline must have them in one order.
            if fault.fired > 0:
                run.handled(path, faults.clock.now())
            fault.cancel()

        faults.after(options.hang_time, release)


def _make(faults: Faults, options: ChaosOptions, path: str, planned: PlannedFault) -> Fault:
    makers: dict[ChaosKind, Callable[[], Fault]] = {
        ChaosKind.CRASH: lambda: faults.crash(path),
        ChaosKind.CRASH_MESSAGE: lambda: faults.crash(path, at_message=planned.at_message),
        ChaosKind.FLAKY: lambda: faults.crash(path, probability=options.flaky_probability),
        ChaosKind.FAIL_START: lambda: faults.fail_starts(path, 1),
        ChaosKind.HANG: lambda: faults.hang(path),
        ChaosKind.SLOW: lambda: faults.slow(path, options.slow_delay),
        ChaosKind.EXIT: lambda: faults.exit(path),
        ChaosKind.SHUTDOWN: lambda: faults.shutdown(path, "chaos"),
    }
    return makers[planned.kind]()


def _close(clock: Clock) -> None:
    if isinstance(clock, (VirtualClock, MonotonicClock)):
        clock.close()


def _report(
    source: str | Path | SupervisorSpec,
    options: ChaosOptions,
    schedule: list[PlannedFault],
    run: _Run,
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
        messages=Messages(sent, handled, dead, sent - handled - dead),
        schedule=schedule,
    )


def _is_shutdown(reason: Any) -> bool:
    return bool(is_normal(reason))
