"""Loading tree files: a file, its text or its parsed data, built into specs.

The schema, the checks and the builder are in `hedgerow.supervision` (see
`hedgerow.supervision._treefile`); the loaders are here, in the node's layer,
because a tree file's worker table builds a `hedgerow.node.Worker`
(`hedgerow.node._worker_table`), which supervision cannot import. A worker
process reads its container with them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow.supervision._treefile import TreeFile, tree_file_from_data
from hedgerow.supervision._treeparse import Format, format_of, parse, read_text

if TYPE_CHECKING:
    from hedgerow.supervision._spec import SupervisorSpec
    from hedgerow.supervision._treebuild import Builder
    from hedgerow.supervision._treeschema import WorkerModel

__all__ = ["load_tree", "loads_tree", "read_tree", "tree_from_data"]


def load_tree(path: str | Path) -> SupervisorSpec:
    """Read a tree file and build its `SupervisorSpec` (see `read_tree`)."""
    return read_tree(path).spec


def read_tree(path: str | Path) -> TreeFile:
    """Read a tree file and build its `SupervisorSpec`, importing every class it names.

    The format follows the extension (``.toml``, ``.yaml``/``.yml``, ``.json``).
    The file's directory (and its ``pythonpath`` entries) go to the front of
    `sys.path`, so that a tree's actors can live next to it. Raises
    `ConfigError` for anything wrong; nothing is started.
    """
    file = Path(path)
    fmt = format_of(file)
    data = parse(read_text(file), fmt, str(file))
    return tree_file_from_data(
        data, source=str(file), base_dir=file.resolve().parent, worker_table=_worker_table
    )


def loads_tree(
    text: str,
    fmt: Format,
    *,
    source: str = "<string>",
    base_dir: str | Path | None = None,
) -> SupervisorSpec:
    """Build a `SupervisorSpec` from a tree file's text; `source` names it in errors."""
    data = parse(text, fmt, source)
    return tree_from_data(data, source=source, base_dir=base_dir)


def tree_from_data(
    data: Any,
    *,
    source: str = "<data>",
    base_dir: str | Path | None = None,
) -> SupervisorSpec:
    """Build a `SupervisorSpec` from a tree file's parsed data (nested dicts and lists)."""
    return tree_file_from_data(
        data, source=source, base_dir=base_dir, worker_table=_worker_table
    ).spec


def _worker_table(builder: Builder, model: WorkerModel, worker_id: str, key: str) -> Any:
    """`build_worker`, imported with the worker processes' machinery (subprocess, the
    fork server) only when a file has a worker table."""
    from hedgerow.node._worker_table import build_worker  # noqa: PLC0415 - see DEFERRED

    return build_worker(builder, model, worker_id, key)
