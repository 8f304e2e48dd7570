"""Building and starting an incarnation: `spawn`, or `build` then `launch`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hedgerow.actors._actor_core import ActorCore, _spawning
from hedgerow.actors._attrs import actor_attr
from hedgerow.actors._flag import StopFlag
from hedgerow.actors._registry import register

if TYPE_CHECKING:
    from collections.abc import Callable

    from hedgerow._clock import Clock
    from hedgerow.actors._reason import Reason
    from hedgerow.actors._ref import ChildRef

__all__ = ["build", "launch", "spawn"]

_actor_classes: set[type] = set()
"""Classes whose instances `build` has found to be hedgerow actors."""


def spawn(
    factory: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    child_ref: ChildRef[Any] | None = None,
    incarnation: int = 0,
    ask_errors_fail: bool = False,
    event_errors_fail: bool = False,
    clock: Clock | None = None,
    on_exit: Callable[[Any, Reason], None] | None = None,
    on_started: Callable[[Any], None] | None = None,
) -> ActorCore:
    """Build an actor with `factory` and start its thread, as `Actor.start` does.

    For a supervised child, the new incarnation takes over `child_ref`'s inbox.
    `on_exit` is registered before the thread starts, so no exit is missed;
    `on_started(actor)` runs in the actor's thread after a successful ``on_start``.
    Raises what the factory raises, or TypeError if it built no hedgerow actor (of either runtime).
    """
    actor = build(
        factory,
        args,
        kwargs,
        child_ref=child_ref,
        incarnation=incarnation,
        ask_errors_fail=ask_errors_fail,
        event_errors_fail=event_errors_fail,
        clock=clock,
        on_exit=on_exit,
        on_started=on_started,
    )
    launch(actor)
    return actor


def build(
    factory: Callable[..., Any],
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
    *,
    child_ref: ChildRef[Any] | None = None,
    incarnation: int = 0,
    ask_errors_fail: bool = False,
    event_errors_fail: bool = False,
    clock: Clock | None = None,
    on_exit: Callable[[Any, Reason], None] | None = None,
    on_started: Callable[[Any], None] | None = None,
    started: StopFlag | None = None,
) -> ActorCore:
    """`spawn`'s first half: the actor, built and not yet started (see `launch`).

    `started` is the flag its ``on_start`` sets (a new `StopFlag` if None)."""
    if child_ref is not None:
        _spawning.inbox = child_ref.actor_inbox
        _spawning.context = (child_ref, incarnation, ask_errors_fail, clock, event_errors_fail)
    try:
        actor: ActorCore = factory(*args, **(kwargs or {}))
    finally:
        _spawning.inbox = None
        _spawning.context = None
    if actor.__class__ not in _actor_classes:  # (pykka's Actor is an ABC: a slow isinstance)
        if not isinstance(actor, ActorCore):
            msg = (
                f"{factory!r} returned {actor!r}, which is neither a hedgerow.Actor"
                " nor a hedgerow.AsyncioActor"
            )
            raise TypeError(msg)
        _actor_classes.add(actor.__class__)
    if child_ref is not None and actor_attr(actor, "actor_inbox") is not child_ref.actor_inbox:
        msg = f"{factory!r} did not call its actor class's __init__ on the actor it built"
        raise TypeError(msg)
    # Its supervisor (or its tree) waits for its start.
    actor._hr_started = started if started is not None else StopFlag()
    if on_exit is not None:
        actor._hr_on_exit = on_exit  # (not yet started: it cannot have exited)
        actor._hr_reported = True
    actor._hr_on_started = on_started
    return actor


def launch(actor: ActorCore) -> None:
    """`spawn`'s second half: register the actor, make it its ref's incarnation, start it."""
    register(actor._actor_ref)
    child_ref = actor._hr_child_ref
    if child_ref is not None:
        child_ref._attach(actor)
    actor._start_actor_loop()
