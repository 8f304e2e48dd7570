# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""What a component's handlers see of the seam, as autobahn's session shows it.

Shared by the thread session (`hedgerow.transports._session`) and the
event-loop one (`hedgerow.transports._async_session`): a call's result as
autobahn returns it, a handler's exception as the WAMP error it travels as,
and an invocation's keyword arguments with its `CallDetails`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallResult

if TYPE_CHECKING:
    from autobahn.wamp.types import CallOptions

    from hedgerow.transports._base import Invocation, Result

__all__ = ["RUNTIME_ERROR", "call_result", "invocation_kwargs", "wamp_error_of"]

RUNTIME_ERROR = "wamp.error.runtime_error"
"""The error URI of an exception that carries none (autobahn's choice)."""


def call_result(result: Result, options: CallOptions | None) -> Any:
    """A call's result as autobahn's session returns it."""
    args, kwargs = result.args, result.kwargs
    if kwargs or (options is not None and options.details):
        return CallResult(*args, **kwargs)
    if len(args) > 1:
        return CallResult(*args)
    return args[0] if args else None


def wamp_error_of(exc: BaseException) -> tuple[str, list[Any], dict[str, Any]]:
    """The WAMP error (URI, args, kwargs) a handler's exception travels as."""
    if isinstance(exc, ApplicationError):
        return exc.error, list(exc.args), dict(exc.kwargs or {})
    uri = getattr(exc, "uri", None)
    kwargs = getattr(exc, "kwargs", None)
    return (
        uri if isinstance(uri, str) else RUNTIME_ERROR,
        [str(a) if not isinstance(a, (str, int, float, bool, type(None))) else a for a in exc.args],
        dict(kwargs) if isinstance(kwargs, dict) else {},
    )


def invocation_kwargs(registration: Any, invocation: Invocation) -> dict[str, Any]:
    """The keyword arguments of an invocation's endpoint: the caller's, and its
    `CallDetails` (with a progress callback if the caller asked for progress)
    under the name the endpoint asked for."""
    endpoint = registration.endpoint
    kwargs = invocation.kwargs
    if endpoint.details_arg:
        progress = None
        if invocation.receive_progress:
            reply = invocation.reply

            def progress(*args: Any, **kwargs: Any) -> None:
                reply.progress(list(args), kwargs)

        kwargs[endpoint.details_arg] = CallDetails(
            registration,
            progress=progress,
            caller=invocation.caller,
            caller_authid=invocation.caller_authid,
            caller_authrole=invocation.caller_authrole,
            procedure=invocation.procedure,
        )
    return kwargs
