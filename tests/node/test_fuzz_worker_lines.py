"""Fuzzing what crosses a worker's pipes: its config line (the worker's stdin) and its
event lines (the node's reader). A config line is taken or refused as bad config
naming the key; a worker line is taken (and published, and shown) or refused as a
`BadLine` - never another exception, never a hang.

The ``ci`` hypothesis profile keeps this fast; ``HYPOTHESIS_PROFILE=fuzz`` runs many more.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from node.worker_actors import Echo
from rich.console import Console

import hedgerow as hr
from hedgerow._events import EventKind, EventStream
from hedgerow.cli._view import JsonView, LineView, TreeState
from hedgerow.node._line_reader import LineReader
from hedgerow.node._lines import BadLine, check_line
from hedgerow.node._treeload import tree_from_data
from hedgerow.node._wire import decode_event
from hedgerow.node._worker_main import BadConfig, parse_config
from hedgerow.supervision._treefile import tree_to_data

pytestmark = pytest.mark.timeout(300)

HERE = Path(__file__).parent
KINDS = [kind.value for kind in EventKind]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["[/x]", "[bold]x[/bold]", "g1", "w", "w/a", "asyncio", "INFO"]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def good_config() -> dict[str, Any]:
    return {
        "guid": "g1",
        "port": 18999,
        "name": "w",
        "container": tree_to_data(hr.SupervisorSpec([hr.ChildSpec("a", Echo)])),
        "pythonpath": [str(HERE.parent)],
        "orphan_timeout": 5.0,
    }


CONFIG_KEYS = [
    "guid", "port", "name", "container", "pythonpath", "base_dir", "log_level", "framework",
    "orphan_timeout", "management", "node",
]  # fmt: skip


def edited(draw: st.DrawFn, text: bytes) -> bytes:
    """`text` as is, cut short, or with deep brackets, a long integer or bytes put in."""
    edit = draw(st.sampled_from(["none", "none", "cut", "brackets", "digits", "bytes"]))
    at = draw(st.integers(0, len(text)))
    if edit == "cut":
        return text[:at]
    if edit == "brackets":
        depth = draw(st.sampled_from([40, 70, 2000, 100_000]))
        return text[:at] + b"[" * depth + b"]" * depth + text[at:]
    if edit == "digits":
        return text[:at] + b"9" * 5000 + text[at:]
    if edit == "bytes":
        return text[:at] + draw(st.binary(max_size=8)) + text[at:]
    return text


@st.composite
def config_lines(draw: st.DrawFn) -> bytes:
    config: Any = good_config()
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(CONFIG_KEYS))
        if draw(st.booleans()):
            config.pop(key, None)
        else:
            config[key] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        config = draw(json_values)
    return edited(draw, json.dumps(config).encode())


@given(line=config_lines())
def test_fuzzed_config_lines(line):
    saved = list(sys.path)
    refused: list[str] = []
    problems: list[str] = []
    try:
        config = parse_config(line, guid="g1", port=18999)
        tree_from_data(config["container"], source="key 'container'")  # what the worker builds
    except BadConfig as exc:
        refused.append(str(exc))
    except hr.ConfigError as exc:
        problems.extend(p.describe() for p in exc.problems)
    finally:
        sys.path[:] = saved
    assert all(0 < len(text) < 1000 for text in refused)
    assert all(0 < len(text) < 1500 for text in problems)


# -- the node's reader ---------------------------------------------------------------------


@st.composite
def worker_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["event", "event", "event", "ready", "exit", "other"]))
    line: Any = {"type": kind if kind != "other" else draw(json_scalars)}
    if kind == "event":
        line["kind"] = draw(st.one_of(st.sampled_from(KINDS), json_scalars))
        line["path"] = draw(st.one_of(st.sampled_from(["w", "w/a", "x/[/y]"]), json_values))
        for key in ("incarnation", "reason", "traceback", "delay", "info", "message"):
            if draw(st.booleans()):
                line[key] = draw(
                    st.one_of(
                        json_values,
                        st.sampled_from([1, 0.5, "normal", {"error": "E", "message": "m"}]),
                    )
                )
    elif kind == "ready":
        line.update(pid=draw(st.one_of(st.integers(1, 99999), json_values)), guid="g")
    elif kind == "exit":
        line.update(status=draw(st.one_of(st.integers(0, 4), json_values)))
        line["reason"] = draw(st.one_of(st.text(max_size=30), json_values))
    if draw(st.integers(0, 9)) == 0:
        line = draw(json_values)
    return edited(draw, json.dumps(line).encode()) + b"\n"


class Sink(io.StringIO):
    pass


def first_line(raw: bytes) -> bytes:
    """The first line the node reads of `raw` (a file: a pipe would fill up)."""
    with tempfile.TemporaryFile() as file:
        file.write(raw)
        file.seek(0)
        return LineReader(file.fileno(), None).read_line()


@given(raw=worker_lines())
def test_fuzzed_worker_lines(raw):
    try:
        line = check_line(first_line(raw))
    except BadLine as exc:
        refused = str(exc)
    else:
        refused = None
    if refused is not None:
        assert 0 < len(refused) < 500
        return
    if line["type"] != "event":
        return
    # What the node does with an event it took: publish it, show it (lines, JSON, live view).
    kind, path, details = decode_event(line)
    stream = EventStream()
    seen = []
    stream.subscribe(seen.append)
    stream.publish(kind, f"root/{path}", 1.0, **details)
    [event] = seen
    LineView(Sink(), 0.0).show(event, 2.0)
    JsonView(Sink(), 0.0).show(event, 2.0)
    state = TreeState(hr.SupervisorSpec([hr.ChildSpec("w", Echo)]), "root")
    state.apply(event, 2.0)
    Console(file=Sink(), width=100).print(state.render(3.0))


def test_an_event_with_markup_in_its_path_is_shown_literally():
    raw = b'{"type": "event", "kind": "failed", "path": "w/[/x]", "reason": "[bold]b[/bold]"}\n'
    kind, path, details = decode_event(check_line(raw))
    stream = EventStream()
    seen = []
    stream.subscribe(seen.append)
    stream.publish(kind, f"root/{path}", 1.0, **details)
    out = Sink()
    LineView(out, 0.0).show(seen[0], 2.0)
    assert "[/x]" in out.getvalue()
    assert "[bold]b[/bold]" in out.getvalue()
