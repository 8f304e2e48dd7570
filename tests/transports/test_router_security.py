"""What the routers `hedgerow router` configures let each role do, through a real Crossbar.io.

Nobody but the management role may register, subscribe, call or publish
anything that can match a ``hedgerow.`` URI (exact, prefix, wildcard, the
empty prefix), anonymous clients included; each principal registers only
under its own URI prefixes, and nobody else may take those names.
"""

from __future__ import annotations

import collections
import os
import socket
import sys
import threading
import uuid
from pathlib import Path

import pytest
from autobahn.wamp.types import PublishOptions
from transports.wamp_router import SECRET, router_config, start_router, takeover

import hedgerow as hr
from hedgerow import StartError
from hedgerow.components import Component
from hedgerow.components._container import Container
from hedgerow.transports import (
    ApplicationError,
    Call,
    Crossbar,
    Event,
    Leave,
    Publish,
    Register,
    RegisterOptions,
    Subscribe,
    SubscribeOptions,
    WampTransport,
)
from hedgerow.transports._authorization import Principal

pytestmark = pytest.mark.timeout(120)

HERE = Path(__file__).resolve().parent
TIMEOUT = 20.0
MANAGEMENT_SECRET = "management-test-secret"  # noqa: S105 - a test router's secrets
ONE_SECRET = "node-one-secret"  # noqa: S105
TWO_SECRET = "node-two-secret"  # noqa: S105
NOT_AUTHORIZED = "wamp.error.not_authorized"


class _Peer:
    def __init__(self):
        self.messages = []
        self.cond = threading.Condition()

    def deliver(self, message):
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def events(self):
        return [m for m in self.messages if isinstance(m, Event)]


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    previous = os.environ.get("HR_TEST_MANAGEMENT_SECRET")
    os.environ["HR_TEST_MANAGEMENT_SECRET"] = MANAGEMENT_SECRET
    router = start_router(
        tmp_path_factory.mktemp("security-router"),
        anonymous=True,
        management_secret_env="HR_TEST_MANAGEMENT_SECRET",  # noqa: S106 - a variable's name
    )
    try:
        yield router
    finally:
        router.close()
        if previous is None:
            os.environ.pop("HR_TEST_MANAGEMENT_SECRET", None)


def _join(router, authid=None, secret=None):
    authentication = {"ticket": {"authid": authid, "ticket": secret}} if authid else None
    return (
        WampTransport(router.config.websocket_url)
        .join("realm1", _Peer(), authentication=authentication)
        .result(TIMEOUT)
    )


@pytest.fixture(params=["application", "anonymous"])
def outsider(router, request):
    """A session of a role that is not management: the shared principal's, or anonymous."""
    link = _join(router, "hedgerow", SECRET) if request.param == "application" else _join(router)
    yield link
    link.handle(Leave()).result(TIMEOUT)


@pytest.fixture
def operator(router):
    link = _join(router, "management", MANAGEMENT_SECRET)
    yield link
    link.handle(Leave()).result(TIMEOUT)


def _refused(link, request):
    with pytest.raises(ApplicationError) as caught:
        link.handle(request).result(TIMEOUT)
    return caught.value.error


IMPOSTORS = [
    ("exact", "hedgerow.node.shop.get_tree"),
    ("prefix", "hedgerow.node"),
    ("prefix", "hedgerow."),
    ("prefix", "hedgerow"),
    ("prefix", "hedge"),
    ("prefix", ""),
    ("wildcard", "hedgerow.node..get_tree"),
    ("wildcard", "..shop.get_tree"),
    ("wildcard", ".node.shop.get_tree"),
]


@pytest.mark.parametrize(("match", "uri"), IMPOSTORS)
def test_no_role_but_management_may_register_what_can_match_a_management_uri(outsider, match, uri):
    options = RegisterOptions(match=match) if match != "exact" else None
    assert _refused(outsider, Register(uri, options)) == NOT_AUTHORIZED


@pytest.mark.parametrize(("match", "uri"), IMPOSTORS)
def test_no_role_but_management_may_subscribe_to_what_can_match_a_management_uri(
    outsider, match, uri
):
    options = SubscribeOptions(match=match) if match != "exact" else None
    assert _refused(outsider, Subscribe(uri, options)) == NOT_AUTHORIZED


