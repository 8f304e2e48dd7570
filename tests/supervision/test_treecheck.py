"""The plain check of tree data (what a worker uses, without pydantic) agrees with the
tree file's pydantic schema: it takes exactly the data the schema takes, and its view
reads as the schema's models do, so the `Builder` builds the same specs from either."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from hedgerow.components._component import SETTINGS
from hedgerow.supervision import _treecheck, _treeschema
from hedgerow.supervision._treebuild import Builder
from hedgerow.supervision._treecheck import Checked, conforming, set_fields

TABLES = [
    (_treecheck.SUPERVISOR, _treeschema.SupervisorModel),
    (_treecheck.CHILD, _treeschema.ChildModel),
    (_treecheck.WORKER, _treeschema.WorkerModel),
    (_treecheck.COMPONENTS, _treeschema.ComponentsModel),
    (_treecheck.MANAGEMENT, _treeschema.ManagementModel),
    (_treecheck.TREE_FILE, _treeschema.TreeFileModel),
]
IDS = [model.__name__ for _, model in TABLES]


def schema_takes(model: type[BaseModel], data: Any) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


def test_the_component_settings_are_the_components():
    assert _treecheck.COMPONENT_SETTINGS == SETTINGS


@pytest.mark.parametrize(("table", "model"), TABLES, ids=IDS)
def test_each_table_has_its_models_keys(table, model):
    assert list(table) == list(model.model_fields)


# Values of every kind the schema tells apart, and their edges.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "one_for_one", "m:f", "${X}"]),
)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), inner, max_size=3),
    ),
    max_leaves=6,
)


KINDS = {
    "str": st.sampled_from(["", "x", "one_for_one", "m:f"]),
    "int": st.integers(min_value=-(10**400), max_value=10**400),
    "number": st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True)),
    "bool": st.booleans(),
    "any": PLAIN,
    "list": st.lists(PLAIN, max_size=2),
    "dict": st.dictionaries(st.text(max_size=3), PLAIN, max_size=2),
    "list[str]": st.lists(st.one_of(st.text(max_size=2), SCALARS), max_size=2),
    "dict[str, str]": st.dictionaries(st.text(max_size=2), st.one_of(st.text(max_size=2), SCALARS)),
}
REQUIRED = {"id", "supervisor"}


def table_data(table: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    """Data for `table`: mostly its own keys with values of their kind (or null, or
    anything), sometimes an unknown key or a value that is no table at all."""
    values = {key: value_data(kind, depth) for key, kind in table.items()}
    required = {k: v for k, v in values.items() if k in REQUIRED}
    optional = {k: v for k, v in values.items() if k not in REQUIRED}
    known = st.fixed_dictionaries(required, optional=optional)
    loose = st.fixed_dictionaries({}, optional=values)
    extra = st.dictionaries(st.sampled_from(["bogus", "Name", "1"]), PLAIN, max_size=1)
    mapping = st.builds(lambda a, b: {**a, **b}, st.one_of(known, loose), extra)
    return st.one_of(known, known, known, mapping, PLAIN)


def value_data(kind: Any, depth: int) -> st.SearchStrategy[Any]:
    if isinstance(kind, dict):
        own = table_data(kind, depth - 1) if depth > 0 else st.just({})
    elif isinstance(kind, list):
        own = st.lists(value_data(kind[0], depth), max_size=2)
    else:
        own = KINDS[kind]
    return st.one_of(own, own, own, own, st.none(), PLAIN)


@pytest.mark.parametrize(("table", "model"), TABLES, ids=IDS)
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_check_takes_what_the_schema_takes(table, model, data):
    value = data.draw(table_data(table, 2))
    assert (conforming(table, value) is not None) == schema_takes(model, value)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_the_view_reads_as_the_model_reads(data):
    value = data.draw(table_data(_treecheck.TREE_FILE, 2))
    view = conforming(_treecheck.TREE_FILE, value)
    if view is None:
        return
    model = _treeschema.TreeFileModel.model_validate(value)
    assert_same(view, model)


def assert_same(view: Checked, model: BaseModel) -> None:
    assert view.model_fields_set == model.model_fields_set
    assert set_fields(view, set()).keys() == set_fields(model, set()).keys()
    for name in type(model).model_fields:
        mine, theirs = getattr(view, name), getattr(model, name)
        if isinstance(theirs, BaseModel):
            assert_same(mine, theirs)
        elif isinstance(theirs, list) and theirs and isinstance(theirs[0], BaseModel):
            assert len(mine) == len(theirs)
            for a, b in zip(mine, theirs, strict=True):
                assert_same(a, b)
        else:
            assert same_value(mine, theirs), name


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def test_a_copy_with_updates_reads_as_the_models_copy():
    data = {"id": "c", "start": "m:f"}
    view = conforming(_treecheck.CHILD, data)
    model = _treeschema.ChildModel.model_validate(data)
    assert view is not None
    updates = {"restart": "never", "significant": False}
    assert_same(view.model_copy(update=updates), model.model_copy(update=updates))


def test_the_builder_builds_the_same_specs_from_the_view_and_from_the_model():
    data = {
        "supervisor": {
            "name": "root",
            "strategy": "rest_for_one",
            "period": 2,
            "children": [
                {"id": "a", "start": "helpers:Worker", "args": [1], "restart": "transient"},
                {
                    "id": "nested",
                    "supervisor": {
                        "strategy": "one_for_all",
                        "backoff": True,
                        "children": [{"id": "b", "start": "helpers:Worker", "shutdown": 2.5}],
                    },
                },
            ],
        }
    }
    specs = []
    for model in (
        conforming(_treecheck.TREE_FILE, data),
        _treeschema.TreeFileModel.model_validate(data),
    ):
        builder = Builder()
        specs.append(builder.supervisor(model.supervisor, "supervisor"))
        assert builder.problems == []
    assert specs[0] is not None
    assert specs[0] == specs[1]
