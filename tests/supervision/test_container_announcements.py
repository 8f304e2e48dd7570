"""A container's announcements (``on_component_started`` ...) carry no secrets and go to
the management role only."""

from __future__ import annotations

import sys
import threading
import uuid

import pytest

from hedgerow.components._container import Container
from hedgerow.transports import Call, InProcessRouter, Subscribe, SubscribeOptions

TIMEOUT = 10.0
REDACTED = "<redacted>"
PREFIX = "hedgerow.container.shop"

MODULE = """
import hedgerow as hr

svc = hr.Component(name="svc")
"""


@pytest.fixture
def component(tmp_path, monkeypatch):
    """A module with a component on the process's in-process router; its ``start``."""
    name = f"announced_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield f"{name}:svc"
    sys.modules.pop(name, None)


class _Peer:
    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def deliver(self, message):
        with self.cond:
            self.events.append(message)
            self.cond.notify_all()

    def wait_for(self, topic):
        with self.cond:
            assert self.cond.wait_for(
                lambda: any(e.topic == topic for e in self.events), TIMEOUT
            ), self.events
            return next(e for e in self.events if e.topic == topic)


def _join(router, role):
    peer = _Peer()
    link = router.join("realm1", peer, authentication={"anonymous": {"authrole": role}}).result(
        TIMEOUT
    )
    link.handle(Subscribe(f"{PREFIX}.", SubscribeOptions(match="prefix"))).result(TIMEOUT)
    return link, peer


def test_announcements_hide_secrets_and_reach_the_management_role_only(component, monkeypatch):
    monkeypatch.setenv("HR_TEST_TOKEN", "token-from-the-environment")
    router = InProcessRouter()
    management = {"transports": {"type": "inprocess", "router": router}}
    with Container({}, name="shop", management=management):
        operator, seen = _join(router, "management")
        _stranger, overheard = _join(router, "hedgerow")
        config = {
            "start": component,
            "authentication": {"ticket": {"authid": "svc", "ticket": "s3cret-ticket"}},
            "extra": {"token": "${HR_TEST_TOKEN}", "colour": "green"},
        }
        started = operator.handle(Call(f"{PREFIX}.start_component", ["s", config])).result(TIMEOUT)
        assert started.args[0]["config"] == config  # the caller gets its own config back
        operator.handle(Call(f"{PREFIX}.stop_component", ["s"])).result(TIMEOUT)

        event = seen.wait_for(f"{PREFIX}.on_component_started")
        # Published before on_component_stopped, by the same session: delivered by now.
        seen.wait_for(f"{PREFIX}.on_component_stopped")
        announced = event.args[0]["config"]
        assert announced["authentication"] == {"ticket": {"authid": "svc", "ticket": REDACTED}}
        assert announced["extra"] == {"token": REDACTED, "colour": "green"}
        assert "s3cret" not in repr(event.args)
        assert overheard.events == []


def test_redaction_keeps_the_shape_and_hides_every_secret():
    from hedgerow.components._container import redacted  # noqa: PLC0415

    config = {
        "start": "m:c",
        "authentication": {
            "wampcra": {"authid": "svc", "secret": "x", "salt": "y"},
            "ticket": "odd",
        },
        "kwargs": {"urls": ["ws://a", "${URL}"], "n": 3},
        "nested": {"authentication": {"ticket": {"authid": "${WHO}", "ticket": "t"}}},
    }
    assert redacted({"config": config}) == {
        "config": {
            "start": "m:c",
            "authentication": {
                "wampcra": {"authid": "svc", "secret": REDACTED, "salt": REDACTED},
                "ticket": REDACTED,
            },
            "kwargs": {"urls": ["ws://a", REDACTED], "n": 3},
            "nested": {"authentication": {"ticket": {"authid": REDACTED, "ticket": REDACTED}}},
        }
    }


def test_get_component_over_wamp_hides_secrets_the_python_call_keeps_them(component):
    """A management client reading a component (``hedgerow status``, a dashboard) sees its
    config's shape but no secret; the owning process still has the config as given."""
    router = InProcessRouter()
    management = {"transports": {"type": "inprocess", "router": router}}
    config = {
        "start": component,
        "authentication": {"ticket": {"authid": "svc", "ticket": "s3cret-ticket"}},
    }
    with Container({"s": config}, name="shop", management=management) as container:
        operator, _seen = _join(router, "management")
        answer = operator.handle(Call(f"{PREFIX}.get_component", ["s"])).result(TIMEOUT)
        shown = answer.args[0]["config"]
        assert shown["authentication"] == {"ticket": {"authid": "svc", "ticket": REDACTED}}
        assert "s3cret" not in repr(answer.args)
        assert container.get_component("s")["config"] == config
