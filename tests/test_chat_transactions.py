"""Issue 11, item 2: a visitor message and an agent reply each run one database transaction
(the visitor and its conversation read together, the message stored, the agent's activity
noted), with every rule of the slower path: blacklist, who may write, committed before
pushed; a closed conversation still reopens."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from helpers import PASSWORD as PW, BIZ
from helpers import Client, PusherSocket, db_rows, open_visitor_window, wait_for
from sqlalchemy import event

from handlers.install import hash_password



@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"row_cache_s": 3600}


@contextmanager
def transactions(server: Any) -> Iterator[list[int]]:
    """Counts the transactions the server's store begins meanwhile (`[n]`)."""
    count = [0]

    def begun(_conn: Any) -> None:
        count[0] += 1

    engine = server.store.engine.sync_engine
    event.listen(engine, "begin", begun)
    try:
        yield count
    finally:
        event.remove(engine, "begin", begun)


Talk = tuple[Client, PusherSocket, Client, dict[str, Any]]


@pytest.fixture
def talk(io_loop: Any, base_url: str, boss: Client, boss_online: PusherSocket) -> Talk:
    """The boss online (its socket on kefu1); visitor v-1's window open, its notice sent."""
    async def open_window() -> Talk:
        visitor, boot = await open_visitor_window(base_url, BIZ, "v-1")
        code, body = await visitor.json("/admin/event/notice", "POST", form={
            "visiter_id": "v-1", "business_id": BIZ, "channel": boot["channel"]})
        assert (code, body["code"]) == (200, 0), body
        return boss, boss_online, visitor, boot
    return io_loop.run_sync(open_window)


def chats(db: str) -> list[dict[str, Any]]:
    return db_rows(db, "SELECT content, direction, service_id FROM wolive_chats "
                       "WHERE msg_type = 'text' ORDER BY cid")


