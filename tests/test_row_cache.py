"""The row cache (store/rowcache.py): business and agent rows on the chat path, emptied by
every write to them.

The server here keeps cached rows for an hour (`row_cache_s` 3600), so a write path that
forgot to invalidate would show the old row: each test changes a business or an agent
through its documented URL and checks that the chat path follows at once. A change made by
another process (another node) is seen once the entry's time is up (fake clock)."""
from __future__ import annotations

from typing import Any

import pytest
from helpers import BIZ, Client, PusherSocket, db_rows, open_visitor_window, wait_for
from helpers import PASSWORD as PW

from store import NotFound, Store
from store.rowcache import RowCache, written_table

NEW_PW = "another-secret-9"


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"row_cache_s": 3600}


async def arrive(base_url: str, vid: str) -> tuple[int, dict[str, Any], dict[str, Any]]:
    visitor, boot = await open_visitor_window(base_url, BIZ, vid)
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": boot["visiter_id"], "business_id": BIZ, "channel": boot["channel"]})
    assert code == 200, body
    return body["code"], body, boot


@pytest.mark.gen_test
async def test_business_switches_and_state_reach_the_chat_path_at_once(
        boss: Client, boss_online: PusherSocket, base_url: str, wolive_server: Any) -> None:
    store = wolive_server.store
    assert (await arrive(base_url, "v-1"))[0] == 0  # auto: assigned; the row is cached
    hits = store.row_cache.hits
    assert (await arrive(base_url, "v-2"))[0] == 0
    assert store.row_cache.hits > hits  # the chat path did read it from the cache

    code, body = await boss.json("/admin/manager/switches", "POST", form={
        "distribution_rule": "claim", "video_state": "open"})
    assert (code, body["code"]) == (200, 0), body
    got, _body, boot = await arrive(base_url, "v-3")
    assert got == 2  # claim: waits to be claimed
    assert boot["video_state"] == "open"  # the chat window page reads the business too

    code, body = await boss.json("/admin/business/state", "POST",
                                 form={"business_id": BIZ, "state": "close"})
    assert (code, body["code"]) == (200, 0), body
    assert (await arrive(base_url, "v-4"))[0] == 1  # closed

    code, body = await boss.json("/admin/business/state", "POST",
                                 form={"business_id": BIZ, "state": "open"})
    assert (code, body["code"]) == (200, 0), body
    code, body = await boss.json("/admin/manager/switches", "POST",
                                 form={"distribution_rule": "auto"})
    assert (code, body["code"]) == (200, 0), body
    assert (await arrive(base_url, "v-5"))[0] == 0


