"""Attacks on "cancelling an awaited ask takes its message back" (dde0212).

The promise: every ask is handled exactly once or taken back, never both,
never lost, never twice; the other messages keep their order; the actor goes
on. These tests race the take-back (from another thread, or loop) against the
actor taking the message. Where a race window is narrow, the interleaving is
forced deterministically (a hook on the flag the actor loop reads right
before it takes the next message), so a bug shows every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import hedgerow as hr
import hedgerow.testing as hr_testing
from hedgerow.actors._flag import StopFlag

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture
def tiny_switch() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class Recorder(hr.AsyncioActor):
    """Records what it handles; "hold" blocks its loop thread until `release`."""

    def __init__(self, seen: list[Any], release: threading.Event | None = None) -> None:
        super().__init__()
        self.seen = seen
        self.release = release
        self.entered = threading.Event()

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.entered.set()
            assert self.release is not None
            self.release.wait(WAIT)
            return "held"
        self.seen.append(message)
        return message


class HookedFlag(StopFlag):
    """Stands for an actor's ``actor_stopped``: reading ``_flag`` (which the actor
    loop does right before it takes its next message) runs `hook` once, armed."""

    def __init__(self, original: StopFlag) -> None:
        self._original = original
        self._cond = None
        self.hook: Any = None

    @property  # type: ignore[override]
    def _flag(self) -> bool:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return self._original._flag

    @_flag.setter
    def _flag(self, value: bool) -> None:
        self._original._flag = value

    def is_set(self) -> bool:
        return self._original._flag

    def set(self) -> None:
        self._original.set()


class AskerLoop:
    """An asyncio loop running in a thread of its own (another loop than the actor's)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


def _unstick(actor: Any) -> None:
    """Cleanup after the bug: an actor whose drain failed stays marked busy (so it is
    never run again); mark it idle, on its loop, so that it can be stopped."""

    def unstick() -> None:
        if actor._hr_busy and actor._hr_task is None:
            actor._hr_busy = False
            actor._hr_runtime.busy -= 1

    actor._hr_loop.call_soon_threadsafe(unstick)
    _loop_turned(actor._hr_loop)


def _loop_turned(loop: asyncio.AbstractEventLoop) -> None:
    """Wait until `loop` has run what it was running (a callback scheduled now runs after it)."""
    turned = threading.Event()
    loop.call_soon_threadsafe(turned.set)
    assert turned.wait(WAIT)


def test_take_back_from_another_loop_right_before_the_actor_takes_the_message():
    seen: list[Any] = []
    release = threading.Event()
    ref = Recorder.start(seen, release)
    actor = ref.actor_inbox._actor  # the LoopInbox knows its actor
    asker = AskerLoop()
    try:
        hooked = HookedFlag(actor.actor_stopped)
        actor.actor_stopped = hooked  # before the drain that takes "hold" reads it
        ref.tell("hold")
        assert actor.entered.wait(WAIT)
        state: dict[str, Any] = {}

        async def start_asking() -> None:
            future = ref.ask("x", block=False)
            state["task"] = asyncio.ensure_future(_await(future))
            await asyncio.sleep(0)  # the task awaits the answer
            state["future"] = future

        async def _await(future: Any) -> Any:
            return await future

        asker.run(start_asking())
        cancelled = threading.Event()

        def cancel_from_the_asker() -> None:
            # On the actor's thread, between `while queue` and popleft: the
            # asker's loop cancels its task (the take-back runs there).
            async def cancel() -> None:
                state["task"].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state["task"]
                cancelled.set()

            asyncio.run_coroutine_threadsafe(cancel(), asker.loop)
            assert cancelled.wait(WAIT)

        hooked.hook = cancel_from_the_asker
        release.set()
        assert cancelled.wait(WAIT)
        _loop_turned(actor._hr_loop)  # the actor's drain has gone on past the hook
        # "x" was taken back (never handled); the actor goes on.
        with pytest.raises(asyncio.CancelledError):
            state["future"].get(timeout=WAIT)
        assert not actor._hr_busy, "the actor did not go idle: its drain failed"
        assert ref.ask("after", timeout=WAIT) == "after"
        assert seen == ["after"]
    finally:
        release.set()
        asker.close()
        _unstick(actor)
        ref.stop()


class Held(hr.Actor):
    """A supervised child: "hold" blocks it until `release`; records the rest."""

    def __init__(self, entered: threading.Event, release: threading.Event, seen: list[Any]) -> None:
        super().__init__()
        self.entered = entered
        self.release = release
        self.seen = seen

    def on_receive(self, message: Any) -> Any:
        if message == "hold":
            self.entered.set()
            self.release.wait(WAIT)
            return "held"
        self.seen.append(message)
        return message


def test_a_cancelled_ask_made_from_a_thread_into_a_full_block_inbox_is_taken_back():
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []
    child = hr.ChildSpec(
        "held",
        Held,
        args=(entered, release, seen),
        max_inbox=1,
        inbox_overflow="block",
        inbox_timeout=WAIT,
    )
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    ref = tree.lookup("root/held")
    try:
        ref.tell("hold")
        assert entered.wait(WAIT)
        ref.tell("filler")  # the inbox is full now; the child holds "hold"
        future = hr.ask(ref, "x")  # from this thread (no loop): through the feeder

        async def cancel_its_await() -> None:
            async def awaiting() -> Any:
                return await future

            task = asyncio.ensure_future(awaiting())
            await asyncio.sleep(0)  # the task awaits the answer
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_its_await())
        # The child has not taken "x" (it still holds "hold"): the cancel takes it back.
        release.set()
        with pytest.raises(asyncio.CancelledError):
            future.get(timeout=WAIT)  # with the bug: "x", handled after the cancel
        assert ref.ask("after", timeout=WAIT) == "after"
        assert seen == ["filler", "after"]
    finally:
        release.set()
        tree.stop()


