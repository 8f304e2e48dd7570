"""Components in tree files: realm, transports, extra and authentication, with ${VAR}."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import hedgerow as hr
from hedgerow.node._treeload import loads_tree
from hedgerow.supervision._treefile import dumps_tree
from hedgerow.transports import Call, InProcessRouter, Leave

HERE = Path(__file__).resolve().parent
TIMEOUT = 10.0


def load(text: str) -> hr.SupervisorSpec:
    return loads_tree(textwrap.dedent(text), "toml", source="tree.toml", base_dir=HERE)


def problems(text: str) -> list[hr.ConfigProblem]:
    with pytest.raises(hr.ConfigError) as caught:
        load(text)
    return caught.value.problems


def test_settings_make_a_configured_copy_with_the_same_handlers():
    spec = load("""
        [supervisor]
        [[supervisor.children]]
        id = "echo"
        start = "file_components:echo"
        realm = "files"
        transports = [{ type = "websocket", url = "ws://127.0.0.1:9/ws", serializers = ["cbor"] }]
        extra = { greeting = "hi", prefix = "t" }
        authentication = { ticket = { authid = "svc", ticket = "s3cret" } }
        """)
    import file_components  # noqa: PLC0415 - importable once the file is loaded

    component = spec.children[0].start
    assert isinstance(component, hr.Component)
    assert component is not file_components.echo
    assert component.origin is file_components.echo
    assert component._listeners is file_components.echo._listeners
    assert (component.realm, component.extra) == ("files", {"greeting": "hi", "prefix": "t"})
    assert component.authentication == {"ticket": {"authid": "svc", "ticket": "s3cret"}}
    [transport] = component.transports
    assert transport.serializers == ("cbor",)
    assert file_components.echo.realm == "realm1"  # the original is untouched


def test_the_same_file_twice_builds_equal_specs():
    text = """
        [supervisor]
        [[supervisor.children]]
        id = "echo"
        start = "file_components:echo"
        realm = "files"
        extra = { prefix = "same" }
        """
    assert load(text) == load(text)


def test_a_component_from_a_file_joins_where_the_file_says():
    router = InProcessRouter(realms=["files"])
    spec = loads_tree(
        textwrap.dedent("""
        [supervisor]
        [[supervisor.children]]
        id = "echo"
        start = "file_components:echo"
        realm = "files"
        extra = { greeting = "bonjour", prefix = "filejoin" }
        """),
        "toml",
        base_dir=HERE,
    )
    # A file cannot name a router object: add it in code, over the file's settings.
    component = spec.children[0].start.configured(
        transports={"type": "inprocess", "router": router}
    )
    assert component.realm == "files"
    spec = hr.SupervisorSpec([component.child_spec("echo")])
    with hr.start_tree(spec):
        link = router.join("files", _Peer()).result(TIMEOUT)
        try:
            result = link.handle(Call("filejoin.echo", ["you"], {})).result(TIMEOUT)
            assert result.args == ["bonjour you"]
        finally:
            link.handle(Leave())


class _Peer:
    def deliver(self, message):
        pass


def test_variables_are_read_from_the_environment_and_written_back_as_written(monkeypatch):
    monkeypatch.setenv("HR_TEST_SECRET", "sesame")
    monkeypatch.setenv("HR_TEST_PORT", "8111")
    monkeypatch.delenv("HR_TEST_UNSET", raising=False)
    spec = load("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        realm = "${HR_TEST_UNSET:-fallback}"
        transports = "ws://127.0.0.1:${HR_TEST_PORT}/ws"
        extra = { literal = "$${NOT_A_VAR}" }
        authentication = { ticket = { authid = "svc", ticket = "${HR_TEST_SECRET}" } }
        """)
    component = spec.children[0].start
    assert component.realm == "fallback"
    assert component.transports[0].settings["url"] == "ws://127.0.0.1:8111/ws"
    assert component.extra == {"literal": "${NOT_A_VAR}"}
    assert component.authentication["ticket"]["ticket"] == "sesame"
    text = dumps_tree(spec, "toml")
    assert "sesame" not in text
    assert "${HR_TEST_SECRET}" in text
    assert "${HR_TEST_PORT}" in text
    again = load(text)
    assert again.children[0].start is component  # same settings, same copy


