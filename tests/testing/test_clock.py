"""The virtual clock's autojump: long timelines in near-zero real time, the same every run."""

from __future__ import annotations

import math
import threading
import time

import pytest
from helpers import Runtime, ran_out, worker

import hedgerow as hr
from hedgerow.testing import EventRecorder, TreeFactory, VirtualClock


def backoff_spec() -> hr.SupervisorSpec:
    child = worker("w", initial_retry_delay=1.0, retry_delay_growth=2.0, retry_delay_jitter=0.0)
    return hr.SupervisorSpec([child], max_restarts=10, period=3600)


def test_five_restarts_with_exponential_backoff_take_no_real_time(
    hedgerow_tree_factory, hedgerow_recorder, hedgerow_clock, runtime
):
    began = time.perf_counter()
    hedgerow_tree_factory(backoff_spec())
    faults = hedgerow_tree_factory.faults()
    faults.fail_starts("root/w", 4)
    faults.crash("root/w")
    hedgerow_recorder.wait_restarted("root/w")
    elapsed = time.perf_counter() - began
    delays = [e.delay for e in hedgerow_recorder.matching("restart_scheduled")]
    assert delays == [2.0, 4.0, 8.0, 16.0]
    assert hedgerow_recorder.matching("restarted")[0].time == 30.0
    assert hedgerow_clock.now() == 30.0
    assert hedgerow_clock.jumps == 4
    assert elapsed < 1.0


def test_restarts_spaced_wider_than_the_period_never_exceed_the_intensity(
    hedgerow_tree_factory, hedgerow_recorder, runtime
):
    spec = hr.SupervisorSpec([worker("w")], max_restarts=1, period=5)
    tree = hedgerow_tree_factory(spec)
    faults = hedgerow_tree_factory.faults()
    for n in range(1, 6):
        faults.at(6.0 * n, faults.crash, "root/w")
    hedgerow_recorder.wait_restarted("root/w", 5)
    assert not tree.done
    assert [e.time for e in hedgerow_recorder.matching("failed")] == [6, 12, 18, 24, 30]


def test_restarts_inside_the_period_exceed_it(hedgerow_tree_factory, hedgerow_recorder, runtime):
    spec = hr.SupervisorSpec([worker("w")], max_restarts=1, period=5)
    tree = hedgerow_tree_factory(spec)
    faults = hedgerow_tree_factory.faults()
    faults.at(1, faults.crash, "root/w")
    faults.at(4, faults.crash, "root/w")
    gave_up = hedgerow_recorder.wait_gave_up("root")
    assert gave_up.time == 4
    assert isinstance(tree.wait(timeout=10), hr.IntensityExceeded)


def test_a_hung_child_is_abandoned_after_its_shutdown_timeout_in_virtual_time(
    hedgerow_tree_factory, hedgerow_recorder, hedgerow_clock, runtime
):
    """(An event-loop child is killed then, its hang's await cancelled.)"""
    spec = hr.SupervisorSpec([worker("w", shutdown=600.0)])
    tree = hedgerow_tree_factory(spec)
    kind = ran_out(type(tree.lookup("root/w").incarnation))
    hedgerow_tree_factory.faults().hang("root/w").wait_fired()
    began = time.perf_counter()
    tree.stop(timeout=10)
    assert hedgerow_recorder.wait_for(kind, "root/w").time == 600.0
    assert time.perf_counter() - began < 1.0


class Ticker(hr.Actor):
    """Tells `target` a numbered tick every `interval`, for ever."""

    def __init__(self, target: str, interval: float) -> None:
        super().__init__()
        self.target_id = target
        self.interval = interval
        self.count = 0

    def on_start(self) -> None:
        self.target = self.actor_lookup(self.target_id)
        self.actor_send_after(self.interval, "tick")

    def on_receive(self, message):
        self.count += 1
        self.target.tell(self.count)
        self.actor_send_after(self.interval, "tick")


def run_once(seed: int, runtime: Runtime) -> tuple[list[dict], list[tuple]]:
    """A ticking tree under seeded faults for 60 virtual seconds: its events and faults."""
    spec = hr.SupervisorSpec(
        [
            worker("sink", initial_retry_delay=0.5, retry_delay_jitter=0.2),
            hr.ChildSpec("ticker", runtime.of(Ticker), kwargs={"target": "sink", "interval": 0.7}),
        ],
        max_restarts=50,
        period=10,
    )
    with VirtualClock(autojump_threshold=0) as clock:
        clock.drive()
        events = hr.EventStream()
        with EventRecorder(events) as recorder:
            factory = TreeFactory(clock, events, seed=seed)
            try:
                # Time stands still until the faults are in: else a jump to the
                # first tick could come first (the test thread is not watched),
                # and `after(20)` would mean 20.7 (seen at switch interval 1e-6
                # with the machine busy).
                with clock.hold():
                    factory(spec)
                    faults = factory.faults()
                    faults.crash("root/sink", probability=0.1)
                    faults.after(20, faults.crash, "root/ticker")
                    faults.after(30, faults.slow, "root/sink", 0.3)
                done = threading.Event()
                clock.call_later(60, done.set)
                assert done.wait(timeout=20)
                # What happened before t=60 is complete: the jump to 60 waited for quiet.
                log = [(r.time, r.kind.value, r.path) for r in faults.log if r.time < 60]
                data = [e for e in recorder.as_data() if e["time"] < 60]
            finally:
                factory.close()
    return data, log


