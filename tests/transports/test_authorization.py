"""The router's `Policy` (who may do what, judged by every URI a pattern can match),
principals files, and ``hedgerow router --principals``."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgerow.cli import router as router_command
from hedgerow.transports import RouterConfig
from hedgerow.transports._authorization import (
    MATCHES,
    Policy,
    Principal,
    load_principals,
    touches,
    within,
)


@pytest.mark.parametrize(
    ("uri", "match", "touched", "inside"),
    [
        ("com.a.add", "exact", True, True),
        ("com.a", "exact", True, True),
        ("com.ab", "exact", False, False),
        ("com.a.", "prefix", True, True),
        ("com.a", "prefix", True, False),  # also matches com.ab...
        ("com", "prefix", True, False),
        ("", "prefix", True, False),
        ("com.ab", "prefix", False, False),
        ("com.a..x", "wildcard", True, True),
        ("com..x", "wildcard", True, False),
        ("..x", "wildcard", True, False),
        ("com", "wildcard", False, False),  # one component: com.a has two
        ("com.b.x", "wildcard", False, False),
    ],
)
def test_a_pattern_touches_or_stays_within_a_namespace(uri, match, touched, inside):
    assert touches("com.a", uri, match) is touched
    assert within("com.a", uri, match) is inside


def test_the_management_namespace_is_managements_alone():
    policy = Policy()
    for role in ("hedgerow", "anonymous", "someone"):
        for action in ("register", "subscribe"):
            for uri, match in [("hedgerow", "prefix"), ("", "prefix"), ("..get_tree", "wildcard")]:
                assert not policy.allows(role, uri, action, match), (role, uri, action, match)
        assert not policy.allows(role, "hedgerow.node.n.get_tree", "call")
        assert not policy.allows(role, "hedgerow.node.n.on_component_started", "publish")
        assert policy.allows(role, "com.example.add", "register")
    assert policy.allows("management", "hedgerow.node.n.get_tree", "register")
    assert policy.allows("management", "", "subscribe", "prefix")
    # The router's own authorizer is nobody's to take, management's included.
    assert not policy.allows("management", "hedgerow.router.authorize", "register")
    assert not policy.allows("management", "hedgerow..authorize", "register", "wildcard")
    assert not policy.allows("hedgerow", "hedgerow.router.authorize", "call")
    assert not policy.allows("hedgerow", "com.x", "register", "regex")  # unknown match


def test_crossbars_meta_api_is_managements_but_a_sessions_own_testament():
    policy = Policy(owners={"one": ("com.one",)})
    reads = ["wamp.session.list", "wamp.session.get", "wamp.registration.lookup"]
    reads += ["wamp.registration.list_callees", "wamp.subscription.list", "wamp.session.kill"]
    for role in ("hedgerow", "anonymous", "one"):
        for uri in reads:
            assert not policy.allows(role, uri, "call"), (role, uri)
        for uri, match in [
            ("wamp.session.on_join", "exact"),
            ("wamp.registration.on_create", "exact"),
            ("wamp", "prefix"),
            ("wamp.", "prefix"),
            ("w", "prefix"),
            ("wamp..on_create", "wildcard"),
            ("..on_register", "wildcard"),
        ]:
            assert not policy.allows(role, uri, "subscribe", match), (role, uri, match)
        # A testament acts on the caller's own session; its publication is authorized.
        assert policy.allows(role, "wamp.session.add_testament", "call")
        assert policy.allows(role, "wamp.session.flush_testaments", "call")
        assert policy.allows(role, "wampx.session.list", "call")
    for uri in reads:
        assert policy.allows("management", uri, "call")
    assert policy.allows("management", "wamp.session.on_join", "subscribe")


def test_a_principal_owns_its_prefixes():
    policy = Policy(owners={"one": ("com.one",), "two": ("com.two",)})
    assert policy.allows("one", "com.one.add", "register")
    assert not policy.allows("one", "com.other", "register")  # nowhere else
    assert not policy.allows("two", "com.one.add", "register")
    assert not policy.allows("hedgerow", "com.o", "register", "prefix")
    assert policy.allows("two", "com.one.add", "call")
    assert policy.allows("two", "com.one.added", "subscribe")
    assert not policy.allows("two", "com.one.added", "publish")
    assert policy.allows("two", "com.shared.topic", "publish")  # nobody's: open


def test_a_decision_is_cached_only_when_no_match_policy_changes_it():
    policy = Policy(owners={"one": ("com.one",)})
    exact = policy.decision("hedgerow", "com", "register", {})
    assert (exact["allow"], exact["cache"]) == (True, False)  # prefix "com" is refused
    prefix = policy.decision("hedgerow", "com", "register", {"match": "prefix"})
    assert (prefix["allow"], prefix["cache"]) == (False, False)
    assert policy.decision("hedgerow", "org.x", "register", {})["cache"] is True
    call = policy.decision("hedgerow", "com.one.add", "call", None)
    assert call == {"allow": True, "disclose": True, "cache": True}
    assert set(MATCHES) == {"exact", "prefix", "wildcard"}


@pytest.mark.parametrize(
    ("owners", "words"),
    [
        ({"one": ("com.a",), "two": ("com.a.b",)}, "overlaps 'com.a' of role 'one'"),
        ({"one": ("hedgerow.mine",)}, "reserved"),
        ({"one": ("wamp",)}, "reserved"),
        ({"one": ("com..a",)}, "not a URI prefix"),
        ({"one": ("com a",)}, "not a URI prefix"),
        ({"management": ("com.a",)}, "the router's or management's"),
    ],
)
def test_a_policy_refuses_names_with_two_owners_or_reserved(owners, words):
    with pytest.raises(ValueError, match="role") as caught:
        Policy(owners=owners)
    assert words in str(caught.value)


def test_principals_from_toml_and_json(tmp_path):
    (tmp_path / "two.secret").write_text("two-secret\n")
    toml = tmp_path / "principals.toml"
    toml.write_text(
        '[principals.one]\nprefixes = ["com.one."]\nsecret_env = "ONE_SECRET"\n'
        '[principals.two]\nprefixes = "com.two"\nsecret_file = "two.secret"\nrole = "twos"\n'
    )
    one, two = load_principals(toml)
    assert (one.authid, one.prefixes, one.role, one.variable) == (
        "one",
        ("com.one",),
        "one",
        "ONE_SECRET",
    )
    assert (two.role, two.secret(), two.variable) == ("twos", "two-secret", "HEDGEROW_SECRET_TWO")
    data = {"principals": {"one": {"prefixes": ["com.one"], "secret_env": "ONE_SECRET"}}}
    (tmp_path / "principals.json").write_text(json.dumps(data))
    assert load_principals(tmp_path / "principals.json") == (one,)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[principals.one]\nprefixes = ['com.one']\n", "give secret_env"),
        (
            "[principals.one]\nprefix = 'com.one'\nsecret_env = 'X'\n",
            "principals.one: unknown keys",
        ),
        ("[principals.one]\nprefixes = [1]\nsecret_env = 'X'\n", "principals.one.prefixes"),
        ("[principals.one]\nprefixes = []\nsecret_env = 'X'\n", "non-empty list"),
        ("[principals.one]\nprefixes = ['hedgerow.x']\nsecret_env = 'X'\n", "reserved"),
        ("[principals.one]\nprefixes = ['a']\nsecret_env = 'NOT A NAME'\n", "secret_env"),
        ("[principals]\none = 3\n", "principals.one: expected a table"),
        ("[other]\n", "expected [principals.<authid>] tables"),
        ("[principals.one\n", "cannot read principals"),
        (
            (
                "[principal.one]\nprefixes = ['a']\nsecret_env = 'A'\n"
                "[principals.two]\nprefixes = ['b']\nsecret_env = 'B'\n"
            ),
            "unknown keys ['principal'] (expected principals)",
        ),
        (
            "[principals.one]\nprefixes = " + "[" * 3000 + "]" * 3000 + "\n",
            "cannot read principals",
        ),
        ("[principals.one]\nprefixes = ['a']\nsecret_env = 5\n", "principals.one.secret_env = 5"),
        ("[principals.one]\nprefixes = ['a']\nsecret_file = 5\n", "principals.one.secret_file = 5"),
        (
            "[principals.one]\nprefixes = ['a']\nsecret_env = 'X'\nrole = 5\n",
            "principals.one.role = 5",
        ),
        (
            "[principals.one]\nprefixes = ['a']\nsecret_env = 'X'\nrole = ['r']\n",
            "principals.one.role",
        ),
        (
            "[principals.one]\nprefixes = ['a']\nsecret_env = 'X'\nrole = 'a b'\n",
            "principals.one.role",
        ),
        (
            (
                "[principals.one]\nprefixes = ['a']\nsecret_env = 'X'\n"
                "[principals.two]\nprefixes = ['b']\nsecret_env = 'X'\n"
            ),
            "principals.two.secret_env = 'X': principal 'one' has it too",
        ),
        (
            (
                "[principals.one]\nprefixes = ['a']\nsecret_file = 's'\n"
                "[principals.two]\nprefixes = ['b']\nsecret_file = './s'\n"
            ),
            "principal 'one' has it too; each principal needs a secret of its own",
        ),
        (
            (
                "[principals.one]\nprefixes = ['a']\nsecret_env = 'X'\n"
                "[principals.two]\nprefixes = ['a.b']\nsecret_env = 'Y'\n"
            ),
            "principals.two.prefixes: prefix 'a.b' overlaps 'a'",
        ),
    ],
)
def test_a_bad_principals_file_names_the_file_and_key(tmp_path, text, words):
    path = tmp_path / "principals.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match="principals") as caught:
        load_principals(path)
    assert str(path) in str(caught.value)
    assert words in str(caught.value)


def test_the_router_command_gives_each_principal_its_role_and_secret_variable(tmp_path):
    path = tmp_path / "principals.toml"
    path.write_text('[principals.adder]\nprefixes = ["com.example.adder"]\nsecret_env = "ADDER"\n')
    result = CliRunner().invoke(
        router_command, ["--print-config", "--principals", str(path), "--no-rawsocket"], env={}
    )
    assert result.exit_code == 0, result.output
    (worker,) = json.loads(result.output)["workers"]
    # Without the shared secret, the shared principal is not served; the principal is.
    assert worker["realms"][0]["roles"] == [
        {"name": "adder", "authorizer": "hedgerow.router.authorize"}
    ]
    (authorizer,) = worker["components"]
    assert authorizer["extra"]["owners"] == {"adder": ["com.example.adder"]}
    (websocket,) = worker["transports"]
    assert websocket["auth"]["ticket"]["principals"] == {
        "adder": {"ticket": "${ADDER}", "role": "adder"}
    }

    path.write_text('[principals.adder]\nprefixes = ["hedgerow.x"]\nsecret_env = "ADDER"\n')
    result = CliRunner().invoke(router_command, ["--principals", str(path)], env={})
    assert result.exit_code == 2
    assert "principals.adder" in result.output
    assert "Traceback" not in result.output


def test_a_principal_without_its_secret_stops_the_router_with_its_name(tmp_path):
    path = tmp_path / "principals.toml"
    path.write_text('[principals.adder]\nprefixes = ["com.x"]\nsecret_env = "HR_TEST_UNSET_X"\n')
    result = CliRunner().invoke(router_command, ["--principals", str(path)], env={})
    assert result.exit_code == 2
    assert "principal 'adder' needs its secret: set $HR_TEST_UNSET_X" in result.output


@pytest.mark.parametrize(
    ("table", "option", "words"),
    [
        ("secret_env = 'HR_TEST_SHARED'", "--secret-env=HR_TEST_SHARED", "the shared principal"),
        (
            "secret_env = 'HEDGEROW_MANAGEMENT_SECRET'",
            "--management-secret-env=HEDGEROW_MANAGEMENT_SECRET",
            "the management principal",
        ),
        ("secret_file = 'nowhere.secret'", None, "principals.adder.secret_file"),
        ("secret_env = 'HR_TEST_ADDER'\nrole = 'hedgerow'", None, "principals.adder.role"),
    ],
)
def test_a_principals_secret_is_its_own_and_readable_or_the_router_exits_2(
    tmp_path, table, option, words
):
    path = tmp_path / "principals.toml"
    path.write_text(f"[principals.adder]\nprefixes = ['com.x']\n{table}\n")
    env = {
        "HR_TEST_SHARED": "shared",
        "HEDGEROW_MANAGEMENT_SECRET": "management",
        "HR_TEST_ADDER": "adder",
    }
    args = ["--principals", str(path), "--crossbar", "/nonexistent/crossbar"]
    result = CliRunner().invoke(router_command, args + ([option] if option else []), env=env)
    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    assert words in result.output
    assert "Traceback" not in result.output


def test_two_principals_with_one_secret_value_are_refused(tmp_path):
    from hedgerow.transports import RouterConfig  # noqa: PLC0415
    from hedgerow.transports._crossbar import Crossbar  # noqa: PLC0415
    from hedgerow.transports._router_config import CrossbarError  # noqa: PLC0415

    (tmp_path / "two.secret").write_text("same\n")
    config = RouterConfig(
        websocket_port=0,
        rawsocket_port=None,
        secret_env="HR_TEST_SHARED",  # noqa: S106 - a variable's name
        principals=[
            Principal("one", ("com.one",), secret_env="HR_TEST_ONE"),  # noqa: S106
            Principal("two", ("com.two",), secret_file=tmp_path / "two.secret"),
        ],
    )
    node = Crossbar(config, cbdir=tmp_path / "node")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HR_TEST_ONE", "same")
        with pytest.raises(CrossbarError, match="principals 'one' and 'two' have the same secret"):
            node.environment()
        env.setenv("HR_TEST_ONE", "one")
        env.setenv("HR_TEST_SHARED", "one")
        with pytest.raises(CrossbarError, match="have the same secret") as caught:
            node.environment()
        assert "'one'" in str(caught.value)
        env.setenv("HR_TEST_SHARED", "shared")
        assert node.environment()["HR_TEST_ONE"] == "one"


def test_a_principal_cannot_take_a_reserved_authid_or_role():
    from hedgerow.transports import RouterConfig  # noqa: PLC0415

    with pytest.raises(ValueError, match="the authid is taken"):
        RouterConfig(principals=[Principal("management", ("com.x",), secret_env="X")])  # noqa: S106
    with pytest.raises(ValueError, match="role 'anonymous' is taken"):
        RouterConfig(principals=[Principal("a", ("com.x",), secret_env="X", role="anonymous")])  # noqa: S106


@pytest.mark.parametrize(
    "settings",
    [{"role": "trusted"}, {"role": "management"}, {"anonymous_role": "trusted"}],
)
def test_no_role_can_be_named_as_the_routers_own_or_managements(settings):
    from hedgerow.transports import RouterConfig  # noqa: PLC0415

    with pytest.raises(ValueError, match="the router's own or the management role"):
        RouterConfig(**settings)


def test_a_principal_cannot_read_the_shared_secret_file(tmp_path):
    from hedgerow.transports import RouterConfig  # noqa: PLC0415

    shared = tmp_path / "shared.secret"
    shared.write_text("shared\n")
    principal = Principal("adder", ("com.x",), secret_file=tmp_path / "." / "shared.secret")
    with pytest.raises(ValueError, match="the shared principal's secret file"):
        RouterConfig(secret_file=shared, principals=[principal])


def test_the_management_secret_is_not_the_shared_one():
    from hedgerow.transports import RouterConfig  # noqa: PLC0415

    with pytest.raises(ValueError, match="management_secret_env='HEDGEROW_ROUTER_SECRET'"):
        RouterConfig(management_secret_env="HEDGEROW_ROUTER_SECRET")  # noqa: S106


# -- any principals file ---------------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(["com.a", "com.a.b", "hedgerow", "", "S", "wamp.x", "a b", "s.secret", "."]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_TABLES = st.dictionaries(
    st.sampled_from(["prefixes", "secret_env", "secret_file", "role", "other"]),
    _VALUES,
    max_size=5,
)
_FILES = st.one_of(
    _VALUES,
    st.fixed_dictionaries(
        {
            "principals": st.one_of(
                _VALUES,
                st.dictionaries(st.text(max_size=6), st.one_of(_TABLES, _VALUES), max_size=3),
            )
        }
    ),
)


@settings(max_examples=300, deadline=None)
@given(data=_FILES)
def test_any_principals_file_is_principals_or_an_error_naming_the_file(data):
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "principals.json"
        path.write_text(json.dumps(data))
        try:
            principals = load_principals(path)
        except ValueError as exc:
            error = str(exc)
        else:
            error = ""
        if error:
            assert str(path) in error
            return
        Policy.of(principals)
        with contextlib.suppress(ValueError):
            RouterConfig(principals=principals)


# -- any pattern -----------------------------------------------------------------------

_PARTS = st.sampled_from(
    [
        *("hedgerow", "hedgerowx", "hedge", "h", "node", "get_tree", "wamp", "session"),
        *("com", "example", "one", "one2", "o", "add", "x", ""),
    ]
)
_OWNED = {"hedgerow": "management", "wamp": "management", "com.example.one": "one"}


def _matches(pattern, match, uri):
    """WAMP's matching, written out again: prefix by characters, wildcard by components."""
    if match == "prefix":
        return uri.startswith(pattern)
    if match == "wildcard":
        wanted, parts = pattern.split("."), uri.split(".")
        if len(wanted) != len(parts):
            return False
        return all(w in ("", p) for w, p in zip(wanted, parts, strict=True))
    return pattern == uri


