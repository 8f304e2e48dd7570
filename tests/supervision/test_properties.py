"""Property-based: random trees, crash schedules and sends (hypothesis).

Invariants:
- every message sent is handled or dead-lettered, exactly once;
- no child is restarted more than its supervisor's max_restarts within one
  incarnation of that supervisor (the virtual clock never moves, so every
  restart falls in one window) unless that supervisor gave up;
- children are listed in spec order;
- after the root stops, no actor of the tree is registered or running.

The storm (`test_a_storm_keeps_every_promise`) adds nested supervisors with
short shutdowns and brutal_kill, children that hang, senders on several
threads, stop_child/restart_child/delete_child meanwhile and a root stop in
the middle; and checks that no asker (nor dynamic call) is left waiting and
that no thread of the tree outlives it. ``pytest --hypothesis-profile=races``
runs it with many more examples at ``sys.setswitchinterval(1e-6)``.

Both run on thread children, event-loop children and mixed trees (the
`runtime` fixture), with the same invariants: a thread child that hangs past
its shutdown is abandoned and its message handled late; an event-loop child is
killed and its message is a dead letter. Either way, once.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pykka
import pytest
from helpers import blocking, wait_threads_end
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import EventRecorder, VirtualClock


class Ledger:
    """Which message ids were handled, counted."""

    def __init__(self) -> None:
        self.handled: Counter[int] = Counter()
        self.cond = threading.Condition()

    def handle(self, msg_id: int) -> None:
        with self.cond:
            self.handled[msg_id] += 1
            self.cond.notify_all()


class Tracked:
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger

    def on_receive(self, message: Any) -> Any:
        msg_id, crash = message
        if crash:
            raise RuntimeError(f"crash on {msg_id}")
        self.ledger.handle(msg_id)


@dataclass
class Shape:
    strategy: str
    max_restarts: int
    children: list[tuple[str, Any]]  # (restart, None for a worker | Shape)


restarts = st.sampled_from(["always", "failed", "never"])
strategies = st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])
leaf_shape = st.builds(
    Shape,
    strategy=strategies,
    max_restarts=st.integers(0, 4),
    children=st.lists(st.tuples(restarts, st.none()), min_size=1, max_size=3),
)
tree_shape = st.builds(
    Shape,
    strategy=strategies,
    max_restarts=st.integers(0, 6),
    children=st.lists(
        st.tuples(restarts, st.one_of(st.none(), leaf_shape)), min_size=1, max_size=4
    ),
)


def build(
    shape: Shape, ledger: Ledger, prefix: str, workers: list[str], runtime: Any
) -> hr.SupervisorSpec:
    children = []
    for index, (restart, sub) in enumerate(shape.children):
        cid = f"c{index}"
        path = f"{prefix}/{cid}"
        if sub is None:
            workers.append(path)
            start: Any = runtime.of(Tracked)
            args: tuple[Any, ...] = (ledger,)
        else:
            start = build(sub, ledger, path, workers, runtime)
            args = ()
        children.append(hr.ChildSpec(cid, start, args=args, restart=restart))
    return hr.SupervisorSpec(
        children, strategy=shape.strategy, max_restarts=shape.max_restarts, period=1000
    )


def find_ref(tree: hr.Tree, path: str) -> hr.ChildRef | None:
    """The current ref at `path`, or None if some supervisor on the way is gone."""
    parts = path.split("/")[1:]
    handle: hr.SupervisorHandle = tree
    try:
        for part in parts[:-1]:
            handle = handle.supervisor(part)
        return handle.get_child(parts[-1])
    except (hr.ChildError, pykka.ActorDeadError):
        return None


def supervisor_max_restarts(shape: Shape, prefix: str, out: dict[str, int]) -> None:
    out[prefix] = shape.max_restarts
    for index, (_, sub) in enumerate(shape.children):
        if sub is not None:
            supervisor_max_restarts(sub, f"{prefix}/c{index}", out)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    shape=tree_shape,
    sends=st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=1, max_size=25),
)
def test_random_trees_lose_no_message_and_respect_intensity(runtime, shape, sends):
    ledger = Ledger()
    workers: list[str] = []
    spec = build(shape, ledger, "root", workers, runtime)
    events = hr.EventStream()
    recorder = EventRecorder(events)
    dead: Counter[int] = Counter()
    dead_lock = threading.Lock()

    def count_dead(event: hr.Event) -> None:
        if event.kind is EventKind.DEAD_LETTER and isinstance(event.message, tuple):
            with dead_lock:
                dead[event.message[0]] += 1
            with ledger.cond:
                ledger.cond.notify_all()

    events.subscribe(count_dead)
    tree = hr.start_tree(spec, events=events, clock=VirtualClock())
    sent: list[int] = []
    try:
        for msg_id, (target, crash) in enumerate(sends):
            ref = find_ref(tree, workers[target % len(workers)])
            if ref is None:
                continue
            ref.tell((msg_id, crash))
            sent.append(msg_id)
            if tree.done:
                break
        if not tree.done:
            check_spec_order(tree, spec)

        def settled() -> bool:
            with dead_lock:
                return all(ledger.handled[m] + dead[m] >= 1 for m in sent)

        with ledger.cond:
            assert ledger.cond.wait_for(settled, timeout=20), (
                f"lost messages: {[m for m in sent if not ledger.handled[m] + dead[m]]}"
            )
    finally:
        tree.stop(timeout=20)

    with dead_lock:
        for msg_id in sent:
            assert ledger.handled[msg_id] + dead[msg_id] == 1, msg_id
    check_intensity(recorder, shape)
    assert pykka.ActorRegistry.get_all() == []


def check_spec_order(tree: hr.SupervisorHandle, spec: hr.SupervisorSpec) -> None:
    """Children are listed in spec order (a supervisor may give up meanwhile)."""
    spec_ids = [c.id for c in spec.children]
    try:
        listed = [c.id for c in tree.which_children()]
    except pykka.ActorDeadError:
        return
    assert listed == [i for i in spec_ids if i in listed]
    for child in spec.children:
        if child.is_supervisor and child.id in listed:
            try:
                nested = tree.supervisor(child.id)
            except (hr.ChildError, pykka.ActorDeadError):
                continue
            check_spec_order(nested, child.start)  # type: ignore[arg-type]


def check_intensity(recorder: EventRecorder, shape: Shape) -> None:
    limits: dict[str, int] = {}
    supervisor_max_restarts(shape, "root", limits)
    restarts: Counter[tuple[str, int]] = Counter()
    epoch: Counter[str] = Counter()
    for event in recorder.events:
        if event.path in limits and event.kind in (EventKind.STARTED, EventKind.RESTARTED):
            epoch[event.path] += 1
        parent = event.path.rsplit("/", 1)[0]
        if event.kind is EventKind.RESTARTED and parent in limits:
            key = (event.path, epoch[parent])
            restarts[key] += 1
            assert restarts[key] <= limits[parent], (
                f"{event.path} restarted {restarts[key]} times under {parent} "
                f"(max_restarts={limits[parent]})"
            )


# -- the storm: short shutdowns, brutal kills, hangs, senders on several threads,
# -- dynamic children and a root stop in the middle, on the real clock ----------

RACES = settings.default is settings.get_profile("races")
"""``pytest --hypothesis-profile=races``: many more examples, at a tiny switch interval."""


class Storm:
    """What the storm's actors did: handled ids, and the event that releases hangs."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.release = threading.Event()


