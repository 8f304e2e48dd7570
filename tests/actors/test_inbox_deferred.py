"""`Inbox.put_deferred`: sends that wait for room in the inbox itself, raced against
the reader, withdrawals, deadlines, a new bound and the inbox's close."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from pykka._envelope import Envelope

from hedgerow.actors import _deadlines, _inbox_deferred
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._inbox_policy import (
    DEAD,
    SENT,
    WAITING,
    WITHDRAWN,
    Deferred,
    InboxSettings,
    Overflow,
)

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0


@pytest.fixture(params=["default", "tiny"])
def switching(request: pytest.FixtureRequest) -> Iterator[None]:
    previous = sys.getswitchinterval()
    if request.param == "tiny":
        sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


class Box:
    """An inbox bounded at `bound` under ``block``, its dead letters and its senders' news."""

    def __init__(self, bound: int = 2, timeout: float = WAIT) -> None:
        self.inbox = Inbox()
        self.inbox.bound(InboxSettings(bound, Overflow.BLOCK, timeout))
        self.lock = threading.Lock()
        self.dead: list[Any] = []
        self.done: Counter[int] = Counter()
        self.inbox.on_overflow = self.on_overflow

    def on_overflow(self, envelope: Envelope[Any], error: Any) -> None:
        with self.lock:
            self.dead.append(envelope.message)

    def on_done(self, deferred: Deferred) -> None:
        with self.lock:
            self.done[id(deferred)] += 1

    def send(self, message: Any) -> Deferred | None:
        return self.inbox.put_deferred(Envelope(message), self.on_done)

    def take(self) -> Any:
        envelope = self.inbox.take_nowait()
        return None if envelope is None else envelope.message


def test_a_full_inbox_keeps_deferred_sends_in_order_ahead_of_later_ones():
    box = Box(bound=1)
    assert box.send("a") is None  # room: queued now
    b = box.send("b")
    c = box.send("c")
    assert b is not None
    assert c is not None
    assert (b.state, c.state) == (WAITING, WAITING)
    box.inbox.put(Envelope("late"), block=False)  # a send that does not wait: no room
    assert box.dead == ["late"]
    assert box.take() == "a"  # room: b goes in, c waits
    assert (b.state, c.state) == (SENT, WAITING)
    assert box.take() == "b"
    assert box.take() == "c"
    assert box.take() is None
    assert box.done == {id(b): 1, id(c): 1}


def test_a_withdrawn_send_is_never_sent_nor_dead_and_its_sender_is_not_called():
    box = Box(bound=1)
    box.send("a")
    b, c = box.send("b"), box.send("c")
    assert b is not None
    assert c is not None
    assert box.inbox.withdraw(b)
    assert b.state == WITHDRAWN
    assert not box.inbox.withdraw(b)  # once
    assert box.take() == "a"
    assert box.take() == "c"
    assert not box.inbox.withdraw(c)  # sent: too late
    assert box.dead == []
    assert box.done == {id(c): 1}


def test_a_send_past_its_deadline_is_a_dead_letter_once():
    box = Box(bound=1, timeout=0.01)
    box.send("a")
    b = box.send("b")
    assert b is not None
    expired = threading.Event()

    def on_overflow(envelope: Envelope[Any], error: Any) -> None:
        box.on_overflow(envelope, error)
        expired.set()

    box.inbox.on_overflow = on_overflow
    assert expired.wait(WAIT)
    assert b.state == DEAD
    assert box.dead == ["b"]
    assert box.inbox.statistics().dropped == 1
    assert box.take() == "a"
    assert box.take() is None


def test_a_new_bound_lets_waiting_sends_in():
    box = Box(bound=1)
    box.send("a")
    waiting = [box.send(n) for n in range(3)]
    box.inbox.bound(InboxSettings(3, Overflow.BLOCK, WAIT))
    assert [d.state for d in waiting if d is not None] == [SENT, SENT, WAITING]
    box.inbox.bound(None)
    assert [box.take() for _ in range(5)] == ["a", 0, 1, 2, None]


def test_closing_the_inbox_refuses_the_waiting_sends_once():
    box = Box(bound=1)
    box.send("a")
    b = box.send("b")
    refused: list[Any] = []
    queued = box.inbox.close("gone", lambda envelope, reason: refused.append(envelope.message))
    assert [e.message for e in queued] == ["a"]  # the caller dead-letters these
    assert refused == ["b"]
    assert b is not None
    assert b.state == DEAD
    assert box.done == {id(b): 1}
    assert box.send("c") is None  # closed: refused at once
    assert refused == ["b", "c"]


