"""Transports: serializers, the transport seam, the in-process router, sessions.

Components (`hedgerow.Component`) talk WAMP through a `Transport`: in process
through `InProcessRouter` (the default), across processes through Crossbar.io
(`WampTransport`: autobahn on an event-loop thread, asyncio by default or
Twisted after `use_framework`;
`Crossbar` runs the router). The WAMP option and detail types are
autobahn's own, re-exported here for convenience.
"""

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
    Unregister,
    Unsubscribe,
    register_transport_type,
    resolve_transports,
)
from hedgerow.transports._crossbar import Crossbar
from hedgerow.transports._framework import (
    FRAMEWORKS,
    ensure_framework,
    selected_framework,
    use_framework,
)
from hedgerow.transports._inprocess import InProcessRouter, RouterStatistics, default_router
from hedgerow.transports._router_cli import router as router_command
from hedgerow.transports._router_config import CrossbarError, RouterConfig, free_port, node_config
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
from hedgerow.transports._wamp import NOT_CONNECTED, WampLink, WampTransport
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
    "load_principals",
    "negotiate",
    "node_config",
    "register_transport_type",
    "resolve_transports",
    "router_command",
    "selected_framework",
    "use_framework",
]