class Stormy:
    """A worker of the storm: handles (id, action) messages."""

    def __init__(self, storm: Storm) -> None:
        super().__init__()
        self.storm = storm

    def on_receive(self, message: Any) -> Any:
        msg_id, action = message
        if action == "crash":
            raise RuntimeError(f"crash on {msg_id}")
        if action == "hang":
            return blocking(self, self.storm.release, lambda: self._handled(msg_id))
        return self._handled(msg_id)

    def _handled(self, msg_id: int) -> int:
        self.storm.ledger.handle(msg_id)
        return msg_id


@dataclass
class StormShape:
    strategy: str
    max_restarts: int
    children: list[tuple[str, Any, Any]]  # (restart, shutdown, None | StormShape)


worker_shutdowns = st.sampled_from([0.02, 0.05, "brutal_kill"])
supervisor_shutdowns = st.sampled_from([0.05, "brutal_kill", "infinity"])
storm_leaf = st.builds(
    StormShape,
    strategy=strategies,
    max_restarts=st.integers(0, 5),
    children=st.lists(st.tuples(restarts, worker_shutdowns, st.none()), min_size=1, max_size=3),
)
storm_tree = st.builds(
    StormShape,
    strategy=strategies,
    max_restarts=st.integers(0, 6),
    children=st.lists(
        st.one_of(
            st.tuples(restarts, worker_shutdowns, st.none()),
            st.tuples(restarts, supervisor_shutdowns, storm_leaf),
        ),
        min_size=1,
        max_size=4,
    ),
)
actions = st.sampled_from(["ok", "ok", "ok", "crash", "hang", "ask"])
ops = st.sampled_from(["stop_child", "restart_child", "delete_child"])


