"""A node from a tree file with a worker process, through a real Crossbar router:
serving, SIGKILL and recovery, the management API for its role only, hedgerow status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import hedgerow as hr
from hedgerow.components._management_service import ManagementService, tree_procedures
from hedgerow.node._treeload import read_tree
from hedgerow.supervision._management import node_prefix
from hedgerow.testing import EventRecorder
from hedgerow.transports import ApplicationError, Call, Crossbar, Leave, RouterConfig
from hedgerow.transports._base import resolve_transports

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent
APP_SECRET = "app-secret"  # noqa: S105 - a test router's secrets
MANAGEMENT_SECRET = "management-secret"  # noqa: S105
TIMEOUT = 20.0

TREE = """
[management]
transports = "${HR_TEST_ROUTER_URL}"
authentication = { ticket = { authid = "management", ticket = "${HR_TEST_MANAGEMENT_SECRET}" } }

[components]
transports = [{ url = "${HR_TEST_ROUTER_URL}", initial_retry_delay = 0.2 }]
authentication = { ticket = { authid = "hedgerow", ticket = "${HR_TEST_APP_SECRET}" } }

[supervisor]
name = "shop"

[[supervisor.children]]
id = "w1"
restart = "always"
shutdown = 5
[supervisor.children.worker]
restart = "restart-failed"
[[supervisor.children.worker.components]]
id = "adder"
start = "worker_components:adder"
"""


class _Peer:
    def deliver(self, message):
        pass


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    directory = tmp_path_factory.mktemp("management-router")
    secret = directory / "secret"
    secret.write_text(APP_SECRET)
    previous = os.environ.get("HR_TEST_MANAGEMENT_SECRET")
    os.environ["HR_TEST_MANAGEMENT_SECRET"] = MANAGEMENT_SECRET
    config = RouterConfig(
        websocket_port=0,
        rawsocket_port=None,
        secret_env="HR_TEST_NO_SUCH_VARIABLE",  # noqa: S106 - variable names
        secret_file=secret,
        management_secret_env="HR_TEST_MANAGEMENT_SECRET",  # noqa: S106
    )
    crossbar = Crossbar(config, cbdir=directory / "node")
    crossbar.start()
    try:
        yield crossbar
    finally:
        crossbar.stop()
        if previous is None:
            os.environ.pop("HR_TEST_MANAGEMENT_SECRET", None)


def join(url, authid, secret):
    [config] = resolve_transports(url)
    authentication = {"ticket": {"authid": authid, "ticket": secret}}
    return config.transport.join(
        "realm1", _Peer(), serializers=config.serializers, authentication=authentication
    ).result(TIMEOUT)


def call(link, uri, *args):
    result = link.handle(Call(uri, list(args), {})).result(TIMEOUT)
    return result.args[0] if result.args else None


def test_a_node_with_a_worker_serves_recovers_and_is_managed(  # noqa: PLR0915 - one story
    router, tmp_path, monkeypatch
):
    url = router.config.websocket_url
    monkeypatch.setenv("HR_TEST_ROUTER_URL", url)
    monkeypatch.setenv("HR_TEST_APP_SECRET", APP_SECRET)
    file = tmp_path / "node.toml"
    file.write_text(textwrap.dedent(TREE))
    monkeypatch.syspath_prepend(str(HERE))
    tree_file = read_tree(file)
    assert tree_file.management is not None

    events = hr.EventStream()
    recorder = EventRecorder(events)
    tree = hr.Tree(tree_file.spec, events=events)
    service = ManagementService(
        tree_file.management.with_prefix(node_prefix("shop")),
        tree_procedures(tree),
        name="node shop",
    )
    service.start()
    app = join(url, "hedgerow", APP_SECRET)
    operator = join(url, "management", MANAGEMENT_SECRET)
    try:
        # A component's "started" comes after its registrations were acknowledged.
        recorder.wait_for("started", "shop/w1/adder", timeout=TIMEOUT)
        first = call(app, "com.example.worker.add", 2, 3)
        assert first["sum"] == 5
        assert first["pid"] != os.getpid()

        # The management API: refused by the router for the application's role.
        with pytest.raises(ApplicationError) as caught:
            call(app, "hedgerow.node.shop.get_tree")
        assert caught.value.error == "wamp.error.not_authorized"

        # ... and served to the management role, here and from another process.
        answer = call(operator, "hedgerow.node.shop.get_tree")
        [worker] = answer["children"]
        assert (worker["id"], worker["state"]) == ("w1", "running")
        assert worker["info"]["pid"] == first["pid"]
        env = {**os.environ, "HEDGEROW_MANAGEMENT_SECRET": MANAGEMENT_SECRET}
        status = subprocess.run(
            [sys.executable, "-m", "hedgerow", "status", "--router", url, "--node", "shop",
             "--json"],
            capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        [row] = shown["children"]
        assert row["info"]["pid"] == first["pid"]
        assert [c["id"] for c in row["components"]] == ["adder"]
        denied = subprocess.run(
            [sys.executable, "-m", "hedgerow", "status", "--router", url, "--node", "shop"],
            capture_output=True, text=True, timeout=TIMEOUT, check=False,
            env={**os.environ, "HEDGEROW_MANAGEMENT_SECRET": "wrong"},
        )  # fmt: skip
        assert denied.returncode == 1
        assert "error" in denied.stderr

        # The worker's container: start a component in it, over the wire.
        prefix = "hedgerow.node.shop.worker.w1"
        started = call(
            operator,
            f"{prefix}.start_component",
            "greeter",
            {
                "start": "worker_components:greeter",
                "transports": url,
                "authentication": {"ticket": {"authid": "hedgerow", "ticket": APP_SECRET}},
            },
        )
        assert started["id"] == "greeter"
        assert call(app, "com.example.worker.greet", "you") == "hello you"
        assert call(operator, f"{prefix}.get_components") == ["adder", "greeter"]
        with pytest.raises(ApplicationError):
            call(app, f"{prefix}.get_components")

        # SIGKILL the worker: the node restarts it and it serves again.
        killed_at = time.monotonic()
        os.kill(first["pid"], signal.SIGKILL)
        recorder.wait_for("restarted", "shop/w1", timeout=TIMEOUT)
        recorder.wait_for("started", "shop/w1/adder", count=2, timeout=TIMEOUT)
        again = call(app, "com.example.worker.add", 4, 5)
        recovery = time.monotonic() - killed_at
        print(f"worker serving again {recovery * 1000:.0f} ms after SIGKILL")  # noqa: T201
        assert again["sum"] == 9
        assert again["pid"] != first["pid"]
    finally:
        for link in (app, operator):
            if link.is_open:
                link.handle(Leave())
        service.stop()
        tree.stop(TIMEOUT)
    with pytest.raises(ProcessLookupError):
        os.kill(again["pid"], 0)


def test_hedgerow_run_serves_the_node_to_hedgerow_status(router, tmp_path):
    url = router.config.websocket_url
    file = tmp_path / "node.toml"
    file.write_text(textwrap.dedent(TREE))
    env = {
        **os.environ,
        "HR_TEST_ROUTER_URL": url,
        "HR_TEST_APP_SECRET": APP_SECRET,
        "HEDGEROW_MANAGEMENT_SECRET": MANAGEMENT_SECRET,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    node = subprocess.Popen(
        [sys.executable, "-m", "hedgerow", "run", str(file), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for line in node.stdout:  # blocking reads: the node's own events
            if '"path": "shop/w1/adder"' in line and '"started"' in line:
                break
        app = join(url, "hedgerow", APP_SECRET)
        try:
            served = call(app, "com.example.worker.add", 1, 1)
        finally:
            app.handle(Leave())
        command = [sys.executable, "-m", "hedgerow", "status", "--router", url, "--node", "shop"]
        shown = subprocess.run(
            [*command, "--json"], capture_output=True, text=True, env=env, timeout=TIMEOUT,
            check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        [row] = json.loads(shown.stdout)["children"]
        assert row["info"]["pid"] == served["pid"]
        assert [c["id"] for c in row["components"]] == ["adder"]
        pretty = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False
        )
        assert f"pid={served['pid']}" in pretty.stdout
        assert "adder running" in pretty.stdout

        node.send_signal(signal.SIGTERM)
        assert node.wait(TIMEOUT) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    with pytest.raises(ProcessLookupError):
        os.kill(served["pid"], 0)
