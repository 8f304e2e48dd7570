"""``hedgerow router`` (the click command object): options to node config, and a real run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from click.testing import CliRunner
from transports.wamp_router import SECRET, authentication

from hedgerow.transports import WampTransport, _crossbar, free_port, router_command

TIMEOUT = 30.0


def invoke(*args, env=None):
    return CliRunner().invoke(router_command, list(args), env=env or {}, catch_exceptions=False)


def test_print_config_writes_realms_transports_and_auth_without_the_secret():
    result = invoke(
        "--print-config",
        "--realm",
        "a",
        "--realm",
        "b",
        "--ws-port",
        "9000",
        "--rs-port",
        "9001",
        env={"HEDGEROW_ROUTER_SECRET": "not-in-the-file"},
    )
    assert result.exit_code == 0, result.output
    config = json.loads(result.output)
    (worker,) = config["workers"]
    assert [realm["name"] for realm in worker["realms"]] == ["a", "b"]
    assert [role["name"] for role in worker["realms"][0]["roles"]] == ["hedgerow"]
    websocket, rawsocket = worker["transports"]
    assert websocket["type"] == "websocket"
    assert websocket["endpoint"] == {"type": "tcp", "interface": "127.0.0.1", "port": 9000}
    assert rawsocket["type"] == "rawsocket"
    assert rawsocket["endpoint"]["port"] == 9001
    assert set(websocket["auth"]) == {"ticket", "wampcra"}  # no anonymous unless asked
    ticket = websocket["auth"]["ticket"]["principals"]["hedgerow"]
    assert ticket == {"ticket": "${HEDGEROW_ROUTER_SECRET}", "role": "hedgerow"}
    assert "not-in-the-file" not in result.output


def test_anonymous_only_when_asked_and_the_secret_is_required_otherwise(tmp_path):
    result = invoke("--print-config", "--anonymous", "--auth", "wampcra", "--no-rawsocket")
    config = json.loads(result.output)
    (websocket,) = config["workers"][0]["transports"]
    assert set(websocket["auth"]) == {"wampcra", "anonymous"}
    result = CliRunner().invoke(router_command, ["--crossbar", sys.executable], env={})
    assert result.exit_code == 2
    assert "HEDGEROW_ROUTER_SECRET" in result.output
    assert "anonymous" in result.output


def test_a_missing_crossbar_gives_an_install_hint(tmp_path):
    result = CliRunner().invoke(
        router_command,
        ["--crossbar", str(tmp_path / "no-crossbar-here")],
        env={"HEDGEROW_ROUTER_SECRET": SECRET},
    )
    assert result.exit_code == 1
    assert "cannot run" in result.output


def test_no_crossbar_anywhere_names_the_router_extra(monkeypatch):
    monkeypatch.setattr(_crossbar.sys, "executable", "/nonexistent/python")
    monkeypatch.setenv("PATH", "/nonexistent")
    result = CliRunner().invoke(router_command, [], env={"HEDGEROW_ROUTER_SECRET": SECRET})
    assert result.exit_code == 2
    assert "pip install 'hedgerow[router]'" in result.output


def test_the_router_runs_in_the_foreground_serves_and_stops_on_sigint(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from hedgerow.transports import router_command; router_command()",
            "--ws-port",
            str(port),
            "--no-rawsocket",
            "--secret-env",
            "HEDGEROW_TEST_UNSET",
            "--secret-file",
            str(secret),
            "--cbdir",
            str(tmp_path / "node"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines = []
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "local node configuration ran successfully" in line:
                break
        assert any(f"ws://127.0.0.1:{port}/ws" in line for line in lines), "".join(lines)
        link = (
            WampTransport(f"ws://127.0.0.1:{port}/ws")
            .join("realm1", None, authentication=authentication("wampcra"))
            .result(TIMEOUT)
        )
        assert link.is_open
        process.send_signal(signal.SIGINT)
        process.stdout.read()
        assert process.wait(TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert json.loads((tmp_path / "node" / "config.json").read_text())["version"] == 2
