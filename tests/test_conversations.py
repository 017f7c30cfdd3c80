"""The console's conversation API (WoLive document, "对话平台Api"): getwait, get (claim),
getchatnow, getblackdata, getmessage, getwatch, blacklist, unblack, transfer, close.

Each URL: success, each error code, a caller not logged in, a `service` agent touching
another agent's conversation (too low a level), and an agent of another business. Every
test runs on SQLite and on MariaDB."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import Client, db_rows
from shop import BIZ, Shop, Visitor, expect_about, get, post

#: (method, URL) of every console URL this file covers.
URLS = [
    ("GET", "/admin/set/getwait"), ("POST", "/admin/set/get"),
    ("POST", "/admin/set/getchatnow"), ("GET", "/admin/set/getblackdata"),
    ("GET", "/admin/set/getmessage"), ("POST", "/admin/set/getwatch"),
    ("POST", "/admin/set/blacklist"), ("POST", "/admin/set/unblack"),
    ("POST", "/admin/set/transfer"), ("POST", "/admin/set/getswitch"),
    ("POST", "/admin/set/close"),
]


async def setup(server: Any, base_url: str, ws_base: str, cfg: dict
                ) -> tuple[Shop, dict[str, Any], dict[str, Visitor]]:
    """shop1: anna, bert (service, online), mia (manager), carl (service, offline);
    shop2: zed (manager, online). v1 talks to anna, v2 to bert, w1 (shop2) to zed."""
    s = await Shop.open(server, base_url, ws_base, cfg.database.url)
    ag = {name: await s.agent(name, level) for name, level in
          [("anna", "service"), ("bert", "service"), ("mia", "manager"),
           ("carl", "service")]}
    ag["zed"] = await s.agent("zed", "manager", business_id="shop2")
    for name in ("anna", "bert", "zed"):
        await s.online(ag[name])
    vs = {"v1": await s.visitor("v1"), "v2": await s.visitor("v2"),
          "w1": await s.visitor("w1", business_id="shop2")}
    for vid, who in (("v1", "anna"), ("v2", "bert"), ("w1", "zed")):
        body = await s.notice(vs[vid], special=str(ag[who].sid))
        assert body["data"]["service_id"] == ag[who].sid
    return s, ag, vs


async def say(v: Visitor, content: str) -> tuple[int, dict[str, Any]]:
    return await v.client.json("/admin/event/chats", "POST", form={**v.ids, "content": content})


def listed(body: dict[str, Any]) -> list[str]:
    return [r["visiter_id"] for r in body["data"]]


@pytest.mark.gen_test(timeout=30)
async def test_not_logged_in_or_no_xsrf_is_refused_and_changes_nothing(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, _vs = await setup(wolive_server, base_url, ws_base, cfg)
    before = db_rows(s.db, "SELECT visiter_id, service_id, state FROM wolive_queue ORDER BY qid")
    nobody = Client(base_url)
    await nobody.get_xsrf()  # a valid _xsrf, but no session
    for method, url in URLS:
        form = {"visiter_id": "v1", "service_id": ag["bert"].sid}
        code, body = await nobody.json(url, method, form=form)
        assert (code, body["code"]) == (401, 1), (url, body)
    # Logged in, but a POST without the _xsrf token: 403.
    for method, url in URLS:
        if method == "POST":
            code, body = await ag["mia"].client.json(url, "POST", form={
                "visiter_id": "v1", "service_id": ag["bert"].sid}, xsrf=False)
            assert code == 403 and "_xsrf" in body["msg"], (url, body)
    assert db_rows(s.db, "SELECT visiter_id, service_id, state FROM wolive_queue "
                   "ORDER BY qid") == before


@pytest.mark.gen_test(timeout=30)
async def test_getwait_lists_the_own_business_waiting_visitors(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, _vs = await setup(wolive_server, base_url, ws_base, cfg)
    await s.set_rule("claim")
    for vid, biz in (("q1", BIZ), ("q2", BIZ), ("q3", "shop2")):
        assert (await s.notice(await s.visitor(vid, business_id=biz, listen=False)))[
            "code"] == 2
    for name in ("anna", "mia"):
        code, body = await get(ag[name], "/admin/set/getwait")
        assert (code, body["code"], listed(body)) == (200, 0, ["q1", "q2"])
    row = body["data"][0]
    assert row["position"] == 1 and row["service_id"] == 0 and row["business_id"] == BIZ
    assert {"visiter_name", "avatar", "channel", "online", "from_url", "unread",
            "last_content"} <= set(row)
    code, body = await get(ag["zed"], "/admin/set/getwait")
    assert listed(body) == ["q3"]
    # POST works too (the original's $.post).
    code, body = await post(ag["anna"], "/admin/set/getwait")
    assert listed(body) == ["q1", "q2"]


@pytest.mark.gen_test(timeout=30)
async def test_claim_errors(wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, _vs = await setup(wolive_server, base_url, ws_base, cfg)
    await s.set_rule("claim")
    q1 = await s.visitor("q1", listen=False)
    assert (await s.notice(q1))["code"] == 2
    await s.visitor("never-queued", listen=False)
    anna = ag["anna"]
    for form, status, code_ in [
            ({}, 400, 1),
            ({"visiter_id": "ghost"}, 404, 1),
            ({"visiter_id": "never-queued"}, 404, 1),
            ({"visiter_id": "v2"}, 409, 2),          # bert's already
            ({"channel": "nope"}, 404, 1)]:
        code, body = await post(anna, "/admin/set/get", **form)
        assert (code, body["code"]) == (status, code_), (form, body)
        assert body["msg"]
    # Another business's agent cannot see, let alone claim, shop1's waiting visitor.
    code, body = await post(ag["zed"], "/admin/set/get", visiter_id="q1")
    assert (code, body["code"]) == (404, 1)
    code, body = await post(ag["zed"], "/admin/set/get", channel=q1.boot["channel"])
    assert (code, body["code"]) == (404, 1)
    assert s.queue("q1") == {"service_id": 0, "state": "normal"}
    # A blacklisted visitor cannot be claimed.
    assert (await post(anna, "/admin/set/blacklist", visiter_id="q1"))[1]["code"] == 0
    code, body = await post(ag["bert"], "/admin/set/get", visiter_id="q1")
    assert (code, body["code"]) == (409, 4)
    # By channel, as the document names visitors.
    q2 = await s.visitor("q2", listen=False)
    assert (await s.notice(q2))["code"] == 2
    code, body = await post(ag["mia"], "/admin/set/get", channel=q2.boot["channel"])
    assert (code, body["code"], body["data"]["service_id"]) == (200, 0, ag["mia"].sid)


@pytest.mark.gen_test(timeout=30)
async def test_getchatnow_restores_a_closed_conversation(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna = ag["anna"]
    assert (await say(vs["v1"], "hello"))[1]["code"] == 0
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == []
    # The document: "pass the visitor's wolive_queue row as JSON". Only visiter_id counts:
    # other fields (service_id, state, business_id) are never written (no mass assignment).
    code, body = await anna.client.json("/admin/set/getchatnow", "POST", json_body={
        "visiter_id": "v1", "service_id": ag["bert"].sid, "business_id": "shop2",
        "state": "in_black_list", "qid": 999})
    assert (code, body["code"]) == (200, 0), body
    assert body["data"]["visiter_id"] == "v1" and body["data"]["state"] == "normal"
    # The last line is the closing one (a system line, never unread); "hello" stays unread.
    assert body["data"]["last_msg_type"] == "system" and body["data"]["unread"] == 1
    assert '"ended"' in body["data"]["last_content"]
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == ["v1"]
    # An open one: answered as it is.
    code, body = await post(anna, "/admin/set/getchatnow", visiter_id="v1")
    assert body["code"] == 0 and body["data"]["service_id"] == anna.sid

    for who, form, status, code_ in [
            ("bert", {"visiter_id": "v1"}, 403, 1),   # a service agent, not its visitor
            ("zed", {"visiter_id": "v1"}, 404, 1),    # another business
            ("anna", {}, 400, 1),
            ("anna", {"visiter_id": "ghost"}, 404, 1)]:
        code, body = await post(ag[who], "/admin/set/getchatnow", **form)
        assert (code, body["code"]) == (status, code_), (who, form, body)
    # A manager sees any conversation of the business (and does not take it).
    code, body = await post(ag["mia"], "/admin/set/getchatnow", visiter_id="v2")
    assert body["code"] == 0 and body["data"]["service_id"] == ag["bert"].sid
    assert s.queue("v2") == {"service_id": ag["bert"].sid, "state": "normal"}
    # Blacklisted: unblack first.
    assert (await post(anna, "/admin/set/blacklist", visiter_id="v1"))[1]["code"] == 0
    code, body = await post(anna, "/admin/set/getchatnow", visiter_id="v1")
    assert (code, body["code"]) == (409, 4)


@pytest.mark.gen_test(timeout=30)
async def test_getmessage_and_getwatch_by_channel_or_visiter_id(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna, v1 = ag["anna"], vs["v1"]
    for text in ("one", "two"):
        assert (await say(v1, text))[1]["code"] == 0
    channel = v1.boot["channel"]
    for form in ({"channel": channel}, {"visiter_id": "v1"}, {"channel": "cu" + channel}):
        code, body = await get(anna, "/admin/set/getmessage", **form)
        assert (code, body["code"], body["data"]) == (200, 0, {"visiter_id": "v1", "count": 2})
    code, body = await post(anna, "/admin/set/getmessage", channel=channel)
    assert body["data"]["count"] == 2
    # A manager may look; a service agent only at its own; another business not at all.
    assert (await get(ag["mia"], "/admin/set/getmessage", channel=channel))[1]["data"][
        "count"] == 2
    for who, url, method in [("bert", "/admin/set/getmessage", get),
                             ("bert", "/admin/set/getwatch", post)]:
        code, body = await method(ag[who], url, channel=channel)
        assert (code, body["code"]) == (403, 1), body
    for url, method in (("/admin/set/getmessage", get), ("/admin/set/getwatch", post)):
        code, body = await method(ag["zed"], url, channel=channel)
        assert (code, body["code"]) == (404, 1)
        code, body = await method(anna, url)
        assert (code, body["code"]) == (400, 1) and "channel" in body["msg"]
        code, body = await method(anna, url, channel="v" + "f" * 40)
        assert (code, body["code"]) == (404, 1)
    assert db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_chats WHERE state = 'unread'") \
        == [{"n": 2}]

    code, body = await post(anna, "/admin/set/getwatch", channel=channel)
    assert (code, body["code"], body["msg"], body["data"]) == (200, 0, "success", {"marked": 2})
    assert (await get(anna, "/admin/set/getmessage", visiter_id="v1"))[1]["data"]["count"] == 0
    assert db_rows(s.db, "SELECT DISTINCT state FROM wolive_chats") == [{"state": "readed"}]


@pytest.mark.gen_test(timeout=30)
async def test_blacklist_and_unblack(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna, bert, v1 = ag["anna"], ag["bert"], vs["v1"]
    # Too low a level / another business / bad input first: nothing changes.
    for who, form, status in [("bert", {"visiter_id": "v1"}, 403),
                              ("zed", {"channel": v1.boot["channel"]}, 404),
                              ("anna", {}, 400), ("anna", {"visiter_id": "ghost"}, 404)]:
        code, body = await post(ag[who], "/admin/set/blacklist", **form)
        assert (code, body["code"]) == (status, 1), (who, form, body)
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    code, body = await post(anna, "/admin/set/unblack", visiter_id="v1")
    assert (code, body["code"]) == (409, 1)  # not blacklisted

    code, body = await post(anna, "/admin/set/blacklist", channel=v1.boot["channel"])
    assert (code, body["code"], body["msg"]) == (200, 0, "success")
    assert s.queue("v1") == {"service_id": anna.sid, "state": "in_black_list"}
    assert (await anna.sock.expect("blacklisted", f"kefu{anna.sid}"))["data"] == {
        "visiter_id": "v1"}
    assert (await post(anna, "/admin/set/blacklist", visiter_id="v1"))[1]["code"] == 0
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == []
    code, body = await say(v1, "let me in")
    assert (code, body["code"]) == (403, 4)
    code, body = await post(anna, "/admin/set/chats", visiter_id="v1", content="hi")
    assert (code, body["code"]) == (409, 4)
    assert db_rows(s.db, "SELECT * FROM wolive_chats") == []

    # The blacklist: a service agent sees its own, a manager the business's.
    assert (await post(ag["mia"], "/admin/set/blacklist", visiter_id="v2"))[1]["code"] == 0
    assert listed((await get(anna, "/admin/set/getblackdata"))[1]) == ["v1"]
    assert listed((await get(bert, "/admin/set/getblackdata"))[1]) == ["v2"]
    assert sorted(listed((await get(ag["mia"], "/admin/set/getblackdata"))[1])) == ["v1", "v2"]
    assert listed((await get(ag["zed"], "/admin/set/getblackdata"))[1]) == []
    assert listed((await post(anna, "/admin/set/getblackdata"))[1]) == ["v1"]

    for who, status in (("bert", 403), ("zed", 404)):
        code, body = await post(ag[who], "/admin/set/unblack", visiter_id="v1")
        assert (code, body["code"]) == (status, 1), (who, body)
    code, body = await post(ag["mia"], "/admin/set/unblack", channel=vs["v2"].boot["channel"])
    assert body["code"] == 0 and s.queue("v2") == {"service_id": bert.sid, "state": "complete"}
    code, body = await post(anna, "/admin/set/unblack", visiter_id="v1")
    assert (code, body["code"], body["data"]["state"]) == (200, 0, "complete")
    # Writing again reopens the conversation with its agent.
    assert (await say(v1, "sorry"))[1]["code"] == 0
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == ["v1"]


@pytest.mark.gen_test(timeout=30)
async def test_blacklisting_a_waiting_visitor_drops_it_from_every_waiting_list(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, _vs = await setup(wolive_server, base_url, ws_base, cfg)
    await s.set_rule("claim")
    q = await s.visitor("q1", listen=False)
    assert (await s.notice(q))["code"] == 2
    _code, body = await post(ag["bert"], "/admin/set/blacklist", visiter_id="q1")
    assert body["code"] == 0
    gone = await expect_about(ag["anna"].sock, "claimed", f"all{BIZ}", "q1")
    assert gone["data"]["service_id"] == 0 and gone["data"]["reason"] == "blacklisted"
    assert s.queue("q1") == {"service_id": ag["bert"].sid, "state": "in_black_list"}
    assert listed((await get(ag["anna"], "/admin/set/getwait"))[1]) == []


@pytest.mark.gen_test(timeout=30)
async def test_transfer(wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna, bert, v1 = ag["anna"], ag["bert"], vs["v1"]
    for who, form, status, code_ in [
            ("anna", {"visiter_id": "v1"}, 400, 1),                          # no service_id
            ("anna", {"visiter_id": "v1", "service_id": "x"}, 400, 1),
            ("anna", {"service_id": bert.sid}, 400, 1),                      # no visitor
            ("anna", {"visiter_id": "v1", "service_id": 9999}, 404, 1),
            ("anna", {"visiter_id": "v1", "service_id": ag["zed"].sid}, 404, 1),
            ("anna", {"visiter_id": "v1", "service_id": anna.sid}, 400, 1),  # to itself
            ("anna", {"visiter_id": "v1", "service_id": ag["carl"].sid}, 409, 3),  # offline
            ("bert", {"visiter_id": "v1", "service_id": bert.sid}, 403, 1),  # not his
            ("zed", {"visiter_id": "v1", "service_id": ag["zed"].sid}, 404, 1),
            ("anna", {"visiter_id": "ghost", "service_id": bert.sid}, 404, 1)]:
        code, body = await post(ag[who], "/admin/set/transfer", **form)
        assert (code, body["code"]) == (status, code_), (who, form, body)
        assert body["msg"]
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}

    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid)
    assert (code, body["code"], body["data"]) == (
        200, 0, {"visiter_id": "v1", "service_id": bert.sid, "nick_name": "Bert"})
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}
    await expect_about(bert.sock, "on_notice", f"ud{bert.sid}", "v1")
    first = await v1.sock.expect("cu_notice")  # from the visitor's own notice
    assert first["data"]["service_id"] == anna.sid
    card = (await v1.sock.expect("cu_notice"))["data"]
    assert card["service_id"] == bert.sid and card["nick_name"] == "Bert"
    switch = await anna.sock.expect("getswitch", f"kefu{anna.sid}")
    assert switch["data"]["visiter_id"] == "v1" and switch["data"]["service_id"] == bert.sid
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == []
    assert "v1" in listed((await get(bert, "/admin/set/getchats"))[1])
    # Now anna may no longer touch it; a manager moves it back (WoLive's name works too).
    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid)
    assert (code, body["code"]) == (403, 1)
    code, body = await post(ag["mia"], "/admin/set/getswitch", visiter_id="v1",
                            service_id=anna.sid)
    assert body["code"] == 0 and s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    # Messages follow the conversation (after the transfer's own line in the transcript).
    assert (await say(v1, "still here"))[1]["code"] == 0
    while True:
        got = (await anna.sock.expect("cu-event", f"kefu{anna.sid}"))["data"]["message"]
        if got["msg_type"] != "system":
            break
    assert got["content"] == "still here"
    # A closed conversation is not transferred.
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid)
    assert (code, body["code"]) == (409, 1)


@pytest.mark.gen_test(timeout=30)
async def test_close(wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna, bert = ag["anna"], ag["bert"]
    for who, form, status in [("bert", {"visiter_id": "v1"}, 403),
                              ("zed", {"visiter_id": "v1"}, 404),
                              ("anna", {}, 400), ("anna", {"visiter_id": "ghost"}, 404)]:
        code, body = await post(ag[who], "/admin/set/close", **form)
        assert (code, body["code"]) == (status, 1), (who, form, body)
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}

    code, body = await post(anna, "/admin/set/close", visiter_id="v1")
    assert (code, body["code"], body["data"]) == (
        200, 0, {"visiter_id": "v1", "state": "complete"})
    assert s.queue("v1") == {"service_id": anna.sid, "state": "complete"}
    assert (await anna.sock.expect("closed", f"kefu{anna.sid}"))["data"] == {"visiter_id": "v1"}
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == []
    assert (await post(anna, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0  # again
    # A manager closes another agent's; a blacklisted visitor is not "closed".
    code, body = await post(ag["mia"], "/admin/set/close", channel=vs["v2"].boot["channel"])
    assert body["code"] == 0 and s.queue("v2") == {"service_id": bert.sid, "state": "complete"}
    assert (await post(bert, "/admin/set/blacklist", visiter_id="v2"))[1]["code"] == 0
    code, body = await post(bert, "/admin/set/close", visiter_id="v2")
    assert (code, body["code"]) == (409, 1)
    # The visitor writing again brings it back (the document's getchatnow note).
    assert (await say(vs["v1"], "one more thing"))[1]["code"] == 0
    assert listed((await get(anna, "/admin/set/getchats"))[1]) == ["v1"]


@pytest.mark.gen_test(timeout=30)
async def test_a_managers_reply_reaches_the_conversations_own_agent_live(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """A manager (mia) or the super_manager (boss) writes in a colleague's conversation:
    the visitor gets it, and so does the console of the agent whose conversation it is
    (`kefu{owner}` `my-event`, the event its own replies from another tab come with),
    the writer's own consoles too; nobody else's. An agent's own reply still comes once."""
    s, ag, vs = await setup(wolive_server, base_url, ws_base, cfg)
    anna, bert, mia, boss = ag["anna"], ag["bert"], ag["mia"], s.boss
    await s.online(mia)
    await s.online(boss)
    code, body = await post(anna, "/admin/set/chats", visiter_id="v1", content="anna here")
    assert (code, body["code"]) == (200, 0), body
    assert (await anna.sock.expect("my-event", f"kefu{anna.sid}"))["data"]["message"] == \
        body["data"]

    code, body = await post(mia, "/admin/set/chats", visiter_id="v1", content="mia here")
    assert (code, body["code"]) == (200, 0), body
    sent = body["data"]
    assert (sent["service_id"], sent["nick_name"], sent["direction"]) == (
        mia.sid, "Mia", "to_visiter")
    v1 = vs["v1"]
    while True:  # the visitor: anna's reply, then mia's
        got = (await v1.sock.expect("my-event", "cu" + v1.boot["channel"]))["data"]["message"]
        if got["cid"] == sent["cid"]:
            break
    assert got == sent
    # anna's console: the very next my-event is mia's (her own came once, not twice).
    assert (await anna.sock.expect("my-event", f"kefu{anna.sid}"))["data"]["message"] == sent
    assert (await mia.sock.expect("my-event", f"kefu{mia.sid}"))["data"]["message"] == sent
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}  # still anna's

    code, body = await post(boss, "/admin/set/chats", visiter_id="v2", content="boss here")
    assert (code, body["code"]) == (200, 0), body
    assert (await bert.sock.expect("my-event", f"kefu{bert.sid}"))["data"]["message"] == \
        body["data"]
    assert (await boss.sock.expect("my-event", f"kefu{boss.sid}"))["data"]["message"] == \
        body["data"]
    # Not to an agent whose conversation it is not.
    with pytest.raises(asyncio.TimeoutError):
        await anna.sock.expect("my-event", f"kefu{anna.sid}", timeout=0.3)
    with pytest.raises(asyncio.TimeoutError):
        await bert.sock.expect("my-event", f"kefu{bert.sid}", timeout=0.3)
    # The conversation's agent finds it in the history too, in order.
    _, body = await get(anna, "/admin/set/history", visiter_id="v1")
    assert [m["content"] for m in body["data"] if m["direction"] == "to_visiter"
            and m["msg_type"] == "text"][-2:] == ["anna here", "mia here"]
