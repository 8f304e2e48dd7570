"""Checked by mypy --strict in tests/test_typing.py (never run): the test kit takes the
`AsyncioTree` of asyncio code wherever it takes a `Tree`."""

from __future__ import annotations

from typing import assert_type

import hedgerow as hr
from hedgerow.testing import EventRecorder, Faults, TreeFactory, capture_events


async def faults_of_an_asyncio_tree(spec: hr.SupervisorSpec, factory: TreeFactory) -> None:
    async with hr.open_tree(spec) as tree:
        with Faults(tree) as faults, capture_events(tree) as events:
            assert_type(faults.tree, hr.Tree)
            faults.crash("root/a")
            assert_type(events, EventRecorder)
        assert_type(factory.faults(tree), Faults)
        assert_type(EventRecorder(tree), EventRecorder)


def faults_of_a_tree(tree: hr.Tree) -> None:
    with Faults(tree) as faults:
        assert_type(faults.tree, hr.Tree)
