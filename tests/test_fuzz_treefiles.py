"""Fuzzing tree files in all three formats: `hedgerow check` succeeds, or exits 2 with
every problem on one line naming its key (or line) - never a traceback, never a hang.

The ``ci`` hypothesis profile (tests/conftest.py) keeps this fast; run it by hand with
many more examples: ``HYPOTHESIS_PROFILE=fuzz pytest tests/test_fuzz_treefiles.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import hedgerow as hr
from hedgerow.cli import cli

pytestmark = pytest.mark.timeout(300)

ACTORS = """\
import hedgerow as hr

class Plain(hr.Actor):
    def __init__(self, size, *, colour="red"):
        super().__init__()

class Anything(hr.Actor):
    def __init__(self, *args, **kwargs):
        super().__init__()

def factory(name, /, level=1):
    return Anything(name, level)

component = hr.Component(name="fuzz_component")
"""

STARTS = [
    "fuzz_actors:Plain",
    "fuzz_actors:Anything",
    "fuzz_actors:factory",
    "fuzz_actors:component",
    "fuzz_actors:Nothing",
    "fuzz_actors",
    "nomod_fuzz_here:X",
    ":",
    "",
]
HOSTILE_TEXT = ["[/x]", "[bold]x[/bold]", "[red]", "x\\", "${NOPE_NOT_SET}", "$${x}", "a/b"]
WORDS = [
    "always", "failed", "never", "transient", "brutal_kill", "infinity", "one_for_one",
    "one_for_all", "rest_for_one", "simple_one_for_one", "shutdown-manual",
    "shutdown-on-any-component-failed", "restart-failed", "asyncio", "twisted", "INFO",
]  # fmt: skip

numbers = st.one_of(
    st.integers(-3, 12),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.5, 1e9, 1e10, 1e308]),
)
texts = st.one_of(
    st.sampled_from(WORDS + STARTS + HOSTILE_TEXT),
    st.text(max_size=20),
    st.text(alphabet="[]/{}$\\x", max_size=12),
    st.integers(100, 3000).map(lambda n: "y" * n),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
CHILD_KEYS = [
    "id", "start", "args", "kwargs", "restart", "shutdown", "significant", "ask_errors_fail",
    "event_errors_fail", "backoff", "initial_retry_delay", "max_retry_delay",
    "retry_delay_growth", "retry_delay_jitter", "max_retries", "retry_reset_after",
    "realm", "transports", "extra", "authentication", "retsart",
]  # fmt: skip
SUPERVISOR_KEYS = [
    "name", "strategy", "max_restarts", "period", "shutdown_policy", "backoff",
    "initial_retry_delay", "max_retries", "retry_reset_after", "periode",
]  # fmt: skip
WORKER_KEYS = [
    "restart", "shutdown", "max_restarts", "period", "config_timeout", "ready_timeout",
    "env", "standby", "log_level", "framework", "backoff",
]  # fmt: skip


def plausible(key: str) -> st.SearchStrategy[Any]:
    """Mostly values of the right kind for `key`, sometimes anything."""
    if key == "start":
        right: st.SearchStrategy[Any] = st.sampled_from(STARTS)
    elif key == "id":
        right = st.sampled_from(["a", "b", "c", "[x]", ""])
    elif key == "args":
        right = st.lists(scalars, max_size=3)
    elif key in ("kwargs", "extra", "authentication", "env"):
        right = st.dictionaries(st.sampled_from(["size", "colour", "bogus", "x"]), scalars)
    else:
        right = st.one_of(numbers, st.sampled_from(WORDS), st.booleans())
    return st.one_of(right, right, right, values)


def table(keys: list[str], required: dict[str, st.SearchStrategy[Any]] | None = None):
    optional = {key: plausible(key) for key in keys if key not in (required or {})}
    return st.fixed_dictionaries(required or {}, optional=optional)


@st.composite
def children(draw: st.DrawFn, depth: int) -> list[dict[str, Any]]:
    found = []
    for _ in range(draw(st.integers(0, 3))):
        child = draw(table(CHILD_KEYS, {"id": plausible("id")}))
        what = draw(st.sampled_from(["start", "start", "supervisor", "worker", "none"]))
        if what == "supervisor" and depth < 2:
            child.pop("start", None)
            child["supervisor"] = draw(supervisors(depth + 1))
        elif what == "worker" and depth < 2:
            child.pop("start", None)
            worker = draw(table(WORKER_KEYS))
            worker["components"] = draw(children(depth + 2))
            child["worker"] = worker
        elif what == "start":
            child.setdefault("start", draw(st.sampled_from(STARTS)))
        found.append(child)
    return found


@st.composite
def supervisors(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    supervisor = draw(table(SUPERVISOR_KEYS))
    supervisor["children"] = draw(children(depth))
    return supervisor


@st.composite
def tree_data(draw: st.DrawFn) -> Any:
    data: dict[str, Any] = {"supervisor": draw(supervisors())}
    if draw(st.booleans()):
        data["components"] = draw(table(["realm", "transports", "authentication"]))
    if draw(st.booleans()):
        data["management"] = draw(table(["transports", "realm", "prefix", "roles"]))
    if draw(st.integers(0, 5)) == 0:
        data["pythonpath"] = draw(st.lists(texts, max_size=2))
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # not even a table
    return data


def serialize(data: Any, fmt: str) -> str | None:
    try:
        if fmt == "json":
            return json.dumps(data)
        if fmt == "yaml":
            return yaml.safe_dump(data)
        return tomli_w.dumps(data)
    except (TypeError, ValueError, AttributeError):
        return None  # TOML has no null, no top-level list: not every tree can be written


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with a few edits: characters replaced, inserted, deleted, or deep brackets."""
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "brackets", "digits"]))
        if edit == "insert":
            text = (
                text[:at] + draw(st.text(alphabet="[]{}:=,\"'-\n #&*!|>", max_size=3)) + text[at:]
            )
        elif edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        elif edit == "brackets":
            depth = draw(st.sampled_from([70, 600, 3000]))
            text = text[:at] + "[" * depth + "]" * depth + text[at:]
        else:
            text = text[:at] + "9" * draw(st.sampled_from([4301, 5000])) + text[at:]
    return text


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "fuzz_actors.py").write_text(ACTORS)
    return path


