"""Every problem of a tree file at once, and args/kwargs bound to what they start."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import hedgerow as hr
from hedgerow.supervision._binding import bind_child

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

def factory(name, /, level=1):
    return Anything(name, level)

class NoInit(hr.Actor):
    pass

class NoInitOnLoop(hr.AsyncioActor):
    pass

component = hr.Component(name="bound_component")
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "bound_actors.py").write_text(ACTORS)
    return tmp_path


def problems(folder: Path, text: str, name: str = "t.toml") -> dict[str, str]:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    with pytest.raises(hr.ConfigError) as info:
        hr.load_tree(path)
    return {p.key: p.describe() for p in info.value.problems}


# -- every problem at once -------------------------------------------------------


def test_an_unknown_key_does_not_hide_value_errors(folder):
    found = problems(
        folder,
        """\
        [supervisor]
        strategy = "bogus"
        bogus = 1
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:Anything"
        restart = "sometimes"
        colour = "red"
        """,
    )
    assert set(found) == {
        "supervisor.strategy",
        "supervisor.bogus",
        "supervisor.children[0].restart",
        "supervisor.children[0].colour",
    }


def test_every_problem_of_a_child_is_reported(folder):
    found = problems(
        folder,
        """\
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:Anything"
        restart = "sometimes"
        shutdown = -1
        max_retries = -2
        retry_delay_growth = 0.5
        """,
    )
    assert set(found) == {
        "supervisor.children[0].restart",
        "supervisor.children[0].shutdown",
        "supervisor.children[0].max_retries",
        "supervisor.children[0].retry_delay_growth",
    }


def test_a_supervisors_own_problems_are_kept_when_a_child_has_one(folder):
    found = problems(
        folder,
        """\
        [supervisor]
        strategy = "bogus"
        period = 0
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:Anything"
        restart = "sometimes"
        [[supervisor.children]]
        id = "b"
        start = "no_such_module_here:X"
        """,
    )
    assert set(found) == {
        "supervisor.strategy",
        "supervisor.period",
        "supervisor.children[0].restart",
        "supervisor.children[1].start",
    }


def test_a_type_error_and_a_value_error_in_one_child(folder):
    found = problems(
        folder,
        """\
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:Anything"
        significant = 1
        shutdown = "soon"
        """,
    )
    assert set(found) == {"supervisor.children[0].significant", "supervisor.children[0].shutdown"}


def test_worker_problems_are_all_reported(folder):
    found = problems(
        folder,
        """\
        [[supervisor.children]]
        id = "w"
        [supervisor.children.worker]
        restart = "sometimes"
        shutdown = "whenever"
        config_timeout = -1
        [[supervisor.children.worker.components]]
        id = "c"
        start = "bound_actors:Plain"
        kwargs = { bogus = 1 }
        """,
    )
    assert {
        "supervisor.children[0].worker.restart",
        "supervisor.children[0].worker.shutdown",
        "supervisor.children[0].worker.config_timeout",
        "supervisor.children[0].worker.components[0].kwargs.bogus",
    } <= set(found)


# -- binding args and kwargs ------------------------------------------------------


def test_an_unknown_keyword_names_its_key(folder):
    found = problems(
        folder,
        """\
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:Plain"
        args = [1]
        kwargs = { bogus = 1, other = 2 }
        """,
    )
    assert set(found) == {
        "supervisor.children[0].kwargs.bogus",
        "supervisor.children[0].kwargs.other",
    }
    assert "unexpected keyword argument" in found["supervisor.children[0].kwargs.bogus"]
    assert "Plain(size, *, colour='red')" in found["supervisor.children[0].kwargs.bogus"]


@pytest.mark.parametrize("cls", ["NoInit", "NoInitOnLoop"])
def test_a_class_without_its_own_init_takes_no_arguments_on_either_runtime(folder, cls):
    found = problems(
        folder,
        f"""\
        [[supervisor.children]]
        id = "a"
        start = "bound_actors:{cls}"
        kwargs = {{ size = 10 }}
        """,
    )
    assert "unexpected keyword argument" in found["supervisor.children[0].kwargs.size"]


def test_a_missing_argument_names_args(folder):
    found = problems(folder, '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:Plain"\n')
    assert "missing a required argument: 'size'" in found["supervisor.children[0].args"]


def test_too_many_arguments_name_args(folder):
    found = problems(
        folder,
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:Plain"\nargs = [1, 2]\n',
    )
    assert "too many positional arguments" in found["supervisor.children[0].args"]


def test_a_positional_only_parameter_given_by_keyword(folder):
    found = problems(
        folder,
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:factory"\n'
        'kwargs = { name = "x" }\n',
    )
    assert "supervisor.children[0].kwargs.name" in found


def test_args_to_a_component_are_refused(folder):
    found = problems(
        folder,
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:component"\nargs = [1]\n',
    )
    assert "supervisor.children[0].args" in found


def test_good_bindings_load(folder):
    path = folder / "t.toml"
    path.write_text(
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:Plain"\nargs = [1]\n'
        'kwargs = { colour = "blue" }\n'
        '[[supervisor.children]]\nid = "b"\nstart = "bound_actors:Anything"\n'
        "kwargs = { x = 1 }\n"
        '[[supervisor.children]]\nid = "c"\nstart = "bound_actors:factory"\nargs = ["n"]\n'
    )
    assert [c.id for c in hr.load_tree(path).children] == ["a", "b", "c"]


def test_a_simple_one_for_one_template_may_leave_arguments_to_start_child(folder):
    path = folder / "t.toml"
    path.write_text(
        '[supervisor]\nstrategy = "simple_one_for_one"\n'
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:Plain"\n'
    )
    hr.load_tree(path)
    path.write_text(
        '[supervisor]\nstrategy = "simple_one_for_one"\n'
        '[[supervisor.children]]\nid = "a"\nstart = "bound_actors:Plain"\n'
        "kwargs = { bogus = 1 }\n"
    )
    with pytest.raises(hr.ConfigError, match=r"kwargs\.bogus"):
        hr.load_tree(path)


def test_bind_child_is_usable_on_specs_built_in_code(folder, monkeypatch):
    monkeypatch.syspath_prepend(str(folder))
    import bound_actors  # type: ignore[import-not-found]  # noqa: PLC0415 - made by the fixture

    spec = hr.ChildSpec("a", bound_actors.Plain, kwargs={"bogus": 1})
    with pytest.raises(hr.SpecError) as info:
        bind_child(spec)
    assert info.value.field == "kwargs.bogus"
    bind_child(hr.ChildSpec("a", bound_actors.Plain, args=(1,)))
