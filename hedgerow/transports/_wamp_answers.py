# mypy: disable-error-code="no-untyped-call"
# (autobahn ships py.typed but leaves its constructors unannotated.)
"""How requests on a WAMP session end: results, errors with their WAMP URIs, a callee's reply.

A request's future (`hedgerow.transports._wamp_link.WampLink.handle`) ends
with a `Result`, or with an `ApplicationError` whose URI says what went
wrong (``hedgerow.error.not_connected`` when the session's connection was
lost or never made), naming the request. A component answers an invocation
through `WampReply`, from its own thread; the answer hops onto the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING, Any

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallResult

from hedgerow.transports._base import Call, Publish, Register, Reply, Request, Result, Subscribe
from hedgerow.transports._handler_values import call_result

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow.transports._event_loop import EventLoop

__all__ = [
    "NOT_CONNECTED",
    "CallAnswer",
    "DirectCallAnswer",
    "WampReply",
    "answer_directly",
    "describe_request",
    "result_of",
    "wamp_error",
]

logger = logging.getLogger("hedgerow.transports")

NOT_CONNECTED = "hedgerow.error.not_connected"
"""The error of a request on a session whose connection was lost (or never made)."""


class WampReply(Reply):
    """Answers one invocation: hops onto the loop and resolves autobahn's future there."""

    __slots__ = ("_answered", "_future", "_lock", "_loop", "_progress")

    def __init__(
        self,
        loop: EventLoop,
        future: Any,
        progress: Callable[..., None] | None,
    ) -> None:
        self._loop = loop
        self._future = future
        self._progress = progress
        self._lock = threading.Lock()
        self._answered = False

    def _final(self) -> bool:
        with self._lock:
            if self._answered:
                return False
            self._answered = True
            return True

    def _soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop.on_loop_thread():
            fn(*args)  # answered by an async component on the loop: no hop
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody to answer
            self._loop.call_soon_threadsafe(fn, *args)

    def progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._progress is None or self._answered:
            return
        self._soon(self._send_progress, args, kwargs)

    def _send_progress(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._loop.done(self._future) or self._progress is None:
            return
        try:
            self._progress(*args, **kwargs)
        except Exception:
            logger.debug("progressive result not sent", exc_info=True)

    def result(self, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._final():
            self._soon(self._loop.resolve, self._future, CallResult(*args, **kwargs))

    def error(self, error: str, args: list[Any], kwargs: dict[str, Any]) -> None:
        if self._final():
            self._soon(self._loop.reject, self._future, ApplicationError(error, *args, **kwargs))


class CallAnswer:
    """Where autobahn puts the answer to a call made on the loop's own thread (an
    async component's, `WampLink.handle_here`), in place of its future of it
    (`answer_directly`). autobahn settles it as it reads the RESULT or ERROR,
    with what txaio calls on a future (``set_result``, ``set_exception``;
    ``done``), and it settles the caller's `sink` there and then: through
    autobahn's future, the answer would reach the sink in a done callback, one
    turn of the loop later. The same outcome as `WampLink._track` gives."""

    __slots__ = ("_done", "_link", "_request", "_sink")

    def __init__(self, link: Any, sink: Any, request: Request) -> None:
        self._link = link
        self._sink = sink
        self._request = request
        self._done = False

    def __repr__(self) -> str:
        return f"<CallAnswer {describe_request(self._request)}{' done' if self._done else ''}>"

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        if self._done:
            return
        self._done = True
        self._link._pending.discard(self._sink)
        try:
            result = result_of(value)
        except Exception as exc:  # noqa: BLE001 - the caller gets it
            self._sink.set_exception(wamp_error(exc, self._request))
            return
        self._sink.set_result(result)  # (a sink of handle_here's takes a second answer)

    def set_exception(self, error: BaseException) -> None:
        if self._done:
            return
        self._done = True
        self._link._pending.discard(self._sink)
        self._sink.set_exception(self._link.request_error(error, self._request))


class DirectCallAnswer:
    """Where autobahn puts the answer to a call without options made on the loop's
    own thread by an async component (`WampLink.call_here`): straight into the
    asyncio future its caller awaits, converted as `call_result` would (the value
    as autobahn's session gives it), errors as `CallAnswer`'s. No `Result`, no
    sink, no converter in between: the caller's task wakes in the turn after
    autobahn reads the RESULT, as a bare autobahn caller's does. It waits in
    the link's requests in flight itself: a lost session fails it there."""

    __slots__ = ("_done", "_future", "_link", "_procedure")

    def __init__(self, link: Any, future: asyncio.Future[Any], procedure: str) -> None:
        self._link = link
        self._future = future
        self._procedure = procedure
        self._done = False

    def __repr__(self) -> str:
        done = " done" if self._done else ""
        return f"<DirectCallAnswer call to {self._procedure!r}{done}>"

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        if self._done:
            return
        self._done = True
        self._link._pending.discard(self)
        future = self._future
        if future.done():
            return  # cancelled by its awaiter
        if value.__class__ is CallResult:
            value = call_result(result_of(value), None)  # (a plain value is itself)
        future.set_result(value)

    def set_exception(self, error: BaseException) -> None:
        if self._done:
            return
        self._done = True
        self._link._pending.discard(self)
        if not self._future.done():
            self._future.set_exception(self._link.request_error(error, Call(self._procedure)))


def answer_directly(session: Any, outcome: Any, answer: CallAnswer | DirectCallAnswer) -> bool:
    """Have autobahn's asyncio `session` settle `answer` rather than `outcome`, its
    future of the call it has just sent (the last in its table of calls in
    flight). False, with nothing changed, if the session is not as expected
    (another framework, another version of autobahn): `outcome` then stays."""
    calls = getattr(session, "_call_reqs", None)
    if not isinstance(outcome, asyncio.Future) or not isinstance(calls, dict) or not calls:
        return False
    call = calls[next(reversed(calls))]
    if getattr(call, "on_reply", None) is not outcome:
        return False
    call.on_reply = answer
    return True


def describe_request(request: Request) -> str:
    if isinstance(request, Call):
        return f"call to {request.procedure!r}"
    if isinstance(request, Publish):
        return f"publish to {request.topic!r}"
    if isinstance(request, Register):
        return f"register {request.procedure!r}"
    if isinstance(request, Subscribe):
        return f"subscribe to {request.topic!r}"
    return type(request).__name__.lower()


def result_of(value: Any) -> Result:

    if isinstance(value, CallResult):
        return Result(list(value.results), dict(value.kwresults))
    if value is None:
        return Result([], {})
    return Result([value], {})


def wamp_error(exc: BaseException, request: Request) -> BaseException:
    """What a request's future fails with: an `ApplicationError` with a WAMP URI."""
    if isinstance(exc, ApplicationError):
        if exc.error == ApplicationError.CANCELED and isinstance(request, Call):
            # The router's words ("callee disconnected from in-flight request")
            # do not say which call: name it, as every hedgerow error does.
            detail = exc.args[0] if exc.args else "canceled"
            msg = f"{describe_request(request)} was cancelled: {detail}"
            return ApplicationError(exc.error, msg, *exc.args[1:], **(exc.kwargs or {}))
        return exc
    from autobahn.wamp.exception import (  # noqa: PLC0415
        InvalidUriError,
        ProtocolError,
        SerializationError,
        TransportLost,
    )

    what = describe_request(request)
    if isinstance(exc, TransportLost):
        return ApplicationError(NOT_CONNECTED, f"{what}: the connection was lost")
    if isinstance(exc, (SerializationError, TypeError)) and isinstance(request, (Call, Publish)):
        return ApplicationError(
            ApplicationError.INVALID_PAYLOAD, f"{what}: the payload cannot be serialized: {exc}"
        )
    if isinstance(exc, (InvalidUriError, ProtocolError)):
        return ApplicationError(ApplicationError.INVALID_URI, f"{what}: {exc}")
    return exc
