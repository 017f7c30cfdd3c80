"""Greetings, FAQ, tabs, business switches and the message board: every URL's success, each
error code, a caller not logged in, one of too low a level and one from another business;
rich content sanitised (stored and served inert); the board page autoescaped."""
from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for

from helpers import OTHER_BIZ as OTHER
from shop import Shop

import realtime.chat.content as content_rules
from realtime.passwords import hash_password
from realtime.rate_limit import RateLimiter
from store import Store

TIMEOUT = 60


@dataclass
class World:
    db: str
    boss: Client    # super_manager of shop1 (service_id 1)
    mgr: Client     # manager of shop1
    agent: Client   # service of shop1
    mgr2: Client    # manager of shop2
    anon: Client    # nobody logged in
    ids: dict[str, int]


@pytest.fixture
def w(io_loop: Any, shop: Shop, anon: Client) -> World:
    async def build() -> World:
        ids, clients = await shop.staff(("mgr", "manager", BIZ), ("agent", "service", BIZ),
                                        ("mgr2", "manager", OTHER))
        return World(shop.db, shop.boss.client, clients["mgr"], clients["agent"],
                     clients["mgr2"], anon, ids)
    return io_loop.run_sync(build)


# ---- greetings ---------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_cmtalk_sets_the_greeting_visitors_get_as_text(
        w: World, base_url: str, ws_base: str) -> None:
    assert await w.boss.json("/admin/manager/cmtalk") == (200, {"code": 0, "msg": ""})
    greeting = "您好 <b>欢迎</b> 光临 👋"
    code, body = await w.boss.json("/admin/manager/cmtalk", "POST", form={"content": greeting})
    assert (code, body["code"], body["msg"]) == (200, 0, "成功")
    assert db_rows(w.db, "SELECT content, state FROM wolive_sentence WHERE service_id = 1") \
        == [{"content": greeting, "state": "using"}]
    code, body = await w.boss.json("/admin/manager/cmtalk")
    assert body["data"]["content"] == greeting and body["data"]["state"] == "using"
    # Changing it keeps one row per agent.
    await w.boss.json("/admin/manager/cmtalk", "POST", form={"content": "Hello"})
    assert db_rows(w.db, "SELECT content FROM wolive_sentence") == [{"content": "Hello"}]

    # A visitor assigned to this agent gets it with the agent's data (as text: the window
    # renders it with textContent).
    sock = await PusherSocket.connect(ws_base, cookie=w.boss.cookie_header())
    assert (await sock.subscribe("kefu1"))["event"] == "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(w.db, "SELECT state FROM wolive_service WHERE "
                                         "service_id = 1")[0]["state"] == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, "greeted-1")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "greeted-1", "business_id": BIZ, "channel": boot["channel"]})
    assert body["code"] == 0 and body["data"]["greeting"] == "Hello"


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_cmtalk_errors(w: World) -> None:
    code, body = await w.agent.json("/admin/manager/cmtalk", "POST", form={"content": "  "})
    assert (code, body["code"]) == (400, 1)
    code, body = await w.agent.json("/admin/manager/cmtalk", "POST", form={
        "content": "x" * (content_rules.MAX_GREETING_CHARS + 1)})
    assert (code, body["code"]) == (413, 1)
    code, body = await w.agent.json("/admin/manager/cmtalk", "POST", form={})
    assert (code, body["code"]) == (400, 1)
    code, body = await w.anon.json("/admin/manager/cmtalk", "POST", form={"content": "hi"})
    assert (code, body["code"]) == (401, 1)
    code, _ = await w.anon.json("/admin/manager/cmtalk")
    assert code == 401
    code, body = await w.agent.json("/admin/manager/cmtalk", "POST", form={"content": "hi"},
                                    xsrf=False)
    assert code == 403 and "_xsrf" in body["msg"]
    assert db_rows(w.db, "SELECT * FROM wolive_sentence") == []


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_greeting_toggle_and_list(w: World, base_url: str, wolive_server: Any) -> None:
    store = wolive_server.store
    for c, text in ((w.boss, "boss hi"), (w.mgr, "mgr hi"), (w.agent, "agent hi"),
                    (w.mgr2, "mgr2 hi")):
        assert (await c.json("/admin/manager/cmtalk", "POST", form={"content": text}))[1][
            "code"] == 0

    # Turn one's own off and on again: notice's greeting follows.
    code, body = await w.agent.json("/admin/manager/greetingstate", "POST",
                                    form={"state": "unuse"})
    assert (code, body["code"], body["data"]["state"]) == (200, 0, "unuse")
    assert await store.active_greeting(w.ids["agent"]) == ""
    await w.agent.json("/admin/manager/greetingstate", "POST", form={"state": "using"})
    assert await store.active_greeting(w.ids["agent"]) == "agent hi"

    # A manager may turn off an agent's of its business, not another business's.
    code, body = await w.mgr.json("/admin/manager/greetingstate", "POST",
                                  form={"state": "unuse", "service_id": w.ids["agent"]})
    assert (code, body["code"]) == (200, 0)
    code, body = await w.mgr2.json("/admin/manager/greetingstate", "POST",
                                   form={"state": "unuse", "service_id": w.ids["mgr"]})
    assert (code, body["code"]) == (403, 1)
    assert await store.active_greeting(w.ids["mgr"]) == "mgr hi"
    # A service agent may not touch anyone else's.
    code, body = await w.agent.json("/admin/manager/greetingstate", "POST",
                                    form={"state": "unuse", "service_id": w.ids["mgr"]})
    assert (code, body["code"]) == (403, 1)
    # Bad state, unknown agent, nobody logged in.
    code, body = await w.agent.json("/admin/manager/greetingstate", "POST",
                                    form={"state": "maybe"})
    assert (code, body["code"]) == (400, 1)
    code, _ = await w.mgr.json("/admin/manager/greetingstate", "POST",
                               form={"state": "unuse", "service_id": 999})
    assert code == 404
    code, _ = await w.anon.json("/admin/manager/greetingstate", "POST", form={"state": "unuse"})
    assert code == 401
    # No greeting yet: 404.
    hashed = await hash_password(PASSWORD, 4)
    await store.add_service(BIZ, "quiet", "Quiet", hashed)
    quiet = Client(base_url)
    await quiet.login("quiet", PASSWORD)
    code, _ = await quiet.json("/admin/manager/greetingstate", "POST", form={"state": "unuse"})
    assert code == 404

    # Lists: a service agent its own; a manager its business's; never another business's.
    code, body = await w.agent.json("/admin/manager/greetings")
    assert [g["content"] for g in body["data"]] == ["agent hi"]
    code, body = await w.mgr.json("/admin/manager/greetings")
    assert sorted(g["content"] for g in body["data"]) == ["agent hi", "boss hi", "mgr hi"]
    assert {g["nick_name"] for g in body["data"]} == {"Boss", "Mgr", "Agent"}
    code, body = await w.mgr2.json("/admin/manager/greetings", form={"business_id": BIZ})
    assert (code, body["code"]) == (403, 1)
    code, body = await w.boss.json("/admin/manager/greetings", form={"business_id": OTHER})
    assert [g["content"] for g in body["data"]] == ["mgr2 hi"]
    code, _ = await w.anon.json("/admin/manager/greetings")
    assert code == 401


