"""How `hedgerow check` and `hedgerow run` show worker processes and `Event.info`.

A worker process is a child whose ``start`` has a ``container`` (the spec it
hosts); a fake one is enough here: the view reads the attribute, and the
hosted children's events are made up.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

import hedgerow as hr
from hedgerow._events import EVENT_ATTRIBUTE, Event, EventKind
from hedgerow.cli import cli
from hedgerow.cli._live_log import FoldedFormatter
from hedgerow.cli._view import (
    STATES,
    JsonView,
    LineView,
    TreeState,
    describe_info,
    spec_tree,
)

HOSTED = hr.SupervisorSpec(
    [hr.ChildSpec("adder", hr.Actor), hr.ChildSpec("echo", hr.Actor)],
    strategy="rest_for_one",
)


class FakeWorker:
    """Looks like `hedgerow.node.Worker` to the view: a factory with a `container`."""

    def __init__(self, container: hr.SupervisorSpec | None) -> None:
        self.container = container

    def __call__(self) -> hr.Actor:
        return InfoActor()

    def __repr__(self) -> str:
        return "FakeWorker()"


class InfoActor(hr.Actor):
    """Reports a pid, a port and a guid in its started event, as a worker does."""

    def actor_info(self) -> dict[str, object]:
        return {"pid": os.getpid(), "port": 18080, "guid": "g-1"}


WORKER = FakeWorker(HOSTED)
"""Named by the tree file below (``test_cli_view:WORKER``)."""

SPEC = hr.SupervisorSpec(
    [hr.ChildSpec("db", hr.Actor), hr.ChildSpec("w1", WORKER, shutdown=5)],
    name="node",
)
INFO = {"pid": 4242, "port": 18080, "guid": "g-1"}


def text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def event(kind: EventKind, path: str, incarnation: int = 1, **details: object) -> Event:
    return Event(kind, path, 0.0, incarnation, **details)  # type: ignore[arg-type]


# -- the spec --------------------------------------------------------------------


def test_spec_tree_shows_a_worker_and_the_children_it_hosts():
    lines = text(spec_tree(SPEC)).splitlines()
    assert lines[0].startswith("node  supervisor one_for_one")
    worker = next(line for line in lines if "w1" in line)
    assert "worker process  hosts supervisor rest_for_one" in worker
    assert "shutdown=5.0" in worker
    # The hosted children come right after the worker, one level deeper.
    at = lines.index(worker)
    indent = worker.index("w1")
    assert [line[indent + 4 :].split()[0] for line in lines[at + 1 : at + 3]] == ["adder", "echo"]


def test_a_child_without_a_container_is_an_ordinary_child():
    spec = hr.SupervisorSpec([hr.ChildSpec("w", FakeWorker(None))])
    lines = text(spec_tree(spec)).splitlines()
    assert "FakeWorker()" in lines[1]
    assert "worker process" not in lines[1]
    assert len(lines) == 2


def test_check_prints_the_hosted_children(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "w1"\nstart = "test_cli_view:WORKER"\n'
    )
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "t.toml")])
    assert result.exit_code == 0, result.stderr
    assert "w1  worker process" in result.stdout
    assert "adder" in result.stdout
    assert "echo" in result.stdout


LOOP_TREE = """\
[supervisor]
name = "svc"
runtime = "loop"
[[supervisor.children]]
id = "a"
start = "hedgerow:AsyncioActor"
[[supervisor.children]]
id = "threaded"
[supervisor.children.supervisor]
runtime = "thread"
[[supervisor.children.supervisor.children]]
id = "b"
start = "hedgerow:Actor"
[[supervisor.children]]
id = "looped"
[supervisor.children.supervisor]
strategy = "one_for_all"
runtime = "loop"
[[supervisor.children.supervisor.children]]
id = "c"
start = "hedgerow:AsyncioActor"
"""


def test_check_shows_a_supervisor_on_the_loop_and_no_runtime_for_the_default(tmp_path):
    (tmp_path / "t.toml").write_text(LOOP_TREE)
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "t.toml")], terminal_width=200)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    [root] = [line for line in lines if line.startswith("svc")]
    [threaded] = [line for line in lines if "threaded" in line]
    [looped] = [line for line in lines if "looped" in line]
    assert "svc  supervisor one_for_one  runtime=loop  intensity 3 in 5 s" in root
    assert "looped  supervisor one_for_all  runtime=loop  intensity" in looped
    assert "runtime" not in threaded  # the default (a thread) is not shown
    assert "runtime" not in "".join(line for line in lines if line not in (root, looped))


def test_spec_tree_shows_a_supervisors_runtime_given_in_code():
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("sub", hr.SupervisorSpec([], runtime="loop")), hr.ChildSpec("x", hr.Actor)]
    )
    lines = text(spec_tree(spec)).splitlines()
    assert "runtime" not in lines[0]
    assert "sub  supervisor one_for_one  runtime=loop" in lines[1]
    assert "runtime" not in lines[-1]


# -- the live state ----------------------------------------------------------------


def test_tree_state_shows_a_workers_pid_and_its_hosted_children():
    state = TreeState(SPEC, "node")
    assert state.nodes["node/w1"].children == ["node/w1/adder", "node/w1/echo"]
    state.apply(event(EventKind.STARTED, "node/w1/adder"), 1.0)
    state.apply(event(EventKind.STARTED, "node/w1/echo"), 1.0)
    state.apply(event(EventKind.STARTED, "node/w1", info=INFO), 1.0)
    shown = text(state.render(3.0)).splitlines()
    worker = next(line for line in shown if "w1" in line)
    assert "running  pid=4242 port=18080 guid=g-1  up 2.0 s" in worker
    state.apply(
        event(EventKind.RESTARTED, "node/w1", 2, info={**INFO, "guid": "0123456789abcdef"}), 3
    )
    assert "guid=0123456789a…  up 0.0 s" in text(state.render(3.0))  # cut in the live view
    at = shown.index(worker)
    assert "adder  running" in shown[at + 1]
    assert "echo  running" in shown[at + 2]


def test_a_worker_that_dies_loses_its_hosted_children_until_it_restarts():
    state = TreeState(SPEC, "node")
    for path in ("node/w1/adder", "node/w1/echo", "node/w1"):
        state.apply(event(EventKind.STARTED, path, info=INFO if path == "node/w1" else None), 1.0)
    state.apply(event(EventKind.FAILED, "node/w1", reason="killed by SIGKILL"), 2.0)
    assert [state.nodes[p].state for p in ("node/w1", "node/w1/adder", "node/w1/echo")] == [
        "failed",
        "lost",
        "lost",
    ]
    shown = text(state.render(2.5))
    assert "pid=" not in shown  # the dead process's pid is not shown as if it ran
    state.apply(event(EventKind.RESTART_SCHEDULED, "node/w1", delay=0.5), 2.0)
    restarted = {**INFO, "pid": 4343}
    state.apply(event(EventKind.STARTED, "node/w1/adder", incarnation=1), 2.6)
    state.apply(event(EventKind.RESTARTED, "node/w1", incarnation=2, info=restarted), 2.6)
    worker = state.nodes["node/w1"]
    assert (worker.state, worker.restarts, worker.info) == ("running", 1, restarted)
    assert state.nodes["node/w1/adder"].state == "running"
    assert state.nodes["node/w1/echo"].state == "lost"  # no news of it yet
    assert "pid=4343" in text(state.render(3.0))


def test_children_of_an_unknown_hosted_tree_appear_with_their_events():
    spec = hr.SupervisorSpec([hr.ChildSpec("w1", FakeWorker(None))])
    state = TreeState(spec, "root")
    state.apply(event(EventKind.STARTED, "root/w1/pipeline/parser"), 1.0)
    state.apply(event(EventKind.STARTED, "root/w1/pipeline", incarnation=1), 1.0)
    state.apply(event(EventKind.STARTED, "elsewhere/x"), 1.0)  # not this tree: ignored
    assert state.nodes["root/w1"].children == ["root/w1/pipeline"]
    assert state.nodes["root/w1/pipeline"].children == ["root/w1/pipeline/parser"]
    assert state.nodes["root/w1/pipeline"].state == "running"
    assert "elsewhere/x" not in state.nodes


def test_a_reloaded_tree_keeps_the_state_of_what_it_kept():
    pool = hr.ChildSpec(
        "pool", hr.SupervisorSpec([hr.ChildSpec("t", hr.Actor)], strategy="simple_one_for_one")
    )
    old = hr.SupervisorSpec([hr.ChildSpec("a", hr.Actor), hr.ChildSpec("b", hr.Actor), pool])
    state = TreeState(old, "root")
    for path in ("root/a", "root/b", "root/pool", "root/pool/t-1"):
        state.apply(event(EventKind.STARTED, path), 1.0)
    state.apply(event(EventKind.RESTARTED, "root/a", 2), 2.0)
    state.apply(event(EventKind.STARTED, "root/c"), 3.0)  # added by the reload: seen first
    new = hr.SupervisorSpec([pool, hr.ChildSpec("a", hr.Actor), hr.ChildSpec("c", hr.Actor)])
    reshaped = state.reshaped(new)
    assert reshaped.nodes["root"].children == ["root/pool", "root/a", "root/c"]
    assert reshaped.nodes["root/a"].restarts == state.nodes["root/a"].restarts == 1
    assert reshaped.nodes["root/a"].state == "running"
    assert reshaped.nodes["root/c"].state == "running"
    assert "root/b" not in reshaped.nodes
    assert reshaped.nodes["root/pool"].children == ["root/pool/t-1"]  # started at run time
    assert reshaped.nodes["root/pool/t-1"].state == "running"


def test_info_of_any_child_is_shown():
    state = TreeState(hr.SupervisorSpec([hr.ChildSpec("a", hr.Actor)]), "root")
    state.apply(event(EventKind.STARTED, "root/a", info={"listening": "tcp:8080"}), 1.0)
    assert "a  running  listening=tcp:8080" in text(state.render(1.0))
    assert describe_info({"pid": 1, "port": 2}) == "pid=1 port=2"
    assert describe_info({"guid": "abcdef"}, width=4) == "guid=abc…"


# -- lines and JSON ---------------------------------------------------------------


def test_line_and_json_views_carry_the_info():
    started = event(EventKind.STARTED, "node/w1", info=INFO)
    assert LineView(io.StringIO(), 0.0).line(started, 1.5) == (
        "   1.500s  started node/w1 #1 pid=4242 port=18080 guid=g-1"
    )
    record = JsonView.record(started, 1.5)
    assert record["info"] == INFO
    odd = event(EventKind.STARTED, "node/w1", info={"address": ("127.0.0.1", 80), "obj": object})
    assert json.loads(json.dumps(JsonView.record(odd, 0.0)))["info"]["obj"] == repr(object)
    assert "info" not in JsonView.record(event(EventKind.STARTED, "node/db"), 0.0)


def test_line_view_note():
    out = io.StringIO()
    LineView(out, 10.0).note("reloaded t.toml", 12.5)
    assert out.getvalue() == "   2.500s  reloaded t.toml\n"


def test_json_view_note():
    out = io.StringIO()
    JsonView(out, 10.0).note("reload", 12.5, file="t.toml", tree="root")
    assert json.loads(out.getvalue()) == {
        "kind": "reload",
        "elapsed": 2.5,
        "file": "t.toml",
        "tree": "root",
    }


@pytest.mark.parametrize("as_json", [True, False])
def test_run_reports_what_a_child_says_about_itself(tmp_path, monkeypatch, as_json):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "w1"\nstart = "test_cli_view:WORKER"\n'
    )
    args = ["run", str(tmp_path / "t.toml"), "--for", "0.05", *(["--json"] if as_json else [])]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    if as_json:
        records = [json.loads(line) for line in result.stdout.splitlines()]
        started = next(r for r in records if r["path"] == "root/w1")
        assert started["info"] == {"pid": os.getpid(), "port": 18080, "guid": "g-1"}
    else:
        assert f"started root/w1 #1 pid={os.getpid()} port=18080 guid=g-1" in result.stdout


# -- the live view's legend and log lines -------------------------------------------


def test_the_legend_explains_the_states_on_screen():
    state = TreeState(SPEC, "node")
    for path in ("node/w1/adder", "node/w1/echo", "node/w1", "node/db"):
        state.apply(event(EventKind.STARTED, path), 1.0)
    assert STATES["running"] not in text(state.render(1.0))
    state.apply(event(EventKind.FAILED, "node/w1", reason="killed by SIGKILL"), 2.0)
    state.apply(event(EventKind.RESTART_SCHEDULED, "node/w1", delay=0.5), 2.0)
    shown = text(state.render(2.1, "the footer")).splitlines()
    assert f"  lost: {STATES['lost']}" in shown
    assert f"  restarting: {STATES['restarting']}" in shown
    assert not any(line.startswith("  running:") for line in shown)
    assert shown[-1] == "the footer"


def test_the_live_view_folds_a_traceback_to_one_line():
    logger = logging.getLogger("hedgerow.node")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing = logger.makeRecord(
            "hedgerow.node", logging.ERROR, __file__, 1, "it broke", (), sys.exc_info()
        )
    assert FoldedFormatter().format(failing) == (
        "hedgerow.node: it broke (RuntimeError: boom; traceback folded)"
    )
    failed = event(
        EventKind.FAILED, "node/w1", reason=RuntimeError("boom"), traceback="Traceback...\n"
    )
    record = logger.makeRecord(
        "hedgerow",
        logging.ERROR,
        __file__,
        1,
        "%s\n%s",
        (failed.describe(), "Traceback..."),
        None,
        extra={EVENT_ATTRIBUTE: failed},
    )
    assert FoldedFormatter().format(record) == (
        "hedgerow: failed node/w1 #1 reason=RuntimeError: boom"
    )


CRASHES_ONCE = """\
import hedgerow as hr

