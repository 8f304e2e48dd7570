"""Transports: serializers, the transport seam, the in-process router, sessions.

Components (`hedgerow.Component`) talk WAMP through a `Transport`: in process
through `InProcessRouter` (the default), across processes through Crossbar.io
(`WampTransport`: autobahn on an event-loop thread, asyncio by default or
Twisted after `use_framework`;
`Crossbar` runs the router). The WAMP option and detail types are
autobahn's own, re-exported here for convenience.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from autobahn.wamp.exception import ApplicationError
    from autobahn.wamp.types import (
        CallDetails,
        CallOptions,
        CallResult,
        EventDetails,
        PublishOptions,
        RegisterOptions,
        SubscribeOptions,
    )

    from hedgerow.transports._authorization import Principal, load_principals
    from hedgerow.transports._base import (
        Call,
        Closed,
        Event,
        Invocation,
        Leave,
        Link,
        Peer,
        Publish,
        Register,
        Reply,
        Request,
        Result,
        RetryPolicy,
        Subscribe,
        Transport,
        TransportConfig,
        TransportRefused,
        Unregister,
        Unsubscribe,
        join_error_is_permanent,
        register_transport_type,
        resolve_transports,
    )
    from hedgerow.transports._crossbar import Crossbar
    from hedgerow.transports._crossbar_config import node_config
    from hedgerow.transports._framework import (
        FRAMEWORKS,
        ensure_framework,
        selected_framework,
        use_framework,
    )
    from hedgerow.transports._inprocess import InProcessRouter, RouterStatistics, default_router
    from hedgerow.transports._router_config import CrossbarError, RouterConfig, free_port
    from hedgerow.transports._serializers import (
        DEFAULT_SERIALIZERS,
        SERIALIZERS,
        Serializer,
        check_serializers,
        get_serializer,
        negotiate,
    )
    from hedgerow.transports._session import CallFuture, ComponentSession, Owner
    from hedgerow.transports._uri import Invoke, Match
    from hedgerow.transports._wamp import WampTransport
    from hedgerow.transports._wamp_answers import NOT_CONNECTED
    from hedgerow.transports._wamp_link import WampLink
    from hedgerow.transports._wamp_settings import check_transport_settings

__all__ = [
    "DEFAULT_SERIALIZERS",
    "FRAMEWORKS",
    "NOT_CONNECTED",
    "SERIALIZERS",
    "ApplicationError",
    "Call",
    "CallDetails",
    "CallFuture",
    "CallOptions",
    "CallResult",
    "Closed",
    "ComponentSession",
    "Crossbar",
    "CrossbarError",
    "Event",
    "EventDetails",
    "InProcessRouter",
    "Invocation",
    "Invoke",
    "Leave",
    "Link",
    "Match",
    "Owner",
    "Peer",
    "Principal",
    "Publish",
    "PublishOptions",
    "Register",
    "RegisterOptions",
    "Reply",
    "Request",
    "Result",
    "RetryPolicy",
    "RouterConfig",
    "RouterStatistics",
    "Serializer",
    "Subscribe",
    "SubscribeOptions",
    "Transport",
    "TransportConfig",
    "TransportRefused",
    "Unregister",
    "Unsubscribe",
    "WampLink",
    "WampTransport",
    "check_serializers",
    "check_transport_settings",
    "default_router",
    "ensure_framework",
    "free_port",
    "get_serializer",
    "join_error_is_permanent",
    "load_principals",
    "negotiate",
    "node_config",
    "register_transport_type",
    "resolve_transports",
    "selected_framework",
    "use_framework",
]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ApplicationError": "autobahn.wamp.exception",
        "CallDetails": "autobahn.wamp.types",
        "CallOptions": "autobahn.wamp.types",
        "CallResult": "autobahn.wamp.types",
        "EventDetails": "autobahn.wamp.types",
        "PublishOptions": "autobahn.wamp.types",
        "RegisterOptions": "autobahn.wamp.types",
        "SubscribeOptions": "autobahn.wamp.types",
        "Call": "hedgerow.transports._base",
        "Closed": "hedgerow.transports._base",
        "Event": "hedgerow.transports._base",
        "Invocation": "hedgerow.transports._base",
        "Leave": "hedgerow.transports._base",
        "Link": "hedgerow.transports._base",
        "Peer": "hedgerow.transports._base",
        "Publish": "hedgerow.transports._base",
        "Register": "hedgerow.transports._base",
        "Reply": "hedgerow.transports._base",
        "Request": "hedgerow.transports._base",
        "Result": "hedgerow.transports._base",
        "RetryPolicy": "hedgerow.transports._base",
        "Subscribe": "hedgerow.transports._base",
        "Transport": "hedgerow.transports._base",
        "TransportConfig": "hedgerow.transports._base",
        "TransportRefused": "hedgerow.transports._base",
        "join_error_is_permanent": "hedgerow.transports._base",
        "Unregister": "hedgerow.transports._base",
        "Unsubscribe": "hedgerow.transports._base",
        "register_transport_type": "hedgerow.transports._base",
        "resolve_transports": "hedgerow.transports._base",
        "Crossbar": "hedgerow.transports._crossbar",
        "Principal": "hedgerow.transports._authorization",
        "load_principals": "hedgerow.transports._authorization",
        "CrossbarError": "hedgerow.transports._router_config",
        "RouterConfig": "hedgerow.transports._router_config",
        "free_port": "hedgerow.transports._router_config",
        "node_config": "hedgerow.transports._crossbar_config",
        "FRAMEWORKS": "hedgerow.transports._framework",
        "ensure_framework": "hedgerow.transports._framework",
        "selected_framework": "hedgerow.transports._framework",
        "use_framework": "hedgerow.transports._framework",
        "InProcessRouter": "hedgerow.transports._inprocess",
        "RouterStatistics": "hedgerow.transports._inprocess",
        "default_router": "hedgerow.transports._inprocess",
        "DEFAULT_SERIALIZERS": "hedgerow.transports._serializers",
        "SERIALIZERS": "hedgerow.transports._serializers",
        "Serializer": "hedgerow.transports._serializers",
        "check_serializers": "hedgerow.transports._serializers",
        "get_serializer": "hedgerow.transports._serializers",
        "negotiate": "hedgerow.transports._serializers",
        "CallFuture": "hedgerow.transports._session",
        "ComponentSession": "hedgerow.transports._session",
        "Owner": "hedgerow.transports._session",
        "Invoke": "hedgerow.transports._uri",
        "Match": "hedgerow.transports._uri",
        "NOT_CONNECTED": "hedgerow.transports._wamp_answers",
        "WampLink": "hedgerow.transports._wamp_link",
        "WampTransport": "hedgerow.transports._wamp",
        "check_transport_settings": "hedgerow.transports._wamp_settings",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
