"""RPC through a real Crossbar.io router: hedgerow components against bare autobahn.

One router (started here on free ports, stopped by pid). Three callees that
do the same work (echo their argument), each on the serializer under test:

- hedgerow: a supervised `hedgerow.Component` on the WAMP transport (autobahn
  on hedgerow's loop thread; the handler runs on the component's actor thread);
- hedgerow-async: the same component with an ``async def`` handler, which
  runs on the WAMP transport's own loop (no thread hop);
- autobahn: a bare autobahn asyncio session on a loop thread of its own.

Two callers: a bare autobahn session on the main thread's event loop, and a
component with ``async def`` handlers (``hedgerow-async``) calling with
``await session.call(...)`` on the transport's loop. Five pairs (caller ->
callee) are measured, interleaved chunk by chunk (a chunk of each pair in
turn, the order reversed every round, so that a change of the machine's load
falls on all of them alike):

    autobahn -> autobahn              the baseline
    autobahn -> hedgerow              a plain component as the callee
    autobahn -> hedgerow-async        an async component as the callee
    hedgerow-async -> autobahn        an async component as the caller
    hedgerow-async -> hedgerow-async  an async component on both sides

and, to show where an async component's extra time goes, two more callees:
the async component's plain (``def``) procedure, which runs at once with no
task, and bare autobahn's own ``async def`` endpoint (autobahn runs it in a
task of its own).

1. latency: sequential calls, p50 and p99 in microseconds, and the CPU time
   of this process per call (``cpu us``: both WAMP clients, caller and callee,
   run here; the router's is not counted);
2. throughput: calls per second with 100 calls in flight.

``--pairs 3`` measures the first three pairs only (the baseline always comes
first), ``--pairs "autobahn -> hedgerow-async"`` the baseline and that pair:
fewer pairs, more rounds of each in the same time.

Ratios are to the baseline of the same run. Targets (informational; a missed
target never makes the exit status non-zero): a plain callee's latency within
1.2x of autobahn's, its throughput at least 0.8x; an async component's
latency within 1.05x, as callee and as caller. The targets use the plain
baseline (a bare ``def`` endpoint) even for an ``async def`` callee; the
ratio to bare autobahn's own ``async def`` endpoint, the same kind of
endpoint, is printed beside it (in brackets).

With ``--framework twisted`` the process runs WAMP on Twisted's reactor
(`hedgerow.use_framework`): the hedgerow callees, a bare autobahn Twisted
session as the other callee, and the bare caller all run on the one reactor,
on hedgerow's loop thread (Twisted has one reactor per process); the async
component runs on hedgerow's asyncio loop.

    .venv/bin/python bench/bench_wamp.py            # about a minute
    .venv/bin/python bench/bench_wamp.py --quick    # about 20 s
    .venv/bin/python bench/bench_wamp.py --json     # one JSON object on stdout
    .venv/bin/python bench/bench_wamp.py --framework twisted
    .venv/bin/python bench/bench_wamp.py --pairs 5 --serializers json
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import os
import platform
import secrets
import statistics
import sys
import tempfile
import threading
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import hedgerow
from hedgerow import SupervisorSpec, start_tree
from hedgerow.transports import FRAMEWORKS, SERIALIZERS, Crossbar, RouterConfig, use_framework
from hedgerow.transports._framework import event_loop

LATENCY_TARGET = 1.2
ASYNC_LATENCY_TARGET = 1.05
THROUGHPUT_TARGET = 0.8
IN_FLIGHT = 100
PAYLOAD = "hello"
SECRET_ENV = "HEDGEROW_BENCH_ROUTER_SECRET"  # noqa: S105 - a variable's name


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


async def autobahn_session(url: str, serializer: str, secret: str) -> Any:
    """A bare autobahn session of the process's framework, joined to realm1 with a ticket."""
    # autobahn's framework modules need txaio's framework selected first.
    import txaio  # noqa: PLC0415
    from autobahn.wamp.auth import create_authenticator  # noqa: PLC0415
    from autobahn.wamp.serializer import SERID_TO_SER  # noqa: PLC0415
    from autobahn.wamp.types import ComponentConfig  # noqa: PLC0415
    from autobahn.websocket.util import parse_url  # noqa: PLC0415

    if txaio.using_twisted:
        from autobahn.twisted.wamp import Session  # noqa: PLC0415
        from autobahn.twisted.websocket import WampWebSocketClientFactory  # noqa: PLC0415
    else:
        from autobahn.asyncio.wamp import Session  # type: ignore[assignment] # noqa: PLC0415
        from autobahn.asyncio.websocket import (  # type: ignore[assignment] # noqa: PLC0415
            WampWebSocketClientFactory,
        )
    joined = txaio.create_future()

    class Joined(Session):  # type: ignore[misc, valid-type]
        def onJoin(self, details: Any) -> None:  # noqa: N802, ARG002 - autobahn's hook
            txaio.resolve(joined, self)

    session = Joined(ComponentConfig("realm1"))
    session.add_authenticator(create_authenticator("ticket", authid="hedgerow", ticket=secret))
    factory = WampWebSocketClientFactory(
        lambda: session, url=url, serializers=[SERID_TO_SER[serializer]()]
    )
    _, host, port, *_ = parse_url(url)
    if txaio.using_twisted:
        from twisted.internet import reactor  # noqa: PLC0415
        from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: PLC0415

        await TCP4ClientEndpoint(reactor, host, port).connect(factory)
    else:
        await asyncio.get_running_loop().create_connection(factory, host, port)
    return await event_loop().with_timeout(joined, 10)


