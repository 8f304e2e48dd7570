"""`update_tree` checks that each added or changed child's args and kwargs bind
to what starts it before anything running is touched: a typo in a kwarg is
refused, not found out by stopping the child and failing to start it."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Log, Worker, start, worker

import hedgerow as hr
from hedgerow.supervision._update import arguments_problem, update_tree


def incarnations(handle: hr.SupervisorHandle) -> dict[str, int]:
    return {c.id: c.incarnation for c in handle.which_children()}


def sup(*children: hr.ChildSpec, **settings: Any) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), name="svc", **settings)


def test_a_changed_child_whose_kwargs_do_not_bind_is_refused_with_nothing_touched():
    log = Log()
    tree, recorder = start(sup(worker("a", log), worker("b", log)))
    with tree:
        typo = hr.ChildSpec("b", Worker, kwargs={"nmae": "b2"})
        with pytest.raises(hr.UpdateFailed) as failed:
            update_tree(tree, sup(worker("a", log), typo, worker("n", log)))
        assert str(failed.value) == (
            "child 'svc/b' cannot take its args and kwargs: "
            "got an unexpected keyword argument 'nmae'; nothing running was touched"
        )
        assert failed.value.rolled_back
        assert incarnations(tree) == {"a": 1, "b": 1}  # b was not restarted
        assert log.of("start") == ["a", "b"]  # nor n started
        assert recorder.matching(hr.EventKind.RESTARTED) == []


def test_the_children_of_an_added_supervisor_are_checked_too():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:
        inner = hr.SupervisorSpec([hr.ChildSpec("x", Worker, args=("x", log, "extra"))])
        with pytest.raises(hr.UpdateFailed, match=r"child 'svc/inner/x' cannot take its args"):
            update_tree(tree, sup(worker("a", log), hr.ChildSpec("inner", inner)))
        assert [c.id for c in tree.which_children()] == ["a"]
        assert tree.names.paths() == ["svc/a"]


def test_a_factory_and_a_simple_one_for_one_template_are_checked_as_far_as_they_can_be():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:

        def make(name: str) -> Worker:
            return Worker(name, log)

        pool = hr.SupervisorSpec(
            [hr.ChildSpec("job", Worker)], strategy="simple_one_for_one"
        )  # its args come with each start_child: not checked
        plan = update_tree(
            tree,
            sup(worker("a", log), hr.ChildSpec("f", make, args=("f",)), hr.ChildSpec("pool", pool)),
        )
        assert plan.summary() == "svc/f added, svc/pool added"
        with pytest.raises(hr.UpdateFailed, match=r"child 'svc/f' cannot take its args"):
            update_tree(
                tree, sup(worker("a", log), hr.ChildSpec("f", make), hr.ChildSpec("pool", pool))
            )


def test_the_components_of_a_worker_process_are_checked_before_it_restarts():
    container = hr.SupervisorSpec([hr.ChildSpec("c", Worker, kwargs={"nmae": "c"})])
    spec = hr.ChildSpec("proc", hr.Worker(container))
    problem = arguments_problem(spec, "svc/proc")
    assert problem == (
        "child 'svc/proc/c' cannot take its args and kwargs: "
        "got an unexpected keyword argument 'nmae'"
    )