def test_racing_readers_withdrawals_and_deadlines_lose_nothing_and_duplicate_nothing(  # noqa: C901 - its threads, in one place
    switching, monkeypatch
):
    """Four senders put 300 messages each; a reader takes; a withdrawer takes back
    some; short deadlines expire others. Every message ends once: read (in each
    sender's order), withdrawn, or dead.

    The deadlines are 5 ms of real time, but for sender 0's (10 s), and the
    withdrawer takes back only odd-numbered messages: any other message can be
    lost to its deadline when the reader's thread is not scheduled for a while
    (every deferred send expired in 5 of 25 runs under a CPU hog), while each of
    sender 0's even ones that waits is certain to be read in the end."""
    box = Box(bound=3, timeout=0.005)
    at = _inbox_deferred.at

    def sender_0_waits_long(deadline: float, call: Any) -> Any:
        if call.args[0].item.message[0] == 0:  # partial(inbox._expire, deferred)
            deadline += WAIT
        return at(deadline, call)

    monkeypatch.setattr(_inbox_deferred, "at", sender_0_waits_long)
    rng = random.Random(13)
    deferred: dict[tuple[int, int], Deferred] = {}
    direct: set[tuple[int, int]] = set()
    lock = threading.Lock()
    read: list[tuple[int, int]] = []
    senders_done = threading.Event()

    def sender(who: int) -> None:
        for n in range(300):
            found = box.send((who, n))
            with lock:
                if found is None:
                    direct.add((who, n))
                else:
                    deferred[(who, n)] = found

    def reader() -> None:
        while True:
            if not senders_done.is_set() and box.inbox.statistics().depth < 3:
                continue  # takes only from a full inbox, so that sends wait
            message = box.take()
            if message is not None:
                read.append(message)
            elif senders_done.is_set() and not any(
                d.state == WAITING for d in list(deferred.values())
            ):
                return

    def withdrawer() -> None:
        while not senders_done.is_set():
            with lock:
                odd = [d for (_, n), d in deferred.items() if n % 2]
            for pick in rng.sample(odd, min(3, len(odd))):
                box.inbox.withdraw(pick)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(4)]
    others = [threading.Thread(target=reader), threading.Thread(target=withdrawer)]
    for thread in threads + others:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    senders_done.set()
    for thread in others:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in threads + others)

    check_each_ends_once(box, deferred, direct, read)
    assert deferred  # the race did defer (a reader that takes only from a full inbox)
    assert all(d.state == SENT for (w, n), d in deferred.items() if w == 0 and n % 2 == 0)


def check_each_ends_once(
    box: Box,
    deferred: dict[tuple[int, int], Deferred],
    direct: set[tuple[int, int]],
    read: list[tuple[int, int]],
) -> None:
    states = Counter(d.state for d in deferred.values())
    assert states[WAITING] == 0
    sent = {k for k, d in deferred.items() if d.state == SENT} | direct
    withdrawn = {k for k, d in deferred.items() if d.state == WITHDRAWN}
    dead = {k for k, d in deferred.items() if d.state == DEAD}
    assert len(read) == len(set(read))  # none twice
    assert set(read) == sent
    assert set(box.dead) == dead
    assert len(box.dead) == len(dead)
    assert len(sent) + len(withdrawn) + len(dead) == 4 * 300
    for who in range(4):  # each sender's messages in its order
        mine = [n for w, n in read if w == who]
        assert mine == sorted(mine)
    told = {id(d) for d in deferred.values() if d.state in (SENT, DEAD)}
    assert set(box.done) == told
    assert all(count == 1 for count in box.done.values())


def test_a_done_send_keeps_neither_its_envelope_nor_its_deadline():
    """(Each kept its envelope alive in the deadlines' heap for the inbox's timeout.)"""
    box = Box(bound=1, timeout=3600.0)
    box.send("first")
    waiting = [box.send(n) for n in range(1000)]
    for _ in range(1001):
        box.take()
    assert all(d is not None and d.state == SENT for d in waiting)
    assert all(d is not None and d.item is None and d.on_done is None for d in waiting)
    with _deadlines._condition:
        live = [e for e in _deadlines._due if e[2] is not None]
        assert len(_deadlines._due) < 200  # the cancelled ones were swept out
    assert live == []


