"""What the parts of a component need of each other, as Protocols.

A `Component` (`hedgerow.components._component`) builds a `ComponentActor` on each
start; the actor joins (`hedgerow.components._component_join`) and may run the
handlers on an event loop (`hedgerow.components._component_runner`). Each part
names here what it uses of the one that builds it, so that none imports the
module above it, not even for its annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import weakref
    from collections.abc import Callable

    from pykka._actor import ActorInbox

    from hedgerow.transports._base import Event, TransportConfig

__all__ = ["Handlers", "RunnerOwner"]


class Handlers(Protocol):
    """What an incarnation uses of its `Component`: where it joins, its handlers."""

    @property
    def name(self) -> str: ...
    @property
    def main(self) -> Callable[..., Any] | None: ...
    @property
    def transports(self) -> list[TransportConfig]: ...
    @property
    def realm(self) -> str: ...
    @property
    def extra(self) -> Any: ...
    @property
    def authentication(self) -> dict[str, Any]: ...
    @property
    def is_fatal(self) -> Callable[[BaseException], bool] | None: ...
    @property
    def is_async(self) -> bool: ...
    @property
    def _listeners(self) -> dict[str, list[Callable[..., Any]]]: ...
    @property
    def _joining(self) -> weakref.WeakSet[Any]: ...

    def _fire(self, event: str, *args: Any) -> None: ...


class RunnerOwner(Protocol):
    """What a `HandlerRunner` uses of the `ComponentActor` whose handlers it runs."""

    @property
    def component(self) -> Handlers: ...
    @property
    def actor_inbox(self) -> ActorInbox: ...
    @property
    def _hr_event_errors_fail(self) -> bool: ...

    def fail_on(self, event: Event, error: BaseException) -> None: ...
    def report_handler_failure(self, event: Event, error: BaseException) -> None: ...
