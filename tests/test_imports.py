"""`import hedgerow` is cheap: the heavy libraries are imported where they are used.

Checked by what a fresh process has in ``sys.modules``, not by a stopwatch
(``bench/bench_import.py`` times it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("autobahn", "txaio", "pydantic", "click", "rich", "yaml", "cryptography", "OpenSSL")
"""Libraries that cost tens of milliseconds each to import."""


def fresh(code: str) -> dict[str, object]:
    """Run `code` in a new interpreter; it leaves its findings in ``found``."""
    prologue = "import json, sys, threading\nfound = {}\n"
    epilogue = (
        f"found['heavy'] = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "found['threads'] = threading.active_count()\n"
        "print(json.dumps(found))\n"
    )
    script = prologue + textwrap.dedent(code) + "\n" + epilogue
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=30, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_import_hedgerow_imports_no_heavy_library_and_starts_nothing():
    found = fresh(
        """
        import hedgerow
        found["file"] = hedgerow.__file__
        found["version"] = hedgerow.__version__
        """
    )
    assert found["file"] == str(ROOT / "hedgerow" / "__init__.py")
    assert found["heavy"] == []  # so no txaio framework is selected either
    assert found["threads"] == 1


@pytest.mark.parametrize(
    "package",
    ["hedgerow.actors", "hedgerow.components", "hedgerow.node", "hedgerow.supervision",
     "hedgerow.testing", "hedgerow.transports"],
)  # fmt: skip
def test_importing_a_subpackage_imports_no_heavy_library(package):
    found = fresh(f"import {package}")
    assert found["heavy"] == []


def test_a_tree_of_plain_actors_needs_no_wamp_config_or_cli_library():
    found = fresh(
        """
        import hedgerow as hr

        class Echo(hr.Actor):
            def on_receive(self, message):
                return message

        with hr.start_tree(hr.SupervisorSpec([hr.ChildSpec("echo", Echo)])) as tree:
            found["answer"] = tree.get_child("echo").ask("hi", timeout=5)
        """
    )
    assert found["answer"] == "hi"
    assert found["heavy"] == []


def test_a_tree_file_without_worker_tables_imports_no_worker_machinery(tmp_path):
    """The node's loader builds a worker table's Worker; the process machinery behind
    it (subprocess, the fork server) waits for a file that has one."""
    path = tmp_path / "tree.json"
    path.write_text('{"supervisor": {"children": [{"id": "a", "start": "hedgerow:Actor"}]}}')
    found = fresh(
        f"""
        import hedgerow as hr
        found["children"] = [c.id for c in hr.load_tree({str(path)!r}).children]
        found["worker"] = [m for m in ("hedgerow.node._worker", "subprocess") if m in sys.modules]
        """
    )
    assert found["children"] == ["a"]
    assert found["worker"] == []


def test_a_lazy_name_is_the_object_its_module_defines():
    found = fresh(
        """
        import hedgerow, hedgerow.transports
        from hedgerow.supervision._spec import ChildSpec
        from autobahn.wamp.exception import ApplicationError
        found["same"] = [
            hedgerow.ChildSpec is ChildSpec,
            hedgerow.transports.ApplicationError is ApplicationError,
            "ChildSpec" in dir(hedgerow),
        ]
        try:
            hedgerow.NoSuchName
        except AttributeError as exc:
            found["error"] = str(exc)
        """
    )
    assert found["same"] == [True, True, True]
    assert found["error"] == "module 'hedgerow' has no attribute 'NoSuchName'"
