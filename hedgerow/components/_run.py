"""`run`: start components and wait until they are done, as autobahn's ``run``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hedgerow.components._component import Component
from hedgerow.supervision._spec import ChildSpec, Restart, ShutdownPolicy, SupervisorSpec
from hedgerow.supervision._tree import Tree, start_tree

if TYPE_CHECKING:
    from hedgerow.actors._reason import Reason

__all__ = ["run"]

logger = logging.getLogger("hedgerow.components")

_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": 5,
}


def run(  # noqa: C901, PLR0912, PLR0915 - validation, start, wait and Ctrl-C in one place
    components: Component | Sequence[Component],
    log_level: str | None = "info",
    stop_at_close: bool = True,
) -> Reason:
    """Run components until they are done, as autobahn's ``run``; Ctrl-C stops them.

    Each component is a child of one supervisor (restarted at once if it fails,
    under the default intensity; done when it leaves or its ``main``
    returns). Returns the tree's exit reason once every component is done (or
    after Ctrl-C); with ``stop_at_close=False`` it keeps running (and the
    in-process router serving) until Ctrl-C. `log_level` configures logging
    the way autobahn's ``start_logging`` does, but only if the application has
    not configured any (None: leave logging alone). Raises `StartError` if a
    component cannot start; a Ctrl-C while a component still waits for its
    router to answer its first join ends that wait and raises KeyboardInterrupt.
    """
    if isinstance(components, Component):
        components = [components]
    if isinstance(components, (str, bytes)) or not isinstance(components, Sequence):
        msg = f'"components" must be a list of Component objects - encountered {type(components)}'
        raise ValueError(msg)  # noqa: TRY004 - autobahn raises ValueError here
    children: list[ChildSpec] = []
    for index, component in enumerate(components):
        if not isinstance(component, Component):
            msg = (
                '"components" must be a list of Component objects - encountered '
                f"item of type {type(component)}"
            )
            raise ValueError(msg)  # noqa: TRY004
        child_id = component.name
        if any(c.id == child_id for c in children):
            child_id = f"{child_id}-{index + 1}"
        children.append(ChildSpec(child_id, component, restart=Restart.FAILED, significant=True))
    _start_logging(log_level)
    spec = SupervisorSpec(
        children, shutdown_policy=ShutdownPolicy.ON_LAST_COMPONENT_STOPPED, name="components"
    )
    # Started on a helper thread, so that a Ctrl-C while components start
    # (their join handlers run then) still finds a tree to stop.
    started: list[Tree] = []
    failed: list[BaseException] = []
    starting_done = threading.Event()

    def start() -> None:
        try:
            started.append(start_tree(spec))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            failed.append(exc)
        finally:
            starting_done.set()

    # Waits are on events, not Thread.join: a KeyboardInterrupt in join can
    # mark a live thread as stopped (CPython's bpo-45274 handling).
    starter = threading.Thread(target=start, name="hedgerow.run: starting components")
    try:
        starter.start()
        while not starting_done.wait(1.0):
            pass
        if failed:
            raise failed[0]
        tree = started[0]
        while not tree.done:
            tree._done.wait(1.0)
        if not stop_at_close:
            forever = threading.Event()
            while True:
                forever.wait(1.0)
    except KeyboardInterrupt:
        logger.info("Interrupted: stopping the components")
        for component in components:
            component._cancel_first_joins()  # a router that never came: stop waiting
        if starter.ident is not None:
            starting_done.wait()
        if not started:
            raise
        tree = started[0]
        tree.stop()
    starter.join()
    assert tree.reason is not None
    return tree.reason


def _start_logging(level: str | None) -> None:
    if level is None:
        return
    if level not in _LEVELS:
        msg = f"log_level={level!r}: expected one of {', '.join(_LEVELS)} or None"
        raise ValueError(msg)
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(
            level=_LEVELS[level], format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
