"""A worker process hosting plain actors stays light: it imports no WAMP, schema or
YAML library (each costs tens of milliseconds on every restart after a SIGKILL).

Checked by what the worker process has in ``sys.modules`` once its tree has
started (an actor it hosts reports it), not by a stopwatch
(``bench/bench_worker.py`` times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from node.worker_modules import MARKER, ReportsModules

import hedgerow as hr
from hedgerow.node import Worker, WorkerActor
from hedgerow.node._forkserver import ForkedProcess
from hedgerow.node._start_method import FORK_SERVER_AVAILABLE
from hedgerow.node._wire import EXIT_BAD_CONFIG, EXIT_OK
from hedgerow.node._worker_main import _argparse_args, _node_args
from hedgerow.supervision._treewrite import tree_to_data

HERE = Path(__file__).parent
TIMEOUT = 20.0

HEAVY = (
    "autobahn",
    "txaio",
    "asyncio",
    "pydantic",
    "yaml",
    "tomli_w",
    "cryptography",
    "OpenSSL",
    "click",
    "rich",
)
"""What a worker imports only when what it hosts needs it (components, management)."""

ZYGOTE_MODULES = frozenset({"hedgerow.worker", "socket", "_socket", "array", "selectors"})
"""What a forked worker has that a spawned one has not: its zygote's own modules (and
``hedgerow.worker``, a spawned worker's ``__main__``)."""


def run_worker(container: dict, *, ready: bool) -> tuple[int, list[dict], str]:
    """Run ``python -m hedgerow.worker`` on `container`; once it is
    ready (if `ready`), close its stdin (the node is gone) so that it stops."""
    config = {
        "guid": "g1",
        "port": 18999,
        "name": "w",
        "container": container,
        "pythonpath": [str(HERE.parent)],
        "orphan_timeout": 5.0,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hedgerow.worker", "--guid", "g1", "--port", "18999"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(json.dumps(config).encode() + b"\n")
        process.stdin.flush()
        lines = []
        if ready:
            for raw in process.stdout:
                lines.append(json.loads(raw))
                if lines[-1]["type"] in ("ready", "exit"):
                    break
            assert lines[-1]["type"] == "ready", lines
        out, err = process.communicate(timeout=TIMEOUT)  # closes stdin
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    lines += [json.loads(raw) for raw in out.splitlines()]
    return process.returncode, lines, err.decode()


def reported(stderr: str) -> list[str]:
    """The modules a `ReportsModules` actor found loaded."""
    for line in stderr.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])  # type: ignore[no-any-return]
    pytest.fail(f"no module report in the worker's stderr: {stderr}")


def test_a_worker_hosting_plain_actors_imports_no_wamp_schema_or_yaml_library():
    container = tree_to_data(hr.SupervisorSpec([hr.ChildSpec("a", ReportsModules)]))
    status, lines, err = run_worker(container, ready=True)
    assert status == EXIT_OK, err
    modules = reported(err)
    assert "hedgerow.components._container" in modules
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    assert lines[-1]["type"] == "exit"


@pytest.mark.parametrize(
    ("container", "message"),
    [
        (
            {"supervisor": {"children": [{"id": "a", "start": 5}]}},
            "supervisor.children[0].start = 5: expected a string",
        ),
        (
            {"supervisor": {"children": [{"id": "a", "strat": "node.worker_actors:Echo"}]}},
            (
                "supervisor.children[0].strat = 'node.worker_actors:Echo': unknown key "
                "(did you mean 'start'?)"
            ),
        ),
        (
            {"supervisor": {"max_restarts": True, "children": []}},
            "supervisor.max_restarts = True: expected an integer",
        ),
        ({"supervisor": {"children": {"a": 1}}}, "supervisor.children = {'a': 1}: expected a list"),
        ({"tree": {}}, "supervisor = missing: required key"),
    ],
    ids=["type", "unknown-key", "bool-for-int", "not-a-list", "missing"],
)
def test_a_container_that_does_not_check_exits_with_status_2_naming_the_key(container, message):
    """The worker checks the container it reads (the node's word is not taken for it),
    with the tree file's rules and words, and without the tree file's schema library."""
    status, lines, err = run_worker(container, ready=False)
    assert status == EXIT_BAD_CONFIG, err
    assert message in err
    assert "Traceback" not in err
    assert lines[-1]["status"] == EXIT_BAD_CONFIG
    assert message in lines[-1]["reason"]


def test_a_worker_reads_the_nodes_command_line_without_argparse():
    container = tree_to_data(hr.SupervisorSpec([hr.ChildSpec("a", ReportsModules)]))
    status, _lines, err = run_worker(container, ready=True)
    assert status == EXIT_OK, err
    assert "argparse" not in reported(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["--guid", "g1", "--port", "8100", "--config-timeout", "10"],
        ["--guid", "g1", "--port", "8100", "--config-timeout", "0.25", "--standby"],
        ["--standby", "--port", "+8100", "--guid", "g1"],
    ],
)
def test_the_nodes_command_line_is_read_as_argparse_reads_it(argv):
    fast = _node_args(argv)
    assert fast is not None
    slow = _argparse_args(argv)
    names = ("guid", "port", "config_timeout", "standby")
    assert [getattr(fast, n) for n in names] == [getattr(slow, n) for n in names]


@pytest.mark.parametrize(
    "argv",
    [
        ["--guid=g1", "--port", "8100"],
        ["--guid", "g1"],
        ["--guid", "g1", "--port", "x"],
        ["--guid", "g1", "--port", "8100", "--config-timeout", "-1"],
        ["--guid", "g1", "--port", "8100", "--config-timeout", "nan"],
        ["--guid", "g1", "--port", "8100", "--config-timeout", "0"],
        ["--guid", "g1", "--port", "8100", "--config-timeout", "inf"],
        ["--gu", "g1", "--port", "8100"],
        ["--help"],
    ],
)
def test_any_other_command_line_is_left_to_argparse(argv):
    assert _node_args(argv) is None


@pytest.mark.parametrize("seconds", ["nan", "0", "inf", "-1", "x"])
def test_a_bad_config_timeout_is_refused_by_argparse_naming_it(seconds, capsys):
    with pytest.raises(SystemExit) as exc:
        _argparse_args(["--guid", "g1", "--port", "8100", "--config-timeout", seconds])
    assert exc.value.code == 2
    assert "--config-timeout" in capsys.readouterr().err


@pytest.mark.skipif(not FORK_SERVER_AVAILABLE, reason="fork servers: Linux only")
def test_a_worker_forked_by_the_fork_server_imports_no_more_than_a_spawned_one(capfd):
    """The zygote imports what ``python -m hedgerow.worker`` does before its config."""
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("w1", Worker(hr.SupervisorSpec([hr.ChildSpec("a", ReportsModules)]))),
            hr.ChildSpec(
                "w2",
                Worker(
                    hr.SupervisorSpec([hr.ChildSpec("a", ReportsModules)]), start_method="spawn"
                ),
            ),
        ]
    )
    with hr.start_tree(spec) as tree:
        forked = tree.lookup("root/w1").incarnation
        assert isinstance(forked, WorkerActor)
        assert isinstance(forked.process, ForkedProcess)
        err = capfd.readouterr().err
    reports = [json.loads(line[len(MARKER) :]) for line in err.splitlines() if MARKER in line]
    assert len(reports) == 2, err
    for modules in reports:
        assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    forked_only = set(reports[0]) ^ set(reports[1])
    assert forked_only <= ZYGOTE_MODULES, forked_only
