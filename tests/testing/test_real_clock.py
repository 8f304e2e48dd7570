"""The real clock survives any delay: one tree's huge value stops no other timer."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from helpers import worker

import hedgerow as hr
from hedgerow._clock import MAX_DELAY, MonotonicClock

HUGE = [1e10, math.inf, 1e300]


@pytest.mark.parametrize("delay", HUGE)
def test_a_timer_far_in_the_future_leaves_the_other_timers_firing(delay):
    clock = MonotonicClock()
    never = threading.Event()
    clock.call_later(delay, never.set)
    fired = threading.Event()
    clock.call_later(0.01, fired.set)
    assert fired.wait(timeout=30)
    later = threading.Event()
    clock.call_later(0.0, later.set)
    assert later.wait(timeout=30)
    assert not never.is_set()


@pytest.mark.parametrize("timeout", HUGE)
def test_waiting_with_a_huge_timeout_ends_when_the_waiter_is_set(timeout):
    clock = MonotonicClock()
    waiter = threading.Event()
    clock.call_later(0.01, waiter.set)
    clock.wait(waiter, timeout)
    assert waiter.is_set()


def test_a_delay_that_is_not_a_number_is_refused_where_it_is_asked_for():
    clock = MonotonicClock()
    with pytest.raises(ValueError, match="nan"):
        clock.call_later(math.nan, print)
    fired = threading.Event()
    clock.call_later(0.0, fired.set)
    assert fired.wait(timeout=30)


def test_a_timer_that_raises_base_exception_leaves_the_clock_running(caplog):
    clock = MonotonicClock()

    def leave() -> None:
        raise SystemExit(3)

    clock.call_later(0.0, leave)
    fired = threading.Event()
    clock.call_later(0.01, fired.set)
    assert fired.wait(timeout=30)
    assert "SystemExit" in caplog.text


class Sender(hr.Actor):
    """Sends itself `message` after `delay` on start; reports what it gets."""

    def __init__(self, delay: float, got: threading.Event) -> None:
        super().__init__()
        self.delay = delay
        self.got = got

    def on_start(self) -> None:
        self.actor_send_after(self.delay, "tick")

    def on_receive(self, message: Any) -> None:
        if message == "tick":
            self.got.set()


def test_a_huge_send_after_in_one_tree_leaves_another_trees_timers_firing():
    clock = MonotonicClock()  # shared as the process-wide clock is
    never, ticked = threading.Event(), threading.Event()
    far = hr.start_tree(
        hr.SupervisorSpec([hr.ChildSpec("far", Sender, args=(1e10, never))]), clock=clock
    )
    try:
        near = hr.start_tree(
            hr.SupervisorSpec([hr.ChildSpec("near", Sender, args=(0.01, ticked))]), clock=clock
        )
        try:
            assert ticked.wait(timeout=30)
        finally:
            near.stop()
    finally:
        far.stop()
    assert not never.is_set()


# -- specs and tree files refuse what no clock can wait ----------------------------


@pytest.mark.parametrize(
    "value", [1e10, MAX_DELAY * 2, pytest.param(10**400, id="10**400"), math.inf]
)
@pytest.mark.parametrize("field", ["shutdown", "initial_retry_delay", "max_retry_delay"])
def test_child_times_beyond_the_limit_are_a_spec_error_naming_the_field(field, value):
    with pytest.raises(hr.SpecError, match=field) as info:
        worker("w", **{field: value})
    assert info.value.field == field


@pytest.mark.parametrize("value", [1e10, pytest.param(10**400, id="10**400"), math.inf])
def test_a_period_beyond_the_limit_is_a_spec_error_naming_it(value):
    with pytest.raises(hr.SpecError, match="period") as info:
        hr.SupervisorSpec([worker("w")], period=value)
    assert info.value.field == "period"


def test_the_limit_itself_and_infinity_by_name_stay_valid():
    assert worker("w", shutdown=MAX_DELAY).shutdown_timeout == MAX_DELAY
    assert worker("w", shutdown="infinity").shutdown_timeout is None
    assert hr.SupervisorSpec([worker("w")], period=MAX_DELAY).period == MAX_DELAY


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("shutdown = 1e10", "shutdown"),
        ("max_retry_delay = 1e10", "max_retry_delay"),
        ("initial_retry_delay = 1e10", "initial_retry_delay"),
    ],
)
def test_a_tree_file_with_a_time_beyond_the_limit_names_the_key(tmp_path, line, key):
    path = tmp_path / "tree.toml"
    path.write_text(
        f'[supervisor]\n[[supervisor.children]]\nid = "w"\nstart = "helpers:Worker"\n{line}\n',
        encoding="utf-8",
    )
    with pytest.raises(hr.ConfigError) as info:
        hr.load_tree(path)
    (problem,) = info.value.problems
    assert problem.key == f"supervisor.children[0].{key}"
    assert str(path) in str(info.value)


def test_a_tree_file_period_beyond_the_limit_names_the_key(tmp_path):
    path = tmp_path / "tree.toml"
    path.write_text(
        '[supervisor]\nperiod = 1e10\n[[supervisor.children]]\nid = "w"\n'
        'start = "helpers:Worker"\n',
        encoding="utf-8",
    )
    with pytest.raises(hr.ConfigError) as info:
        hr.load_tree(path)
    (problem,) = info.value.problems
    assert problem.key == "supervisor.period"
