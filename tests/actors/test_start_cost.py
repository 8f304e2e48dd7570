"""What a start costs: a thread child's start does no work that nobody needs
(issue 13's dynamic start rate), and stays what pykka users expect."""

from __future__ import annotations

import uuid

import pykka
from helpers import start

import hedgerow as hr
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._ref import new_urn


class Idle(hr.Actor):
    pass


def test_an_actors_urn_is_a_random_uuid4_urn_as_pykkas():
    urns = {new_urn() for _ in range(2000)}
    assert len(urns) == 2000
    for urn in list(urns)[:200]:
        parsed = uuid.UUID(urn)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.urn == urn
    ref = Idle.start()
    try:
        assert uuid.UUID(ref.actor_urn).version == 4
        assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is ref
    finally:
        ref.stop()


def test_an_actors_stopped_flag_makes_no_condition_until_waited_on():
    ref = Idle.start()
    actor = ref._actor_weakref()
    assert actor is not None
    assert isinstance(actor.actor_stopped, StopFlag)
    assert actor.actor_stopped is ref.actor_stopped
    assert actor.actor_stopped._cond is None
    ref.stop()
    assert ref.actor_stopped.wait(timeout=5)
    assert not ref.is_alive()


def test_a_child_refs_urn_is_made_when_first_read_and_kept():
    tree, _ = start(hr.SupervisorSpec([hr.ChildSpec("a", Idle)]))
    with tree:
        ref = tree.get_child("a")
        assert ref._urn is None
        urn = ref.actor_urn
        assert uuid.UUID(urn).version == 4
        assert ref.actor_urn == urn
        assert urn != ref.incarnation.actor_urn  # the ref's own, not its incarnation's
