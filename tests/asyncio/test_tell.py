"""`hedgerow.tell`, and a plain ``tell`` from an event loop, into a full ``block`` inbox:
the loop never waits for room; an awaited tell does, suspending its task only."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import helpers
import pykka
import pytest

import hedgerow as hr
from hedgerow import EventKind

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture(params=["default", "tiny"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test also runs with the interpreter switching threads as often as it can."""
    previous = sys.getswitchinterval()
    if request.param == "tiny":
        sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class Seen(list[Any]):
    """The messages an actor saw, in order; `wait_for` one of them (from a thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self.changed:
            super().append(item)
            self.changed.notify_all()

    def wait_for(self, item: Any) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: item in self, WAIT)


class Held:
    """A body: holds its first message ("hold") until `release` is set; records the
    order in which messages reach it."""

    def __init__(self, entered: threading.Event, release: threading.Event, seen: list[Any]):
        super().__init__()
        self.entered = entered
        self.release = release
        self.seen = seen

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        if message == "hold":
            self.entered.set()
            return helpers.blocking(self, self.release, lambda: "released")
        return message


class Letters:
    """The dead letters of a tree: (message, reason)."""

    def __init__(self, events: hr.EventStream) -> None:
        self.lock = threading.Condition()
        self.items: list[tuple[Any, Any]] = []
        events.subscribe(self.on_event)

    def on_event(self, event: hr.Event) -> None:
        if event.kind is EventKind.DEAD_LETTER:
            with self.lock:
                self.items.append((event.message, event.reason))
                self.lock.notify_all()

    def wait_for(self, message: Any) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: message in [m for m, _ in self.items], WAIT)

    @property
    def messages(self) -> list[Any]:
        with self.lock:
            return [m for m, _ in self.items]


class Full:
    """A tree of one child ``root/held`` whose inbox (max_inbox) is full: it holds
    "hold", and `max_inbox` more wait behind it."""

    def __init__(
        self, body: type = Held, *, max_inbox: int = 1, timeout: float = WAIT, **options: Any
    ) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.seen: list[Any] = []
        self.events = hr.EventStream()
        self.letters = Letters(self.events)
        cls = helpers.current[0].of(body)
        child = hr.ChildSpec(
            "held",
            cls,
            args=(self.entered, self.release, self.seen),
            max_inbox=max_inbox,
            inbox_overflow="block",
            inbox_timeout=timeout,
            **options,
        )
        self.spec = hr.SupervisorSpec([child])
        self.max_inbox = max_inbox

    def fill(self, ref: hr.ChildRef[Any]) -> None:
        ref.tell("hold")
        assert self.entered.wait(WAIT)
        for n in range(self.max_inbox):
            ref.tell(("filler", n))
        assert ref.inbox_statistics().depth == self.max_inbox

    def fillers(self) -> list[Any]:
        return [("filler", n) for n in range(self.max_inbox)]


# -- a plain tell from a loop never waits --------------------------------------


class Teller(hr.AsyncioActor):
    """An event-loop actor (on hedgerow's loop thread) that tells what it is asked to."""

    def on_receive(self, message: Any) -> Any:
        ref, what = message
        began = time.monotonic()
        ref.tell(what)
        return time.monotonic() - began


@pytest.mark.parametrize("sender", ["application", "loop actor"])
def test_a_plain_tell_from_a_loop_into_a_full_block_inbox_drops_at_once(runtime, sender):
    """(It blocked the loop for the inbox's timeout, all its tasks and actors with it.)"""
    full = Full(timeout=3.0)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        full.fill(ref)
        teller = Teller.start()
        try:

            async def main() -> float:
                if sender == "loop actor":
                    return await hr.ask(teller, (ref, "late"))  # type: ignore[no-any-return]
                began = time.monotonic()
                ref.tell("late")
                return time.monotonic() - began

            took = asyncio.run(main())
        finally:
            teller.stop()
            full.release.set()  # (also when an assertion fails: nothing left held)
        assert took < 1.0
        [(message, reason)] = full.letters.items
        assert message == "late"
        assert isinstance(reason, hr.InboxFull)
        assert "event loop" in str(reason)
        assert "hedgerow.tell" in str(reason)
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), "done"]


