"""Bad specs fail when built, naming the child, the field and the value."""

from __future__ import annotations

import random

import pytest

import hedgerow as hr
from hedgerow.supervision import Backoff, RestartIntensity
from hedgerow.testing import VirtualClock


class NotAnActor:
    pass


@pytest.mark.parametrize(
    ("options", "field", "value"),
    [
        ({"restart": "sometimes"}, "restart", "sometimes"),
        ({"shutdown": -1}, "shutdown", -1),
        ({"shutdown": "later"}, "shutdown", "later"),
        ({"initial_retry_delay": -0.5}, "initial_retry_delay", -0.5),
        ({"retry_delay_growth": 0.5}, "retry_delay_growth", 0.5),
        ({"max_retries": -2}, "max_retries", -2),
        ({"max_retries": 1.5}, "max_retries", 1.5),
        ({"significant": "yes"}, "significant", "yes"),
        ({"restart": "always", "significant": True}, "significant", True),
    ],
)
def test_child_spec_errors_name_child_field_and_value(options, field, value):
    with pytest.raises(hr.SpecError) as info:
        hr.ChildSpec("worker-1", hr.Actor, **options)
    error = info.value
    assert (error.child_id, error.field, error.value) == ("worker-1", field, value)
    assert "worker-1" in str(error)
    assert field in str(error)
    assert repr(value) in str(error)


@pytest.mark.parametrize("start", [NotAnActor, 42, "module:Class"])
def test_a_start_target_must_be_an_actor_class_factory_or_supervisor(start):
    with pytest.raises(hr.SpecError) as info:
        hr.ChildSpec("x", start)
    assert info.value.field == "start"


def test_either_runtime_s_actor_class_is_accepted_and_the_class_decides_its_runtime():
    assert hr.ChildSpec("t", hr.Actor).start is hr.Actor
    assert hr.ChildSpec("l", hr.AsyncioActor).start is hr.AsyncioActor


def test_a_class_of_neither_runtime_is_refused_naming_the_child_and_both_runtimes():
    with pytest.raises(hr.SpecError) as info:
        hr.ChildSpec("plain", NotAnActor)
    message = str(info.value)
    assert "plain" in message
    assert "hedgerow.Actor" in message
    assert "hedgerow.AsyncioActor" in message


def test_factories_and_nested_supervisors_are_accepted():
    def factory() -> hr.Actor:
        return hr.Actor()

    hr.ChildSpec("f", factory)
    spec = hr.ChildSpec("s", hr.SupervisorSpec())
    assert spec.shutdown == hr.INFINITY
    assert hr.ChildSpec("w", hr.Actor).shutdown == 5.0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"strategy": "one_for_some"}, "strategy"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"period": 0}, "period"),
        ({"period": -3}, "period"),
        ({"shutdown_policy": "shutdown-eventually"}, "shutdown_policy"),
    ],
)
def test_supervisor_spec_errors(options, field):
    with pytest.raises(hr.SpecError) as info:
        hr.SupervisorSpec(name="sup", **options)
    assert info.value.field == field
    assert "sup" in str(info.value)


def test_duplicate_child_ids_are_an_error():
    with pytest.raises(hr.SpecError, match="duplicate") as info:
        hr.SupervisorSpec([hr.ChildSpec("a", hr.Actor), hr.ChildSpec("a", hr.Actor)])
    assert info.value.child_id == "a"


@pytest.mark.parametrize("count", [0, 2])
def test_simple_one_for_one_needs_exactly_one_template(count):
    children = [hr.ChildSpec(f"t{n}", hr.Actor) for n in range(count)]
    with pytest.raises(hr.SpecError, match="exactly one"):
        hr.SupervisorSpec(children, strategy="simple_one_for_one")


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("permanent", hr.Restart.ALWAYS),
        ("restart-always", hr.Restart.ALWAYS),
        ("transient", hr.Restart.FAILED),
        ("restart-failed", hr.Restart.FAILED),
        ("restart-on-failed", hr.Restart.FAILED),
        ("temporary", hr.Restart.NEVER),
        ("restart-never", hr.Restart.NEVER),
    ],
)
def test_restart_aliases(alias, expected):
    assert hr.ChildSpec("x", hr.Actor, restart=alias).restart is expected


def test_shutdown_policy_aliases_and_defaults():
    assert hr.SupervisorSpec().shutdown_policy is hr.ShutdownPolicy.MANUAL
    assert hr.SupervisorSpec(shutdown_policy="any_significant").shutdown_policy is (
        hr.ShutdownPolicy.ON_ANY_COMPONENT_STOPPED
    )
    spec = hr.SupervisorSpec()
    assert (spec.max_restarts, spec.period, spec.strategy) == (
        3,
        5.0,
        hr.Strategy.ONE_FOR_ONE,
    )


def test_backoff_defaults_and_sequence_follow_autobahns_code():
    backoff = Backoff(random=random.Random(1))
    assert (backoff.initial_retry_delay, backoff.max_retry_delay) == (1.5, 300.0)
    assert (backoff.retry_delay_growth, backoff.retry_delay_jitter) == (1.5, 0.1)
    assert backoff.max_retries == -1
    assert backoff.next_delay() == 0
    second = backoff.next_delay()
    assert 2.25 * 0.5 < second < 2.25 * 1.5
    exact = Backoff(initial_retry_delay=1, retry_delay_jitter=0, max_retry_delay=10)
    assert [exact.next_delay() for _ in range(7)] == [
        0,
        1.5,
        2.25,
        3.375,
        5.0625,
        7.59375,
        10,
    ]
    exact.reset()
    assert exact.next_delay() == 0


def test_backoff_max_retries():
    backoff = Backoff(max_retries=2)
    assert backoff.can_retry()
    backoff.next_delay()
    backoff.next_delay()
    assert not backoff.can_retry()


def test_intensity_counts_restarts_in_a_sliding_window():
    clock = VirtualClock()
    intensity = RestartIntensity(max_restarts=2, period=5, clock=clock)
    assert intensity.add_restart()
    assert intensity.add_restart()
    assert intensity.remaining == 0
    clock.advance(5.5)
    assert intensity.remaining == 2
    assert intensity.add_restart()
    assert intensity.add_restart()
    assert not intensity.add_restart()
