"""RPC through a real Crossbar.io router: a hedgerow component against bare autobahn.

One router (started here on free ports, stopped by pid). Two callees that do
the same work (echo their argument), each on the serializer under test:

- hedgerow: a supervised `hedgerow.Component` on the WAMP transport (autobahn
  on hedgerow's loop thread; the handler runs on the component's actor thread);
- hedgerow-async: the same component with an ``async def`` handler, which
  runs on the WAMP transport's own loop (no thread hop);
- autobahn: a bare autobahn asyncio session on a loop thread of its own.

One caller, a bare autobahn session on the main thread's event loop, measures
against both, interleaved chunk by chunk:

1. latency: sequential calls, p50 and p99 in microseconds;
2. throughput: calls per second with 100 calls in flight.

Targets (informational; a missed target never makes the exit status
non-zero): hedgerow's latency within 1.2x of autobahn's, its throughput at
least 0.8x; the async component's latency within 1.05x of autobahn's.

With ``--framework twisted`` the process runs WAMP on Twisted's reactor
(`hedgerow.use_framework`): the hedgerow callee, a bare autobahn Twisted
session as the other callee, and the caller all run on the one reactor, on
hedgerow's loop thread (Twisted has one reactor per process).

    .venv/bin/python bench/bench_wamp.py            # about 30 s
    .venv/bin/python bench/bench_wamp.py --quick    # about 10 s
    .venv/bin/python bench/bench_wamp.py --json     # one JSON object on stdout
    .venv/bin/python bench/bench_wamp.py --framework twisted
"""

from __future__ import annotations

import argparse
import asyncio
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
from time import perf_counter
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


async def gather(*coroutines: Any) -> None:
    """Run `coroutines` concurrently on the loop (asyncio's or Twisted's)."""
    import txaio  # noqa: PLC0415

    if txaio.using_twisted:
        from twisted.internet import defer  # noqa: PLC0415

        await defer.gatherResults([defer.Deferred.fromCoroutine(c) for c in coroutines])
    else:
        await asyncio.gather(*coroutines)


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


async def measure(caller: Any, sizes: dict[str, int]) -> dict[str, Any]:
    procedures = {
        "hedgerow": "bench.hedgerow.echo",
        "hedgerow-async": "bench.hedgerow.async_echo",
        "autobahn": "bench.autobahn.echo",
    }
    lat: dict[str, list[float]] = {k: [] for k in procedures}
    tput: dict[str, list[float]] = {k: [] for k in procedures}
    for procedure in procedures.values():  # warm up both paths
        await latency(caller, procedure, sizes["warmup"])
    for chunk in range(sizes["chunks"]):
        order = list(procedures.items())
        if chunk % 2:
            order.reverse()
        for name, procedure in order:
            lat[name] += await latency(caller, procedure, sizes["latency"])
    for rep in range(sizes["reps"]):
        order = list(procedures.items())
        if rep % 2:
            order.reverse()
        for name, procedure in order:
            tput[name].append(await throughput(caller, procedure, sizes["throughput"]))
    result: dict[str, Any] = {}
    for name in procedures:
        result[name] = {
            "p50_us": percentile(lat[name], 50),
            "p99_us": percentile(lat[name], 99),
            "calls_per_s": statistics.median(tput[name]),
        }
    result["ratio"] = {
        "p50": result["hedgerow"]["p50_us"] / result["autobahn"]["p50_us"],
        "p99": result["hedgerow"]["p99_us"] / result["autobahn"]["p99_us"],
        "throughput": result["hedgerow"]["calls_per_s"] / result["autobahn"]["calls_per_s"],
        "async_p50": result["hedgerow-async"]["p50_us"] / result["autobahn"]["p50_us"],
        "async_p99": result["hedgerow-async"]["p99_us"] / result["autobahn"]["p99_us"],
        "async_throughput": (
            result["hedgerow-async"]["calls_per_s"] / result["autobahn"]["calls_per_s"]
        ),
    }
    return result


def bench_serializer(
    url: str, serializer: str, secret: str, sizes: dict[str, int], framework: str
) -> Any:
    comp = hedgerow.Component(
        transports={"url": url, "serializers": [serializer]},
        authentication={"ticket": {"authid": "hedgerow", "ticket": secret}},
        name=f"echo-{serializer}",
    )
    comp.register("bench.hedgerow.echo")(lambda value: value)
    async_comp = hedgerow.Component(
        transports={"url": url, "serializers": [serializer]},
        authentication={"ticket": {"authid": "hedgerow", "ticket": secret}},
        name=f"async-echo-{serializer}",
    )

    @async_comp.register("bench.hedgerow.async_echo")
    async def async_echo(value: Any) -> Any:
        return value

    tree = start_tree(SupervisorSpec([comp.child_spec(), async_comp.child_spec()]))
    callee = LoopThread(framework)

    async def serve() -> Any:
        session = await autobahn_session(url, serializer, secret)
        await session.register(lambda value: value, "bench.autobahn.echo")
        return session

    bare = callee.run(serve)

    async def run() -> Any:
        caller = await autobahn_session(url, serializer, secret)
        try:
            return await measure(caller, sizes)
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
    args = parser.parse_args()
    sizes = (
        {"warmup": 200, "latency": 200, "chunks": 4, "throughput": 2000, "reps": 3}
        if args.quick
        else {"warmup": 500, "latency": 250, "chunks": 12, "throughput": 5000, "reps": 5}
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
                url, serializer, secret, sizes, args.framework
            )
    finally:
        router.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"bench_wamp: Python {results['python']}, {results['cpus']} CPUs, "
        f"load {results['loadavg']:.2f}; WAMP on {args.framework}; caller: bare autobahn; "
        f"{IN_FLIGHT} calls in flight"
    )
    header = f"{'serializer':<10} {'callee':<14} {'p50 us':>8} {'p99 us':>8} {'calls/s':>9}"
    print(header)
    for serializer, figures in results["serializers"].items():
        for callee in ("autobahn", "hedgerow", "hedgerow-async"):
            row = figures[callee]
            print(
                f"{serializer:<10} {callee:<14} {row['p50_us']:>8.0f} {row['p99_us']:>8.0f} "
                f"{row['calls_per_s']:>9.0f}"
            )
        ratio = figures["ratio"]
        ok_latency = "ok" if ratio["p50"] <= LATENCY_TARGET else "MISSED"
        ok_tput = "ok" if ratio["throughput"] >= THROUGHPUT_TARGET else "MISSED"
        print(
            f"{serializer:<10} ratio     p50 {ratio['p50']:.2f}x (target <= {LATENCY_TARGET}: "
            f"{ok_latency}), p99 {ratio['p99']:.2f}x, throughput {ratio['throughput']:.2f}x "
            f"(target >= {THROUGHPUT_TARGET}: {ok_tput})"
        )
        ok_async = "ok" if ratio["async_p50"] <= ASYNC_LATENCY_TARGET else "MISSED"
        print(
            f"{serializer:<10} async     p50 {ratio['async_p50']:.2f}x (target <= "
            f"{ASYNC_LATENCY_TARGET}: {ok_async}), p99 {ratio['async_p99']:.2f}x, "
            f"throughput {ratio['async_throughput']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
