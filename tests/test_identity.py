"""Visitor identity bound to the browser (issue 10, item 3): knowing a `visiter_id` is never
proof. A fresh client asking for another visitor's id gets a conversation of its own; a
host-signed id (`visiter_sign`) reattaches in any browser; a wrong signature and, when the
business requires it, an unsigned id are refused with nothing written; the token cookie is
HttpOnly. On SQLite and MariaDB."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import pytest

from helpers import Client, PusherSocket, db_rows, open_visitor_window
from test_chat import BIZ, notice

HOME = "/index/index/home"


def boot_of(body: bytes) -> dict[str, Any] | None:
    m = re.search(rb'<script id="boot" type="application/json">(.*?)</script>', body, re.S)
    return dict(json.loads(m.group(1))) if m else None


async def window(client: Client, visiter_id: str, **query: str) -> dict[str, Any]:
    """Open the chat window as a browser does: GET, and when the server shows the identify
    page (another browser owns the id), post it back as its script does (with the widget's
    token when given as `vt_id`/`vt`)."""
    vt = {k: query.pop(k) for k in ("vt_id", "vt") if k in query}
    q = {"business_id": BIZ, "visiter_id": visiter_id, **query}
    resp = await client.fetch(HOME, form=q)
    assert resp.code == 200, resp.body[:300]
    boot = boot_of(resp.body)
    if boot is None:
        assert b'id="identify"' in resp.body
        from urllib.parse import urlencode
        resp = await client.fetch(f"{HOME}?{urlencode(q)}", "POST", form=vt, xsrf=False)
        assert resp.code == 200, resp.body[:300]
        boot = boot_of(resp.body)
        assert boot is not None
    return boot


def history_args(boot: dict[str, Any], visiter_id: str | None = None) -> dict[str, str]:
    return {"visiter_id": visiter_id or boot["visiter_id"], "business_id": BIZ,
            "channel": boot["channel"]}


@pytest.mark.gen_test
async def test_knowing_an_id_opens_nothing(
        boss: Client, boss_online: PusherSocket, base_url: str, ws_base: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    a = Client(base_url)
    boot_a = await window(a, "shop-user-42", visiter_name="Alice")
    assert boot_a["visiter_id"] == "shop-user-42"
    assert (await notice(a, boot_a))[1]["code"] == 0
    code, body = await a.json("/admin/event/chats", "POST", form={
        **history_args(boot_a), "content": "我的订单号是 A-1001"})
    assert code == 200 and body["code"] == 0, body
    a_sock = await PusherSocket.connect(ws_base)
    assert (await a_sock.subscribe("cu" + boot_a["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"

    # B, a fresh browser that knows A's id: the first answer holds no channel at all.
    b = Client(base_url)
    resp = await b.fetch(HOME, form={"business_id": BIZ, "visiter_id": "shop-user-42"})
    assert resp.code == 200 and boot_of(resp.body) is None
    assert boot_a["channel"].encode() not in resp.body
    boot_b = await window(b, "shop-user-42", visiter_name="Alice")
    assert boot_b["visiter_id"].startswith("shop-user-42:")
    assert boot_b["channel"] != boot_a["channel"]
    # B cannot read A's history, with its own channel or with none.
    for args in (history_args(boot_b, "shop-user-42"),
                 {"visiter_id": "shop-user-42", "business_id": BIZ}):
        code, body = await b.json("/admin/event/history", form=args)
        assert code == 403 and body["code"] == 3, body
    code, body = await b.json("/admin/event/history", form=history_args(boot_b))
    assert code == 200 and body["data"] == [], body
    # Nor A's live replies: B's socket, on the channel B was given, hears nothing of A's.
    b_sock = await PusherSocket.connect(ws_base)
    assert (await b_sock.subscribe("cu" + boot_b["channel"]))["event"] == \
        "pusher_internal:subscription_succeeded"
    code, body = await agent.json("/admin/set/chats", "POST", form={
        "visiter_id": "shop-user-42", "content": "已为您查到订单"})
    assert code == 200 and body["code"] == 0, body
    assert (await a_sock.expect("my-event"))["data"]["message"]["content"] == "已为您查到订单"
    await b_sock.nothing()
    # The agent sees two visitors: B's name tells them apart ("Alice #<its id's end>").
    rows = db_rows(db, "SELECT visiter_id, visiter_name FROM wolive_visiter ORDER BY vid")
    assert rows == [{"visiter_id": "shop-user-42", "visiter_name": "Alice"},
                    {"visiter_id": boot_b["visiter_id"],
                     "visiter_name": "Alice #" + boot_b["visiter_id"][-4:]}]
    # A's own browser comes back to its conversation (its cookie), and so does B to its own.
    assert (await window(a, "shop-user-42"))["channel"] == boot_a["channel"]
    assert (await window(b, "shop-user-42"))["visiter_id"] == boot_b["visiter_id"]


@pytest.mark.gen_test
async def test_the_widget_token_proves_the_browser(boss: Client, base_url: str) -> None:
    """The in-page panel may get no cookie: its page keeps the token (boot `identity`) and
    posts it back from the URL fragment."""
    first = Client(base_url)
    boot = await window(first, "", embed="https://shop.example")
    ident = boot["identity"]
    assert ident["visiter_id"] == boot["visiter_id"] and len(ident["token"]) == 64
    # Not in the boot of a window outside a panel (its cookie is the proof there).
    assert "identity" not in await window(Client(base_url), "")
    # A page view later, cookies blocked (a fresh client): the token from the fragment.
    again = await window(Client(base_url), boot["visiter_id"], embed="https://shop.example",
                         vt_id=ident["visiter_id"], vt=ident["token"])
    assert again["channel"] == boot["channel"] and "identity" not in again
    # A made-up token proves nothing.
    other = await window(Client(base_url), boot["visiter_id"], embed="https://shop.example",
                         vt_id=ident["visiter_id"], vt="0" * 64)
    assert other["channel"] != boot["channel"]


@pytest.mark.gen_test
async def test_signed_ids_reattach_and_wrong_signatures_are_refused(
        boss: Client, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    code, body = await agent.json("/admin/manager/identity")
    assert code == 200 and body["data"]["require_signed"] is False, body
    secret = body["data"]["secret"]
    assert re.fullmatch(r"[0-9a-f]{64}", secret)

    def sign(vid: str, key: str = secret) -> str:
        return hmac.new(key.encode(), vid.encode(), hashlib.sha256).hexdigest()

    laptop = await window(Client(base_url), "member-7", visiter_sign=sign("member-7"))
    phone_client = Client(base_url)
    phone = await window(phone_client, "member-7", visiter_sign=sign("member-7"))
    assert phone["visiter_id"] == "member-7" and phone["channel"] == laptop["channel"]
    code, body = await phone_client.json("/admin/event/history", form=history_args(phone))
    assert code == 200, body
    # Wrong signatures (another id's, another secret's, not hex): 403 code 5, nothing stored.
    before = db_rows(db, "SELECT COUNT(*) AS n FROM wolive_visiter")[0]["n"]
    for bad in (sign("member-8"), sign("member-7", "x" * 64), "zz", sign("member-7")[:-1]):
        resp = await Client(base_url).fetch(HOME, form={
            "business_id": BIZ, "visiter_id": "member-7", "visiter_sign": bad})
        assert resp.code == 403, bad
        assert "visiter_sign" in resp.body.decode() and "(code 5)" in resp.body.decode()
    assert db_rows(db, "SELECT COUNT(*) AS n FROM wolive_visiter")[0]["n"] == before
    # A new secret: the old signatures stop working.
    code, body = await agent.json("/admin/manager/identity", "POST",
                                  form={"regenerate": "1"})
    assert code == 200 and body["data"]["secret"] != secret, body
    resp = await Client(base_url).fetch(HOME, form={
        "business_id": BIZ, "visiter_id": "member-7", "visiter_sign": sign("member-7")})
    assert resp.code == 403


@pytest.mark.gen_test
async def test_require_signed_ids(boss: Client, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    anon_client = Client(base_url)
    anon = await window(anon_client, "")  # the widget's own random id, made by the server
    code, body = await agent.json("/admin/manager/identity", "POST",
                                  form={"require_signed": "1"})
    assert code == 200 and body["data"]["require_signed"] is True, body
    secret = body["data"]["secret"]
    resp = await Client(base_url).fetch(HOME, form={"business_id": BIZ,
                                                    "visiter_id": "member-9"})
    assert resp.code == 403 and "visiter_sign" in resp.body.decode()
    assert "(code 6)" in resp.body.decode()
    assert db_rows(db, "SELECT * FROM wolive_visiter WHERE visiter_id = 'member-9'") == []
    signed = hmac.new(secret.encode(), b"member-9", hashlib.sha256).hexdigest()
    assert (await window(Client(base_url), "member-9", visiter_sign=signed))[
        "visiter_id"] == "member-9"
    # Anonymous visitors still chat: a new id, or the one this browser owns.
    assert (await window(Client(base_url), ""))["visiter_id"] != anon["visiter_id"]
    assert (await window(anon_client, anon["visiter_id"]))["channel"] == anon["channel"]
    # Bad values and levels.
    code, body = await agent.json("/admin/manager/identity", "POST",
                                  form={"require_signed": "yes"})
    assert code == 400 and body["code"] == 1
    code, body = await agent.json("/admin/manager/identity", "POST", form={})
    assert code == 400
    code, body = await agent.json("/admin/manager/identity", form={"business_id": "other"})
    assert code in (403, 404)
    code, body = await Client(base_url).json("/admin/manager/identity")
    assert code == 401


@pytest.mark.gen_test
async def test_token_cookie_is_httponly(boss: Client, base_url: str) -> None:
    resp = await Client(base_url).fetch(HOME, form={"business_id": BIZ, "visiter_id": ""})
    cookies = [c for c in resp.headers.get_list("Set-Cookie") if c.startswith("wolive_vt=")]
    assert len(cookies) == 1, resp.headers.get_list("Set-Cookie")
    assert "httponly" in cookies[0].lower() and "samesite=lax" in cookies[0].lower()
    assert resp.headers.get("Cache-Control") == "no-store"
    assert "identity" not in (boot_of(resp.body) or {"identity": 1})


@pytest.mark.gen_test
async def test_visitors_from_before_tokens(boss: Client, base_url: str, cfg: dict) -> None:
    """A visitor that chatted before tokens existed (a `wolive_visiter` row, no owner): a
    browser knowing only its id gets its own visitor; the browser with the window's old
    signed cookie stays that visitor."""
    db = cfg.database.url
    old, boot = await open_visitor_window(base_url, BIZ, "old-user-1")
    db_rows(db, "DELETE FROM wolive_visitor_owner")  # as a database from before has it
    old.cookies.pop("wolive_vt")  # as a browser from before has it
    stranger = await window(Client(base_url), "old-user-1")
    assert stranger["visiter_id"] != "old-user-1"
    again = await window(old, "old-user-1")
    assert again["channel"] == boot["channel"]


def test_cookie_attributes_and_size() -> None:
    """`SameSite=None; Secure` only over https (browsers refuse `None` without `Secure`);
    many long ids never make the cookie too big for a browser to keep."""
    from types import SimpleNamespace

    from handlers.identity import MAX_COOKIE_JSON, cookie_kwargs, keep_token
    from realtime.chat.identity import Resolved

    def fake(protocol: str) -> Any:
        return SimpleNamespace(request=SimpleNamespace(protocol=protocol))

    assert cookie_kwargs(fake("https")) == {"httponly": True, "secure": True,
                                            "samesite": "None"}
    assert cookie_kwargs(fake("http")) == {"httponly": True, "samesite": "Lax"}
    kept: dict[str, str] = {}

    class Handler:
        request = SimpleNamespace(protocol="http")

        def get_signed_cookie(self, name: str, max_age_days: int = 0) -> bytes | None:
            return kept[name].encode() if name in kept else None

        def set_signed_cookie(self, name: str, value: str, **kw: Any) -> None:
            kept[name] = value

    h: Any = Handler()
    for n in range(10):
        vid = f"{n}" + "x" * 199
        keep_token(h, "b" * 100, vid, Resolved(vid, "f" * 64), "f" * 64)
        assert len(kept["wolive_vt"]) <= MAX_COOKIE_JSON
    assert json.loads(kept["wolive_vt"])[0][1] == "9" + "x" * 199  # the newest kept


@pytest.mark.gen_test
async def test_an_overlong_id_is_refused_not_cut_to_another_visitor(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict) -> None:
    """A 201-character `visiter_id` (or a 101-character `business_id`) is a 400 naming the
    limit: cut to 200 it would be another visitor, and its signature would not match."""
    db = cfg.database.url
    c = Client(base_url)
    assert (await window(c, "b" * 200))["visiter_id"] == "b" * 200
    resp = await c.fetch("/index/index/home", form={"business_id": BIZ,
                                                    "visiter_id": "b" * 201})
    assert resp.code == 400 and b"1-200" in resp.body, resp.body[:300]
    resp = await c.fetch("/index/index/home", form={"business_id": "s" * 101,
                                                    "visiter_id": "v1"})
    assert resp.code == 400 and b"1-100" in resp.body, resp.body[:300]
    assert [r["visiter_id"] for r in db_rows(db, "SELECT visiter_id FROM wolive_visiter")
            if r["visiter_id"].startswith("bbb")] == ["b" * 200]



@pytest.mark.gen_test
async def test_a_notice_with_a_negative_agent_is_refused(
        boss: Client, boss_online: PusherSocket, base_url: str) -> None:
    """`/admin/event/notice`: `special` is an agent id, so a negative one is a 400 (as
    `special=abc`), and the visitor is not assigned by it."""
    c = Client(base_url)
    boot = await window(c, "v-notice")
    code, body = await c.json("/admin/event/notice", "POST", form={
        **history_args(boot), "special": "-5"})
    assert code == 400 and "special" in body["msg"], body
    assert (await notice(c, boot))[1]["code"] == 0
