"""`Container`: Crossbar's container modes and management API, called in process."""

from __future__ import annotations

import sys
import uuid

import pytest

import hedgerow as hr
from hedgerow.components._container import Container
from hedgerow.node._treeload import tree_from_data
from hedgerow.node._worker_main import _host
from hedgerow.testing import EventRecorder

TIMEOUT = 10.0

ACTORS = """
import hedgerow as hr


class Greeter(hr.Actor):
    def on_receive(self, message):
        if message == "crash":
            raise RuntimeError("asked to crash")
        if message == "exit":
            self.stop()
            return None
        return GREETING + " " + message


GREETING = "hello"
"""


@pytest.fixture
def actors(tmp_path, monkeypatch):
    """A fresh module of actors on sys.path; returns its name and its file."""
    name = f"container_actors_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.py"
    path.write_text(ACTORS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, path
    sys.modules.pop(name, None)


def greeter(module: str, **config):
    return {"start": f"{module}:Greeter", **config}


def ask(container: Container, component_id: str, message: str):
    return container.tree.lookup(f"{container.name}/{component_id}").ask(message, timeout=TIMEOUT)


def recorded(container: Container) -> EventRecorder:
    return EventRecorder(container.events)


def test_components_from_configs_and_their_information(actors):
    module, _ = actors
    with Container({"a": greeter(module), "b": greeter(module)}, name="c") as container:
        assert container.get_components() == ["a", "b"]
        assert ask(container, "a", "you") == "hello you"
        info = container.get_component("a")
        assert info["id"] == "a"
        assert info["config"] == greeter(module)
        assert info["state"] == "running"
        assert (info["incarnation"], info["restarts"]) == (1, 0)
        assert info["started"].endswith("+00:00")
        assert info["uptime"] >= 0


def test_start_stop_and_restart_component(actors):
    module, _ = actors
    with Container(name="c") as container:
        started = container.start_component("g", greeter(module))
        assert started["id"] == "g"
        assert started["config"] == greeter(module)
        assert container.get_components() == ["g"]
        assert ask(container, "g", "there") == "hello there"

        restarted = container.restart_component("g")
        assert restarted["stopped"]["component_id"] == "g"
        assert restarted["started"]["id"] == "g"
        assert ask(container, "g", "again") == "hello again"

        stopped = container.stop_component("g")
        assert stopped["component_id"] == "g"
        assert stopped["uptime"] >= 0
        assert container.get_components() == []
        with pytest.raises(hr.ChildNotFound):
            container.get_component("g")
        # The same id can be used again once stopped.
        container.start_component("g", greeter(module))
        assert container.get_components() == ["g"]


def test_errors_name_what_is_wrong(actors):
    module, _ = actors
    with Container({"g": greeter(module)}, name="c") as container:
        with pytest.raises(hr.AlreadyStarted):
            container.start_component("g", greeter(module))
        with pytest.raises(hr.ChildNotFound):
            container.stop_component("nope")
        with pytest.raises(hr.ChildNotFound):
            container.restart_component("nope")
        with pytest.raises(hr.ConfigError) as caught:
            container.start_component("bad", {"start": f"{module}:Greeter", "restart": "often"})
        [problem] = caught.value.problems
        assert problem.key == "components.bad.restart"
        with pytest.raises(hr.ConfigError) as caught:
            container.start_component("bad", {"start": "no_such_module_here:Thing"})
        assert "cannot import module 'no_such_module_here'" in str(caught.value)
        with pytest.raises(hr.ConfigError) as caught:
            container.start_component("bad", {"start": f"{module}:Greeter", "colour": "red"})
        assert caught.value.problems[0].key == "components.bad.colour"
        assert container.get_components() == ["g"]  # nothing running was harmed
        assert ask(container, "g", "still") == "hello still"


def test_a_component_config_with_a_worker_table_is_refused(actors):
    """A container starts components; a worker process is declared in a tree file."""
    module, _ = actors
    with Container({"g": greeter(module)}, name="c") as container:
        with pytest.raises(hr.ConfigError) as caught:
            container.start_component("w", {"worker": {"components": []}})
        [problem] = caught.value.problems
        assert problem.key == "components.w.worker"
        assert "hedgerow.load_tree" in problem.rule
        assert container.get_components() == ["g"]


def test_restart_never_drops_a_crashed_component(actors):
    module, _ = actors
    with Container({"g": greeter(module)}, name="c", restart="restart-never") as container:
        recorder = recorded(container)
        container.tree.lookup("c/g").tell("crash")
        recorder.wait_for("failed", "c/g")
        assert container.get_components() == []


def test_restart_failed_restarts_after_a_crash_not_after_a_normal_exit(actors):
    module, _ = actors
    with Container({"g": greeter(module)}, name="c", restart="restart-on-failed") as container:
        recorder = recorded(container)
        container.tree.lookup("c/g").tell("crash")
        recorder.wait_for("restarted", "c/g")
        assert container.get_component("g")["restarts"] == 1
        container.tree.lookup("c/g").tell("exit")
        recorder.wait_for("stopped", "c/g")
        assert container.get_components() == []
        container.start_component("g", greeter(module))  # the kept spec is replaced
        assert container.get_components() == ["g"]


def test_restart_always_restarts_after_a_normal_exit(actors):
    module, _ = actors
    with Container({"g": greeter(module)}, name="c", restart="restart-always") as container:
        recorder = recorded(container)
        container.tree.lookup("c/g").tell("exit")
        recorder.wait_for("restarted", "c/g")
        assert container.get_components() == ["g"]


def test_shutdown_on_last_component_stopped(actors):
    module, _ = actors
    container = Container(
        {"a": greeter(module), "b": greeter(module)},
        name="c",
        shutdown="shutdown-on-last-component-stopped",
    ).start()
    try:
        container.stop_component("a")  # ordered by the container: never triggers it
        assert not container.done
        container.tree.lookup("c/b").tell("exit")
        reason = container.wait(TIMEOUT)
        assert isinstance(reason, hr.Shutdown)
    finally:
        if not container.done:
            container.stop(TIMEOUT)


def test_shutdown_on_any_component_failed(actors):
    module, _ = actors
    container = Container(
        {"a": greeter(module), "b": greeter(module)},
        name="c",
        restart="restart-failed",
        shutdown="shutdown-on-any-component-failed",
    ).start()
    try:
        container.tree.lookup("c/a").tell("crash")
        assert isinstance(container.wait(TIMEOUT), hr.Shutdown)
    finally:
        if not container.done:
            container.stop(TIMEOUT)


def test_restart_always_with_a_shutdown_mode_is_refused():
    with pytest.raises(hr.SpecError) as caught:
        Container(restart="restart-always", shutdown="shutdown-on-any-component-stopped")
    assert "restart-always" in str(caught.value)


def test_shutdown_returns_what_was_running_and_ends_the_container(actors):
    module, _ = actors
    container = Container({"a": greeter(module), "b": greeter(module)}, name="c").start()
    assert container.shutdown() == ["a", "b"]
    assert container.wait(TIMEOUT) == hr.SHUTDOWN
    assert container.done


def test_reload_modules_brings_a_component_back_with_its_new_code(actors):
    module, path = actors
    with Container({"g": greeter(module)}, name="c") as container:
        assert ask(container, "g", "you") == "hello you"
        path.write_text(ACTORS.replace('GREETING = "hello"', 'GREETING = "howdy"'))
        restarted = container.restart_component("g")  # without reload: old code
        assert ask(container, "g", "you") == "hello you"
        restarted = container.restart_component("g", reload_modules=True)
        assert restarted["started"]["reloaded"] == [module]
        assert ask(container, "g", "you") == "howdy you"
        # Unchanged since: nothing is reloaded.
        assert container.restart_component("g", True)["started"]["reloaded"] == []


def test_reload_sees_an_edit_that_keeps_size_and_second(actors):
    module, path = actors
    with Container({"g": greeter(module)}, name="c") as container:
        stat = path.stat()
        path.write_text(ACTORS.replace('"hello"', '"HELLO"'))  # same size
        import os  # noqa: PLC0415

        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime
        container.restart_component("g", reload_modules=True)
        assert ask(container, "g", "you") == "HELLO you"


def test_a_container_from_specs(actors):
    module, _ = actors
    import importlib  # noqa: PLC0415

    greeter_class = importlib.import_module(module).Greeter
    with Container([hr.ChildSpec("g", greeter_class)], name="c") as container:
        assert container.get_components() == ["g"]
        assert container.get_component("g")["config"] == {"start": f"{module}:Greeter"}


def test_calls_before_start_are_an_error():
    container = Container(name="c")
    with pytest.raises(RuntimeError, match="has not started"):
        container.get_components()


def test_management_procedures_turn_errors_into_wamp_errors(actors):
    from hedgerow.transports import ApplicationError  # noqa: PLC0415

    module, _ = actors
    with Container({"g": greeter(module)}, name="c") as container:
        procedures = container.procedures()
        assert set(procedures) == {
            "start_component",
            "stop_component",
            "restart_component",
            "get_component",
            "get_components",
            "shutdown",
        }
        with pytest.raises(ApplicationError) as caught:
            procedures["get_component"]("nope")
        assert caught.value.error == "hedgerow.error.no_such_object"
        with pytest.raises(ApplicationError) as caught:
            procedures["start_component"]("g", greeter(module))
        assert caught.value.error == "hedgerow.error.already_running"
        with pytest.raises(ApplicationError) as caught:
            procedures["start_component"]("x", {"start": 3})
        assert caught.value.error == "hedgerow.error.invalid_configuration"
        assert procedures["get_components"]() == ["g"]


def test_the_container_restart_mode_is_the_default_of_each_component(actors):
    module, _ = actors
    container = Container(
        {"g": greeter(module), "h": greeter(module, restart="always")},
        name="c",
        restart="restart-failed",
        shutdown="shutdown-on-last-component-stopped",
    )
    g, h = container.spec.children
    assert (g.restart, g.significant) == (hr.Restart.FAILED, True)
    assert (h.restart, h.significant) == (hr.Restart.ALWAYS, False)


# -- the management API over a transport -------------------------------------------


class _Peer:
    def __init__(self):
        self.events = []

    def deliver(self, message):
        self.events.append(message)


def _join(router, role=None):
    authentication = {"anonymous": {"authrole": role}} if role else None
    return router.join("realm1", _Peer(), authentication=authentication).result(TIMEOUT)


def _call(link, uri, *args):
    from hedgerow.transports import Call  # noqa: PLC0415

    result = link.handle(Call(uri, list(args), {})).result(TIMEOUT)
    return result.args[0] if result.args else None


def test_the_management_api_is_served_to_the_management_role_only(actors):
    from hedgerow.transports import ApplicationError, InProcessRouter  # noqa: PLC0415

    module, _ = actors
    router = InProcessRouter()
    management = {"transports": {"type": "inprocess", "router": router}}
    with Container({"g": greeter(module)}, name="shop", management=management) as container:
        operator = _join(router, "management")
        prefix = "hedgerow.container.shop"
        assert _call(operator, f"{prefix}.get_components") == ["g"]
        started = _call(operator, f"{prefix}.start_component", "h", greeter(module))
        assert started["id"] == "h"
        assert ask(container, "h", "wire") == "hello wire"
        info = _call(operator, f"{prefix}.get_component", "h")
        assert (info["state"], info["config"]) == ("running", greeter(module))
        restarted = _call(operator, f"{prefix}.restart_component", "h")
        assert restarted["stopped"]["component_id"] == "h"
        assert _call(operator, f"{prefix}.stop_component", "h")["component_id"] == "h"
        with pytest.raises(ApplicationError) as caught:
            _call(operator, f"{prefix}.stop_component", "h")
        assert caught.value.error == "hedgerow.error.no_such_object"

        stranger = _join(router)  # role "trusted": not a management role
        with pytest.raises(ApplicationError) as caught:
            _call(stranger, f"{prefix}.get_components")
        assert caught.value.error == "wamp.error.not_authorized"
        assert "'trusted'" in str(caught.value.args[0])
        with pytest.raises(ApplicationError):
            _call(stranger, f"{prefix}.shutdown")
        assert container.get_components() == ["g"]

        assert _call(operator, f"{prefix}.shutdown") == ["g"]
        assert container.wait(TIMEOUT) == hr.SHUTDOWN
    assert router.statistics().registrations.get("realm1", {}) == {}


def test_a_worker_tables_backoff_defaults_reach_the_container_in_the_worker(actors):
    """A worker table's backoff settings travel with its container to the worker process."""
    module, _ = actors
    node = tree_from_data(
        {
            "supervisor": {
                "children": [
                    {
                        "id": "w",
                        "worker": {
                            "backoff": True,
                            "retry_delay_jitter": 0,
                            "components": [{"id": "g", **greeter(module)}],
                        },
                    }
                ]
            }
        }
    )
    worker = node.children[0].start
    assert worker.container.backoff is True
    config = {"name": "w", "container": worker.container_data, "management": worker.management}
    container = _host(config, hr.EventStream())
    try:
        settings = container.spec.backoff_for(container.spec.children[0])
        assert settings is not None
        assert (settings.initial_retry_delay, settings.retry_delay_jitter) == (1.5, 0)
    finally:
        container.stop()
