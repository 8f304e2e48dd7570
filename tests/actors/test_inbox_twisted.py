"""A plain ``tell`` from the thread of Twisted's running reactor into a full ``block``
inbox never waits (the wait would hold the reactor, and all its I/O, for the inbox's
timeout): the message is a dead letter at once, as from a thread running an asyncio
loop. Twisted's reactor runs once per process, so each test runs in a fresh one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("twisted", reason="Twisted is an extra: pip install 'hedgerow[twisted]'")

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 45.0


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip


FULL_TREE = """
    import json
    import threading
    import time

    import hedgerow as hr
    from hedgerow import EventKind

    entered, release = threading.Event(), threading.Event()
    letters = []
    events = hr.EventStream()
    events.subscribe(
        lambda e: letters.append((e.message, str(e.reason)))
        if e.kind is EventKind.DEAD_LETTER else None
    )


    class Held(hr.Actor):
        def on_receive(self, message):
            if message == "hold":
                entered.set()
                release.wait(30)
            return message


    spec = hr.SupervisorSpec([
        hr.ChildSpec("held", Held, max_inbox=1, inbox_overflow="block", inbox_timeout=3.0)
    ])
    tree = hr.start_tree(spec, events=events)
    held = tree.lookup("root/held")
    held.tell("hold")
    assert entered.wait(10)
    held.tell("filler")  # the inbox is full now
"""


def test_a_plain_tell_from_twisteds_reactor_thread_into_a_full_block_inbox_drops_at_once():
    """(It held the reactor for the inbox's timeout, 3 s here.)"""
    done = run_python(
        FULL_TREE
        + """
    from twisted.internet import reactor

    result = {}


    def on_the_reactor():
        began = time.monotonic()
        held.tell("late")
        result["took"] = time.monotonic() - began
        reactor.stop()


    reactor.callWhenRunning(on_the_reactor)
    reactor.run(installSignalHandlers=False)
    release.set()
    assert held.ask("done", timeout=10) == "done"
    # the reactor has stopped: its thread (this one) waits for room again, as any thread
    entered.clear()
    release.clear()
    held.tell("hold")
    assert entered.wait(10)
    held.tell("filler")
    threading.Timer(0.2, release.set).start()
    began = time.monotonic()
    held.tell("waits")
    result["waited"] = time.monotonic() - began
    result["letters"] = letters
    tree.stop()
    print(json.dumps(result))
    """
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["took"] < 1.0
    [(message, reason)] = result["letters"]
    assert message == "late"
    assert "Twisted's reactor" in reason
    assert "hedgerow.tell" in reason
    assert result["waited"] >= 0.1  # a thread not running the reactor still waits


def test_a_reactor_on_another_thread_does_not_stop_this_thread_from_waiting():
    done = run_python(
        FULL_TREE
        + """
    from twisted.internet import reactor

    running = threading.Event()
    reactor.callWhenRunning(running.set)
    spin = threading.Thread(target=reactor.run, args=(False,), daemon=True)
    spin.start()
    assert running.wait(10)
    threading.Timer(0.2, release.set).start()
    began = time.monotonic()
    held.tell("waits")
    waited = time.monotonic() - began
    reactor.callFromThread(reactor.stop)
    tree.stop()
    print(json.dumps({"waited": waited, "letters": letters}))
    """
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["waited"] >= 0.1
    assert result["letters"] == []


def test_telling_never_imports_twisted():
    done = run_python(
        FULL_TREE
        + """
    import sys

    from hedgerow.actors._inbox_policy import detail_of_no_room

    detail_of_no_room(None)
    release.set()
    tree.stop()
    print(json.dumps({"twisted": sorted(m for m in sys.modules if m.startswith("twisted"))}))
    """
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"twisted": []}


def test_under_twisteds_asyncio_reactor_an_awaited_hedgerow_tell_waits_for_room():
    done = run_python(
        """
    import asyncio

    from twisted.internet import asyncioreactor

    asyncioreactor.install()
    """
        + FULL_TREE
        + """
    from twisted.internet import defer, reactor

    result = {}


    async def told():
        began = time.monotonic()
        held.tell("late")  # a plain tell still never waits
        result["took"] = time.monotonic() - began
        threading.Timer(0.2, release.set).start()
        began = time.monotonic()
        await hr.tell(held, "awaited")
        result["awaited"] = time.monotonic() - began


    def on_the_reactor():
        told_ = defer.Deferred.fromFuture(asyncio.ensure_future(told()))
        told_.addErrback(lambda failure: result.setdefault("error", str(failure.value)))
        told_.addBoth(lambda _: reactor.stop())


    reactor.callLater(0, on_the_reactor)
    reactor.run(installSignalHandlers=False)
    assert held.ask("done", timeout=10) == "done"
    result["letters"] = letters
    tree.stop()
    print(json.dumps(result))
    """
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert "error" not in result
    assert result["took"] < 1.0
    assert result["awaited"] >= 0.1
    [(message, reason)] = result["letters"]
    assert message == "late"
    assert "event loop" in reason
