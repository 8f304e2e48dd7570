"""Bounded inboxes: `max_inbox` and its overflow policies; every drop is a dead letter."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import helpers
import pytest

import hedgerow as hr
from hedgerow import EventKind
from hedgerow.testing import Faults


class Gated(hr.Actor):
    """Waits at its first message until `release` is set; records what it handles."""

    def __init__(
        self,
        entered: threading.Event,
        release: threading.Event,
        drained: threading.Event | None = None,
    ) -> None:
        super().__init__()
        self.entered = entered
        self.release = release
        self.drained = drained
        self.handled: list[Any] = []

    def on_receive(self, message: Any) -> Any:
        self.entered.set()
        return helpers.blocking(self, self.release, lambda: self.handle(message))

    def handle(self, message: Any) -> Any:
        if message == "crash":
            raise RuntimeError("crashed")
        if isinstance(message, tuple) and message[0] == "self":
            self.actor_ref.tell(("again", message[1]))
        self.handled.append(message)
        ref = self.actor_child_ref
        if self.drained is not None and ref is not None and ref.inbox_statistics().depth == 0:
            self.drained.set()  # handled all there was
        return message


class Letters:
    """Counts the dead letters of a tree (without keeping a million events)."""

    def __init__(self, events: hr.EventStream) -> None:
        self.lock = threading.Lock()
        self.messages: list[Any] = []
        self.full = 0
        events.subscribe(self.on_event)

    def on_event(self, event: hr.Event) -> None:
        if event.kind is not EventKind.DEAD_LETTER:
            return
        with self.lock:
            if isinstance(event.reason, hr.InboxFull):
                self.full += 1
            if not isinstance(event.message, int) or event.message < 10_000_000:
                self.messages.append(event.message)


DRAINED = threading.Event()
"""Set by the child of `gated` when it has handled all there was (one test at a time)."""


def gated(**options: Any) -> tuple[hr.ChildSpec, threading.Event, threading.Event]:
    entered, release = threading.Event(), threading.Event()
    DRAINED.clear()
    gate = helpers.current[0].of(Gated)  # on the test's runtime
    spec = hr.ChildSpec("a", gate, args=(entered, release, DRAINED), **options)
    return spec, entered, release


def drain(a: hr.ChildRef[Any], message: Any = "done") -> Any:
    """Wait until the child has handled all there was, then ask it `message`."""
    assert DRAINED.wait(timeout=60)
    answer = a.ask(message, timeout=30)
    DRAINED.clear()  # (set again by this very message)
    return answer


def run(spec: hr.SupervisorSpec) -> tuple[hr.Tree, Letters]:
    events = hr.EventStream()
    letters = Letters(events)
    return hr.start_tree(spec, events=events), letters


@pytest.fixture
def fast_switching():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


# -- bounded memory -----------------------------------------------------------


@pytest.mark.timeout(120)
def test_a_million_tells_to_a_slow_bounded_child_keep_its_inbox_at_the_bound():
    child, entered, release = gated(max_inbox=1000)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell(10_000_000)
        entered.wait(timeout=10)
        for n in range(1_000_000):
            a.tell(10_000_001 + n)
        stats = a.inbox_statistics()
        assert stats.depth == 1000
        assert stats.peak == 1000
        assert stats.dropped == 1_000_000 - 1000
        assert letters.full == 1_000_000 - 1000
        assert len(a.actor_inbox.queue) == 1000  # the memory: what is queued, no more
        release.set()
        assert drain(a) == "done"
        assert a.inbox_statistics().depth == 0


# -- each policy, exactly accounted under concurrent senders ---------------------


SENDERS, EACH = 4, 300


def send_all(a: hr.ChildRef[Any], raised: list[int]) -> None:
    def sender(base: int) -> None:
        for n in range(base, base + EACH):
            try:
                a.tell(n)
            except hr.InboxFull:
                raised.append(n)

    threads = [threading.Thread(target=sender, args=(k * EACH,)) for k in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest", "fail"])
def test_every_message_is_handled_or_dead_lettered_exactly_once(runtime, overflow, fast_switching):
    child, entered, release = gated(max_inbox=50, inbox_overflow=overflow)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        raised: list[int] = []
        send_all(a, raised)
        assert a.inbox_statistics().depth == 50
        release.set()
        assert drain(a) == "done"
        handled = [m for m in a.incarnation.handled if isinstance(m, int)]  # type: ignore[union-attr]
        dead = [m for m in letters.messages if isinstance(m, int)]
        sent = SENDERS * EACH
        assert len(handled) == 50
        assert sorted(handled + dead) == list(range(sent))  # each once, none lost
        assert a.inbox_statistics().dropped == letters.full == sent - 50
        if overflow == "fail":
            assert sorted(raised) == sorted(dead)  # the sender was told, and it is accounted
        else:
            assert raised == []
        if overflow == "drop_oldest":
            # The newest are kept: those in the inbox when the senders were done.
            assert all(handled[i] < handled[i + 1] for i in range(49)) or len(set(handled)) == 50


def test_block_makes_the_senders_wait_and_loses_nothing(runtime, fast_switching):
    child, entered, release = gated(max_inbox=5, inbox_overflow="block", inbox_timeout=30)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        release.set()
        send_all(a, [])
        assert drain(a) == "done"
        handled = [m for m in a.incarnation.handled if isinstance(m, int)]  # type: ignore[union-attr]
        assert sorted(handled) == list(range(SENDERS * EACH))
        stats = a.inbox_statistics()
        assert stats.dropped == 0
        assert stats.peak <= 5
        assert letters.messages == []


def test_block_gives_up_after_its_timeout_then_the_message_is_a_dead_letter(runtime):
    child, entered, release = gated(max_inbox=1, inbox_overflow="block", inbox_timeout=0.05)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        a.tell(1)
        began = time.monotonic()
        a.tell(2)  # waits 0.05 s, then gives up: no error for a tell (as Akka's push timeout)
        assert time.monotonic() - began >= 0.05
        with pytest.raises(hr.InboxFull, match="root/a"):
            a.ask(3)  # an asker learns it (a DeadLetterError)
        assert letters.messages == [2, 3]
        assert a.inbox_statistics().dropped == 2
        release.set()
        assert drain(a) == "done"


def test_a_blocked_sender_goes_on_as_soon_as_there_is_room(runtime):
    child, entered, release = gated(max_inbox=1, inbox_overflow="block", inbox_timeout=30)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        a.tell(1)
        sent = threading.Event()
        thread = threading.Thread(target=lambda: (a.tell(2), sent.set()))
        thread.start()
        assert not sent.wait(timeout=0.02)
        release.set()
        assert sent.wait(timeout=10)
        thread.join(timeout=10)
        assert drain(a) == "done"
        assert letters.messages == []


def test_a_child_telling_itself_under_block_does_not_wait_for_itself(runtime):
    child, entered, release = gated(max_inbox=1, inbox_overflow="block", inbox_timeout=30)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        release.set()
        a.tell("fill")  # handled at once
        a.ask("done", timeout=10)
        release.clear()
        entered.clear()
        a.tell(("self", 1))
        entered.wait(timeout=10)
        a.tell("occupies the one place")
        release.set()  # its handler's self-tell finds the inbox full: dropped, not a deadlock
        assert drain(a) == "done"
        assert ("again", 1) in letters.messages


def test_a_stopping_child_wakes_its_blocked_senders(runtime):
    child, entered, _release = gated(max_inbox=1, inbox_overflow="block", inbox_timeout=30)
    child = hr.ChildSpec(
        "a",
        child.start,
        args=child.args,
        max_inbox=1,
        inbox_overflow="block",
        inbox_timeout=30,
        shutdown="brutal_kill",
    )
    tree, letters = run(hr.SupervisorSpec([child]))
    a = tree.get_child("a")
    a.tell("first")
    entered.wait(timeout=10)
    a.tell(1)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (a.tell(2), done.set()))
    thread.start()
    assert not done.wait(timeout=0.02)
    tree.stop(timeout=10)
    assert done.wait(timeout=10)
    thread.join(timeout=10)
    _release.set()
    assert sorted(m for m in letters.messages if isinstance(m, int)) == [1, 2]


# -- control messages, restarts, the harness's counts ---------------------------


def test_stops_are_never_dropped_nor_counted_against_the_bound(runtime):
    child, entered, release = gated(max_inbox=2, inbox_overflow="fail")
    tree, letters = run(hr.SupervisorSpec([child]))
    a = tree.get_child("a")
    a.tell("first")
    entered.wait(timeout=10)
    a.tell(1)
    a.tell(2)
    with pytest.raises(hr.InboxFull):
        a.tell(3)
    # pykka's stop (a message behind the others) is let in, and not dropped
    stopping = a.incarnation.actor_ref.stop(block=False)  # type: ignore[union-attr]
    release.set()
    stopping.get(timeout=10)
    tree.stop(timeout=10)
    assert a.inbox_statistics().dropped == 1
    assert letters.messages == [3]


def test_drops_are_counted_across_restarts(runtime):
    child, entered, release = gated(max_inbox=1)
    tree, letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("crash")
        entered.wait(timeout=10)
        a.tell(1)
        a.tell(2)  # dropped
        assert a.inbox_statistics().dropped == 1
        release.set()
        assert drain(a) == "done"  # handled by the second incarnation
        assert a.incarnation.actor_incarnation == 2  # type: ignore[union-attr]
        release.clear()
        entered.clear()
        a.tell("hold")
        entered.wait(timeout=10)
        a.tell(3)
        a.tell(4)  # dropped
        stats = a.inbox_statistics()
        assert (stats.dropped, stats.max_inbox) == (2, 1)
        release.set()
        assert drain(a) == "done"
        assert [m for m in letters.messages if isinstance(m, int)] == [2, 4]


@pytest.mark.parametrize("overflow", ["drop_newest", "drop_oldest", "fail"])
def test_the_harness_counts_drops_as_dead_letters(runtime, overflow, fast_switching):
    child, entered, release = gated(max_inbox=10, inbox_overflow=overflow)
    tree, _letters = run(hr.SupervisorSpec([child]))
    with tree:
        faults = Faults(tree)
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        send_all(a, [])
        release.set()
        drain(a)
        counts = faults.messages
        faults.close()
    sent = SENDERS * EACH + 2
    assert counts.sent == sent, counts
    assert counts.handled == 12, counts
    assert counts.dead_lettered == sent - 12, counts


# -- specs and tree files -------------------------------------------------------


def test_a_supervisors_bound_is_its_childrens_default():
    spec = hr.SupervisorSpec(
        [
            hr.ChildSpec("a", Gated, args=(threading.Event(), threading.Event())),
            hr.ChildSpec("b", Gated, args=(threading.Event(), threading.Event()), max_inbox=3),
            hr.ChildSpec(
                "c", Gated, args=(threading.Event(), threading.Event()), inbox_overflow="fail"
            ),
        ],
        max_inbox=100,
        inbox_overflow="drop_oldest",
    )
    a, b, c = (spec.inbox_for(child) for child in spec.children)
    assert (a.max_inbox, a.overflow) == (100, hr.Overflow.DROP_OLDEST)
    assert (b.max_inbox, b.overflow) == (3, hr.Overflow.DROP_OLDEST)
    assert (c.max_inbox, c.overflow) == (100, hr.Overflow.FAIL)
    assert hr.SupervisorSpec([spec.children[0]]).inbox_for(spec.children[0]) is None
    with hr.start_tree(spec) as tree:
        stats = [tree.get_child(x).inbox_statistics() for x in "abc"]
        assert [(s.max_inbox, s.overflow) for s in stats] == [
            (100, hr.Overflow.DROP_OLDEST),
            (3, hr.Overflow.DROP_OLDEST),
            (100, hr.Overflow.FAIL),
        ]


@pytest.mark.parametrize(
    ("options", "field", "rule"),
    [
        ({"max_inbox": 0}, "max_inbox", "expected an integer >= 1"),
        ({"max_inbox": True}, "max_inbox", "expected an integer >= 1"),
        ({"max_inbox": 2.5}, "max_inbox", "expected an integer >= 1"),
        ({"inbox_overflow": "drop"}, "inbox_overflow", "block, drop_newest, drop_oldest, fail"),
        ({"inbox_timeout": -1, "inbox_overflow": "block"}, "inbox_timeout", ">= 0"),
        ({"inbox_timeout": 1, "inbox_overflow": "fail"}, "inbox_timeout", "only for"),
    ],
)
def test_bad_inbox_settings_name_the_field(options, field, rule):
    with pytest.raises(hr.SpecError, match=rule) as info:
        hr.ChildSpec("a", Gated, **options)
    assert info.value.field == field
    with pytest.raises(hr.SpecError, match=rule):
        hr.SupervisorSpec(**options)


def test_a_supervisor_child_takes_no_bound():
    with pytest.raises(hr.SpecError, match="supervisor") as info:
        hr.ChildSpec("s", hr.SupervisorSpec(), max_inbox=5)
    assert info.value.field == "max_inbox"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_tree_files_take_the_inbox_keys_and_write_them_back(tmp_path):
    text = """\
        [supervisor]
        max_inbox = 100
        inbox_overflow = "block"
        inbox_timeout = 2
        [[supervisor.children]]
        id = "a"
        start = "helpers:Worker"
        [[supervisor.children]]
        id = "b"
        start = "helpers:Worker"
        max_inbox = 5
        inbox_overflow = "drop_oldest"
    """
    spec = hr.load_tree(write(tmp_path, "tree.toml", text))
    a, b = (spec.inbox_for(child) for child in spec.children)
    assert (a.max_inbox, a.overflow, a.timeout) == (100, hr.Overflow.BLOCK, 2)
    assert (b.max_inbox, b.overflow) == (5, hr.Overflow.DROP_OLDEST)
    for fmt in ("toml", "yaml", "json"):
        written = hr.dumps_tree(spec, fmt)
        assert "inbox_overflow" in written
        assert hr.load_tree(write(tmp_path, f"again.{fmt}", written)) == spec


@pytest.mark.parametrize(
    ("line", "key", "rule"),
    [
        ('max_inbox = "many"', "supervisor.children[0].max_inbox", "integer"),
        ("max_inbox = 0", "supervisor.children[0].max_inbox", ">= 1"),
        ('inbox_overflow = "spill"', "supervisor.children[0].inbox_overflow", "drop_newest"),
        ("inbox_timeout = -3", "supervisor.children[0].inbox_timeout", ">= 0"),
    ],
)
def test_bad_inbox_keys_in_a_tree_file_name_the_key(tmp_path, line, key, rule):
    text = f"""\
        [[supervisor.children]]
        id = "a"
        start = "helpers:Worker"
        {line}
    """
    path = write(tmp_path, "tree.toml", text)
    with pytest.raises(hr.ConfigError) as info:
        hr.load_tree(path)
    message = str(info.value)
    assert key in message
    assert rule in message


# -- what the CLI and the management API show ------------------------------------


FLOODING_ACTORS = '''\
import hedgerow as hr


class Flooding(hr.Actor):
    """Tells itself ten messages as it starts: its inbox takes two."""

    def on_start(self):
        for n in range(10):
            self.actor_ref.tell(n)
'''

FLOODING_TREE = """\
[supervisor]
name = "svc"
max_inbox = 2
[[supervisor.children]]
id = "flood"
start = "flooding_actors:Flooding"
"""


def test_describe_gives_each_childs_inbox(runtime):
    child, entered, release = gated(max_inbox=1)
    tree, _letters = run(hr.SupervisorSpec([child]))
    with tree:
        a = tree.get_child("a")
        a.tell("first")
        entered.wait(timeout=10)
        a.tell(1)
        a.tell(2)
        [row] = tree.describe()
        assert row["inbox"] == {"depth": 1, "max_inbox": 1, "overflow": "drop_newest", "dropped": 1}
        release.set()


def test_status_shows_inbox_depth_and_drops():
    from hedgerow.cli._status import _render  # noqa: PLC0415
    from hedgerow.cli._status_answer import check_tree  # noqa: PLC0415

    answer = {
        "name": "svc",
        "pid": 1,
        "uptime": 3.0,
        "children": [
            {
                "id": "a",
                "state": "running",
                "restarts": 0,
                "inbox": {"depth": 3, "max_inbox": 5, "overflow": "fail", "dropped": 7},
            },
            {"id": "b", "state": "running", "restarts": 0, "inbox": {"depth": 0}},
            {"id": "c", "state": "running", "inbox": {"depth": "[bold]x[/bold]", "dropped": []}},
        ],
    }
    from rich.console import Console  # noqa: PLC0415

    console = Console(width=100, record=True, color_system=None)
    console.print(_render(check_tree(answer), answer))
    text = console.export_text()
    assert "a running inbox=3/5 dropped=7" in text
    assert "b running\n" in text
    assert "c running\n" in text  # what is not an inbox's figures is left out


def test_run_shows_inbox_depth_and_drops_in_json_and_the_live_view(tmp_path):
    import json  # noqa: PLC0415

    from click.testing import CliRunner  # noqa: PLC0415

    from hedgerow.cli import cli  # noqa: PLC0415

    (tmp_path / "flooding_actors.py").write_text(FLOODING_ACTORS)
    (tmp_path / "flood.toml").write_text(FLOODING_TREE)
    args = ["run", str(tmp_path / "flood.toml"), "--for", "0.6"]
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    drops = [r for r in records if r["kind"] == "dead_letter"]
    assert len(drops) == 8
    assert all("InboxFull" in r["reason"] for r in drops)
    inbox = [r for r in records if r["kind"] == "inbox"]
    assert inbox
    assert inbox[-1]["path"] == "svc/flood"
    assert (inbox[-1]["max_inbox"], inbox[-1]["dropped"]) == (2, 8)
    result = CliRunner().invoke(cli, [*args, "--live"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "dead letters 8 (dropped 8)" in result.stdout


def test_a_worker_tables_inbox_keys_are_its_components_default(tmp_path):
    text = """\
        [[supervisor.children]]
        id = "w1"
        [supervisor.children.worker]
        max_inbox = 7
        inbox_overflow = "fail"
        [[supervisor.children.worker.components]]
        id = "echo"
        start = "helpers:Worker"
    """
    spec = hr.load_tree(write(tmp_path, "tree.toml", text))
    container = spec.children[0].start.container  # type: ignore[union-attr]
    settings = container.inbox_for(container.children[0])
    assert (settings.max_inbox, settings.overflow) == (7, hr.Overflow.FAIL)
    written = hr.dumps_tree(spec, "toml")
    assert "max_inbox = 7" in written
    assert hr.load_tree(write(tmp_path, "again.toml", written)) == spec


def test_check_shows_each_childs_bound(tmp_path):
    from click.testing import CliRunner  # noqa: PLC0415

    from hedgerow.cli import cli  # noqa: PLC0415

    (tmp_path / "flooding_actors.py").write_text(FLOODING_ACTORS)
    (tmp_path / "flood.toml").write_text(FLOODING_TREE)
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "flood.toml")])
    assert result.exit_code == 0, result.output
    assert "max_inbox=2 drop_newest" in " ".join(result.stdout.split())  # rich wraps it
