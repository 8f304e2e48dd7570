"""What the routers `hedgerow router` configures let each role do, through a real Crossbar.io.

Nobody but the management role may register, subscribe, call or publish
anything that can match a ``hedgerow.`` URI (exact, prefix, wildcard, the
empty prefix), anonymous clients included; each principal registers only
under its own URI prefixes, and nobody else may take those names.
"""

from __future__ import annotations

import os

import pytest
from autobahn.wamp.types import PublishOptions
from transports.wamp_router import SECRET, start_router

from hedgerow.transports import (
    ApplicationError,
    Call,
    Leave,
    Publish,
    Register,
    RegisterOptions,
    Subscribe,
    SubscribeOptions,
    WampTransport,
)

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 20.0
MANAGEMENT_SECRET = "management-test-secret"  # noqa: S105 - a test router's secrets
ONE_SECRET = "node-one-secret"  # noqa: S105
TWO_SECRET = "node-two-secret"  # noqa: S105
NOT_AUTHORIZED = "wamp.error.not_authorized"


class _Peer:
    def __init__(self):
        self.messages = []

    def deliver(self, message):
        self.messages.append(message)


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