def build_storm(
    shape: StormShape,
    storm: Storm,
    prefix: str,
    workers: list[str],
    supervisors: list[str],
    *,
    runtime: Any,
) -> hr.SupervisorSpec:
    supervisors.append(prefix)
    children = []
    for index, (restart, shutdown, sub) in enumerate(shape.children):
        cid = f"c{index}"
        path = f"{prefix}/{cid}"
        if sub is None:
            workers.append(path)
            spec = hr.ChildSpec(
                cid, runtime.of(Stormy), args=(storm,), restart=restart, shutdown=shutdown
            )
        else:
            nested = build_storm(sub, storm, path, workers, supervisors, runtime=runtime)
            spec = hr.ChildSpec(cid, nested, restart=restart, shutdown=shutdown)
        children.append(spec)
    return hr.SupervisorSpec(
        children, strategy=shape.strategy, max_restarts=shape.max_restarts, period=1000
    )


def storm_limits(shape: StormShape, prefix: str, out: dict[str, int]) -> None:
    out[prefix] = shape.max_restarts
    for index, (_, _, sub) in enumerate(shape.children):
        if sub is not None:
            storm_limits(sub, f"{prefix}/c{index}", out)


class Sends:
    """Ids sent (tells and asks), and the asks' futures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent: list[int] = []
        self.futures: list[tuple[int, Any]] = []


def send_storm(
    tree: hr.Tree,
    workers: list[str],
    plan: list[tuple[int, str]],
    base: int,
    sends: Sends,
    *,
    stop_at: int | None,
) -> None:
    """One sender thread: tell or ask the planned workers; maybe stop the root midway."""
    for index, (target, action) in enumerate(plan):
        if index == stop_at:
            tree.request_stop()
        ref = tree.names.get(workers[target % len(workers)])
        if ref is None:
            continue  # removed: nobody to send to
        msg_id = base + index
        with sends.lock:
            sends.sent.append(msg_id)
        if action == "ask":
            future = ref.ask((msg_id, "ok"), block=False)
            with sends.lock:
                sends.futures.append((msg_id, future))
        else:
            ref.tell((msg_id, action))


def operate(
    tree: hr.Tree,
    plan: list[tuple[str, int]],
    workers: list[str],
    restarted: set[str],
    timeouts: list[str],
) -> None:
    """The dynamic-children thread: stop, restart and delete children meanwhile."""
    for op, target in plan:
        path = workers[target % len(workers)]
        parent, _, child_id = path.rpartition("/")
        handle: hr.SupervisorHandle
        if parent == tree.name:
            handle = tree
        else:
            ref = tree.names.get(parent)
            if ref is None:
                continue
            handle = hr.SupervisorHandle(ref, timeout=10)
        try:
            getattr(handle, op)(child_id)
        except pykka.Timeout:
            timeouts.append(f"{op} {path}")
        except Exception:  # noqa: S112 - refused, gone, abandoned: all fine here
            continue
        if op == "restart_child":
            restarted.add(path)


@settings(
    max_examples=150 if RACES else 12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    shape=storm_tree,
    plans=st.lists(
        st.lists(st.tuples(st.integers(0, 20), actions), min_size=1, max_size=20),
        min_size=2,
        max_size=3,
    ),
    op_plan=st.lists(st.tuples(ops, st.integers(0, 20)), max_size=6),
    stop_at=st.integers(0, 19),
)
def test_a_storm_keeps_every_promise(runtime, shape, plans, op_plan, stop_at):
    interval = sys.getswitchinterval()
    if RACES:
        sys.setswitchinterval(1e-6)
    try:
        run_storm(shape, plans, op_plan, stop_at, runtime)
    finally:
        sys.setswitchinterval(interval)


def run_storm(
    shape: StormShape,
    plans: list[list[tuple[int, str]]],
    op_plan: list[tuple[str, int]],
    stop_at: int,
    runtime: Any,
) -> None:
    storm = Storm()
    workers: list[str] = []
    supervisors: list[str] = []
    spec = build_storm(shape, storm, "root", workers, supervisors, runtime=runtime)
    events = hr.EventStream()
    recorder = EventRecorder(events)
    dead: Counter[int] = Counter()
    dead_lock = threading.Lock()

    def count_dead(event: hr.Event) -> None:
        if event.kind is EventKind.DEAD_LETTER and isinstance(event.message, tuple):
            with dead_lock:
                dead[event.message[0]] += 1

    events.subscribe(count_dead)
    before = set(threading.enumerate())
    tree = hr.start_tree(spec, events=events)
    sends = Sends()
    restarted: set[str] = set()
    timeouts: list[str] = []
    threads = [
        threading.Thread(
            target=send_storm,
            args=(tree, workers, plan, 1000 * i, sends),
            kwargs={"stop_at": stop_at if i == 0 else None},
        )
        for i, plan in enumerate(plans)
    ]
    threads.append(
        threading.Thread(target=operate, args=(tree, op_plan, workers, restarted, timeouts))
    )
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(t.is_alive() for t in threads), "a sender or an operation hangs"
        tree.stop(timeout=30)
        # The root has stopped: nothing of the tree is registered, and no thread
        # of it keeps the process up (a hung handler's is a daemon).
        assert pykka.ActorRegistry.get_all() == []
        current = threading.current_thread()
        keeping = [
            t
            for t in threading.enumerate()
            if t not in before and t is not current and not t.daemon
        ]
        for thread in keeping:
            thread.join(timeout=10)
        assert [t.name for t in keeping if t.is_alive()] == []
    finally:
        storm.release.set()
        tree.stop(timeout=30)
    assert wait_threads_end(before) == []
    assert timeouts == [], f"dynamic calls left waiting: {timeouts}"
    for msg_id, future in sends.futures:
        try:
            future.get(timeout=10)
        except pykka.Timeout:
            pytest.fail(f"the asker of {msg_id} was left waiting")
        except pykka.ActorDeadError:
            pass
    with dead_lock, storm.ledger.cond:
        for msg_id in sends.sent:
            total = storm.ledger.handled[msg_id] + dead[msg_id]
            assert total == 1, (
                f"message {msg_id}: handled {storm.ledger.handled[msg_id]}, dead {dead[msg_id]}"
            )
    limits: dict[str, int] = {}
    storm_limits(shape, "root", limits)
    check_storm_intensity(recorder, limits, restarted)


def check_storm_intensity(
    recorder: EventRecorder, limits: dict[str, int], restarted: set[str]
) -> None:
    """No child restarted by its supervisor more than max_restarts times within one
    incarnation of that supervisor (restart_child's restarts are not the policy's)."""
    restarts: Counter[tuple[str, int]] = Counter()
    epoch: Counter[str] = Counter()
    for event in recorder.events:
        if event.path in limits and event.kind in (EventKind.STARTED, EventKind.RESTARTED):
            epoch[event.path] += 1
        parent = event.path.rsplit("/", 1)[0]
        if event.kind is EventKind.RESTARTED and parent in limits and event.path not in restarted:
            key = (event.path, epoch[parent])
            restarts[key] += 1
            assert restarts[key] <= limits[parent], (
                f"{event.path} restarted {restarts[key]} times under {parent} "
                f"(max_restarts={limits[parent]})"
            )
