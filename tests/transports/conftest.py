"""The transport fixture the conformance suite runs against, and a seam-level client.

Each implementation of the seam is one parameter of `transport`: the
in-process router (serializing payloads, its default, and passing them by
reference), and the WAMP transport through a real Crossbar.io router, over
WebSocket (serializers negotiated per session), RawSocket over TCP and
RawSocket over a Unix socket (one serializer per session). The router is
started once per session, on free ports, and stopped by its process id.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from transports.wamp_router import Authenticated, authentication, start_router

from hedgerow.transports import (
    Call,
    Closed,
    Crossbar,
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
    WampTransport,
)

TIMEOUT = 10.0


@dataclass
class Implementation:
    """A transport under test and what it can do."""

    name: str
    make: Callable[..., Transport]
    copies_payloads: bool
    needs_router: bool = False


def _wamp(url_of: Callable[[Crossbar], str]) -> Callable[[Crossbar], Transport]:
    def make(router: Crossbar) -> Transport:
        return Authenticated(WampTransport(url_of(router)), authentication())

    return make


IMPLEMENTATIONS = [
    Implementation("inprocess", InProcessRouter, copies_payloads=True),
    Implementation(
        "inprocess-by-reference", lambda: InProcessRouter(serialize=False), copies_payloads=False
    ),
    Implementation(
        "wamp-websocket",
        _wamp(lambda r: r.config.websocket_url or ""),
        copies_payloads=True,
        needs_router=True,
    ),
    Implementation(
        "wamp-rawsocket",
        _wamp(lambda r: r.config.rawsocket_url or ""),
        copies_payloads=True,
        needs_router=True,
    ),
    Implementation(
        "wamp-rawsocket-unix",
        _wamp(lambda r: f"rs://unix:{r.config.rawsocket_path}"),
        copies_payloads=True,
        needs_router=True,
    ),
]


@pytest.fixture(scope="session")
def crossbar_router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crossbar]:
    """One Crossbar.io router for the session (127.0.0.1, free ports, stopped by pid)."""
    router = start_router(tmp_path_factory.mktemp("crossbar"))
    yield router
    router.close()


@pytest.fixture(params=IMPLEMENTATIONS, ids=lambda i: i.name)
def implementation(request: pytest.FixtureRequest) -> Implementation:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def transport(implementation: Implementation, request: pytest.FixtureRequest) -> Transport:
    if implementation.needs_router:
        return implementation.make(request.getfixturevalue("crossbar_router"))
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
            # Wait: the router handles another connection's next REGISTER in parallel.
            self.link.handle(Leave()).result(TIMEOUT)

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
