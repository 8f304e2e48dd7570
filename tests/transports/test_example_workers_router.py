"""examples/workers through a router, as its README says: the router from the example's
principals.toml, the README's [management] and [components] tables added to the
tree file. The crasher's worker restarts and registers example.pid again each
time, nobody else may take that name, and `hedgerow status` shows the node."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from transports.wamp_router import SECRET, start_router, takeover

from hedgerow.transports import ApplicationError, Leave, Register, WampTransport
from hedgerow.transports._authorization import load_principals

pytestmark = pytest.mark.timeout(120)

EXAMPLE = Path(__file__).parents[2] / "examples" / "workers"
TIMEOUT = 30.0
SECRETS = {
    "HEDGEROW_WORKERS_SECRET": "workers-test-secret",
    "HEDGEROW_MANAGEMENT_SECRET": "management-test-secret",
}


@pytest.fixture
def router(tmp_path, monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    router = start_router(
        tmp_path,
        principals=load_principals(EXAMPLE / "principals.toml"),
        management_secret_env="HEDGEROW_MANAGEMENT_SECRET",  # noqa: S106 - a variable's name
    )
    yield router
    router.close()


def _readme_tables(url: str) -> str:
    """The TOML the README says to add to the tree file, for the router at `url`."""
    readme = (EXAMPLE / "README.md").read_text()
    (tables,) = re.findall(r"add to the tree file:\n\n```toml\n(.*?)```", readme, re.DOTALL)
    return tables.replace("ws://127.0.0.1:8080/ws", url)


def test_the_workers_example_joins_the_router_as_its_own_principal(router, tmp_path):
    url = router.config.websocket_url
    tree = tmp_path / "tree.toml"
    example = (EXAMPLE / "tree.toml").read_text()
    assert "args = [4.0]" in example
    assert "max_restarts = 5" in example
    # The timer would end the node after 4 s, and the crasher's restarts exhaust the
    # intensity in about 10: here the test ends the node (SIGINT) when it is done.
    example = example.replace("args = [4.0]", "args = [600.0]")
    example = example.replace("max_restarts = 5", "max_restarts = 1000")
    tree.write_text(example + "\n" + _readme_tables(url))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLE), *sys.path])}
    node = subprocess.Popen(
        [sys.executable, "-m", "hedgerow", "run", str(tree), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    impostor = (
        WampTransport(url)
        .join("realm1", None, authentication={"ticket": {"authid": "hedgerow", "ticket": SECRET}})
        .result(TIMEOUT)
    )
    try:
        events = []
        assert node.stdout is not None
        for line in node.stdout:
            events.append(json.loads(line))
            crasher_starts = [
                e
                for e in events
                if (e["kind"], e.get("path")) == ("started", "root/fragile/crasher")
            ]
            if len(crasher_starts) == 2:
                break  # registered example.pid, was killed, registered it again
        # Nobody else may take its name, not even by kicking its registration out.
        assert takeover(url, "example.pid", "hedgerow", SECRET) == {
            "error": "wamp.error.not_authorized"
        }
        with pytest.raises(ApplicationError) as caught:
            impostor.handle(Register("example.pid")).result(TIMEOUT)
        assert caught.value.error in (
            "wamp.error.not_authorized",
            "wamp.error.procedure_already_exists",  # Crossbar's answer while it is registered
        )

        # The crasher's process dies about a second after each start, and a
        # restarting worker shows no components: ask again after its next start.
        for _ in range(5):
            status = subprocess.run(
                [sys.executable, "-m", "hedgerow", "status", "--router", url, "--node", "root",
                 "--json"],
                capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
            )  # fmt: skip
            assert status.returncode == 0, status.stderr
            shown = {child["id"]: child for child in json.loads(status.stdout)["children"]}
            assert [c["id"] for c in shown["steady"]["components"]] == ["heartbeat"]
            if "components" in shown["fragile"]:
                break
            for line in node.stdout:
                events.append(json.loads(line))
                if (events[-1]["kind"], events[-1].get("path")) == (
                    "started",
                    "root/fragile/crasher",
                ):
                    break
        assert [c["id"] for c in shown["fragile"]["components"]] == ["crasher"]
        # WAMP-CRA proves the management secret without sending it.
        proved = subprocess.run(
            [sys.executable, "-m", "hedgerow", "status", "--router", url, "--node", "root",
             "--auth", "wampcra", "--json"],
            capture_output=True, text=True, env=env, timeout=TIMEOUT, check=False,
        )  # fmt: skip
        assert proved.returncode == 0, proved.stderr
        assert "steady" in {child["id"] for child in json.loads(proved.stdout)["children"]}

        node.send_signal(signal.SIGINT)
        rest = node.communicate(timeout=TIMEOUT)[0]
        events += [json.loads(line) for line in rest.splitlines()]
        assert node.returncode == 0
        assert not [e for e in events if e["kind"] == "start_failed"], events
    finally:
        impostor.handle(Leave())
        if node.poll() is None:
            node.kill()
            node.communicate()
