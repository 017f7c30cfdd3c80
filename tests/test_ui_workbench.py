"""The agent workbench (issue 5): its server side on both databases — typing indicators and
read receipts both ways, `after` on the two history URLs, the visitor card — and, in
Chromium, the workbench itself (see the browser tests below)."""
from __future__ import annotations

import asyncio
import re
import struct
import time
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import BUSINESS, RunningServer, start_server, stop_server
from helpers import Client, db_rows
from shop import BIZ, Shop, Visitor, expect_about, get, post
from test_e2e_browser import (PC, PHONE, POPUP, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


async def setup(server: Any, base_url: str, ws_base: str, cfg: dict
                ) -> tuple[Shop, dict[str, Any], Visitor]:
    """shop1: anna and bert (service, online); v1 talks to anna."""
    s = await Shop.open(server, base_url, ws_base, cfg.database.url)
    ag = {name: await s.agent(name) for name in ("anna", "bert")}
    for a in ag.values():
        await s.online(a)
    v1 = await s.visitor("v1")
    assert (await s.notice(v1, special=str(ag["anna"].sid)))["data"]["service_id"] == \
        ag["anna"].sid
    assert v1.sock is not None
    await v1.sock.expect("cu_notice")
    return s, ag, v1


async def say(v: Visitor, content: str) -> dict[str, Any]:
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": content})
    assert code == 200 and body["code"] == 0, body
    return body["data"]


@pytest.mark.gen_test(timeout=30)
async def test_typing_both_ways_rate_limited_and_checked(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
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

    # Once the window has passed the agent may signal again.
    await asyncio.sleep(2.05)
    code, body = await post(anna, "/admin/set/typing", visiter_id="v1", typing="1")
    assert (code, body["code"]) == (200, 0), body
    assert (await v1.sock.expect("typing"))["data"]["typing"] is True


@pytest.mark.gen_test(timeout=30)
async def test_read_receipts_both_ways(wolive_server: Any, base_url: str, ws_base: str,
                                       cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
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
async def test_history_after_a_cid(wolive_server: Any, base_url: str, ws_base: str,
                                   cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
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
async def test_visitor_card_device_visits_and_notes(wolive_server: Any, base_url: str,
                                                    ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await setup(wolive_server, base_url, ws_base, cfg)
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

HD = {"width": 1920, "height": 1080}
ANNA_PASSWORD = "anna-pass-123"


def png(width: int = 24, height: int = 16, rgb: tuple[int, int, int] = (15, 118, 110)) -> bytes:
    """A small solid PNG."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def console_post(page: Any, path: str, **form: Any) -> dict[str, Any]:
    """POST as the page's logged-in console (its cookies and _xsrf)."""
    xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")
    resp = page.request.post(page.url.split("/admin/")[0] + path, form=form,
                             headers={"X-XSRFToken": xsrf})
    body = resp.json()
    assert resp.status == 200 and body["code"] == 0, (path, resp.status, body)
    return body


def login_as(page: Any, server: RunningServer, user: str, password: str) -> None:
    from playwright.sync_api import expect
    page.goto(f"{server.base_url}/admin/login/index")
    page.get_by_label(re.compile("用户名")).fill(user)
    page.get_by_label(re.compile("密码")).fill(password)
    page.get_by_role("button", name=re.compile("登录")).click()
    page.wait_for_url(f"{server.base_url}/admin/index/index")
    expect(page.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))


def visitor_page(ctx: Any, server: RunningServer, vid: str, name: str = "") -> Any:
    page = ctx.new_page()
    q = urllib.parse.urlencode({"business_id": BUSINESS, "visiter_id": vid,
                                "visiter_name": name, "from_url": "https://shop.example/item/7",
                                "referrer": "https://search.example/?q=tea"})
    page.goto(f"{server.base_url}/index/index/home?{q}")
    return page


def visitor_call(page: Any, path: str, **extra: Any) -> dict[str, Any]:
    """A visitor API call from the chat window, with its ids."""
    return page.evaluate("""([path, extra]) => {
        const b = window.woliveVisitor.boot;
        const q = new URLSearchParams({visiter_id: b.visiter_id, business_id: b.business_id,
                                       channel: b.channel, ...extra});
        return fetch(path, {method: 'POST', body: q}).then(r => r.json());
    }""", [path, {k: str(v) for k, v in extra.items()}])


def visitor_typing(page: Any, typing: int) -> dict[str, Any]:
    """Tell the agent the visitor types; waits out the 2-per-second limit (the window
    itself may have just signalled)."""
    deadline = time.monotonic() + 5
    while True:
        body = visitor_call(page, "/admin/event/typing", typing=typing)
        if body["code"] == 0 or time.monotonic() > deadline:
            assert body["code"] == 0, body
            return body
        time.sleep(0.4)


def conv(page: Any, vid: str) -> Any:
    return page.locator(f"#convs button.conv[data-visiter='{vid}']")


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workbench_in_the_browser(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """Chat both ways with typing and read state, emoji, quick replies, an image (picked and
    pasted) inline on both sides, the visitor card, transfer to a colleague, a claim from the
    queue by one of two agents; screenshots at 1920, 1280 and 360 px."""
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=HD).new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/registForService", user_name="anna", nick_name="Anna",
                 password=ANNA_PASSWORD, password2=ANNA_PASSWORD)
    expect(boss.locator("#notify-banner")).to_be_visible()  # asked politely, not on load
    expect(boss.locator("#queue .empty")).to_be_visible()

    # A visitor opens the window and types: the agent's list shows it typing.
    vctx = new_context("visitor", viewport=POPUP)
    v1 = visitor_page(vctx, server, "v-tea", "小明")
    expect(v1.locator("#agent-name")).to_have_text("boss")
    row = conv(boss, "v-tea")
    expect(row).to_be_visible()
    assert visitor_typing(v1, 1)["data"]["pushed"] is True
    expect(row.locator(".last")).to_have_text("正在输入…")
    v1.locator("#input").fill("请问这款茶叶有货吗？")
    v1.locator("#input").press("Enter")
    expect(row.locator(".last")).to_have_text("请问这款茶叶有货吗？")
    expect(row.locator(".badge")).to_have_text("1")

    # The agent opens it: unread gone, the message shown under today's separator.
    row.click()
    expect(row).to_have_class(re.compile(r"\bactive\b"))
    expect(row.locator(".badge")).to_be_hidden()
    expect(boss.locator("#messages .msg.theirs .bubble")).to_have_text("请问这款茶叶有货吗？")
    expect(boss.locator("#messages .day").first).to_have_text("今天")
    expect(boss.locator("#pane-head")).to_contain_text("在线")
    # The visitor types again: shown under the conversation.
    visitor_typing(v1, 1)
    expect(boss.locator("#typing-line")).to_have_text("对方正在输入…")
    visitor_typing(v1, 0)
    expect(boss.locator("#typing-line")).to_have_text("")

    # The visitor card: page, referrer, IP, device, visits.
    info = boss.locator("#info-body")
    expect(info).to_contain_text("https://shop.example/item/7")
    expect(info).to_contain_text("https://search.example/?q=tea")
    expect(info).to_contain_text("127.0.0.1")
    expect(info).to_contain_text("Chrome")
    boss.locator("#f-name").fill("王小明")
    boss.locator("#f-note").fill("<b>想要</b> 红茶")
    boss.get_by_role("button", name="保存资料").click()
    expect(boss.locator("#info-saved")).to_have_text("已保存")
    assert db_rows(server.db_url, "SELECT name, note FROM wolive_visiter_info") == [
        {"name": "王小明", "note": "<b>想要</b> 红茶"}]

    # Emoji and a quick reply into the box; typing is told to the visitor; sent.
    boss.locator("#tool-emoji").click()
    boss.locator("#emoji-panel .emoji", has_text="😊").click()
    expect(boss.locator("#emoji-panel")).to_be_visible()
    boss.locator("#tool-quick").click()
    expect(boss.locator("#emoji-panel")).to_be_hidden()
    boss.locator("#quick-panel .quick-use").first.click()
    expect(boss.locator("#input")).to_have_value("😊您好，请问有什么可以帮您？")
    with boss.expect_request(re.compile(r"/admin/set/typing$")):
        boss.locator("#input").press_sequentially(" 有的")
    boss.locator("#input").press("Enter")
    mine = boss.locator("#messages .msg.mine")
    expect(mine.locator(".bubble")).to_have_text("😊您好，请问有什么可以帮您？ 有的")
    expect(v1.locator(".msg.theirs .bubble").last).to_have_text("😊您好，请问有什么可以帮您？ 有的")
    # Read state: the visitor's window reads it, the agent's tick turns to 已读.
    visitor_call(v1, "/admin/event/read")
    expect(mine.locator(".tick")).to_have_text("已读")
    expect(mine.locator(".tick")).to_have_class(re.compile(r"\bread\b"))

    # An image picked and a screenshot pasted: inline on both sides.
    boss.locator("#pick-image").set_input_files(
        files=[{"name": "tea.png", "mimeType": "image/png", "buffer": png()}])
    expect(boss.locator("#messages .msg.mine .bubble.image img")).to_have_count(1)
    boss.locator("#input").evaluate("""(el, bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'shot.png', {type: 'image/png'}));
        el.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true,
                                                      cancelable: true}));
    }""", list(png(40, 30, (200, 80, 20))))
    imgs = boss.locator("#messages .msg.mine .bubble.image img")
    expect(imgs).to_have_count(2)
    for src in imgs.evaluate_all("els => els.map(e => e.getAttribute('src'))"):
        assert re.fullmatch(r"/upload/[0-9a-f]{32}\.png", src), src
    expect(v1.locator(".msg.theirs .bubble.image img")).to_have_count(2)
    assert imgs.first.evaluate("img => img.complete && img.naturalWidth") == 24
    expect(row.locator(".last")).to_have_text("[图片]")
    shot(boss, "workbench-1920x1080")
    boss.set_viewport_size(PC)
    expect(boss.locator("#info")).to_be_visible()
    expect(boss.locator("#act-info")).to_be_hidden()
    assert boss.evaluate("document.documentElement.scrollWidth") <= PC["width"]
    shot(boss, "workbench-1280x800")
    # Narrower: the details are a drawer.
    boss.set_viewport_size({"width": 1000, "height": 760})
    expect(boss.locator("#info")).to_be_hidden()
    boss.locator("#act-info").click()
    expect(boss.locator("#info")).to_be_visible()
    shot(boss, "workbench-1000x760-details")
    boss.locator("#info-close").click()
    expect(boss.locator("#info")).to_be_hidden()
    boss.set_viewport_size(PC)

    # Anna signs in; the boss transfers the visitor to her.
    anna = new_context("anna", viewport=PC).new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    boss.locator("#act-transfer").click()
    target = boss.locator("#transfer-list .transfer-to", has_text="Anna")
    expect(target).to_be_visible()
    target.click()
    expect(row).to_have_count(0)
    expect(boss.locator("#pane-title")).to_have_text("← 选择一个对话")
    expect(conv(anna, "v-tea")).to_be_visible()
    expect(v1.locator("#agent-name")).to_have_text("Anna")
    conv(anna, "v-tea").click()
    expect(anna.locator("#messages .msg.theirs .bubble").first).to_have_text("请问这款茶叶有货吗？")

    # Claim: the business switches to claiming; a new visitor waits in both queues.
    console_post(boss, "/admin/manager/switches", business_id=BUSINESS,
                 distribution_rule="claim")
    v2 = visitor_page(new_context("visitor2", viewport=POPUP), server, "v-wait", "排队的人")
    for page in (boss, anna):
        expect(page.locator("#queue .wait[data-visiter='v-wait']")).to_be_visible()
    expect(boss.locator("#queue-count")).to_have_text("(1)")
    anna.locator("#queue .wait[data-visiter='v-wait'] .claim").click()
    expect(conv(anna, "v-wait")).to_have_class(re.compile(r"\bactive\b"))
    expect(boss.locator("#queue .wait")).to_have_count(0)
    expect(boss.locator("#queue .empty")).to_be_visible()
    expect(v2.locator("#agent-name")).to_have_text("Anna")
    assert db_rows(server.db_url, "SELECT service_id, state FROM wolive_queue WHERE "
                   "visiter_id = 'v-wait'") == [{"service_id": 2, "state": "normal"}]

    # The phone: the list, then the conversation alone, then back.
    anna.set_viewport_size(PHONE)
    expect(anna.locator(".convlist")).to_be_hidden()
    expect(anna.locator("#composer")).to_be_visible()
    assert anna.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(anna, "workbench-360x740-conversation")
    anna.locator("#back").click()
    expect(anna.locator(".convlist")).to_be_visible()
    shot(anna, "workbench-360x740")
    anna.set_viewport_size(HD)
    anna.locator("#lang-switch").click()
    expect(anna.locator("#queue .empty")).to_have_text("Nobody is waiting.")
    shot(anna, "workbench-1920x1080-en")
    # The test's own typing signals may meet the window's own within a second: 429, retried.
    problems.check(allow=r"429.*/admin/event/typing")


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_requests_without_an_answer_are_told_not_thrown(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems) -> None:  # noqa: F811
    """A request the network drops (server restarting, Wi-Fi gone) is shown to whoever made
    it and can be made again: no unhandled rejection, no input left disabled, no text lost."""
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss").new_page()
    agent_login(boss, server)

    # The visitor's first notice gets no answer: it says so, then asks again by itself.
    vctx = new_context("visitor", viewport=POPUP)
    vctx.route("**/admin/event/notice", lambda route: route.abort("connectionreset"))
    v = visitor_page(vctx, server, "v-net", "断网")
    expect(v.locator(".msg.system .bubble").last).to_have_text("暂时无法咨询：网络断开，正在重连…")
    vctx.unroute("**/admin/event/notice")
    expect(v.locator("#agent-name")).to_have_text("boss", timeout=10_000)
    expect(v.locator("#input")).to_be_enabled()
    assert v.locator(".msg.system .bubble", has_text="网络断开").count() == 1

    # The agent's reply gets no answer: "not sent", the text stays, the box is usable.
    v.locator("#input").fill("在吗")
    v.locator("#input").press("Enter")
    conv(boss, "v-net").click()
    expect(boss.locator("#messages .msg .bubble")).to_have_text(["在吗"])
    boss.route("**/admin/set/chats", lambda route: route.abort("connectionreset"))
    boss.locator("#input").fill("您好")
    boss.locator("#input").press("Enter")
    expect(boss.locator("#messages .msg.system .bubble").last).to_contain_text("网络错误")
    expect(boss.locator("#input")).to_be_enabled()
    expect(boss.locator("#input")).to_have_value("您好")
    boss.unroute("**/admin/set/chats")
    boss.locator("#input").press("Enter")
    expect(v.locator(".msg.theirs .bubble").last).to_have_text("您好")
    expect(boss.locator("#input")).to_have_value("")
    # Only the dropped requests themselves: no script error, nothing else failed.
    problems.check(allow=r"(request failed|Failed to load resource).*ERR_CONNECTION_RESET"
                         r"|(/admin/event/notice|/admin/set/chats).*ERR_CONNECTION_RESET")


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_workbench_survives_a_server_restart(
        tmp_path: Path, db_url: str,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """The server stops mid-chat and comes back on the same port: both sides say they lost
    the connection, reconnect by themselves, and show what was sent meanwhile once each, in
    order."""
    from playwright.sync_api import expect
    server = start_server(tmp_path, db_url)
    second: RunningServer | None = None
    try:
        boss = new_context("boss").new_page()
        agent_login(boss, server)
        v = visitor_page(new_context("visitor", viewport=POPUP), server, "v-r", "重连")
        expect(v.locator("#agent-name")).to_have_text("boss")
        v.locator("#input").fill("第一条")
        v.locator("#input").press("Enter")
        conv(boss, "v-r").click()
        expect(boss.locator("#messages .msg .bubble")).to_have_text(["第一条"])
        boot = v.evaluate("window.woliveVisitor.boot")

        assert stop_server(server) == 0
        expect(boss.locator("#conn")).to_be_visible()
        expect(v.locator("#conn")).to_be_visible()  # the visitor is told too
        expect(boss.locator("#me-dot")).not_to_have_class(re.compile(r"\bon\b"))
        port = int(server.base_url.rsplit(":", 1)[1])
        second = start_server(tmp_path, db_url, create_admin=False, port=port)
        # Sent at once, before the pages have reconnected: they must fetch these.
        form = urllib.parse.urlencode({"visiter_id": "v-r", "business_id": BUSINESS,
                                       "channel": boot["channel"]})
        for text in ("断线时一", "断线时二"):
            with urllib.request.urlopen(second.base_url + "/admin/event/chats",
                                        (form + "&" + urllib.parse.urlencode(
                                            {"content": text})).encode(), timeout=10) as r:
                assert r.status == 200
        expect(boss.locator("#conn")).to_be_hidden(timeout=30_000)
        expect(v.locator("#conn")).to_be_hidden(timeout=30_000)
        expect(boss.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
        want = ["第一条", "断线时一", "断线时二"]
        expect(boss.locator("#messages .msg .bubble")).to_have_text(want, timeout=20_000)
        expect(v.locator(".msg.mine .bubble")).to_have_text(want, timeout=30_000)
        # And live again both ways.
        boss.locator("#input").fill("回来了")
        boss.locator("#input").press("Enter")
        expect(v.locator(".msg.theirs .bubble").last).to_have_text("回来了")
        expect(boss.locator("#messages .msg .bubble")).to_have_text(want + ["回来了"])
        shot(boss, "workbench-after-restart")
        time.sleep(0.3)
        expect(boss.locator("#messages .msg .bubble")).to_have_count(4)
    finally:
        if second is not None:
            assert stop_server(second) == 0
        else:
            stop_server(server)
    # While the server was down, the pages' requests failed: expected.
    problems.check(allow=r"request failed|ERR_CONNECTION_REFUSED|WebSocket")


@pytest.mark.parametrize("ip, place", [("114.114.114.114", "China (CN)"),
                                       ("8.8.8.8", "United States (US)"),
                                       ("10.1.2.3", "Private Network Class A"),
                                       ("", ""), ("not an ip", "")])
def test_place_of_an_ip(ip: str, place: str) -> None:
    from handlers.visitor_info import place_of
    assert place_of(ip) == place
