"""Through a real Crossbar.io router: components in two OS processes, a plain
autobahn client, credentials, and transport settings checked as autobahn does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import start
from transports.wamp_router import SECRET, authentication

import hedgerow as hr
from hedgerow.transports import (
    SERIALIZERS,
    ApplicationError,
    WampTransport,
    check_transport_settings,
    ensure_framework,
)

HERE = Path(__file__).parent
TIMEOUT = 20.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["HEDGEROW_ROUTER_SECRET"] = SECRET
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def node(crossbar_router):
    """A hedgerow node in another process: one component per serializer."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "wamp_node.py"),
            crossbar_router.config.websocket_url,
            *SERIALIZERS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(),
    )
    ready: dict[str, str] = {}
    output: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:
        output.append(line)
        if line.startswith("ready "):
            _, offered, negotiated = line.split()
            ready[offered] = negotiated
            if len(ready) == len(SERIALIZERS):
                break
    assert len(ready) == len(SERIALIZERS), "".join(output)
    # Drain what it prints later, so that it never blocks on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    yield ready
    process.send_signal(signal.SIGINT)
    assert process.wait(TIMEOUT) == 0


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_rpc_and_pubsub_between_components_in_two_processes(crossbar_router, node, serializer):
    assert node[serializer] == serializer  # the node negotiated what it offered
    prefix = f"com.example.{serializer}"
    seen: dict[str, Any] = {}
    comp = hr.Component(
        transports={"url": crossbar_router.config.websocket_url, "serializers": [serializer]},
        authentication=authentication("wampcra"),
        name=f"caller-{serializer}",
    )
    events: list[Any] = []
    comp.subscribe(f"{prefix}.tick")(lambda *args, **kwargs: events.append((args, kwargs)))

    def main(actor, session):
        seen["serializer"] = session.serializer
        seen["add"] = session.call(f"{prefix}.add", 2, 3).get(timeout=TIMEOUT)
        seen["remote serializer"] = session.call(f"{prefix}.emit", "tick", n=1).get(timeout=TIMEOUT)
        assert actor.serve_until(lambda: bool(events), TIMEOUT)
        with pytest.raises(ApplicationError) as info:
            session.call(f"{prefix}.nothing").get(timeout=TIMEOUT)
        seen["error"] = info.value.error

    comp.main = main
    reason = hr.run([comp], log_level=None)
    assert hr.is_normal(reason)
    assert seen == {
        "serializer": serializer,
        "add": 5,
        "remote serializer": serializer,
        "error": ApplicationError.NO_SUCH_PROCEDURE,
    }
    assert events == [(("tick",), {"n": 1})]


def test_a_plain_autobahn_client_calls_a_hedgerow_component_and_gets_its_events(
    crossbar_router,
):
    comp = hr.Component(
        transports=crossbar_router.config.rawsocket_url,
        authentication=authentication("ticket"),
        name="served",
    )
    comp.register("com.example.served.add")(lambda a, b: a + b)

    @comp.register("com.example.served.emit")
    def emit(*args, **kwargs):
        session = served_session[0]
        session.publish("com.example.served.tick", *args, **kwargs)

    served_session: list[Any] = []
    comp.on_join(lambda session, details: served_session.append(session))
    tree, _ = start(hr.SupervisorSpec([comp.child_spec()]))
    with tree:
        done = subprocess.run(
            [
                sys.executable,
                str(HERE / "autobahn_client.py"),
                crossbar_router.config.websocket_url,
                SECRET,
                "com.example.served",
            ],
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
            env=_env(),
            check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"add": 5, "event": [["hello"], {"n": 1}], "authid": "hedgerow"}


# -- credentials ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["ticket", "wampcra"])
def test_a_wrong_secret_is_refused(crossbar_router, method):
    transport = WampTransport(crossbar_router.config.websocket_url)
    with pytest.raises(ApplicationError) as info:
        transport.join("realm1", None, authentication=authentication(method, "wrong")).result(
            TIMEOUT
        )
    assert info.value.error in (
        ApplicationError.NOT_AUTHORIZED,
        ApplicationError.AUTHENTICATION_FAILED,
    )


def test_a_component_with_a_wrong_secret_fails_to_start_and_reports_it(crossbar_router):
    comp = hr.Component(
        transports=crossbar_router.config.rawsocket_url,
        authentication=authentication("ticket", "wrong"),
        name="intruder",
    )
    failures = []
    comp.on_connectfailure(lambda component, exc: failures.append(exc.error))
    with pytest.raises(hr.StartError) as info:
        start(hr.SupervisorSpec([comp.child_spec()]))
    assert "intruder" in str(info.value)
    assert len(failures) == 1
    assert failures[0] in (ApplicationError.NOT_AUTHORIZED, ApplicationError.AUTHENTICATION_FAILED)


