"""Supervisors on the event loop (``SupervisorSpec(runtime="loop")``): what is
particular to them. Their semantics are checked by the whole supervision suite,
which runs with supervisors on the loop too (the ``loopsup`` and ``mixedsup``
values of the `runtime` fixture, tests/supervision/conftest.py)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from helpers import Worker, on, start

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.actors._actor import ACTOR_THREAD_PREFIX

LoopWorker = on(Worker, hr.AsyncioActor)


def test_a_tree_of_loop_supervisors_needs_no_thread_per_supervisor():
    before = {t.name for t in threading.enumerate()}
    groups = [
        hr.ChildSpec(
            f"g{i}",
            hr.SupervisorSpec(
                [hr.ChildSpec(f"w{j}", LoopWorker, args=(f"w{j}",)) for j in range(5)],
                runtime="loop",
            ),
        )
        for i in range(20)
    ]
    tree, rec = start(hr.SupervisorSpec(groups, runtime="loop"))
    with tree:
        assert isinstance(tree._root, hr.LoopSupervisor)
        assert isinstance(tree.lookup("root/g3").incarnation, hr.LoopSupervisor)
        assert tree.lookup("root/g7/w4").ask("hi", timeout=5) == ("w4", 1, "hi")
        tree.lookup("root/g7/w4").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/g7/w4")
        assert tree.lookup("root/g7/w4").ask("hi", timeout=5) == ("w4", 2, "hi")
        threads = [t.name for t in threading.enumerate() if t.name not in before]
        assert not [name for name in threads if name.startswith(ACTOR_THREAD_PREFIX)], threads
        assert len(threads) <= 3, threads  # hedgerow's loop, its watchdog, the clock


def test_a_loop_supervisor_supervises_thread_children_and_thread_supervisors():
    inner = hr.SupervisorSpec([hr.ChildSpec("t", Worker, args=("t",))])
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("l", LoopWorker, args=("l",)), hr.ChildSpec("inner", inner)],
        strategy="one_for_all",
        runtime="loop",
    )
    tree, rec = start(spec)
    with tree:
        assert type(tree.lookup("root/inner").incarnation) is hr.Supervisor
        tree.lookup("root/inner/t").tell("crash")
        tree.lookup("root/inner").tell("not a supervisor's message")
        rec.wait_for(EventKind.RESTARTED, "root/inner/t")
        tree.lookup("root/l").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "root/l")
        rec.wait_for(EventKind.RESTARTED, "root/inner")
        assert tree.lookup("root/inner/t").ask("hi", timeout=5)[:2] == ("t", 1)


def test_a_ref_to_a_loop_supervisor_is_typed_as_a_supervisor():
    nested = hr.SupervisorSpec([hr.ChildSpec("w", LoopWorker)], runtime="loop")
    tree, _ = start(hr.SupervisorSpec([hr.ChildSpec("pool", nested)]))
    with tree:
        ref = tree.get_child("pool", hr.Supervisor)
        assert ref.actor_class is hr.Supervisor
        assert tree.supervisor("pool").count_children().active == 1


def test_the_runtime_is_checked():
    with pytest.raises(hr.SpecError, match="runtime"):
        hr.SupervisorSpec(runtime="fiber")


@pytest.mark.timeout(30)
def test_a_loop_supervisor_on_the_running_loop_starts_children_from_the_loop():
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("w", LoopWorker)], strategy="simple_one_for_one", runtime="loop"
    )

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            assert tree.sync._root.actor_loop is loop
            refs = [await tree.start_child(f"w{i}") for i in range(50)]
            answers = [await ref.ask("hi", block=False) for ref in refs]
            assert all(ref.incarnation.actor_loop is loop for ref in refs)
            await tree.stop_child(refs[0])
            return answers

    answers = asyncio.run(main())
    assert answers[3] == ("w3", 1, "hi")


def test_a_tree_file_says_where_a_supervisor_runs(tmp_path):
    path = tmp_path / "tree.toml"
    path.write_text(
        "[supervisor]\n"
        'runtime = "loop"\n'
        "[[supervisor.children]]\n"
        'id = "pool"\n'
        "[supervisor.children.supervisor]\n"
        'strategy = "simple_one_for_one"\n'
        "[[supervisor.children.supervisor.children]]\n"
        'id = "w"\n'
        'start = "helpers:Worker"\n'
    )
    spec = hr.load_tree(path)
    assert spec.runtime == "loop"
    assert spec.children[0].start.runtime == "thread"
    for fmt in ("toml", "yaml", "json"):
        again = tmp_path / f"again.{fmt}"
        hr.dump_tree(spec, again)
        assert hr.load_tree(again) == spec
    assert 'runtime = "loop"' in hr.dumps_tree(spec, "toml")


def test_a_tree_file_with_a_bad_runtime_names_it(tmp_path):
    path = tmp_path / "tree.toml"
    path.write_text('[supervisor]\nruntime = "fiber"\n')
    with pytest.raises(hr.ConfigError, match="runtime") as raised:
        hr.load_tree(path)
    assert "Traceback" not in str(raised.value)


class Ordered(hr.AsyncioActor):
    """Logs what it handles; crashes on "crash" (its on_start awaits when asked to)."""

    def __init__(self, log: list[object], slow_start: bool = False) -> None:
        super().__init__()
        self.log = log
        self.slow_start = slow_start

    def on_start(self) -> object:
        if self.slow_start:
            return asyncio.sleep(0)
        return None

    def on_receive(self, message: object) -> object:
        self.log.append((self.actor_incarnation, message))
        if message == "crash":
            raise RuntimeError("crash")
        return message


@pytest.mark.parametrize("slow_start", [False, True])
def test_messages_queued_for_a_restart_run_in_order_in_the_new_incarnations_first_turn(
    slow_start,
):
    # A child of the loop supervisor's loop starts in the supervisor's own turn:
    # what waits in its inbox is handled then, in order, and a crash there is
    # handled as any other (the next incarnation gets the rest).
    log: list[object] = []
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("o", Ordered, args=(log, slow_start))], max_restarts=10, runtime="loop"
    )
    tree, rec = start(spec)
    with tree:
        ref = tree.lookup("root/o")
        for message in ["crash", 1, "crash", 2, 3]:
            ref.tell(message)
        assert ref.ask("last", timeout=10) == "last"
        assert [m for _, m in log] == ["crash", 1, "crash", 2, 3, "last"]
        assert [i for i, _ in log] == [1, 2, 2, 3, 3, 3]
        assert len(rec.matching(EventKind.RESTARTED, "root/o")) == 2
        assert len(rec.matching(EventKind.DEAD_LETTER, "root/o")) == 2


def test_a_reload_changes_a_tree_of_loop_supervisors_as_a_tree_of_thread_ones():
    # update_tree uses replace_child, reserve/release_children and adopt_spec.
    def tree_spec(b_name: str, extra: str | None) -> hr.SupervisorSpec:
        inner_children = [hr.ChildSpec("x", LoopWorker, args=("x",))]
        if extra is not None:
            inner_children.append(hr.ChildSpec(extra, Worker, args=(extra,)))
        inner = hr.SupervisorSpec(inner_children, runtime="loop")
        return hr.SupervisorSpec(
            [
                hr.ChildSpec("a", LoopWorker, args=("a",)),
                hr.ChildSpec("b", LoopWorker, args=(b_name,)),
                hr.ChildSpec("inner", inner),
            ],
            name="svc",
            runtime="loop",
        )

    tree, rec = start(tree_spec("b", None))
    with tree:
        a, b = tree.lookup("svc/a"), tree.lookup("svc/b")
        plan = hr.update_tree(tree, tree_spec("b2", "y"))
        assert plan.summary() == "svc/b changed (args), svc/inner/y added"
        assert tree.lookup("svc/b") is b
        assert b.ask("hi", timeout=5) == ("b2", 2, "hi")
        assert a.ask("hi", timeout=5) == ("a", 1, "hi")
        assert tree.lookup("svc/inner/y").ask("hi", timeout=5) == ("y", 1, "hi")
        assert [c.id for c in tree.supervisor("inner").which_children()] == ["x", "y"]
        assert rec.matching(EventKind.RESTARTED, "svc/a") == []
