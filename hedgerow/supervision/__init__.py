"""Supervision: specs, the `Supervisor` actor, backoff, intensity, trees, tree files
and the management API's settings. (Containers, supervisors of components, are a
layer above: `hedgerow.components`; loading a tree file, whose worker tables build
`hedgerow.node.Worker` children, is in `hedgerow.node`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hedgerow._lazy import lazy_exports

if TYPE_CHECKING:
    from hedgerow.supervision._async_tree import AsyncioSupervisorHandle, AsyncioTree, open_tree
    from hedgerow.supervision._backoff import DEFAULT_MAX_RETRIES, Backoff, BackoffSettings
    from hedgerow.supervision._intensity import RestartIntensity
    from hedgerow.supervision._loop_supervisor import LoopSupervisor
    from hedgerow.supervision._management import Management
    from hedgerow.supervision._plan import ChangeKind, ChildChange, UpdatePlan, plan_update
    from hedgerow.supervision._reloader import ModuleReloader
    from hedgerow.supervision._spec import (
        BRUTAL_KILL,
        INFINITY,
        ChildSpec,
        Restart,
        ShutdownPolicy,
        Strategy,
        SupervisorSpec,
    )
    from hedgerow.supervision._supervisor import (
        ChildCounts,
        ChildInfo,
        ChildState,
        Supervisor,
    )
    from hedgerow.supervision._tree import SupervisorHandle, Tree, start_tree
    from hedgerow.supervision._treefile import dump_tree, dumps_tree
    from hedgerow.supervision._update import update_tree

__all__ = [
    "BRUTAL_KILL",
    "DEFAULT_MAX_RETRIES",
    "INFINITY",
    "AsyncioSupervisorHandle",
    "AsyncioTree",
    "Backoff",
    "BackoffSettings",
    "ChangeKind",
    "ChildChange",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "LoopSupervisor",
    "Management",
    "ModuleReloader",
    "Restart",
    "RestartIntensity",
    "ShutdownPolicy",
    "Strategy",
    "Supervisor",
    "SupervisorHandle",
    "SupervisorSpec",
    "Tree",
    "UpdatePlan",
    "dump_tree",
    "dumps_tree",
    "open_tree",
    "plan_update",
    "start_tree",
    "update_tree",
]

# Each public name's home, imported on first use (PEP 562), so that importing the
# package stays cheap (tests/test_imports.py keeps it so).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AsyncioSupervisorHandle": "hedgerow.supervision._async_tree",
        "AsyncioTree": "hedgerow.supervision._async_tree",
        "open_tree": "hedgerow.supervision._async_tree",
        "DEFAULT_MAX_RETRIES": "hedgerow.supervision._backoff",
        "Backoff": "hedgerow.supervision._backoff",
        "BackoffSettings": "hedgerow.supervision._backoff",
        "RestartIntensity": "hedgerow.supervision._intensity",
        "Management": "hedgerow.supervision._management",
        "ChangeKind": "hedgerow.supervision._plan",
        "ChildChange": "hedgerow.supervision._plan",
        "UpdatePlan": "hedgerow.supervision._plan",
        "plan_update": "hedgerow.supervision._plan",
        "ModuleReloader": "hedgerow.supervision._reloader",
        "BRUTAL_KILL": "hedgerow.supervision._spec",
        "INFINITY": "hedgerow.supervision._spec",
        "ChildSpec": "hedgerow.supervision._spec",
        "Restart": "hedgerow.supervision._spec",
        "ShutdownPolicy": "hedgerow.supervision._spec",
        "Strategy": "hedgerow.supervision._spec",
        "SupervisorSpec": "hedgerow.supervision._spec",
        "ChildCounts": "hedgerow.supervision._supervisor",
        "ChildInfo": "hedgerow.supervision._supervisor",
        "ChildState": "hedgerow.supervision._supervisor",
        "Supervisor": "hedgerow.supervision._supervisor",
        "LoopSupervisor": "hedgerow.supervision._loop_supervisor",
        "SupervisorHandle": "hedgerow.supervision._tree",
        "Tree": "hedgerow.supervision._tree",
        "start_tree": "hedgerow.supervision._tree",
        "dump_tree": "hedgerow.supervision._treefile",
        "dumps_tree": "hedgerow.supervision._treefile",
        "update_tree": "hedgerow.supervision._update",
    },
)
del TYPE_CHECKING, lazy_exports  # keep the namespace to the public names
