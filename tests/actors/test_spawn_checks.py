"""What `spawn` (`build`) refuses: a factory that builds no hedgerow actor, or
an actor whose class's ``__init__`` was not called; checked at every build,
whatever was built before from the same factory."""

from __future__ import annotations

from typing import Any

import pytest

import hedgerow as hr
from hedgerow.actors._spawn import spawn

pytestmark = pytest.mark.timeout(30)


class Idle(hr.AsyncioActor):
    pass


class NoInit(hr.AsyncioActor):
    def __init__(self) -> None:  # no super().__init__()
        pass


def test_a_factory_that_builds_no_hedgerow_actor_is_refused_every_time():
    refused = r"neither a hedgerow\.Actor nor a hedgerow\.AsyncioActor"
    for _ in range(2):
        with pytest.raises(TypeError, match=refused):
            spawn(object)


def test_the_same_class_is_accepted_again_and_a_plain_object_still_refused():
    refs: list[Any] = []
    for _ in range(3):
        actor = spawn(Idle)
        refs.append(actor.actor_ref)
    with pytest.raises(TypeError, match="neither"):
        spawn(dict)
    for ref in refs:
        ref.stop()


def test_a_supervised_actor_that_skips_its_init_is_refused():
    tree = hr.start_tree(
        hr.SupervisorSpec(
            [hr.ChildSpec("w", NoInit, restart="temporary")], strategy="simple_one_for_one"
        )
    )
    with tree, pytest.raises(hr.StartError, match="did not call its actor class's __init__"):
        tree.start_child()