def test_announcements_cannot_be_subscribed_to_by_the_application_role(outsider):
    topic = "hedgerow.node.shop.worker.w1.on_component_started"
    assert _refused(outsider, Subscribe(topic)) == NOT_AUTHORIZED
    pattern = SubscribeOptions(match="wildcard")
    assert _refused(outsider, Subscribe("hedgerow.node..worker..on_component_started", pattern))
    publish = Publish(topic, [{"id": "fake"}], {}, PublishOptions(acknowledge=True))
    assert _refused(outsider, publish) == NOT_AUTHORIZED
    assert _refused(outsider, Call("hedgerow.node.shop.get_tree")) == NOT_AUTHORIZED


@pytest.mark.parametrize(
    ("match", "uri"),
    [
        ("exact", "com.example.add"),
        ("exact", "hedgerowx.add"),
        ("prefix", "com.example."),
        ("prefix", "hedgerowx"),
        ("wildcard", "com..add"),
    ],
)
def test_other_names_stay_open_to_the_application_role(outsider, match, uri):
    register = RegisterOptions(match=match) if match != "exact" else None
    subscribe = SubscribeOptions(match=match) if match != "exact" else None
    assert outsider.handle(Register(uri, register)).result(TIMEOUT)
    assert outsider.handle(Subscribe(uri, subscribe)).result(TIMEOUT)


@pytest.mark.parametrize(
    ("match", "uri"),
    [
        ("exact", "hedgerow.node.shop.get_tree"),
        ("prefix", "hedgerow.node"),
        ("wildcard", "hedgerow.node..get_tree"),
    ],
)
def test_the_management_role_may_register_and_subscribe_there(operator, match, uri):
    register = RegisterOptions(match=match) if match != "exact" else None
    subscribe = SubscribeOptions(match=match) if match != "exact" else None
    assert operator.handle(Subscribe(uri, subscribe)).result(TIMEOUT)
    assert operator.handle(Register(uri, register)).result(TIMEOUT)
    assert operator.handle(Subscribe("", SubscribeOptions(match="prefix"))).result(TIMEOUT)


# -- principals with names of their own ----------------------------------------------


@pytest.fixture(scope="module")
def owned_router(tmp_path_factory):
    directory = tmp_path_factory.mktemp("principals-router")
    (directory / "two.secret").write_text(TWO_SECRET + "\n")
    previous = os.environ.get("HR_TEST_ONE_SECRET")
    os.environ["HR_TEST_ONE_SECRET"] = ONE_SECRET
    principals = (
        Principal("one", ("com.example.one",), secret_env="HR_TEST_ONE_SECRET"),  # noqa: S106
        Principal("two", ("com.example.two", "org.two"), secret_file=directory / "two.secret"),
    )
    router = start_router(directory, anonymous=True, principals=principals)
    try:
        yield router
    finally:
        router.close()
        if previous is None:
            os.environ.pop("HR_TEST_ONE_SECRET", None)


@pytest.fixture
def sessions(owned_router):
    made = {
        "one": _join(owned_router, "one", ONE_SECRET),
        "two": _join(owned_router, "two", TWO_SECRET),
        "shared": _join(owned_router, "hedgerow", SECRET),
        "anonymous": _join(owned_router),
    }
    yield made
    for link in made.values():
        link.handle(Leave()).result(TIMEOUT)


@pytest.mark.parametrize(
    ("match", "uri"),
    [
        ("exact", "com.example.one.add"),
        ("prefix", "com.example.one."),
        ("prefix", "com.example.one"),
        ("prefix", "com.example"),
        ("prefix", ""),
        ("wildcard", "com.example..add"),
        ("wildcard", "..add"),
    ],
)
@pytest.mark.parametrize("who", ["two", "shared", "anonymous"])
def test_nobody_else_may_register_a_principals_names(sessions, who, match, uri):
    options = RegisterOptions(match=match) if match != "exact" else None
    assert _refused(sessions[who], Register(uri, options)) == NOT_AUTHORIZED