class Counting:
    """Counts every message it handles (across incarnations: the dict is shared);
    a message that is a multiple of `crash_every` crashes it after counting."""

    def __init__(self, handled: dict[Any, int], order: list[Any], crash_every: int) -> None:
        super().__init__()
        self.handled = handled
        self.order = order
        self.crash_every = crash_every

    def on_receive(self, message: Any) -> Any:
        self.handled[message] = self.handled.get(message, 0) + 1
        self.order.append(message)
        if isinstance(message, int) and self.crash_every and message % self.crash_every == 0:
            raise ValueError(message)
        return message


class CountingThread(Counting, hr.Actor):
    pass


class CountingLoop(Counting, hr.AsyncioActor):
    pass


TAKEN_BACK = "the ask was cancelled before its actor took it"


@pytest.mark.parametrize("kind", ["child-thread", "child-loop"])
@pytest.mark.parametrize("crash_every", [0, 5])
def test_exactly_once_under_cancels_from_another_loop_with_restarts(kind, crash_every, tiny_switch):
    """Many asks to a supervised child from another loop, each cancelled after 0-3
    turns of the loop (or not at all), the child crashing on some (restarted by its
    supervisor, its inbox kept): each ask is handled exactly once or taken back, never
    both; the ones handled are handled in the order sent."""
    handled: dict[Any, int] = {}
    order: list[Any] = []
    cls = CountingThread if kind == "child-thread" else CountingLoop
    child = hr.ChildSpec("counting", cls, args=(handled, order, crash_every))
    tree = hr.start_tree(hr.SupervisorSpec([child], max_restarts=10_000, period=1.0))
    ref = tree.lookup("root/counting")
    rounds, per_round = 150, 8
    outcomes: dict[int, Any] = {}

    async def main() -> None:
        n = 0
        for r in range(rounds):
            tasks = []
            for i in range(per_round):
                n += 1
                future = hr.ask(ref, n)
                task = asyncio.ensure_future(_awaiting(future))
                tasks.append((n, future, task, (r + i) % 5))
            for turn in range(4):
                for _, _, task, when in tasks:
                    if when == turn:
                        task.cancel()
                await asyncio.sleep(0)
            await asyncio.gather(*(task for _, _, task, _ in tasks), return_exceptions=True)
            outcomes.update((m, future) for m, future, _, _ in tasks)
        assert await hr.ask(ref, "sync") == "sync"  # every earlier ask is handled by now

    async def _awaiting(future: Any) -> Any:
        return await future

    try:
        asyncio.run(main())
    finally:
        tree.stop()
    taken = check_exactly_once(outcomes, handled, order)
    assert 0 < taken < len(outcomes)  # both sides of the race were exercised


