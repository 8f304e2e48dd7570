"""Checked by mypy --strict in tests/test_typing.py (never run): what refs are typed as."""

from __future__ import annotations

from typing import Any, assert_type, cast

import pykka
from pykka.typing import ActorMemberMixin, proxy_field, proxy_method

import hedgerow as hr


class Db(hr.Actor):
    """A child with a method to call through a proxy."""

    rows = 0

    def query(self, sql: str) -> int:
        return len(sql)


class DbProxy(ActorMemberMixin, pykka.ActorProxy[Db]):
    """pykka's way of typing a proxy's members."""

    query = proxy_method(Db.query)
    rows = proxy_field(Db.rows)


def refs(tree: hr.Tree, actor: hr.Actor) -> None:
    assert_type(tree.get_child("db"), hr.ChildRef[Any])
    ref = tree.get_child("db", Db)
    assert_type(ref, hr.ChildRef[Db])
    assert_type(tree.supervisor("inner").get_child("db", Db), hr.ChildRef[Db])
    assert_type(tree.lookup("root/db"), hr.ChildRef[Any])
    assert_type(tree.lookup("root/db", Db), hr.ChildRef[Db])
    assert_type(actor.actor_lookup("db"), hr.ChildRef[Any])
    assert_type(actor.actor_lookup("db", Db), hr.ChildRef[Db])


def asks(ref: hr.ChildRef[Db]) -> None:
    assert_type(ref.ask("x"), Any)
    assert_type(ref.ask("x", timeout=1.0), Any)
    assert_type(ref.ask("x", block=True), Any)
    assert_type(ref.ask("x", block=False), pykka.Future[Any])


def proxies(ref: hr.ChildRef[Db]) -> None:
    assert_type(ref.proxy(), pykka.ActorProxy[Db])
    proxy = cast("DbProxy", ref.proxy())
    assert_type(proxy.query("select"), pykka.Future[int])
    assert_type(proxy.rows, pykka.Future[int])
    assert_type(proxy.query("select").get(), int)


class Cache(hr.AsyncioActor):
    def on_receive(self, message: Any) -> Any:
        return message


def make_cache() -> Cache:
    return Cache()


# A child spec takes either runtime's class or factory (the class decides the runtime).
mixed = hr.SupervisorSpec(
    [hr.ChildSpec("db", Db), hr.ChildSpec("cache", Cache), hr.ChildSpec("made", make_cache)]
)


async def from_asyncio(tree: hr.AsyncioTree, ref: hr.ChildRef[Db]) -> None:
    assert_type(await hr.ask(ref, "x"), Any)
    assert_type(await hr.tell(ref, "x"), None)
    assert_type(await tree.update_tree(mixed), hr.UpdatePlan)
    assert_type(tree.spec, hr.SupervisorSpec)
