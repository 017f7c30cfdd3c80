"""Defects found walking issue 9 as its users would (a newcomer's walk-through): each test
fails on the code before its fix."""
from __future__ import annotations

import pytest

from helpers import Client, db_rows
from shop import PASSWORD, Shop


@pytest.mark.gen_test
async def test_head_on_pages_is_answered_like_get(base_url: str, ws_base: str, cfg: dict) -> None:
    """A monitor or link checker sends HEAD: a page answers it as GET without a body
    (RFC 9110 9.3.2), not 405."""
    shop = await Shop.open(None, base_url, ws_base, cfg.database.url)
    stranger = Client(base_url)
    for client, path, status in [
            (stranger, "/admin/login/index", 200), (stranger, "/", 302),
            (shop.boss.client, "/admin/index/index", 200),
            (shop.boss.client, "/admin/page/history", 200),
            (shop.boss.client, "/admin/page/settings", 200),
            (stranger, "/admin/page/history", 302),
            (stranger, "/index/index/message?business_id=shop1", 200),
            (stranger, "/index/index/home?business_id=shop1", 200)]:
        got = await client.fetch(path)
        head = await client.fetch(path, "HEAD")
        assert (head.code, got.code) == (status, status), (path, head.code, got.code)
        assert head.body == b"", path
        assert head.headers.get("Content-Type") == got.headers.get("Content-Type"), path
    # An API stays what it was: HEAD is not one of its methods.
    assert (await shop.boss.client.fetch("/admin/set/getchats", "HEAD")).code == 405


@pytest.mark.gen_test
async def test_user_names_differing_only_in_case_are_one_name(base_url: str, ws_base: str,
                                                              cfg: dict) -> None:
    """"Alice" and "alice" are one user name on every database (MariaDB's collation already
    said so; SQLite now has a NOCASE unique index): registering, renaming to or installing
    a name taken in another case is refused 409 and writes nothing; logging in ignores case
    as MariaDB does."""
    db = cfg.database.url
    shop = await Shop.open(None, base_url, ws_base, db)
    boss = shop.boss.client
    form = {"user_name": "Alice", "nick_name": "Alice", "password": PASSWORD,
            "password2": PASSWORD}
    code, body = await boss.json("/admin/manager/registForService", "POST", form=form)
    assert (code, body["code"]) == (200, 0), body
    for name in ("alice", "ALICE", "BOSS"):
        code, body = await boss.json("/admin/manager/registForService", "POST",
                                     form={**form, "user_name": name})
        assert code == 409 and body["code"] != 0 and "taken" in body["msg"], (name, body)
    # Renaming oneself to another agent's name in another case: refused too.
    code, body = await boss.json("/admin/manager/update", "POST",
                                 form={"user_name": "aLiCe"})
    assert code == 409, body
    names = sorted(r["user_name"] for r in db_rows(db, "SELECT user_name FROM wolive_service"))
    assert names == ["Alice", "boss"]
    # Logging in with the name in another case is the same agent.
    alice = Client(base_url)
    resp = await alice.login("ALICE", PASSWORD)
    assert resp.code == 302 and resp.headers["Location"] == "/admin/index/index"


@pytest.mark.gen_test
async def test_nocase_migration_keeps_an_existing_clash_working(tmp_path, caplog) -> None:
    """An older SQLite database that already holds "Bob" and "bob": migration 10 leaves it
    working (both agents kept) and names the pair in the log."""
    from store import Store
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    await store.close()
    db_rows(url, "DROP INDEX service_user_name_nocase")
    db_rows(url, "DELETE FROM wolive_schema WHERE version >= 10")
    db_rows(url, "INSERT INTO wolive_service (user_name, nick_name, password, business_id, "
                 "level, parent_id) VALUES ('Bob', 'B', 'x', 'b', 'service', 0), "
                 "('bob', 'b', 'x', 'b', 'service', 0)")
    with caplog.at_level("WARNING", logger="wolive.store"):
        store = await Store.open(url)
        await store.close()
    assert "Bob, bob" in caplog.text or "bob, Bob" in caplog.text
    assert len(db_rows(url, "SELECT * FROM wolive_service")) == 2


@pytest.mark.gen_test(timeout=30)
async def test_reading_in_one_console_tab_clears_the_unread_count_in_the_others(
        wolive_server, base_url: str, ws_base: str, cfg: dict) -> None:
    """The agent reads a conversation in one tab (`/admin/set/getwatch`): its other tabs
    hear `kefu{id}` `agent_read` `{visiter_id, cid}` (the newest visitor message now read)
    and drop their unread count; nothing is pushed when nothing was unread."""
    from shop import post
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    await s.online(s.boss)
    v = await s.visitor("v1")
    assert (await s.notice(v))["data"]["service_id"] == s.boss.sid
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": "hello?"})
    assert body["code"] == 0, body
    cid = body["data"]["cid"]
    code, body = await post(s.boss, "/admin/set/getwatch", visiter_id="v1")
    assert body["data"] == {"marked": 1}
    assert s.boss.sock is not None
    frame = await s.boss.sock.expect("agent_read", f"kefu{s.boss.sid}")
    assert frame["data"] == {"visiter_id": "v1", "cid": cid}
    code, body = await post(s.boss, "/admin/set/getwatch", visiter_id="v1")
    assert body["data"] == {"marked": 0}
    # Nothing pushed for it: the next event on the channel (the visitor writing again) is
    # not preceded by an `agent_read`.
    await v.client.json("/admin/event/chats", "POST", form={**v.ids, "content": "again"})
    await s.boss.sock.expect("cu-event", f"kefu{s.boss.sid}")
    assert [f for f in s.boss.sock.pending if f.get("event") == "agent_read"] == []


@pytest.mark.gen_test
async def test_a_bad_quick_reply_id_is_named_as_bad_not_missing(base_url: str, ws_base: str,
                                                                cfg: dict) -> None:
    shop = await Shop.open(None, base_url, ws_base, cfg.database.url)
    for value, said in (("-1", "parameter id is out of range (1 to"),
                        ("0", "parameter id is out of range (1 to"),
                        ("", "missing parameter: id")):
        code, body = await shop.boss.client.json("/admin/quickreply/delete", "POST",
                                                 form={"id": value})
        assert (code, body["code"]) == (400, 1) and body["msg"].startswith(said), (value, body)
