"""hedgerow's log: public logger names, quiet bus transitions, and the log formats
of `hedgerow run` and its worker processes."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import hedgerow as hr
from hedgerow._events import EVENT_ATTRIBUTE, Event, EventKind
from hedgerow._logs import LOG_FORMAT_ENV, JsonFormatter, formatter, origin_of, parse_line
from hedgerow.cli import cli
from hedgerow.node import Bus

PUBLIC_LOGGERS = {
    "hedgerow",
    "hedgerow.actors",
    "hedgerow.cli",
    "hedgerow.components",
    "hedgerow.node",
    "hedgerow.supervision",
    "hedgerow.testing",
    "hedgerow.transports",
}

LIST_LOGGERS = textwrap.dedent(
    """
    import importlib, logging, pkgutil, hedgerow
    for module in pkgutil.walk_packages(hedgerow.__path__, "hedgerow."):
        if not module.name.endswith("__main__"):  # that one runs the command
            importlib.import_module(module.name)
    names = [
        name for name, item in logging.Logger.manager.loggerDict.items()
        if isinstance(item, logging.Logger) and name.split(".")[0] == "hedgerow"
    ]
    print("\\n".join(sorted(names)))
    """
)


def test_every_logger_hedgerow_creates_has_a_public_name():
    # A fresh interpreter: loggers that other tests create do not count.
    out = subprocess.run(
        [sys.executable, "-c", LIST_LOGGERS], capture_output=True, text=True, check=True
    ).stdout
    names = set(out.split())
    assert "hedgerow.supervision" in names  # the modules were imported
    assert names <= PUBLIC_LOGGERS, sorted(names - PUBLIC_LOGGERS)


MODULE_LOGGERS = textwrap.dedent(
    """
    import importlib, json, logging, pkgutil, hedgerow
    found = {}
    for module in pkgutil.walk_packages(hedgerow.__path__, "hedgerow."):
        if module.name.endswith("__main__"):  # that one runs the command
            continue
        loaded = importlib.import_module(module.name)
        package = module.name if module.ispkg else module.name.rpartition(".")[0]
        found[module.name] = [package, sorted(
            value.name for value in vars(loaded).values()
            if isinstance(value, logging.Logger) and value.name.split(".")[0] == "hedgerow"
        )]
    print(json.dumps(found))
    """
)
HEDGEROW = Path(hr.__file__).parent


def subpackage_logger(package: str) -> str:
    """The one logger the modules of `package` log through: their subpackage's
    (`hedgerow.node` for `hedgerow.node._bus`), `hedgerow` for a top-level module."""
    return ".".join(package.split(".")[:2])


def test_each_module_logs_through_its_own_subpackages_logger():
    # A module moved to another subpackage takes that subpackage's logger: a
    # user filtering on `hedgerow.components` gets every component's lines.
    out = subprocess.run(
        [sys.executable, "-c", MODULE_LOGGERS], capture_output=True, text=True, check=True
    ).stdout
    found: dict[str, tuple[str, list[str]]] = json.loads(out)
    assert "hedgerow.components._container" in found  # the modules were walked
    wrong = {
        module: names
        for module, (package, names) in found.items()
        if set(names) - {subpackage_logger(package)}
    }
    assert not wrong, f"modules not on their subpackage's logger: {wrong}"


READING = frozenset({"getEffectiveLevel", "isEnabledFor"})
"""What a module may ask of another logger: its level (to pass it on), not to log."""


def foreign_loggers(path: Path, root: Path) -> list[int]:
    """The lines of `path` (a module under `root`, hedgerow's directory) that get a
    hedgerow logger other than its subpackage's, to log through."""
    parts = path.relative_to(root.parent).with_suffix("").parts
    expected = subpackage_logger(".".join(parts if path.name == "__init__.py" else parts[:-1]))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    reading = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in READING
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "getLogger"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and str(node.args[0].value).split(".")[0] == "hedgerow"
        and node.args[0].value != expected
        and id(node) not in reading
    ]


def test_no_module_logs_through_another_subpackages_logger_inline():
    # `logging.getLogger("hedgerow.x").warning(...)` in a function is no module
    # attribute: read the source.
    wrong = {
        str(path.relative_to(HEDGEROW.parent)): lines
        for path in sorted(HEDGEROW.rglob("*.py"))
        if (lines := foreign_loggers(path, HEDGEROW))
    }
    assert not wrong, f"getLogger of another subpackage's logger: {wrong}"


def test_bus_transitions_are_logged_at_debug(caplog):
    caplog.set_level(logging.DEBUG, logger="hedgerow")
    bus = Bus()
    bus.start()
    bus.exit()
    transitions = [r for r in caplog.records if r.getMessage().startswith("Bus ")]
    assert [r.getMessage() for r in transitions] == [
        "Bus STARTING",
        "Bus STARTED",
        "Bus STOPPING",
        "Bus STOPPED",
        "Bus EXITING",
        "Bus EXITED",
    ]
    assert {r.levelno for r in transitions} == {logging.DEBUG}
    assert {r.name for r in transitions} == {"hedgerow.node"}


