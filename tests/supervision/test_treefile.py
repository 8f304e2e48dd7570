"""Tree files: the same specs as code, round trips, and errors that name the key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import Worker, start

import hedgerow as hr
from hedgerow.supervision._treefile import tree_to_data

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_TREES = sorted(
    p
    for p in EXAMPLES.glob("*/*")
    if p.suffix in (".toml", ".yaml", ".yml", ".json") and p.stem != "principals"  # router's
)

TOML = """\
[supervisor]
name = "shop"
strategy = "rest_for_one"
max_restarts = 4
period = 20
shutdown_policy = "shutdown-on-last-component-stopped"

[[supervisor.children]]
id = "db"
start = "helpers:Worker"
args = ["db"]
shutdown = "brutal_kill"

[[supervisor.children]]
id = "api"
start = "helpers:Worker"
kwargs = { name = "api" }
restart = "transient"
significant = true
initial_retry_delay = 0.5
retry_delay_growth = 2
retry_delay_jitter = 0
max_retry_delay = 10
max_retries = 7
retry_reset_after = 60
ask_errors_fail = true

[[supervisor.children]]
id = "pool"
[supervisor.children.supervisor]
strategy = "simple_one_for_one"
max_restarts = 10
period = 1
initial_retry_delay = 0.2
max_retries = 4
retry_reset_after = 30

[[supervisor.children.supervisor.children]]
id = "conn"
start = "helpers:Worker"
restart = "temporary"
shutdown = 0.5
"""

YAML = """\
supervisor:
  name: shop
  strategy: rest_for_one
  max_restarts: 4
  period: 20
  shutdown_policy: shutdown-on-last-component-stopped
  children:
    - {id: db, start: "helpers:Worker", args: [db], shutdown: brutal_kill}
    - id: api
      start: helpers:Worker
      kwargs: {name: api}
      restart: transient
      significant: true
      initial_retry_delay: 0.5
      retry_delay_growth: 2
      retry_delay_jitter: 0
      max_retry_delay: 10
      max_retries: 7
      retry_reset_after: 60
      ask_errors_fail: true
    - id: pool
      supervisor:
        strategy: simple_one_for_one
        max_restarts: 10
        period: 1
        initial_retry_delay: 0.2
        max_retries: 4
        retry_reset_after: 30
        children:
          - {id: conn, start: "helpers:Worker", restart: temporary, shutdown: 0.5}