def test_an_unset_variable_names_the_key_and_the_variable(monkeypatch):
    monkeypatch.delenv("HR_TEST_UNSET", raising=False)
    [problem] = problems("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        authentication = { ticket = { authid = "svc", ticket = "${HR_TEST_UNSET}" } }
        """)
    assert problem.key == "supervisor.children[0].authentication.ticket.ticket"
    assert problem.value == "${HR_TEST_UNSET}"
    assert "HR_TEST_UNSET is not set" in problem.rule


def test_a_malformed_variable_is_an_error():
    [problem] = problems("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        realm = "${not a name}"
        """)
    assert problem.key == "supervisor.children[0].realm"
    assert "expected ${NAME}" in problem.rule


def test_component_settings_on_an_actor_are_an_error():
    [problem] = problems("""
        [supervisor]
        [[supervisor.children]]
        id = "w"
        start = "helpers:Worker"
        realm = "realm1"
        """)
    assert problem.key == "supervisor.children[0].realm"
    assert "components only" in problem.rule
    assert "helpers:Worker" in problem.rule


def test_a_bad_transport_is_reported_as_autobahn_reports_it():
    [problem] = problems("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        transports = [{ type = "carrier-pigeon" }]
        """)
    assert problem.key == "supervisor.children[0].transports"
    assert "invalid transport type 'carrier-pigeon'" in problem.rule


def test_a_bad_realm_is_reported():
    [problem] = problems("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        realm = ""
        """)
    assert problem.key == "supervisor.children[0].realm"


def test_top_level_defaults_reach_every_component_but_not_actors(monkeypatch):
    monkeypatch.setenv("HR_TEST_SECRET", "sesame")
    spec = load("""
        [components]
        realm = "shared"
        transports = "ws://127.0.0.1:9/ws"
        authentication = { ticket = { authid = "svc", ticket = "${HR_TEST_SECRET}" } }

        [supervisor]
        [[supervisor.children]]
        id = "w"
        start = "helpers:Worker"

        [[supervisor.children]]
        id = "inner"
        [supervisor.children.supervisor]
        [[supervisor.children.supervisor.children]]
        id = "plain"
        start = "file_components:plain"

        [[supervisor.children]]
        id = "own"
        start = "file_components:plain"
        realm = "mine"
        """)
    inner = spec.children[1].start.children[0].start
    own = spec.children[2].start
    assert inner.realm == "shared"
    assert inner.authentication["ticket"]["ticket"] == "sesame"
    assert own.realm == "mine"
    assert own.transports[0].settings["url"] == "ws://127.0.0.1:9/ws"
    assert spec.children[0].start.__name__ == "Worker"


def test_a_component_without_settings_is_the_object_itself():
    spec = load("""
        [supervisor]
        [[supervisor.children]]
        id = "plain"
        start = "file_components:plain"
        """)
    import file_components  # noqa: PLC0415

    assert spec.children[0].start is file_components.plain
    assert 'start = "file_components:plain"' in dumps_tree(spec, "toml")


def test_a_management_table_is_read_with_the_tree(tmp_path, monkeypatch):
    from hedgerow.node._treeload import read_tree  # noqa: PLC0415

    monkeypatch.setenv("HR_TEST_SECRET", "sesame")
    file = tmp_path / "node.toml"
    file.write_text(
        textwrap.dedent("""
        [management]
        transports = "ws://127.0.0.1:9/ws"
        authentication = { ticket = { authid = "node", ticket = "${HR_TEST_SECRET}" } }
        roles = ["management", "ops"]

        [supervisor]
        name = "shop"
        """)
    )
    tree_file = read_tree(file)
    assert tree_file.spec.name == "shop"
    management = tree_file.management
    assert management is not None
    assert management.roles == ("management", "ops")
    assert management.authentication == {"ticket": {"authid": "node", "ticket": "sesame"}}
    assert hr.load_tree(file) == tree_file.spec


def test_a_bad_management_table_names_the_key():
    [problem] = problems("""
        [management]
        roles = "management"

        [supervisor]
        """)
    assert problem.key == "management.roles"
