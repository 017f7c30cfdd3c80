"""Deleting an agent (a tester's defect): its id is never given to a new agent (SQLite
AUTOINCREMENT, migration 12), which would inherit its channel `kefu{id}`, its visitors and
whatever else still names the id. Every server test runs on SQLite and on MariaDB (conftest
`db_url`)."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import db_rows
from shop import PASSWORD, Shop, post

from store import Store

DELETE = "/admin/manager/delete"


@pytest.mark.gen_test(timeout=40)
async def test_a_new_agent_never_gets_a_deleted_agents_id(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """Delete the newest agent, add another: the new one gets an id never used, not the
    deleted one's (which names `kefu{id}`, its visitors' rows, its old messages)."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg["database"]["url"])
    form = {"nick_name": "N", "password": PASSWORD, "password2": PASSWORD}
    ids = []
    for name in ("anna", "bert"):
        code, body = await post(s.boss, "/admin/manager/registForService", user_name=name,
                                **form)
        assert (code, body["code"]) == (200, 0), body
        ids.append(body["data"]["service_id"])
    assert (await post(s.boss, DELETE, service_id=ids[-1]))[1]["code"] == 0
    code, body = await post(s.boss, "/admin/manager/registForService", user_name="carl",
                            **form)
    assert (code, body["code"]) == (200, 0), body
    assert body["data"]["service_id"] > max(ids), (body["data"], ids)
    # Businesses' ids are not reused either.
    assert (await post(s.boss, "/admin/business/add", business_id="shop9", user_name="m9",
                       password=PASSWORD, password2=PASSWORD))[1]["code"] == 0
    gone = db_rows(s.db, "SELECT wid FROM wolive_business WHERE business_id = 'shop9'")[0]
    db_rows(s.db, "DELETE FROM wolive_business WHERE business_id = 'shop9'")
    assert (await post(s.boss, "/admin/business/add", business_id="shop10", user_name="m10",
                       password=PASSWORD, password2=PASSWORD))[1]["code"] == 0
    wid = db_rows(s.db, "SELECT wid FROM wolive_business WHERE business_id = 'shop10'")[0]
    assert wid["wid"] > gone["wid"]


def _without_autoincrement(path: str) -> None:
    """Make `wolive_service` and `wolive_business` as a database from before migration 12
    has them (no AUTOINCREMENT; same columns and indexes), and forget migration 12."""
    conn = sqlite3.connect(path)
    try:
        for name in ("wolive_service", "wolive_business"):
            ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                               "name = ?", (name,)).fetchone()[0]
            indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                                   "AND tbl_name = ? AND sql IS NOT NULL", (name,)).fetchall()
            conn.execute(f"ALTER TABLE {name} RENAME TO old_{name}")
            for index, _sql in indexes:
                conn.execute(f"DROP INDEX {index}")
            conn.execute(ddl.replace(" AUTOINCREMENT", ""))
            conn.execute(f"INSERT INTO {name} SELECT * FROM old_{name}")
            conn.execute(f"DROP TABLE old_{name}")
            for _index, sql in indexes:
                conn.execute(sql)
        conn.execute("DELETE FROM sqlite_sequence")
        conn.execute("DELETE FROM wolive_schema WHERE version >= 12")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.gen_test
async def test_migration_12_stops_sqlite_reusing_agent_ids(tmp_path: Path) -> None:
    """An older SQLite file: migration 12 keeps every row, id and index, and the next agent
    gets an id above every id still named anywhere (here agent 7, deleted long ago, wrote
    in a conversation; agent 3 was the newest and is deleted now)."""
    url = f"sqlite:///{tmp_path}/old.db"
    store = await Store.open(url)
    await store.add_business("b")
    for n in (1, 2, 3):
        await store.add_service("b", f"agent{n}", f"A{n}", "x")
    await store.close()
    path = str(tmp_path / "old.db")
    _without_autoincrement(path)
    db_rows(url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, content, "
                 "timestamp, direction) VALUES ('v', 7, 'b', 'hi', 0, 'to_visiter')")
    db_rows(url, "DELETE FROM wolive_service WHERE service_id = 3")
    store = await Store.open(url)
    try:
        assert await store.schema_version() >= 12
        row = await store.add_service("b", "newbie", "N", "x")
        assert row["service_id"] == 8
        assert [r["user_name"] for r in db_rows(url, "SELECT user_name FROM wolive_service "
                                                     "ORDER BY service_id")] == [
            "agent1", "agent2", "newbie"]
        # From now on the newest deleted is not reused either.
        await store.delete_service(8, 1)
        assert (await store.add_service("b", "second", "S", "x"))["service_id"] == 9
        await store.add_business("c")
        db_rows(url, "DELETE FROM wolive_business WHERE business_id = 'c'")
        await store.add_business("d")
        assert [r["wid"] for r in db_rows(url, "SELECT wid FROM wolive_business "
                                               "ORDER BY wid")] == [1, 3]
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        ddl = {name: sql for name, sql in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
            "AND sql IS NOT NULL")}
    finally:
        conn.close()
    assert "AUTOINCREMENT" in ddl["wolive_service"]
    assert "AUTOINCREMENT" in ddl["wolive_business"]
    for index in ("pid", "web", "service_user_name_nocase"):
        assert index in ddl, index
    assert not [name for name in ddl if name.startswith(("old_", "wolive_service_v",
                                                         "wolive_business_v"))]
