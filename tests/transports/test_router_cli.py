"""``hedgerow router`` (the click command object): options to node config, and a real run."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from transports.wamp_router import SECRET, authentication

from hedgerow.cli import router as router_command
from hedgerow.transports import WampTransport, _crossbar, free_port

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
    # No web page in a browser may open it, but from origins given with --allow-origin.
    assert websocket["options"] == {"allowed_origins": [], "allow_null_origin": False}
    result = invoke("--print-config", "--allow-origin", "https://*.example.com", env={"A": "1"})
    (websocket, _) = json.loads(result.output)["workers"][0]["transports"]
    assert websocket["options"]["allowed_origins"] == ["https://*.example.com"]


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
            "from hedgerow.cli import router; router()",
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


# -- a killed router takes crossbar with it ----------------------------------------


def _descendants(pid):
    """The pids of `pid`'s descendants now (from /proc), found by parentage, never by name."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _wait_gone(pids, timeout):
    """The pids still alive after `timeout` s (waiting on pidfds, not sleeping)."""
    deadline = time.monotonic() + timeout
    alive = []
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                alive.append(pid)
        finally:
            os.close(fd)
    return alive


def _start_router(tmp_path, ws_port, rs_port, secret):
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from hedgerow.cli import router; router()",
            "--ws-port",
            str(ws_port),
            "--rs-port",
            str(rs_port),
            "--secret-env",
            "HEDGEROW_TEST_UNSET",
            "--secret-file",
            str(secret),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if "local node configuration ran successfully" in line:
            break
    assert process.poll() is None, "".join(lines)
    drain = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    drain.start()
    return process, lines


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("killed", ["router", "guard", "router, its guard stopped"])
def test_a_sigkilled_router_leaves_no_crossbar_and_a_new_one_takes_its_ports(tmp_path, killed):
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    (tmp_path / "tmp").mkdir()
    ws_port, rs_port = free_port(), free_port()
    first, output = _start_router(tmp_path, ws_port, rs_port, secret)
    crossbar = _descendants(first.pid)
    second = None
    try:
        assert crossbar, "hedgerow router started no process"
        assert list((tmp_path / "tmp").iterdir()), "the router made no node directory"
        guard = crossbar[0]  # the router's only child
        if killed == "guard":
            os.kill(guard, signal.SIGKILL)
            assert first.wait(TIMEOUT) == 1  # and says so
        else:
            if killed != "router":
                os.kill(guard, signal.SIGSTOP)
            first.kill()
            assert first.wait(TIMEOUT) == -signal.SIGKILL
        left = _wait_gone(crossbar, TIMEOUT)
        assert left == [], f"still running after the {killed} was killed: {left}\n{''.join(output)}"
        assert list((tmp_path / "tmp").iterdir()) == []  # the node's key went with it

        second, output = _start_router(tmp_path, ws_port, rs_port, secret)
        link = (
            WampTransport(f"ws://127.0.0.1:{ws_port}/ws")
            .join("realm1", None, authentication=authentication("ticket"))
            .result(TIMEOUT)
        )
        assert link.is_open
        second.send_signal(signal.SIGINT)
        assert second.wait(TIMEOUT) == 0
    finally:
        for pid in crossbar + (_descendants(second.pid) if second else []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


# -- when crossbar or its guard dies or stops (a stand-in for crossbar: fast and exact) --

FAKE_CROSSBAR = """#!{python}
import os, signal, sys, time
mode = os.environ["HR_TEST_FAKE_MODE"]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("ready", os.getpid(), flush=True)
if mode == "tells":  # as crossbar does at --loglevel debug
    secret = os.environ["HEDGEROW_TEST_SECRET_VAR"]
    print(f'checkconfig.maybe_from_env(value="{{secret}}")', flush=True)
    print(f'WAMP-Ticket (static): expected ticket "{{secret}}"" but got "wrong"', flush=True)
    print(f"partial {{secret}}", end="", flush=True)
    sys.exit(0)
if mode == "fails":
    sys.exit(3)
if mode == "crashes":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(600)
"""


def _fake_router(tmp_path, mode, tmpdir=None, *options):
    """`hedgerow router` running a stand-in for crossbar; (process, the stand-in's pid)."""
    fake = tmp_path / "crossbar"
    fake.write_text(FAKE_CROSSBAR.format(python=sys.executable))
    fake.chmod(0o755)
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from hedgerow.cli import router; router()",
            *("--crossbar", str(fake), "--secret-env", "HEDGEROW_TEST_SECRET_VAR"),
            *("--secret-file", str(secret), "--ws-port", "0", "--rs-port", "0"),
            *options,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **{k: v for k, v in os.environ.items() if k != "HEDGEROW_TEST_SECRET_VAR"},
            "HR_TEST_FAKE_MODE": mode,
            **({"TMPDIR": str(tmpdir)} if tmpdir else {}),
        },
        start_new_session=True,
    )
    line = process.stdout.readline()
    assert line.startswith("ready"), line + process.stderr.read()
    return process, int(line.split()[1])