@pytest.mark.usefixtures("no_block_reports")  # a busy machine's reports differ run to run
def test_the_same_seed_gives_the_same_events_and_faults(runtime):
    first = run_once(3, runtime)
    assert first == run_once(3, runtime)
    assert len(first[1]) > 5
    assert first != run_once(4, runtime)


def test_hold_keeps_time_still(hedgerow_clock):
    fired = threading.Event()
    with hedgerow_clock.hold():
        hedgerow_clock.call_later(5, fired.set)
        assert not fired.wait(0.05)
        assert hedgerow_clock.now() == 0
    assert fired.wait(5)
    assert hedgerow_clock.now() == 5


def test_autojump_is_off_by_default_and_can_be_turned_on():
    with VirtualClock() as clock:
        assert math.isinf(clock.autojump_threshold)
        fired = threading.Event()
        clock.call_later(3, fired.set)
        assert not fired.wait(0.05)
        clock.autojump_threshold = 0.01
        assert fired.wait(5)
        assert clock.now() == 3


class Spinner(hr.Actor):
    """Runs Python code (no waiting) until released: a busy handler."""

    def on_receive(self, message):
        entered, release = message
        entered.set()
        while not release.is_set():
            pass


def test_a_busy_actor_holds_time_back(hedgerow_tree_factory, hedgerow_clock, runtime):
    tree = hedgerow_tree_factory(hr.SupervisorSpec([hr.ChildSpec("s", runtime.of(Spinner))]))
    entered, release = threading.Event(), threading.Event()
    fired = threading.Event()
    try:
        tree.lookup("root/s").tell((entered, release))
        assert entered.wait(5)
        hedgerow_clock.call_later(1, fired.set)
        assert not fired.wait(0.05)  # the spinner runs: no jump
    finally:
        release.set()
    assert fired.wait(5)


class Asker(hr.Actor):
    def on_receive(self, message):
        return self.actor_lookup("b").ask(message, timeout=30)


class LoopAsker(hr.AsyncioActor):
    async def on_receive(self, message):
        return await self.actor_lookup("b").ask(message, block=False)


def test_an_actor_waiting_for_an_answer_lets_time_jump(
    hedgerow_tree_factory, hedgerow_clock, runtime
):
    """The asker is blocked on a future (or awaits it, on a loop); the slowed
    answerer waits on the clock."""
    asker = LoopAsker if runtime.name == "loop" else Asker
    spec = hr.SupervisorSpec([worker("b"), hr.ChildSpec("a", asker)])
    tree = hedgerow_tree_factory(spec)
    hedgerow_tree_factory.faults().slow("root/b", 100.0)
    began = time.perf_counter()
    assert tree.lookup("root/a").ask("q", timeout=10) == ("b", 1, "q")
    assert hedgerow_clock.now() == 100.0
    if runtime.name != "loop":
        # (On a loop the autojump does not yet see the loop's ready work, so it
        # waits out its quiet period: real time depends on the machine's load.)
        assert time.perf_counter() - began < 1.0


def test_a_bad_threshold_is_refused():
    with pytest.raises(ValueError, match="autojump_threshold=-1"):
        VirtualClock(autojump_threshold=-1)


def test_closing_ends_the_autojump_thread():
    clock = VirtualClock(autojump_threshold=0)
    thread = clock._thread
    assert thread is not None
    assert thread.is_alive()
    clock.close()
    assert not thread.is_alive()


def test_settling_keeps_time_still_while_actors_are_busy_or_the_setup_goes_on():
    with VirtualClock(autojump_threshold=0) as clock:
        fired = threading.Event()
        with clock.settling():
            clock.call_later(1.0, fired.set)
            assert not fired.wait(0.1)  # a bounded wait for what must not happen
            assert clock.now() == 0.0
        assert fired.wait(timeout=30)
        assert clock.now() == 1.0


def test_settling_gives_way_when_the_setup_waits_for_the_clock():
    """A setup that itself waits for time (a retry on the tree's clock) would
    deadlock under `hold`: once the actors stay idle long enough, time moves."""
    with VirtualClock(autojump_threshold=0) as clock:
        waited = threading.Event()
        with clock.settling():
            clock.wait(waited, 5.0)  # in the setup's own thread, as a start would
        assert clock.now() == 5.0
