"""Crossbar.io for the tests: one router per session (or per test that kills it).

Routers listen on 127.0.0.1, on free ports, with ticket and WAMP-CRA
authentication from a secret file, and are stopped by process id.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from hedgerow.transports import Crossbar, RouterConfig, Transport

SECRET = "hedgerow-test-secret"  # noqa: S105 - a test router's secret
REALMS = ("realm1", "realm.one", "realm.two")
HERE = Path(__file__).resolve().parent


def router_config(directory: Path, **overrides: Any) -> RouterConfig:
    """A router config for tests: free ports, this test's secret in a file."""
    secret = directory / "secret"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    settings: dict[str, Any] = {
        "realms": REALMS,
        "websocket_port": 0,
        "rawsocket_port": 0,
        "rawsocket_path": str(directory / "router.sock"),
        "secret_env": "HEDGEROW_TEST_NO_SUCH_VARIABLE",
        "secret_file": secret,
    }
    settings.update(overrides)
    return RouterConfig(**settings)


def start_router(directory: Path, **overrides: Any) -> Crossbar:
    """Start a router for tests and wait until it is ready."""
    router = Crossbar(router_config(directory, **overrides), cbdir=directory / "node")
    router.start()
    return router


def authentication(method: str = "ticket", secret: str = SECRET) -> dict[str, Any]:
    key = "ticket" if method == "ticket" else "secret"
    return {method: {"authid": "hedgerow", key: secret}}


class Authenticated(Transport):
    """A transport whose joins carry credentials (the conformance clients pass none)."""

    def __init__(self, inner: Transport, auth: dict[str, Any]) -> None:
        self.inner = inner
        self.auth = auth

    def join(self, realm, peer, *, serializers=("msgpack", "cbor", "json"), authentication=None):  # type: ignore[no-untyped-def]
        return self.inner.join(
            realm, peer, serializers=serializers, authentication=authentication or self.auth
        )

    def describe(self) -> str:
        return self.inner.describe()

    def handler_loop(self):  # type: ignore[no-untyped-def]
        return self.inner.handler_loop()


def takeover(url, procedure, *credentials):
    """What a plain autobahn client gets when it registers `procedure` with
    ``force_reregister`` (hedgerow's own sessions never ask for that)."""
    result = subprocess.run(
        [sys.executable, str(HERE / "autobahn_takeover.py"), url, procedure, *credentials],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])