@settings(max_examples=500, deadline=None)
@given(
    pattern=st.lists(_PARTS, min_size=1, max_size=5).map(".".join),
    match=st.sampled_from(MATCHES),
    uri=st.lists(_PARTS.filter(bool), min_size=1, max_size=5).map(".".join),
    role=st.sampled_from(["hedgerow", "anonymous", "one", "management"]),
    action=st.sampled_from(["register", "subscribe"]),
)
def test_no_pattern_a_role_may_take_matches_a_name_that_is_not_its_own(
    pattern, match, uri, role, action
):
    """What a role may register or subscribe to matches no management or meta URI, and
    (registering) no principal's URI, but its own; a principal registers at home only."""
    policy = Policy(owners={"one": ("com.example.one",)})
    if not policy.allows(role, pattern, action, match) or not _matches(pattern, match, uri):
        return
    for namespace, owner in _OWNED.items():
        inside = uri == namespace or uri.startswith(namespace + ".")
        if inside and owner != role:
            assert action == "subscribe", (pattern, match, uri)
            assert owner != "management", (pattern, match, uri)
    if action == "register" and role in ("one", "management"):
        homes = [n for n, owner in _OWNED.items() if owner == role]
        assert any(uri == n or uri.startswith(n + ".") for n in homes), (pattern, match, uri)