# ---- FAQ and tabs (the same rules) --------------------------------------------------------

KINDS: dict[str, dict[str, str]] = {
    "faq": {"add": "/admin/manager/addquestion", "list": "/admin/manager/questions",
            "delete": "/admin/manager/delquestion", "public": "/admin/event/questions",
            "id": "qid", "title": "question", "body": "answer", "read": "answer_read",
            "table": "wolive_question", "cap": "MAX_QUESTIONS_PER_BUSINESS"},
    "tab": {"add": "/admin/set/gettab", "list": "/admin/set/tabs",
            "delete": "/admin/set/deltab", "public": "/admin/event/tabs", "id": "tid",
            "title": "title", "body": "content", "read": "content_read",
            "table": "wolive_tablist", "cap": "MAX_TABS_PER_BUSINESS"},
}

EVIL = ('<p style="position:fixed;top:0" onclick="steal()">Open <b>9-18</b> daily</p>'
        '<script>alert("s")</script>'
        '<img src="x" onerror="alert(1)"><img src="/upload/map.png" alt="map">'
        '<a href="javascript:alert(2)">js</a><a href="JAVASCRIPT:alert(3)">js2</a>'
        '<a href="https://shop.example/help" target="_top" onmouseover="x()">help</a>'
        '<iframe src="https://evil.example/"></iframe>'
        '<svg onload="alert(4)"><circle/></svg>'
        '<a href="mailto:help@shop.example">mail</a>')
NEEDLES = ("<script", "onerror", "onclick", "onmouseover", "onload", "javascript:",
           "JAVASCRIPT:", "<iframe", "style=", "<svg", "steal", 'alert("s")')


