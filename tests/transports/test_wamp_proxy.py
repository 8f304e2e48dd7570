"""WebSocket through an HTTP proxy (autobahn's ``proxy`` transport setting): the
component's connection goes to the proxy, which opens a tunnel to the router with
CONNECT. Runs on asyncio and on Twisted (`scripts/test.sh`)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
from helpers import start
from transports.wamp_router import authentication

import hedgerow as hr
from hedgerow.transports import Call, Crossbar, Leave, WampTransport

TIMEOUT = 10.0


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that only tunnels (CONNECT), and records where to."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.socket.getsockname()[1]
        self.tunnels: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, name="proxy", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.socket.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        assert method == "CONNECT", head
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)), timeout=TIMEOUT)
        upstream.settimeout(None)
        with self.lock:
            self.tunnels.append(target)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        rest = head.split(b"\r\n\r\n", 1)[1]
        if rest:
            upstream.sendall(rest)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.socket.close()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    made = ConnectProxy()
    yield made
    made.close()


def test_a_component_reaches_the_router_through_an_http_proxy(crossbar_router: Crossbar, proxy):
    url = crossbar_router.config.websocket_url
    assert url is not None
    router_address = url.split("//", 1)[1].split("/", 1)[0]
    settings = {"url": url, "proxy": {"host": "127.0.0.1", "port": proxy.port}}
    comp = hr.Component(transports=[settings], authentication=authentication(), name="proxied")
    comp.register("com.example.proxied.add")(lambda a, b: a + b)
    tree, _ = start(hr.SupervisorSpec([comp.child_spec()]))
    with tree:
        assert proxy.tunnels == [router_address]
        link = WampTransport(url).join("realm1", None, authentication=authentication())
        link = link.result(TIMEOUT)
        try:
            result = link.handle(Call("com.example.proxied.add", [2, 3], {})).result(TIMEOUT)
            assert result.args == [5]
        finally:
            link.handle(Leave()).result(TIMEOUT)


def test_a_proxy_is_for_websocket_only():
    with pytest.raises(ValueError, match="proxy= only supported for type=websocket"):
        WampTransport({"type": "rawsocket", "url": "rs://127.0.0.1:1", "proxy": {"host": "h"}})
