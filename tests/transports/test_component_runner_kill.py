"""A component's `HandlerRunner` killed with a handler's coroutine made but not
started: the coroutine is closed, never left to be collected un-awaited."""

from __future__ import annotations

import asyncio
import gc
import inspect
import threading
import warnings
from typing import Any

import pytest

from hedgerow.actors._loop import hedgerow_loop
from hedgerow.components._component import Component
from hedgerow.components._component_runner import Fire, HandlerRunner

pytestmark = [
    pytest.mark.timeout(30),
    # A coroutine collected un-awaited warns from its finalizer: an error here.
    pytest.mark.filterwarnings("error::RuntimeWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
]

TIMEOUT = 10.0


class _Owner:
    """What a runner needs of its component's actor to run lifecycle handlers."""

    def __init__(self, component: Component) -> None:
        self.component = component

    def __str__(self) -> str:
        return "Component test"


@pytest.mark.parametrize("event", ["join", "leave"])
def test_a_killed_runner_closes_the_handler_coroutine_it_had_not_started(event, caplog):
    gc.collect()  # what earlier tests left is collected (and logged) before this one
    caplog.clear()
    comp = Component(name="svc")
    ran: list[str] = []

    async def handler(*args: Any) -> None:
        ran.append(event)

    comp.on(event, handler)
    loop = hedgerow_loop()
    runner = HandlerRunner.start(_Owner(comp), loop).actor_inbox._actor
    seen: dict[str, Any] = {}
    answers: list[Any] = []
    done = threading.Event()

    def kill() -> None:
        # The runner's wake-up made the task that awaits the handler's coroutine;
        # that task has not taken its first step yet.
        task = runner._hr_task
        seen["task"] = task is not None
        seen["state"] = inspect.getcoroutinestate(task.get_coro()) if task is not None else None
        runner._hr_kill()
        loop.call_soon(done.set)

    def ask_then_kill() -> None:
        answers.append(runner.actor_ref.ask(Fire(event, None, None), block=False))
        loop.call_soon(kill)  # after the wake-up the ask scheduled

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop.call_soon_threadsafe(ask_then_kill)
        assert done.wait(TIMEOUT)
        assert runner.actor_stopped.wait(TIMEOUT)
        # Let the cancelled task end on the loop, then collect what it held.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(TIMEOUT)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(TIMEOUT)
        answers.clear()  # (its error, an ActorDeadError, holds frames)
        runner = None  # (it may hold its last task)
        gc.collect()
    assert seen["task"]
    assert seen["state"] == inspect.CORO_CREATED
    assert ran == []  # killed first: the handler never ran
    never_awaited = [str(w.message) for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []
    # Nor a task left failed ("Task exception was never retrieved").
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