@pytest.mark.gen_test
async def test_a_message_each_way_is_one_transaction_committed_before_pushed(
        talk: Talk, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    boss, sock, visitor, boot = talk
    vsock = await PusherSocket.connect(ws_base)
    assert (await vsock.subscribe("cu" + boot["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"
    # The socket's presence write (the visitor is online) lands before counting.
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_visiter WHERE visiter_id = "
                                       "'v-1'")[0]["state"] == "online")
    form = {"visiter_id": "v-1", "business_id": BIZ, "channel": boot["channel"]}
    # Warm: the agent's row is in the row cache after its first request.
    assert (await boss.json("/admin/set/getchats"))[0] == 200
    with transactions(wolive_server) as n:
        code, body = await visitor.json("/admin/event/chats", "POST",
                                        form={**form, "content": "hello"})
        assert (code, body["code"]) == (200, 0), body
        assert n[0] == 1
    pushed = await sock.expect("cu-event", "kefu1")
    assert pushed["data"]["message"]["content"] == "hello"
    assert chats(db)[-1] == {"content": "hello", "direction": "to_service", "service_id": 1}

    with transactions(wolive_server) as n:
        code, body = await boss.json("/admin/set/chats", "POST",
                                     form={"visiter_id": "v-1", "content": "hi there"})
        assert (code, body["code"]) == (200, 0), body
        assert n[0] == 1
    pushed = await vsock.expect("my-event")
    while pushed["data"]["message"]["content"] != "hi there":
        pushed = await vsock.expect("my-event")
    assert pushed["data"]["message"]["cid"] == body["data"]["cid"]
    assert chats(db)[-1] == {"content": "hi there", "direction": "to_visiter", "service_id": 1}
    # The reply noted the agent's activity (the auto rule's idle order), same transaction.
    load = db_rows(db, "SELECT last_active_ms FROM wolive_service_load WHERE service_id = 1")
    assert load and load[0]["last_active_ms"] > 0


@pytest.mark.gen_test
async def test_refusals_on_the_one_transaction_path_write_nothing(
        talk: Talk, base_url: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    boss, _sock, visitor, boot = talk
    form = {"visiter_id": "v-1", "business_id": BIZ, "channel": boot["channel"]}
    before = chats(db)

    # A `service` agent may not write to another agent's visitor.
    await wolive_server.store.add_service(BIZ, "svc", "Svc", await hash_password(PW, 4))
    svc = Client(base_url)
    assert (await svc.login("svc", PW)).code == 302
    code, body = await svc.json("/admin/set/chats", "POST",
                                form={"visiter_id": "v-1", "content": "not mine"})
    assert (code, body["code"]) == (403, 1), body
    code, body = await boss.json("/admin/set/chats", "POST",
                                 form={"visiter_id": "nobody", "content": "x"})
    assert (code, body["code"]) == (404, 1), body
    code, body = await visitor.json("/admin/event/chats", "POST", form={
        **form, "visiter_id": "v-unknown", "content": "x",
        "channel": wolive_server.chat.channel_for(BIZ, "v-unknown")})
    assert (code, body["code"]) == (404, 3), body

    # Blacklisted: neither side's message is stored.
    code, body = await boss.json("/admin/set/blacklist", "POST", form={"visiter_id": "v-1"})
    assert (code, body["code"]) == (200, 0), body
    code, body = await visitor.json("/admin/event/chats", "POST",
                                    form={**form, "content": "let me in"})
    assert (code, body["code"]) == (403, 4), body
    code, body = await boss.json("/admin/set/chats", "POST",
                                 form={"visiter_id": "v-1", "content": "bye"})
    assert (code, body["code"]) == (409, 4), body
    assert chats(db) == before


@pytest.mark.gen_test
async def test_a_closed_conversation_reopens_when_the_visitor_writes(
        talk: Talk, cfg: dict) -> None:
    db = cfg.database.url
    boss, sock, visitor, boot = talk
    code, body = await boss.json("/admin/set/close", "POST", form={"visiter_id": "v-1"})
    assert (code, body["code"]) == (200, 0), body
    code, body = await visitor.json("/admin/event/chats", "POST", form={
        "visiter_id": "v-1", "business_id": BIZ, "channel": boot["channel"],
        "content": "one more thing"})
    assert (code, body["code"]) == (200, 0), body
    assert db_rows(db, "SELECT state FROM wolive_queue WHERE visiter_id = 'v-1'") == \
        [{"state": "normal"}]
    lines = db_rows(db, "SELECT msg_type, content FROM wolive_chats ORDER BY cid")
    assert lines[-1]["content"] == "one more thing"
    assert lines[-2]["msg_type"] == "system" and "reopened" in lines[-2]["content"]
    pushed = await sock.expect("cu-event", "kefu1")
    while pushed["data"]["message"]["content"] != "one more thing":
        pushed = await sock.expect("cu-event", "kefu1")
    assert pushed["data"]["message"]["cid"] == body["data"]["cid"]


@pytest.mark.gen_test
async def test_a_new_visitors_notice_is_one_transaction_and_the_greeting(
        talk: Talk, base_url: str, cfg: dict, wolive_server: Any) -> None:
    """The locked decision with the visitor upsert and its queue row (waiting visitors
    first, then this one) and the agent's card (greeting and status in one read); the
    greeting stored as the agent's first message commits on its own, before its push."""
    db = cfg.database.url
    boss, sock, _visitor, _boot = talk
    await wolive_server.store.save_greeting(1, "welcome!")
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-2")
    with transactions(wolive_server) as n:
        code, body = await visitor.json("/admin/event/notice", "POST", form={
            "visiter_id": "v-2", "business_id": BIZ, "channel": boot["channel"]})
        assert (code, body["code"]) == (200, 0), body
        assert n[0] == 2  # + the greeting, stored as the agent's first message
    assert body["data"]["greeting"] == "welcome!" and body["data"]["status"] == "available"
    assert body["data"]["greeting_message"]["content"] == "welcome!"
    assert db_rows(db, "SELECT service_id, state FROM wolive_queue WHERE visiter_id = 'v-2'") \
        == [{"service_id": 1, "state": "normal"}]


@pytest.mark.gen_test
async def test_the_chat_window_page_is_one_transaction(
        talk: Talk, base_url: str, cfg: dict, wolive_server: Any) -> None:
    """A new visitor's window (identity checks, the owner row, the visit, the visitor
    card's note) and the same browser coming back: one transaction each, and everything
    the page wrote is there."""
    db = cfg.database.url
    with transactions(wolive_server) as n:
        visitor, boot = await open_visitor_window(base_url, BIZ, "v-3",
                                                  visiter_name="Ann")
        assert n[0] == 1
    assert boot["visiter_id"] == "v-3" and boot["visiter_name"] == "Ann"
    assert db_rows(db, "SELECT visiter_name, channel FROM wolive_visiter "
                       "WHERE visiter_id = 'v-3'") == [
        {"visiter_name": "Ann", "channel": boot["channel"]}]
    assert len(db_rows(db, "SELECT token_hash FROM wolive_visitor_owner "
                           "WHERE visiter_id = 'v-3'")) == 1
    assert db_rows(db, "SELECT visits FROM wolive_visiter_info "
                       "WHERE visiter_id = 'v-3'") == [{"visits": 1}]
    with transactions(wolive_server) as n:
        resp = await visitor.fetch("/index/index/home", form={
            "business_id": BIZ, "visiter_id": "v-3", "visiter_name": "Ann B"})
        assert resp.code == 200 and b'"visiter_id": "v-3"' in resp.body
        assert n[0] == 1
    assert db_rows(db, "SELECT visiter_name FROM wolive_visiter "
                       "WHERE visiter_id = 'v-3'") == [{"visiter_name": "Ann B"}]
