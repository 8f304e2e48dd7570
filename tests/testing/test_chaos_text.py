"""The words of `hedgerow chaos`'s report: what its counts mean."""

from __future__ import annotations

from click.testing import CliRunner

from hedgerow.cli._chaos import chaos

ACTORS = """\
import hedgerow as hr

class Sink(hr.Actor):
    def on_receive(self, message):
        return message

class Feed(hr.Actor):
    def on_start(self):
        self.sink = self.actor_lookup("sink")
        self.actor_send_after(0.25, "tick")

    def on_receive(self, message):
        self.sink.tell(message)
        self.actor_send_after(0.25, "tick")
"""

TREE = """\
[supervisor]
max_restarts = 50
period = 5
[[supervisor.children]]
id = "sink"
start = "chaos_text_actors:Sink"
[[supervisor.children]]
id = "feed"
start = "chaos_text_actors:Feed"
"""


def tree_file(tmp_path):
    (tmp_path / "chaos_text_actors.py").write_text(ACTORS)
    (tmp_path / "tree.toml").write_text(TREE)
    return tmp_path / "tree.toml"


def test_the_report_says_why_dead_letters_are_not_losses(tmp_path):
    result = CliRunner().invoke(
        chaos, [str(tree_file(tmp_path)), "--seed", "3", "--duration", "20"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    messages = next(at for at, line in enumerate(lines) if line.startswith("messages: sent"))
    assert "dead-lettered" in lines[messages]
    explained = " ".join(lines[messages + 1 : messages + 4])
    assert "dead letters are accounted for" in explained
    assert "the message that crashed an actor" in explained
    assert "a loss is a message neither handled nor dead-lettered" in explained
    assert lines[-1] == (
        "verdict: clean (no message lost, the root did not give up, no thread left)"
    )