@pytest.mark.gen_test
async def test_agent_edits_password_and_delete_reach_the_chat_path_at_once(
        boss: Client, boss_online: PusherSocket, base_url: str, ws_base: str,
        wolive_server: Any) -> None:
    got, _body, boot = await arrive(base_url, "v-1")
    assert got == 0
    vsock = await PusherSocket.connect(ws_base)
    assert (await vsock.subscribe("cu" + boot["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"

    async def reply(client: Client, text: str) -> tuple[int, dict[str, Any]]:
        return await client.json("/admin/set/chats", "POST",
                                 form={"visiter_id": "v-1", "content": text})

    code, body = await reply(boss, "one")
    assert (code, body["data"]["nick_name"]) == (200, "Boss"), body  # the agent row cached
    # An agent edit: the next reply carries the new name (the request's agent row).
    code, body = await boss.json("/admin/manager/update", "POST",
                                 form={"nick_name": "Renamed"})
    assert (code, body["code"]) == (200, 0), body
    code, body = await reply(boss, "two")
    assert (code, body["data"]["nick_name"]) == (200, "Renamed"), body
    pushed = await vsock.expect("my-event")
    while pushed["data"]["message"]["content"] != "two":
        pushed = await vsock.expect("my-event")
    assert pushed["data"]["message"]["nick_name"] == "Renamed"

    # The password: a second session of the same agent ends at once.
    other = Client(base_url)
    assert (await other.login("boss", PW)).code == 302
    assert (await reply(other, "three"))[0] == 200
    code, body = await boss.json("/admin/manager/modify", "POST", form={
        "oldpass": PW, "newpass": NEW_PW, "newpass2": NEW_PW})
    assert (code, body["code"]) == (200, 0), body
    assert (await reply(other, "four"))[0] == 401
    assert (await reply(boss, "five"))[0] == 200  # the session that changed it goes on

    # Delete: a deleted agent's session ends at once.
    code, body = await boss.json("/admin/manager/registForService", "POST", form={
        "user_name": "svc", "password": PW, "password2": PW})
    assert (code, body["code"]) == (200, 0), body
    sid = body["data"]["service_id"]
    svc = Client(base_url)
    assert (await svc.login("svc", PW)).code == 302
    assert (await svc.json("/admin/set/getchats"))[0] == 200  # its row is cached now
    code, body = await boss.json("/admin/manager/delete", "POST", form={"service_id": sid})
    assert (code, body["code"]) == (200, 0), body
    assert (await svc.json("/admin/set/getchats"))[0] == 401


@pytest.mark.gen_test
async def test_another_process_write_is_seen_once_the_entry_expires(db_url: str) -> None:
    """Another node writes behind this store's back: the cached row is trusted until its
    time is up (`row_cache_s`), then read again."""
    now = [1000.0]
    mine = await Store.open(db_url, row_cache_s=2)
    mine.row_cache.clock = lambda: now[0]
    other = await Store.open(db_url, migrate=False, row_cache_s=2)
    try:
        await mine.add_business("b1")
        assert (await mine.get_business("b1"))["state"] == "open"
        await other.set_switches("b1", {"state": "close"})
        assert (await mine.get_business("b1"))["state"] == "open"  # stale, within 2 s
        now[0] += 2.01
        assert (await mine.get_business("b1"))["state"] == "close"
        # Its own writes: at once, whatever the clock.
        await mine.set_switches("b1", {"state": "open"})
        assert (await mine.get_business("b1"))["state"] == "open"
        with pytest.raises(NotFound):
            await mine.get_business("nope")
        row = await mine.add_service("b1", "a1", "A", "x")
        assert (await mine.get_service(row["service_id"]))["nick_name"] == "A"
        await mine.update_service_profile(row["service_id"], {"nick_name": "B"})
        assert (await mine.get_service(row["service_id"]))["nick_name"] == "B"
        await mine.set_service_state(row["service_id"], "online")
        assert (await mine.get_service(row["service_id"]))["state"] == "online"
        await mine.delete_service(row["service_id"], 0)
        with pytest.raises(NotFound):
            await mine.get_service(row["service_id"])
    finally:
        await mine.close()
        await other.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_read_cancelled_mid_statement_ends_cleanly_and_trusts_nothing_cached(
        db_url: str) -> None:
    """A request's task cancelled while its statement runs (a client gone, a timeout)
    leaves the connection invalidated: its rollback must not raise from the cache's
    bookkeeping (it answered 500 with PendingRollbackError), and since what that
    connection wrote is not known, nothing cached is trusted after it."""
    import asyncio

    from sqlalchemy import text
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite statements run in the event loop's thread (store.inloop): a task "
                    "is cancelled only between statements; tests/test_sqlite_inloop.py "
                    "cancels one at the writer gate and inside its transaction")
    store = await Store.open(db_url, row_cache_s=3600)
    try:
        await store.add_business("b1")
        await store.get_business("b1")
        assert store.row_cache.get("wolive_business", "b1") is not None
        slow = "SELECT SLEEP(3)" if store.dialect != "sqlite" else (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 30000000) SELECT count(*) FROM n")
        task = asyncio.ensure_future(store._fetch_one(text(slow)))
        if store.dialect == "sqlite":
            await asyncio.sleep(0.3)
        else:  # the statement is running
            await wait_for(lambda: db_rows(db_url, "SELECT COUNT(*) AS n FROM "
                                           "information_schema.processlist WHERE "
                                           "info = 'SELECT SLEEP(3)'")[0]["n"] == 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        if store.dialect != "sqlite":  # the driver's connection was dropped mid-statement
            assert store.row_cache.get("wolive_business", "b1") is None
        assert (await store.get_business("b1"))["state"] == "open"  # the store goes on
    finally:
        await store.close()


def test_a_read_older_than_an_invalidation_is_not_kept() -> None:
    cache = RowCache(60, clock=lambda: 0.0)
    gen = cache.generation["wolive_business"]
    cache.invalidate("wolive_business")  # a write while the read was on its way
    cache.put("wolive_business", "b1", {"state": "open"}, gen)
    assert cache.get("wolive_business", "b1") is None
    cache.put("wolive_business", "b1", {"state": "open"}, cache.generation["wolive_business"])
    row = cache.get("wolive_business", "b1")
    assert row == {"state": "open"}
    row["state"] = "changed by a caller"  # callers get copies
    assert cache.get("wolive_business", "b1") == {"state": "open"}
    off = RowCache(0)
    off.put("wolive_service", 1, {"x": 1}, 0)
    assert off.get("wolive_service", 1) is None
    with pytest.raises(ValueError):
        RowCache(-1)


@pytest.mark.parametrize("sql,table", [
    ("UPDATE wolive_business SET state=? WHERE business_id = ?", "wolive_business"),
    ("update `wolive_service` set password=%s", "wolive_service"),
    ("INSERT INTO wolive_service (user_name) VALUES (?)", "wolive_service"),
    ("INSERT IGNORE INTO wolive_business(business_id) VALUES (%s)", "wolive_business"),
    ("DELETE FROM wolive_service WHERE service_id = ?", "wolive_service"),
    ("REPLACE INTO wolive_business VALUES (1)", "wolive_business"),
    ("UPDATE wolive_service_load SET last_active_ms=?", None),
    ("INSERT INTO wolive_service_status (service_id) VALUES (?)", None),
    ("SELECT * FROM wolive_service", None),
    ("UPDATE wolive_queue SET service_id = 0", None),
])
def test_written_table(sql: str, table: str | None) -> None:
    assert written_table(sql) == table