def test_a_principal_registers_under_its_prefixes_and_the_others_call_it(sessions, owned_router):
    one, two = sessions["one"], sessions["two"]
    assert one.handle(Register("com.example.one.add")).result(TIMEOUT)
    assert one.handle(Register("com.example.one.", RegisterOptions(match="prefix"))).result(TIMEOUT)
    assert one.handle(Register("com.example.one..x", RegisterOptions(match="wildcard"))).result(
        TIMEOUT
    )
    assert two.handle(Register("org.two.add")).result(TIMEOUT)
    # It registers nowhere else: not in the open, not in a namespace that contains its own.
    assert _refused(one, Register("com.example.elsewhere")) == NOT_AUTHORIZED
    assert _refused(one, Register("com.example", RegisterOptions(match="prefix")))
    # Others call and subscribe there, but only the owner publishes.
    assert two.handle(Subscribe("com.example.one.added")).result(TIMEOUT)
    acknowledged = PublishOptions(acknowledge=True)
    assert _refused(two, Publish("com.example.one.added", [], {}, acknowledged)) == NOT_AUTHORIZED
    assert one.handle(Publish("com.example.one.added", [1], {}, acknowledged)).result(TIMEOUT)
    # Nor may they kick its registration out and take it (autobahn's force_reregister).
    url = owned_router.config.websocket_url
    for credentials in (["two", TWO_SECRET], ["hedgerow", SECRET], []):
        assert takeover(url, "com.example.one.add", *credentials) == {"error": NOT_AUTHORIZED}
    # The shared principal keeps the names nobody owns.
    assert sessions["shared"].handle(Register("com.example.elsewhere")).result(TIMEOUT)


def test_a_component_cannot_take_another_components_procedure(owned_router):
    url = owned_router.config.websocket_url
    impostor = Component(
        transports=url,
        authentication={"ticket": {"authid": "two", "ticket": TWO_SECRET}},
        name="impostor",
    )
    impostor.register("com.example.one.add")(lambda a, b: 0)
    with pytest.raises(StartError) as caught:
        hr.run([impostor], log_level=None)
    assert 'not authorized to register procedure "com.example.one.add"' in str(caught.value)

    owner = Component(
        transports=url,
        authentication={"ticket": {"authid": "one", "ticket": ONE_SECRET}},
        name="owner",
    )
    owner.register("com.example.one.add")(lambda a, b: a + b)
    answers = []

    @owner.on_ready
    def ready(session):
        answers.append(session.call("com.example.one.add", 2, 3).get(timeout=TIMEOUT))
        session.leave()

    hr.run([owner], log_level=None)
    assert answers == [5]


# -- announcements through the router ------------------------------------------------

MODULE = """
import hedgerow as hr

svc = hr.Component(name="svc")
"""


def test_announcements_reach_the_management_role_secrets_redacted(router, tmp_path, monkeypatch):
    name = f"announced_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HR_TEST_TOKEN", "token-from-the-environment")
    management = {
        "transports": router.config.websocket_url,
        "authentication": {"ticket": {"authid": "management", "ticket": MANAGEMENT_SECRET}},
    }
    operator = _join(router, "management", MANAGEMENT_SECRET)
    try:
        with Container({}, name="shop", management=management):
            prefix = "hedgerow.container.shop"
            operator.handle(Subscribe(f"{prefix}.", SubscribeOptions(match="prefix"))).result(
                TIMEOUT
            )
            config = {
                "start": f"{name}:svc",
                "authentication": {"ticket": {"authid": "svc", "ticket": "s3cret-ticket"}},
                "extra": {"token": "${HR_TEST_TOKEN}"},
            }
            call = Call(f"{prefix}.start_component", ["s", config])
            assert operator.handle(call).result(TIMEOUT).args[0]["id"] == "s"
            peer = operator.peer
            with peer.cond:
                assert peer.cond.wait_for(peer.events, TIMEOUT)
            (event,) = peer.events()
            assert event.topic == f"{prefix}.on_component_started"
            announced = event.args[0]["config"]
            assert announced["authentication"]["ticket"] == {
                "authid": "svc",
                "ticket": "<redacted>",
            }
            assert announced["extra"] == {"token": "<redacted>"}
    finally:
        operator.handle(Leave()).result(TIMEOUT)
    sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("procedure", "argument"),
    [
        ("wamp.session.list", None),
        ("wamp.session.get", "operator"),
        ("wamp.registration.list", None),
        ("wamp.registration.lookup", "hedgerow.node.shop.get_tree"),
        ("wamp.registration.match", "hedgerow.node.shop.get_tree"),
        ("wamp.subscription.list", None),
        ("wamp.subscription.match", "hedgerow.node.shop.on_component_started"),
    ],
)
def test_crossbars_meta_api_tells_other_roles_nothing(outsider, operator, procedure, argument):
    """Who is connected (authid, role, address) and what management has registered."""
    operator.handle(Register("hedgerow.node.shop.get_tree")).result(TIMEOUT)
    args = [] if argument is None else [operator.session_id if argument == "operator" else argument]
    assert _refused(outsider, Call(procedure, args)) == NOT_AUTHORIZED
    assert operator.handle(Call(procedure, args)).result(TIMEOUT)