def on_asyncio() -> bool:
    """Whether the running coroutine runs on an asyncio loop (else on Twisted's reactor)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def gather(*coroutines: Any) -> None:
    """Run `coroutines` concurrently on the running loop (asyncio's or Twisted's)."""
    if on_asyncio():
        await asyncio.gather(*coroutines)
        return
    from twisted.internet import defer  # noqa: PLC0415

    await defer.gatherResults([defer.Deferred.fromCoroutine(c) for c in coroutines])


async def run_on(loop: asyncio.AbstractEventLoop, make: Any) -> Any:
    """Run the coroutine ``make()`` on `loop` (another thread's) and await its result."""
    future = asyncio.run_coroutine_threadsafe(make(), loop)
    if on_asyncio():
        return await asyncio.wrap_future(future)
    from twisted.internet import defer, reactor  # noqa: PLC0415

    done: Any = defer.Deferred()

    def settle(finished: Any) -> None:
        error = finished.exception()
        if error is not None:
            done.errback(error)
        else:
            done.callback(finished.result())

    future.add_done_callback(lambda f: reactor.callFromThread(settle, f))  # type: ignore[attr-defined]
    return await done


class LoopThread:
    """An asyncio loop on a thread of its own (for the bare autobahn callee); under
    Twisted, the one reactor on hedgerow's loop thread."""

    def __init__(self, framework: str) -> None:
        self.framework = framework
        if framework == "asyncio":
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
            self.thread.start()

    def run(self, start: Any) -> Any:
        """Run the coroutine `start()` on the loop and wait for its result."""
        if self.framework == "twisted":
            return event_loop().submit(start).result(600)
        return asyncio.run_coroutine_threadsafe(start(), self.loop).result(600)

    def stop(self) -> None:
        if self.framework == "asyncio":
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


async def latency(caller: Any, procedure: str, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = perf_counter()
        await caller.call(procedure, PAYLOAD)
        samples.append((perf_counter() - start) * 1e6)
    return samples


async def throughput(caller: Any, procedure: str, n: int) -> float:
    per_worker = max(1, n // IN_FLIGHT)

    async def worker() -> None:
        for _ in range(per_worker):
            await caller.call(procedure, PAYLOAD)

    start = perf_counter()
    await gather(*(worker() for _ in range(IN_FLIGHT)))
    return per_worker * IN_FLIGHT / (perf_counter() - start)


class Caller:
    """A session that calls: bare autobahn's on the running loop, or an async
    component's, on its own loop (the chunks of calls are run there)."""

    def __init__(self, session: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.session = session
        self.loop = loop

    async def run(self, measure: Any, procedure: str, n: int) -> Any:
        if self.loop is None:
            return await measure(self.session, procedure, n)
        return await run_on(self.loop, lambda: measure(self.session, procedure, n))


BASELINE = "autobahn -> autobahn"
PAIRS = {
    BASELINE: ("autobahn", "bench.autobahn.echo"),
    "autobahn -> hedgerow": ("autobahn", "bench.hedgerow.echo"),
    "autobahn -> hedgerow-async": ("autobahn", "bench.hedgerow.async_echo"),
    "hedgerow-async -> autobahn": ("hedgerow-async", "bench.autobahn.echo"),
    "hedgerow-async -> hedgerow-async": ("hedgerow-async", "bench.hedgerow.async_echo"),
    # Where an async component's extra time goes: its plain handler (no task), and
    # bare autobahn's own task for an `async def` endpoint.
    "autobahn -> hedgerow-async, def": ("autobahn", "bench.hedgerow.async_comp_plain_echo"),
    "autobahn -> autobahn, async def": ("autobahn", "bench.autobahn.async_echo"),
}
"""Each measured pair, caller -> callee: the caller's name and the callee's procedure."""
ASYNC_BASELINE = "autobahn -> autobahn, async def"
ASYNC_CALLEE = ("autobahn -> hedgerow-async", "hedgerow-async -> hedgerow-async")
"""The pairs whose callee is an ``async def`` procedure: also compared with bare
autobahn's own ``async def`` endpoint (the same kind of endpoint; the targets use
the plain baseline, the stricter)."""
TARGETS = {
    "autobahn -> hedgerow": LATENCY_TARGET,
    "autobahn -> hedgerow-async": ASYNC_LATENCY_TARGET,
    "hedgerow-async -> autobahn": ASYNC_LATENCY_TARGET,
    "hedgerow-async -> hedgerow-async": ASYNC_LATENCY_TARGET,
    "autobahn -> hedgerow-async, def": ASYNC_LATENCY_TARGET,
}
"""The p50 ratio each pair is to stay within."""


def select_pairs(chosen: str | None) -> dict[str, tuple[str, str]]:
    """The pairs to measure: all, the first N, or the baseline and those named
    (comma-separated)."""
    if not chosen:
        return dict(PAIRS)
    if chosen.isdigit():
        return dict(list(PAIRS.items())[: max(1, int(chosen))])
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = [name for name in names if name not in PAIRS]
    if unknown:
        msg = f"--pairs: unknown {unknown}; expected a number or some of {list(PAIRS)}"
        raise SystemExit(msg)
    return {name: PAIRS[name] for name in PAIRS if name == BASELINE or name in names}


async def measure(  # noqa: C901 - the rounds of each kind, in order
    callers: dict[str, Caller], sizes: dict[str, int], pairs: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    lat: dict[str, list[float]] = {k: [] for k in pairs}
    cpu: dict[str, float] = dict.fromkeys(pairs, 0.0)
    tput: dict[str, list[float]] = {k: [] for k in pairs}
    for caller, procedure in pairs.values():  # warm up every path
        await callers[caller].run(latency, procedure, sizes["warmup"])
    for chunk in range(sizes["chunks"]):
        order = list(pairs.items())
        if chunk % 2:
            order.reverse()
        for name, (caller, procedure) in order:
            began = process_time()
            lat[name] += await callers[caller].run(latency, procedure, sizes["latency"])
            cpu[name] += process_time() - began
    for rep in range(sizes["reps"]):
        order = list(pairs.items())
        if rep % 2:
            order.reverse()
        for name, (caller, procedure) in order:
            tput[name].append(await callers[caller].run(throughput, procedure, sizes["throughput"]))
    result: dict[str, Any] = {}
    for name in pairs:
        result[name] = {
            "p50_us": percentile(lat[name], 50),
            "p99_us": percentile(lat[name], 99),
            "cpu_us_per_call": cpu[name] / len(lat[name]) * 1e6,
            "calls_per_s": statistics.median(tput[name]),
        }
    base = result[BASELINE]
    result["ratio"] = {
        name: {
            "p50": result[name]["p50_us"] / base["p50_us"],
            "p99": result[name]["p99_us"] / base["p99_us"],
            "throughput": result[name]["calls_per_s"] / base["calls_per_s"],
            "cpu": result[name]["cpu_us_per_call"] / base["cpu_us_per_call"],
        }
        for name in pairs
        if name != BASELINE
    }
    async_base = result.get(ASYNC_BASELINE)
    for name in ASYNC_CALLEE:
        if async_base is not None and name in pairs:
            ratio = result[name]["p50_us"] / async_base["p50_us"]
            result["ratio"][name]["p50_vs_async_def"] = ratio
    return result


def bench_serializer(  # noqa: PLR0917 - the run's settings
    url: str,
    serializer: str,
    secret: str,
    sizes: dict[str, int],
    framework: str,
    pairs: dict[str, tuple[str, str]],
) -> Any:
    def component(name: str) -> hedgerow.Component:
        return hedgerow.Component(
            transports={"url": url, "serializers": [serializer]},
            authentication={"ticket": {"authid": "hedgerow", "ticket": secret}},
            name=f"{name}-{serializer}",
        )

    comp = component("echo")
    comp.register("bench.hedgerow.echo")(lambda value: value)
    async_comp = component("async-echo")

    @async_comp.register("bench.hedgerow.async_echo")
    async def async_echo(value: Any) -> Any:
        return value

    async_comp.register("bench.hedgerow.async_comp_plain_echo")(lambda value: value)

    async_caller = component("async-caller")
    joined: concurrent.futures.Future[Any] = concurrent.futures.Future()

    @async_caller.on_join
    async def caller_joined(session: Any, details: Any) -> None:  # noqa: ARG001
        joined.set_result(session)

    tree = start_tree(SupervisorSpec([c.child_spec() for c in (comp, async_comp, async_caller)]))
    callee = LoopThread(framework)

    async def serve() -> Any:
        session = await autobahn_session(url, serializer, secret)
        await session.register(lambda value: value, "bench.autobahn.echo")

        async def echo(value: Any) -> Any:
            return value

        await session.register(echo, "bench.autobahn.async_echo")
        return session

    bare = callee.run(serve)
    component_session = joined.result(30)

    async def run() -> Any:
        caller = await autobahn_session(url, serializer, secret)
        callers = {
            "autobahn": Caller(caller),
            "hedgerow-async": Caller(component_session, component_session.owner.actor_loop),
        }
        try:
            return await measure(callers, sizes, pairs)
        finally:
            caller.leave()

    try:
        return asyncio.run(run()) if framework == "asyncio" else callee.run(run)
    finally:
        callee.run(lambda: _leave(bare))
        callee.stop()
        tree.stop()


async def _leave(session: Any) -> None:
    """Leave, and wait until the router has closed the session (its registration gone)."""
    await session.leave()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds each)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--serializers", default=",".join(SERIALIZERS))
    parser.add_argument("--framework", choices=FRAMEWORKS, default="asyncio")
    parser.add_argument(
        "--pairs",
        default=None,
        help="the first N pairs, or pair names (comma-separated); the baseline always",
    )
    args = parser.parse_args()
    pairs = select_pairs(args.pairs)
    sizes = (
        {"warmup": 200, "latency": 25, "chunks": 32, "throughput": 2000, "reps": 3}
        if args.quick
        else {"warmup": 500, "latency": 25, "chunks": 120, "throughput": 5000, "reps": 5}
    )
    use_framework(args.framework)
    secret = secrets.token_urlsafe(16)
    os.environ[SECRET_ENV] = secret
    directory = Path(tempfile.mkdtemp(prefix="bench-wamp-"))
    router = Crossbar(
        RouterConfig(websocket_port=0, rawsocket_port=None, secret_env=SECRET_ENV),
        cbdir=directory,
    )
    router.start()
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg()[0],
        "framework": args.framework,
        "in_flight": IN_FLIGHT,
        "sizes": sizes,
        "serializers": {},
    }
    try:
        url = router.config.websocket_url
        assert url is not None
        for serializer in args.serializers.split(","):
            results["serializers"][serializer] = bench_serializer(
                url, serializer, secret, sizes, args.framework, pairs
            )
    finally:
        router.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"bench_wamp: Python {results['python']}, {results['cpus']} CPUs, "
        f"load {results['loadavg']:.2f}; WAMP on {args.framework}; "
        f"{IN_FLIGHT} calls in flight; ratios to {BASELINE} of the same run"
    )
    print(
        f"{'serializer':<10} {'caller -> callee':<33} {'p50 us':>7} {'p99 us':>7} "
        f"{'cpu us':>6} {'calls/s':>8}  {'p50':>6} {'p99':>6} {'cpu':>6} {'tput':>6}  target"
        f"  (p50 to {ASYNC_BASELINE!r}, for an async def callee)"
    )
    for serializer, figures in results["serializers"].items():
        for name in pairs:
            row = figures[name]
            line = (
                f"{serializer:<10} {name:<33} {row['p50_us']:>7.0f} {row['p99_us']:>7.0f} "
                f"{row['cpu_us_per_call']:>6.0f} {row['calls_per_s']:>8.0f}"
            )
            ratio = figures["ratio"].get(name)
            if ratio is not None:
                line += (
                    f"  {ratio['p50']:>5.2f}x {ratio['p99']:>5.2f}x {ratio['cpu']:>5.2f}x"
                    f" {ratio['throughput']:>5.2f}x"
                )
                target = TARGETS.get(name)
                if target is not None:
                    verdict = "ok" if ratio["p50"] <= target else "MISSED"
                    line += f"  p50 <= {target}: {verdict}"
                if name == "autobahn -> hedgerow":
                    ok = "ok" if ratio["throughput"] >= THROUGHPUT_TARGET else "MISSED"
                    line += f", tput >= {THROUGHPUT_TARGET}: {ok}"
                if "p50_vs_async_def" in ratio:
                    line += f"  ({ratio['p50_vs_async_def']:.2f}x)"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
