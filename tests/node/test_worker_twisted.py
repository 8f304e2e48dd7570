"""Twisted on request, process by process: a worker with ``framework = "twisted"`` and
``hedgerow run --framework twisted`` serve through a real Crossbar.io router beside
asyncio processes, and a Twisted worker that is SIGKILLed comes back on Twisted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from transports.wamp_router import SECRET, authentication, start_router

import hedgerow as hr
from hedgerow.node._treeload import loads_tree, read_tree
from hedgerow.supervision._treefile import dumps_tree
from hedgerow.testing import EventRecorder
from hedgerow.transports import Call, Leave
from hedgerow.transports._base import resolve_transports

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent
TIMEOUT = 20.0

COMPONENTS = """
[components]
transports = [{ url = "${HR_TEST_ROUTER_URL}", initial_retry_delay = 0.2 }]
authentication = { ticket = { authid = "hedgerow", ticket = "${HR_TEST_APP_SECRET}" } }
"""

TWO_WORKERS = (
    COMPONENTS
    + """
[supervisor]
name = "mixed"

[[supervisor.children]]
id = "aio"
[supervisor.children.worker]
[[supervisor.children.worker.components]]
id = "side"
start = "worker_components:asyncio_side"

[[supervisor.children]]
id = "tw"
restart = "always"
[supervisor.children.worker]
framework = "twisted"
[[supervisor.children.worker.components]]
id = "side"
start = "worker_components:twisted_side"
"""
)

ONE_COMPONENT = (
    COMPONENTS
    + """
[supervisor]
name = "node"

[[supervisor.children]]
id = "side"
start = "worker_components:twisted_side"
"""
)


class _Peer:
    def deliver(self, message):
        pass


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    router = start_router(tmp_path_factory.mktemp("twisted-router"), rawsocket_path=None)
    yield router
    router.close()


@pytest.fixture
def app(router):
    [config] = resolve_transports(router.config.websocket_url)
    link = config.transport.join(
        "realm1", _Peer(), serializers=config.serializers, authentication=authentication()
    ).result(TIMEOUT)
    yield link
    if link.is_open:
        link.handle(Leave()).result(TIMEOUT)


def call(link, uri, *args):
    result = link.handle(Call(uri, list(args), {})).result(TIMEOUT)
    return result.args[0] if result.args else None


def test_a_twisted_worker_serves_beside_an_asyncio_one_and_comes_back_on_twisted(
    router, app, tmp_path, monkeypatch
):
    monkeypatch.setenv("HR_TEST_ROUTER_URL", router.config.websocket_url)
    monkeypatch.setenv("HR_TEST_APP_SECRET", SECRET)
    monkeypatch.syspath_prepend(str(HERE))
    file = tmp_path / "mixed.toml"
    file.write_text(textwrap.dedent(TWO_WORKERS))
    spec = read_tree(file).spec
    events = hr.EventStream()
    recorder = EventRecorder(events)
    tree = hr.Tree(spec, events=events)
    try:
        recorder.wait_for("started", "mixed/aio/side", timeout=TIMEOUT)
        recorder.wait_for("started", "mixed/tw/side", timeout=TIMEOUT)
        asyncio_side = call(app, "com.example.frameworks.asyncio.whoami")
        assert asyncio_side["framework"] == "asyncio"
        assert not asyncio_side["reactor_running"]
        twisted_side = call(app, "com.example.frameworks.twisted.whoami")
        assert twisted_side["framework"] == "twisted"
        assert twisted_side["reactor_running"]
        assert len({os.getpid(), asyncio_side["pid"], twisted_side["pid"]}) == 3

        # From a Twisted handler, through the router, to the asyncio worker and back.
        relayed = call(app, "com.example.frameworks.twisted.relay", 21)
        assert relayed["doubled"] == 42
        assert relayed["framework"] == "twisted"

        os.kill(twisted_side["pid"], signal.SIGKILL)
        recorder.wait_for("restarted", "mixed/tw", timeout=TIMEOUT)
        recorder.wait_for("started", "mixed/tw/side", count=2, timeout=TIMEOUT)
        again = call(app, "com.example.frameworks.twisted.whoami")
        assert again["framework"] == "twisted"
        assert again["reactor_running"]
        assert again["pid"] != twisted_side["pid"]
    finally:
        tree.stop(TIMEOUT)


def test_the_worker_framework_is_checked_and_written_back(monkeypatch, tmp_path):
    monkeypatch.setenv("HR_TEST_ROUTER_URL", "ws://127.0.0.1:1/ws")
    monkeypatch.setenv("HR_TEST_APP_SECRET", SECRET)
    monkeypatch.syspath_prepend(str(HERE))
    spec = loads_tree(textwrap.dedent(TWO_WORKERS), "toml")
    written = dumps_tree(spec, "toml")
    assert 'framework = "twisted"' in written
    assert loads_tree(written, "toml") == spec
    bad = TWO_WORKERS.replace('framework = "twisted"', 'framework = "tornado"')
    with pytest.raises(hr.ConfigError) as caught:
        loads_tree(textwrap.dedent(bad), "toml", source="mixed.toml")
    message = str(caught.value)
    assert "mixed.toml" in message
    assert "supervisor.children[1].worker.framework" in message
    assert "expected one of asyncio, twisted" in message


def test_hedgerow_run_framework_twisted_serves_from_twisteds_reactor(router, app, tmp_path):
    file = tmp_path / "node.toml"
    file.write_text(textwrap.dedent(ONE_COMPONENT))
    env = {
        **os.environ,
        "HR_TEST_ROUTER_URL": router.config.websocket_url,
        "HR_TEST_APP_SECRET": SECRET,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "hedgerow", "run", "--framework", "twisted", str(file)]
    node = subprocess.Popen(
        [*command, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert node.stdout is not None
        for line in node.stdout:  # blocking reads: the node's own events
            event = json.loads(line)
            if (event.get("kind"), event.get("path")) == ("started", "node/side"):
                break
        served = call(app, "com.example.frameworks.twisted.whoami")
        assert served == {"framework": "twisted", "reactor_running": True, "pid": node.pid}
        node.send_signal(signal.SIGTERM)
        _, err = node.communicate(timeout=TIMEOUT)
        assert node.returncode == 0, err
    finally:
        if node.poll() is None:
            node.kill()
            node.communicate()


def test_hedgerow_run_refuses_an_unknown_framework(tmp_path):
    file = tmp_path / "node.toml"
    file.write_text(textwrap.dedent(ONE_COMPONENT))
    done = subprocess.run(
        [sys.executable, "-m", "hedgerow", "run", "--framework", "tornado", str(file)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "'tornado' is not one of 'asyncio', 'twisted'" in done.stderr
