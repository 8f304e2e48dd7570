"""Flags an idle child does not carry until they are asked for: a `ChildRef`'s
``actor_stopped`` and an incarnation's ``_hr_exited`` (and its lock). Made
before or after the change they tell of, they tell the same."""

from __future__ import annotations

from typing import Any

import pytest

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)


class Idle(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


class ThreadIdle(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


@pytest.mark.parametrize("actor_class", [Idle, ThreadIdle])
def test_a_refs_actor_stopped_made_before_it_goes_is_set_and_cleared_with_it(actor_class):
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("w", actor_class)]))
    with tree:
        ref = tree.get_child("w")
        flag = ref.actor_stopped
        assert not flag.is_set()
        assert ref.is_alive()
        tree.stop_child("w")
        assert flag.is_set()
        assert not ref.is_alive()
        tree.restart_child("w")
        assert ref.actor_stopped is flag
        assert not flag.is_set()
        assert ref.ask("hi", timeout=5) == "hi"


@pytest.mark.parametrize("actor_class", [Idle, ThreadIdle])
def test_a_refs_actor_stopped_made_after_it_has_gone_is_set(actor_class):
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("w", actor_class)]))
    with tree:
        ref = tree.get_child("w")
        tree.stop_child("w")
        assert ref.actor_stopped.is_set()
        assert ref.actor_stopped.wait(timeout=0)
        tree.restart_child("w")
        assert not ref.actor_stopped.is_set()


@pytest.mark.parametrize("actor_class", [Idle, ThreadIdle])
@pytest.mark.parametrize("asked", ["before", "after"])
def test_an_incarnations_exit_flag_tells_its_exit_whenever_it_is_made(actor_class, asked):
    tree = hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("w", actor_class)]))
    with tree:
        ref = tree.get_child("w")
        actor = ref.incarnation
        assert actor is not None
        flag = actor._hr_exited if asked == "before" else None
        assert not actor._hr_has_exited
        tree.stop_child("w")
        assert (flag or actor._hr_exited).wait(timeout=5)
        assert actor._hr_has_exited
        assert actor._hr_exited is (flag or actor._hr_exited)
