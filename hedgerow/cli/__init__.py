"""The `hedgerow` command: check, run and chaos-test trees from tree files; run the router.

The group and its exit codes are in `_main`; one module per command
(`_check`, `_run`, `_status`, `_chaos`, `_router`), and the views of a tree
(`_view`, `_live_log`).
"""

from __future__ import annotations

from hedgerow.cli import _check, _run  # noqa: F401 - they register their commands
from hedgerow.cli._chaos import chaos
from hedgerow.cli._main import cli, main
from hedgerow.cli._router import router
from hedgerow.cli._status import status

__all__ = ["cli", "main", "router"]

cli.add_command(chaos)
cli.add_command(router)
cli.add_command(status)
