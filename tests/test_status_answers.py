"""`hedgerow status` validates what the node answers: no KeyError, no MarkupError, no hang."""

from __future__ import annotations

import json
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner

import hedgerow.cli._status as status_module
from hedgerow.cli._status import status
from hedgerow.transports import Call, Leave
from hedgerow.transports._base import Result

GOOD = {
    "name": "shop",
    "pid": 10,
    "uptime": 3.5,
    "children": [
        {
            "id": "w1",
            "path": "shop/w1",
            "state": "running",
            "supervisor": False,
            "incarnation": 1,
            "restarts": 2,
            "info": {"pid": 11, "port": 8100, "guid": "g"},
        }
    ],
}
COMPONENT = {"id": "adder", "state": "running", "restarts": 0, "incarnation": 1}


class FakeLink:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.is_open = True

    def handle(self, message: Any) -> Future:
        future: Future = Future()
        if isinstance(message, Leave):
            self.is_open = False
            future.set_result(None)
            return future
        assert isinstance(message, Call)
        answer = self.answers.get(message.procedure.rsplit(".", 1)[-1], "silent")
        if answer != "silent":
            future.set_result(Result([answer]))
        return future  # silent: never answered


@dataclass
class FakeTransport:
    link: FakeLink

    def join(self, *_args: Any, **_kwargs: Any) -> Future:
        future: Future = Future()
        future.set_result(self.link)
        return future


@dataclass
class FakeConfig:
    transport: FakeTransport
    serializers: Any = None


def run_status(monkeypatch, answers: dict[str, Any], *args: str) -> tuple[int, str, str]:
    link = FakeLink(answers)
    monkeypatch.setattr(
        status_module, "resolve_transports", lambda _url: [FakeConfig(FakeTransport(link))]
    )
    result = CliRunner().invoke(
        status, ["--node", "shop", "--timeout", "0.2", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


def with_child(**changes: Any) -> dict[str, Any]:
    row = {**GOOD["children"][0], **changes}
    return {**GOOD, "children": [row]}


def test_a_good_answer_is_shown(monkeypatch):
    answers = {"get_tree": GOOD, "get_components": ["adder"], "get_component": COMPONENT}
    code, out, err = run_status(monkeypatch, answers)
    assert code == 0, err
    assert "shop" in out
    assert "pid=11" in out
    assert "adder running" in out
    code, out, err = run_status(monkeypatch, answers, "--json")
    assert code == 0, err
    assert json.loads(out)["children"][0]["components"][0]["id"] == "adder"


@pytest.mark.parametrize(
    ("answer", "needle"),
    [
        (None, "expected a table"),
        ([1, 2], "expected a table"),
        ({}, "name"),
        ({**GOOD, "pid": "ten"}, "pid"),
        ({**GOOD, "uptime": "long"}, "uptime"),
        ({**GOOD, "children": "none"}, "children"),
        (with_child(state=None), "children[0].state"),
        (with_child(id=7), "children[0].id"),
        (with_child(restarts="many"), "children[0].restarts"),
        (with_child(info=[1]), "children[0].info"),
        ({k: v for k, v in GOOD.items() if k != "name"}, "name"),
        (with_child(children=[{"id": "x"}]), "children[0].children[0].state"),
    ],
)
def test_a_malformed_answer_names_what_is_wrong(monkeypatch, answer, needle):
    code, _, err = run_status(monkeypatch, {"get_tree": answer})
    assert code == 1, err
    assert "Traceback" not in err
    assert needle in err
    assert "malformed" in err


@pytest.mark.parametrize(
    "answer",
    [
        {**GOOD, "name": "[/x]"},
        {**GOOD, "name": "[bold]x[/bold]"},
        with_child(id="[/x]", state="[red]boom[/red]"),
        with_child(state="[/running]"),
    ],
)
def test_markup_in_names_is_shown_literally(monkeypatch, answer):
    code, out, err = run_status(monkeypatch, {"get_tree": answer, "get_components": []})
    assert code == 0, err
    shown = answer["name"] if answer["name"] != "shop" else answer["children"][0]["id"]
    assert shown in out


def test_a_malformed_component_answer_is_shown_as_the_workers_error(monkeypatch):
    answers = {"get_tree": GOOD, "get_components": ["a"], "get_component": {"id": 5}}
    code, out, err = run_status(monkeypatch, answers)
    assert code == 0, err
    assert "components:" in out
    assert "malformed" in out


def test_a_node_that_does_not_answer_says_it_timed_out_and_after_how_long(monkeypatch):
    code, _, err = run_status(monkeypatch, {})
    assert code == 1
    assert "did not answer within 0.2 s" in err
    assert "--timeout" in err


def test_deep_answers_are_refused(monkeypatch):
    deep: Any = "x"
    for _ in range(200):
        deep = {"id": "d", "state": "running", "children": [deep]}
    code, _, err = run_status(monkeypatch, {"get_tree": {**GOOD, "children": [deep]}})
    assert code == 1
    assert "Traceback" not in err
    assert "nested" in err
