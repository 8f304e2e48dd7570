"""examples/asyncio_app and examples/async_components, run as their READMEs say.

(`hedgerow run` on their tree files is tested with every example's, in tests/test_cli.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT = 45.0


def python(script: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("HEDGEROW_TEST_FRAMEWORK", None)
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_asyncio_app_runs_its_tree_to_the_end():
    process = python(EXAMPLES / "asyncio_app" / "app.py")
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    # Its event-loop actors run on the application's own loop (use_running_loop).
    assert lines[0] == "app: the price list runs on MainThread, as this application does"
    assert lines[1].startswith("dashboard:")
    events = [line for line in lines if line.startswith("tree:")]
    assert events == [
        "tree: root/ticker failed: bad tick 5 from the feed",
        "tree: root/ticker restarted",
        "tree: root/ticker stopped: all 15 ticks sent",
    ]
    assert lines[-1].startswith("app: tree ended (auto shutdown: ticker exited)")
    # The dashboard went on while the ticker crashed and came back.
    counts = [int(line.split()[1]) for line in lines if line.startswith("dashboard:")]
    assert counts == sorted(counts)
    assert len(counts) >= 2


def test_the_asyncio_app_stops_its_tree_on_sigint():
    process = python(EXAMPLES / "asyncio_app" / "app.py")
    assert process.stdout is not None
    process.stdout.readline()  # where the price list runs
    first = process.stdout.readline()  # the tree has started: the dashboard is running
    assert first.startswith("dashboard:"), first
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out + err
    assert out.splitlines()[-1].startswith("app: tree ended (shutdown)"), out
    assert "Traceback" not in err


def test_the_async_components_run_as_autobahns_run_does():
    process = python(EXAMPLES / "async_components" / "components.py")
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0, out + err
    lines = out.splitlines()
    assert lines[0] == "store: joined realm1"
    assert "auditor: k7" not in out  # the bad event: reported, and the auditor goes on
    assert "handler_failed components/auditor" in err
    assert "auditor: k7 changed without a value" in err
    assert "auditor: k12 = 120" in lines
    assert "writer: read back k12 = 120; closing" in lines
    assert lines[-1].startswith("run: done (")
    assert lines[-1].endswith("the auditor audited 11 changes")
