"""The `hedgerow` command: through click's runner, and as a real process with signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import hedgerow as hr
from hedgerow.cli import cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXAMPLE_TREES = sorted(
    p
    for p in EXAMPLES.glob("*/*")
    if p.suffix in (".toml", ".yaml", ".yml", ".json") and p.stem != "principals"  # router's
)
EXPECTED_STATUS = {"gives_up.toml": 1}
PROCESS_TIMEOUT = 60

STEADY_ACTORS = '''\
import logging
import threading

import hedgerow as hr

logger = logging.getLogger("steady")


class Steady(hr.Actor):
    """Runs until stopped."""


class Stubborn(hr.Actor):
    """Says so on stderr, then ignores its stop for ever."""

    def on_stop(self):
        logger.warning("stubborn: ignoring my stop")
        threading.Event().wait()
'''

STEADY_TREE = """\
[supervisor]
name = "svc"
[[supervisor.children]]
id = "first"
start = "steady_actors:Steady"
[[supervisor.children]]
id = "second"
start = "steady_actors:Steady"
[[supervisor.children]]
id = "third"
start = "steady_actors:Steady"
"""

STUBBORN_TREE = """\
[[supervisor.children]]
id = "steady"
start = "steady_actors:Steady"
[[supervisor.children]]
id = "stubborn"
start = "steady_actors:Stubborn"
shutdown = "infinity"
"""


@pytest.fixture
def trees(tmp_path: Path) -> Path:
    (tmp_path / "steady_actors.py").write_text(STEADY_ACTORS)
    (tmp_path / "steady.toml").write_text(STEADY_TREE)
    (tmp_path / "stubborn.toml").write_text(STUBBORN_TREE)
    (tmp_path / "bad.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "steady_actors:Steady"\n'
        '[[supervisor.children]]\nid = "b"\nstart = "steady_actors:Steady"\n'
        '[[supervisor.children]]\nid = "c"\nstart = "steady_actors:Steady"\nrestart = "sometimes"\n'
    )
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- through click's runner --------------------------------------------------


def test_version():
    status, out, _ = invoke("--version")
    assert status == 0
    assert out.strip() == f"hedgerow, version {hr.__version__}"


@pytest.mark.parametrize("command", [[], ["check"], ["run"], ["chaos"], ["router"]])
def test_every_command_has_help_with_an_example(command):
    status, out, _ = invoke(*command, "--help")
    assert status == 0
    assert "Example: hedgerow" in out


def test_check_passes_on_every_example_and_prints_the_tree():
    status, out, err = invoke("check", *map(str, EXAMPLE_TREES))
    assert status == 0, err
    assert out.count("ok ") == len(EXAMPLE_TREES)
    assert "fetcher" in out  # nested children are printed
    assert "rest_for_one" in out


def test_check_reports_every_bad_file_and_exits_2(trees):
    status, out, err = invoke("check", str(trees / "steady.toml"), str(trees / "bad.toml"))
    assert status == 2
    assert "ok " in out
    assert "bad.toml: supervisor.children[2].restart = 'sometimes'" in err
    assert "expected one of always" in err


def test_check_validates_principals_files_as_the_router_reads_them(tmp_path):
    """CI runs `hedgerow check examples/*/*.toml`: the routers' principals files are in it."""
    principals = sorted(EXAMPLES.glob("*/principals.toml"))
    assert principals
    status, out, err = invoke("check", *map(str, principals))
    assert status == 0, err
    assert "(principals: workers)" in out
    bad = tmp_path / "principals.toml"
    bad.write_text('[principals.a]\nprefixes = ["hedgerow.x"]\nsecret_env = "A_SECRET"\n')
    status, _, err = invoke("check", str(bad))
    assert status == 2
    assert f"{bad}: principals.a:" in err
    assert "reserved" in err


def test_check_missing_file_exits_2(tmp_path):
    status, _, err = invoke("check", str(tmp_path / "missing.toml"))
    assert status == 2
    assert "missing.toml: no such file" in err


def test_run_bad_file_exits_2_and_starts_nothing(trees):
    status, out, err = invoke("run", str(trees / "bad.toml"), "--json")
    assert status == 2
    assert out == ""
    assert "supervisor.children[2].restart" in err


def test_run_for_seconds_stops_the_tree_gracefully(trees):
    status, out, _ = invoke("run", str(trees / "steady.toml"), "--for", "0.2", "--json")
    assert status == 0
    records = json_lines(out)
    assert records[-1] == {
        "kind": "exit",
        "status": 0,
        "message": "tree 'svc' ended: shutdown",
    }
    stopped = [r["path"] for r in records if r["kind"] == "stopped"]
    assert stopped == ["svc/third", "svc/second", "svc/first", "svc"]


