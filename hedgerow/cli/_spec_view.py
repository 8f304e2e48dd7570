"""A tree's spec as a rich tree: what `hedgerow check` prints, and the live view's frame.

A worker process is a child whose ``start`` has a ``container`` (the
`SupervisorSpec` it hosts in its own process): its hosted children are shown
under it.
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree as RichTree

from hedgerow.supervision._spec import ChildSpec, SupervisorSpec
from hedgerow.supervision._treefile import describe_start

__all__ = ["hosted_spec", "spec_tree"]

DEFAULT_RUNTIME = SupervisorSpec.__dataclass_fields__["runtime"].default
"""Where a supervisor runs unless told (a thread): not shown."""


def _seconds(value: float | None) -> str:
    if value is None:
        return "infinity"
    return f"{value:g} s"


def hosted_spec(child: ChildSpec) -> SupervisorSpec | None:
    """The tree a worker-process child hosts (its start's ``container``), else None.

    Read off the start object, so the view needs no worker module."""
    container = getattr(child.start, "container", None)
    return container if isinstance(container, SupervisorSpec) else None


def _child_label(
    child: ChildSpec, parent: SupervisorSpec, hosted: SupervisorSpec | None = None
) -> Text:
    label = Text(child.id, style="bold")
    if hosted is None:
        label.append(f"  {describe_start(child)}", style="cyan")
    else:
        label.append("  worker process", style="cyan")
        label.append(f"  hosts supervisor {hosted.strategy.value}", style="magenta")  # type: ignore[union-attr]
    restart = child.restart.value  # type: ignore[union-attr]
    details = [f"restart={restart}", f"shutdown={child.shutdown}"]
    backoff = parent.backoff_for(child)
    if backoff is not None:
        details.append(
            f"backoff {backoff.initial_retry_delay:g} s x{backoff.retry_delay_growth:g}"
            f" <= {backoff.max_retry_delay:g} s"
        )
        if backoff.max_retries >= 0:
            details.append(f"max_retries={backoff.max_retries}")
    inbox = parent.inbox_for(child)
    if inbox is not None:
        details.append(f"max_inbox={inbox.max_inbox} {inbox.overflow.value}")
    if child.significant:
        details.append("significant")
    if child.args:
        details.append(f"args={list(child.args)!r}")
    if child.kwargs:
        details.append(f"kwargs={dict(child.kwargs)!r}")
    label.append("  " + "  ".join(details), style="dim")
    return label


def _supervisor_label(name: str, spec: SupervisorSpec) -> Text:
    label = Text(name, style="bold")
    strategy = spec.strategy.value  # type: ignore[union-attr]
    policy = spec.shutdown_policy.value  # type: ignore[union-attr]
    label.append(f"  supervisor {strategy}", style="magenta")
    if spec.runtime != DEFAULT_RUNTIME:  # as the tree file says it: runtime = "loop"
        label.append(f"  runtime={spec.runtime}", style="magenta")
    label.append(
        f"  intensity {spec.max_restarts} in {_seconds(spec.period)}  {policy}", style="dim"
    )
    return label


def spec_tree(spec: SupervisorSpec, name: str | None = None) -> RichTree:
    """The spec as a rich tree: what `hedgerow check` prints."""
    root = RichTree(_supervisor_label(name or spec.name or "root", spec))
    _add_children(root, spec)
    return root


def _add_children(node: RichTree, spec: SupervisorSpec) -> None:
    for child in spec.children:
        hosted = hosted_spec(child)
        if isinstance(child.start, SupervisorSpec):
            branch = node.add(_supervisor_label(child.id, child.start))
            restart = f"  restart={child.restart.value}"  # type: ignore[union-attr]
            backoff = spec.backoff_for(child)
            if backoff is not None:
                restart += f"  backoff {backoff.initial_retry_delay:g} s"
            branch.label.append(restart, style="dim")  # type: ignore[union-attr]
            _add_children(branch, child.start)
        elif hosted is not None:
            _add_children(node.add(_child_label(child, spec, hosted)), hosted)
        else:
            node.add(_child_label(child, spec))
