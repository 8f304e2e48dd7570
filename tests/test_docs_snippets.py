"""Every code block in README.md and docs/ that is meant to run, runs as written.

A page's blocks are read in order. Before a fence, an HTML comment (invisible
on the rendered page) says what to do with the block:

- none, on a ``python`` block: run it in a fresh interpreter; it must exit 0;
- ``<!-- file: NAME -->``: write the block to NAME in the page's scratch
  directory (where its later blocks run), so a tree file and its module can
  be shown and then used;
- ``<!-- pytest -->``: write the block as a test file and run pytest on it
  (hedgerow's plugin gives the fixtures); every test must pass;
- ``<!-- run -->``, on a ``sh`` block: run it with bash (``set -e``), with
  this interpreter's ``bin`` directory first on PATH;
- ``<!-- not run: WHY -->``: leave it, for the reason given (a router on
  another machine, a fragment of a larger program).

Blocks in other languages without a comment (``toml`` fragments, output,
shell sessions) are shown, not run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TIMEOUT = 45
"""Seconds a snippet may take (under pytest-timeout's 60, so its output is shown)."""

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<lang>[\w+-]*)[^\n]*$")
_MARK = re.compile(
    r"^\s*<!--\s*(?P<mark>file|pytest|run|not run)\s*(?::\s*(?P<arg>.*?))?\s*-->\s*$"
)


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    mark: str | None
    arg: str | None

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of `page`, each with the marker comment before it, if any."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start, fence, indent = index, opening["fence"], len(opening["indent"])
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index][indent:])
            index += 1
        index += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        mark = _MARK.match(lines[previous]) if previous >= 0 else None
        found.append(
            Block(
                page, start + 1, opening["lang"], "\n".join(body) + "\n",
                mark["mark"] if mark else None, mark["arg"] if mark else None,
            )
        )  # fmt: skip
    return found


def runnable(block: Block) -> bool:
    if block.mark == "not run":
        return False
    return block.mark in ("pytest", "run") or (block.mark is None and block.lang == "python")


ALL = [block for page in PAGES for block in blocks(page)]
RUNNABLE = [block for block in ALL if runnable(block)]


def test_every_marker_is_well_formed():
    for block in ALL:
        if block.mark == "not run":
            assert block.arg, f"{block.id}: say why it is not run: <!-- not run: WHY -->"
        if block.mark == "file":
            assert block.arg, f"{block.id}: <!-- file: NAME --> needs a NAME"
        if block.mark == "run":
            assert block.lang == "sh", f"{block.id}: <!-- run --> is for sh blocks"
        if block.mark == "pytest":
            assert block.lang == "python", f"{block.id}: <!-- pytest --> is for python blocks"


def test_the_readme_and_the_getting_started_guide_have_code_that_runs():
    pages = {block.page for block in RUNNABLE}
    assert ROOT / "README.md" in pages
    assert ROOT / "docs" / "guides" / "getting-started.md" in pages


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda block: block.id)
def test_snippet_runs_as_written(block: Block, tmp_path: Path):
    for earlier in blocks(block.page):  # the page's files, as a reader has them
        if earlier.mark == "file" and earlier.arg:
            target = tmp_path / earlier.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(earlier.code)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(tmp_path)])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("HEDGEROW_TEST_FRAMEWORK", None)
    if block.mark == "run":
        command = ["bash", "-e", "-c", block.code]
    elif block.mark == "pytest":
        (tmp_path / "test_snippet.py").write_text(block.code)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command.append("test_snippet.py")
    else:
        command = [sys.executable, "-c", block.code]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"{block.id} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
