"""The chaos engine and its command, on a small ticking tree."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from chaos_tree import tree_file
from click.testing import CliRunner

import hedgerow as hr
from hedgerow.cli._chaos import chaos
from hedgerow.node import load_tree
from hedgerow.testing import _chaos as chaos_module
from hedgerow.testing._chaos import (
    ChaosKind,
    ChaosOptions,
    plan_faults,
    run_chaos,
)


def test_the_schedule_depends_only_on_the_seed_the_options_and_the_file(tmp_path):
    spec = load_tree(tree_file(tmp_path))
    options = ChaosOptions(seed=5, duration=20, rate=1)
    first = plan_faults(spec, options, "root")
    assert first == plan_faults(load_tree(tmp_path / "tree.toml"), options, "root")
    assert first != plan_faults(spec, ChaosOptions(seed=6, duration=20, rate=1), "root")
    assert 5 <= len(first) <= 40
    assert {f.path for f in first} <= {"root/sink", "root/feed", "root/feed/ticker"}
    assert all(0 < f.time < 20 for f in first)
    only = ChaosOptions(
        seed=5, duration=20, rate=1, kinds=(ChaosKind.HANG,), targets=("root/feed/*",)
    )
    assert {(f.kind, f.path) for f in plan_faults(spec, only, "root")} == {
        (ChaosKind.HANG, "root/feed/ticker")
    }
    with pytest.raises(ValueError, match="targets root/nope: no child"):
        plan_faults(spec, ChaosOptions(targets=("root/nope",)), "root")


def test_a_run_reports_faults_restarts_recovery_and_no_lost_message(tmp_path, runtime):
    path = tree_file(tmp_path, runtime=runtime.name)
    report = run_chaos(path, ChaosOptions(seed=3, duration=30, rate=1))
    assert report.ended == "duration"
    assert report.elapsed == 30
    assert not report.gave_up
    assert report.messages.lost == 0
    assert report.messages.sent > 100
    assert report.messages.sent == report.messages.handled + report.messages.dead_lettered
    assert sum(report.injected.values()) >= 5
    assert report.restarts
    assert report.recovery.count >= 1
    assert report.recovery.p50 <= report.recovery.p99 <= report.recovery.max
    assert report.clean
    assert report.real_seconds < 10


def test_the_command_prints_a_report_and_exits_0_when_clean(tmp_path):
    path = tree_file(tmp_path)
    result = CliRunner().invoke(chaos, [str(path), "--seed", "3", "--duration", "20"])
    assert result.exit_code == 0, result.output
    for text in ("faults", "restarts", "recovery:", "messages: sent", "lost 0", "verdict: clean"):
        assert text in result.stdout


def test_json_is_the_same_schedule_for_the_same_seed(tmp_path):
    path = tree_file(tmp_path)
    args = [
        str(path),
        "--seed",
        "9",
        "--duration",
        "15",
        "--json",
        "--kind",
        "crash",
        "--kind",
        "hang",
        "--kind",
        "slow",
        "--rate",
        "2",
    ]
    runs = [CliRunner().invoke(chaos, args) for _ in range(2)]
    data = [json.loads(r.stdout) for r in runs]
    assert [r.exit_code for r in runs] == [0, 0]
    assert data[0]["schedule"] == data[1]["schedule"]
    assert {f["kind"] for f in data[0]["schedule"]} <= {"crash", "hang", "slow"}
    for key in ("injected", "skipped", "restarts", "recovery", "messages", "gave_up", "clean"):
        assert key in data[0]
    assert data[0]["messages"]["lost"] == 0


def test_a_root_that_gives_up_exits_1(tmp_path):
    path = tree_file(tmp_path, max_restarts=0)
    args = [str(path), "--duration", "20", "--kind", "crash", "--target", "root/sink", "--json"]
    result = CliRunner().invoke(chaos, args)
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["gave_up"]
    assert "max_restarts=0" in data["reason"]
    assert not data["clean"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "--rate': '0' is not a number > 0"),
        (["--target", "root/nope"], "no child of the tree matches"),
        (["--kind", "explode"], "Invalid value for '--kind'"),
    ],
)
def test_bad_options_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(chaos, [str(tree_file(tmp_path)), *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_bad_tree_file_exits_2_with_the_config_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[supervisor]\nstrategy = "one_for_some"\n')
    result = CliRunner().invoke(chaos, [str(bad)])
    assert result.exit_code == 2
    assert "supervisor.strategy" in result.stderr
    assert "one_for_some" in result.stderr


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CHECK = Path(__file__).resolve().parents[2] / "scripts" / "check_chaos_report.py"


def test_chaos_over_nested_short_shutdowns_is_clean_and_leaves_no_thread():
    # As scripts/test.sh runs it: the feeder is spared, so the tree runs until it is done.
    options = ChaosOptions(
        seed=1,
        rate=3,
        duration=30,
        targets=("root/store*", "root/ingest", "root/ingest/audit"),
        kinds=(
            ChaosKind.CRASH,
            ChaosKind.CRASH_MESSAGE,
            ChaosKind.HANG,
            ChaosKind.SLOW,
            ChaosKind.FLAKY,
        ),
    )
    report = run_chaos(EXAMPLES / "nested_shutdown" / "tree.toml", options)
    assert report.messages.lost == 0
    assert report.messages.sent > 100
    assert report.injected.get("hang", 0) >= 1
    assert report.leftover_threads == []
    assert report.clean
    assert report.to_data()["leftover_threads"] == []


class StopsNever(hr.Actor):
    """Its on_stop waits for `release`: abandoned, and its thread outlives the run."""

    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release

    def on_stop(self) -> None:
        self.release.wait()


@pytest.mark.allow_abandoned
def test_a_thread_still_alive_after_the_run_is_reported_and_the_run_is_not_clean(monkeypatch):
    monkeypatch.setattr(chaos_module, "LEFTOVER_GRACE", 0.05)
    release = threading.Event()
    spec = hr.SupervisorSpec(
        [hr.ChildSpec("stuck", StopsNever, args=(release,), shutdown=0.1)],
        max_restarts=100,
    )
    try:
        report = run_chaos(
            spec, ChaosOptions(seed=1, rate=0.1, duration=5, kinds=(ChaosKind.SLOW,))
        )
    finally:
        release.set()
    assert report.leftover_threads == ["hedgerow root/stuck#1"]
    assert not report.clean
    assert report.messages.lost == 0


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"leftover_threads": ["hedgerow root/db#1"]}, False),
        ({"messages": {"sent": 10, "handled": 9, "dead_lettered": 0, "lost": 1}}, False),
    ],
)
def test_the_ci_check_fails_on_a_lost_message_or_a_leftover_thread(changes, ok):
    report = {
        "messages": {"sent": 10, "handled": 9, "dead_lettered": 1, "lost": 0},
        "injected": {"crash": 2},
        "gave_up": False,
        "leftover_threads": [],
        **changes,
    }
    result = subprocess.run(
        [sys.executable, str(CHECK)], input=json.dumps(report), text=True, check=False
    )
    assert (result.returncode == 0) is ok


def test_the_ci_check_fails_on_an_empty_report():
    # A run that does not exit is cut by `timeout`, and may have printed nothing.
    result = subprocess.run([sys.executable, str(CHECK)], input="", text=True, check=False)
    assert result.returncode == 1