def test_no_credentials_no_entry_unless_anonymous_is_allowed(crossbar_router):
    transport = WampTransport(crossbar_router.config.websocket_url)
    with pytest.raises(ApplicationError):
        transport.join("realm1", None).result(TIMEOUT)


# -- transport settings, as autobahn checks them -------------------------------------

BAD_SETTINGS = [
    ({"url": "ws://h:1/ws", "port": 1}, "'port' is not a valid configuration item"),
    ({"type": "websocket"}, "Transport requires 'url' key"),
    ({"url": "ws://h:1/ws", "serializer": "json"}, "'serializer' is only for rawsocket"),
    ({"url": "ws://h:1/ws", "serializers": "json"}, "'serializers' must be a list of strings"),
    ({"url": "ws://h:1/ws", "serializers": ["xml"]}, "Invalid serializer 'xml'"),
    ({"type": "rawsocket", "url": "rs://h:1", "serializers": ["json"]}, "only for websocket"),
    ({"type": "rawsocket", "url": "rs://h:1", "proxy": {}}, "proxy= only supported for"),
    ({"url": "ws://h:1/ws", "proxy": {"host": "p", "port": 1, "x": 1}}, "Unknown key 'x' in proxy"),
    ({"url": "ws://h:1/ws", "options": 3}, "options must be a dict"),
    ({"url": "ws://h:1/ws", "endpoint": {"type": "tcp"}}, "'host' required in 'tcp' endpoint"),
    ({"url": "ws://h:1/ws", "endpoint": {"host": "h"}}, "'type' required in endpoint"),
    ({"url": "ws://h:1/ws", "endpoint": {"type": "udp"}}, 'invalid type "udp" in endpoint'),
    (
        {"url": "ws://h:1/ws", "endpoint": {"type": "unix", "path": "/s", "port": 1}},
        "'port' not valid in 'unix' endpoint",
    ),
    (
        {"url": "ws://h:1/ws", "endpoint": {"type": "tcp", "host": "h", "port": 1, "x": 1}},
        "Invalid key 'x' in endpoint configuration",
    ),
]


@pytest.mark.parametrize(("settings", "message"), BAD_SETTINGS)
def test_transport_settings_errors_read_as_autobahns(settings, message):
    with pytest.raises(ValueError) as ours:
        check_transport_settings(settings)
    assert message in str(ours.value)
    # The same mistake, through hedgerow's Component: the entry is named first.
    with pytest.raises(ValueError, match=r"^transports\[0\]: ") as info:
        hr.Component(transports=[dict(settings)])
    assert message in str(info.value)
    # And autobahn reports it with the same words (its own check, where it has one).
    ensure_framework()
    from autobahn.wamp.component import _create_transport  # noqa: PLC0415 - after txaio

    with pytest.raises(ValueError) as theirs:
        _create_transport(0, dict(settings))
    assert message in str(theirs.value)


def test_settings_autobahn_lets_through_are_checked_here():
    with pytest.raises(ValueError, match="Invalid transport type carrier-pigeon"):
        check_transport_settings({"type": "carrier-pigeon", "url": "ws://h:1/ws"})
    with pytest.raises(ValueError, match="'max_retries' must be an integer >= -1"):
        check_transport_settings({"url": "ws://h:1/ws", "max_retries": "3"})
    with pytest.raises(ValueError, match="'retry_delay_growth' must be a number >= 1"):
        check_transport_settings({"url": "ws://h:1/ws", "retry_delay_growth": 0.5})
    with pytest.raises(ValueError, match="Invalid serializer 'xml'"):
        check_transport_settings({"type": "rawsocket", "url": "rs://h:1", "serializer": "xml"})
    # A float timeout is fine (autobahn's asyncio code wants an int).
    settings = {
        "url": "ws://h:1/ws",
        "endpoint": {"type": "tcp", "host": "h", "port": 1, "timeout": 2.5},
    }
    assert check_transport_settings(settings)["endpoint"]["timeout"] == 2.5


def test_urls_and_defaults(tmp_path):
    ws = WampTransport("wss://example.com:9000/ws")
    assert ws.endpoint == {"type": "tcp", "host": "example.com", "port": 9000, "tls": True}
    assert ws.offered_serializers == ("msgpack", "cbor", "json")
    rs = WampTransport(f"rs://unix:{tmp_path}/router.sock")
    assert rs.endpoint == {"type": "unix", "path": f"{tmp_path}/router.sock"}
    assert rs.offered_serializers == ("msgpack",)
    retry = WampTransport({"url": "ws://h:1/ws", "max_retries": 3}).retry
    assert (retry.max_retries, retry.initial_retry_delay, retry.retry_delay_growth) == (3, 1.5, 1.5)