# -- hedgerow.tell waits for room, suspending its task only ----------------------


async def _beating(beats: list[int]) -> None:
    while True:
        beats.append(1)
        await asyncio.sleep(0)


def test_tell_waits_for_room_without_blocking_the_loop_and_keeps_the_order(runtime, switching):
    full = Full(max_inbox=2)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                sends = [asyncio.ensure_future(hr.tell(ref, n)) for n in range(20)]
                beats: list[int] = []
                beating = asyncio.create_task(_beating(beats))
                await asyncio.sleep(0)
                assert not any(s.done() for s in sends)  # all wait for room
                for _ in range(10):
                    await asyncio.sleep(0)
                assert len(beats) >= 9  # the loop goes on meanwhile
                full.release.set()
                assert await asyncio.gather(*sends) == [None] * 20
                beating.cancel()

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), *range(20), "done"]
        assert full.letters.items == []
        assert ref.inbox_statistics().peak <= 2


def test_tell_where_there_is_room_sends_at_once(runtime):
    full = Full(max_inbox=3)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")

        async def main() -> None:
            sending = hr.tell(ref, "now")  # sent before any await
            assert ref.inbox_statistics().depth == 1 or "now" in full.seen
            await sending

        asyncio.run(main())
        full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["now", "done"]


def test_tell_gives_up_after_the_inbox_timeout_then_the_message_is_a_dead_letter(runtime):
    full = Full(timeout=0.05)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> float:
                beats: list[int] = []
                beating = asyncio.create_task(_beating(beats))
                began = time.monotonic()
                assert await hr.tell(ref, "late") is None  # no error, as a blocking tell's
                took = time.monotonic() - began
                beating.cancel()
                assert beats  # the loop ran while it waited
                return took

            assert asyncio.run(main()) >= 0.05
            [(message, reason)] = full.letters.items
            assert message == "late"
            assert isinstance(reason, hr.InboxFull)
            assert "no room within the timeout" in str(reason)
            assert ref.inbox_statistics().dropped == 1
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert "late" not in full.seen


def test_cancelling_a_waiting_tell_takes_the_message_back(runtime, switching):
    """The message is not sent, not a dead letter, and never sent later; the
    tells after it keep their order."""
    full = Full(max_inbox=2)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                sends = [asyncio.ensure_future(hr.tell(ref, n)) for n in range(10)]
                await asyncio.sleep(0)
                for n in (0, 3, 9):
                    sends[n].cancel()
                await asyncio.sleep(0)
                full.release.set()
                outcome = await asyncio.gather(*sends, return_exceptions=True)
                assert [isinstance(o, asyncio.CancelledError) for o in outcome] == [
                    n in (0, 3, 9) for n in range(10)
                ]

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), 1, 2, 4, 5, 6, 7, 8, "done"]
        assert full.letters.items == []


def test_a_timeout_around_the_tell_takes_the_message_back(runtime):
    full = Full()
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.01):
                        await hr.tell(ref, "withdrawn")

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert "withdrawn" not in full.seen
        assert full.letters.items == []
        assert ref.inbox_statistics().dropped == 0


def test_a_tell_taken_back_is_done_and_cancelled_for_every_await(runtime):
    """A tell taken back by one await's timeout is done, and cancelled for every
    other await of it, as an asyncio future is: (they waited for ever, for a room
    that would never be theirs, and done() stayed False: seen failing)."""
    full = Full()
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                telling = hr.tell(ref, "withdrawn")
                waiting = asyncio.Event()

                async def other() -> None:
                    waiting.set()
                    await telling

                other_task = asyncio.create_task(other())
                await waiting.wait()
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(telling, 0.01)
                assert telling.done()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(telling, WAIT)
                done, _ = await asyncio.wait([other_task], timeout=WAIT)
                assert done == {other_task}
                assert other_task.cancelled() or isinstance(
                    other_task.exception(), asyncio.CancelledError
                )

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert "withdrawn" not in full.seen
        assert full.letters.items == []


