# mypy: disable-error-code="no-untyped-call"
# (autobahn and Twisted leave many constructors unannotated.)
"""The process's WAMP framework and event loop: asyncio (the default) or Twisted, through txaio.

txaio serves one framework per process, and autobahn binds it when its WAMP
modules are first imported. `use_framework` chooses one (call it before
anything joins a WAMP router or uses a serializer); `ensure_framework`
chooses asyncio unless a choice was made, by `use_framework` or by the
application's own ``txaio.use_twisted()``.

Anything that joins a WAMP router or uses a serializer (an in-process
component copies its payloads through one) chooses asyncio if nothing was
chosen, so a Twisted process chooses first.

`event_loop` gives the process's one `EventLoop`
(`hedgerow.transports._event_loop`): the framework's loop (an asyncio loop,
or Twisted's reactor) with the few operations the WAMP transport needs from
it. The loop runs on a daemon thread, ``hedgerow-wamp``, started on first
use; when Twisted's reactor already runs (an application that runs it and
starts hedgerow from it), that reactor is used and no thread is started. An
application that means to run the reactor itself must start it before
anything joins, and must not block its thread waiting on hedgerow. Twisted's
reactor cannot run twice: once it has stopped, `event_loop` raises
RuntimeError.
"""

from __future__ import annotations

import sys
import threading

from hedgerow._extras import require
from hedgerow.transports._asyncio_loop import AsyncioLoop
from hedgerow.transports._choice import FRAMEWORKS
from hedgerow.transports._event_loop import EventLoop, TlsProblem, reject_future, resolve_future
from hedgerow.transports._twisted_loop import TwistedLoop
from hedgerow.transports._twisted_tls import is_twisted_tls, twisted_tls

__all__ = [
    "FRAMEWORKS",
    "EventLoop",
    "TlsProblem",
    "ensure_framework",
    "event_loop",
    "is_twisted_tls",
    "reject_future",
    "resolve_future",
    "selected_framework",
    "twisted_tls",
    "use_framework",
]

_lock = threading.RLock()
_loop: EventLoop | None = None


def selected_framework() -> str | None:
    """The framework txaio serves in this process, or None before one is chosen."""
    txaio = sys.modules.get("txaio")
    if txaio is None:
        return None
    if getattr(txaio, "using_twisted", False):
        return "twisted"
    if getattr(txaio, "using_asyncio", False):
        return "asyncio"
    return None


def use_framework(name: str) -> str:
    """Run this process's WAMP sessions on `name` ("asyncio" or "twisted"); returns it.

    Call it first: a join, or a serializer's first use (an in-process component
    copies payloads through one), chooses asyncio if nothing was chosen.
    Choosing the framework already chosen is a no-op. Raises ValueError for
    an unknown name, and RuntimeError when the process already uses the other
    framework (txaio cannot switch), and `MissingExtra` (a RuntimeError) when
    Twisted is not installed.
    """
    if name not in FRAMEWORKS:
        msg = f"unknown framework {name!r}: expected one of {', '.join(FRAMEWORKS)}"
        raise ValueError(msg)
    import txaio  # noqa: PLC0415 - txaio is selected lazily, never at import

    with _lock:
        current = selected_framework()
        if current == name:
            return name
        if current is not None:
            msg = (
                f"this process already runs WAMP on {current} (txaio serves one framework "
                f"per process): choose {name} with hedgerow.use_framework({name!r}) before "
                "any component joins a router or any serializer is used"
            )
            raise RuntimeError(msg)
        if "autobahn.wamp.serializer" in sys.modules:
            msg = (
                "autobahn.wamp.serializer was imported before a txaio framework was "
                "selected, so its serializers cannot work in this process: call "
                f"hedgerow.use_framework({name!r}) (or txaio.use_{name}()) before importing it"
            )
            raise RuntimeError(msg)
        if name == "twisted":
            require("twisted")
            txaio.use_twisted()
        else:
            txaio.use_asyncio()
        return name


def ensure_framework() -> str:
    """The process's framework, choosing asyncio if none was chosen yet.

    Call before anything imports ``autobahn.wamp.serializer``. Never starts
    txaio's logging (that would change the root logger).
    """
    with _lock:
        return selected_framework() or use_framework("asyncio")


def event_loop() -> EventLoop:
    """The process's WAMP event loop, for its framework, running (started on first use)."""
    global _loop  # noqa: PLW0603 - one loop per process, made on first use
    with _lock:
        if _loop is None or not _loop.is_running():
            framework = ensure_framework()
            _loop = TwistedLoop() if framework == "twisted" else AsyncioLoop()
        return _loop
