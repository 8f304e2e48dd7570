"""examples/two_process: node 1 serves and publishes, node 2 calls and subscribes,
each in its own OS process and as its own principal (the example's
principals.toml), through a Crossbar.io router; node 1 on asyncio, then on
Twisted's reactor (``--twisted``) with node 2 on asyncio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from transports.wamp_router import start_router

from hedgerow.transports._authorization import load_principals

EXAMPLE = Path(__file__).parents[2] / "examples" / "two_process"
TIMEOUT = 30.0
SECRETS = {
    "HEDGEROW_NODE1_SECRET": "node-one-test-secret",
    "HEDGEROW_NODE2_SECRET": "node-two-test-secret",
}


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    """A router with the example's principals (and their secrets in our environment)."""
    saved = {name: os.environ.get(name) for name in SECRETS}
    os.environ.update(SECRETS)
    router = start_router(
        tmp_path_factory.mktemp("two-process"),
        principals=load_principals(EXAMPLE / "principals.toml"),
    )
    try:
        yield router
    finally:
        router.close()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.mark.parametrize("framework", ["asyncio", "twisted"])
def test_two_nodes_talk_through_the_router(router, framework):
    env = dict(os.environ)
    env["HEDGEROW_ROUTER_URL"] = router.config.websocket_url
    node1 = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "node1.py")]
        + (["--twisted"] if framework == "twisted" else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert node1.stdout is not None
        seen = []
        for line in node1.stdout:
            seen.append(line)
            if line.startswith("node 1: ready"):
                break
        assert seen, "node 1 printed nothing"
        assert seen[-1] == f"node 1: ready (on {framework})\n", "".join(seen)
        rest: list[str] = []
        drain = threading.Thread(target=lambda: rest.extend(node1.stdout), daemon=True)
        drain.start()
        node2 = subprocess.run(
            [sys.executable, str(EXAMPLE / "node2.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=TIMEOUT,
            check=False,
        )
        assert node2.returncode == 0, node2.stdout + node2.stderr
        assert "node 2: add(4, 10) -> 14" in node2.stdout
        assert "node 2: event 4 + 10 = 14" in node2.stdout
        assert "node 2: done (5 events)" in node2.stdout
        node1.send_signal(signal.SIGINT)
        assert node1.wait(TIMEOUT) == 0
        drain.join(TIMEOUT)
        assert "node 1: add(4, 10) = 14\n" in rest
    finally:
        if node1.poll() is None:
            node1.kill()
            node1.wait()
