"""A missing optional extra is an install hint and exit status 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from hedgerow._extras import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "examples" / "flaky_worker" / "tree.toml"


def hedgerow_without(modules: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `hedgerow` command in a process where `modules` cannot be imported."""
    code = textwrap.dedent(
        f"""
        import sys
        for name in {modules!r}:
            sys.modules[name] = None  # as if it were not installed
        from hedgerow.cli import main
        main({list(args)!r})
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )


def test_every_extra_in_the_package_metadata_has_an_install_hint():
    metadata = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(EXTRAS) == set(metadata["project"]["optional-dependencies"])


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_require_names_the_extra_and_the_pip_command(extra, monkeypatch):
    module = EXTRAS[extra].modules[0]
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra) as caught:
        require(extra)
    assert caught.value.extra == extra
    assert f"pip install 'hedgerow[{extra}]'" in str(caught.value)
    assert module in str(caught.value)


def test_require_is_quiet_when_the_extra_is_installed():
    require("twisted")  # the test environment has every extra


def test_run_on_twisted_without_twisted_is_a_hint_and_exit_2():
    # autobahn ships twisted/plugins, so `import twisted` alone succeeds
    # without Twisted: the hint must not rely on it.
    done = hedgerow_without(["twisted.internet"], "run", "--framework", "twisted", str(TREE))
    assert done.returncode == 2, done.stderr
    assert "pip install 'hedgerow[twisted]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_router_without_crossbar_is_a_hint_and_exit_2(tmp_path):
    code = textwrap.dedent(
        """
        import sys
        from hedgerow.transports import _crossbar
        _crossbar.sys.executable = "/nonexistent/python"
        from hedgerow.cli import main
        main(["router"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, check=False, cwd=tmp_path,
        env={"PATH": "/nonexistent", "HEDGEROW_ROUTER_SECRET": "s3cret-s3cret-s3cret",
             "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "pip install 'hedgerow[router]'" in done.stderr
    assert "Traceback" not in done.stderr
