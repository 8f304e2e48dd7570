"""A tree file's worker table, built into a `hedgerow.node.Worker` child.

The tree file's builder (`hedgerow.supervision._treebuild`) knows no worker
process, a layer above it: the node's loaders (`hedgerow.node._treeload`) give
it `build_worker` for the worker tables it finds, as its ``worker_table``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hedgerow._exceptions import ConfigProblem, SpecError
from hedgerow.node._worker import Worker
from hedgerow.supervision._management import worker_prefix
from hedgerow.supervision._spec import (
    BACKOFF_FIELDS,
    INBOX_FIELDS,
    ChildSpec,
    Restart,
    ShutdownPolicy,
    SupervisorSpec,
)
from hedgerow.supervision._treebuild import drop_field
from hedgerow.supervision._treecheck import set_fields

if TYPE_CHECKING:
    from hedgerow.supervision._treebuild import Builder
    from hedgerow.supervision._treeschema import WorkerModel

__all__ = ["build_worker"]


def build_worker(builder: Builder, model: WorkerModel, worker_id: str, key: str) -> Worker | None:
    """A `hedgerow.node.Worker` for a worker table: its container's spec, built
    with the container's modes, and the node's management under the worker's prefix."""
    failed = False
    try:
        restart = Restart.parse(model.restart or Restart.NEVER, worker_id, "restart")
    except SpecError as exc:
        builder.problems.append(ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule))
        restart, failed = Restart.NEVER, True
    try:
        shutdown = ShutdownPolicy.parse(
            model.shutdown or ShutdownPolicy.MANUAL, worker_id, "shutdown"
        )
    except SpecError as exc:
        builder.problems.append(ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule))
        shutdown, failed = ShutdownPolicy.MANUAL, True
    if restart is Restart.ALWAYS and shutdown is not ShutdownPolicy.MANUAL:
        rule = "restart-always never lets a component stop: use restart-failed or restart-never"
        builder.problems.append(ConfigProblem(f"{key}.restart", model.restart, rule))
        failed = True
    children = _components(builder, model, restart, shutdown, key)
    options = set_fields(model, exclude={"restart", "shutdown", "components"})
    container_keys = ("max_restarts", "period", "backoff", *BACKOFF_FIELDS, *INBOX_FIELDS)
    supervisor_fields = {k: options.pop(k) for k in container_keys if k in options}
    supervisor_fields.update(children=children or [], name=worker_id, shutdown_policy=shutdown)

    def report(exc: SpecError) -> ConfigProblem | None:
        if exc.field == "children" and children is None:
            return None
        return ConfigProblem(f"{key}.{exc.field}", exc.value, exc.rule)

    def build_container(given: dict[str, Any]) -> SupervisorSpec:
        return SupervisorSpec(**given)

    container = builder.collect(build_container, supervisor_fields, drop_field, report)
    if container is None:
        container, failed = SupervisorSpec(name=worker_id), True
    management = None
    if builder.node_management is not None:
        management = builder.node_management.with_prefix(
            worker_prefix(builder.node, worker_id)
        ).as_data()
    host = {"restart": restart.value, "management": management}

    def build(given: dict[str, Any]) -> Worker:
        return Worker(container, base_dir=builder.base_dir, management=host, **given)

    worker = builder.collect(build, options, drop_field, report)
    return None if failed or children is None else worker


def _components(
    builder: Builder, model: WorkerModel, restart: Restart, shutdown: ShutdownPolicy, key: str
) -> list[ChildSpec] | None:
    """A worker's components, with the container's modes where they name none."""
    children: list[ChildSpec] = []
    for index, component in enumerate(model.components):
        fields = component.model_fields_set
        updates: dict[str, Any] = {}
        if "restart" not in fields:
            updates["restart"] = restart.value
        if "significant" not in fields:
            try:
                own = Restart.parse(component.restart or restart, component.id, "restart")
            except SpecError:
                own = restart  # the child's own check reports it
            counts = shutdown is not ShutdownPolicy.MANUAL
            updates["significant"] = counts and own is not Restart.ALWAYS
        built = builder.child(component.model_copy(update=updates), f"{key}.components[{index}]")
        if built is not None:
            children.append(built)
    return children if len(children) == len(model.components) else None
