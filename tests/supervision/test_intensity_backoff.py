"""Restart intensity, escalation through levels, and per-child backoff."""

from __future__ import annotations

import random

import pytest
from helpers import FailingStart, FailNTimes, Log, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.supervision._backoff import Backoff


def immediate(child_id: str, log: Log | None = None, **options) -> hr.ChildSpec:
    """A worker whose restarts are all immediate (the default: no backoff)."""
    return worker(child_id, log, **options)


def test_one_restart_too_many_gives_up_stops_children_in_reverse_and_reports(runtime, clock):
    log = Log()
    spec = hr.SupervisorSpec([immediate("a", log), immediate("b", log)], max_restarts=2, period=5)
    tree, rec = start(spec, clock=clock)
    b = tree.get_child("b")
    for n in range(2):
        b.tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/b", count=n + 1)
    b.tell("crash")
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.IntensityExceeded)
    assert "max_restarts=2" in str(reason)
    assert tree.gave_up
    assert log.of("stop")[-2:] == ["a"] or log.of("stop") == ["a"]
    kinds = rec.trail()
    assert ("intensity_exceeded", "root") in kinds
    assert kinds[-1] == ("failed", "root")
    assert not b.is_alive()


def test_restarts_outside_the_period_do_not_count(runtime, clock):
    spec = hr.SupervisorSpec([immediate("a")], max_restarts=1, period=5)
    tree, rec = start(spec, clock=clock)
    with tree:
        a = tree.get_child("a")
        for n in range(4):
            a.tell("crash")
            rec.wait_for(EventKind.RESTARTED, "root/a", count=n + 1)
            clock.advance(6)
        assert not tree.done


def test_max_restarts_zero_gives_up_on_the_first_failure(runtime, clock):
    tree, _ = start(hr.SupervisorSpec([immediate("a")], max_restarts=0), clock=clock)
    tree.get_child("a").tell("crash")
    assert isinstance(tree.wait(timeout=10), hr.IntensityExceeded)


def test_escalation_through_two_levels_to_the_root(runtime, clock):
    inner = hr.SupervisorSpec([immediate("leaf")], max_restarts=1, period=60)
    middle = hr.SupervisorSpec([hr.ChildSpec("inner", inner)], max_restarts=1, period=60)
    root = hr.SupervisorSpec(
        [hr.ChildSpec("middle", middle), immediate("sibling")],
        max_restarts=0,
        period=60,
    )
    tree, rec = start(root, clock=clock)
    leaf_path = "root/middle/inner/leaf"

    def crash_leaf(n: int) -> None:
        """Crash the leaf for the n-th time (1-based), through a fresh ref."""
        leaf = tree.supervisor("middle").supervisor("inner").get_child("leaf")
        leaf.tell("crash")
        rec.wait_for(EventKind.FAILED, leaf_path, count=n)

    crash_leaf(1)  # inner restarts leaf (1 of 1 allowed)
    rec.wait_for(EventKind.RESTARTED, leaf_path)
    crash_leaf(2)  # inner gives up; middle restarts inner (1 of 1 allowed)
    rec.wait_for(EventKind.RESTARTED, "root/middle/inner")
    crash_leaf(3)  # the new inner restarts leaf
    rec.wait_for(EventKind.RESTARTED, leaf_path, count=2)
    crash_leaf(4)  # inner gives up, middle gives up, root (0 allowed) gives up
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.IntensityExceeded)
    assert reason.supervisor == "root"
    assert reason.child_id == "middle"
    gave_up = [e.path for e in rec.matching(EventKind.INTENSITY_EXCEEDED)]
    assert gave_up == ["root/middle/inner", "root/middle/inner", "root/middle", "root"]
    assert rec.matching(EventKind.STOPPED, "root/sibling")


def test_first_restart_is_immediate_later_ones_back_off_and_grow(runtime, clock):
    spec = hr.SupervisorSpec(
        [
            worker(
                "a",
                initial_retry_delay=1.0,
                retry_delay_growth=2.0,
                retry_delay_jitter=0.0,
                max_retry_delay=5.0,
            )
        ],
        max_restarts=100,
        period=1000,
    )
    tree, rec = start(spec, clock=clock)
    with tree:
        a = tree.get_child("a")
        a.tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/a")
        delays = []
        for n in range(4):
            a.tell("crash")
            event = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/a", count=n + 1)
            delays.append(event.delay)
            # Messages sent while the child waits are kept for the next incarnation.
            a.tell(("queued", n))
            clock.advance(event.delay)
            rec.wait_for(EventKind.RESTARTED, "root/a", count=n + 2)
        assert delays == [2.0, 4.0, 5.0, 5.0]
        assert a.ask("now") == ("a", 6, "now")


