"""Prove that the pipeline tree (examples/pipeline) recovers the way it should.

Copy this file next to your own tree and change `hedgerow_spec` and the paths.
The fixtures come from hedgerow's pytest plugin (installed with hedgerow): the
tree runs on a virtual clock that jumps whenever the actors are idle, so backoff
delays and slow children take no real time, and every fault is undone after
each test. A failing test shows the tree's last events.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import hedgerow as hr

TREE = Path(__file__).resolve().parent.parent / "pipeline" / "tree.yaml"


def assert_every_line_committed(tree, recorder):
    """The reader stops itself once the writer has every line; then the tree ends."""
    reader_done = recorder.wait_for(
        "stopped", "root/reader", lambda e: isinstance(e.reason, hr.Shutdown), timeout=30
    )
    assert reader_done.reason.term == "all 15 lines committed"
    assert hr.is_normal(tree.wait(timeout=30))


@pytest.fixture
def hedgerow_spec():
    """The tree under test: `hedgerow_tree` starts it, and stops it after the test."""
    return TREE


def test_a_parser_crash_restarts_the_reader_and_loses_no_line(
    hedgerow_tree, hedgerow_faults, hedgerow_recorder
):
    hedgerow_faults.crash("root/parser", RuntimeError("bad input"), at_message=3)
    # rest_for_one: the parser and the reader (started after it) restart; not the writer.
    hedgerow_recorder.wait_for_sequence(
        ("failed", "root/parser"),
        ("restarted", "root/parser"),
        ("restarted", "root/reader"),
    )
    assert_every_line_committed(hedgerow_tree, hedgerow_recorder)
    assert hedgerow_recorder.restarts("root/writer") == 0


def test_a_slow_writer_delays_the_pipeline_but_commits_every_line(
    hedgerow_tree, hedgerow_faults, hedgerow_recorder, hedgerow_clock
):
    hedgerow_faults.slow("root/writer", 0.5)
    assert_every_line_committed(hedgerow_tree, hedgerow_recorder)
    assert hedgerow_clock.now() > 15 * 0.5  # virtual seconds: the test took milliseconds


def test_a_parser_that_always_crashes_makes_the_root_give_up(
    hedgerow_tree, hedgerow_faults, hedgerow_recorder
):
    hedgerow_faults.crash("root/parser", probability=1.0)
    gave_up = hedgerow_recorder.wait_gave_up("root")
    assert isinstance(gave_up.reason, hr.IntensityExceeded)
    assert hedgerow_tree.gave_up or isinstance(hedgerow_tree.wait(timeout=30), hr.IntensityExceeded)
