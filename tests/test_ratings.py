"""End and rating, a message after the end, the greeting as a message (issue 9, items 4 and 6).

`/admin/set/close` writes an `ended` system line; `POST /admin/event/rating` stores the
visitor's 1-5 rating of it in `wolive_rating` (once) and writes a `rated` line; the visitor
card and the history answers carry it; a visitor writing after the end gets a `reopened`
line; an agent's greeting is stored as its first message when a conversation starts. Every
test runs on SQLite and on MariaDB."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import db_rows
from shop import BIZ, Agent, Shop, Visitor, expect_about, get, post

from store import SCHEMA_VERSION, Store


async def setup(server: Any, base_url: str, ws_base: str, cfg: dict
                ) -> tuple[Shop, dict[str, Agent], Visitor]:
    """shop1: anna (service, online), bert (service, online), mia (manager); v1 talks to
    anna and has said "hello"."""
    s = await Shop.open(server, base_url, ws_base, cfg.database.url)
    ag = {name: await s.agent(name, level) for name, level in
          [("anna", "service"), ("bert", "service"), ("mia", "manager")]}
    for name in ("anna", "bert"):
        await s.online(ag[name])
    v1 = await s.visitor("v1")
    assert (await s.notice(v1, special=str(ag["anna"].sid)))["code"] == 0
    assert (await say(v1, "hello"))[1]["code"] == 0
    return s, ag, v1


async def say(v: Visitor, content: str) -> tuple[int, dict[str, Any]]:
    return await v.client.json("/admin/event/chats", "POST", form={**v.ids, "content": content})


async def rate(v: Visitor, **form: Any) -> tuple[int, dict[str, Any]]:
    return await v.client.json("/admin/event/rating", "POST", form={**v.ids, **form})


def system_lines(db: str, vid: str = "v1") -> list[tuple[str, dict[str, Any], int]]:
    """(key, vars, service_id) of the visitor's system lines, in cid order."""
    rows = db_rows(db, "SELECT content, service_id, state, direction FROM wolive_chats WHERE "
                   "visiter_id = %s AND msg_type = 'system' ORDER BY cid", (vid,))
    assert all(r["state"] == "readed" and r["direction"] == "to_visiter" for r in rows)
    return [(json.loads(r["content"])["key"], json.loads(r["content"])["vars"],
             r["service_id"]) for r in rows]


async def next_line(sock: Any, event: str, channel: str, key: str) -> dict[str, Any]:
    """The next pushed system line with `key` (other frames skipped)."""
    while True:
        m = (await sock.expect(event, channel))["data"]["message"]
        if m.get("msg_type") == "system" and json.loads(m["content"])["key"] == key:
            return m


