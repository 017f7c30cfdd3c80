"""Presence writes under a connect storm (issue 10 item 7): a loop turn's online/offline
changes are written as one batch by one writer; on SQLite that writer and the presence hooks
take turns (`Store.background_turn`), so a storm meeting a locked database holds one pooled
connection and requests keep the rest; writes and hooks that found the database unavailable
are tried again, so every state ends right. The 5,000-socket measurement is
bench/connect_storm.py (docs/performance.md)."""
from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

import wolive
from store import Unavailable



def states(db: str, table: str, key: str) -> dict[Any, str]:
    return {r[key]: r["state"] for r in db_rows(db, f"SELECT {key}, state FROM {table}")}


async def visitors(base_url: str, n: int, prefix: str = "storm") -> list[str]:
    """`n` visitors who opened the chat window once; their channels."""
    async def one(i: int) -> str:
        _, boot = await open_visitor_window(base_url, BIZ, f"{prefix}{i}")
        return str(boot["channel"])
    return list(await asyncio.gather(*(one(i) for i in range(n))))


@pytest.mark.gen_test(timeout=120)
async def test_storm_on_a_locked_sqlite_leaves_the_pool_to_requests(tmp_path: Path) -> None:
    """40 visitor windows connect while another connection holds SQLite's write lock past
    the busy timeout. Requests wait at most 1 s for a pooled connection (15 of them): an
    agent's request and its console's handshake still answer meanwhile (before: every
    connection waited on the lock for a presence write, so both got 503 / a closed socket),
    and once the lock is gone every visitor and the agent end online, then offline after
    their sockets close."""
    db = f"sqlite:///{tmp_path}/data/wolive.db"
    cfg = wolive.load_config(str(write_config(tmp_path, db)))
    cfg = dataclasses.replace(cfg, database=dataclasses.replace(cfg.database, pool_timeout_s=1))
    server = await wolive.make_app(cfg)
    server.presence.grace_s = 0.3
    from tornado.testing import bind_unused_port

    from handlers.http_server import HTTPServer
    sock, port = bind_unused_port()
    http = HTTPServer(server.app)
    http.add_sockets([sock])
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    lock = sqlite3.connect(tmp_path / "data" / "wolive.db", isolation_level=None)
    try:
        boss = Client(base)
        assert (await boss.install(BIZ, "boss", PASSWORD)).code == 302
        channels = await visitors(base, 40)

        lock.execute("BEGIN IMMEDIATE")  # another writer, for longer than the busy timeout
        windows = await asyncio.gather(*(PusherSocket.connect(ws_base) for _ in channels))
        answers = await asyncio.gather(*(w.subscribe("cu" + ch)
                                         for w, ch in zip(windows, channels)))
        assert all(a["event"].endswith("subscription_succeeded") for a in answers)
        pool = server.store.engine.pool
        await wait_for(lambda: pool.checkedout() >= 1)  # a presence write waits on the lock

        code, body = await boss.json("/admin/set/getwait")
        assert code == 200, body
        console = await PusherSocket.connect(ws_base, cookie=boss.cookie_header())
        assert (await console.subscribe("kefu1"))["event"].endswith("subscription_succeeded")
        # The writes met "database is locked" (Unavailable), and will be tried again.
        await wait_for(lambda: server.store.unavailable_since is not None, timeout=60)
        code, body = await boss.json("/admin/set/getwait")
        assert code == 200, body
        lock.execute("ROLLBACK")

        await wait_for(lambda: set(states(db, "wolive_visiter", "channel").values())
                       == {"online"} and states(db, "wolive_service", "service_id")[1]
                       == "online", timeout=30)
        for w in windows:
            w.close()
        console.close()
        await wait_for(lambda: set(states(db, "wolive_visiter", "channel").values())
                       == {"offline"} and states(db, "wolive_service", "service_id")[1]
                       == "offline", timeout=30)
    finally:
        lock.close()
        http.stop()
        await http.close_all_connections()
        await server.stop()


