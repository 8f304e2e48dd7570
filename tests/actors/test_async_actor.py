"""hedgerow.AsyncioActor: pykka's actor interface on an asyncio loop, unsupervised."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pykka
import pytest

import hedgerow as hr
from hedgerow.actors._loop import _runtimes, forget_closed_loops, hedgerow_loop, runtime_for

pytestmark = pytest.mark.timeout(30)

WAIT = 10.0


class Recorder(hr.AsyncioActor):
    """Records what it handles; ``("hold", event)`` awaits an asyncio event first."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []
        self.threads: set[int] = set()

    async def on_receive(self, message: Any) -> Any:
        self.threads.add(threading.get_ident())
        if isinstance(message, tuple) and message[0] == "hold":
            await message[1].wait()
        self.seen.append(message)
        return ("done", message)

    def gate(self) -> asyncio.Event:
        return asyncio.Event()

    def get_seen(self) -> list[Any]:
        return list(self.seen)


class Echo(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


def test_plain_and_async_hooks_run_in_order() -> None:
    calls: list[str] = []
    stopped = threading.Event()

    class Hooks(hr.AsyncioActor):
        async def on_start(self) -> None:
            await asyncio.sleep(0)
            calls.append("start")

        def on_receive(self, message: Any) -> Any:
            calls.append(message)
            return message * 2

        async def on_stop(self) -> None:
            await asyncio.sleep(0)
            calls.append("stop")
            stopped.set()

    ref = Hooks.start()
    ref.tell("a")
    assert ref.ask("b", timeout=WAIT) == "bb"
    assert ref.stop(timeout=WAIT) is True
    assert stopped.wait(WAIT)
    assert calls == ["start", "a", "b", "stop"]
    assert not ref.is_alive()


def test_an_await_holds_back_only_its_own_actors_next_message() -> None:
    held = Recorder.start()
    other = Echo.start()
    try:
        proxy = held.proxy()
        gate = proxy.gate().get(timeout=WAIT)
        assert held.ask("first", timeout=WAIT) == ("done", "first")
        held.tell(("hold", gate))
        after = held.ask("after", block=False)
        # The held actor's next message waits; the loop's other actor answers.
        assert other.ask("ping", timeout=WAIT) == "ping"
        with pytest.raises(pykka.Timeout):
            after.get(timeout=0)
        actor = held._actor_weakref()
        assert isinstance(actor, hr.AsyncioActor)
        actor.actor_loop.call_soon_threadsafe(gate.set)
        assert after.get(timeout=WAIT) == ("done", "after")
        assert proxy.get_seen().get(timeout=WAIT) == ["first", ("hold", gate), "after"]
    finally:
        held.stop()
        other.stop()


def test_actors_share_hedgerows_loop_thread() -> None:
    refs = [Recorder.start() for _ in range(5)]
    try:
        for ref in refs:
            assert ref.ask("x", timeout=WAIT) == ("done", "x")
        threads = set().union(*(r.proxy().threads.get(timeout=WAIT) for r in refs))
        loops = {r._actor_weakref().actor_loop for r in refs}  # type: ignore[union-attr]
        assert loops == {hedgerow_loop()}
        assert len(threads) == 1
        assert threads != {threading.get_ident()}
    finally:
        for ref in refs:
            ref.stop()


def test_tells_from_a_thread_arrive_in_order() -> None:
    ref = Recorder.start()
    try:
        for i in range(2000):
            ref.tell(i)
        assert ref.proxy().get_seen().get(timeout=WAIT) == list(range(2000))
    finally:
        ref.stop()


def test_proxies_await_async_methods() -> None:
    class Calc(hr.AsyncioActor):
        async def double(self, x: int) -> int:
            await asyncio.sleep(0)
            return 2 * x

        value = 7

    ref = Calc.start()
    try:
        proxy = ref.proxy()
        assert proxy.double(21).get(timeout=WAIT) == 42
        assert proxy.value.get(timeout=WAIT) == 7
    finally:
        ref.stop()


def test_started_in_a_coroutine_it_runs_on_that_loop_without_a_thread_hop() -> None:
    class Elsewhere(Echo):
        use_running_loop = False

    async def main() -> tuple[Any, ...]:
        loop = asyncio.get_running_loop()
        here = Echo.start()
        there = Elsewhere.start()
        try:
            answer = await here.ask("hi", block=False)
            far = await there.ask("far", block=False)
            return (
                answer,
                far,
                here._actor_weakref().actor_loop is loop,  # type: ignore[union-attr]
                there._actor_weakref().actor_loop is hedgerow_loop(),  # type: ignore[union-attr]
                await here.proxy().on_receive("by proxy"),
            )
        finally:
            await here.stop(block=False)
            there.stop()

    assert asyncio.run(main()) == ("hi", "far", True, True, "by proxy")


def test_blocking_on_an_answer_from_the_same_loop_is_an_error_not_a_hang() -> None:
    class Asker(hr.AsyncioActor):
        def on_receive(self, message: Any) -> Any:
            return message.ask("ping")  # blocks the loop the answer needs

    asker = Asker.start()
    echo = Echo.start()
    try:
        with pytest.raises(RuntimeError, match="await the future"):
            asker.ask(echo, timeout=WAIT)
        assert echo.ask("still fine", timeout=WAIT) == "still fine"
    finally:
        asker.stop()
        echo.stop()


def test_a_handler_awaits_another_actors_answer() -> None:
    class Asker(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            return await message.ask("ping", block=False)

    asker = Asker.start()
    echo = Echo.start()
    try:
        assert asker.ask(echo, timeout=WAIT) == "ping"
    finally:
        asker.stop()
        echo.stop()


def test_an_ask_error_goes_back_and_a_tell_error_fails_the_actor() -> None:
    failed = threading.Event()
    seen: list[Any] = []

    class Fragile(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            await asyncio.sleep(0)
            if message == "boom":
                raise ValueError("boom")
            return message

        async def on_failure(self, *exc_info: Any) -> None:
            seen.append(exc_info[1])
            failed.set()

    ref = Fragile.start()
    with pytest.raises(ValueError, match="boom"):
        ref.ask("boom", timeout=WAIT)
    assert ref.ask("still alive", timeout=WAIT) == "still alive"
    ref.tell("boom")
    assert failed.wait(WAIT)
    assert isinstance(seen[0], ValueError)
    assert not ref.is_alive()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None


def test_a_failing_async_start_fails_queued_asks() -> None:
    class BadStart(hr.AsyncioActor):
        async def on_start(self) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("no start")

    ref = BadStart.start()
    answer = ref.ask("queued", block=False)
    with pytest.raises(pykka.ActorDeadError):
        answer.get(timeout=WAIT)
    assert not ref.is_alive()


def test_awaiting_an_ask_to_a_slow_thread_actor_lets_other_tasks_run() -> None:
    release = threading.Event()

    class SlowThread(pykka.ThreadingActor):
        _create_future = staticmethod(hr.AsyncioFuture)

        def on_receive(self, message: Any) -> Any:
            assert release.wait(WAIT)
            return message

    ref = SlowThread.start()

    async def other_task() -> str:
        # Runs only if the awaiting task below does not block the loop.
        await asyncio.sleep(0)
        release.set()
        return "ran"

    async def main() -> tuple[Any, str]:
        answer = ref.ask("slow", block=False)
        assert isinstance(answer, hr.AsyncioFuture)
        other = asyncio.ensure_future(other_task())
        return await answer, await other

    try:
        assert asyncio.run(main()) == ("slow", "ran")
    finally:
        ref.stop()


def test_kill_cancels_the_handler_fails_its_ask_and_skips_on_stop() -> None:
    cancelled = threading.Event()
    entered = threading.Event()
    on_stop_ran = threading.Event()

    class Stuck(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            entered.set()
            try:
                await asyncio.Event().wait()  # never set
            finally:
                cancelled.set()

        def on_stop(self) -> None:
            on_stop_ran.set()

    ref = Stuck.start()
    in_flight = ref.ask("stuck", block=False)
    queued = ref.ask("queued", block=False)
    assert entered.wait(WAIT)
    actor = ref._actor_weakref()
    assert isinstance(actor, hr.AsyncioActor)
    actor._hr_kill()
    with pytest.raises(pykka.ActorDeadError, match="killed"):
        in_flight.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        queued.get(timeout=WAIT)
    assert cancelled.wait(WAIT)
    assert not ref.is_alive()
    assert not on_stop_ran.is_set()
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        ref.ask("after", timeout=WAIT)


def test_kill_of_an_idle_actor() -> None:
    ref = Echo.start()
    assert ref.ask("x", timeout=WAIT) == "x"
    actor = ref._actor_weakref()
    assert isinstance(actor, hr.AsyncioActor)
    actor._hr_kill()
    assert ref.actor_stopped.wait(WAIT)
    assert pykka.ActorRegistry.get_by_urn(ref.actor_urn) is None


def test_the_loop_ending_fails_the_ask_in_flight() -> None:
    class Waiter(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            message.set()
            await asyncio.Event().wait()

    answers: list[Any] = []

    async def main() -> None:
        ref = Waiter.start()
        started = asyncio.Event()
        answers.append(ref.ask(started, block=False))
        await started.wait()
        # asyncio.run now cancels the actor's task, as it does every task left.

    asyncio.run(main())
    with pytest.raises(pykka.ActorDeadError):
        answers[0].get(timeout=WAIT)


class _Capture(logging.Handler):
    """Records warnings; `got` is set by a blocked-loop report whose stack is in
    `where` (a loaded machine may hold a loop elsewhere first: not that one)."""

    def __init__(self, where: str = "") -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self.got = threading.Event()
        self.where = where

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        message = record.getMessage()
        if "blocked its event loop" in message and self.where in message:
            self.got.set()


class _SyncBlocker(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return stuck_here(message)


class _AsyncBlocker(hr.AsyncioActor):
    async def on_receive(self, message: Any) -> Any:
        await asyncio.sleep(0)
        return stuck_here(message)  # between two awaits: the loop is held


@pytest.mark.parametrize("blocker", [_SyncBlocker, _AsyncBlocker])
def test_a_handler_that_blocks_the_loop_is_reported_with_its_stack(blocker: type) -> None:
    release = threading.Event()

    capture = _Capture("in stuck_here")
    logger = logging.getLogger("hedgerow.actors")
    logger.addHandler(capture)
    previous = hr.set_block_threshold(0.05)
    ref = blocker.start()
    try:
        answer = ref.ask(release, block=False)
        assert capture.got.wait(WAIT)
        release.set()
        assert answer.get(timeout=WAIT) is True
    finally:
        hr.set_block_threshold(previous)
        logger.removeHandler(capture)
        ref.stop()
    message = next(r.getMessage() for r in capture.records if "in stuck_here" in r.getMessage())
    assert message.startswith(f"{blocker.__name__} ({ref.actor_urn}) has blocked its event loop")
    assert "threshold 0.050 s" in message
    stack = message.split(" at:\n", 1)[1]
    assert "in on_receive" in stack.splitlines()[0]  # it starts at the handler
    assert "in stuck_here" in stack


def stuck_here(release: threading.Event) -> bool:
    return release.wait(WAIT)  # blocks the loop thread


def test_bad_block_threshold_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="positive number of seconds or None"):
        hr.set_block_threshold(0)


def test_actor_stopped_is_an_event_without_a_condition_until_waited_for() -> None:
    ref = Echo.start()
    stopped = ref.actor_stopped
    assert isinstance(stopped, threading.Event)
    assert stopped._cond is None  # type: ignore[attr-defined]
    waiting = threading.Event()
    results: list[bool] = []

    def wait() -> None:
        waiting.set()
        results.append(stopped.wait(WAIT))

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert waiting.wait(WAIT)
    assert not stopped.wait(0)
    ref.stop()
    waiter.join(WAIT)
    assert results == [True]
    assert stopped.is_set()
    assert stopped.wait()


class _Probe(hr.AsyncioActor):
    """Answers how many actors of its loop have work (itself included)."""

    def on_receive(self, message: Any) -> Any:
        return runtime_for(self.actor_loop).busy


def test_an_actor_that_kills_itself_answers_no_more_and_leaves_its_loop_idle() -> None:
    class Suicidal(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            await asyncio.sleep(0)
            self._hr_kill()
            return "never sent"

    ref = Suicidal.start()
    queued_before = ref.ask("die", block=False)
    queued_after = ref.ask("queued", block=False)
    with pytest.raises(pykka.ActorDeadError, match="killed"):
        queued_before.get(timeout=WAIT)
    with pytest.raises(pykka.ActorDeadError):
        queued_after.get(timeout=WAIT)
    assert not ref.is_alive()
    probe = _Probe.start()
    try:
        assert probe.ask("busy?", timeout=WAIT) == 1  # the probe alone
    finally:
        probe.stop()


def test_work_accounting_returns_to_idle_after_kills_failures_and_stops() -> None:
    entered = threading.Event()

    class Stuck(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            if message == "hang":
                entered.set()
                await asyncio.Event().wait()
            if message == "fail":
                raise RuntimeError("told to fail")
            return message

        async def on_stop(self) -> None:
            await asyncio.sleep(0)

    killed, failed, stopped = Stuck.start(), Stuck.start(), Stuck.start()
    killed.tell("hang")
    assert entered.wait(WAIT)
    actor = killed._actor_weakref()
    assert isinstance(actor, hr.AsyncioActor)
    actor._hr_kill()
    assert killed.actor_stopped.wait(WAIT)
    failed.tell("fail")
    assert failed.actor_stopped.wait(WAIT)
    assert stopped.ask("x", timeout=WAIT) == "x"
    assert stopped.stop(timeout=WAIT)
    probe = _Probe.start()
    try:
        assert probe.ask("busy?", timeout=WAIT) == 1
    finally:
        probe.stop()


def test_a_closed_loop_is_forgotten_and_its_idle_actors_stopped() -> None:
    refs: list[pykka.ActorRef[Any]] = []

    async def main() -> asyncio.AbstractEventLoop:
        stopped, idle = Echo.start(), Echo.start()
        refs.append(idle)
        assert await stopped.ask("x", block=False) == "x"
        assert await idle.ask("y", block=False) == "y"
        await stopped.stop(block=False)
        assert asyncio.get_running_loop() in _runtimes
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert loop.is_closed()
    forget_closed_loops()  # what the watchdog does on every pass (it may have already)
    assert loop not in _runtimes
    assert hedgerow_loop() in _runtimes
    (idle,) = refs
    assert not idle.is_alive()
    assert pykka.ActorRegistry.get_by_urn(idle.actor_urn) is None
    with pytest.raises(pykka.ActorDeadError):
        idle.ask("after its loop", timeout=WAIT)


def test_tells_from_many_threads_are_all_handled_in_each_senders_order() -> None:
    senders, per_sender = 4, 3000

    class Collector(hr.AsyncioActor):
        def __init__(self) -> None:
            super().__init__()
            self.seen: list[tuple[int, int]] = []

        async def on_receive(self, message: Any) -> Any:
            if message == "seen":
                return list(self.seen)
            self.seen.append(message)
            if message[1] % 100 == 0:
                await asyncio.sleep(0)  # busy in a task while threads keep telling
            return None

    ref = Collector.start()
    barrier = threading.Barrier(senders)

    def send(sender: int) -> None:
        barrier.wait()
        for i in range(per_sender):
            ref.tell((sender, i))

    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    try:
        seen = ref.ask("seen", timeout=WAIT)
        assert len(seen) == senders * per_sender
        for sender in range(senders):
            assert [i for s, i in seen if s == sender] == list(range(per_sender))
    finally:
        ref.stop()


def test_a_hook_raising_system_exit_stops_its_actor_not_the_loop() -> None:
    class Exiting(hr.AsyncioActor):
        def on_receive(self, message: Any) -> Any:
            raise RuntimeError("fail")

        def on_failure(self, *exc_info: Any) -> None:
            raise SystemExit(3)

        def on_stop(self) -> None:
            raise SystemExit(4)

    failing, stopping, other = Exiting.start(), Exiting.start(), Echo.start()
    try:
        failing.tell("fail")
        assert failing.actor_stopped.wait(WAIT)
        stopping.stop(timeout=WAIT)
        assert not stopping.is_alive()
        assert other.ask("the loop runs", timeout=WAIT) == "the loop runs"
    finally:
        other.stop()


def test_a_cancelled_await_inside_a_handler_is_its_error_not_a_kill() -> None:
    class Awaiter(hr.AsyncioActor):
        async def on_receive(self, message: Any) -> Any:
            if message == "cancelled inside":
                inner = asyncio.get_running_loop().create_future()
                inner.cancel()
                await inner
            if message == "cancelled plainly":
                raise asyncio.CancelledError
            return message

    ref = Awaiter.start()
    try:
        with pytest.raises(asyncio.CancelledError):
            ref.ask("cancelled inside", timeout=WAIT)
        with pytest.raises(asyncio.CancelledError):
            ref.ask("cancelled plainly", timeout=WAIT)
        assert ref.ask("still alive", timeout=WAIT) == "still alive"
    finally:
        ref.stop()