def test_tree_events_are_logged_by_the_hedgerow_logger(caplog):
    caplog.set_level(logging.DEBUG, logger="hedgerow")
    with hr.Tree(hr.SupervisorSpec([hr.ChildSpec("a", hr.Actor)])) as tree:
        tree.get_child("a")
    started = [r for r in caplog.records if r.getMessage().startswith("started root/a")]
    assert [r.name for r in started] == ["hedgerow"]


# -- the formats -------------------------------------------------------------------


def record(
    message: str = "hello %s", args: tuple[object, ...] = ("world",), **extra: object
) -> logging.LogRecord:
    made = logging.getLogger("hedgerow.node").makeRecord(
        "hedgerow.node", logging.WARNING, __file__, 1, message, args, None
    )
    made.__dict__.update(extra)
    return made


def test_json_format_has_time_level_logger_message_and_exception():
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing = record(exc_info=sys.exc_info())
    data = json.loads(JsonFormatter().format(failing))
    assert data.keys() == {"time", "level", "logger", "message", "exception"}
    assert (data["level"], data["logger"], data["message"]) == (
        "WARNING",
        "hedgerow.node",
        "hello world",
    )
    assert data["time"].endswith("+00:00")
    assert data["exception"].startswith("Traceback (most recent call last):")
    assert data["exception"].endswith("RuntimeError: boom")
    assert "exception" not in json.loads(JsonFormatter().format(record()))


def test_json_format_of_an_event_keeps_its_traceback_out_of_the_message():
    event = Event(
        EventKind.FAILED, "root/w", 0.0, 2, reason=RuntimeError("x"), traceback="Traceback...\n"
    )
    text = (event.describe(), "Traceback...")
    line = JsonFormatter().format(record("%s\n%s", text, **{EVENT_ATTRIBUTE: event}))
    data = json.loads(line)
    assert data["message"] == "failed root/w #2 reason=RuntimeError: x"
    assert data["exception"] == "Traceback..."
    assert data["event"] == {"kind": "failed", "path": "root/w", "incarnation": 2}


WORKER_LOG = textwrap.dedent(
    """
    import logging
    from hedgerow.node._worker_main import _configure_logging
    _configure_logging("w1", "INFO")
    logging.getLogger("hedgerow.node").info("hello")
    """
)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_worker_logs_in_the_nodes_format(log_format):
    env = {**os.environ, LOG_FORMAT_ENV: log_format}
    done = subprocess.run(
        [sys.executable, "-c", WORKER_LOG], capture_output=True, text=True, check=True, env=env
    )
    line = done.stderr.strip()
    node_record = record("hello", ())
    node_record.levelno, node_record.levelname = logging.INFO, "INFO"
    node_line = formatter(log_format).format(node_record)
    if log_format == "json":
        data = json.loads(line)
        assert data["message"] == "hello"
        assert data["origin"] == "worker w1"
        assert data["pid"] == int(data["pid"])
        assert data.keys() - {"origin", "pid"} == json.loads(node_line).keys()
    else:
        # The node's line (time, level, logger: message), with the worker named.
        origin = re.search(r" worker w1\[\d+\] ", line)
        assert origin is not None, line
        time = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
        assert re.match(time, line)
        assert re.match(time, node_line)
        without_origin = line[: origin.start()] + " " + line[origin.end() :]
        assert without_origin[24:] == node_line[24:] == "INFO     hedgerow.node: hello"


def test_run_writes_json_log_lines(tmp_path):
    (tmp_path / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hedgerow:Actor"\n'
    )
    args = ["run", str(tmp_path / "t.toml"), "--for", "0.05", "--log-format", "json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert lines, "no log lines"
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert lines[-1]["message"].startswith("tree 'root' ended")
    assert lines[-1]["logger"] == "hedgerow.cli"  # the command's own line


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_node_reads_a_workers_line_back_into_the_record(log_format):
    written = record("hello %s", ("world",))
    written.process = 4242
    written.created = 1764699992.0110004  # read back as .011, whose float rounds down
    written.msecs = (written.created - int(written.created)) * 1000  # as logging does
    line = formatter(log_format, origin="worker w1").format(written)
    read = parse_line(line)
    assert read is not None
    assert (read.name, read.levelno, read.getMessage()) == (
        "hedgerow.node",
        logging.WARNING,
        "hello world",
    )
    assert (origin_of(read), read.process) == ("worker w1", 4242)
    assert abs(read.created - written.created) < 0.001
    # The node formats it as the worker did.
    assert formatter(log_format).format(read) == line


def test_lines_that_are_not_a_workers_records_are_left_alone():
    node_line = formatter("text").format(record())  # no origin: not a worker's
    for line in ("a print", "", "Traceback (most recent call last):", "{not json", node_line):
        assert parse_line(line) is None