def outcome(future: Any) -> tuple[str, Any]:
    """("taken", its message) for an ask taken back, else ("answered", its answer)."""
    try:
        return "answered", future.get(timeout=0)
    except asyncio.CancelledError as error:
        return "taken", str(error)
    except ValueError as error:  # it crashed its child
        return "answered", error.args[0]


def check_exactly_once(outcomes: dict[int, Any], handled: dict[Any, int], order: list[Any]) -> int:
    """Each ask handled exactly once or taken back (never both), the handled ones in
    the order sent; how many were taken back."""
    taken = 0
    for m, future in outcomes.items():
        assert future.done(), m
        how, value = outcome(future)
        if how == "taken":
            assert value == TAKEN_BACK, m
            assert m not in handled, f"{m} was taken back and handled"
            taken += 1
        else:
            assert value == m
            assert handled.get(m) == 1, f"{m} handled {handled.get(m, 0)} times"
    assert all(count == 1 for count in handled.values())
    numbers = [m for m in order if isinstance(m, int)]
    assert numbers == sorted(numbers)
    asked = set(outcomes)
    assert (set(numbers) & asked) | {m for m in asked if m not in handled} == asked
    return taken


@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor])
def test_deferred_tells_and_asks_into_a_full_block_inbox_some_asks_cancelled(base, tiny_switch):
    """Tells (awaited: waiting for room) and asks interleaved into a full ``block``
    inbox; a third of the asks cancelled while they wait (some of them again after
    room came): the rest are handled exactly once, in the order sent."""
    handled: dict[Any, int] = {}
    order: list[Any] = []
    entered, release = threading.Event(), threading.Event()

    class Gate(Counting, base):  # type: ignore[valid-type, misc]
        def on_receive(self, message: Any) -> Any:
            if message == "hold":
                entered.set()
                release.wait(WAIT)
                return None
            return super().on_receive(message)

    child = hr.ChildSpec(
        "gate",
        Gate,
        args=(handled, order, 0),
        max_inbox=2,
        inbox_overflow="block",
        inbox_timeout=WAIT,
    )
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    ref = tree.lookup("root/gate")
    asks: dict[int, Any] = {}

    async def main() -> None:
        ref.tell("hold")
        assert await asyncio.to_thread(entered.wait, WAIT)
        tasks: list[asyncio.Future[Any]] = []
        for m in range(60):
            if m % 2:
                future = asks[m] = hr.ask(ref, m)
                tasks.append(asyncio.ensure_future(_awaiting(future)))
            else:
                tasks.append(asyncio.ensure_future(hr.tell(ref, m)))
            await asyncio.sleep(0)
        early = [tasks[m] for m in range(1, 60, 6)]
        for task in early:  # a third of the asks, while all wait
            task.cancel()
        await asyncio.gather(*early, return_exceptions=True)  # their takes-back have run
        release.set()
        for m in range(3, 60, 12):  # and some, racing the room that comes now
            tasks[m].cancel()
            await asyncio.sleep(0)
        await asyncio.gather(*tasks, return_exceptions=True)
        assert await hr.ask(ref, "sync") == "sync"

    async def _awaiting(future: Any) -> Any:
        return await future

    try:
        asyncio.run(main())
    finally:
        release.set()
        tree.stop()
    check_exactly_once(asks, handled, order)
    tells = [m for m in order if isinstance(m, int) and m % 2 == 0]
    assert tells == list(range(0, 60, 2))  # every tell, in order
    for m in range(1, 60, 6):
        assert m not in handled, f"ask {m} cancelled while it waited, yet handled"


class Echo(hr.Actor):
    def on_receive(self, message: Any) -> Any:
        return message


