"""Property-based: random trees, crash schedules and sends (hypothesis).

Invariants:
- every message sent is handled or dead-lettered, exactly once;
- no child is restarted more than its supervisor's max_restarts within one
  incarnation of that supervisor (the virtual clock never moves, so every
  restart falls in one window) unless that supervisor gave up;
- children are listed in spec order;
- after the root stops, no actor of the tree is registered or running.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pykka
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


class Tracked(hr.Actor):
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


def build(shape: Shape, ledger: Ledger, prefix: str, workers: list[str]) -> hr.SupervisorSpec:
    children = []
    for index, (restart, sub) in enumerate(shape.children):
        cid = f"c{index}"
        path = f"{prefix}/{cid}"
        if sub is None:
            workers.append(path)
            start: Any = Tracked
            args: tuple[Any, ...] = (ledger,)
        else:
            start = build(sub, ledger, path, workers)
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
def test_random_trees_lose_no_message_and_respect_intensity(shape, sends):
    ledger = Ledger()
    workers: list[str] = []
    spec = build(shape, ledger, "root", workers)
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