def assert_inert(html: str) -> None:
    for needle in NEEDLES:
        assert needle.lower() not in html.lower(), (needle, html)
    for m in re.finditer(r"<a\b[^>]*>", html):
        assert 'rel="noopener noreferrer nofollow"' in m.group(0), m.group(0)
        href = re.search(r'href="([^"]*)"', m.group(0))
        assert href is None or re.match(r"^(https?:|mailto:)", unescape(href.group(1)))


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("kind", KINDS)
async def test_add_edit_list_delete_and_public_read(w: World, base_url: str, kind: str) -> None:
    k = KINDS[kind]
    code, body = await w.mgr.json(k["add"], "POST", form={
        k["title"]: "Opening hours?", k["body"]: "<p>9-18 <b>daily</b></p>",
        k["read"]: ""})
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    first = body["data"][k["id"]]
    assert body["data"][k["read"]] == "9-18 daily"  # derived from the clean HTML
    code, body = await w.boss.json(k["add"], "POST", form={
        k["title"]: "Delivery", k["body"]: "<i>2 days</i>", k["read"]: "Two days"})
    second = body["data"][k["id"]]
    rows = db_rows(w.db, f"SELECT {k['id']}, business_id, {k['title']}, {k['body']}, "
                         f"{k['read']} FROM {k['table']} ORDER BY {k['id']}")
    assert rows == [
        {k["id"]: first, "business_id": BIZ, k["title"]: "Opening hours?",
         k["body"]: "<p>9-18 <b>daily</b></p>", k["read"]: "9-18 daily"},
        {k["id"]: second, "business_id": BIZ, k["title"]: "Delivery",
         k["body"]: "<i>2 days</i>", k["read"]: "Two days"}]

    # Edit: the id present.
    code, body = await w.mgr.json(k["add"], "POST", form={
        k["id"]: first, k["title"]: "Hours", k["body"]: "<p>9-20</p>"})
    assert (code, body["code"]) == (200, 0)
    assert db_rows(w.db, f"SELECT {k['title']}, {k['read']} FROM {k['table']} WHERE "
                         f"{k['id']} = %s", (first,)) == [{k["title"]: "Hours", k["read"]: "9-20"}]

    # Console list (manager) and the visitor window's read (no login), same business only.
    code, body = await w.mgr.json(k["list"])
    assert [r[k["id"]] for r in body["data"]] == [first, second]
    visitor = Client(base_url)
    code, body = await visitor.json(k["public"], form={"business_id": BIZ})
    assert code == 200 and [r[k["title"]] for r in body["data"]] == ["Hours", "Delivery"]
    assert body["data"][0][k["body"]] == "<p>9-20</p>"
    assert "business_id" not in body["data"][0]
    code, body = await visitor.json(k["public"], form={"business_id": OTHER})
    assert (code, body["data"]) == (200, [])

    # Delete.
    code, body = await w.mgr.json(k["delete"], "POST", form={k["id"]: second})
    assert (code, body["code"]) == (200, 0)
    assert [r[k["id"]] for r in db_rows(w.db, f"SELECT {k['id']} FROM {k['table']}")] == [first]
    code, body = await w.mgr.json(k["delete"], "POST", form={k["id"]: second})
    assert (code, body["code"]) == (404, 1)


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("kind", KINDS)
async def test_who_may_write_and_read(w: World, kind: str) -> None:
    k = KINDS[kind]
    form = {k["title"]: "Q", k["body"]: "A"}
    _, body = await w.mgr.json(k["add"], "POST", form=form)
    mine = body["data"][k["id"]]
    _, body = await w.mgr2.json(k["add"], "POST", form=form)
    theirs = body["data"][k["id"]]
    assert db_rows(w.db, f"SELECT business_id FROM {k['table']} WHERE {k['id']} = %s",
                   (theirs,)) == [{"business_id": OTHER}]

    # Not logged in: 401 everywhere on the console side.
    for url, method in ((k["add"], "POST"), (k["list"], "GET"), (k["delete"], "POST")):
        code, body = await w.anon.json(url, method, form={**form, k["id"]: mine})
        assert (code, body["code"]) == (401, 1), url
    # Too low a level: a service agent may not add, edit, list or delete.
    for url, method in ((k["add"], "POST"), (k["list"], "GET"), (k["delete"], "POST")):
        code, body = await w.agent.json(url, method, form={**form, k["id"]: mine})
        assert (code, body["code"]) == (403, 1), url
    # Another business: naming it is 403; reaching its rows by id is 404 (and changes nothing).
    code, _ = await w.mgr2.json(k["list"], form={"business_id": BIZ})
    assert code == 403
    code, _ = await w.mgr2.json(k["add"], "POST", form={**form, "business_id": BIZ})
    assert code == 403
    code, _ = await w.mgr2.json(k["add"], "POST", form={
        k["id"]: mine, k["title"]: "hijacked", k["body"]: "x"})
    assert code == 404
    code, _ = await w.mgr2.json(k["delete"], "POST", form={k["id"]: mine})
    assert code == 404
    assert db_rows(w.db, f"SELECT {k['title']}, business_id FROM {k['table']} WHERE "
                         f"{k['id']} = %s", (mine,)) == [{k["title"]: "Q", "business_id": BIZ}]
    code, body = await w.mgr2.json(k["list"])
    assert [r[k["id"]] for r in body["data"]] == [theirs]
    # A super_manager may manage any business it names; an unknown one is 404.
    code, body = await w.boss.json(k["add"], "POST", form={**form, "business_id": OTHER})
    assert (code, body["data"]["business_id"]) == (200, OTHER)
    code, body = await w.boss.json(k["list"], form={"business_id": OTHER})
    assert len(body["data"]) == 2
    code, _ = await w.boss.json(k["add"], "POST", form={**form, "business_id": "nowhere"})
    assert code == 404
    # A business_id in the body of a manager's edit does not move the row (no mass
    # assignment): it is only the scope, and the scope is checked.
    code, _ = await w.mgr.json(k["add"], "POST", form={
        k["id"]: mine, k["title"]: "Q2", k["body"]: "A", "business_id": OTHER})
    assert code == 403


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("kind", KINDS)
async def test_bad_input(
        w: World, base_url: str, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    k = KINDS[kind]
    cases = [
        ({k["body"]: "A"}, 400),                                    # no title
        ({k["title"]: "  ", k["body"]: "A"}, 400),                  # blank title
        ({k["title"]: "Q"}, 400),                                   # no body
        ({k["title"]: "Q", k["body"]: "<script>alert(1)</script>"}, 400),  # nothing safe left
        ({k["title"]: "Q", k["body"]: "A", k["id"]: "abc"}, 400),   # id not a number
        ({k["title"]: "Q", k["body"]: "A", k["id"]: "999"}, 404),   # no such row
        ({k["title"]: "Q" * 600, k["body"]: "A"}, 413),              # title too long
        ({k["title"]: "Q", k["body"]: "<b>x</b>" * 30_000}, 413),    # body too long to read
        ({k["title"]: "Q", k["body"]: "<b>xy</b>" * 10_000}, 413),   # too long to store
        ({k["title"]: "Q", k["body"]: "x", k["read"]: "y" * 70_000}, 413),
    ]
    for form, status in cases:
        code, body = await w.mgr.json(k["add"], "POST", form=form)
        assert (code, body["code"]) == (status, 1), (form, body)
    code, body = await w.mgr.json(k["delete"], "POST", form={})
    assert (code, body["code"]) == (400, 1)
    code, body = await w.mgr.json(k["add"], "POST", form={k["title"]: "Q", k["body"]: "A"},
                                  xsrf=False)
    assert code == 403
    assert db_rows(w.db, f"SELECT * FROM {k['table']}") == []
    # The per-business cap: 409 past it.
    monkeypatch.setattr(content_rules, k["cap"], 1)
    assert (await w.mgr.json(k["add"], "POST", form={k["title"]: "Q", k["body"]: "A"}))[0] == 200
    code, body = await w.mgr.json(k["add"], "POST", form={k["title"]: "Q", k["body"]: "A"})
    assert (code, body["code"]) == (409, 1)
    # The visitor read: a business_id is needed, well formed and known.
    anon = Client(base_url)
    for query, status in (({}, 400), ({"business_id": "bad id!"}, 400),
                          ({"business_id": "nowhere"}, 404)):
        code, body = await anon.json(k["public"], form=query or None)
        assert (code, body["code"]) == (status, 1), query


@pytest.mark.gen_test(timeout=TIMEOUT)
@pytest.mark.parametrize("kind", KINDS)
async def test_rich_content_is_stored_and_served_inert(w: World, base_url: str, kind: str) -> None:
    k = KINDS[kind]
    code, body = await w.mgr.json(k["add"], "POST", form={
        k["title"]: '<img src=x onerror=alert(9)>Hours <script>alert(8)</script>',
        k["body"]: EVIL, k["read"]: '<script>alert(7)</script>plain <b>text</b>'})
    assert (code, body["code"]) == (200, 0), body
    stored = db_rows(w.db, f"SELECT {k['title']}, {k['body']}, {k['read']} FROM {k['table']}")[0]
    html = stored[k["body"]]
    assert_inert(html)
    # What was safe survives: formatting, the https and mailto links, the same-server image.
    assert "<b>9-18</b>" in html and "<p>" in html
    assert '<a href="https://shop.example/help" rel="noopener noreferrer nofollow">help</a>' \
        in html
    assert 'href="mailto:help@shop.example"' in html
    assert '<img src="/upload/map.png" alt="map">' in html
    assert 'target=' not in html
    # Plain-text fields carry no markup at all.
    assert stored[k["title"]] == "Hours"
    assert stored[k["read"]] == "plain text"
    # Served inert to the visitor window and the console.
    _, body = await Client(base_url).json(k["public"], form={"business_id": BIZ})
    assert_inert(body["data"][0][k["body"]])
    assert body["data"][0][k["body"]] == html
    _, body = await w.mgr.json(k["list"])
    assert body["data"][0][k["body"]] == html

    # Other unsafe images and links.
    for evil, gone in (('<img src="//evil.example/a.png">', "evil.example"),
                       ('<img src="data:image/svg+xml;base64,PHN2Zz4=">', "data:"),
                       ('<img src="javascript:alert(1)">', "javascript"),
                       ('<a href="/\\evil.example">x</a>', "evil.example"),
                       ('<a href="java\tscript:alert(1)">x</a>', "script"),
                       ('<a href="vbscript:msgbox(1)">x</a>', "vbscript"),
                       ('<object data="x.swf">x</object><embed src="x.swf">', "swf"),
                       ('<form action="https://evil.example"><input name=a></form>x', "form"),
                       ('<style>body{display:none}</style>x', "display")):
        code, body = await w.mgr.json(k["add"], "POST", form={
            k["title"]: "t", k["body"]: evil + " ok"})
        assert code == 200, body
        assert gone not in body["data"][k["body"]], (evil, body["data"][k["body"]])


# ---- business switches -------------------------------------------------------------------

SWITCHES = ("business_id", "distribution_rule", "video_state", "audio_state", "voice_state",
            "voice_address", "state")


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_switches_read_and_change(w: World) -> None:
    code, body = await w.mgr.json("/admin/manager/switches")
    assert code == 200 and body["code"] == 0
    assert tuple(body["data"]) == SWITCHES and body["data"]["business_id"] == BIZ
    assert body["data"]["voice_address"] == "/upload/voice/default.mp3"

    code, body = await w.mgr.json("/admin/manager/switches", "POST", form={
        "distribution_rule": "claim", "video_state": "open", "audio_state": "open",
        "voice_state": "close", "voice_address": "/upload/voice/ding-2.mp3",
        "wid": "77", "business_id": BIZ})
    assert (code, body["code"], body["msg"]) == (200, 0, "成功"), body
    row = db_rows(w.db, "SELECT * FROM wolive_business WHERE business_id = %s", (BIZ,))[0]
    assert (row["distribution_rule"], row["video_state"], row["audio_state"],
            row["voice_state"], row["voice_address"], row["state"]) == (
        "claim", "open", "open", "close", "/upload/voice/ding-2.mp3", "open")
    assert row["wid"] != 77
    assert body["data"]["distribution_rule"] == "claim"
    # One at a time works too; the other business is untouched.
    code, body = await w.mgr.json("/admin/manager/switches", "POST",
                                  form={"distribution_rule": "auto"})
    assert body["data"]["distribution_rule"] == "auto" and body["data"]["video_state"] == "open"
    assert db_rows(w.db, "SELECT video_state FROM wolive_business WHERE business_id = %s",
                   (OTHER,)) == [{"video_state": "close"}]

    # A super_manager: any business, including `state` (open / close the business).
    code, body = await w.boss.json("/admin/manager/switches", form={"business_id": OTHER})
    assert body["data"]["business_id"] == OTHER
    code, body = await w.boss.json("/admin/manager/switches", "POST",
                                   form={"business_id": OTHER, "state": "close"})
    assert (code, body["data"]["state"]) == (200, "close")
    code, body = await w.boss.json("/admin/manager/switches", form={"business_id": "nowhere"})
    assert (code, body["code"]) == (404, 1)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_switches_refuse(w: World) -> None:
    before = db_rows(w.db, "SELECT * FROM wolive_business ORDER BY wid")
    bad = [{"distribution_rule": "random"}, {"video_state": "on"}, {"audio_state": "OPEN"},
           {"voice_state": ""}, {"state": "maybe"},
           {"voice_address": "https://evil.example/a.mp3"},
           {"voice_address": "//evil.example/a.mp3"}, {"voice_address": "/../../etc/a.mp3"},
           {"voice_address": "/upload/voice/a.php"}, {"voice_address": "upload/a.mp3"},
           {"voice_address": "/upload/voice/<b>.mp3"}, {"voice_address": "/" + "a" * 300 + ".mp3"},
           {}, {"distribution_rule": "auto", "video_state": "nope"}]
    for form in bad:
        code, body = await w.mgr.json("/admin/manager/switches", "POST", form=form)
        assert (code, body["code"]) == (400, 1), (form, body)
    # A manager may not open or close a business (the document's "禁止该商户").
    code, _ = await w.mgr.json("/admin/manager/switches", "POST", form={"state": "close"})
    assert code == 403
    # Too low a level, another business, nobody, no _xsrf.
    assert (await w.agent.json("/admin/manager/switches"))[0] == 403
    assert (await w.agent.json("/admin/manager/switches", "POST",
                               form={"video_state": "open"}))[0] == 403
    assert (await w.mgr2.json("/admin/manager/switches", form={"business_id": BIZ}))[0] == 403
    assert (await w.mgr2.json("/admin/manager/switches", "POST",
                              form={"business_id": BIZ, "video_state": "open"}))[0] == 403
    assert (await w.anon.json("/admin/manager/switches"))[0] == 401
    assert (await w.anon.json("/admin/manager/switches", "POST",
                              form={"video_state": "open"}))[0] == 401
    assert (await w.mgr.json("/admin/manager/switches", "POST", form={"video_state": "open"},
                             xsrf=False))[0] == 403
    assert db_rows(w.db, "SELECT * FROM wolive_business ORDER BY wid") == before


# ---- message board -----------------------------------------------------------------------

def board(**over: str) -> dict[str, str]:
    return {"business_id": BIZ, "name": "李雷", "moblie": "+86 138-0000-0000",
            "email": "li@example.com", "content": "请回电 📞", **over}


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_leave_message_stores_and_pushes(w: World, base_url: str, ws_base: str) -> None:
    sock = await PusherSocket.connect(ws_base, cookie=w.agent.cookie_header())
    assert (await sock.subscribe("all" + BIZ))["event"] == \
        "pusher_internal:subscription_succeeded"
    visitor = Client(base_url)  # no cookie, no _xsrf: visitor-facing
    code, body = await visitor.json("/admin/event/message", "POST", form=board())
    assert (code, body["code"], body["msg"]) == (200, 0, "success"), body
    mid = body["data"]["mid"]
    rows = db_rows(w.db, "SELECT mid, name, moblie, email, content, business_id, state "
                         "FROM wolive_message")
    assert rows == [{"mid": mid, "name": "李雷", "moblie": "+86 138-0000-0000",
                     "email": "li@example.com", "content": "请回电 📞", "business_id": BIZ,
                     "state": "unread"}]
    frame = await sock.expect("new_message", "all" + BIZ)
    pushed = frame["data"]["message"]
    assert pushed["mid"] == mid and pushed["content"] == "请回电 📞"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", pushed["timestamp"])
    # Email alone, or a phone alone, is enough; JSON bodies work too.
    code, body = await visitor.json("/admin/event/message", "POST", form=board(moblie=""))
    assert body["code"] == 0
    code, body = await visitor.json("/admin/event/message", "POST",
                                    json_body=board(email=""), xsrf=False)
    assert body["code"] == 0
    # The other business's agents hear nothing of it.
    sock2 = await PusherSocket.connect(ws_base, cookie=w.mgr2.cookie_header())
    assert (await sock2.subscribe("all" + BIZ))["event"] == "pusher:subscription_error"


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_leave_message_validation_and_rate_limit(w: World, base_url: str) -> None:
    visitor = Client(base_url)
    cases = [(board(name=""), 400), (board(name="n" * 65), 400),
             (board(moblie="", email=""), 400), (board(email="not-an-email"), 400),
             (board(email="a@b.c<script>"), 400), (board(moblie="call me"), 400),
             (board(content="   "), 400), (board(content="x" * 2001), 413),
             (board(business_id="nowhere"), 404), (board(business_id="bad id!"), 400),
             ({k: v for k, v in board().items() if k != "business_id"}, 400)]
    for form, status in cases:
        code, body = await visitor.json("/admin/event/message", "POST", form=form)
        assert (code, body["code"]) == (status, 1), (form, body)
    db_rows(w.db, "UPDATE wolive_business SET state = 'close' WHERE business_id = %s", (OTHER,))
    code, body = await visitor.json("/admin/event/message", "POST",
                                    form=board(business_id=OTHER))
    assert (code, body["msg"]) == (403, "该网站已经停止客服咨询！")
    assert db_rows(w.db, "SELECT * FROM wolive_message") == []

    # Five from one IP in ten minutes, then 429 (refused ones did not count).
    for n in range(content_rules.BOARD_MESSAGES_PER_WINDOW):
        code, body = await visitor.json("/admin/event/message", "POST",
                                        form=board(content=f"m{n}"))
        assert (code, body["code"]) == (200, 0)
    code, body = await visitor.json("/admin/event/message", "POST", form=board())
    assert (code, body["code"]) == (429, 1)
    assert len(db_rows(w.db, "SELECT mid FROM wolive_message")) == \
        content_rules.BOARD_MESSAGES_PER_WINDOW


def test_rate_limiter_window_and_memory() -> None:
    now = [1000.0]
    lim = RateLimiter(2, 600.0, max_keys=3, clock=lambda: now[0])
    assert lim.take("a") and lim.take("a") and not lim.take("a")
    now[0] += 599
    assert not lim.take("a")
    now[0] += 1  # the first two are 600 s old: out of the window
    assert lim.take("a")
    for key in ("b", "c", "d"):
        assert lim.take(key)
    assert len(lim.hits) == 3 and "a" not in lim.hits  # the oldest key was forgotten


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_message_page_renders_user_text_inert(w: World, base_url: str) -> None:
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = Client(base_url)
    resp = await page.fetch("/index/index/message", form={"business_id": BIZ,
                                                          "visiter_name": evil})
    assert resp.code == 200 and resp.headers["Content-Type"].startswith("text/html")
    text = resp.body.decode()
    assert "<script>alert(1)" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'class="card' in text and 'class="form"' in text and 'class="primary"' in text
    assert 'name="moblie"' in text and 'name="_xsrf"' in text

    # The form posts back to the page (with its _xsrf); the result page escapes too.
    resp = await page.fetch("/index/index/message", "POST", form=board(name=evil[:60]))
    assert resp.code == 200, resp.body[:500]
    text = resp.body.decode()
    assert 'id="done"' in text and "<script>" not in text and "&lt;script&gt;" in text
    assert db_rows(w.db, "SELECT name FROM wolive_message") == [{"name": evil[:60]}]
    # An error re-renders the form with what was typed, escaped, and the reason.
    resp = await page.fetch("/index/index/message", "POST",
                            form=board(email="nope", content="</textarea><script>x()</script>"))
    assert resp.code == 400
    text = resp.body.decode()
    assert 'id="error"' in text and "<script>x()" not in text
    assert "&lt;/textarea&gt;&lt;script&gt;x()&lt;/script&gt;" in text
    # Without the page's _xsrf the form is refused; unknown / missing business: 404 / 400.
    stranger = Client(base_url)
    assert (await stranger.fetch("/index/index/message", "POST", form=board())).code == 403
    assert (await page.fetch("/index/index/message", form={"business_id": "nowhere"})).code \
        == 404
    assert (await page.fetch("/index/index/message")).code == 400
    assert len(db_rows(w.db, "SELECT * FROM wolive_message")) == 1


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_console_messages_list_read_delete(w: World, wolive_server: Any) -> None:
    store = wolive_server.store
    mids = [(await store.add_board_message(BIZ, f"n{i}", "", f"{i}@x.io", f"c{i}"))["mid"]
            for i in range(3)]
    other = (await store.add_board_message(OTHER, "o", "", "o@x.io", "other"))["mid"]

    # Any agent of the business reads its messages, newest first, paged.
    code, body = await w.agent.json("/admin/set/messages", form={"limit": 2})
    assert (code, body["code"]) == (200, 0)
    data = body["data"]
    assert [r["mid"] for r in data["rows"]] == [mids[2], mids[1]]
    assert (data["total"], data["page"], data["limit"], data["unread"]) == (3, 1, 2, 3)
    code, body = await w.agent.json("/admin/set/messages", form={"limit": 2, "page": 2})
    assert [r["mid"] for r in body["data"]["rows"]] == [mids[0]]
    for bad in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "x"}):
        code, body = await w.agent.json("/admin/set/messages", form=bad)
        assert (code, body["code"]) == (400, 1), bad
    code, body = await w.mgr2.json("/admin/set/messages")
    assert [r["mid"] for r in body["data"]["rows"]] == [other]
    assert (await w.mgr2.json("/admin/set/messages", form={"business_id": BIZ}))[0] == 403
    assert (await w.anon.json("/admin/set/messages"))[0] == 401
    code, body = await w.boss.json("/admin/set/messages", form={"business_id": OTHER})
    assert [r["mid"] for r in body["data"]["rows"]] == [other]

    # Mark read (any agent of the business); back to unread; not another business's.
    code, body = await w.agent.json("/admin/set/readmessage", "POST", form={"mid": mids[0]})
    assert (code, body["code"], body["data"]["state"]) == (200, 0, "readed")
    before = db_rows(w.db, "SELECT timestamp FROM wolive_message WHERE mid = %s", (mids[0],))
    assert (await w.agent.json("/admin/set/messages"))[1]["data"]["unread"] == 2
    code, body = await w.agent.json("/admin/set/readmessage", "POST",
                                    form={"mid": mids[0], "state": "unread"})
    assert body["data"]["state"] == "unread"
    assert db_rows(w.db, "SELECT timestamp FROM wolive_message WHERE mid = %s",
                   (mids[0],)) == before
    assert (await w.agent.json("/admin/set/readmessage", "POST",
                               form={"mid": mids[0], "state": "x"}))[0] == 400
    assert (await w.agent.json("/admin/set/readmessage", "POST", form={}))[0] == 400
    assert (await w.agent.json("/admin/set/readmessage", "POST", form={"mid": 9999}))[0] == 404
    assert (await w.mgr2.json("/admin/set/readmessage", "POST", form={"mid": mids[1]}))[0] \
        == 404
    assert (await w.anon.json("/admin/set/readmessage", "POST", form={"mid": mids[1]}))[0] \
        == 401
    assert db_rows(w.db, "SELECT state FROM wolive_message WHERE mid = %s",
                   (mids[1],)) == [{"state": "unread"}]

    # Delete: manager and up, its business's only.
    assert (await w.agent.json("/admin/set/delmessage", "POST", form={"mid": mids[1]}))[0] \
        == 403
    assert (await w.mgr2.json("/admin/set/delmessage", "POST", form={"mid": mids[1]}))[0] \
        == 404
    assert (await w.anon.json("/admin/set/delmessage", "POST", form={"mid": mids[1]}))[0] \
        == 401
    assert (await w.mgr.json("/admin/set/delmessage", "POST", form={}))[0] == 400
    code, body = await w.mgr.json("/admin/set/delmessage", "POST", form={"mid": mids[1]})
    assert (code, body["code"]) == (200, 0)
    assert (await w.mgr.json("/admin/set/delmessage", "POST", form={"mid": mids[1]}))[0] == 404
    assert sorted(r["mid"] for r in db_rows(w.db, "SELECT mid FROM wolive_message")) == \
        sorted([mids[0], mids[2], other])