class EchoLoop(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


@pytest.mark.parametrize("cls", [Echo, EchoLoop])
def test_cancelled_start_child_calls_leave_the_tree_consistent(cls, tiny_switch):
    """Many `start_child` calls cancelled after 0-3 turns of the loop (or not): each
    child is started (listed, answering) or not (its id free for a new start), never
    half; the calls not cancelled all started theirs."""
    count = 40

    async def main() -> None:
        async with hr.open_tree(hr.SupervisorSpec([])) as tree:
            tasks = [
                asyncio.ensure_future(tree.start_child(hr.ChildSpec(f"c{i}", cls)))
                for i in range(count)
            ]
            for turn in range(4):
                for i, task in enumerate(tasks):
                    if i % 5 == turn:
                        task.cancel()
                await asyncio.sleep(0)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            listed = {info.id for info in await tree.which_children()}
            for i, result in enumerate(results):
                if i % 5 == 4:  # never cancelled
                    assert not isinstance(result, BaseException), (i, result)
                if f"c{i}" in listed:
                    ref = tree.lookup(f"root/c{i}")
                    assert await hr.ask(ref, i) == i
                    with pytest.raises(Exception):  # noqa: B017 - already there
                        await tree.start_child(hr.ChildSpec(f"c{i}", cls))
                else:
                    assert isinstance(result, asyncio.CancelledError), (i, result)
                    ref = await tree.start_child(hr.ChildSpec(f"c{i}", cls))
                    assert await hr.ask(ref, i) == i
            assert len({info.id for info in await tree.which_children()}) == count

    asyncio.run(main())


@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor])
def test_faults_counting_does_not_take_a_taken_back_ask_for_a_lost_message(base):
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []

    class HeldHere(Held, base):  # type: ignore[valid-type, misc]
        pass

    child = hr.ChildSpec("held", HeldHere, args=(entered, release, seen))
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    ref = tree.lookup("root/held")
    try:
        with hr_testing.Faults(tree) as faults:

            async def main() -> None:
                ref.tell("hold")
                assert await asyncio.to_thread(entered.wait, WAIT)
                future = hr.ask(ref, "x")
                task = asyncio.ensure_future(_awaiting(future))
                await asyncio.sleep(0)  # it awaits
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert future.done()  # taken back: the child never had it
                release.set()
                assert await hr.ask(ref, "after") == "after"

            async def _awaiting(future: Any) -> Any:
                return await future

            asyncio.run(main())
            counts = faults.messages
        assert seen == ["after"]
        # "hold" and "after" were sent and handled; "x" was taken back (withdrawn):
        # nothing is on its way, nothing lost.
        assert counts.withdrawn == 1, counts
        assert counts.sent - counts.handled - counts.dead_lettered - counts.withdrawn == 0, counts
    finally:
        release.set()
        tree.stop()


@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor])
def test_a_shielded_await_cancelled_leaves_the_ask_and_wait_for_takes_it_back(base):
    """``await asyncio.shield(future)`` cancelled: the ask stays (shield's point), the
    other waiter gets the answer; ``asyncio.wait_for(future, 0)`` times out, taking its
    own ask back."""
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []

    class HeldHere(Held, base):  # type: ignore[valid-type, misc]
        pass

    child = hr.ChildSpec("held", HeldHere, args=(entered, release, seen))
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    ref = tree.lookup("root/held")

    async def main() -> None:
        ref.tell("hold")
        assert await asyncio.to_thread(entered.wait, WAIT)
        kept = hr.ask(ref, "kept")
        shielded = asyncio.ensure_future(asyncio.shield(kept))
        plain = asyncio.ensure_future(_awaiting(kept))
        await asyncio.sleep(0)
        shielded.cancel()
        with pytest.raises(asyncio.CancelledError):
            await shielded
        dropped = hr.ask(ref, "dropped")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(dropped, 0.001)
        with pytest.raises(asyncio.CancelledError):
            dropped.get(timeout=0)  # taken back
        release.set()
        assert await plain == "kept"
        assert await hr.ask(ref, "after") == "after"

    async def _awaiting(future: Any) -> Any:
        return await future

    try:
        asyncio.run(main())
    finally:
        release.set()
        tree.stop()
    assert seen == ["kept", "after"]


