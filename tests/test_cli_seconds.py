"""Numeric options refuse NaN, infinity and numbers beyond any clock: exit 2, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hedgerow.cli import cli

TREE = '[[supervisor.children]]\nid = "a"\nstart = "seconds_actors:Idle"\n'
ACTORS = "import hedgerow as hr\n\nclass Idle(hr.Actor):\n    pass\n"
BAD = ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "0", "-1", "soon"]


@pytest.fixture
def tree(tmp_path: Path) -> str:
    (tmp_path / "seconds_actors.py").write_text(ACTORS)
    (tmp_path / "t.toml").write_text(TREE)
    return str(tmp_path / "t.toml")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", BAD)
def test_run_for(tree, value):
    status, err = invoke("run", tree, "--for", value)
    assert status == 2, err
    assert "--for" in err


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", BAD)
def test_status_timeout(value):
    status, err = invoke("status", "--timeout", value)
    assert status == 2, err
    assert "--timeout" in err


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "option", ["--duration", "--rate", "--hang-time", "--slow-delay", "--window"]
)
@pytest.mark.parametrize("value", ["nan", "inf", "1e400", "-1"])
def test_chaos_options(tree, option, value):
    status, err = invoke("chaos", tree, option, value)
    assert status == 2, err
    assert option in err


@pytest.mark.timeout(10)
@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "1.5"])
def test_chaos_probability(tree, value):
    status, err = invoke("chaos", tree, "--flaky-probability", value)
    assert status == 2, err
    assert "--flaky-probability" in err


def test_good_values_pass(tree):
    status, err = invoke("run", tree, "--for", "0.05")
    assert status == 0, err