def test_the_deadlines_thread_ends_once_no_deadline_is_left():
    box = Box(bound=1, timeout=3600.0)
    box.send("first")
    waiting = box.send("second")
    assert waiting is not None
    thread = next(t for t in threading.enumerate() if t.name == "hedgerow-deadlines")
    ready = threading.Event()
    _deadlines.at(time.monotonic(), ready.set)  # then the thread waits for the hour
    assert ready.wait(WAIT)
    box.take()  # "second" goes in: its hour-long deadline is cancelled
    thread.join(WAIT)
    assert not thread.is_alive()


# -- a thread blocked for room and deferred sends share one queue ---------------


def _blocked_sender(box: Box, message: Any) -> threading.Thread:
    """A thread blocked in ``put`` for room (returns once it waits)."""
    thread = threading.Thread(target=box.inbox.put, args=(Envelope(message),), daemon=True)
    thread.start()
    while not box.inbox._waiting:  # under the mutex it only waits: set before it sleeps
        threading.Event().wait(0.001)
    return thread


def test_a_thread_blocked_first_goes_in_before_a_later_deferred_send(switching):
    """(The deferred send went first: the reader's take queued it before it woke the
    thread, which found no room again: seen failing, ['first', 'loop', 'thread'].)"""
    box = Box(bound=1)
    box.inbox.put(Envelope("first"))
    thread = _blocked_sender(box, "thread")
    later = box.send("loop")
    assert later is not None
    read = [box.take()]
    thread.join(WAIT)
    assert not thread.is_alive()
    read += [box.take(), box.take()]
    assert read == ["first", "thread", "loop"]
    assert box.dead == []


def test_a_thread_blocked_for_room_is_not_starved_by_a_stream_of_deferred_sends():
    """(Each take let the next deferred send in; the thread woke to a full inbox every
    time, until its timeout made its message a dead letter: seen failing.)"""
    box = Box(bound=1, timeout=2.0)
    box.inbox.put(Envelope("first"))
    thread = _blocked_sender(box, "thread")
    read = []
    for n in range(50):
        box.send(n)  # a loop keeps sending while the reader keeps taking
        read.append(box.take())
    thread.join(WAIT)
    while (message := box.take()) is not None:
        read.append(message)
    assert box.dead == []
    assert read.index("thread") == 1
    assert [m for m in read if isinstance(m, int)] == list(range(50))


def test_closing_the_inbox_refuses_a_blocked_thread_once():
    box = Box(bound=1)
    refused: list[Any] = []
    box.inbox.put(Envelope("first"))
    thread = _blocked_sender(box, "thread")
    later = box.send("loop")
    box.inbox.close("gone", lambda envelope, reason: refused.append(envelope.message))
    thread.join(WAIT)
    assert sorted(refused) == ["loop", "thread"]
    assert later is not None
    assert later.state == DEAD


def test_a_blocked_thread_past_its_timeout_is_a_dead_letter_and_leaves_the_queue():
    box = Box(bound=1, timeout=0.05)
    box.inbox.put(Envelope("first"))
    thread = _blocked_sender(box, "thread")
    thread.join(WAIT)
    assert box.dead == ["thread"]
    assert not box.inbox._deferred
    assert box.take() == "first"
    assert box.send("next") is None  # room, and nobody ahead of it


