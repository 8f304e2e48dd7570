"""Supervision: specs, the `Supervisor` actor, backoff, intensity, trees, tree files,
containers and their management API."""

from hedgerow.supervision._backoff import DEFAULT_MAX_RETRIES, Backoff, BackoffSettings
from hedgerow.supervision._container import Container
from hedgerow.supervision._intensity import RestartIntensity
from hedgerow.supervision._management import Management
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
from hedgerow.supervision._treefile import dump_tree, dumps_tree, load_tree, loads_tree

__all__ = [
    "BRUTAL_KILL",
    "DEFAULT_MAX_RETRIES",
    "INFINITY",
    "Backoff",
    "BackoffSettings",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "Container",
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
    "dump_tree",
    "dumps_tree",
    "load_tree",
    "loads_tree",
    "start_tree",
]
