"""`AsyncioTree` offers what `Tree` does: each call that blocks is a coroutine, each
that does not is plain, so an asyncio application never needs `tree.sync`."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from helpers import worker

import hedgerow as hr

pytestmark = pytest.mark.timeout(30)

PLAIN = {"lookup", "request_stop"}
"""`Tree` methods that do not wait: plain on `AsyncioTree` too."""
NOT_FOR_ASYNCIO = {"__enter__", "__exit__"}
"""`async with` (`__aenter__`, `__aexit__`) instead."""


def public(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def test_every_public_name_of_tree_is_on_the_asyncio_tree():
    missing = public(hr.Tree) - public(hr.AsyncioTree)
    assert not missing, f"Tree has, AsyncioTree has not: {sorted(missing)}"


def test_what_blocks_on_a_tree_is_a_coroutine_on_the_asyncio_tree():
    for name in sorted(public(hr.Tree)):
        sync = inspect.getattr_static(hr.Tree, name)
        if not inspect.isfunction(sync):
            continue  # a property or attribute: plain on both
        mine = inspect.getattr_static(hr.AsyncioTree, name)
        if name in PLAIN:
            assert not inspect.iscoroutinefunction(mine), name
        else:
            assert inspect.iscoroutinefunction(mine), f"AsyncioTree.{name} is not a coroutine"


def test_every_supervisor_call_is_a_coroutine_on_a_nested_supervisors_handle():
    for name in sorted(public(hr.SupervisorHandle) - {"ref", "timeout"}):
        mine = inspect.getattr_static(hr.AsyncioSupervisorHandle, name, None)
        assert mine is not None, f"AsyncioSupervisorHandle has no {name}"
        assert inspect.iscoroutinefunction(mine), name


def test_reserving_and_releasing_children_and_adopting_a_spec_from_asyncio():
    """The steps of an update, each awaited (as `update_tree` does them in a thread)."""

    async def main() -> None:
        a, b = worker("a"), worker("b")
        async with hr.open_tree(hr.SupervisorSpec([a, b], name="svc")) as tree:
            await tree.reserve_children([worker("n")])
            await tree.release_children(["n"])
            await tree.adopt_spec(hr.SupervisorSpec([b, a], name="svc"))  # another order
            with pytest.raises(hr.SpecError, match="adopt_spec keeps the settings"):
                await tree.adopt_spec(hr.SupervisorSpec([a], name="svc", strategy="one_for_all"))
            assert [c.id for c in await tree.which_children()] == ["b", "a"]

    asyncio.run(main())
