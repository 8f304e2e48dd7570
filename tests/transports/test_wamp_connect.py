"""Joining through a peer that is not a WAMP router: the join fails with
``hedgerow.error.not_connected`` and says why, without waiting longer than it must,
and leaves no connection open. Runs on asyncio and on Twisted (`scripts/test.sh`)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from hedgerow.transports import NOT_CONNECTED, ApplicationError, WampTransport

TIMEOUT = 10.0


class Listener:
    """A TCP listener on 127.0.0.1 that accepts one connection and then does `behaviour`:
    ``close`` at once, stay ``silent``, or complete the RawSocket handshake and then
    ``reset`` the connection when the client says HELLO."""

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
            if self.behaviour == "reset":
                self._handshake_then_reset(connection)
                return
            connection.settimeout(TIMEOUT)
            try:
                while connection.recv(4096):  # say nothing; b"" once the client has closed
                    pass
            except ConnectionResetError:  # Twisted aborts with a reset
                pass
            self.closed_by_peer.set()

    def _handshake_then_reset(self, connection: socket.socket) -> None:
        connection.settimeout(TIMEOUT)
        offer = connection.recv(4)  # 0x7F, max length and serializer, two reserved bytes
        connection.sendall(offer)  # accepted as offered: the session opens
        connection.recv(4096)  # its HELLO
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

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


@pytest.mark.parametrize("listener", ["reset"], indirect=True)
def test_a_connection_reset_after_the_handshake_fails_the_join_with_its_reason(listener):
    transport = listener.transport(timeout=TIMEOUT)
    with pytest.raises(ApplicationError) as caught:
        transport.join("realm1", None).result(TIMEOUT)
    assert caught.value.error == NOT_CONNECTED
    message = caught.value.error_message()
    prefix = f"connection to {transport.describe()} closed before the session joined: "
    assert prefix in message
    assert message.split(prefix, 1)[1]  # and why
    assert caught.value.__cause__ is not None
