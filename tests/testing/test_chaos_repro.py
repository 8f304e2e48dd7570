"""Chaos reports are exact and reproducible, and leave nothing running behind."""

from __future__ import annotations

import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from chaos_tree import tree_file

import hedgerow as hr
from hedgerow.testing import VirtualClock
from hedgerow.testing._chaos import ChaosKind, ChaosOptions, ChaosReport, run_chaos

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def comparable(report: ChaosReport) -> ChaosReport:
    """All of it but the real seconds the run took."""
    return replace(report, real_seconds=0.0)


@pytest.mark.parametrize(
    ("max_restarts", "seed"),
    [
        pytest.param(0, 1, id="the-root-gives-up-early"),
        pytest.param(2, 7, id="the-root-gives-up-late"),
        pytest.param(50, 3, id="runs-the-whole-duration"),
    ],
)
def test_the_same_seed_and_file_give_the_same_report(
    tmp_path, monkeypatch, max_restarts, seed, runtime
):
    path = tree_file(tmp_path, max_restarts=max_restarts, runtime=runtime.name)
    monkeypatch.syspath_prepend(str(tmp_path))
    options = ChaosOptions(seed=seed, duration=20, rate=2)
    first = run_chaos(path, options)
    second = run_chaos(path, options)
    assert comparable(first) == comparable(second)
    if first.ended != "duration":
        # The clock stopped with the tree: the faults planned after it never ran.
        assert first.elapsed < 20
        assert first.not_reached == sum(1 for f in first.schedule if f.time > first.elapsed)


def test_a_run_that_ends_while_children_are_hung_or_slowed_reports_the_same(
    tmp_path, monkeypatch, runtime
):
    """At the end the faults are undone: a slowed child woken then must not meet a
    crash still armed behind its slow fault (that made one message in two runs a
    dead letter instead of handled)."""
    path = tree_file(tmp_path, runtime=runtime.name)
    monkeypatch.syspath_prepend(str(tmp_path))
    kinds = (ChaosKind.HANG, ChaosKind.SLOW, ChaosKind.CRASH_MESSAGE)
    options = ChaosOptions(
        seed=5, duration=10, rate=3, hang_time=6, window=8, slow_delay=0.5, kinds=kinds
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        reports = [comparable(run_chaos(path, options)) for _ in range(4)]
    finally:
        sys.setswitchinterval(interval)
    assert reports[0].injected["slow"] >= 1
    assert all(report == reports[0] for report in reports[1:])


def test_chaos_over_a_ticker_that_sleeps_on_its_loop_runs_in_virtual_time(tmp_path, monkeypatch):
    """The ticker awaits asyncio.sleep between ticks: the run's clock drives the
    loop, so 30 s of ticks take no real time, the same every run."""
    path = tree_file(tmp_path, runtime="loop", ticker="SleepyTicker")
    monkeypatch.syspath_prepend(str(tmp_path))
    options = ChaosOptions(seed=3, duration=30, rate=1)
    first = run_chaos(path, options)
    assert first.ended == "duration"
    assert first.clean
    assert first.messages.lost == 0
    assert first.messages.sent > 100  # a tick every 0.25 s, but for the faults
    assert first.real_seconds < 10
    assert comparable(first) == comparable(run_chaos(path, options))


class Counter(hr.Actor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def on_receive(self, message: Any) -> Any:
        if message == "read":
            return self.count
        self.count += 1
        return None


def test_timers_at_the_same_instant_run_one_at_a_time_once_the_actors_are_idle():
    """The second timer sees what the first one's message did, every run."""
    with VirtualClock(autojump_threshold=0) as clock:
        tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("c", Counter)]), clock=clock)
        try:
            ref = tree.lookup("root/c")
            actor = ref.incarnation
            assert isinstance(actor, Counter)
            seen: list[int] = []
            done = threading.Event()
            for _ in range(5):
                clock.call_later(1.0, ref.tell, "add")
                clock.call_later(1.0, lambda: seen.append(actor.count))
            clock.call_later(1.0, done.set)
            assert done.wait(timeout=30)
            assert seen == [1, 2, 3, 4, 5]
        finally:
            tree.stop(timeout=30)


class Player(hr.Actor):
    """Rallies with its partner from the start, for `rounds` messages."""

    def __init__(self, partner: str, serve: bool, rounds: int) -> None:
        super().__init__()
        self.partner = partner
        self.serve = serve
        self.rounds = rounds

    def on_start(self) -> None:
        if self.serve:
            self.actor_lookup(self.partner).tell(0)

    def on_receive(self, message: Any) -> None:
        if message < self.rounds:
            self.actor_lookup(self.partner).tell(message + 1)


def test_chaos_over_children_already_talking_never_reports_a_negative_loss():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the races hide at the default interval
    try:
        children = []
        for n in range(3):
            # pong starts second, so it serves: the rally is on as the run begins.
            children.append(hr.ChildSpec(f"ping{n}", Player, args=(f"pong{n}", False, 5000)))
            children.append(hr.ChildSpec(f"pong{n}", Player, args=(f"ping{n}", True, 5000)))
        spec = hr.SupervisorSpec(children, max_restarts=100, period=1)
        for seed in range(3):
            kinds = (ChaosKind.CRASH, ChaosKind.EXIT)
            report = run_chaos(spec, ChaosOptions(seed=seed, duration=2, rate=2, kinds=kinds))
            messages = report.messages
            assert report.ended == "duration"
            assert messages.sent > 0
            assert messages.sent == messages.handled + messages.dead_lettered, messages
            assert messages.lost == 0
    finally:
        sys.setswitchinterval(interval)


def new_threads(before: set[threading.Thread]) -> list[str]:
    """Threads started since `before` and still running after a moment to end."""
    started = [t for t in threading.enumerate() if t not in before]
    for thread in started:
        thread.join(timeout=10)
    return [t.name for t in started if t.is_alive()]


def test_a_real_time_run_leaves_no_clock_thread_behind(tmp_path, monkeypatch):
    path = tree_file(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(threading.enumerate())
    report = run_chaos(path, ChaosOptions(seed=1, duration=0.5, rate=4, real_time=True))
    assert report.clock == "real"
    assert new_threads(before) == []


def test_a_run_over_worker_processes_leaves_no_thread_behind(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES / "workers"))
    before = set(threading.enumerate())
    options = ChaosOptions(seed=4, duration=10, rate=3)
    report = run_chaos(EXAMPLES / "workers" / "tree.toml", options)
    assert report.messages.lost == 0
    assert new_threads(before) == []
