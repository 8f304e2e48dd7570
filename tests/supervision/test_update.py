"""`update_tree`: a running tree takes a new spec, and only what changed is touched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import FailingStart, Log, Worker, start, worker

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.node._treeload import read_tree
from hedgerow.supervision._plan import ChangeKind, plan_update
from hedgerow.supervision._update import update_tree


def incarnations(handle: hr.SupervisorHandle) -> dict[str, int]:
    return {c.id: c.incarnation for c in handle.which_children()}


def actors(handle: hr.SupervisorHandle) -> dict[str, Any]:
    return {c.id: c.ref.incarnation for c in handle.which_children()}


def sup(*children: hr.ChildSpec, **settings: Any) -> hr.SupervisorSpec:
    return hr.SupervisorSpec(list(children), name="svc", **settings)


def test_changing_one_child_restarts_it_alone_and_keeps_its_ref():
    log = Log()
    a, b, c = worker("a", log), worker("b", log), worker("c", log)
    tree, rec = start(sup(a, b, c))
    with tree:
        before, running = incarnations(tree), actors(tree)
        ref = tree.get_child("b")
        changed = hr.ChildSpec("b", Worker, args=("b2", log))
        plan = update_tree(tree, sup(a, changed, c))
        assert [(ch.path, ch.kind, ch.fields) for ch in plan.changes] == [
            ("svc/b", ChangeKind.CHANGED, ("args",))
        ]
        assert incarnations(tree) == {**before, "b": 2}
        after = actors(tree)
        assert after["a"] is running["a"]
        assert after["c"] is running["c"]
        assert tree.get_child("b") is ref  # the stable ref outlives the change
        assert ref.ask("hi") == ("b2", 2, "hi")
        assert tree.spec.children[1] == changed
        assert [e.path for e in rec.matching(EventKind.RESTARTED)] == ["svc/b"]
        assert [c.restarts for c in tree.which_children()] == [0, 0, 0]  # none counted
    assert log.of("stop") == ["b", "c", "b2", "a"]


def test_removed_children_stop_in_reverse_order_and_added_ones_start_in_their_place():
    log = Log()
    tree, _ = start(sup(worker("a", log), worker("b", log), worker("c", log)))
    with tree:
        before = actors(tree)
        plan = update_tree(tree, sup(worker("a", log), worker("n", log), worker("m", log)))
        assert plan.summary() == "svc/b removed, svc/c removed, svc/n added, svc/m added"
        assert log.of("stop") == ["c", "b"]
        assert log.of("start")[-2:] == ["n", "m"]
        assert [c.id for c in tree.which_children()] == ["a", "n", "m"]
        assert actors(tree)["a"] is before["a"]
        with pytest.raises(hr.ChildNotFound):
            tree.get_child("b")
    assert log.of("stop")[2:] == ["m", "n", "a"]


def test_an_added_child_starts_before_anything_running_is_touched():
    log = Log()
    tree, _ = start(sup(worker("a", log), worker("b", log)))
    with tree:
        new = sup(
            hr.ChildSpec("a", Worker, args=("a2", log)),  # changed
            worker("n", log),
            hr.ChildSpec("bad", FailingStart),
        )
        with pytest.raises(hr.UpdateFailed) as failed:
            update_tree(tree, new)
        assert str(failed.value) == (
            "child 'svc/bad' failed to start: ValueError: cannot start; nothing running was touched"
        )
        assert failed.value.rolled_back
        assert incarnations(tree) == {"a": 1, "b": 1}
        assert log.of("start") == ["a", "b", "n"]
        assert log.of("stop") == ["n"]  # the added child that had started
        assert tree.spec == sup(worker("a", log), worker("b", log))


def test_a_changed_child_that_fails_to_start_undoes_the_whole_update():
    log = Log()
    old = sup(worker("a", log), worker("b", log), worker("c", log))
    tree, _ = start(old)
    with tree:
        ref = tree.get_child("b")
        new = sup(worker("a", log), hr.ChildSpec("b", FailingStart), worker("n", log))
        with pytest.raises(hr.UpdateFailed) as failed:
            update_tree(tree, new)
        message = str(failed.value)
        assert message == (
            "child 'svc/b' failed to start: ValueError: cannot start; what was changed was undone"
        )
        assert failed.value.rolled_back
        assert isinstance(failed.value.cause, hr.StartError)
        # c was removed then started again, b restarted with its old spec, n stopped again.
        assert [c.id for c in tree.which_children()] == ["a", "b", "c"]
        # b's incarnation 2 failed to start; 3 runs its old spec.
        assert incarnations(tree) == {"a": 1, "b": 3, "c": 2}
        assert tree.get_child("b") is ref
        assert ref.ask("back") == ("b", 3, "back")
        assert tree.spec is old
    assert log.of("stop")[-3:] == ["c", "b", "a"]


def test_an_undone_change_leaves_a_stopped_child_stopped():
    log = Log()
    old = sup(worker("t", log, restart="failed"), worker("z", log))
    tree, rec = start(old)
    with tree:
        tree.get_child("t").tell("stop")  # a normal exit: not restarted, its spec kept
        rec.wait_for(EventKind.STOPPED, "svc/t")
        new = sup(hr.ChildSpec("t", Worker, args=("t2", log)), hr.ChildSpec("z", FailingStart))
        with pytest.raises(hr.UpdateFailed, match="what was changed was undone"):
            update_tree(tree, new)
        states = {c.id: c.state for c in tree.which_children()}
        assert states == {"t": hr.ChildState.STOPPED, "z": hr.ChildState.RUNNING}
        # t2 for the change; undone: z with its old spec, then t (stopped again)
        assert log.of("start") == ["t", "z", "t2", "z", "t"]
        assert log.of("stop")[-2:] == ["t2", "t"]


def test_a_reordered_child_is_not_restarted_and_stops_in_its_new_place():
    log = Log()
    tree, _ = start(sup(worker("a", log), worker("b", log), worker("c", log)))
    with tree:
        plan = update_tree(tree, sup(worker("c", log), worker("a", log), worker("b", log)))
        assert {(ch.path, ch.kind) for ch in plan.changes} == {
            ("svc/c", ChangeKind.MOVED),
            ("svc/a", ChangeKind.MOVED),
            ("svc/b", ChangeKind.MOVED),
        }
        assert incarnations(tree) == {"c": 1, "a": 1, "b": 1}
    assert log.of("stop") == ["b", "a", "c"]


def test_rest_for_one_restarts_the_children_after_the_failed_one_in_the_new_order():
    log = Log()
    spec = sup(worker("a", log), worker("b", log), strategy="rest_for_one")
    tree, rec = start(spec)
    with tree:
        update_tree(
            tree, sup(worker("a", log), worker("n", log), worker("b", log), strategy="rest_for_one")
        )
        tree.get_child("n").tell("crash")
        rec.wait_for(EventKind.RESTARTED, "svc/b")
        assert incarnations(tree) == {"a": 1, "n": 2, "b": 2}


def nested(*children: hr.ChildSpec, **settings: Any) -> hr.ChildSpec:
    return hr.ChildSpec("inner", hr.SupervisorSpec(list(children), **settings))


def test_a_kept_supervisor_takes_the_changes_among_its_children():
    log = Log()
    old = sup(worker("a", log), nested(worker("x", log), worker("y", log), max_restarts=0))
    tree, rec = start(old)
    with tree:
        inner = tree.supervisor("inner")
        supervisor_actor = tree.get_child("inner").incarnation
        y = inner.get_child("y").incarnation
        changed = sup(
            worker("a", log),
            nested(worker("x", log, restart="failed"), worker("y", log), max_restarts=0),
        )
        plan = update_tree(tree, changed)
        assert plan.summary() == "svc/inner/x changed (restart)"
        assert tree.get_child("inner").incarnation is supervisor_actor
        assert incarnations(inner) == {"x": 2, "y": 1}
        assert inner.get_child("y").incarnation is y
        # Its parent keeps the new nested spec: a restart of the supervisor uses it.
        inner.get_child("x").tell("crash")  # more than max_restarts=0: inner gives up
        rec.wait_for(EventKind.RESTARTED, "svc/inner")
        assert tree.get_child("inner").incarnation is not supervisor_actor
        restarted = tree.supervisor("inner").which_children()
        assert [(c.id, c.restart) for c in restarted] == [
            ("x", hr.Restart.FAILED),
            ("y", hr.Restart.ALWAYS),
        ]


def test_a_supervisor_whose_settings_changed_restarts_with_its_subtree():
    log = Log()
    tree, _ = start(sup(worker("a", log), nested(worker("x", log))))
    with tree:
        a = tree.get_child("a").incarnation
        plan = update_tree(tree, sup(worker("a", log), nested(worker("x", log), max_restarts=10)))
        assert plan.summary() == "svc/inner changed (supervisor.max_restarts)"
        assert incarnations(tree) == {"a": 1, "inner": 2}
        assert tree.get_child("a").incarnation is a
        assert log.of("stop") == ["x"]
        assert log.of("start") == ["a", "x", "x"]


def test_a_changed_root_supervisor_is_refused_with_nothing_touched():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:
        with pytest.raises(hr.UpdateFailed, match=r"root supervisor 'svc' changed \(strategy\)"):
            update_tree(tree, sup(worker("a", log), worker("b", log), strategy="one_for_all"))
        assert incarnations(tree) == {"a": 1}


def test_a_second_update_starts_from_the_first():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:
        update_tree(tree, sup(worker("a", log), worker("b", log)))
        assert update_tree(tree, sup(worker("a", log), worker("b", log))).empty
        plan = update_tree(tree, sup(worker("b", log)))
        assert plan.summary() == "svc/a removed"
        assert incarnations(tree) == {"b": 1}


def test_a_temporary_child_that_ended_is_not_started_by_an_update():
    log = Log()
    tree, rec = start(sup(worker("a", log), worker("t", log, restart="never")))
    with tree:
        tree.get_child("t").tell("stop")
        rec.wait_for(EventKind.STOPPED, "svc/t")
        update_tree(tree, sup(worker("t", log, restart="never"), worker("a", log)))
        assert [c.id for c in tree.which_children()] == ["a"]
        update_tree(tree, sup(worker("a", log)))  # removing it: nothing to stop
        assert incarnations(tree) == {"a": 1}


class Source(hr.Actor):
    """Looks its sink up when it starts, and sends it a message."""

    def on_start(self) -> None:
        self.actor_lookup("sink").tell("from source")


def test_added_children_may_look_each_other_up_in_any_order():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:
        added = sup(worker("a", log), hr.ChildSpec("source", Source), worker("sink", log))
        update_tree(tree, added)
        assert tree.get_child("sink").ask("then", timeout=5) == ("sink", 1, "then")
        assert log.of("got") == [("sink", "from source"), ("sink", "then")]


def test_a_refused_update_forgets_the_names_it_gave():
    log = Log()
    tree, rec = start(sup(worker("a", log)))
    with tree:
        refused = sup(
            worker("a", log),
            hr.ChildSpec("source", Source),
            hr.ChildSpec("bad", FailingStart),
            worker("sink", log),
        )
        with pytest.raises(hr.UpdateFailed, match="nothing running was touched"):
            update_tree(tree, refused)
        for path in ("svc/source", "svc/bad", "svc/sink"):
            with pytest.raises(hr.ChildNotFound):
                tree.lookup(path)
        # What the source sent its sink, which never started, is a dead letter.
        assert [e.path for e in rec.matching(EventKind.DEAD_LETTER)] == ["svc/sink"]
        assert log.of("start") == ["a"]


# -- the plan -------------------------------------------------------------------------


def test_a_changed_id_is_a_removal_and_an_addition():
    plan = plan_update(sup(worker("a")), sup(worker("b")), "svc")
    assert [(c.path, c.kind) for c in plan.changes] == [
        ("svc/a", ChangeKind.REMOVED),
        ("svc/b", ChangeKind.ADDED),
    ]
    assert [c.as_data() for c in plan.changes] == [
        {"path": "svc/a", "change": "removed"},
        {"path": "svc/b", "change": "added"},
    ]


def test_the_plan_names_the_fields_that_changed():
    old = sup(worker("a"), hr.ChildSpec("b", Worker, kwargs={"name": "b"}))
    new = sup(worker("a", shutdown=1), hr.ChildSpec("b", FailingStart))
    plan = plan_update(old, new, "svc")
    assert [c.as_data() for c in plan.changes] == [
        {"path": "svc/a", "change": "changed", "fields": ["shutdown"]},
        {"path": "svc/b", "change": "changed", "fields": ["kwargs", "start"]},
    ]
    assert plan_update(old, old, "svc").empty
    renamed = hr.SupervisorSpec([worker("a")], name="other")
    assert plan_update(old, renamed, "svc").root_fields == ("name",)
    named = plan_update(
        hr.SupervisorSpec([worker("a")]), hr.SupervisorSpec([worker("a")], name="root"), "root"
    )
    assert not named.replaces_tree  # the name the tree had already
    assert named.changes == ()


def test_a_simple_one_for_one_template_is_a_setting():
    old = sup(nested(worker("t"), strategy="simple_one_for_one"))
    new = sup(nested(worker("t", restart="never"), strategy="simple_one_for_one"))
    (change,) = plan_update(old, new, "svc").changes
    assert change.as_data() == {
        "path": "svc/inner",
        "change": "changed",
        "fields": ["supervisor.children"],
    }


# -- the supervisor's two calls -------------------------------------------------------


def test_adopt_spec_refuses_another_setting_or_child_spec():
    log = Log()
    tree, _ = start(sup(worker("a", log)))
    with tree:
        with pytest.raises(hr.SpecError, match="adopt_spec keeps the settings"):
            tree.adopt_spec(sup(worker("a", log), max_restarts=9))
        with pytest.raises(hr.SpecError, match="adopt_spec keeps each child's spec"):
            tree.adopt_spec(sup(worker("a", log, shutdown=1)))


def test_replace_child_starts_a_stopped_child_and_is_not_for_simple_one_for_one():
    log = Log()
    tree, _ = start(sup(worker("a", log), nested(worker("t"), strategy="simple_one_for_one")))
    with tree:
        tree.stop_child("a")
        ref = tree.replace_child(hr.ChildSpec("a", Worker, args=("a2", log)))
        assert ref.ask("hi") == ("a2", 2, "hi")
        with pytest.raises(hr.NotAllowedForSimpleOneForOne):
            tree.supervisor("inner").replace_child(worker("t"))


# -- tree files -----------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize(
    "file",
    [*sorted(EXAMPLES.glob("*/tree.*")), EXAMPLES / "escalation" / "gives_up.toml"],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_a_tree_file_read_twice_changes_nothing(file):
    """Specs built twice from one file compare equal (workers, components, ${VAR}s
    included): a reload of an unchanged file restarts nothing."""
    first, again = read_tree(file), read_tree(file)
    assert plan_update(first.spec, again.spec, "root").empty
    assert first.management == again.management


def test_a_worker_process_is_one_child_whatever_changed_in_its_table(tmp_path):
    text = (EXAMPLES / "workers" / "tree.toml").read_text()
    (tmp_path / "node_actors.py").write_text((EXAMPLES / "workers" / "node_actors.py").read_text())
    (tmp_path / "tree.toml").write_text(text)
    changed = text.replace('restart = "restart-failed"', 'restart = "restart-never"')
    (tmp_path / "changed.toml").write_text(changed)
    old, new = read_tree(tmp_path / "tree.toml"), read_tree(tmp_path / "changed.toml")
    (change,) = plan_update(old.spec, new.spec, "root").changes
    assert change.as_data() == {"path": "root/steady", "change": "changed", "fields": ["worker"]}


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("tree.toml", "hedgerow.load_tree"),
        (hr.ChildSpec("a", Worker), "SupervisorSpec"),
        (None, "SupervisorSpec"),
    ],
)
def test_an_update_to_what_is_not_a_supervisor_spec_is_a_type_error_that_says_what_to_give(
    spec, hint
):
    """(It was AttributeError: 'str' object has no attribute 'name', from deep inside.)"""
    tree, _ = start(sup(worker("a")))
    with tree:
        with pytest.raises(TypeError, match="update_tree needs a SupervisorSpec") as raised:
            update_tree(tree, spec)
        assert hint in str(raised.value)
        assert incarnations(tree) == {"a": 1}


def test_an_update_of_what_is_not_a_tree_is_a_type_error_that_says_what_to_give():
    with pytest.raises(TypeError, match=r"update_tree takes the Tree of start_tree"):
        update_tree(sup(worker("a")), sup(worker("a")))  # type: ignore[arg-type]


def test_an_update_of_a_tree_that_has_ended_is_refused_saying_so():
    """(It was "svc: ActorDeadError: Supervisor (urn:uuid:...) not found; could not undo: ...".)"""
    tree, _ = start(sup(worker("a")))
    tree.stop()
    with pytest.raises(hr.UpdateFailed) as failed:
        update_tree(tree, sup(worker("a"), worker("b")))
    assert str(failed.value) == "tree 'svc' has ended (shutdown): nothing running was touched"
    assert failed.value.problems == ()
