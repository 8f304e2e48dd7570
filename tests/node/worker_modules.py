"""An actor that tests host in a worker process to see what the process imported."""

from __future__ import annotations

import json
import sys

import hedgerow as hr

MARKER = "modules loaded: "


class ReportsModules(hr.Actor):
    """Prints the process's loaded modules at start (a worker sends prints to stderr)."""

    def on_start(self) -> None:
        print(MARKER + json.dumps(sorted(sys.modules)), flush=True)  # noqa: T201
