"""Attacks on `EventStream.subscribe(kinds=...)` and `publish_if_seen`: bad kinds
input, sequence numbers under concurrent publishers, a subscriber added while
events are published."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

import hedgerow as hr
from hedgerow import EventKind

pytestmark = pytest.mark.timeout(30)

EVENTS = 2_000


@pytest.mark.parametrize(
    "kinds",
    [EventKind.RESTARTED, "restarted", b"restarted", 5, [None], [[EventKind.STARTED]], [0]],
    ids=["one-member", "str", "bytes", "int", "none-item", "unhashable-item", "int-item"],
)
def test_bad_kinds_are_a_clear_type_error_and_subscribe_nothing(kinds: Any) -> None:
    """(A single member, a string or a number raised Python's own "object is not
    iterable", or named one letter of the string: seen failing.)"""
    stream = hr.EventStream()
    seen: list[hr.Event] = []
    with pytest.raises(TypeError, match=r"^subscribe takes .*EventKind members as kinds, not "):
        stream.subscribe(seen.append, kinds=kinds)
    stream.publish(EventKind.RESTARTED, "root/a", 0.0)
    assert seen == []


def test_a_single_kind_is_told_how_to_subscribe() -> None:
    with pytest.raises(TypeError, match=r"kinds=\[EventKind.RESTARTED\]"):
        hr.EventStream().subscribe(print, kinds=EventKind.RESTARTED)  # type: ignore[arg-type]


def test_kinds_from_a_generator_and_an_empty_list() -> None:
    stream = hr.EventStream()
    some: list[hr.Event] = []
    none: list[hr.Event] = []
    stream.subscribe(some.append, kinds=(k for k in [EventKind.STOPPED]))
    stream.subscribe(none.append, kinds=[])
    stream.publish(EventKind.STARTED, "root/a", 0.0)
    stream.publish(EventKind.STOPPED, "root/a", 0.0)
    assert [e.kind for e in some] == [EventKind.STOPPED]
    assert none == []


def test_the_same_callback_twice_with_other_kinds_unsubscribes_one() -> None:
    stream = hr.EventStream()
    seen: list[hr.Event] = []
    first = stream.subscribe(seen.append, kinds=[EventKind.STARTED])
    stream.subscribe(seen.append, kinds=[EventKind.STOPPED])
    first()
    first()  # twice: harmless
    stream.publish(EventKind.STARTED, "root/a", 0.0)
    stream.publish(EventKind.STOPPED, "root/a", 0.0)
    assert [e.kind for e in seen] == [EventKind.STOPPED]


@pytest.mark.usefixtures("switch_often")
def test_a_subscriber_added_while_publishing_sees_every_later_event_in_order() -> None:
    """One publisher mixes `publish_if_seen` of an unwatched kind with `publish`;
    a kinds subscriber added meanwhile sees, from its first event on, every
    event of its kind, in sequence order, and sequence numbers never repeat."""
    stream = hr.EventStream()
    published: list[hr.Event] = []
    started = threading.Event()

    def publisher() -> None:
        for i in range(EVENTS):
            if i == 10:
                started.set()
            assert stream.publish_if_seen(EventKind.STARTED, "root/a", 0.0) is None
            published.append(stream.publish(EventKind.RESTARTED, "root/a", float(i)))

    thread = threading.Thread(target=publisher)
    thread.start()
    assert started.wait(10)
    seen: list[hr.Event] = []
    stream.subscribe(seen.append, kinds=[EventKind.RESTARTED])
    thread.join(20)
    assert not thread.is_alive()
    assert seen, "the subscriber saw nothing"
    first = published.index(seen[0])
    assert seen == published[first:]
    seqs = [e.seq for e in published]
    assert seqs == sorted(set(seqs))
    assert all(b - a == 2 for a, b in itertools.pairwise(seqs))  # publish_if_seen used one each


@pytest.mark.usefixtures("switch_often")
def test_concurrent_publishers_never_share_a_sequence_number() -> None:
    stream = hr.EventStream()
    seen: list[int] = []
    lock = threading.Lock()

    def record(event: hr.Event) -> None:
        with lock:
            seen.append(event.seq)

    stream.subscribe(record, kinds=[EventKind.STOPPED])
    barrier = threading.Barrier(4)

    def publisher() -> None:
        barrier.wait(10)
        for _ in range(EVENTS // 4):
            stream.publish_if_seen(EventKind.STARTED, "root/a", 0.0)
            stream.publish_if_seen(EventKind.STOPPED, "root/a", 0.0)

    threads = [threading.Thread(target=publisher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(seen) == EVENTS
    assert len(set(seen)) == EVENTS
