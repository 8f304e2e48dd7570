"""The transport fixture the conformance suite runs against, and a seam-level client.

Each implementation of the seam is one parameter of `transport`: today the
in-process router (serializing payloads, its default, and passing them by
reference); the WAMP transport through Crossbar.io joins this list later.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from hedgerow.transports import (
    Call,
    Closed,
    Event,
    InProcessRouter,
    Invocation,
    Leave,
    Link,
    Register,
    RegisterOptions,
    Result,
    Subscribe,
    SubscribeOptions,
    Transport,
)

TIMEOUT = 10.0


@dataclass
class Implementation:
    """A transport under test and what it can do."""

    name: str
    make: Callable[[], Transport]
    copies_payloads: bool


IMPLEMENTATIONS = [
    Implementation("inprocess", InProcessRouter, copies_payloads=True),
    Implementation(
        "inprocess-by-reference", lambda: InProcessRouter(serialize=False), copies_payloads=False
    ),
]


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda i: i.name)
def implementation(request: pytest.FixtureRequest) -> Implementation:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def transport(implementation: Implementation) -> Transport:
    return implementation.make()


Handler = Callable[[Invocation], None]


class Client:
    """A session on the seam with a worker thread, like a component without an actor.

    Invocations go to the handler registered for their registration id (run on
    the worker thread); events and closes are kept for `wait_events`.
    """

    def __init__(
        self,
        transport: Transport,
        realm: str = "realm1",
        serializers: Sequence[str] = ("msgpack", "cbor", "json"),
    ) -> None:
        self.inbox: queue.Queue[Any] = queue.Queue()
        self.handlers: dict[int, Handler] = {}
        self.events: list[Event] = []
        self.closed: list[Closed] = []
        self.cond = threading.Condition()
        self.link: Link = transport.join(realm, self, serializers=serializers).result(TIMEOUT)
        self.thread = threading.Thread(target=self._run, name=f"client-{self.link.session_id}")
        self.thread.start()

    def deliver(self, message: Any) -> None:
        self.inbox.put(message)

    def _run(self) -> None:
        while True:
            message = self.inbox.get()
            if message is None:
                return
            if isinstance(message, Invocation):
                self.handlers[message.registration](message)
            else:
                with self.cond:
                    target = self.events if isinstance(message, Event) else self.closed
                    target.append(message)
                    self.cond.notify_all()

    def stop(self) -> None:
        self.inbox.put(None)
        self.thread.join(TIMEOUT)
        if self.link.is_open:
            self.link.handle(Leave())

    # -- conveniences ----------------------------------------------------------

    def register(self, procedure: str, handler: Handler, **options: Any) -> int:
        opts = RegisterOptions(**options) if options else None
        reg_id: int = self.link.handle(Register(procedure, opts)).result(TIMEOUT)
        self.handlers[reg_id] = handler
        return reg_id

    def serve(self, procedure: str, fn: Callable[..., Any], **options: Any) -> int:
        """Register `fn(*args, **kwargs)`; its return value is the single result."""

        def handler(inv: Invocation) -> None:
            try:
                value = fn(*inv.args, **inv.kwargs)
            except Exception as exc:
                inv.reply.error("com.example.error", [str(exc)], {})
            else:
                inv.reply.result([value], {})

        return self.register(procedure, handler, **options)

    def subscribe(self, topic: str, **options: Any) -> int:
        opts = SubscribeOptions(**options) if options else None
        sub_id: int = self.link.handle(Subscribe(topic, opts)).result(TIMEOUT)
        return sub_id

    def call(self, procedure: str, *args: Any, **kwargs: Any) -> Result:
        result: Result = self.link.handle(Call(procedure, list(args), kwargs)).result(TIMEOUT)
        return result

    def wait_events(self, count: int) -> list[Event]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.events) >= count, TIMEOUT), self.events
            return list(self.events)


@pytest.fixture
def clients(transport: Transport) -> Iterator[Callable[..., Client]]:
    """Make clients on the transport under test; all are stopped afterwards."""
    made: list[Client] = []

    def make(realm: str = "realm1", **kwargs: Any) -> Client:
        client = Client(transport, realm, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()