@pytest.mark.parametrize("at", range(6))
def test_cancelling_at_each_await_leaves_nothing_half_sent(runtime, at):
    """A task that tells six messages in turn, cancelled as it reaches its `at`-th
    await while the child drains: the messages are handled in order, with no gap,
    none twice, none a dead letter."""
    full = Full()
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)
            awaited = asyncio.Event

            async def sender(waiting: asyncio.Event) -> None:
                for n in range(6):
                    sending = hr.tell(ref, n)
                    if n == at:
                        waiting.set()
                    await sending

            async def main() -> None:
                waiting = awaited()
                task = asyncio.create_task(sender(waiting))
                full.release.set()  # room comes as the child drains, while the cancel does
                await waiting.wait()
                task.cancel()  # (it may have ended: the last tells found room)
                await asyncio.gather(task, return_exceptions=True)

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        handled = [m for m in full.seen if isinstance(m, int)]
        # A prefix: the ones awaited before the cancel, then perhaps more (an await of
        # a tell that found room does not suspend, so the cancel lands at a later one).
        assert handled == list(range(len(handled)))
        assert len(handled) >= at
        assert full.letters.items == []


def test_tell_and_ask_from_one_task_keep_their_order(runtime, switching):
    full = Full()
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> list[Any]:
                first = hr.ask(ref, "a")
                second = hr.tell(ref, "b")
                third = hr.ask(ref, "c")
                full.release.set()
                await second
                return [await first, await third]

            assert asyncio.run(main()) == ["a", "c"]
        finally:
            full.release.set()
        assert full.seen == ["hold", *full.fillers(), "a", "b", "c"]


def test_a_tell_to_a_child_gone_for_good_is_a_dead_letter(runtime):
    full = Full()
    tree = hr.start_tree(full.spec, events=full.events)
    ref = tree.lookup("root/held")
    full.release.set()
    tree.stop()

    async def main() -> None:
        assert await hr.tell(ref, "after") is None  # no error, as ref.tell

    asyncio.run(main())
    assert full.letters.messages == ["after"]


def test_a_waiting_tell_is_a_dead_letter_when_the_child_goes(runtime):
    full = Full(shutdown="brutal_kill")
    tree = hr.start_tree(full.spec, events=full.events)
    ref = tree.lookup("root/held")
    try:
        full.fill(ref)

        async def main() -> None:
            sending = asyncio.ensure_future(hr.tell(ref, "waiting"))
            await asyncio.sleep(0)
            assert not sending.done()
            await asyncio.to_thread(tree.stop)
            assert await sending is None

        asyncio.run(main())
    finally:
        full.release.set()
    assert "waiting" in full.letters.messages
    assert "waiting" not in full.seen


def test_a_tell_to_a_stopped_actor_raises_actor_dead_when_awaited():
    ref = Teller.start()
    ref.stop()

    async def main() -> None:
        sending = hr.tell(ref, "late")
        with pytest.raises(pykka.ActorDeadError):
            await sending

    asyncio.run(main())


@pytest.mark.parametrize(
    ("overflow", "outcome"), [("drop_newest", None), ("fail", hr.InboxFull), (None, None)]
)
def test_tell_into_an_inbox_that_does_not_block_is_a_tell(overflow, outcome):
    entered, release, seen = threading.Event(), threading.Event(), Seen()
    options = {} if overflow is None else {"max_inbox": 1, "inbox_overflow": overflow}
    held = helpers.on(Held, hr.Actor)
    spec = hr.SupervisorSpec([hr.ChildSpec("held", held, args=(entered, release, seen), **options)])
    with hr.start_tree(spec) as tree:
        ref = tree.lookup("root/held")
        try:
            ref.tell("hold")
            assert entered.wait(WAIT)
            ref.tell("fills")

            async def main() -> None:
                if outcome is None:
                    assert await hr.tell(ref, "one more") is None
                else:
                    with pytest.raises(outcome):
                        await hr.tell(ref, "one more")

            asyncio.run(main())
        finally:
            release.set()
        assert seen.wait_for("fills")  # (then there is room for the ask)
        assert ref.ask("done", timeout=WAIT) == "done"
        assert ("one more" in seen) == (overflow is None)


