"""`hedgerow chaos` and simple_one_for_one supervisors: faults hit the dynamic
children, never the template (whose path no child ever has)."""

from __future__ import annotations

from typing import Any

import hedgerow as hr
from hedgerow.supervision import SupervisorHandle
from hedgerow.testing._chaos import ChaosKind, ChaosOptions, plan_faults, run_chaos

TEMPLATE = "root/pool/conn"


class Conn(hr.Actor):
    """A pool member: answers what it is sent."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def on_receive(self, message: Any) -> Any:
        return (self.name, message)


class Starter(hr.Actor):
    """Starts `count` pool members once (from a message: never from ``on_start``),
    then keeps them busy."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count

    def on_start(self) -> None:
        self.actor_send_after(0, "start")

    def on_receive(self, message: Any) -> Any:
        if message == "start":
            pool = SupervisorHandle(self.actor_lookup("root/pool"))
            running = {c.id for c in pool.which_children()}
            for n in range(1, self.count + 1):
                if f"conn-{n}" not in running:
                    pool.start_child(f"conn-{n}")
            self.actor_send_after(0.25, "tick")
        elif message == "tick":
            for n in range(1, self.count + 1):
                self.actor_lookup(f"root/pool/conn-{n}").tell("work")
            self.actor_send_after(0.25, "tick")


def pool_spec(count: int = 3, conn: type = Conn) -> hr.SupervisorSpec:
    """A pool of `conn` children (a thread or an event-loop actor) and its starter
    (a thread: it waits for the pool supervisor's answers)."""
    pool = hr.SupervisorSpec(
        [hr.ChildSpec("conn", conn, initial_retry_delay=0.1)],
        strategy="simple_one_for_one",
        max_restarts=1000,
        period=1,
    )
    return hr.SupervisorSpec(
        [
            hr.ChildSpec("pool", pool),
            hr.ChildSpec("starter", Starter, args=(count,)),
        ],
        max_restarts=1000,
        period=1,
    )


def test_no_fault_is_planned_at_the_template_path():
    schedule = plan_faults(pool_spec(), ChaosOptions(seed=1, duration=60, rate=2), "root")
    assert len(schedule) > 50
    paths = {fault.path for fault in schedule}
    assert TEMPLATE not in paths
    assert {"root/pool", "root/starter"} <= paths


def test_faults_aimed_at_the_pool_hit_its_dynamic_children(runtime):
    options = ChaosOptions(
        seed=4,
        duration=20,
        rate=2,
        kinds=(ChaosKind.CRASH, ChaosKind.CRASH_MESSAGE, ChaosKind.HANG),
        targets=("root/pool/*",),
        hang_time=0.5,
    )
    report = run_chaos(pool_spec(conn=runtime.of(Conn)), options)
    assert report.ended == "duration", report.reason
    assert sum(report.injected.values()) >= 10, report
    assert set(report.restarts) <= {"root/pool/conn-1", "root/pool/conn-2", "root/pool/conn-3"}
    assert len(report.restarts) >= 2, report.restarts
    assert TEMPLATE not in report.restarts
    # A fault planned before the children exist (or while all are restarting) is
    # skipped; the rest land.
    assert sum(report.skipped.values()) < sum(report.injected.values())
    assert report.messages.lost == 0


def test_a_target_can_name_one_dynamic_child(runtime):
    options = ChaosOptions(
        seed=2, duration=10, rate=2, kinds=(ChaosKind.CRASH,), targets=("root/pool/conn-2",)
    )
    assert plan_faults(pool_spec(), options, "root")
    report = run_chaos(pool_spec(conn=runtime.of(Conn)), options)
    assert set(report.restarts) == {"root/pool/conn-2"}, report.restarts
    assert report.injected.get("crash", 0) >= 5


def test_without_dynamic_children_the_faults_are_skipped_not_aimed_at_the_template():
    options = ChaosOptions(seed=3, duration=10, rate=2, targets=("root/pool/*",))
    report = run_chaos(pool_spec(count=0), options)
    assert report.injected == {}
    assert sum(report.skipped.values()) == report.planned > 0
    assert report.restarts == {}
