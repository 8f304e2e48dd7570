"""`hedgerow check` on hostile tree files: exit 2, a message naming the key, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hedgerow.cli import cli

ACTORS = """\
import hedgerow as hr

class Plain(hr.Actor):
    def __init__(self, size, *, colour="red"):
        super().__init__()
        self.size = size
        self.colour = colour

class Anything(hr.Actor):
    def __init__(self, *args, **kwargs):
        super().__init__()

def factory(name):
    return Anything(name)

component = hr.Component(name="hostile_component")
"""


def check(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["check", str(path)], catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "hostile_actors.py").write_text(ACTORS)
    return tmp_path


def bad(path: Path, *needles: str) -> str:
    status, err = check(path)
    assert status == 2, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


# -- what the parsers cannot take --------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", "[supervisor]\nname = " + "[" * 600 + "]" * 600 + "\n"),
        ("deep.yaml", "supervisor:\n  name: " + "[" * 600 + "]" * 600 + "\n"),
        ("deep.json", '{"supervisor": {"name": ' + "[" * 3000 + "]" * 3000 + "}}"),
        ("deep_tables.yaml", "supervisor:\n" + "".join("  " * i + "a:\n" for i in range(1, 700))),
    ],
)
def test_nesting_too_deep_is_a_problem_not_a_recursion_error(folder, name, text):
    (folder / name).write_text(text)
    err = bad(folder / name, "nested")
    assert len(err) < 2000


def test_moderate_nesting_in_args_is_reported_at_its_key(folder):
    args = "[" * 200 + "1" + "]" * 200
    (folder / "t.toml").write_text(
        f'[[supervisor.children]]\nid = "a"\nstart = "hostile_actors:Anything"\nargs = [{args}]\n'
    )
    bad(folder / "t.toml", "supervisor.children[0].args", "nested")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("big.toml", "[supervisor]\nmax_restarts = " + "9" * 5000 + "\n"),
        ("big.yaml", "supervisor:\n  max_restarts: " + "9" * 5000 + "\n"),
        ("big.json", '{"supervisor": {"max_restarts": ' + "9" * 5000 + "}}"),
    ],
)
def test_integer_literals_over_4300_digits_name_the_key(folder, name, text):
    (folder / name).write_text(text)
    err = bad(folder / name, "max_restarts", "digits")
    assert len(err) < 1000


def test_huge_integer_in_args_names_the_key(folder):
    (folder / "t.json").write_text(
        '{"supervisor": {"children": [{"id": "a", "start": "hostile_actors:Anything", '
        '"args": [' + "7" * 5000 + "]}]}}"
    )
    bad(folder / "t.json", "supervisor.children[0].args[0]", "digits")


@pytest.mark.parametrize("value", ["1" + "0" * 400, "1e400", "-1e400", "nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "key",
    [
        "supervisor.period",
        "supervisor.children[0].worker.config_timeout",
        "supervisor.children[0].worker.ready_timeout",
        "supervisor.children[0].shutdown",
        "supervisor.children[0].initial_retry_delay",
    ],
)
def test_numbers_out_of_range_name_the_key(folder, key, value):
    name = key.rsplit(".", 1)[1]
    if key.startswith("supervisor.children[0].worker"):
        text = (
            f'[[supervisor.children]]\nid = "w"\n[supervisor.children.worker]\n{name} = {value}\n'
        )
    elif key.startswith("supervisor.children"):
        text = (
            '[[supervisor.children]]\nid = "a"\nstart = "hostile_actors:Anything"\n'
            f"{name} = {value}\n"
        )
    else:
        text = f"[supervisor]\n{name} = {value}\n"
    (folder / "t.toml").write_text(text)
    err = bad(folder / "t.toml", key)
    assert len(err) < 1000


def test_infinity_keeps_its_spelling_for_shutdown(folder):
    (folder / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hostile_actors:Anything"\n'
        'shutdown = "infinity"\n'
    )
    status, err = check(folder / "t.toml")
    assert status == 0, err


# -- what the report shows -----------------------------------------------------


@pytest.mark.parametrize("value", ["[/x]", "[bold]x[/bold]", "[red]", "x\\", "[link=file:///]y"])
def test_markup_in_values_is_printed_literally(folder, value):
    (folder / "t.json").write_text(f'{{"supervisor": {{"strategy": {value!r}}}}}'.replace("'", '"'))
    err = bad(folder / "t.json", "supervisor.strategy")
    assert repr(value).replace("\\\\", "\\") in err or value in err


def test_markup_in_ids_of_a_good_tree_is_printed_literally(folder):
    (folder / "t.toml").write_text(
        '[supervisor]\nname = "[bold]root[/bold]"\n'
        '[[supervisor.children]]\nid = "[red]a[x]"\nstart = "hostile_actors:Anything"\n'
    )
    result = CliRunner().invoke(cli, ["check", str(folder / "t.toml")], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert "[red]a[x]" in result.stdout
    assert "[bold]root[/bold]" in result.stdout


def test_long_values_are_cut_short(folder):
    (folder / "t.toml").write_text('[supervisor]\nstrategy = "' + "x" * 10_000 + '"\n')
    err = bad(folder / "t.toml", "supervisor.strategy")
    assert max(len(line) for line in err.splitlines()) < 600


def test_a_huge_number_is_echoed_short(folder):
    (folder / "t.toml").write_text("[supervisor]\nperiod = 1" + "0" * 400 + "\n")
    err = bad(folder / "t.toml", "supervisor.period")
    assert max(len(line) for line in err.splitlines()) < 600


@pytest.mark.parametrize(
    "text",
    [
        "supervisor:\n  name: [a\n  x: {\n",
        "supervisor: \x00\n",
        "supervisor:\n  children: [{id: a, start: b}\n  - c\n",
        "a: &x [*x]\nsupervisor: {}\n",
        "supervisor:\n  name: 2001-13-45\n",
        "? [a, b]\n: 1\nsupervisor: {}\n",
    ],
)
def test_a_yaml_error_is_one_line(folder, text):
    (folder / "t.yaml").write_text(text)
    status, err = check(folder / "t.yaml")
    assert status == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_yaml_aliases_cannot_blow_up(folder):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines += ["supervisor:", "  children:", "    - id: c", "      start: hostile_actors:Anything"]
    lines += ["      args: [*a8]"]
    (folder / "t.yaml").write_text("\n".join(lines) + "\n")
    bad(folder / "t.yaml")


def test_non_string_keys_name_where(folder):
    (folder / "t.yaml").write_text("supervisor:\n  1: 2\n")
    bad(folder / "t.yaml", "supervisor")


def test_keys_that_do_not_print_are_escaped(folder):
    (folder / "t.json").write_text('{"supervisor": {"a\\nb\\u001ec": 1}}')
    err = bad(folder / "t.json", "supervisor.a\\nb\\x1ec")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("entry", ["y" * 300, "a\u0000b", "/" + "z" * 5000])
def test_a_pythonpath_entry_the_system_refuses_names_its_key(folder, entry):
    (folder / "t.json").write_text(
        '{"pythonpath": ["lib", ' + json.dumps(entry) + '], "supervisor": {"children": '
        '[{"id": "w", "worker": {"components": []}}]}}'
    )
    bad(folder / "t.json", "pythonpath[1]")


@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "1" + "0" * 400])
@pytest.mark.parametrize(
    "key", ["initial_retry_delay", "max_retry_delay", "retry_delay_growth", "retry_delay_jitter"]
)
def test_a_transports_retry_settings_must_be_finite(folder, key, value):
    (folder / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hostile_actors:component"\n'
        f'transports = [{{ url = "ws://127.0.0.1:8080/ws", {key} = {value} }}]\n'
    )
    bad(folder / "t.toml", "supervisor.children[0].transports", key)


def test_a_transports_timeout_must_be_finite(folder):
    (folder / "t.toml").write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "hostile_actors:component"\n'
        'transports = [{ url = "ws://127.0.0.1:8080/ws", endpoint = { type = "tcp", '
        'host = "127.0.0.1", port = 8080, timeout = nan } }]\n'
    )
    bad(folder / "t.toml", "supervisor.children[0].transports", "timeout")


def test_keys_of_many_digits_are_reported(folder):
    (folder / "t.json").write_text(
        '{"supervisor": {"' + "9" * 5000 + '": 1, "strategy": "x", "children": []}}'
    )
    bad(folder / "t.json", "supervisor.999", "supervisor.strategy")