def test_tell_needs_a_running_loop_and_a_ref():
    with pytest.raises(RuntimeError, match=r"hedgerow\.tell is for asyncio code"):
        hr.tell(Teller, "x")  # type: ignore[arg-type]

    async def main() -> None:
        with pytest.raises(TypeError, match=r"hedgerow\.tell needs an actor's ref"):
            hr.tell("root/a", "x")  # type: ignore[arg-type]

    asyncio.run(main())


class Plain(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


@pytest.mark.parametrize("send", [hr.tell, hr.ask])
def test_a_proxy_or_a_path_given_for_a_ref_is_told_what_to_give(send):
    """(The error named a ref, not how to get one from what was given: seen failing.)"""
    ref = Plain.start()
    try:

        async def main() -> None:
            with pytest.raises(TypeError, match=r"an actor's proxy: give its \.actor_ref"):
                send(ref.proxy(), "x")
            with pytest.raises(TypeError, match=r"a path: look the child up first"):
                send("root/a", "x")

        asyncio.run(main())
    finally:
        ref.stop()


# -- readers on the sender's own loop ---------------------------------------------


class LoopHeld(hr.AsyncioActor):
    """Held, on the loop, awaiting an asyncio.Event set by the test's loop."""

    def __init__(self, entered: threading.Event, release: asyncio.Event, seen: list[Any]):
        super().__init__()
        self.entered = entered
        self.release = release
        self.seen = seen

    async def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        if message == "hold":
            self.entered.set()
            await self.release.wait()
            return "released"
        if isinstance(message, tuple) and message[0] == "tell myself":
            for item in message[1]:
                await hr.tell(self.actor_ref, item)
            return None
        return message


def test_tasks_of_the_readers_own_loop_wait_for_room_without_a_deadlock(switching):
    """The child runs on the application's loop: the tells wait, the child drains."""

    async def main() -> list[Any]:
        entered, release, seen = threading.Event(), asyncio.Event(), []
        spec = hr.SupervisorSpec(
            [
                hr.ChildSpec(
                    "held",
                    LoopHeld,
                    args=(entered, release, seen),
                    max_inbox=1,
                    inbox_overflow="block",
                    inbox_timeout=WAIT,
                )
            ]
        )
        async with hr.open_tree(spec, use_running_loop=True) as tree:
            ref = tree.lookup("root/held")
            ref.tell("hold")
            await asyncio.to_thread(entered.wait, WAIT)
            ref.tell("fills")
            sends = [asyncio.ensure_future(hr.tell(ref, n)) for n in range(10)]
            await asyncio.sleep(0)
            release.set()
            await asyncio.gather(*sends)
            assert await hr.ask(ref, "done") == "done"
        return seen

    assert asyncio.run(main()) == ["hold", "fills", *range(10), "done"]


def test_an_actor_awaiting_a_tell_into_its_own_full_inbox_does_not_wait_for_itself():
    async def main() -> list[Any]:
        entered, release, seen = threading.Event(), asyncio.Event(), []
        events = hr.EventStream()
        letters = Letters(events)
        spec = hr.SupervisorSpec(
            [
                hr.ChildSpec(
                    "held",
                    LoopHeld,
                    args=(entered, release, seen),
                    max_inbox=1,
                    inbox_overflow="block",
                    inbox_timeout=WAIT,
                )
            ]
        )
        async with hr.open_tree(spec, use_running_loop=True, events=events) as tree:
            ref = tree.lookup("root/held")
            release.set()
            began = time.monotonic()
            await hr.ask(ref, ("tell myself", ["fills the one place", "again"]))
            assert time.monotonic() - began < WAIT / 2
            assert await hr.ask(ref, "done") == "done"
            [(message, reason)] = letters.items
            assert message == "again"
            assert "cannot wait for room" in str(reason)
        return seen

    seen = asyncio.run(main())
    assert "again" not in seen
    assert "fills the one place" in seen


class RunsALoop(hr.Actor):
    """A thread actor whose handler runs a loop of its own that tells its own inbox."""

    def __init__(self, seen: list[Any]) -> None:
        super().__init__()
        self.seen = seen

    def on_receive(self, message: Any) -> Any:
        self.seen.append(message)
        if isinstance(message, tuple):
            ref = self.actor_ref

            async def tell_myself() -> None:
                for what in message[1]:
                    await hr.tell(ref, what)

            asyncio.run(tell_myself())
        return message


def test_a_thread_actor_awaiting_a_tell_into_its_own_full_inbox_does_not_wait_for_itself():
    """(Its loop, on the reader's own thread, waited out the inbox timeout for room
    only that thread could make: seen failing, 10 s.)"""
    events = hr.EventStream()
    letters = Letters(events)
    seen: list[Any] = []
    child = hr.ChildSpec(
        "self", RunsALoop, args=(seen,), max_inbox=1, inbox_overflow="block", inbox_timeout=WAIT
    )
    with hr.start_tree(hr.SupervisorSpec([child]), events=events) as tree:
        ref = tree.lookup("root/self")
        began = time.monotonic()
        assert ref.ask(("tell myself", ["fills the one place", "again"]), timeout=2 * WAIT)
        assert time.monotonic() - began < WAIT / 2
        assert ref.ask("done", timeout=WAIT) == "done"
        [(message, reason)] = letters.items
        assert message == "again"
        assert "cannot wait for room" in str(reason)
    assert "again" not in seen
    assert "fills the one place" in seen


def test_a_sender_on_a_thread_whose_id_the_inbox_names_as_its_reader_still_waits(runtime):
    """A thread's id is reused once the thread has ended: the inbox's reader may name
    a thread that now runs a loop and is no actor's. (Taken for the reader, its tell
    was a dead letter at once: seen failing.)"""
    full = Full(timeout=WAIT)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            reader = ref.actor_inbox.reader

            async def main() -> None:
                ref.actor_inbox.reader = threading.get_ident()  # as if reused
                sending = asyncio.ensure_future(hr.tell(ref, "waits"))
                await asyncio.sleep(0)
                assert not sending.done()
                full.release.set()
                await sending

            asyncio.run(main())
        finally:
            full.release.set()
        # Named the reader, this thread's ask below would be refused as the actor's own.
        ref.actor_inbox.reader = reader
        assert ref.ask("done", timeout=WAIT) == "done"
        assert "waits" in full.seen
        assert full.letters.items == []


# -- a loop that closes, a process that ends ----------------------------------------


def test_a_tell_left_waiting_by_a_loop_that_closed_is_still_sent_or_timed_out(runtime, caplog):
    full = Full(max_inbox=1, timeout=0.2)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                hr.tell(ref, "left behind")  # never awaited; its loop ends

            asyncio.run(main())
            full.release.set()
            assert ref.ask("done", timeout=WAIT) == "done"
        finally:
            full.release.set()
    sent = "left behind" in full.seen
    dead = "left behind" in full.letters.messages
    assert sent != dead
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_tell_timing_out_after_its_loop_closed_is_a_dead_letter(runtime):
    full = Full(max_inbox=1, timeout=0.05)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                hr.tell(ref, "left behind")

            asyncio.run(main())
            assert full.letters.wait_for("left behind")  # its timeout, kept without its loop
        finally:
            full.release.set()
        assert full.letters.messages == ["left behind"]
        assert ref.ask("done", timeout=WAIT) == "done"


class AwaitingTeller(hr.AsyncioActor):
    """An event-loop actor (on hedgerow's loop thread) that awaits its tells."""

    async def on_receive(self, message: Any) -> Any:
        ref, items = message
        for item in items:
            await hr.tell(ref, item)
        return "told"


def test_an_event_loop_actor_awaits_room_while_its_loop_runs_the_reader(runtime, switching):
    """The teller is on hedgerow's loop; under the ``loop`` runtime so is the reader:
    the teller's await lets the loop run the reader, which makes the room."""
    full = Full(max_inbox=2)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        teller = AwaitingTeller.start()
        try:
            full.fill(ref)
            telling = teller.ask((ref, list(range(10))), block=False)
            other = AwaitingTeller.start()  # the loop goes on: another actor answers
            try:
                assert other.ask((ref, []), timeout=WAIT) == "told"
            finally:
                other.stop()
            full.release.set()
            assert telling.get(timeout=WAIT) == "told"
        finally:
            full.release.set()
            teller.stop()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), *range(10), "done"]
        assert full.letters.items == []


