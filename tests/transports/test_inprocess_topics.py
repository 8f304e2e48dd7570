"""The in-process router's topic index: exact topics by lookup, patterns by scan.

What a publication reaches must not change with the index: every matching
subscription (exact, prefix, wildcard), each once, in the order the
subscriptions were made, and nothing for the unrelated ones.
"""

from __future__ import annotations

import queue
from typing import Any

from hedgerow.transports import (
    Event,
    InProcessRouter,
    Leave,
    Publish,
    Subscribe,
    SubscribeOptions,
    Unsubscribe,
)

TIMEOUT = 10.0


class Inbox:
    def __init__(self) -> None:
        self.messages: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def deliver(self, message: Any) -> None:
        self.messages.put(message)

    def drain(self) -> list[Event]:
        """What was delivered so far (the router delivers on the publisher's thread)."""
        got = []
        while not self.messages.empty():
            got.append(self.messages.get_nowait())
        return got


def subscribe(link: Any, topic: str, match: str | None = None) -> int:
    options = SubscribeOptions(match=match) if match else None
    sub_id: int = link.handle(Subscribe(topic, options)).result(TIMEOUT)
    return sub_id


def publish(link: Any, topic: str) -> None:
    link.handle(Publish(topic, [topic])).result(TIMEOUT)


def test_a_publication_reaches_exact_and_pattern_subscriptions_in_subscription_order():
    router = InProcessRouter()
    inbox = Inbox()
    subscriber = router.join("realm1", inbox).result(TIMEOUT)
    publisher = router.join("realm1", Inbox()).result(TIMEOUT)
    unrelated = [subscribe(subscriber, f"com.example.other.{n}") for n in range(50)]
    prefix = subscribe(subscriber, "com.example", "prefix")
    exact = subscribe(subscriber, "com.example.a.b")
    wildcard = subscribe(subscriber, "com.example..b", "wildcard")
    later_prefix = subscribe(subscriber, "com.example.a", "prefix")

    publish(publisher, "com.example.a.b")
    got = inbox.drain()
    assert [e.subscription for e in got] == [prefix, exact, wildcard, later_prefix]
    assert {e.topic for e in got} == {"com.example.a.b"}
    assert len({e.publication for e in got}) == 1

    publish(publisher, "com.example.other.7")  # its exact subscription, and the first prefix
    assert [e.subscription for e in inbox.drain()] == [unrelated[7], prefix]

    subscriber.handle(Unsubscribe(prefix)).result(TIMEOUT)
    subscriber.handle(Unsubscribe(wildcard)).result(TIMEOUT)
    publish(publisher, "com.example.a.b")
    assert [e.subscription for e in inbox.drain()] == [exact, later_prefix]
    subscriber.handle(Unsubscribe(later_prefix)).result(TIMEOUT)
    publish(publisher, "com.example.a.b")
    assert [e.subscription for e in inbox.drain()] == [exact]
    publish(publisher, "com.example.a.c")  # nothing matches any more
    assert inbox.drain() == []


def test_patterns_alone_and_exact_alone_still_match():
    router = InProcessRouter()
    inbox = Inbox()
    subscriber = router.join("realm1", inbox).result(TIMEOUT)
    publisher = router.join("realm1", Inbox()).result(TIMEOUT)
    wildcard = subscribe(subscriber, "com..tick", "wildcard")
    publish(publisher, "com.example.tick")
    assert [e.subscription for e in inbox.drain()] == [wildcard]
    subscriber.handle(Unsubscribe(wildcard)).result(TIMEOUT)
    exact = subscribe(subscriber, "com.example.tick")
    publish(publisher, "com.example.tick")
    assert [e.subscription for e in inbox.drain()] == [exact]
    stats = router.statistics().subscriptions["realm1"]
    assert stats == {"com.example.tick": 1}


def test_a_session_that_leaves_takes_its_pattern_subscriptions_with_it():
    router = InProcessRouter()
    inbox, other = Inbox(), Inbox()
    leaving = router.join("realm1", inbox).result(TIMEOUT)
    staying = router.join("realm1", other).result(TIMEOUT)
    publisher = router.join("realm1", Inbox()).result(TIMEOUT)
    subscribe(leaving, "com.example", "prefix")
    kept = subscribe(staying, "com.example.x")
    leaving.handle(Leave()).result(TIMEOUT)
    publish(publisher, "com.example.x")
    assert inbox.drain() == []
    assert [e.subscription for e in other.drain()] == [kept]
    assert router.statistics().subscriptions["realm1"] == {"com.example.x": 1}
