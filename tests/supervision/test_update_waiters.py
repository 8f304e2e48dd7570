"""`waiting_for`: the tasks that an asyncio task's end wakes, directly or through
others (how `update_tree` tells that a child's handler waits for the task that
awaits the update)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from hedgerow.supervision._waiters import waiting_for

pytestmark = pytest.mark.timeout(10)


async def _park(release: asyncio.Event) -> None:
    await release.wait()


async def _sees(wait: Callable[[asyncio.Task[None]], Awaitable[Any]] | None) -> tuple[bool, bool]:
    """Whether a handler task that waits for a task (in way `wait`, or by sleeping
    when None) is seen waiting for it; and whether a bystander task is."""
    release = asyncio.Event()
    task = asyncio.create_task(_park(release))

    async def handler() -> None:
        if wait is None:
            await asyncio.sleep(10)
        else:
            await wait(task)

    handling = asyncio.create_task(handler())
    bystander = asyncio.create_task(asyncio.sleep(10))
    await asyncio.sleep(0.01)  # both are waiting now
    waiters = waiting_for(task)
    release.set()
    handling.cancel()
    bystander.cancel()
    await asyncio.gather(handling, bystander, task, return_exceptions=True)
    return handling in waiters, bystander in waiters


async def _through_another_task(task: asyncio.Task[None]) -> None:
    async def middle() -> None:
        await task

    await asyncio.create_task(middle())


WAYS: dict[str, Callable[[asyncio.Task[None]], Awaitable[Any]]] = {
    "await": lambda task: task,
    "wait_for": lambda task: asyncio.wait_for(task, 10),
    "gather": asyncio.gather,
    "shield": asyncio.shield,
    "wait": lambda task: asyncio.wait([task]),
    "through another task": _through_another_task,
}


@pytest.mark.parametrize("way", list(WAYS))
def test_a_task_waiting_for_another_is_seen_and_a_bystander_is_not(way):
    assert asyncio.run(_sees(WAYS[way])) == (True, False)


def test_a_task_that_waits_for_something_else_is_not_seen():
    assert asyncio.run(_sees(None)) == (False, False)


def test_a_task_groups_parent_is_seen_waiting_for_the_groups_tasks():
    async def main() -> bool:
        release = asyncio.Event()
        seen: list[Any] = []

        async def parked() -> None:
            seen.append(waiting_for(asyncio.current_task()))
            await release.wait()

        async def parent() -> None:
            async with asyncio.TaskGroup() as group:
                group.create_task(parked())
                await asyncio.sleep(0)  # the child runs first, before the group's end

        handling = asyncio.create_task(parent())
        await asyncio.sleep(0.01)
        release.set()
        await handling
        return handling in seen[0]

    assert asyncio.run(main())


def test_no_task_no_waiters():
    assert waiting_for(None) == []
    assert waiting_for("not a task") == []