def test_backoff_resets_once_the_child_stayed_up(runtime, clock):
    spec = hr.SupervisorSpec(
        [
            worker(
                "a",
                initial_retry_delay=1.0,
                retry_delay_jitter=0.0,
                retry_reset_after=30,
            )
        ],
        max_restarts=100,
        period=1000,
    )
    tree, rec = start(spec, clock=clock)
    with tree:
        a = tree.get_child("a")
        for day in range(3):
            clock.advance(86400)
            a.tell("crash")
            rec.wait_for(EventKind.RESTARTED, "root/a", count=day + 1)
        assert rec.matching(EventKind.RESTART_SCHEDULED) == []


def test_jitter_uses_the_injected_random_source(runtime, clock):
    def delays(seed: int) -> list[float]:
        spec = hr.SupervisorSpec([worker("a", initial_retry_delay=1.0)], max_restarts=100)
        tree, rec = start(spec, clock=clock, random=random.Random(seed))
        with tree:
            a = tree.get_child("a")
            a.tell("crash")
            rec.wait_for(EventKind.RESTARTED, "root/a")
            out = []
            for n in range(3):
                a.tell("crash")
                out.append(rec.wait_for(EventKind.RESTART_SCHEDULED, count=n + 1).delay)
                clock.advance(out[-1])
                rec.wait_for(EventKind.RESTARTED, "root/a", count=n + 2)
        return out

    assert delays(7) == delays(7)
    assert delays(7) != delays(8)


def test_max_retries_exhausted_gives_up(runtime, clock):
    spec = hr.SupervisorSpec([worker("a", initial_retry_delay=0, max_retries=2)], max_restarts=100)
    tree, rec = start(spec, clock=clock)
    a = tree.get_child("a")
    for n in range(2):
        a.tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/a", count=n + 1)
    a.tell("crash")
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.RetriesExhausted)


def test_failed_restart_attempts_count_against_intensity(runtime, clock):
    remaining = [0]
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("f", runtime.of(FailNTimes), args=(remaining,))],
        max_restarts=3,
        period=60,
    )
    tree, rec = start(spec, clock=clock)
    remaining[0] = 10  # every restart from now on fails in on_start
    tree.get_child("f").tell("crash")
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.IntensityExceeded)
    assert len(rec.matching(EventKind.START_FAILED, "root/f")) == 3


def test_a_failing_restart_is_retried_with_backoff_until_it_starts(runtime, clock):
    remaining = [0]
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec(
                "f",
                runtime.of(FailNTimes),
                args=(remaining,),
                initial_retry_delay=1.0,
                retry_delay_jitter=0.0,
            )
        ],
        max_restarts=10,
        period=60,
    )
    tree, rec = start(spec, clock=clock)
    with tree:
        remaining[0] = 2
        tree.get_child("f").tell("crash")
        first = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/f")
        clock.advance(first.delay)
        second = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/f", count=2)
        assert second.delay > first.delay
        clock.advance(second.delay)
        rec.wait_for(EventKind.RESTARTED, "root/f")
        assert len(rec.matching(EventKind.START_FAILED)) == 2


def test_a_start_failure_at_tree_start_stops_what_started_and_raises(runtime):
    log = Log()
    spec = hr.SupervisorSpec(
        [
            worker("a", log),
            worker("b", log),
            hr.ChildSpec("bad", runtime.of(FailingStart)),
            worker("c", log),
        ]
    )
    with pytest.raises(hr.StartError) as info:
        hr.start_tree(spec)
    assert "bad" in str(info.value)
    assert log.of("start") == ["a", "b"]
    assert log.of("stop") == ["b", "a"]


def test_a_nested_start_failure_is_reported_with_its_cause(runtime):
    inner = hr.SupervisorSpec([hr.ChildSpec("bad", runtime.of(FailingStart))])
    with pytest.raises(hr.StartError) as info:
        hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("inner", inner)]))
    cause = info.value.cause
    assert isinstance(cause, hr.StartError)
    assert cause.child_id == "inner"
    assert isinstance(cause.cause, hr.StartError)
    assert isinstance(cause.cause.cause, ValueError)


# -- escalation by default; backoff only when asked for -----------------------------


class Broken(hr.Actor):
    """Starts, then fails at once: every incarnation crashes (a crash loop)."""

    def on_start(self) -> None:
        self.actor_ref.tell("crash")

    def on_receive(self, message: object) -> None:
        raise RuntimeError("broken")


def test_a_crash_loop_escalates_with_the_default_settings(runtime):
    # Real time, no clock to advance: with OTP's defaults the restarts are
    # immediate, so the fourth one within 5 s is one too many.
    tree, rec = start(hr.SupervisorSpec([hr.ChildSpec("db", runtime.of(Broken))]))
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.IntensityExceeded)
    assert rec.matching(EventKind.RESTART_SCHEDULED) == []
    assert len(rec.matching(EventKind.RESTARTED, "root/db")) == 3


def test_backoff_is_off_unless_asked_for():
    spec = hr.SupervisorSpec([worker("a")])
    assert spec.backoff_for(spec.children[0]) is None


