"""Deleting an agent ends it at once (a tester's defect): its open console sockets are closed
with SESSION_ENDED (4009: pusher-js does not reconnect, the console goes to the sign-in
page), its cookie authenticates nothing, its visitors are handled as when an agent goes
offline, and its id is never given to a new agent (SQLite AUTOINCREMENT, migration 12).
Every server test runs on SQLite and on MariaDB (conftest `db_url`)."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import PusherSocket, db_rows, wait_for
from shop import BIZ, PASSWORD, Agent, Shop, Visitor, post, next_line

from store import Store

DELETE = "/admin/manager/delete"
SESSION_ENDED = 4009


async def talking_to(s: Shop, agent: Agent, vid: str) -> Visitor:
    """A visitor whose window is open, in a conversation with `agent`."""
    v = await s.visitor(vid)
    await wait_for(lambda: db_rows(s.db, "SELECT state FROM wolive_visiter WHERE "
                                   "visiter_id = %s", (vid,))[0]["state"] == "online")
    body = await s.notice(v, special=str(agent.sid))
    assert body["data"]["service_id"] == agent.sid, body
    return v


@pytest.mark.gen_test(timeout=40)
async def test_a_deleted_agents_sockets_close_and_its_cookie_is_refused(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna = await s.agent("anna")
    await s.online(anna)
    # A second console page of hers (another tab): only the business's channel.
    tab = await PusherSocket.connect(ws_base, cookie=anna.client.cookie_header())
    assert (await tab.subscribe(f"all{BIZ}"))["event"].endswith("subscription_succeeded")
    await s.online(s.boss)
    v1 = await talking_to(s, anna, "v1")

    code, body = await post(s.boss, DELETE, service_id=anna.sid)
    assert (code, body["code"], body["data"]) == (200, 0, {"service_id": anna.sid,
                                                         "released": 1}), body
    # Every socket opened with her session is told and closed, with a code pusher-js does
    # not reconnect on (and the console pages take to the sign-in page).
    for sock in (anna.sock, tab):
        assert sock is not None
        error = await sock.expect("pusher:error")
        assert error["data"]["code"] == SESSION_ENDED, error
        closed = await sock.recv()
        while closed["event"] != "__closed__":  # frames sent before the error
            closed = await sock.recv()
        assert closed["code"] == SESSION_ENDED, closed
    # Her cookie opens nothing: no API, no console, no agent channel on a new socket.
    code, body = await anna.client.json("/admin/set/getchats")
    assert (code, body["code"]) == (401, 1), body
    resp = await anna.client.fetch("/admin/index/index")
    assert (resp.code, resp.headers["Location"]) == (302, "/admin/login/index")
    again = await PusherSocket.connect(ws_base, cookie=anna.client.cookie_header())
    for channel in (f"kefu{anna.sid}", f"ud{anna.sid}", f"all{BIZ}"):
        assert (await again.subscribe(channel))["event"] == "pusher:subscription_error"
    # Her visitor is told, as when an agent goes offline, and the online agent takes it.
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "queue"}
    assert v1.sock is not None
    await v1.sock.expect("cu_notice")  # its own notice: anna
    card = (await v1.sock.expect("cu_notice"))["data"]
    assert card["service_id"] == s.boss.sid
    assert s.queue("v1") == {"service_id": s.boss.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=40)
async def test_a_deleted_agents_visitor_with_nobody_online_waits_for_the_next_agent(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(anna)
    v1 = await talking_to(s, anna, "v1")
    code, body = await post(s.boss, DELETE, service_id=anna.sid)
    assert (code, body["code"]) == (200, 0), body
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "contact"}
    assert s.queue("v1") == {"service_id": 0, "state": "normal"}
    await s.online(bert)
    assert v1.sock is not None
    await v1.sock.expect("cu_notice")  # its own notice: anna
    assert (await v1.sock.expect("cu_notice"))["data"]["service_id"] == bert.sid
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=40)
async def test_a_new_agent_never_gets_a_deleted_agents_id(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """Delete the newest agent, add another: the new one gets an id never used, not the
    deleted one's (which names `kefu{id}`, its visitors' rows, its old messages)."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
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
