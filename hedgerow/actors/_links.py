"""Links and monitors between incarnations, as Erlang's: `monitor`, `demonitor`,
`link`, `unlink`.

Each works on the current incarnation of a ref (a `hedgerow.actors._actor_core.ActorCore`,
whatever its runtime), through its exit callbacks and an exit signal put in
front of its inbox. This module sits below the actor (which calls it), so it
knows an incarnation by what it uses of one (`Incarnation`).
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol, cast

import pykka

from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._inbox import Inbox
from hedgerow.actors._messages import Down, _Control
from hedgerow.actors._reason import NOPROC, Reason

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Incarnation", "demonitor", "link", "monitor", "unlink"]


class Incarnation(Protocol):
    """What links and monitors use of an actor (an ``ActorCore``, of any runtime)."""

    _hr_incarnation: int
    _hr_abandoned: bool
    _hr_links: dict[int, int] | None
    _hr_has_exited: bool
    actor_inbox: Any

    def _hr_add_exit_callback(
        self, callback: Callable[[Any, Reason], None], *, watch: bool = False
    ) -> int | None: ...

    def _hr_remove_exit_callback(self, key: int) -> None: ...


logger = logging.getLogger("hedgerow.actors")

_tokens = itertools.count(1)

_monitors: dict[int, tuple[Incarnation, int]] = {}
_monitors_lock = threading.Lock()


def _incarnation_of(ref: pykka.ActorRef[Any]) -> Incarnation | None:
    actor = ref._actor_weakref()
    # Any hedgerow actor (an ActorCore, of either runtime) has exit callbacks.
    if actor_attr(actor, "_hr_add_exit_callback") is None:  # (not its __getattr__'s)
        return None
    return cast("Incarnation", actor)


def monitor(watcher: pykka.ActorRef[Any], target: pykka.ActorRef[Any]) -> int:
    """Tell `watcher` a `Down(target, reason, token)` when `target` exits; returns the token."""
    token = next(_tokens)
    actor = _incarnation_of(target)

    def on_exit(_actor: Any, reason: Reason) -> None:
        with _monitors_lock:
            if _monitors.pop(token, None) is None:
                return
        _deliver(watcher, Down(target, reason, token))

    with _monitors_lock:
        key = actor._hr_add_exit_callback(on_exit, watch=True) if actor is not None else None
        if key is not None:
            _monitors[token] = (actor, key)  # type: ignore[assignment]
    if key is None:
        _deliver(watcher, Down(target, NOPROC, token))
    return token


def demonitor(token: int) -> None:
    """Cancel a monitor; nothing more is delivered for it."""
    with _monitors_lock:
        entry = _monitors.pop(token, None)
    if entry is not None:
        actor, key = entry
        actor._hr_remove_exit_callback(key)


def _deliver(ref: pykka.ActorRef[Any], message: Any) -> None:
    try:
        ref.tell(message)
    except pykka.ActorDeadError:
        logger.debug("Not delivered to %s, which has exited: %r", ref, message)


def _signal(actor: Incarnation, sender: pykka.ActorRef[Any], reason: Reason) -> None:
    """Send an exit signal to one incarnation, ahead of its queued messages."""
    if actor._hr_has_exited:
        return
    control = _Control(_Control.EXIT_SIGNAL, actor._hr_incarnation, reason, sender)
    envelope = pykka._envelope.Envelope(control)
    inbox = actor.actor_inbox
    if isinstance(inbox, Inbox):
        inbox.put_front(envelope)
    else:
        inbox.put(envelope)


def link(a: pykka.ActorRef[Any], b: pykka.ActorRef[Any]) -> None:
    """Link the current incarnations of `a` and `b` (at most one link per pair)."""
    actor_a, actor_b = _incarnation_of(a), _incarnation_of(b)
    if actor_a is None:
        msg = f"{a} is not a hedgerow.Actor"
        raise TypeError(msg)
    if actor_b is None or actor_b._hr_has_exited or actor_b._hr_abandoned:
        _signal(actor_a, b, NOPROC)
        return
    if actor_a._hr_links is not None and id(actor_b) in actor_a._hr_links:
        return
    key_a = actor_a._hr_add_exit_callback(lambda _x, r: _signal(actor_b, a, r), watch=True)
    key_b = actor_b._hr_add_exit_callback(lambda _x, r: _signal(actor_a, b, r), watch=True)
    if key_a is None or key_b is None:
        for actor, key in ((actor_a, key_a), (actor_b, key_b)):
            if key is not None:
                actor._hr_remove_exit_callback(key)
        if key_b is None:
            _signal(actor_a, b, NOPROC)
        return
    for actor, other, key in ((actor_a, actor_b, key_a), (actor_b, actor_a, key_b)):
        if actor._hr_links is None:
            actor._hr_links = {}
        actor._hr_links[id(other)] = key


def unlink(a: pykka.ActorRef[Any], b: pykka.ActorRef[Any]) -> None:
    """Remove the link between `a` and `b`, if any."""
    actor_a, actor_b = _incarnation_of(a), _incarnation_of(b)
    if actor_a is None or actor_b is None:
        return
    for actor, other in ((actor_a, actor_b), (actor_b, actor_a)):
        links = actor._hr_links
        key = links.pop(id(other), None) if links is not None else None
        if key is not None:
            actor._hr_remove_exit_callback(key)
