"""The agent workbench's server side (issue 5), on both databases: typing indicators and read
receipts both ways, `after` on the two history URLs, the visitor card and the place of an IP
(the workbench in Chromium is tests/test_ui_workbench.py)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import BIZ, Client, db_rows
from shop import Agent, Shop, Visitor, expect_about, get, post

from realtime.chat.signals import TYPING_WINDOW_S

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")
Workbench = tuple[Shop, dict[str, Agent], Visitor]


async def say(v: Visitor, content: str) -> dict[str, Any]:
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": content})
    assert code == 200 and body["code"] == 0, body
    return body["data"]


@pytest.mark.gen_test(timeout=30)
async def test_typing_both_ways_rate_limited_and_checked(
        workbench: Workbench, base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    s, ag, v1 = workbench
    anna, bert = ag["anna"], ag["bert"]
    assert v1.sock and anna.sock and bert.sock

    # The agent types: the visitor's channel hears it.
    code, body = await post(anna, "/admin/set/typing", visiter_id="v1", typing="1")
    assert (code, body["code"]) == (200, 0), body
    frame = await v1.sock.expect("typing", "cu" + v1.boot["channel"])
    assert frame["data"] == {"service_id": anna.sid, "nick_name": "Anna", "typing": True}
    # By channel too, and the stop.
    code, body = await post(anna, "/admin/set/typing", channel=v1.boot["channel"], typing="0")
    assert (code, body["code"]) == (200, 0), body
    assert (await v1.sock.expect("typing"))["data"]["typing"] is False
    # Two more, then a fifth within two seconds: 429, nothing pushed.
    for flag in ("1", "0"):
        code, body = await post(anna, "/admin/set/typing", visiter_id="v1", typing=flag)
        assert (code, body["code"]) == (200, 0), body
        assert (await v1.sock.expect("typing"))["data"]["typing"] is (flag == "1")
    code, body = await post(anna, "/admin/set/typing", visiter_id="v1", typing="1")
    assert (code, body["code"]) == (429, 1), body
    await v1.sock.nothing(0.3)

    # The visitor types: its agent's console hears it, the colleague's does not.
    code, body = await v1.client.json("/admin/event/typing", "POST",
                                      form={**v1.ids, "typing": "1"})
    assert (code, body["code"], body["data"]["pushed"]) == (200, 0, True), body
    frame = await expect_about(anna.sock, "typing", f"kefu{anna.sid}", "v1")
    assert frame["data"] == {"visiter_id": "v1", "typing": True}
    await bert.sock.nothing(0.3)

    # Refusals: wrong channel, bad flag, a colleague's visitor, nobody logged in, no _xsrf.
    code, body = await v1.client.json("/admin/event/typing", "POST", form={
        **v1.ids, "channel": "0" * 32, "typing": "1"})
    assert (code, body["code"]) == (403, 3), body
    code, body = await v1.client.json("/admin/event/typing", "POST",
                                      form={**v1.ids, "typing": "maybe"})
    assert code == 400, body
    code, body = await post(bert, "/admin/set/typing", visiter_id="v1", typing="1")
    assert code == 403, body
    nobody = Client(base_url)
    await nobody.get_xsrf()
    code, body = await nobody.json("/admin/set/typing", "POST",
                                   form={"visiter_id": "v1", "typing": "1"})
    assert code == 401, body
    resp = await anna.client.fetch("/admin/set/typing", "POST",
                                   form={"visiter_id": "v1"}, xsrf=False)
    assert resp.code == 403
    await v1.sock.nothing(0.2)

    # Once the window has passed the agent may signal again: the limiter's clock is moved past
    # the window instead of waiting it out.
    limiter = s.server.services.signals.limit
    later = limiter.clock() + TYPING_WINDOW_S
    monkeypatch.setattr(limiter, "clock", lambda: later)
    code, body = await post(anna, "/admin/set/typing", visiter_id="v1", typing="1")
    assert (code, body["code"]) == (200, 0), body
    assert (await v1.sock.expect("typing"))["data"]["typing"] is True


@pytest.mark.gen_test(timeout=30)
async def test_read_receipts_both_ways(workbench: Workbench) -> None:
    s, ag, v1 = workbench
    anna = ag["anna"]
    assert v1.sock and anna.sock
    cu = "cu" + v1.boot["channel"]

    # The agent reads the visitor's messages: the visitor hears `read` with the newest cid.
    m1 = await say(v1, "one")
    m2 = await say(v1, "two")
    # (Its own messages come back on its channel, for its other windows.)
    for m in (m1, m2):
        echo = await v1.sock.expect("my-event", cu)
        assert echo["data"]["message"]["cid"] == m["cid"]
    code, body = await post(anna, "/admin/set/getwatch", visiter_id="v1")
    assert (code, body["data"]["marked"]) == (200, 2), body
    assert (await v1.sock.expect("read", cu))["data"] == {"cid": m2["cid"]}
    # Nothing new to read: no push.
    code, body = await post(anna, "/admin/set/getwatch", visiter_id="v1")
    assert body["data"]["marked"] == 0
    await v1.sock.nothing(0.3)
    states = db_rows(s.db, "SELECT state FROM wolive_chats WHERE direction = 'to_service'")
    assert {r["state"] for r in states} == {"readed"}

    # The visitor's window shows the agent's first message: only it is read.
    sent = []
    for text in ("a", "b"):
        code, body = await post(anna, "/admin/set/chats", visiter_id="v1", content=text)
        assert code == 200, body
        sent.append(body["data"]["cid"])
    code, body = await v1.client.json("/admin/event/read", "POST",
                                      form={**v1.ids, "cid": str(sent[0])})
    assert (code, body["data"]["cid"], body["data"]["marked"]) == (200, sent[0], 1), body
    code, body = await v1.client.json("/admin/event/read", "POST",
                                      form={**v1.ids, "cid": "-3"})
    assert (code, body["code"]) == (400, 1), body  # not "all"
    frame = await expect_about(anna.sock, "read", f"kefu{anna.sid}", "v1")
    assert frame["data"] == {"visiter_id": "v1", "cid": sent[0]}
    rows = db_rows(s.db, "SELECT cid, state FROM wolive_chats WHERE direction = 'to_visiter' "
                   "ORDER BY cid")
    assert [(r["cid"], r["state"]) for r in rows] == [(sent[0], "readed"),
                                                        (sent[1], "unread")]
    # Opening the history reads the rest, and tells the agent so.
    code, body = await v1.client.json("/admin/event/history", "GET", form=v1.ids)
    assert code == 200 and [m["content"] for m in body["data"]] == ["one", "two", "a", "b"]
    frame = await expect_about(anna.sock, "read", f"kefu{anna.sid}", "v1")
    assert frame["data"] == {"visiter_id": "v1", "cid": sent[1]}
    # Opening it again reads nothing new: no receipt (the visitor page polls it).
    code, body = await v1.client.json("/admin/event/history", "GET", form=v1.ids)
    assert code == 200 and len(body["data"]) == 4
    loop = asyncio.get_running_loop()
    until = loop.time() + 0.5
    while (left := until - loop.time()) > 0:
        try:
            frame = await anna.sock.recv(left)
        except asyncio.TimeoutError:
            break
        assert frame["event"] != "read", frame
    # A wrong channel reads nothing.
    code, body = await v1.client.json("/admin/event/read", "POST",
                                      form={**v1.ids, "channel": "f" * 32})
    assert (code, body["code"]) == (403, 3), body


@pytest.mark.gen_test(timeout=30)
async def test_history_after_a_cid(workbench: Workbench) -> None:
    s, ag, v1 = workbench
    anna = ag["anna"]
    cids = [(await say(v1, f"m{i}"))["cid"] for i in range(5)]

    code, body = await get(anna, "/admin/set/history", visiter_id="v1", after=str(cids[1]))
    assert code == 200 and [m["cid"] for m in body["data"]] == cids[2:], body
    code, body = await get(anna, "/admin/set/history", visiter_id="v1", after=str(cids[1]),
                           limit="2")
    assert [m["content"] for m in body["data"]] == ["m2", "m3"], "oldest first after `after`"
    code, body = await get(anna, "/admin/set/history", visiter_id="v1", after=str(cids[-1]))
    assert body["data"] == []
    # Without `after`: the newest, oldest first (as before); `before` still pages back.
    code, body = await get(anna, "/admin/set/history", visiter_id="v1", limit="2")
    assert [m["content"] for m in body["data"]] == ["m3", "m4"]
    code, body = await get(anna, "/admin/set/history", visiter_id="v1", before=str(cids[3]),
                           limit="2")
    assert [m["content"] for m in body["data"]] == ["m1", "m2"]
    code, body = await get(anna, "/admin/set/history", visiter_id="v1", after="x")
    assert code == 400
    # The visitor's side.
    code, body = await v1.client.json("/admin/event/history", "GET",
                                      form={**v1.ids, "after": str(cids[2])})
    assert [m["content"] for m in body["data"]] == ["m3", "m4"]
    # A colleague may not read it.
    code, body = await get(ag["bert"], "/admin/set/history", visiter_id="v1",
                           after=str(cids[0]))
    assert code == 403


@pytest.mark.gen_test(timeout=30)
async def test_visitor_card_device_visits_and_notes(workbench: Workbench) -> None:
    s, ag, v1 = workbench
    anna, bert = ag["anna"], ag["bert"]
    # The window opened again from an iPhone, from a search page.
    resp = await v1.client.fetch("/index/index/home", form={
        "business_id": BIZ, "visiter_id": "v1", "from_url": "https://shop.example/item/9",
        "referrer": "https://search.example/?q=shoes"}, headers={"User-Agent": IPHONE})
    assert resp.code == 200
    code, body = await get(anna, "/admin/set/visitor", visiter_id="v1")
    assert code == 200, body
    card = body["data"]
    assert card["device"]["os"].startswith("iOS") and card["device"]["mobile"] is True
    assert "Safari" in card["device"]["browser"] and card["device"]["device"] == "iPhone"
    assert card["from_url"] == "https://shop.example/item/9"
    assert card["referrer"] == "https://search.example/?q=shoes"
    assert card["visits"] == 1, "a reload within half an hour is the same visit"
    assert card["first_visit"] > 0 and card["last_visit"] >= card["first_visit"]
    assert card["ip"] == "127.0.0.1" and card["online"] is True
    assert card["place"] == "Localhost"
    # A visit long after the last counts again.
    db_rows(s.db, "UPDATE wolive_visiter_info SET last_visit = last_visit - 7200")
    await v1.client.fetch("/index/index/home", form={"business_id": BIZ, "visiter_id": "v1"})
    code, body = await get(anna, "/admin/set/visitor", visiter_id="v1")
    assert body["data"]["visits"] == 2
    assert body["data"]["referrer"] == "https://search.example/?q=shoes", "kept when not sent"

    # The agent notes a name, a phone and a note; only what is sent changes.
    code, body = await post(anna, "/admin/set/visitor", visiter_id="v1", name="王小明",
                            tel="13800000000", note="<b>VIP</b> 想要红色")
    assert code == 200, body
    assert (body["data"]["name"], body["data"]["tel"], body["data"]["note"]) == (
        "王小明", "13800000000", "<b>VIP</b> 想要红色")
    code, body = await post(anna, "/admin/set/visitor", visiter_id="v1", note="")
    assert (body["data"]["name"], body["data"]["note"]) == ("王小明", "")
    rows = db_rows(s.db, "SELECT name, tel, note FROM wolive_visiter_info")
    assert rows == [{"name": "王小明", "tel": "13800000000", "note": ""}]
    code, body = await post(anna, "/admin/set/visitor", visiter_id="v1", tel="1" * 65)
    assert code == 400
    # A colleague (service level) may not; another business does not see it.
    code, body = await post(bert, "/admin/set/visitor", visiter_id="v1", name="x")
    assert code == 403
    zed = await s.agent("zed", "manager", business_id="shop2")
    code, body = await get(zed, "/admin/set/visitor", visiter_id="v1")
    assert code == 404
    assert db_rows(s.db, "SELECT name FROM wolive_visiter_info") == [{"name": "王小明"}]


# ---- in the browser ----------------------------------------------------------------------


@pytest.mark.parametrize("ip, place", [("114.114.114.114", "China (CN)"),
                                       ("8.8.8.8", "United States (US)"),
                                       ("10.1.2.3", "Private Network Class A"),
                                       ("", ""), ("not an ip", "")])
def test_place_of_an_ip(ip: str, place: str) -> None:
    from realtime.chat.visitor_cards import place_of
    assert place_of(ip) == place


@pytest.mark.gen_test(timeout=30)
async def test_reading_in_one_console_tab_clears_the_unread_count_in_the_others(
        shop: Shop) -> None:
    """The agent reads a conversation in one tab (`/admin/set/getwatch`): its other tabs
    hear `kefu{id}` `agent_read` `{visiter_id, cid}` (the newest visitor message now read)
    and drop their unread count; nothing is pushed when nothing was unread."""
    s = shop
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
