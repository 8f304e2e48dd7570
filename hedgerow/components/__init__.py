"""Components: WAMP application components on hedgerow actors (autobahn's
`Component` and `run`), and the `Container` that hosts them with a management API.

A layer above supervision: a component is a supervised child (its child spec,
its reconnect backoff), `run` starts a tree of them, and a container is a
supervisor of components that serves its management API through a component."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from hedgerow.components._component import Component
    from hedgerow.components._component_actor import ComponentActor
    from hedgerow.components._container import Container
    from hedgerow.components._run import run

__all__ = ["Component", "ComponentActor", "Container", "run"]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Component": "hedgerow.components._component",
        "ComponentActor": "hedgerow.components._component_actor",
        "Container": "hedgerow.components._container",
        "run": "hedgerow.components._run",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