class CrashesOnce(hr.Actor):
    def on_start(self):
        self.actor_ref.tell("crash")

    def on_receive(self, message):
        if self.actor_incarnation == 1:
            raise RuntimeError("the first one crashes")
"""


def test_the_log_file_has_the_events_and_their_tracebacks(tmp_path):
    (tmp_path / "crashes.py").write_text(CRASHES_ONCE)
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "crashes:CrashesOnce"\n'
    )
    log = tmp_path / "run.log"
    args = ["run", str(tmp_path / "t.toml"), "--for", "0.3", "--log-file", str(log)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = log.read_text().splitlines()
    failed = next(at for at, line in enumerate(lines) if "failed root/a #1" in line)
    assert lines[failed].endswith(
        "ERROR    hedgerow: failed root/a #1 reason=RuntimeError: the first one crashes"
    )
    assert lines[failed + 1] == "Traceback (most recent call last):"
    assert any("restarted root/a #2" in line for line in lines)
    assert not any("started root/a #1" in line for line in lines)  # DEBUG: below --log-level
    assert "tree 'root' ended" in lines[-1]
    # stderr has the log lines but not the events: stdout has those.
    assert "tree 'root' ended" in result.stderr
    assert "failed root/a" not in result.stderr
    assert "failed root/a #1" in result.stdout


def test_a_log_file_that_cannot_be_opened_is_bad_input(tmp_path):
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hedgerow:Actor"\n'
    )
    bad = tmp_path / "no" / "such" / "dir" / "run.log"
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "t.toml"), "--log-file", str(bad)])
    assert result.exit_code == 2
    assert f"--log-file {bad}: No such file or directory" in result.stderr


def test_a_run_for_a_while_says_its_time_is_up(tmp_path):
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hedgerow:Actor"\n'
    )
    args = ["run", str(tmp_path / "t.toml"), "--for", "0.05"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "stopping the tree (time is up: --for 0.05 s)" in result.stderr
    assert "Ctrl-C again" not in result.stderr


def test_the_cli_reference_has_the_legend():
    readme = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md").read_text()
    for state, meaning in STATES.items():
        if state != "starting":
            assert f"| {state} | {meaning} |" in readme
