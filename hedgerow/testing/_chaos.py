"""The chaos engine: run a tree file under a seeded random fault schedule, and report.

The schedule (`hedgerow.testing._chaos_plan`) depends only on the seed, the
options and the tree file's children, so the same seed and file give the same
schedule; the report (`hedgerow.testing._chaos_report`) says what the run did
and how the tree coped.

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
"""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from hedgerow._clock import MonotonicClock
from hedgerow._events import EventStream
from hedgerow._exceptions import StartError
from hedgerow.actors._actor import ACTOR_THREAD_PREFIX
from hedgerow.node._treeload import load_tree
from hedgerow.supervision._spec import SupervisorSpec
from hedgerow.supervision._tree import start_tree
from hedgerow.testing._chaos_plan import (
    DYNAMIC,
    ChaosKind,
    ChaosOptions,
    PlannedFault,
    child_paths,
    plan_faults,
    resolve_path,
)
from hedgerow.testing._chaos_report import ChaosReport, ChaosRun, make_report
from hedgerow.testing._clock import VirtualClock
from hedgerow.testing._faults import Fault, Faults

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
    # (Driving hedgerow's loop: event-loop actors' own timers are virtual too.)
    clock: Clock = (
        MonotonicClock() if options.real_time else VirtualClock(autojump_threshold=0, drive=True)
    )
    run = ChaosRun(options.seed, name)
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
            return make_report(
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
    report = make_report(
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


def _inject(faults: Faults, run: ChaosRun, options: ChaosOptions, planned: PlannedFault) -> None:
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
