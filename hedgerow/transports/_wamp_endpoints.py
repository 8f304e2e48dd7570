"""The endpoints a `WampLink` registers with autobahn for its session's procedures.

autobahn calls a registration's endpoint on the loop, as it reads an
INVOCATION. The endpoint runs the procedure at once if the link's peer can
(``invoke_now``: an idle async component on this loop), else delivers an
`Invocation` to the peer and answers autobahn with a future that the peer's
`WampReply` settles.

Only what needs the call's details asks autobahn for them (a `CallDetails`
made for every call): a procedure that takes them (``details_arg``), which may
also send progressive results, and a prefix or wildcard registration, whose
invocations name the procedure called. Any other endpoint knows its procedure
and, once registered, its registration id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hedgerow.transports._base import NOT_AT_ONCE, Invocation
from hedgerow.transports._wamp_answers import WampReply

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow.transports._base import Peer
    from hedgerow.transports._event_loop import EventLoop


class _Link(Protocol):
    """What an endpoint uses of its `hedgerow.transports._wamp_link.WampLink`."""

    loop: EventLoop
    peer: Peer
    session: Any
    session_id: int


__all__ = ["DETAILS", "detailed_endpoint", "plain_endpoint"]

DETAILS = "_hedgerow_details"
"""The keyword a detailed endpoint has autobahn pass the call's `CallDetails` as."""


def detailed_endpoint(link: _Link, procedure: str) -> Callable[..., Any]:
    """An endpoint that gets each call's details from autobahn (under `DETAILS`)."""
    loop, peer = link.loop, link.peer
    invoke_now = getattr(peer, "invoke_now", None)

    def endpoint(*args: Any, **kwargs: Any) -> Any:
        details = kwargs.pop(DETAILS)
        if invoke_now is not None and details.progress is None:
            answer = invoke_now(
                link.session_id,
                details.registration.id,
                details.procedure or procedure,
                args,
                kwargs,
            )
            if answer is not NOT_AT_ONCE:
                return answer  # the endpoint ran at once, on this loop
        answer = loop.create_future()
        reply = WampReply(loop, answer, details.progress)
        peer.deliver(
            Invocation(
                session=link.session_id,
                registration=details.registration.id,
                procedure=details.procedure or procedure,
                args=list(args),
                kwargs=kwargs,
                reply=reply,
                receive_progress=details.progress is not None,
                caller=details.caller,
                caller_authid=details.caller_authid,
                caller_authrole=details.caller_authrole,
            )
        )
        return answer

    return endpoint


def plain_endpoint(link: _Link, procedure: str) -> tuple[Callable[..., Any], list[int]]:
    """An endpoint of `procedure` (an exact URI) that needs no details, and where its
    registration id goes once registered (``[0]`` until then; an invocation that
    comes first finds the id in autobahn's registrations)."""
    loop, peer = link.loop, link.peer
    invoke_now = getattr(peer, "invoke_now", None)
    known = [0]

    def endpoint(*args: Any, **kwargs: Any) -> Any:
        registration = known[0] or _registration_of(link, endpoint, known)
        if invoke_now is not None:
            answer = invoke_now(link.session_id, registration, procedure, args, kwargs)
            if answer is not NOT_AT_ONCE:
                return answer  # the endpoint ran at once, on this loop
        answer = loop.create_future()
        peer.deliver(
            Invocation(
                session=link.session_id,
                registration=registration,
                procedure=procedure,
                args=list(args),
                kwargs=kwargs,
                reply=WampReply(loop, answer, None),
            )
        )
        return answer

    return endpoint, known


def _registration_of(link: _Link, endpoint: Callable[..., Any], known: list[int]) -> int:
    """The id of the registration of `endpoint` in the link's autobahn session (0 if
    it has none: its invocation is then answered as one for a registration gone)."""
    for registration in getattr(link.session, "_registrations", {}).values():
        if registration.endpoint.fn is endpoint:
            known[0] = int(registration.id)
            return known[0]
    return 0