@pytest.mark.parametrize(
    ("match", "topic"),
    [
        ("exact", "wamp.session.on_join"),
        ("exact", "wamp.registration.on_create"),
        ("exact", "wamp.subscription.on_subscribe"),
        ("prefix", "wamp."),
        ("wildcard", "wamp.registration.on_register"),
    ],
)
def test_crossbars_meta_events_reach_no_other_role(outsider, match, topic):
    options = SubscribeOptions(match=match) if match != "exact" else None
    assert _refused(outsider, Subscribe(topic, options)) == NOT_AUTHORIZED


def test_a_testament_is_a_sessions_own_and_authorized_as_a_publication(router, operator):
    """wamp.session.add_testament stays open: what it publishes is judged as a publish is."""
    peer = operator.peer
    operator.handle(Subscribe("hedgerow.node.shop.on_component_started")).result(TIMEOUT)
    operator.handle(Subscribe("com.example.testament")).result(TIMEOUT)
    link = _join(router, "hedgerow", SECRET)
    for topic in ("hedgerow.node.shop.on_component_started", "com.example.testament"):
        assert link.handle(Call("wamp.session.add_testament", [topic, ["spoof"], {}])).result(
            TIMEOUT
        )
    link.handle(Leave()).result(TIMEOUT)
    with peer.cond:
        assert peer.cond.wait_for(peer.events, TIMEOUT)
    assert [(e.topic, e.args) for e in peer.events()] == [("com.example.testament", ["spoof"])]


@pytest.mark.parametrize(
    ("procedure", "argument"),
    [
        ("wamp.session.kill_by_authrole", "management"),
        ("wamp.session.kill_by_authid", "management"),
        ("wamp.session.kill", None),
    ],
)
def test_no_role_but_management_may_evict_other_sessions(outsider, operator, procedure, argument):
    target = argument if argument is not None else operator.session_id
    assert _refused(outsider, Call(procedure, [target])) == NOT_AUTHORIZED
    assert operator.is_open
    assert operator.handle(Subscribe("hedgerow.probe")).result(TIMEOUT)


# -- secrets in crossbar's output ------------------------------------------------------


def test_crossbars_debug_output_shows_no_secret(tmp_path, monkeypatch):
    """At debug level crossbar logs each secret it reads, and the ticket it expected from
    a client that offered a wrong one: a stranger could have them written to the log."""
    monkeypatch.setenv("HR_TEST_MANAGEMENT_SECRET", MANAGEMENT_SECRET)
    monkeypatch.setenv("HR_TEST_ONE_SECRET", ONE_SECRET)
    config = router_config(
        tmp_path,
        management_secret_env="HR_TEST_MANAGEMENT_SECRET",  # noqa: S106 - a variable's name
        principals=[Principal("one", ("com.example.one",), secret_env="HR_TEST_ONE_SECRET")],  # noqa: S106
    )
    router = Crossbar(config, cbdir=tmp_path / "node", loglevel="debug")
    router._output = collections.deque()  # all of it, not the last lines alone
    router.start()
    try:
        for authid in ("management", "one", "hedgerow"):
            with pytest.raises(ApplicationError):
                _join(router, authid, "a-wrong-ticket")
        _join(router, "one", ONE_SECRET).handle(Leave()).result(TIMEOUT)
    finally:
        router.stop()
    output = "\n".join(router.output)
    assert "a-wrong-ticket" in output  # crossbar did log the failed attempts ...
    for secret in (SECRET, MANAGEMENT_SECRET, ONE_SECRET):
        assert secret not in output  # ... but not what it expected
    assert "<redacted>" in output


# -- browsers ----------------------------------------------------------------------------


def _handshake(router, origin):
    """The status line a WebSocket opening handshake gets, with `origin` (None: no header)."""
    port = router.config.websocket_port
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n"
        + (f"Origin: {origin}\r\n" if origin else "")
        + "\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        return sock.recv(4096).split(b"\r\n", 1)[0].decode()


def test_no_web_page_in_a_browser_on_this_host_can_join_the_router(router):
    """Browsers let any page open a WebSocket to 127.0.0.1 and send its own Origin; with
    --anonymous that page would join. Clients without an Origin (not browsers) join."""
    for origin in ("http://evil.example", f"http://127.0.0.1:{router.config.websocket_port}"):
        assert "connection denied: origin" in _handshake(router, origin)
    assert " 101 " not in _handshake(router, "null")  # sandboxed frames, files
    assert " 101 " in _handshake(router, None)
