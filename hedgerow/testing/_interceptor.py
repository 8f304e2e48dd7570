"""`FaultInterceptor`: what `hedgerow.testing.Faults` plugs into a tree's hooks,
run by each child as it starts and around each message.

It applies the faults armed for the child's path (in the child's thread, or on
its loop), and reports each user message handled or failed to the counting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from hedgerow._exceptions import Shutdown
from hedgerow.testing._counting import _is_base_only, _is_user

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

    from pykka._envelope import Envelope

    from hedgerow._clock import Clock
    from hedgerow.actors._actor import Actor
    from hedgerow.actors._ref import ChildRef
    from hedgerow.testing._fault import Fault

__all__ = ["FaultInterceptor", "FaultTables"]


class FaultTables(Protocol):
    """What the interceptor reads and tells of its `hedgerow.testing.Faults`."""

    clock: Clock
    _message_faults: dict[str, tuple[Fault, ...]]
    _start_faults: dict[str, tuple[Fault, ...]]
    _on_handled: Callable[[str, float], None] | None

    def _count(self, ref: ChildRef[Any]) -> None: ...

    def _resolve(self, envelope: Envelope[Any], *, handled: bool) -> None: ...


class FaultInterceptor:
    """The `Interceptor` a `Faults` plugs into its tree's hooks.

    The fault tables are copied on write, so the children read them with no lock.
    """

    def __init__(self, faults: FaultTables) -> None:
        self.faults = faults

    def child_created(self, ref: ChildRef[Any]) -> None:
        self.faults._count(ref)

    def before_start(self, actor: Actor) -> None:
        ref = actor._hr_child_ref
        if ref is None:
            return
        for fault in self.faults._start_faults.get(ref.path, ()):
            if fault._should_fire():
                fault._fire(actor)

    def before_receive(
        self, actor: Actor, envelope: Envelope[Any]
    ) -> Coroutine[Any, Any, None] | None:
        """Apply the faults armed for `actor`'s path to this message, in order. On
        an event-loop actor, a coroutine to await before the message is handled (a
        hang, a slow message, an async ``on_stop``); else None."""
        ref = actor._hr_child_ref
        if ref is None or not _is_user(envelope.message):
            return None
        return self._apply(actor, envelope, self.faults._message_faults.get(ref.path, ()))

    def after_receive(
        self, actor: Actor, envelope: Envelope[Any], error: BaseException | None
    ) -> None:
        if not _is_user(envelope.message):
            return
        # An ask's error is its answer, except SystemExit and its kin: they fail
        # a supervised actor, and its message is a dead letter, asked or told.
        asked = envelope.reply_to is not None and not _is_base_only(error)
        handled = error is None or asked or isinstance(error, Shutdown)
        self.faults._resolve(envelope, handled=handled)
        if not handled:
            return
        ref = actor._hr_child_ref
        on_handled = self.faults._on_handled
        if on_handled is not None and ref is not None:
            on_handled(ref.path, self.faults.clock.now())

    def _apply(
        self, actor: Actor, envelope: Envelope[Any], faults: tuple[Fault, ...]
    ) -> Coroutine[Any, Any, None] | None:
        for index, fault in enumerate(faults):
            if fault._should_fire():
                try:
                    pending = fault._fire(actor)
                except BaseException as exc:
                    # The actor fails with the message as its dead letter (an
                    # injected Shutdown answers the asker and stops it: handled).
                    self.faults._resolve(envelope, handled=isinstance(exc, Shutdown))
                    raise
                if pending is not None:  # an event-loop actor's: the rest after it
                    return self._apply_after(pending, actor, envelope, faults[index + 1 :])
                if actor.actor_stopped.is_set():
                    return None
        return None

    async def _apply_after(
        self,
        pending: Coroutine[Any, Any, None],
        actor: Actor,
        envelope: Envelope[Any],
        faults: tuple[Fault, ...],
    ) -> None:
        await pending
        if actor.actor_stopped.is_set():
            return
        more = self._apply(actor, envelope, faults)
        if more is not None:
            await more
