"""The node's fork servers: one zygote per interpreter and start-time environment,
started on first need, started again when one dies after serving a while, and
forgotten by a child of a forked node (see `hedgerow.node._forkserver`)."""

from __future__ import annotations

import logging
import os
import threading
from time import monotonic
from typing import TYPE_CHECKING, Any

from hedgerow.node import _forkserver, _start_method
from hedgerow.node._forkserver import ForkServer, ForkServerError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["close_fork_servers", "fork_server", "fork_servers"]

logger = logging.getLogger("hedgerow.node")

_servers_lock = threading.Lock()
_servers: dict[tuple[Any, ...], ForkServer] = {}
_refused: dict[tuple[Any, ...], float] = {}
"""When a zygote last could not start, by key: launches spawn until `RETRY_AFTER` later."""


def _key(python: str, env: Mapping[str, str]) -> tuple[Any, ...]:
    """What a zygote's interpreter took from its start: one zygote for each."""
    fixed = sorted(
        (name, value)
        for name, value in env.items()
        if name.startswith("PYTHON") or name in _forkserver.ENV_AT_START
    )
    return (python, tuple(fixed))


def fork_server(python: str, env: Mapping[str, str], timeout: float) -> ForkServer | None:
    """The zygote for `python` and `env`, ready to fork (started, or started again, if
    need be, with `timeout` seconds to get ready). None where fork servers do not work;
    if this one could not start (the caller spawns; a warning said why), which is tried
    again `RETRY_AFTER` seconds later; or while it is still starting `START_PATIENCE`
    seconds after it began (the caller spawns; the launches after it is ready fork)."""
    if not _start_method.FORK_SERVER_AVAILABLE:
        return None
    key = _key(python, env)
    with _servers_lock:
        server = _servers.get(key)
        if server is not None and not server.alive:
            if not server.started.is_set():
                return None  # it is failing to start as we look: its thread tells
            server._finish(replace=False)  # it died while idle: replaced here
            server = None
        if server is None:
            server = _begin(key, python, env, timeout)
            if server is None:
                return None
    if server.wait_ready(_forkserver.START_PATIENCE):
        return server
    if not server.started.is_set() and not server._outwaited:
        server._outwaited = True
        logger.info(
            "fork server pid %s still starting after %g s: workers are spawned until it is ready",
            server.pid,
            _forkserver.START_PATIENCE,
        )
    return None


def _begin(
    key: tuple[Any, ...], python: str, env: Mapping[str, str], timeout: float
) -> ForkServer | None:
    """Begin to start `key`'s zygote (with `_servers_lock` held), unless one could not
    start less than `RETRY_AFTER` seconds ago; it has `timeout` seconds to get ready."""
    refused = _refused.get(key)
    if refused is not None and monotonic() - refused < _forkserver.RETRY_AFTER:
        return None
    server = ForkServer(python, env)
    server._on_death = _restart
    server._on_failure = _refuse
    try:
        server.begin(timeout)
    except (ForkServerError, OSError) as exc:
        _refused[key] = monotonic()
        logger.warning("%s; workers of %s are spawned instead", exc, python)
        return None
    _servers[key] = server
    return server


def _refuse(server: ForkServer) -> None:
    """In a zygote's start thread: it did not start. Launches spawn, and try again
    `RETRY_AFTER` seconds later."""
    key = _key(server.python, server.env)
    with _servers_lock:
        if _servers.get(key) is server:
            del _servers[key]
        _refused[key] = monotonic()
    logger.warning("%s; workers of %s are spawned instead", server.failure, server.python)


def _restart(dead: ForkServer) -> None:
    """In a dead zygote's reader thread: begin to start its successor, if it served long
    enough and nothing replaced or closed it meanwhile."""
    if monotonic() - dead.started_at < _forkserver.RESTART_AFTER:
        return
    key = _key(dead.python, dead.env)
    with _servers_lock:
        if _servers.get(key) is not dead:
            return
        dead.successor = _begin(key, dead.python, dead.env, _forkserver.START_TIMEOUT)
    if dead.successor is not None:
        logger.info("fork server pid %s replaces pid %s", dead.successor.pid, dead.pid)


def fork_servers() -> list[ForkServer]:
    """The zygotes this process started that are still running."""
    with _servers_lock:
        return [server for server in _servers.values() if server.alive]


def close_fork_servers() -> None:
    """End every zygote (workers they forked go on); the next launch starts new ones,
    and those that could not start are tried again."""
    with _servers_lock:
        servers = list(_servers.values())
        _servers.clear()
        _refused.clear()
    for server in servers:
        server.close()


def _forget_fork_servers() -> None:
    """In a child of a forked node (``os.fork``): its parent's zygotes are not its own.
    Close its copies of their sockets (so that a zygote sees its node's end) and start
    afresh, with new locks (another thread may have held one at the fork)."""
    global _servers_lock  # noqa: PLW0603 - a fork's child gets a lock of its own
    _servers_lock = threading.Lock()
    for server in _servers.values():
        server._forget()
    _servers.clear()
    _refused.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_fork_servers)
