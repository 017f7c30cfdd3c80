"""A visitor and an agent: assignment codes, messages both ways stored then pushed, bad input."""
from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from helpers import BIZ, Client, PusherSocket, db_rows, open_visitor_window



async def notice(visitor: Client, boot: dict[str, Any], **extra: Any) -> tuple[int, dict]:
    return await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": boot["visiter_id"], "business_id": boot["business_id"],
        "channel": boot["channel"], "visiter_name": boot["visiter_name"],
        "avatar": boot["avatar"], "record": "http://shop.example/item/1", **extra})


@pytest.mark.gen_test
async def test_notice_code_0_assigns_online_agent_and_pushes(
        boss: Client, boss_online: PusherSocket, base_url: str, ws_base: str, cfg: dict) -> None:
    db = cfg.database.url
    agent, agent_sock = boss, boss_online
    assert agent_sock is not None
    ud = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await ud.subscribe("ud1"))["event"] == "pusher_internal:subscription_succeeded"
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-1", visiter_name="小红")
    vsock = await PusherSocket.connect(ws_base)
    assert (await vsock.subscribe("cu" + boot["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"

    code, body = await notice(visitor, boot)
    assert code == 200 and body["code"] == 0, body
    assert body["data"]["service_id"] == 1 and body["data"]["nick_name"] == "Boss"
    assert "password" not in body["data"]
    pushed = await ud.expect("on_notice", "ud1")
    assert pushed["data"]["visiter_id"] == "visitor-1"
    assert pushed["data"]["visiter_name"] == "小红"
    assert (await vsock.expect("cu_notice"))["data"]["service_id"] == 1
    queue = db_rows(db, "SELECT service_id, state FROM wolive_queue WHERE visiter_id='visitor-1'")
    assert queue == [{"service_id": 1, "state": "normal"}]
    visitors = db_rows(db, "SELECT visiter_name, channel, business_id FROM wolive_visiter")
    assert visitors == [{"visiter_name": "小红", "channel": boot["channel"], "business_id": BIZ}]


@pytest.mark.gen_test
async def test_notice_code_3_when_nobody_online(boss: Client, base_url: str, cfg: dict) -> None:
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-3")
    code, body = await notice(visitor, boot)
    assert (code, body["code"], body["msg"]) == (200, 3, "请留言")
    # Issue 9: it waits all the same, for the first agent to come online.
    assert db_rows(cfg.database.url, "SELECT visiter_id, service_id, state FROM "
                   "wolive_queue") == [{"visiter_id": "visitor-3", "service_id": 0,
                                        "state": "normal"}]


@pytest.mark.gen_test
async def test_notice_code_1_when_business_closed(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    # Through the URL (the server's row cache follows its own writes at once).
    code, body = await agent.json("/admin/business/state", "POST",
                                  form={"business_id": BIZ, "state": "close"})
    assert (code, body["code"]) == (200, 0), body
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-2")
    code, body = await notice(visitor, boot)
    assert (code, body["code"]) == (200, 1)
    assert body["msg"] == "该网站已经停止客服咨询！"
    assert db_rows(db, "SELECT * FROM wolive_queue") == []


@pytest.mark.gen_test
async def test_notice_code_2_queues_under_claim_rule(
        boss: Client, boss_online: PusherSocket, base_url: str, ws_base: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    all_sock = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await all_sock.subscribe("all" + BIZ))["event"] == \
        "pusher_internal:subscription_succeeded"
    code, body = await agent.json("/admin/manager/switches", "POST",
                                  form={"distribution_rule": "claim"})
    assert (code, body["code"]) == (200, 0), body
    for n in (1, 2):
        visitor, boot = await open_visitor_window(base_url, BIZ, f"waiting-{n}")
        code, body = await notice(visitor, boot)
        assert body["code"] == 2 and body["msg"] == "等待认领" and body["data"]["position"] == n
        assert (await all_sock.expect("on_notice"))["data"]["visiter_id"] == f"waiting-{n}"
    assert db_rows(db, "SELECT service_id FROM wolive_queue ORDER BY qid") == \
        [{"service_id": 0}, {"service_id": 0}]


def watch_pushes(server: Any, db: str, monkeypatch: pytest.MonkeyPatch
                 ) -> list[dict[str, Any]]:
    """Every frame the server hands to the sockets (`adapter.publish`, under every push),
    as {channel, event, message, stored}: `stored` is the message's row as a separate
    database connection reads it at that moment (None when not committed yet)."""
    seen: list[dict[str, Any]] = []
    adapter = server.hub.adapter
    publish = adapter.publish

    def spy(app_id: str, channel: str, frame: str, *args: Any, **kw: Any) -> int:
        decoded = json.loads(frame)
        data = decoded.get("data")
        data = json.loads(data) if isinstance(data, str) else data
        message = data.get("message") if isinstance(data, dict) else None
        stored = None
        if isinstance(message, dict) and "cid" in message:
            rows = db_rows(db, "SELECT content, direction FROM wolive_chats WHERE cid = %s",
                           (message["cid"],))
            stored = rows[0] if rows else None
        seen.append({"channel": channel, "event": decoded["event"], "message": message,
                     "stored": stored})
        return publish(app_id, channel, frame, *args, **kw)
    monkeypatch.setattr(adapter, "publish", spy)
    return seen


def refuse_chat_inserts(db: str, refuse: bool) -> None:
    """Make the database itself refuse (or accept again) every new `wolive_chats` row."""
    if not refuse:
        db_rows(db, "DROP TRIGGER refuse_chats")
    elif db.startswith("sqlite"):
        db_rows(db, "CREATE TRIGGER refuse_chats BEFORE INSERT ON wolive_chats "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    else:
        db_rows(db, "CREATE TRIGGER refuse_chats BEFORE INSERT ON wolive_chats FOR EACH ROW "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test'")


@pytest.mark.gen_test
@pytest.mark.allow_error_logs  # the refused writes' own; every ERROR record is checked below
async def test_messages_both_ways_stored_then_pushed(
        boss: Client, boss_online: PusherSocket, base_url: str, ws_base: str, cfg: dict,
        wolive_server: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Visitor → agent and agent → visitor: each message is stored, then pushed. The row is
    committed when the server hands the push to the sockets (read then through a separate
    connection) and so readable when it reaches a subscriber; and when the database refuses
    the write, nothing is pushed (the next message frame each side gets is the next message
    that was stored), nothing is stored, and the caller gets a JSON error answer (code, msg, the
    request id of the one traceback logged for it)."""
    db = cfg.database.url
    agent, agent_sock = boss, boss_online
    assert agent_sock is not None
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-9", visiter_name="Ann")
    vsock = await PusherSocket.connect(ws_base)
    vchannel = "cu" + boot["channel"]
    await vsock.subscribe(vchannel)
    assert (await notice(visitor, boot))[1]["code"] == 0
    pushes = watch_pushes(wolive_server, db, monkeypatch)

    def stored(cid: int) -> list[dict[str, Any]]:
        return db_rows(db, "SELECT direction, content FROM wolive_chats WHERE cid = %s", (cid,))

    def pushed_only_once_stored(cid: int, content: str, direction: str) -> None:
        mine = [p for p in pushes if (p["message"] or {}).get("cid") == cid]
        assert mine, pushes
        for p in mine:
            assert p["stored"] == {"direction": direction, "content": content}, p

    async def visitor_says(content: str) -> tuple[int, dict[str, Any]]:
        return await visitor.json("/admin/event/chats", "POST", form={
            "visiter_id": "visitor-9", "service_id": 1, "business_id": BIZ,
            "channel": boot["channel"], "content": content, "avatar": "", "record": ""})

    async def agent_says(content: str) -> tuple[int, dict[str, Any]]:
        return await agent.json("/admin/set/chats", "POST", form={
            "visiter_id": "visitor-9", "content": content, "avatar": ""})

    # Visitor → agent: the document's parameters, plus the visitor's channel.
    code, body = await visitor_says("你好 👋 <b>bold?</b>")
    assert (code, body["code"], body["msg"]) == (200, 0, "success")
    frame = await agent_sock.expect("cu-event", "kefu1")
    msg = frame["data"]["message"]
    assert stored(msg["cid"]) == [{"direction": "to_service", "content": "你好 👋 <b>bold?</b>"}]
    pushed_only_once_stored(msg["cid"], "你好 👋 <b>bold?</b>", "to_service")
    assert msg["content"] == "你好 👋 <b>bold?</b>" and msg["visiter_id"] == "visitor-9"
    assert msg["visiter_name"] == "Ann" and msg["cid"] == body["data"]["cid"]
    row = db_rows(db, "SELECT * FROM wolive_chats WHERE cid = %s", (msg["cid"],))[0]
    assert (row["direction"], row["service_id"], row["business_id"], row["state"]) \
        == ("to_service", 1, BIZ, "unread")
    # The visitor's other windows show it too.
    own = await vsock.expect("my-event", vchannel)
    assert (own["data"]["message"]["direction"], own["data"]["message"]["content"]) == \
        ("to_service", "你好 👋 <b>bold?</b>")

    # The console's list shows it, unread.
    code, body = await agent.json("/admin/set/getchats")
    assert body["data"][0]["visiter_id"] == "visitor-9" and body["data"][0]["unread"] == 1
    assert body["data"][0]["last_content"] == "你好 👋 <b>bold?</b>"

    # Agent → visitor.
    code, body = await agent_says("Hi Ann, how can I help?")
    assert (code, body["code"], body["msg"]) == (200, 0, "success")
    frame = await vsock.expect("my-event", vchannel)
    reply = frame["data"]["message"]
    assert stored(reply["cid"]) == [{"direction": "to_visiter",
                                     "content": "Hi Ann, how can I help?"}]
    pushed_only_once_stored(reply["cid"], "Hi Ann, how can I help?", "to_visiter")
    assert reply["content"] == "Hi Ann, how can I help?" and reply["nick_name"] == "Boss"
    # The agent's other consoles show its reply too.
    assert (await agent_sock.expect("my-event", "kefu1"))["data"]["message"]["cid"] == \
        reply["cid"]

    # The database refuses the write: an error answer, nothing stored, nothing pushed.
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    refuse_chat_inserts(db, True)
    before = len(pushes)
    request_ids = []
    for say, content in ((visitor_says, "lost from the visitor"),
                         (agent_says, "lost from the agent")):
        code, body = await say(content)
        assert code >= 400 and body["code"] != 0 and body["msg"], (content, code, body)
        request_ids.append(body["request_id"])
    assert pushes[before:] == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    # One traceback a refused write, under the request id its caller was given.
    faults = [(r.getMessage(), str(r.exc_info[1]) if r.exc_info else "")
              for r in errors if r.name != "tornado.access"]
    assert len(faults) == 2 and all(
        rid in message and "refused by the test" in cause
        for rid, (message, cause) in zip(request_ids, faults)), faults
    assert all(r.getMessage().startswith(f"{code} POST /admin/")
               for r in errors if r.name == "tornado.access"), errors
    refuse_chat_inserts(db, False)
    # Stored again, and the next messages each side gets are these (none came before).
    assert (await visitor_says("back again"))[1]["code"] == 0
    assert (await agent_says("welcome back"))[1]["code"] == 0

    async def next_message(sock: PusherSocket) -> dict[str, Any]:
        while True:
            frame = await sock.recv()
            if isinstance(frame.get("data"), dict) and "message" in frame["data"]:
                return frame

    for sock, event, channel, content in (
            (agent_sock, "cu-event", "kefu1", "back again"),
            (vsock, "my-event", vchannel, "back again"),
            (vsock, "my-event", vchannel, "welcome back"),
            (agent_sock, "my-event", "kefu1", "welcome back")):
        frame = await next_message(sock)
        assert (frame["event"], frame.get("channel"), frame["data"]["message"]["content"]) \
            == (event, channel, content), frame
    rows = db_rows(db, "SELECT direction, content FROM wolive_chats ORDER BY cid")
    assert rows == [{"direction": "to_service", "content": "你好 👋 <b>bold?</b>"},
                    {"direction": "to_visiter", "content": "Hi Ann, how can I help?"},
                    {"direction": "to_service", "content": "back again"},
                    {"direction": "to_visiter", "content": "welcome back"}]

    # Reading marks read; both sides can load the history.
    code, body = await agent.json("/admin/set/getwatch", "POST", form={"visiter_id": "visitor-9"})
    assert body["data"]["marked"] == 2
    code, body = await visitor.json("/admin/event/history", form={
        "visiter_id": "visitor-9", "business_id": BIZ, "channel": boot["channel"]})
    assert [m["direction"] for m in body["data"]] == ["to_service", "to_visiter"] * 2


@pytest.mark.gen_test
async def test_visitor_channel_is_unguessable_and_checked(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    visitor, boot = await open_visitor_window(base_url, BIZ, "victim")
    _, boot2 = await open_visitor_window(base_url, BIZ, "victim2")
    assert boot["channel"] != boot2["channel"]
    # The original derived it as hex(visiter_id/business_id); ours is not derivable.
    assert "victim".encode().hex() not in boot["channel"]
    assert len(boot["channel"]) >= 40
    assert (await notice(visitor, boot))[1]["code"] == 0
    attacker = Client(base_url)
    for channel in ("", boot2["channel"], "v" + "0" * 40):
        code, body = await attacker.json("/admin/event/chats", "POST", form={
            "visiter_id": "victim", "business_id": BIZ, "channel": channel, "content": "hi"})
        assert code == 403 and body["code"] == 3
        code, body = await attacker.json("/admin/event/history", form={
            "visiter_id": "victim", "business_id": BIZ, "channel": channel})
        assert code == 403
    assert db_rows(db, "SELECT * FROM wolive_chats") == []


@pytest.mark.gen_test
async def test_bad_input_gets_code_and_msg_and_writes_nothing(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-b")
    assert (await notice(visitor, boot))[1]["code"] == 0
    ids = {"visiter_id": "visitor-b", "business_id": BIZ, "channel": boot["channel"]}
    cases: list[tuple[str, dict[str, Any], int]] = [
        ("/admin/event/chats", {**ids, "content": ""}, 400),
        ("/admin/event/chats", {**ids, "content": "x" * 5001}, 413),
        ("/admin/event/chats", {k: v for k, v in ids.items() if k != "visiter_id"} | {
            "content": "hi"}, 400),
        ("/admin/event/chats", {**ids, "visiter_id": "bad id with spaces", "content": "x"}, 400),
        ("/admin/event/notice", {"visiter_id": "v", "business_id": "no-such-shop",
                                 "channel": "x"}, 403),
        ("/admin/event/notice", {}, 400),
        ("/admin/event/notice", {**ids, "special": "abc"}, 400),
    ]
    for path, form, status in cases:
        code, body = await visitor.json(path, "POST", form=form)
        assert code == status, (path, form, body)
        assert body["code"] != 0 and body["msg"], body
    code, body = await visitor.json("/admin/event/chats", "POST", body=b"{not json",
                                    headers={"Content-Type": "application/json"})
    assert code == 400 and body["msg"].startswith("body is not valid JSON")
    # Unknown business in the window URL: a readable page, not a traceback.
    resp = await visitor.fetch("/index/index/home", form={"business_id": "nope"})
    assert resp.code == 404 and b"unknown business_id" in resp.body
    # Agent side.
    for form, status in [({"visiter_id": "visitor-b", "content": ""}, 400),
                         ({"visiter_id": "visitor-b", "content": "y" * 5001}, 413),
                         ({"visiter_id": "stranger", "content": "hi"}, 404),
                         ({"content": "hi"}, 400)]:
        code, body = await agent.json("/admin/set/chats", "POST", form=form)
        assert code == status and body["code"] == 1 and body["msg"], (form, body)
    assert db_rows(db, "SELECT * FROM wolive_chats") == []


@pytest.mark.gen_test
async def test_unknown_business_in_notice_is_404(
        boss: Client, boss_online: PusherSocket, base_url: str, wolive_server: Any) -> None:
    channel = wolive_server.chat.channel_for("ghost", "v1")
    code, body = await Client(base_url).json("/admin/event/notice", "POST", form={
        "visiter_id": "v1", "business_id": "ghost", "channel": channel})
    assert code == 404 and body["code"] == 1 and "ghost" in body["msg"]


@pytest.mark.gen_test
async def test_history_after_0_is_a_cursor_giving_the_oldest_page(
        boss: Client, boss_online: PusherSocket, base_url: str) -> None:
    """`after=0` is the cursor of a page that has seen nothing: the oldest messages after
    it, page by page, not the newest page (which would skip the oldest when more than a page
    was missed). Without `after`: the newest page, as before."""
    agent = boss
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-after")
    assert (await notice(visitor, boot))[1]["code"] == 0
    ids = {"visiter_id": "v-after", "business_id": BIZ, "channel": boot["channel"]}
    for n in range(3):
        code, body = await visitor.json("/admin/event/chats", "POST",
                                        form={**ids, "content": f"m{n}"})
        assert body["code"] == 0, body
    for client, url, form in ((visitor, "/admin/event/history", ids),
                              (agent, "/admin/set/history", {"visiter_id": "v-after"})):
        _, body = await client.json(url, form={**form, "after": "0", "limit": "2"})
        assert [m["content"] for m in body["data"]] == ["m0", "m1"], url
        _, body = await client.json(url, form={**form, "limit": "2"})
        assert [m["content"] for m in body["data"]] == ["m1", "m2"], url