def test_a_plain_ask_from_a_loop_into_a_full_block_inbox_is_answered_inbox_full(runtime):
    """``await ref.ask(msg, block=False)`` (and a proxy's call) from the loop: the
    asker learns at once that there was no room, and is told what waits for it."""
    full = Full(timeout=3.0)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                with pytest.raises(hr.InboxFull, match=r"hedgerow\.ask"):
                    await ref.ask("late", block=False)

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert "late" not in full.seen


class Napper(hr.AsyncioActor):
    async def on_receive(self, seconds: float) -> float:
        await asyncio.sleep(seconds)  # virtual, when a clock drives the loop
        return asyncio.get_running_loop().time()


def test_the_inbox_timeout_is_real_time_under_a_clock_that_drives_the_loop():
    """The teller's loop jumps an hour of virtual time while its tell waits: the
    tell still waits (the inbox timeout is real time), and goes in once there is room."""
    from hedgerow.testing import VirtualClock  # noqa: PLC0415

    with VirtualClock(autojump_threshold=0, drive=True):
        full = Full(max_inbox=1, timeout=WAIT)
        with hr.start_tree(full.spec, events=full.events) as tree:
            ref = tree.lookup("root/held")
            teller = AwaitingTeller.start()
            napper = Napper.start()
            try:
                full.fill(ref)
                telling = teller.ask((ref, ["after an hour"]), block=False)
                assert napper.ask(3600, timeout=WAIT) >= 3600  # an hour, virtually
                assert not telling.done()
                assert full.letters.items == []
                full.release.set()
                assert telling.get(timeout=WAIT) == "told"
            finally:
                full.release.set()
                teller.stop()
                napper.stop()
            assert ref.ask("done", timeout=WAIT) == "done"
            assert full.seen == ["hold", *full.fillers(), "after an hour", "done"]