def test_a_supervisor_level_backoff_is_inherited_and_a_child_may_refuse_it(runtime, clock):
    spec = hr.SupervisorSpec(
        [worker("a"), worker("b", backoff=False), worker("c", initial_retry_delay=4.0)],
        initial_retry_delay=2.0,
        retry_delay_jitter=0.0,
        max_restarts=100,
        period=1000,
    )
    a, b, c = (spec.backoff_for(child) for child in spec.children)
    assert a is not None
    assert (a.initial_retry_delay, a.retry_delay_jitter) == (2.0, 0.0)
    assert (a.retry_delay_growth, a.max_retry_delay) == (1.5, 300.0)
    assert a.retry_reset_after == 1000  # the supervisor's period
    assert b is None
    assert c is not None
    assert (c.initial_retry_delay, c.retry_delay_jitter) == (4.0, 0.0)
    tree, rec = start(spec, clock=clock)
    with tree:
        for child in ("a", "b"):
            ref = tree.get_child(child)
            ref.tell("crash")
            rec.wait_for(EventKind.RESTARTED, f"root/{child}")
            ref.tell("crash")
        scheduled = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/a")
        assert scheduled.delay == 3.0  # 2.0 x 1.5: a waits
        rec.wait_for(EventKind.RESTARTED, "root/b", count=2)  # b restarts at once
        assert [e.path for e in rec.matching(EventKind.RESTART_SCHEDULED)] == ["root/a"]


def test_backoff_true_opts_in_with_autobahns_defaults():
    spec = hr.SupervisorSpec([worker("a", backoff=True)])
    settings = spec.backoff_for(spec.children[0])
    assert settings is not None
    assert (
        settings.initial_retry_delay,
        settings.max_retry_delay,
        settings.retry_delay_growth,
        settings.retry_delay_jitter,
    ) == (1.5, 300.0, 1.5, 0.1)
    assert settings.max_retries == hr.DEFAULT_MAX_RETRIES
    assert settings.retry_reset_after == 5.0


def test_a_crash_loop_under_backoff_still_ends_after_a_bounded_number_of_restarts(runtime, clock):
    # No jitter: with it, two short delays could put a fourth restart within
    # the period, and the intensity would end the loop first.
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("db", runtime.of(Broken), backoff=True, retry_delay_jitter=0.0)]
    )
    tree, rec = start(spec, clock=clock)
    for n in range(hr.DEFAULT_MAX_RETRIES - 1):
        scheduled = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/db", count=n + 1)
        clock.advance(scheduled.delay)
    reason = tree.wait(timeout=10)
    assert isinstance(reason, hr.RetriesExhausted)
    assert reason.max_retries == hr.DEFAULT_MAX_RETRIES
    assert len(rec.matching(EventKind.RESTARTED, "root/db")) == hr.DEFAULT_MAX_RETRIES
    assert ("intensity_exceeded", "root") in rec.trail()


def test_max_retries_minus_one_under_backoff_retries_for_ever_when_asked(runtime, clock):
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("db", runtime.of(Broken), max_retries=-1)], max_restarts=100
    )
    tree, rec = start(spec, clock=clock)
    with tree:
        for n in range(hr.DEFAULT_MAX_RETRIES + 3):
            scheduled = rec.wait_for(EventKind.RESTART_SCHEDULED, "root/db", count=n + 1)
            clock.advance(scheduled.delay)
        assert not tree.done


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"backoff": False, "initial_retry_delay": 1.0}, "initial_retry_delay"),
        ({"backoff": "yes"}, "backoff"),
        ({"max_retries": -2}, "max_retries"),
        ({"retry_delay_growth": 0.5}, "retry_delay_growth"),
    ],
)
def test_backoff_settings_are_checked_on_children_and_supervisors(options, field):
    with pytest.raises(hr.SpecError) as info:
        worker("a", **options)
    assert info.value.field == field
    with pytest.raises(hr.SpecError) as info:
        hr.SupervisorSpec([worker("a")], **options)
    assert info.value.field == field


@pytest.mark.parametrize(
    ("initial", "growth", "jitter"),
    [(1e9, 1e300, 0.5), (1e9, 1e300, 0.0), (1.0, 1e308, 1e308), (1e-300, 1e300, 1.0)],
)
def test_backoff_delays_stay_finite_and_within_the_cap_whatever_the_growth(initial, growth, jitter):
    """A delay times a huge growth overflowed to inf, and inf's jitter gave NaN delays."""
    backoff = Backoff(
        initial_retry_delay=initial,
        max_retry_delay=1e9,
        retry_delay_growth=growth,
        retry_delay_jitter=jitter,
        random=random.Random(1),
    )
    delays = [backoff.next_delay() for _ in range(50)]
    assert delays[0] == 0.0
    assert all(0.0 <= d <= 1e9 for d in delays), delays