@pytest.mark.gen_test(timeout=40)
async def test_end_line_then_one_rating_shown_to_agents_and_in_history(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
    anna, mia = ag["anna"], ag["mia"]
    channel = f"cu{v1.boot['channel']}"

    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    ended = await next_line(v1.sock, "my-event", channel, "ended")
    assert json.loads(ended["content"])["vars"] == {"name": "Anna"}
    assert (await next_line(anna.sock, "cu-event", f"kefu{anna.sid}", "ended"))["cid"] == \
        ended["cid"]
    assert system_lines(s.db) == [("ended", {"name": "Anna"}, anna.sid)]

    code, body = await rate(v1, score="4", comment="  快，谢谢 <b>!</b>  ")
    assert (code, body["code"]) == (200, 0), body
    r = body["data"]
    assert (r["score"], r["comment"], r["ended_cid"], r["service_id"]) == (
        4, "快，谢谢 <b>!</b>", ended["cid"], anna.sid)
    assert json.loads(r["line"]["content"]) == {"key": "rated", "vars": {
        "score": 4, "comment": "快，谢谢 <b>!</b>", "ended_cid": ended["cid"]}}
    stored = db_rows(s.db, "SELECT visiter_id, business_id, service_id, score, comment, "
                     "ended_cid FROM wolive_rating")
    assert stored == [{"visiter_id": "v1", "business_id": BIZ, "service_id": anna.sid,
                       "score": 4, "comment": "快，谢谢 <b>!</b>", "ended_cid": ended["cid"]}]
    # Pushed like a message: the agent sees it live, the window too.
    assert (await next_line(anna.sock, "cu-event", f"kefu{anna.sid}", "rated"))["cid"] == \
        r["line"]["cid"]
    assert (await next_line(v1.sock, "my-event", channel, "rated"))["cid"] == r["line"]["cid"]

    # One rating per ended conversation: a second is refused, nothing written.
    chats_before = db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"]
    code, body = await rate(v1, score="1", comment="changed my mind")
    assert (code, body["code"]) == (409, 2) and body["msg"]
    assert db_rows(s.db, "SELECT score FROM wolive_rating") == [{"score": 4}]
    assert db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"] == chats_before

    # The visitor card and the history answer carry it; the transcript has both lines.
    for who in (anna, mia):
        code, body = await get(who, "/admin/set/visitor", visiter_id="v1")
        assert body["data"]["rating"]["score"] == 4, body
        assert body["data"]["rating"]["comment"] == "快，谢谢 <b>!</b>"
    code, body = await get(anna, "/admin/set/getviews", channel=v1.boot["channel"],
                           puttime="week")
    assert [x["score"] for x in body["data"]["ratings"]] == [4]
    keys = [json.loads(m["content"])["key"] for m in body["data"]["rows"]
            if m["msg_type"] == "system"]
    assert keys == ["ended", "rated"]
    code, body = await get(anna, "/admin/set/history", visiter_id="v1")
    assert [m["msg_type"] for m in body["data"]] == ["text", "system", "system"]

    # Ended again later: that end may be rated too (once).
    assert (await say(v1, "one more question"))[1]["code"] == 0
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    code, body = await rate(v1, score=5)
    assert (code, body["code"], body["data"]["comment"]) == (200, 0, "")
    code, body = await get(mia, "/admin/set/visitor", visiter_id="v1")
    assert body["data"]["rating"]["score"] == 5


@pytest.mark.gen_test(timeout=40)
async def test_bad_ratings_get_a_code_and_write_nothing(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)

    def counts() -> tuple[int, int]:
        return (db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_rating")[0]["n"],
                db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"])

    # Nothing ended yet: nothing to rate.
    code, body = await rate(v1, score="5")
    assert (code, body["code"]) == (409, 1) and body["msg"]
    assert counts() == (0, 1)  # "hello" only
    assert (await post(ag["anna"], "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    before = counts()
    other = await s.visitor("v2", listen=False)
    for form, status, code_ in [
            ({}, 400, 1),                                    # no score
            ({"score": ""}, 400, 1),
            ({"score": "0"}, 400, 1),
            ({"score": "6"}, 400, 1),
            ({"score": "4.5"}, 400, 1),
            ({"score": "-1"}, 400, 1),
            ({"score": "five"}, 400, 1),
            ({"score": "٤"}, 400, 1),                        # not an ASCII digit
            ({"score": " 4"}, 400, 1),                       # nothing around it
            ({"score": "4 "}, 400, 1),
            ({"score": "4\n"}, 400, 1),
            ({"score": "04"}, 400, 1),
            ({"score": "99999999999999999999999"}, 400, 1),
            ({"score": "3", "comment": "x" * 501}, 400, 1),
            ({"score": "3", "channel": "wrong"}, 403, 3),
            ({"score": "3", "channel": other.boot["channel"]}, 403, 3),  # another's proof
            ({"score": "3", "visiter_id": "bad id!"}, 400, 1),
            ({"score": "3", "business_id": "shop2"}, 403, 3)]:
        code, body = await rate(v1, **form)
        assert (code, body["code"]) == (status, code_), (form, body)
        assert body["msg"] and "Traceback" not in body["msg"]
    # A JSON body with a number of the wrong kind.
    code, body = await v1.client.json("/admin/event/rating", "POST",
                                      json_body={**v1.ids, "score": [5]})
    assert (code, body["code"]) == (400, 1)
    # Another visitor, never ended: nothing to rate.
    code, body = await rate(other, score="3")
    assert (code, body["code"]) == (409, 1)
    # Blacklisted: refused.
    assert (await post(ag["anna"], "/admin/set/blacklist", visiter_id="v1"))[1]["code"] == 0
    code, body = await rate(v1, score="3")
    assert (code, body["code"]) == (403, 4)
    assert counts() == before
    # A comment of exactly 500 characters is fine (once unblocked).
    assert (await post(ag["anna"], "/admin/set/unblack", visiter_id="v1"))[1]["code"] == 0
    code, body = await rate(v1, score="3", comment="好" * 500)
    assert (code, body["code"]) == (200, 0)
    assert db_rows(s.db, "SELECT LENGTH(comment) AS n FROM wolive_rating")[0]["n"] in (500, 1500)


@pytest.mark.gen_test(timeout=40)
async def test_a_message_after_the_end_starts_a_new_conversation_visibly(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
    anna = ag["anna"]
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    await anna.sock.expect("closed", f"kefu{anna.sid}")
    assert (await get(anna, "/admin/set/getchats"))[1]["data"] == []
    # Opening the window again (a reload, the in-page panel) shows the ended conversation
    # with its agent and starts nothing: no line, no greeting, still closed.
    before = db_rows(s.db, "SELECT cid FROM wolive_chats")
    answer = await s.notice(v1)
    assert answer["code"] == 0 and answer["data"]["service_id"] == anna.sid, answer
    assert "greeting_message" not in answer["data"]
    assert db_rows(s.db, "SELECT cid FROM wolive_chats") == before
    assert db_rows(s.db, "SELECT state FROM wolive_queue WHERE visiter_id = 'v1'") == [
        {"state": "complete"}]

    code, body = await say(v1, "are you there?")
    assert body["code"] == 0
    line = await next_line(v1.sock, "my-event", f"cu{v1.boot['channel']}", "reopened")
    assert (await next_line(anna.sock, "cu-event", f"kefu{anna.sid}", "reopened"))["cid"] == \
        line["cid"]
    # The console is told as for a new conversation, and the message follows the line.
    await expect_about(anna.sock, "on_notice", f"ud{anna.sid}", "v1")
    msg = (await anna.sock.expect("cu-event", f"kefu{anna.sid}"))["data"]["message"]
    assert msg["content"] == "are you there?"
    assert msg["cid"] == body["data"]["cid"] > line["cid"]
    assert [r["visiter_id"] for r in (await get(anna, "/admin/set/getchats"))[1]["data"]] == \
        ["v1"]
    assert [k for k, _, _ in system_lines(s.db)] == ["ended", "reopened"]
    # Writing in an open conversation adds no line.
    assert (await say(v1, "hello?"))[1]["code"] == 0
    assert [k for k, _, _ in system_lines(s.db)] == ["ended", "reopened"]


@pytest.mark.gen_test(timeout=40)
async def test_greeting_is_stored_once_as_the_agents_first_message(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    for a, text in ((anna, "您好，我是 Anna 😊"), (bert, "Bert here")):
        code, body = await a.client.json("/admin/manager/cmtalk", "POST",
                                         form={"content": text})
        assert body["code"] == 0
        await s.online(a)

    def greetings(vid: str) -> list[dict[str, Any]]:
        return db_rows(s.db, "SELECT service_id, content, direction, msg_type FROM wolive_chats "
                       "WHERE visiter_id = %s AND msg_type <> 'system' ORDER BY cid", (vid,))

    v1 = await s.visitor("v1")
    body = await s.notice(v1, special=str(anna.sid))
    # The contract's `greeting` stays; the stored message comes with it.
    assert body["data"]["greeting"] == "您好，我是 Anna 😊"
    stored = body["data"]["greeting_message"]
    assert (stored["content"], stored["direction"], stored["service_id"]) == (
        "您好，我是 Anna 😊", "to_visiter", anna.sid)
    assert greetings("v1") == [{"service_id": anna.sid, "content": "您好，我是 Anna 😊",
                                "direction": "to_visiter", "msg_type": "text"}]
    pushed = (await v1.sock.expect("my-event"))["data"]["message"]
    assert pushed["cid"] == stored["cid"] and pushed["nick_name"] == "Anna"
    # Two tabs asking at once: one conversation, one greeting.
    v3 = await s.visitor("v3", listen=False)
    both = await asyncio.gather(s.notice(v3, special=str(anna.sid)),
                                s.notice(v3, special=str(anna.sid)))
    assert [b["code"] for b in both] == [0, 0]
    assert len(greetings("v3")) == 1
    # A reload (notice again) does not greet again.
    for _ in range(2):
        body = await s.notice(v1)
        assert body["code"] == 0 and "greeting_message" not in body["data"]
    assert len(greetings("v1")) == 1
    # The agent sees it in the conversation (its own message) and the window after a reload.
    code, body = await get(anna, "/admin/set/history", visiter_id="v1")
    assert [m["content"] for m in body["data"]] == ["您好，我是 Anna 😊"]
    code, body = await v1.client.json("/admin/event/history", "GET", form=v1.ids)
    assert [m["content"] for m in body["data"]] == ["您好，我是 Anna 😊"]

    # A transfer does not greet: the conversation goes on.
    assert (await post(anna, "/admin/set/transfer", visiter_id="v1",
                       service_id=bert.sid))[1]["code"] == 0
    assert len(greetings("v1")) == 1

    # A claim starts a conversation: the claimer's greeting.
    db_rows(s.db, "UPDATE wolive_business SET distribution_rule = 'claim'")
    q1 = await s.visitor("q1", listen=False)
    assert (await s.notice(q1))["code"] == 2
    assert greetings("q1") == []
    code, body = await post(bert, "/admin/set/get", visiter_id="q1")
    assert body["code"] == 0
    assert greetings("q1") == [{"service_id": bert.sid, "content": "Bert here",
                                "direction": "to_visiter", "msg_type": "text"}]


@pytest.mark.gen_test(timeout=40)
async def test_auto_assignment_of_a_waiting_visitor_greets(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna = await s.agent("anna")
    await anna.client.json("/admin/manager/cmtalk", "POST", form={"content": "hi from anna"})
    await s.online(anna)
    wolive_server.chat.max_conversations_per_agent = 1
    v1, v2 = await s.visitor("v1", listen=False), await s.visitor("v2", listen=False)
    assert (await s.notice(v1))["code"] == 0
    assert (await s.notice(v2))["code"] == 2          # anna is full: v2 waits
    assert db_rows(s.db, "SELECT content FROM wolive_chats WHERE visiter_id = 'v2'") == []
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    assert s.queue("v2") == {"service_id": anna.sid, "state": "normal"}
    assert db_rows(s.db, "SELECT content, direction FROM wolive_chats WHERE visiter_id = 'v2'"
                   ) == [{"content": "hi from anna", "direction": "to_visiter"}]


@pytest.mark.gen_test
async def test_a_database_at_version_6_gains_the_rating_table(db_url: str,
                                                             tmp_path: Path) -> None:
    """Migration 7 on an existing database from before ratings (SQLite and MariaDB)."""
    store = await Store.open(db_url)
    await store.close()
    db_rows(db_url, "DROP TABLE wolive_rating")
    db_rows(db_url, "DELETE FROM wolive_schema WHERE version >= 7")
    store = await Store.open(db_url)
    try:
        assert await store.schema_version() == SCHEMA_VERSION >= 7
        row = await store.add_rating("v1", BIZ, 2, 5, "好", 10)
        assert (await store.latest_rating("v1", BIZ))["id"] == row["id"]
    finally:
        await store.close()
    assert [r["version"] for r in db_rows(db_url, "SELECT version FROM wolive_schema "
                                          "ORDER BY version")][-1] == SCHEMA_VERSION
    assert db_rows(db_url, "SELECT score, comment FROM wolive_rating") == [
        {"score": 5, "comment": "好"}]