# -- the deadlines thread after a fork ----------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_deadlines_are_kept_in_a_child_forked_while_the_thread_ran():
    """(The child inherited 'the thread runs' without the thread: no deadline of
    the child ever came, a waiting send there never expired: seen failing.)"""
    keep = _deadlines.at(time.monotonic() + 3600.0, lambda: None)  # the thread runs
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            came = threading.Event()
            _deadlines.at(time.monotonic() + 0.01, came.set)
            os._exit(0 if came.wait(WAIT) else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        _deadlines.cancel(keep)


def test_a_deadline_too_far_for_a_lock_to_wait_does_not_stop_the_others():
    """(The deadlines thread died of 'OverflowError: timestamp out of range' waiting
    for it, and no later deadline ever came: seen failing.)"""
    far = _deadlines.at(float("inf"), lambda: None)
    try:
        ready = threading.Event()
        _deadlines.at(time.monotonic(), ready.set)  # the thread waits for the far one
        assert ready.wait(WAIT)
        came = threading.Event()
        _deadlines.at(time.monotonic() + 0.01, came.set)
        assert came.wait(WAIT)
    finally:
        _deadlines.cancel(far)


def test_a_deadline_that_is_not_a_number_is_refused_at_once():
    with pytest.raises(ValueError, match="deadline"):
        _deadlines.at(float("nan"), lambda: None)


def test_a_thread_blocked_for_room_is_refused_by_a_close_even_if_reopened_before_it_wakes():
    """The close refuses it, as its docstring says, whenever the thread runs again
    (woken after a reopen, it was queued for the next incarnation on the code before
    the shared queue, and then a dead letter 'no room within the timeout': both
    seen failing)."""
    box = Box(bound=1)
    refused: list[Any] = []
    box.inbox.put(Envelope("first"))
    thread = _blocked_sender(box, "thread")
    box.inbox._wake_senders = lambda every=False: None  # type: ignore[method-assign]
    box.inbox.close("gone", lambda envelope, reason: refused.append((envelope.message, reason)))
    box.inbox.reopen()  # a restart, before the sender runs again
    del box.inbox._wake_senders
    with box.inbox.mutex:
        box.inbox.not_full.notify_all()
    thread.join(WAIT)
    assert refused == [("thread", "gone")]
    assert box.dead == []
    assert box.take() is None


def test_racing_blocked_threads_and_deferred_sends_each_end_once_in_order(  # noqa: C901 - its threads, in one place
    switching,
):
    """Two threads block in ``put`` for room, two others send deferred; a reader
    takes, a withdrawer takes deferred ones back, short deadlines expire others.
    Every message ends once: read (in each sender's order), withdrawn, or dead.

    The deadlines are 5 ms of real time, except the blocked sender 2's (10 s):
    any of the others can lose every message to its deadline or the withdrawer
    when the reader's thread is not scheduled for a while (a deferring sender
    sends its 300 at once: seen, 1 run in 3 on a loaded machine); sender 2 never
    does, whatever the scheduling, unless its wake-ups are lost."""
    box = Box(bound=2, timeout=0.005)
    rng = random.Random(7)
    deferred: dict[tuple[int, int], Deferred] = {}
    direct: set[tuple[int, int]] = set()
    lock = threading.Lock()
    read: list[tuple[int, int]] = []
    senders_done = threading.Event()

    def deferring(who: int) -> None:
        for n in range(300):
            found = box.send((who, n))
            with lock:
                if found is None:
                    direct.add((who, n))
                else:
                    deferred[(who, n)] = found

    def blocking(who: int) -> None:
        for n in range(300):
            box.inbox.put(Envelope((who, n)), timeout=WAIT if who == 2 else None)

    def reader() -> None:
        while True:
            if not senders_done.is_set() and box.inbox.statistics().depth < 2:
                continue  # takes only from a full inbox, so that sends wait
            message = box.take()
            if message is not None:
                read.append(message)
            elif senders_done.is_set() and not box.inbox._deferred:
                return

    def withdrawer() -> None:
        while not senders_done.is_set():
            with lock:
                picks = rng.sample(list(deferred.values()), min(3, len(deferred)))
            for pick in picks:
                box.inbox.withdraw(pick)

    senders = [threading.Thread(target=deferring, args=(w,)) for w in (0, 1)]
    senders += [threading.Thread(target=blocking, args=(w,)) for w in (2, 3)]
    others = [threading.Thread(target=reader), threading.Thread(target=withdrawer)]
    for thread in senders + others:
        thread.start()
    for thread in senders:
        thread.join(WAIT)
    senders_done.set()
    for thread in others:
        thread.join(WAIT)
    assert not any(t.is_alive() for t in senders + others)

    assert len(read) == len(set(read))  # none twice
    withdrawn = {k for k, d in deferred.items() if d.state == WITHDRAWN}
    assert all(d.state != WAITING for d in deferred.values())
    assert not set(read) & set(box.dead)
    assert not (set(read) | set(box.dead)) & withdrawn
    assert len(box.dead) == len(set(box.dead))
    assert len(read) + len(box.dead) + len(withdrawn) == 4 * 300
    for who in range(4):  # each sender's messages in its order
        mine = [n for w, n in read if w == who]
        assert mine == sorted(mine)
    assert [n for w, n in read if w == 2] == list(range(300))  # not starved out