"""


def code_spec() -> hr.SupervisorSpec:
    """The tree above, built in code."""
    pool = hr.SupervisorSpec(
        [hr.ChildSpec("conn", Worker, restart="never", shutdown=0.5)],
        strategy="simple_one_for_one",
        max_restarts=10,
        period=1,
        initial_retry_delay=0.2,
        max_retries=4,
        retry_reset_after=30,
    )
    return hr.SupervisorSpec(
        [
            hr.ChildSpec("db", Worker, args=("db",), shutdown=hr.BRUTAL_KILL),
            hr.ChildSpec(
                "api",
                Worker,
                kwargs={"name": "api"},
                restart="failed",
                significant=True,
                initial_retry_delay=0.5,
                retry_delay_growth=2,
                retry_delay_jitter=0,
                max_retry_delay=10,
                max_retries=7,
                retry_reset_after=60,
                ask_errors_fail=True,
            ),
            hr.ChildSpec("pool", pool),
        ],
        strategy="rest_for_one",
        max_restarts=4,
        period=20,
        shutdown_policy="shutdown-on-last-component-stopped",
        name="shop",
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_toml_yaml_and_json_build_the_same_specs_as_code(tmp_path):
    from_toml = hr.load_tree(write(tmp_path, "tree.toml", TOML))
    from_yaml = hr.load_tree(write(tmp_path, "tree.yaml", YAML))
    json_text = hr.dumps_tree(from_toml, "json")
    from_json = hr.load_tree(write(tmp_path, "tree.json", json_text))
    assert from_toml == code_spec()
    assert from_yaml == code_spec()
    assert from_json == code_spec()
    assert from_toml.children[1].start is Worker


@pytest.mark.parametrize("fmt", ["toml", "yaml", "json"])
def test_code_spec_round_trips_through_each_format(tmp_path, fmt):
    path = tmp_path / f"tree.{fmt}"
    hr.dump_tree(code_spec(), path)
    again = hr.load_tree(path)
    assert again == code_spec()
    assert hr.dumps_tree(again, fmt) == path.read_text()


@pytest.mark.parametrize("path", EXAMPLE_TREES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_round_trips(tmp_path, path):
    spec = hr.load_tree(path)
    for fmt in ("toml", "yaml", "json"):
        again = hr.load_tree(write(tmp_path, f"again.{fmt}", hr.dumps_tree(spec, fmt)))
        assert again == spec


def test_a_supervisors_backoff_defaults_reach_its_children_and_are_written_back(tmp_path):
    text = """\
        [supervisor]
        backoff = true
        retry_delay_jitter = 0
        [[supervisor.children]]
        id = "a"
        start = "helpers:Worker"
        [[supervisor.children]]
        id = "b"
        start = "helpers:Worker"
        backoff = false
        [[supervisor.children]]
        id = "c"
        start = "helpers:Worker"
        max_retries = -1
        event_errors_fail = true
    """
    spec = hr.load_tree(write(tmp_path, "tree.toml", text))
    a, b, c = (spec.backoff_for(child) for child in spec.children)
    assert a is not None
    assert (a.initial_retry_delay, a.retry_delay_jitter, a.max_retries) == (1.5, 0, 10)
    assert b is None
    assert c is not None
    assert (c.retry_delay_jitter, c.max_retries) == (0, -1)
    assert spec.children[2].event_errors_fail
    for fmt in ("toml", "yaml", "json"):
        written = hr.dumps_tree(spec, fmt)
        assert "retry_delay_jitter" in written
        assert hr.load_tree(write(tmp_path, f"again.{fmt}", written)) == spec
    data = tree_to_data(spec)["supervisor"]
    assert (data["backoff"], data["retry_delay_jitter"]) == (True, 0)
    assert data["children"][1]["backoff"] is False


def test_defaults_are_left_out_when_written():
    text = hr.dumps_tree(hr.SupervisorSpec([hr.ChildSpec("w", Worker)]), "yaml")
    assert text == "supervisor:\n  children:\n  - id: w\n    start: helpers:Worker\n"


def test_a_local_class_cannot_be_written():
    class Local(hr.Actor):
        pass

    spec = hr.SupervisorSpec([hr.ChildSpec("w", Local)])
    with pytest.raises(hr.SpecError, match="module level") as info:
        hr.dumps_tree(spec, "toml")
    assert info.value.child_id == "w"


def test_args_the_format_cannot_hold_are_an_error():
    spec = hr.SupervisorSpec([hr.ChildSpec("w", Worker, args=(None,))])
    with pytest.raises(hr.SpecError, match="plain TOML data"):
        hr.dumps_tree(spec, "toml")


def test_file_and_code_trees_behave_the_same_on_the_same_crashes(tmp_path, clock):
    """The same crash schedule gives the same events, whichever way the tree was built."""
    spec_text = """\
        [supervisor]
        strategy = "one_for_all"
        max_restarts = 3
        period = 10
        [[supervisor.children]]
        id = "a"
        start = "helpers:Worker"
        args = ["a"]
        initial_retry_delay = 2
        retry_delay_jitter = 0
        [[supervisor.children]]
        id = "b"
        start = "helpers:Worker"
        args = ["b"]
        initial_retry_delay = 2
        retry_delay_jitter = 0
    """
    from_file = hr.load_tree(write(tmp_path, "tree.toml", spec_text))
    from_code = hr.SupervisorSpec(
        [
            hr.ChildSpec("a", Worker, args=("a",), initial_retry_delay=2, retry_delay_jitter=0),
            hr.ChildSpec("b", Worker, args=("b",), initial_retry_delay=2, retry_delay_jitter=0),
        ],
        strategy="one_for_all",
        max_restarts=3,
        period=10,
    )

    def run(spec: hr.SupervisorSpec) -> list[tuple[object, ...]]:
        began = clock.now()
        tree, recorder = start(spec, clock=clock)
        for crashes, target in enumerate(["a", "b", "a"], start=1):
            tree.get_child(target).tell("crash")
            recorder.wait_for(hr.EventKind.FAILED, count=crashes)
            tree.which_children()  # an ask: answered once the supervisor has handled the exit
            while clock.pending():  # the backoff delay, if any
                clock.jump_to_next()
                tree.which_children()
        tree.get_child("b").tell("crash")  # the fourth restart in 10 s: the tree gives up
        assert isinstance(tree.wait(timeout=10), hr.IntensityExceeded)
        return [
            (e.kind.value, e.path, e.incarnation, e.delay, type(e.reason).__name__, e.time - began)
            for e in recorder.events
        ]

    assert run(from_file) == run(from_code)


# -- errors: each names the file, the key path, the value and the rule -------


def load_error(tmp_path: Path, name: str, text: str) -> hr.ConfigError:
    path = write(tmp_path, name, text)
    with pytest.raises(hr.ConfigError) as info:
        hr.load_tree(path)
    assert str(path) in str(info.value)
    return info.value


def test_missing_file(tmp_path):
    with pytest.raises(hr.ConfigError, match="no such file") as info:
        hr.load_tree(tmp_path / "nope.toml")
    assert "nope.toml" in str(info.value)


def test_unknown_extension(tmp_path):
    error = load_error(tmp_path, "tree.ini", "[supervisor]\n")
    assert "unknown extension '.ini'" in str(error)
    assert ".json, .toml, .yaml, .yml" in str(error)


@pytest.mark.parametrize(
    ("name", "text", "line", "what"),
    [
        ("t.toml", '[supervisor]\nname = "x"\nstrategy = \n', 3, "TOML syntax error"),
        ("t.yaml", "supervisor:\n  name: x\n  children: [\n", 4, "YAML syntax error"),
        ("t.json", '{"supervisor": {\n  "name": "x",\n}}', 3, "JSON syntax error"),
    ],
)
def test_syntax_errors_give_the_line(tmp_path, name, text, line, what):
    error = load_error(tmp_path, name, text)
    assert what in str(error)
    assert error.problems[0].line == line
    assert f"line {line}:" in str(error)


def test_a_module_that_cannot_be_imported(tmp_path):
    error = load_error(
        tmp_path,
        "t.toml",
        '[[supervisor.children]]\nid = "w"\nstart = "no_such_module_here:Worker"\n',
    )
    text = str(error)
    assert "supervisor.children[0].start = 'no_such_module_here:Worker'" in text
    assert "cannot import module 'no_such_module_here'" in text
    assert "ModuleNotFoundError" in text


def test_a_module_whose_import_fails_shows_its_error(tmp_path):
    (tmp_path / "broken_actors.py").write_text("import nothing_of_that_name\n")
    error = load_error(
        tmp_path, "t.toml", '[[supervisor.children]]\nid = "w"\nstart = "broken_actors:W"\n'
    )
    assert "No module named 'nothing_of_that_name'" in str(error)


def test_a_missing_attribute(tmp_path):
    error = load_error(
        tmp_path, "t.toml", '[[supervisor.children]]\nid = "w"\nstart = "helpers:Nobody"\n'
    )
    assert "supervisor.children[0].start = 'helpers:Nobody'" in str(error)
    assert "has no attribute 'Nobody'" in str(error)


def test_a_class_that_is_not_an_actor(tmp_path):
    error = load_error(
        tmp_path, "t.toml", '[[supervisor.children]]\nid = "w"\nstart = "helpers:Log"\n'
    )
    assert "supervisor.children[0].start = 'helpers:Log'" in str(error)
    assert "must subclass hedgerow.Actor" in str(error)


def test_start_without_a_colon(tmp_path):
    error = load_error(tmp_path, "t.toml", '[[supervisor.children]]\nid = "w"\nstart = "helpers"\n')
    assert "expected 'module:Class'" in str(error)


def test_a_duplicate_id_points_at_the_second_child(tmp_path):
    text = """\
        [[supervisor.children]]
        id = "w"
        start = "helpers:Worker"
        [[supervisor.children]]
        id = "x"
        start = "helpers:Worker"
        [[supervisor.children]]
        id = "w"
        start = "helpers:Worker"
    """
    error = load_error(tmp_path, "t.toml", text)
    assert "supervisor.children[2].id = 'w': duplicate child id" in str(error)


@pytest.mark.parametrize(
    ("setting", "key", "shown", "rule"),
    [
        ('restart = "sometimes"', "children[0].restart", "'sometimes'", "expected one of always"),
        ('shutdown = "soon"', "children[0].shutdown", "'soon'", "'brutal_kill' or 'infinity'"),
        ("shutdown = -1", "children[0].shutdown", "-1", "expected a number >= 0"),
        ("max_retries = -2", "children[0].max_retries", "-2", "expected an integer >= -1"),
        ("retry_delay_growth = 0.5", "children[0].retry_delay_growth", "0.5", ">= 1"),
        ('max_retries = "3"', "children[0].max_retries", "'3'", "expected an integer"),
        ("significant = 1", "children[0].significant", "1", "expected true or false"),
        ("args = 3", "children[0].args", "3", "expected a list"),
        ("restart_delay = 3", "children[0].restart_delay", "3", "unknown key"),
        ("significant = true", "children[0].significant", "True", "shutdown policy"),
    ],
)
def test_bad_child_values_name_the_key_path(tmp_path, setting, key, shown, rule):
    restart = "" if "restart" in setting.split("=")[0] else 'restart = "failed"\n'
    text = f'[[supervisor.children]]\nid = "w"\nstart = "helpers:Worker"\n{restart}{setting}\n'
    error = load_error(tmp_path, "t.toml", text)
    assert f"supervisor.{key} = {shown}: " in str(error)
    assert rule in str(error)


@pytest.mark.parametrize(
    ("setting", "key", "shown", "rule"),
    [
        ('strategy = "one_for_some"', "strategy", "'one_for_some'", "one_for_one"),
        ("max_restarts = -1", "max_restarts", "-1", "expected an integer >= 0"),
        ("period = 0", "period", "0", "expected a number > 0"),
        ('shutdown_policy = "sometimes"', "shutdown_policy", "'sometimes'", "shutdown-manual"),
        ("periode = 3", "periode", "3", "did you mean 'period'?"),
        ("max_retries = -2", "max_retries", "-2", "expected an integer >= -1"),
        ("backoff = 1", "backoff", "1", "expected true or false"),
        ("backoff = false\nmax_retries = 2", "max_retries", "2", "backoff=false"),
    ],
)
def test_bad_supervisor_values_name_the_key_path(tmp_path, setting, key, shown, rule):
    error = load_error(tmp_path, "t.toml", f"[supervisor]\n{setting}\n")
    assert f"supervisor.{key} = {shown}: " in str(error)
    assert rule in str(error)


def test_errors_deep_in_nested_supervisors_name_the_whole_path(tmp_path):
    text = """\
        [[supervisor.children]]
        id = "outer"
        [supervisor.children.supervisor]
        [[supervisor.children.supervisor.children]]
        id = "inner"
        [supervisor.children.supervisor.children.supervisor]
        strategy = "one_for_one"
        [[supervisor.children.supervisor.children.supervisor.children]]
        id = "leaf"
        start = "helpers:Worker"
        restart = "sometimes"
    """
    error = load_error(tmp_path, "t.toml", text)
    key = "supervisor.children[0].supervisor.children[0].supervisor.children[0].restart"
    assert f"{key} = 'sometimes'" in str(error)


def test_every_problem_is_reported_at_once(tmp_path):
    text = """\
        [supervisor]
        max_restarts = "3"
        [[supervisor.children]]
        start = "helpers:Worker"
        [[supervisor.children]]
        id = "b"
        start = "helpers:Worker"
        colour = "red"
    """
    error = load_error(tmp_path, "t.toml", text)
    keys = [p.key for p in error.problems]
    assert keys == [
        "supervisor.max_restarts",
        "supervisor.children[0].id",
        "supervisor.children[1].colour",
    ]
    assert "supervisor.children[0].id = missing: required key" in str(error)


def test_start_and_supervisor_are_exclusive(tmp_path):
    text = """\
        [[supervisor.children]]
        id = "w"
        start = "helpers:Worker"
        [supervisor.children.supervisor]
    """
    error = load_error(tmp_path, "t.toml", text)
    assert "supervisor.children[0] = 'w': give one of 'start'" in str(error)


def test_a_file_without_a_supervisor(tmp_path):
    error = load_error(tmp_path, "t.yaml", "- just\n- a list\n")
    assert "expected a table (mapping) with a 'supervisor' key" in str(error)
    error = load_error(tmp_path, "t.json", "{}")
    assert "supervisor = missing: required key" in str(error)


def test_nothing_starts_when_the_file_is_bad(tmp_path):
    """A bad file fails while loading: no actor ever starts (the conftest checks none is left)."""
    (tmp_path / "counting.py").write_text(
        "import hedgerow as hr\nSTARTED = []\n"
        "class Counting(hr.Actor):\n    def on_start(self):\n        STARTED.append(1)\n"
    )
    text = """\
        [[supervisor.children]]
        id = "a"
        start = "counting:Counting"
        [[supervisor.children]]
        id = "b"
        start = "counting:Counting"
        restart = "sometimes"
    """
    load_error(tmp_path, "t.toml", text)
    import counting  # type: ignore[import-not-found]  # noqa: PLC0415 - made by this test

    assert counting.STARTED == []


def test_pythonpath_entries_are_importable(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "pathed_actors.py").write_text("import hedgerow as hr\nclass P(hr.Actor):\n    pass\n")
    text = """\
        pythonpath = ["lib"]
        [[supervisor.children]]
        id = "p"
        start = "pathed_actors:P"
    """
    spec = hr.load_tree(write(tmp_path, "sub.toml", text))
    assert spec.children[0].start.__name__ == "P"
