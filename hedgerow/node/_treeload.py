"""Loading tree files: a file, its text or its parsed data, built into specs.

The loaders of `hedgerow.supervision._treefile` (the schema, the checks and
the builder are there, with what a tree file may hold) read here, in the
node's layer: a tree file's worker table builds a `hedgerow.node.Worker`,
which supervision cannot import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hedgerow.supervision._treefile import TreeFile, tree_file_from_data
from hedgerow.supervision._treeparse import Format, format_of, parse, read_text

if TYPE_CHECKING:
    from hedgerow.supervision._spec import SupervisorSpec

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
    return tree_file_from_data(data, source=str(file), base_dir=file.resolve().parent)


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
    return tree_file_from_data(data, source=source, base_dir=base_dir).spec