@pytest.mark.parametrize("style", ["hedgerow.ask", "ref.ask", "proxy"])
def test_exactly_once_under_cancels_on_the_actors_own_loop(style, tiny_switch):
    """An event-loop actor on the asking loop itself: asks cancelled after 0-3 turns
    (or not): each handled exactly once or taken back, the handled ones in order."""
    handled: dict[Any, int] = {}
    order: list[Any] = []
    outcomes: dict[int, Any] = {}

    class Proxied(CountingLoop):
        """Its handler gives the loop back once per message (the asker's tasks run)."""

        async def on_receive(self, message: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)
            return super().on_receive(message)

        async def record(self, message: Any) -> Any:
            return await self.on_receive(message)

    async def main() -> None:
        ref = Proxied.start(handled, order, 0)
        proxy = ref.proxy()
        ask = {
            "hedgerow.ask": lambda m: hr.ask(ref, m),
            "ref.ask": lambda m: ref.ask(m, block=False),
            "proxy": proxy.record,
        }[style]

        async def awaiting(future: Any) -> Any:
            return await future

        n = 0
        for r in range(100):
            tasks = []
            for i in range(8):
                n += 1
                future = outcomes[n] = ask(n)
                tasks.append((asyncio.ensure_future(awaiting(future)), (r + i) % 5))
            for turn in range(4):
                for task, when in tasks:
                    if when == turn:
                        task.cancel()
                await asyncio.sleep(0)
            await asyncio.gather(*(task for task, _ in tasks), return_exceptions=True)
        assert await hr.ask(ref, "sync") == "sync"
        await ref.stop(block=False)

    asyncio.run(main())
    taken = check_exactly_once(outcomes, handled, order)
    assert 0 < taken < len(outcomes)


@pytest.mark.parametrize("base", [hr.Actor, hr.AsyncioActor])
def test_an_ask_taken_back_from_a_full_block_inbox_makes_room_for_a_blocked_thread(base):
    """The take-back frees a place: a thread blocked in ``ref.tell`` for room gets it
    at once (before the child takes anything), its message after the ones queued."""
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []

    class HeldHere(Held, base):  # type: ignore[valid-type, misc]
        pass

    child = hr.ChildSpec(
        "held",
        HeldHere,
        args=(entered, release, seen),
        max_inbox=2,
        inbox_overflow="block",
        inbox_timeout=WAIT,
    )
    tree = hr.start_tree(hr.SupervisorSpec([child]))
    ref = tree.lookup("root/held")
    told = threading.Event()

    def blocked_teller() -> None:
        ref.tell("blocked")  # waits for room in this thread
        told.set()

    try:
        ref.tell("hold")
        assert entered.wait(WAIT)
        ref.tell("first")

        async def main() -> None:
            future = hr.ask(ref, "x")  # the inbox is full now: ["first", "x"]
            task = asyncio.ensure_future(_awaiting(future))
            await asyncio.sleep(0)
            teller = threading.Thread(target=blocked_teller)
            teller.start()
            # (It may not be waiting yet: either way, room must come from the take-back.)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await asyncio.to_thread(told.wait, WAIT)  # before the child takes any
            await asyncio.to_thread(teller.join, WAIT)

        async def _awaiting(future: Any) -> Any:
            return await future

        asyncio.run(main())
        release.set()
        assert ref.ask("after", timeout=WAIT) == "after"
        assert seen == ["first", "blocked", "after"]
    finally:
        release.set()
        tree.stop()


class TimesOut(hr.AsyncioActor):
    """Asks `ref` with an asyncio timeout of `seconds` (virtual, under a VirtualClock)."""

    async def on_receive(self, message: Any) -> Any:
        ref, seconds = message
        try:
            async with asyncio.timeout(seconds):
                return await hr.ask(ref, "x")
        except TimeoutError:
            return "timed out"


def test_a_virtual_timeout_takes_the_ask_back():
    """Under a VirtualClock with autojump, an event-loop actor's ``asyncio.timeout``
    around an awaited ask to a thread actor that is held: the clock jumps, the ask is
    taken back, never handled."""
    entered, release = threading.Event(), threading.Event()
    seen: list[Any] = []

    class HeldActor(Held, hr.Actor):
        pass

    held = HeldActor.start(entered, release, seen)
    try:
        held.tell("hold")
        assert entered.wait(WAIT)
        with hr_testing.VirtualClock(autojump_threshold=0) as clock:
            clock.drive()
            asker = TimesOut.start()
            try:
                assert asker.ask((held, 3600.0), timeout=WAIT) == "timed out"
                assert clock.now() == 3600.0
            finally:
                asker.stop()
        release.set()
        assert held.ask("after", timeout=WAIT) == "after"
        assert seen == ["after"]
    finally:
        release.set()
        held.stop()
