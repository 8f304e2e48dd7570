"""Joining through a peer that is not a WAMP router: the join fails with
``hedgerow.error.not_connected`` and says why, without waiting longer than it must,
and leaves no connection open. Runs on asyncio and on Twisted (`test_framework.py`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from hedgerow.transports import NOT_CONNECTED, ApplicationError, WampTransport

TIMEOUT = 10.0


class Listener:
    """A TCP listener on 127.0.0.1 that accepts one connection and then does `behaviour`."""

    def __init__(self, behaviour: str) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.behaviour = behaviour
        self.closed_by_peer = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="not-a-router", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.socket.accept()
        with connection:
            if self.behaviour == "close":
                return
            connection.settimeout(TIMEOUT)
            try:
                while connection.recv(4096):  # say nothing; b"" once the client has closed
                    pass
            except ConnectionResetError:  # Twisted aborts with a reset
                pass
            self.closed_by_peer.set()

    def transport(self, timeout: float) -> WampTransport:
        endpoint = {"type": "tcp", "host": "127.0.0.1", "port": self.port, "timeout": timeout}
        return WampTransport(
            {"type": "rawsocket", "url": f"rs://127.0.0.1:{self.port}", "endpoint": endpoint}
        )

    def close(self) -> None:
        self.socket.close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def listener(request: pytest.FixtureRequest) -> Iterator[Listener]:
    made = Listener(request.param)
    yield made
    made.close()


@pytest.mark.parametrize("listener", ["close"], indirect=True)
def test_a_connection_closed_before_the_session_opens_fails_the_join_at_once(listener):
    transport = listener.transport(timeout=TIMEOUT)
    started = time.monotonic()
    with pytest.raises(ApplicationError) as caught:
        transport.join("realm1", None).result(TIMEOUT)
    assert time.monotonic() - started < TIMEOUT / 2  # not the join's timeout
    assert caught.value.error == NOT_CONNECTED
    message = caught.value.error_message()
    assert f"connection to {transport.describe()} closed before the session joined" in message


@pytest.mark.parametrize("listener", ["silent"], indirect=True)
def test_a_peer_that_never_answers_times_out_and_is_hung_up_on(listener):
    transport = listener.transport(timeout=0.5)
    with pytest.raises(ApplicationError) as caught:
        transport.join("realm1", None).result(TIMEOUT)
    assert caught.value.error == NOT_CONNECTED
    assert "no answer to joining 'realm1'" in caught.value.error_message()
    assert "within 0.5 s" in caught.value.error_message()
    assert listener.closed_by_peer.wait(TIMEOUT), "the connection was left open"