def _guard_of(crossbar):
    stat = Path(f"/proc/{crossbar}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("fails", "Error: crossbar exited with status 3"),
        ("crashes", "was killed by SIGKILL"),
    ],
)
def test_when_crossbar_ends_by_itself_the_router_says_how_and_exits_1(tmp_path, mode, words):
    process, _crossbar_pid = _fake_router(tmp_path, mode)
    try:
        assert process.wait(TIMEOUT) == 1
        errors = process.stderr.read()
        assert words in errors
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
def test_a_killed_guard_takes_crossbar_with_it_and_the_router_says_so(tmp_path):
    process, crossbar = _fake_router(tmp_path, "waits")
    try:
        guard = _guard_of(crossbar)
        os.kill(guard, signal.SIGKILL)
        assert process.wait(TIMEOUT) == 1
        errors = process.stderr.read()
        assert f"crossbar's guard (pid {guard}) was killed by SIGKILL" in errors
        assert _wait_gone([crossbar], TIMEOUT) == []
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(crossbar, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
def test_sigterm_stops_the_router_even_when_its_guard_was_stopped(tmp_path):
    process, crossbar = _fake_router(tmp_path, "waits")
    guard = _guard_of(crossbar)
    try:
        os.kill(guard, signal.SIGSTOP)
        process.send_signal(signal.SIGTERM)
        assert process.wait(TIMEOUT) == 0
        assert _wait_gone([crossbar, guard], TIMEOUT) == []
    finally:
        for pid in (guard, crossbar):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs Linux pidfds")
def test_a_node_directory_left_by_a_router_killed_with_its_guard_goes_with_the_next(tmp_path):
    """SIGKILL to the router and its guard at once leaves nobody to remove the node
    directory (and its key); the next router removes it, and leaves a live one's alone."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    first, crossbar = _fake_router(tmp_path, "waits", tmpdir)
    guard = _guard_of(crossbar)
    live = second = None
    try:
        (left,) = tmpdir.iterdir()
        # Both stopped first, so that neither sees the other die and tidies up
        # (the router removed the directory between the two kills, under load).
        os.kill(first.pid, signal.SIGSTOP)
        os.kill(guard, signal.SIGSTOP)
        os.kill(guard, signal.SIGKILL)
        first.kill()
        first.wait()
        assert _wait_gone([crossbar, guard], TIMEOUT) == []
        assert left.exists()  # nobody left to remove it
        live, _ = _fake_router(tmp_path, "waits", tmpdir)
        assert not left.exists()
        (kept,) = tmpdir.iterdir()  # the live router's own
        second, _ = _fake_router(tmp_path, "waits", tmpdir)
        assert kept.exists()
        assert len(list(tmpdir.iterdir())) == 2
    finally:
        for process in (first, live, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(TIMEOUT)


def test_no_secret_crosses_crossbars_output(tmp_path):
    """At --loglevel debug crossbar logs every secret it reads, and the ticket it expected
    from a client that gave a wrong one: the router's output shows none of them."""
    process, _ = _fake_router(tmp_path, "tells")
    output = process.stdout.read()
    assert process.wait(TIMEOUT) == 0
    assert SECRET not in output + process.stderr.read()
    assert 'expected ticket "<redacted>""' in output
    assert output.endswith("partial <redacted>")


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])  # noqa: S104
def test_listening_beyond_this_host_without_tls_is_warned_of(tmp_path, host, warned):
    process, _ = _fake_router(tmp_path, "fails", None, "--host", host)
    assert process.wait(TIMEOUT) == 1
    errors = process.stderr.read()
    assert ("without TLS" in errors) is warned, errors