def check(folder: Path, name: str, text: str) -> None:
    """`hedgerow check` on `text`: success or exit 2, every line short, no traceback."""
    path = folder / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    saved = list(sys.path)
    try:
        result = CliRunner().invoke(cli, ["check", "--quiet", str(path)])
    finally:
        sys.path[:] = saved
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code in (0, 2), result.output
    err = result.stderr
    assert "Traceback" not in err
    if result.exit_code == 2:
        assert err.startswith("error ")
        lines = err.strip().splitlines()
        assert all(len(line) <= 1500 for line in lines), max(lines, key=len)
        if "problems:" in lines[0]:
            assert all(line.startswith("  ") for line in lines[1:])
        else:
            assert len(lines) == 1


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
@given(data=st.data())
def test_fuzzed_tree_files(folder, fmt, data):
    text = serialize(data.draw(tree_data()), fmt)
    if text is None:
        text = serialize({"supervisor": {}}, fmt)
        assert text is not None
    check(folder, f"t.{fmt}", text)


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
@given(data=st.data())
def test_mutated_tree_files(folder, fmt, data):
    text = serialize(data.draw(tree_data()), fmt) or serialize({"supervisor": {}}, fmt)
    assert text is not None
    check(folder, f"t.{fmt}", data.draw(mutated(text)))


@given(text=st.text(max_size=200))
def test_any_text_as_yaml(folder, text):
    check(folder, "t.yaml", text)


def test_load_tree_raises_only_config_errors(folder):
    """The library's function too: a hostile file is a ConfigError, nothing else."""
    (folder / "d.json").write_text('{"supervisor": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(hr.ConfigError):
        hr.load_tree(folder / "d.json")