def test_thousands_of_waiting_tells_cancelled_at_once_are_all_taken_back(runtime):
    full = Full(max_inbox=1)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            full.fill(ref)

            async def main() -> None:
                sends = asyncio.gather(*(hr.tell(ref, n) for n in range(3000)))
                await asyncio.sleep(0)
                sends.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await sends

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", *full.fillers(), "done"]
        assert full.letters.items == []


class Crashing(Held):
    """Held, that crashes on "crash" (its tells waiting meanwhile go to the next one)."""

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            self.seen.append(message)
            raise RuntimeError("crashed on purpose")
        return super().on_receive(message)


def test_tells_waiting_while_the_child_restarts_reach_the_next_incarnation_in_order(
    runtime, switching
):
    full = Full(Crashing, max_inbox=2)
    with hr.start_tree(full.spec, events=full.events) as tree:
        ref = tree.lookup("root/held")
        try:
            ref.tell("hold")
            assert full.entered.wait(WAIT)
            ref.tell("crash")
            ref.tell(("filler", 0))

            async def main() -> None:
                sends = [asyncio.ensure_future(hr.tell(ref, n)) for n in range(10)]
                await asyncio.sleep(0)
                full.release.set()  # "hold" returns, "crash" crashes it: a restart
                await asyncio.gather(*sends)

            asyncio.run(main())
        finally:
            full.release.set()
        assert ref.ask("done", timeout=WAIT) == "done"
        assert full.seen == ["hold", "crash", ("filler", 0), *range(10), "done"]
        assert full.letters.messages == ["crash"]  # the one that crashed it, only
        assert ref.incarnation is not None
        assert ref.incarnation.actor_incarnation == 2  # type: ignore[attr-defined]
