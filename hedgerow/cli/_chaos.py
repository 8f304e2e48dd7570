"""`hedgerow chaos`: run a tree file under chaos (`hedgerow.testing.run_chaos`) and report."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from hedgerow._clock import MAX_DELAY
from hedgerow._events import quiet_event_log
from hedgerow._seconds import Finite, Seconds
from hedgerow.node._treeload import load_tree
from hedgerow.testing._chaos import ChaosKind, ChaosOptions, ChaosReport, plan_faults, run_chaos


def _render(report: ChaosReport, console: Any) -> None:
    from rich.table import Table  # noqa: PLC0415 - only the text report needs it

    console.print(
        f"[bold]hedgerow chaos[/] {report.file}  seed={report.seed}  "
        f"duration={report.duration:g}s ({report.clock} clock, "
        f"{report.real_seconds:g}s real)"
    )
    faults = Table(title="faults", title_justify="left")
    for column in ("kind", "injected", "skipped"):
        faults.add_column(column, justify="left" if column == "kind" else "right")
    for kind in sorted(set(report.injected) | set(report.skipped)):
        faults.add_row(kind, str(report.injected.get(kind, 0)), str(report.skipped.get(kind, 0)))
    faults.add_row(
        "[bold]total", str(sum(report.injected.values())), str(sum(report.skipped.values()))
    )
    console.print(faults)
    if report.not_reached:
        console.print(f"({report.not_reached} planned faults came after the tree had ended)")
    restarts = Table(title="restarts", title_justify="left")
    restarts.add_column("child")
    restarts.add_column("restarts", justify="right")
    for path, count in report.restarts.items():
        restarts.add_row(path, str(count))
    if not report.restarts:
        restarts.add_row("(none)", "0")
    console.print(restarts)
    rec = report.recovery

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}s"

    console.print(
        f"recovery: {rec.count} faults, p50 {seconds(rec.p50)}, p99 {seconds(rec.p99)}, "
        f"max {seconds(rec.max)}, unrecovered {rec.unrecovered}"
    )
    msgs = report.messages
    lost = f"[bold red]{msgs.lost}[/]" if msgs.lost else "0"
    console.print(
        f"messages: sent {msgs.sent}, handled {msgs.handled}, "
        f"dead-lettered {msgs.dead_lettered}, withdrawn {msgs.withdrawn}, lost {lost}"
    )
    console.print(
        "  dead letters are accounted for, each reported with its reason\n"
        "  (the message that crashed an actor, or one for a child gone for good);\n"
        "  a loss is a message neither handled nor dead-lettered",
        style="dim",
        highlight=False,
        soft_wrap=True,
    )
    if report.gave_up:
        console.print(f"root: [bold red]gave up[/] ({report.reason})")
    elif report.ended == "stopped":
        console.print(f"root: stopped by itself ({report.reason})")
    else:
        console.print(f"root: kept going for {report.elapsed:g}s")
    _render_verdict(report, console)


def _render_verdict(report: ChaosReport, console: Any) -> None:
    """The leftover threads, then whether the run is clean and why not."""
    msgs = report.messages
    leftover = report.leftover_threads
    if leftover:
        console.print(
            f"threads left over: [bold red]{len(leftover)}[/] ({', '.join(leftover)})",
            highlight=False,
        )
    else:
        console.print("threads left over: 0")
    if report.clean:
        verdict = "[bold green]clean[/] (no message lost, the root did not give up, no thread left)"
    else:
        why = [f"{msgs.lost} message(s) lost"] if msgs.lost else []
        why += ["the root gave up"] if report.gave_up else []
        why += [f"{len(leftover)} thread(s) left over"] if leftover else []
        verdict = f"[bold red]not clean[/] ({', '.join(why)})"
    console.print(f"verdict: {verdict}")


@click.command(
    "chaos",
    epilog="Example: hedgerow chaos examples/pipeline/tree.yaml --seed 1 --rate 2 --json",
)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault schedule.")
@click.option(
    "--duration",
    type=Seconds(),
    default=30.0,
    show_default=True,
    help="Seconds of the tree's clock to run.",
)
@click.option(
    "--rate",
    type=Finite(0, MAX_DELAY, min_open=True),
    default=0.5,
    show_default=True,
    help="Faults per second, on average.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([k.value for k in ChaosKind]),
    help="A fault kind to draw from (repeat it; default: all).",
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="GLOB",
    help=(
        "Child paths to hit, e.g. 'root/pipeline/*'; a simple_one_for_one pool's "
        "children are 'root/pool/conn-*' (repeat it; default: all)."
    ),
)
@click.option(
    "--hang-time",
    type=Seconds(allow_zero=True),
    default=1.0,
    show_default=True,
    help="Seconds a hang lasts.",
)
@click.option(
    "--slow-delay",
    type=Seconds(allow_zero=True),
    default=0.1,
    show_default=True,
    help="Delay per message of a slow fault.",
)
@click.option(
    "--window",
    type=Seconds(allow_zero=True),
    default=2.0,
    show_default=True,
    help="Seconds a slow or flaky fault lasts.",
)
@click.option(
    "--flaky-probability",
    type=Finite(0, 1),
    default=0.3,
    show_default=True,
    help="Crash probability per message of a flaky fault.",
)
@click.option("--real-time", is_flag=True, help="Use the real clock, not a virtual one.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def chaos(
    ctx: click.Context,
    *,
    file: Path,
    seed: int,
    duration: float,
    rate: float,
    kinds: tuple[str, ...],
    targets: tuple[str, ...],
    hang_time: float,
    slow_delay: float,
    window: float,
    flaky_probability: float,
    real_time: bool,
    as_json: bool,
) -> None:
    """Run the tree in FILE under a seeded random fault schedule and report.

    Exit status: 0 for a clean report, 1 if a message was lost, the root gave
    up or a thread of the tree was left over, 2 for a bad tree file or bad options.
    """
    from rich.console import Console  # noqa: PLC0415 - keep `import hedgerow.testing` light
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    options = ChaosOptions(
        seed=seed,
        duration=duration,
        rate=rate,
        kinds=tuple(ChaosKind(k) for k in kinds) or tuple(ChaosKind),
        targets=targets,
        hang_time=hang_time,
        slow_delay=slow_delay,
        window=window,
        flaky_probability=flaky_probability,
        real_time=real_time,
    )
    err = Console(stderr=True)
    try:
        options.check()
        spec = load_tree(file)
        plan_faults(spec, options, spec.name or "root")
    except ValueError as exc:  # ConfigError included
        err.print(Text.assemble(("error", "red"), f" {exc}"), highlight=False, soft_wrap=True)
        ctx.exit(2)
    columns = (
        TextColumn("chaos"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:g}s of tree time"),
        TimeElapsedColumn(),
    )
    with (
        quiet_event_log(),
        Progress(*columns, console=err, transient=True, disable=as_json) as bar,
    ):
        task = bar.add_task("chaos", total=duration)
        report = run_chaos(spec, options, progress=lambda t: bar.update(task, completed=t))
    report = _with_file(report, str(file))
    if as_json:
        click.echo(json.dumps(report.to_data(), indent=2, default=str))
    else:
        _render(report, Console(file=sys.stdout, highlight=False))
    ctx.exit(0 if report.clean else 1)


def _with_file(report: ChaosReport, file: str) -> ChaosReport:
    return replace(report, file=file)