def test_run_plain_lines_when_not_a_terminal(trees):
    status, out, _ = invoke("run", str(trees / "steady.toml"), "--for", "0.1")
    assert status == 0
    assert "started svc/first #1" in out
    assert "stopped svc/first #1 reason=shutdown" in out


def test_run_live_view_renders_the_tree(trees):
    status, out, _ = invoke("run", str(trees / "steady.toml"), "--for", "0.1", "--live")
    assert status == 0
    assert "svc" in out
    assert "third" in out
    assert "stopped" in out


def test_run_a_tree_whose_root_gives_up_exits_1():
    status, out, _ = invoke("run", str(EXAMPLES / "escalation" / "gives_up.toml"), "--json")
    assert status == 1
    records = json_lines(out)
    assert records[-1]["status"] == 1
    assert [r["path"] for r in records if r["kind"] == "intensity_exceeded"][-1] == "root"


def test_run_restores_logging(trees):
    import logging  # noqa: PLC0415

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    invoke("run", str(trees / "steady.toml"), "--for", "0.05", "--log-level", "debug")
    assert (list(root.handlers), root.level) == before
    assert not logging.getLogger("hedgerow").filters


def test_a_child_that_fails_to_start_exits_1(tmp_path):
    (tmp_path / "never_starts.py").write_text(
        "import hedgerow as hr\n"
        "class NeverStarts(hr.Actor):\n"
        "    def on_start(self):\n        raise OSError('port 80 is taken')\n"
    )
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "web"\nstart = "never_starts:NeverStarts"\n'
    )
    status, out, _ = invoke("run", str(tmp_path / "t.toml"), "--json")
    assert status == 1
    records = json_lines(out)
    assert records[-1]["status"] == 1
    assert "'web' failed to start: OSError: port 80 is taken" in str(records[-1]["message"])


# -- as real processes ---------------------------------------------------------


