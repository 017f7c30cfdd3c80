"""Quick replies on the server (issue 9, item 9), on both databases: an agent's own and the
business's shared ones; who may read and change which; bad input answers `{code, msg}` and
writes nothing; reorder and the one-time import of a browser's old quick replies."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import BIZ, Client, db_rows

from helpers import OTHER_BIZ as OTHER
from shop import Shop

import realtime.chat.quick_replies as rules
from store import Store

TIMEOUT = 60
ROWS = "SELECT id, business_id, service_id, title, content, sort FROM wolive_quick_reply " \
       "ORDER BY id"


@dataclass
class World:
    db: str
    boss: Client    # super_manager of shop1
    mgr: Client     # manager of shop1
    agent: Client   # service of shop1
    agent2: Client  # another service agent of shop1
    mgr2: Client    # manager of shop2
    anon: Client    # nobody logged in
    ids: dict[str, int]

    def rows(self) -> list[dict[str, Any]]:
        return db_rows(self.db, ROWS)


@pytest.fixture
def w(io_loop: Any, shop: Shop, anon: Client) -> World:
    async def build() -> World:
        ids, clients = await shop.staff(("mgr", "manager", BIZ), ("agent", "service", BIZ),
                                        ("agent2", "service", BIZ), ("mgr2", "manager", OTHER))
        return World(shop.db, shop.boss.client, clients["mgr"], clients["agent"],
                     clients["agent2"], clients["mgr2"], anon, ids)
    return io_loop.run_sync(build)


async def ok(c: Client, path: str, **form: Any) -> Any:
    code, body = await c.json(path, "POST", form=form)
    assert (code, body["code"]) == (200, 0), (path, code, body)
    return body["data"]


async def listing(c: Client) -> dict[str, Any]:
    code, body = await c.json("/admin/quickreply/list")
    assert (code, body["code"]) == (200, 0), body
    return body["data"]


async def refused(c: Client, path: str, status: int, **form: Any) -> dict[str, Any]:
    code, body = await c.json(path, "POST", form=form)
    assert (code, body["code"]) == (status, 1), (path, form, code, body)
    assert body["msg"]
    return body


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_own_and_shared_each_marked_and_scoped(w: World) -> None:
    first = await listing(w.agent)
    assert first["rows"] == [] and first["can_edit_shared"] is False
    assert first["limits"] == {"title": 32, "content": 1000, "own": 100, "shared": 200}
    assert (await listing(w.mgr))["can_edit_shared"] is True
    assert (await listing(w.boss))["can_edit_shared"] is True

    text = "您好 <b>欢迎</b> 👋\n第二行"
    mine = await ok(w.agent, "/admin/quickreply/add", content=f"  {text} ", title="hi")
    assert {k: mine[k] for k in ("title", "content", "shared", "mine", "editable", "sort")} \
        == {"title": "hi", "content": text, "shared": False, "mine": True, "editable": True,
            "sort": 1}
    shared = await ok(w.mgr, "/admin/quickreply/add", content="Shipping takes 2 days",
                      shared="1")
    assert (shared["shared"], shared["mine"], shared["editable"]) == (True, False, True)
    boss_shared = await ok(w.boss, "/admin/quickreply/add", content="Refunds: 7 days",
                           title="refund", shared="true")
    assert boss_shared["sort"] == 2
    assert [(r["service_id"], r["content"]) for r in w.rows()] == [
        (w.ids["agent"], text), (0, "Shipping takes 2 days"), (0, "Refunds: 7 days")]
    assert {r["business_id"] for r in w.rows()} == {BIZ}

    # The agent: shared first (not editable by a service agent), then its own.
    rows = (await listing(w.agent))["rows"]
    assert [(r["content"], r["shared"], r["mine"], r["editable"]) for r in rows] == [
        ("Shipping takes 2 days", True, False, False), ("Refunds: 7 days", True, False, False),
        (text, False, True, True)]
    # A colleague sees the shared ones, not the agent's own; the manager the same.
    for c in (w.agent2, w.mgr):
        assert [r["content"] for r in (await listing(c))["rows"]] == [
            "Shipping takes 2 days", "Refunds: 7 days"]
    # Another business sees nothing of shop1.
    assert (await listing(w.mgr2))["rows"] == []

    # Edit: only what is sent changes; own by its agent, shared by a manager.
    edited = await ok(w.agent, "/admin/quickreply/edit", id=mine["id"], content="Hello!")
    assert (edited["content"], edited["title"]) == ("Hello!", "hi")
    edited = await ok(w.agent, "/admin/quickreply/edit", id=mine["id"], title="")
    assert (edited["content"], edited["title"]) == ("Hello!", "")
    await ok(w.boss, "/admin/quickreply/edit", id=shared["id"], content="Shipping: 3 days")
    await ok(w.mgr, "/admin/quickreply/edit", id=boss_shared["id"], title="refunds")
    assert [(r["title"], r["content"]) for r in w.rows()] == [
        ("", "Hello!"), ("", "Shipping: 3 days"), ("refunds", "Refunds: 7 days")]

    # Delete.
    assert await ok(w.agent, "/admin/quickreply/delete", id=mine["id"]) == {"id": mine["id"]}
    assert await ok(w.mgr, "/admin/quickreply/delete", id=shared["id"]) == {"id": shared["id"]}
    assert [r["id"] for r in w.rows()] == [boss_shared["id"]]

    # A JSON body works as a form does.
    code, body = await w.agent.json("/admin/quickreply/add", "POST",
                                    json_body={"content": "json", "title": "j"})
    assert (code, body["code"], body["data"]["content"]) == (200, 0, "json")


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_who_may_change_what(w: World) -> None:
    own = await ok(w.agent, "/admin/quickreply/add", content="agent's own")
    mgr_own = await ok(w.mgr, "/admin/quickreply/add", content="manager's own")
    shared = await ok(w.mgr, "/admin/quickreply/add", content="shared", shared=1)
    other = await ok(w.mgr2, "/admin/quickreply/add", content="shop2 shared", shared=1)
    before = w.rows()

    # A service agent: no shared writes (403), nobody else's own (404).
    await refused(w.agent, "/admin/quickreply/add", 403, content="x", shared=1)
    await refused(w.agent, "/admin/quickreply/edit", 403, id=shared["id"], content="x")
    await refused(w.agent, "/admin/quickreply/delete", 403, id=shared["id"])
    await refused(w.agent, "/admin/quickreply/reorder", 403, ids=str(shared["id"]), shared=1)
    await refused(w.agent, "/admin/quickreply/edit", 404, id=mgr_own["id"], content="x")
    await refused(w.agent2, "/admin/quickreply/edit", 404, id=own["id"], content="x")
    await refused(w.agent2, "/admin/quickreply/delete", 404, id=own["id"])
    # A manager edits the shared ones, but not an agent's own.
    await refused(w.mgr, "/admin/quickreply/edit", 404, id=own["id"], content="x")
    await refused(w.boss, "/admin/quickreply/delete", 404, id=own["id"])
    # Nobody touches another business's rows, whatever their level.
    for c, rid in ((w.mgr2, shared["id"]), (w.mgr2, own["id"]), (w.boss, other["id"]),
                   (w.mgr, other["id"])):
        await refused(c, "/admin/quickreply/edit", 404, id=rid, content="x")
        await refused(c, "/admin/quickreply/delete", 404, id=rid)
    # Not logged in: 401; no _xsrf: 403.
    code, body = await w.anon.json("/admin/quickreply/list")
    assert (code, body["code"]) == (401, 1)
    await refused(w.anon, "/admin/quickreply/add", 401, content="x")
    code, body = await w.agent.json("/admin/quickreply/add", "POST", form={"content": "x"},
                                    xsrf=False)
    assert code == 403 and "_xsrf" in body["msg"]
    code, body = await w.mgr.json("/admin/quickreply/delete", "POST",
                                  form={"id": shared["id"]}, xsrf=False)
    assert code == 403
    assert w.rows() == before


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_bad_input_writes_nothing(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    own = await ok(w.agent, "/admin/quickreply/add", content="keep me", title="k")
    before = w.rows()
    add, edit = "/admin/quickreply/add", "/admin/quickreply/edit"
    await refused(w.agent, add, 400)
    await refused(w.agent, add, 400, content="   \n ")
    await refused(w.agent, add, 413, content="x" * (rules.MAX_CONTENT_CHARS + 1))
    await refused(w.agent, add, 413, content="x" * 20_000)
    await refused(w.agent, add, 413, content="ok", title="t" * (rules.MAX_TITLE_CHARS + 1))
    await refused(w.agent, add, 400, content="ok", title="two\nlines")
    code, body = await w.agent.json(add, "POST", json_body={"content": "bell \x07 !"})
    assert (code, body["code"]) == (400, 1)  # (a form's control characters Tornado drops)
    await refused(w.agent, add, 400, content="ok", shared="maybe")
    code, body = await w.agent.json(add, "POST", json_body={"content": ["not", "text"]})
    assert (code, body["code"]) == (400, 1)
    await refused(w.agent, edit, 400, content="x")
    await refused(w.agent, edit, 400, id="abc", content="x")
    await refused(w.agent, edit, 400, id="-3", content="x")
    await refused(w.agent, edit, 400, id=own["id"])
    await refused(w.agent, edit, 400, id=own["id"], content=" ")
    await refused(w.agent, edit, 413, id=own["id"], content="y" * 1001)
    await refused(w.agent, edit, 404, id=own["id"] + 1000, content="x")
    await refused(w.agent, edit, 404, id=2**62, content="x")
    await refused(w.agent, "/admin/quickreply/delete", 400)
    await refused(w.agent, "/admin/quickreply/delete", 404, id=own["id"] + 1000)
    assert w.rows() == before
    # A full list: 409 (a small cap here; the real one is `MAX_OWN`).
    monkeypatch.setattr(rules, "MAX_OWN", 2)
    await ok(w.agent, add, content="second")
    await refused(w.agent, add, 409, content="third")
    assert [r["content"] for r in w.rows()] == ["keep me", "second"]


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_reorder(w: World) -> None:
    a, b, c = [(await ok(w.agent, "/admin/quickreply/add", content=x))["id"]
               for x in ("a", "b", "c")]
    s1, s2 = [(await ok(w.mgr, "/admin/quickreply/add", content=x, shared=1))["id"]
              for x in ("s1", "s2")]
    other = (await ok(w.agent2, "/admin/quickreply/add", content="z"))["id"]
    rows = await ok(w.agent, "/admin/quickreply/reorder", ids=f"{c},{a},{b}")
    assert [r["content"] for r in rows] == ["c", "a", "b"]
    assert [r["content"] for r in (await listing(w.agent))["rows"]] == ["s1", "s2", "c", "a", "b"]
    code, body = await w.agent.json("/admin/quickreply/reorder", "POST",
                                    json_body={"ids": [b, c, a]})
    assert (code, [r["content"] for r in body["data"]]) == (200, ["b", "c", "a"])
    before = w.rows()
    for bad in (f"{a},{b}", f"{a},{b},{c},{c}", f"{a},{b},{other}", f"{a},{b},{s1}",
                f"{a},{b},x", "", f"{a},{b},{c},{other}"):
        await refused(w.agent, "/admin/quickreply/reorder", 400, ids=bad)
    assert w.rows() == before
    rows = await ok(w.mgr, "/admin/quickreply/reorder", ids=f"{s2},{s1}", shared=1)
    assert [r["content"] for r in rows] == ["s2", "s1"]
    await refused(w.mgr2, "/admin/quickreply/reorder", 400, ids=f"{s1},{s2}", shared=1)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_import_of_a_browsers_old_quick_replies(
        w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    await ok(w.agent, "/admin/quickreply/add", content="already here")
    imp = "/admin/quickreply/import"
    got = await ok(w.agent, imp, contents=json.dumps(
        ["您好，请问有什么可以帮您？", "  ", "already here", "Bye <3", "Bye <3"]))
    assert (got["imported"], got["skipped"]) == (2, 3)
    assert [(r["content"], r["mine"]) for r in got["rows"]] == [
        ("您好，请问有什么可以帮您？", True), ("Bye <3", True)]
    assert [(r["service_id"], r["content"], r["sort"]) for r in w.rows()] == [
        (w.ids["agent"], "already here", 1), (w.ids["agent"], "您好，请问有什么可以帮您？", 2),
        (w.ids["agent"], "Bye <3", 3)]
    # A JSON body may carry the array itself.
    code, body = await w.agent2.json(imp, "POST", json_body={"contents": ["x", "y"]})
    assert (code, body["data"]["imported"]) == (200, 2)
    before = w.rows()
    await refused(w.agent, imp, 400)
    await refused(w.agent, imp, 400, contents="not json")
    await refused(w.agent, imp, 400, contents=json.dumps({"a": 1}))
    await refused(w.agent, imp, 400, contents=json.dumps(["ok", 3]))
    await refused(w.agent, imp, 400, contents=json.dumps(["ok", "bell \x07 !"]))
    await refused(w.agent, imp, 413, contents=json.dumps(["new one", "x" * 1001]))
    await refused(w.agent, imp, 400, contents=json.dumps([""] * 501))
    monkeypatch.setattr(rules, "MAX_OWN", 4)
    await refused(w.agent, imp, 409, contents=json.dumps(["n1", "n2"]))
    await refused(w.anon, imp, 401, contents="[]")
    assert w.rows() == before
    assert (await ok(w.agent, imp, contents="[]")) == {"imported": 0, "skipped": 0, "rows": []}


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_a_database_from_before_gains_the_table(db_url: str) -> None:
    """An existing database without `wolive_quick_reply` (an older wolive, or a WoLive one)
    gets it at start-up, keeping its rows; on MariaDB as InnoDB utf8mb4 (emoji survive)."""
    store = await Store.open(db_url)
    await store.install("shop1", "boss", "Boss", "x")
    await store.close()
    db_rows(db_url, "DROP TABLE wolive_quick_reply")
    store = await Store.open(db_url)
    rows = await store.add_quick_replies("shop1", 1, [("t", "好的 👍🏽")], cap=1)
    assert (await store.find_service_by_name("boss"))["level"] == "super_manager"
    await store.close()
    assert db_rows(db_url, "SELECT content FROM wolive_quick_reply") == [{"content": "好的 👍🏽"}]
    assert rows[0]["sort"] == 1
    if not db_url.startswith("sqlite"):
        t = db_rows(db_url, "SELECT ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'wolive_quick_reply'")
        assert t[0]["ENGINE"] == "InnoDB" and t[0]["TABLE_COLLATION"].startswith("utf8mb4")


@pytest.mark.gen_test
async def test_a_bad_quick_reply_id_is_named_as_bad_not_missing(shop: Shop) -> None:
    for value, said in (("-1", "parameter id is out of range (1 to"),
                        ("0", "parameter id is out of range (1 to"),
                        ("", "missing parameter: id")):
        code, body = await shop.boss.client.json("/admin/quickreply/delete", "POST",
                                                 form={"id": value})
        assert (code, body["code"]) == (400, 1) and body["msg"].startswith(said), (value, body)