@pytest.mark.gen_test
async def test_one_loop_turn_of_changes_is_one_batch(base_url: str, cfg: dict,
                                                     wolive_server: Any) -> None:
    """30 visitors and an agent changing in the same loop turn: one `set_visiter_states`
    call with all 30 and one `set_service_states` call; then their leaving, the same."""
    db = cfg.database.url
    presence, store = wolive_server.presence, wolive_server.store
    boss = Client(base_url)
    await boss.install(BIZ, "boss", PASSWORD)
    channels = await visitors(base_url, 30)
    calls: list[tuple[str, dict[Any, str]]] = []
    for name in ("set_visiter_states", "set_service_states"):
        def spy(states: dict[Any, str], name: str = name,
                real: Any = getattr(store, name)) -> Any:
            calls.append((name, dict(states)))
            return real(states)
        setattr(store, name, spy)
    app_id = wolive_server.hub.default_app.id
    for ch in channels:
        presence.on_occupancy(app_id, "cu" + ch, True)
    presence.on_occupancy(app_id, "kefu1", True)
    await wait_for(lambda: set(states(db, "wolive_visiter", "channel").values()) == {"online"}
                   and states(db, "wolive_service", "service_id")[1] == "online")
    assert calls == [("set_service_states", {1: "online"}),
                     ("set_visiter_states", {ch: "online" for ch in channels})]
    calls.clear()
    for ch in channels:  # their grace timers firing in one loop turn
        presence._vacated("cu" + ch)
    await wait_for(lambda: set(states(db, "wolive_visiter", "channel").values())
                   == {"offline"})
    assert calls == [("set_visiter_states", {ch: "offline" for ch in channels})]


@pytest.mark.gen_test
async def test_batch_writes_in_the_store(base_url: str, wolive_server: Any) -> None:
    store = wolive_server.store
    boss = Client(base_url)
    await boss.install(BIZ, "boss", PASSWORD)
    a, b = await visitors(base_url, 2)
    await store.put_queue("storm0", BIZ, 1)  # storm0 talks to agent 1; storm1 has no queue
    rows = await store.set_visiter_states({a: "online", b: "offline", "v" + "0" * 40: "online"})
    assert rows == {
        a: {"visiter_id": "storm0", "business_id": BIZ, "channel": a, "state": "online",
            "service_id": 1},
        b: {"visiter_id": "storm1", "business_id": BIZ, "channel": b, "state": "offline",
            "service_id": None}}
    assert await store.set_service_states({1: "online", 999: "online"}) == [1]
    assert await store.set_service_states({1: "online"}) == []  # nothing changed
    assert await store.set_visiter_states({}) == {}
    with pytest.raises(ValueError):
        await store.set_visiter_states({a: "away"})
    with pytest.raises(ValueError):
        await store.set_service_states({1: "busy"})


@pytest.mark.gen_test
async def test_background_writes_take_turns_on_sqlite_only(wolive_server: Any) -> None:
    """SQLite has one writer: background writers queue on the store's turn, one at a time.
    MariaDB locks rows: they all go at once."""
    store = wolive_server.store
    inside, most = 0, 0
    release = asyncio.Event()

    async def writer() -> None:
        nonlocal inside, most
        async with store.background_turn():
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    tasks = [asyncio.ensure_future(writer()) for _ in range(3)]
    await wait_for(lambda: inside >= 1)
    if store.dialect == "sqlite":
        for _ in range(20):  # loop turns: the others had every chance to enter
            await asyncio.sleep(0)
        assert inside == 1
    else:
        await wait_for(lambda: inside == 3)
    release.set()
    await asyncio.gather(*tasks)
    assert most == (1 if store.dialect == "sqlite" else 3)


@pytest.mark.gen_test
async def test_presence_hook_that_found_the_database_unavailable_is_retried(
        base_url: str, wolive_server: Any) -> None:
    """An agent-online hook (`Chat.agent_available` in production) that meets `Unavailable`
    runs again until it works, instead of being logged and dropped."""
    presence = wolive_server.presence
    boss = Client(base_url)
    await boss.install(BIZ, "boss", PASSWORD)
    tries: list[int] = []

    async def flaky(service_id: int) -> None:
        tries.append(service_id)
        if len(tries) < 3:
            raise Unavailable("database is locked")

    presence.agent_online_listeners.append(flaky)
    assert await presence.apply("kefu1", True)  # waits for the write and its hooks
    assert tries == [1, 1, 1]