def hedgerow(*args: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hedgerow", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def read_until(stream: object, needle: str) -> list[str]:
    """Read lines until one contains `needle` (a blocking read, so no polling)."""
    lines: list[str] = []
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if needle in line:
            return lines
    pytest.fail(f"{needle!r} never came; got {''.join(lines)}")


@pytest.mark.parametrize("path", EXAMPLE_TREES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_runs_to_its_end(path):
    process = hedgerow("run", str(path), "--json")
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    expected = EXPECTED_STATUS.get(path.name, 0)
    assert process.returncode == expected, err
    records = json_lines(out)
    assert records[-1]["kind"] == "exit"
    assert records[-1]["status"] == expected
    kinds = {r["kind"] for r in records}
    assert "failed" in kinds  # every example shows a crash ...
    assert "restarted" in kinds  # ... and its recovery


def test_with_json_stdout_is_records_only_what_the_tree_prints_goes_to_stderr():
    """The async_components writer prints each write from its loop's thread while
    the main thread writes records: on one stdout a print could land inside a
    record's line (print writes its text, then the newline), and a record was lost."""
    path = EXAMPLES / "async_components" / "tree.toml"
    process = hedgerow("run", str(path), "--json")
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    assert all(line.startswith("{") for line in out.splitlines()), out
    assert "writer: k1 written" in err
    assert json_lines(out)[-1]["kind"] == "exit"


@pytest.mark.parametrize("path", EXAMPLE_TREES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_each_example_stops_gracefully_on_sigint(path):
    process = hedgerow("run", str(path), "--json")
    seen = read_until(process.stdout, '"path": "root", "incarnation": 0')
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    records = json_lines("".join(seen) + out)
    assert records[-1] == {"kind": "exit", "status": 0, "message": "tree 'root' ended: shutdown"}
    assert_reverse_order_shutdown(records)


def assert_reverse_order_shutdown(records: list[dict[str, object]]) -> None:
    """Under every supervisor, children stopped by the shutdown stop in reverse start order.

    Start order is the order of the spec, as in OTP: a child restarted before the
    stop (the batch example's `small` crashes early) keeps its place."""
    started: dict[str, int] = {}
    for record in records:
        if record["kind"] in ("started", "restarted"):
            started.setdefault(str(record["path"]), int(record["seq"]))  # type: ignore[call-overload]
    stopped = [
        str(r["path"])
        for r in records
        if r["kind"] == "stopped" and r.get("reason") == "shutdown" and r["path"] != "root"
    ]
    assert stopped
    parents = {path.rpartition("/")[0] for path in stopped}
    for parent in parents:
        siblings = [p for p in stopped if p.rpartition("/")[0] == parent]
        assert siblings == sorted(siblings, key=started.__getitem__, reverse=True)
        # A supervisor is reported stopped after all of its own children.
        if parent in stopped:
            assert stopped.index(parent) > max(stopped.index(p) for p in siblings)


def test_sigint_shuts_down_in_reverse_order_and_exits_0(trees):
    process = hedgerow("run", str(trees / "steady.toml"), "--json")
    seen = read_until(process.stdout, '"path": "svc", "incarnation": 0')
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    records = json_lines("".join(seen) + out)
    started = [r["path"] for r in records if r["kind"] == "started"]
    stopped = [r["path"] for r in records if r["kind"] == "stopped"]
    assert started == ["svc/first", "svc/second", "svc/third", "svc"]
    assert stopped == ["svc/third", "svc/second", "svc/first", "svc"]
    assert "stopping the tree (SIGINT)" in err


def test_sigterm_also_stops_gracefully(trees):
    process = hedgerow("run", str(trees / "steady.toml"), "--json")
    read_until(process.stdout, '"path": "svc", "incarnation": 0')
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0
    assert json_lines(out)[-1]["status"] == 0


def test_a_second_sigint_stops_at_once(trees):
    process = hedgerow("run", str(trees / "stubborn.toml"), "--json")
    read_until(process.stdout, '"path": "root", "incarnation": 0')
    process.send_signal(signal.SIGINT)
    read_until(process.stderr, "stubborn: ignoring my stop")  # the graceful stop is stuck
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 130
    assert json_lines(out)[-1]["status"] == 130


def test_python_dash_m_and_the_console_script_are_the_same_command():
    module = subprocess.run(
        [sys.executable, "-m", "hedgerow", "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=PROCESS_TIMEOUT,
    )
    script = Path(sys.executable).with_name("hedgerow")
    console = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=PROCESS_TIMEOUT,
    )
    assert module.stdout == console.stdout == f"hedgerow, version {hr.__version__}\n"


def test_check_script_exit_status_for_bad_input(trees):
    result = subprocess.run(
        [sys.executable, "-m", "hedgerow", "check", str(trees / "bad.toml")],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert textwrap.dedent("supervisor.children[2].restart = 'sometimes'") in result.stderr


@pytest.mark.parametrize("seconds", ["nan", "inf", "1e400"])
def test_run_for_a_number_that_is_not_a_finite_time_is_bad_input(trees, seconds):
    status, out, err = invoke("run", str(trees / "steady.toml"), "--for", seconds, "--json")
    assert status == 2  # before: nan ran the tree for ever, as did inf
    assert out == ""
    assert "--for" in err
    assert "finite" in err


def test_sigterm_while_a_child_is_still_starting_cancels_the_start(tmp_path):
    (tmp_path / "slow_actors.py").write_text(
        "import logging, threading\nimport hedgerow as hr\n"
        "class Never(hr.Actor):\n"
        "    def on_start(self):\n"
        "        logging.getLogger('slow').warning('never: waiting for a router')\n"
        "        threading.Event().wait()\n"
    )
    (tmp_path / "slow.toml").write_text(
        '[[supervisor.children]]\nid = "first"\nstart = "slow_actors:Never"\nshutdown = 0.1\n'
    )
    process = hedgerow("run", str(tmp_path / "slow.toml"), "--json", cwd=tmp_path)
    read_until(process.stderr, "never: waiting for a router")
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    record = json_lines(out)[-1]
    assert record["status"] == 0, record
    assert "cancelled" in str(record["message"]), record


def test_sigterm_while_a_worker_is_not_yet_ready_kills_it_and_exits_promptly(tmp_path):
    # The worker process never says ready (its child blocks in on_start) and its
    # ready_timeout is far away: the node kills it at once, and exits.
    (tmp_path / "slow_workers.py").write_text(
        "import threading\nimport hedgerow as hr\nfrom hedgerow.node import Worker\n"
        "class Never(hr.Actor):\n"
        "    def on_start(self):\n"
        "        import os, sys\n"
        "        pid = os.getpid()\n"
        "        print(f'never: waiting for a router in pid {pid}', file=sys.stderr, flush=True)\n"
        "        threading.Event().wait()\n"
        "never = Worker(hr.SupervisorSpec([hr.ChildSpec('n', Never)]), ready_timeout=600,\n"
        f"               pythonpath=[{str(tmp_path)!r}])\n"
    )
    (tmp_path / "slow.toml").write_text(
        '[[supervisor.children]]\nid = "w"\nstart = "slow_workers:never"\nshutdown = 0.2\n'
    )
    process = hedgerow("run", str(tmp_path / "slow.toml"), "--json", cwd=tmp_path)
    seen = read_until(process.stderr, "never: waiting for a router")
    worker_pid = int(seen[-1].rsplit(" ", 1)[-1])
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=PROCESS_TIMEOUT)
    assert process.returncode == 0, err
    assert "cancelled" in str(json_lines(out)[-1]["message"])
    # Killed and reaped by the node before it exited, not left to leave by itself.
    stat = Path(f"/proc/{worker_pid}/stat")
    assert not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] in "ZX", err
