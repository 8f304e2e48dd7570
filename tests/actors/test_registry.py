"""pykka's ActorRegistry, indexed by hedgerow (`hedgerow.actors._registry`): the same
answers, in the same order, with O(1) unregisters for trees of many actors."""

from __future__ import annotations

import pykka
import pytest
from helpers import Worker, start, worker

import hedgerow as hr
from hedgerow.actors._registry import RefTable, index_registry


def test_a_tree_indexes_the_registry_and_it_answers_as_pykkas_list(runtime):
    tree, _ = start(hr.SupervisorSpec([worker("a"), worker("b")]))
    with tree:
        assert isinstance(pykka.ActorRegistry._actor_refs, RefTable)
        loose = [runtime.of(Worker).start(str(n)) for n in range(3)]
        refs = pykka.ActorRegistry.get_all()
        assert refs[-3:] == loose  # registration order
        assert pykka.ActorRegistry.get_by_urn(loose[1].actor_urn) is loose[1]
        assert loose[1] in pykka.ActorRegistry.get_by_class(loose[1].actor_class)
        loose[1].stop()
        assert loose[1] not in pykka.ActorRegistry.get_all()
        pykka.ActorRegistry.unregister(loose[1])  # not there: a no-op, as pykka's
        for ref in (loose[0], loose[2]):
            ref.stop()
    assert pykka.ActorRegistry.get_all() == []


def test_the_table_keeps_what_was_registered_before_it():
    table = RefTable(["x", "y"])
    table.append("z")
    table.remove("y")
    assert (list(table), table[:], len(table), "x" in table) == (["x", "z"], ["x", "z"], 2, True)
    with pytest.raises(ValueError, match="not registered"):
        table.remove("y")
    index_registry()
    index_registry()  # once
    assert isinstance(pykka.ActorRegistry._actor_refs, RefTable)
