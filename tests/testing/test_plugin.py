"""The pytest plugin, run in a nested pytest with pytester."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

ACTORS = """
import hedgerow as hr


class Echo(hr.Actor):
    def on_receive(self, message):
        return ("echo", self.actor_incarnation, message)
"""

TREE = """
[supervisor]
name = "root"
max_restarts = 5
period = 10

[[supervisor.children]]
id = "echo"
start = "echo_actors:Echo"
initial_retry_delay = 2.0
retry_delay_jitter = 0.0
"""


@pytest.fixture
def project(pytester):
    pytester.makepyfile(echo_actors=ACTORS)
    pytester.makefile(".toml", tree=TREE)
    pytester.makeini("[pytest]\naddopts = -p no:randomly\n")
    return pytester


def test_fixtures_start_a_tree_file_inject_faults_and_tear_down(project):
    project.makepyfile(
        test_user="""
        import pytest
        import hedgerow as hr

        @pytest.fixture
        def hedgerow_spec(pytestconfig):
            return pytestconfig.rootpath / "tree.toml"

        def test_recovers(hedgerow_tree, hedgerow_faults, hedgerow_recorder, hedgerow_clock):
            hedgerow_faults.crash("root/echo", at_message=1)
            hedgerow_tree.lookup("root/echo").tell("boom")
            # Crash "now" hits the incarnation running now: once it has restarted.
            hedgerow_recorder.wait_restarted("root/echo")
            hedgerow_faults.crash("root/echo")
            hedgerow_recorder.wait_restarted("root/echo", 2)
            assert hedgerow_clock.now() == 3.0  # at once, then 2.0 * 1.5
            assert hedgerow_tree.lookup("root/echo").ask("hi") == ("echo", 3, "hi")

        def test_factory(hedgerow_tree_factory, virtual_clock):
            from echo_actors import Echo
            spec = hr.SupervisorSpec([hr.ChildSpec("e", Echo)])
            tree = hedgerow_tree_factory(spec)
            assert tree.lookup("root/e").ask(1) == ("echo", 1, 1)
            assert virtual_clock.autojump_threshold == float("inf")
        """
    )
    result = project.runpytest_inprocess()
    result.assert_outcomes(passed=2)


def test_a_failing_test_shows_the_trees_last_events(project):
    project.makepyfile(
        test_user="""
        def test_fails(hedgerow_tree_factory, hedgerow_recorder):
            tree = hedgerow_tree_factory("tree.toml")
            hedgerow_tree_factory.faults().crash("root/echo")
            hedgerow_recorder.wait_restarted("root/echo")
            assert False, "look at the events"
        """
    )
    result = project.runpytest_inprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*hedgerow: last events*",
            "t=     0.000  failed root/echo #1 reason=InjectedFault: injected crash of root/echo",
            "t=     0.000  restarted root/echo #2",
        ]
    )


def test_a_passing_test_shows_no_events(project):
    project.makepyfile(
        test_user="""
        def test_passes(hedgerow_tree_factory):
            hedgerow_tree_factory("tree.toml")
        """
    )
    result = project.runpytest_inprocess("-rA")
    result.assert_outcomes(passed=1)
    assert "hedgerow: last events" not in result.stdout.str()


def test_hedgerow_tree_without_a_spec_says_what_to_define(project):
    project.makepyfile(
        test_user="""
        def test_needs_spec(hedgerow_tree):
            pass
        """
    )
    result = project.runpytest_inprocess()
    result.stdout.fnmatch_lines(["*define one that returns a SupervisorSpec*"])
    assert result.ret != 0