# ---- schema ------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_migration_adds_message_state_to_an_existing_wolive_table(
        db_url: str, tmp_path: Path) -> None:
    """An existing WoLive `wolive_message` (the document's columns) gets `state`, its rows
    `unread`; running the migrations again changes nothing."""
    if db_url.startswith("sqlite:///"):
        Path(db_url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    db_rows(db_url, "CREATE TABLE wolive_message (mid INTEGER PRIMARY KEY, content TEXT "
                    "NOT NULL, name VARCHAR(255) NOT NULL, moblie VARCHAR(255) NOT NULL, "
                    "email VARCHAR(255) NOT NULL, business_id VARCHAR(100), timestamp "
                    "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    db_rows(db_url, "INSERT INTO wolive_message (mid, content, name, moblie, email, "
                    "business_id) VALUES (7, 'old', 'n', '1', 'e@x.io', 'shop1')")
    store = await Store.open(db_url, base_dir=str(tmp_path))
    try:
        rows, total = await store.board_messages("shop1", 0, 10)
        assert total == 1 and rows[0]["mid"] == 7 and rows[0]["state"] == "unread"
        assert (await store.set_board_message_state("shop1", 7, "readed"))["state"] == "readed"
        await store.migrate()
        assert db_rows(db_url, "SELECT state FROM wolive_message") == [{"state": "readed"}]
    finally:
        await store.close()
