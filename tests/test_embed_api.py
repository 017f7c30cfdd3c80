"""The server's side of the in-page panel (static/assets/index/kefu_online.js): the chat
window may be framed by any site and nothing else may; its `embed` origin is checked; a
closed panel reads its history with `peek` (nothing marked read) and proves the visitor by
its channel alone (a cross-site frame may get no cookie). On SQLite and MariaDB."""
from __future__ import annotations

import json
import re

import pytest

from helpers import Client, PusherSocket, db_rows, open_visitor_window
from test_chat import BIZ, notice


def boot_of(body: bytes) -> dict:
    m = re.search(rb'<script id="boot" type="application/json">(.*?)</script>', body, re.S)
    assert m
    return dict(json.loads(m.group(1)))


@pytest.mark.gen_test
async def test_only_the_chat_window_may_be_framed(boss: Client, base_url: str) -> None:
    agent = boss
    visitor = Client(base_url)
    resp = await visitor.fetch("/index/index/home", form={
        "business_id": BIZ, "visiter_id": "v-frame", "embed": "https://Shop.Example:8443"})
    assert resp.code == 200
    assert "X-Frame-Options" not in resp.headers
    assert "frame-ancestors" not in resp.headers.get("Content-Security-Policy", "")
    assert boot_of(resp.body)["embed"] == "https://shop.example:8443"
    # Not an origin: no embed (the window talks to no page).
    for bad in ("https://shop.example/x", "javascript:alert(1)", "*", "null"):
        resp = await visitor.fetch("/index/index/home", form={
            "business_id": BIZ, "visiter_id": "v-frame", "embed": bad})
        assert boot_of(resp.body)["embed"] is None, bad
    for path, who in (("/admin/login/index", Client(base_url)), ("/admin/index/index", agent),
                      ("/admin/page/embed", agent), ("/admin/event/notice", visitor)):
        resp = await who.fetch(path)
        assert resp.headers.get("X-Frame-Options") == "DENY", path
        assert resp.headers.get("Content-Security-Policy") == "frame-ancestors 'none'", path


@pytest.mark.gen_test
async def test_history_peek_marks_nothing_read_and_needs_no_cookie(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict) -> None:
    db = cfg.database.url
    agent = boss
    window, boot = await open_visitor_window(base_url, BIZ, "v-peek")
    assert (await notice(window, boot))[1]["code"] == 0
    code, body = await agent.json("/admin/set/chats", "POST", form={
        "visiter_id": "v-peek", "content": "还在吗？"})
    assert code == 200 and body["code"] == 0, body
    # A cross-site frame: no cookie at all, the channel proves the visitor.
    frame = Client(base_url)
    ids = {"visiter_id": "v-peek", "business_id": BIZ, "channel": boot["channel"]}

    def states() -> list[str]:
        return [r["state"] for r in db_rows(
            db, "SELECT state FROM wolive_chats WHERE direction = 'to_visiter'")]

    code, body = await frame.json("/admin/event/history", form={**ids, "peek": "1"})
    assert code == 200 and body["code"] == 0, body
    assert [(m["content"], m["state"]) for m in body["data"]] == [("还在吗？", "unread")]
    assert states() == ["unread"]
    code, body = await frame.json("/admin/event/history", form={**ids, "peek": "x"})
    assert code == 400 and body["code"] == 1 and "peek" in body["msg"], body
    assert states() == ["unread"]
    code, body = await frame.json("/admin/event/history", form={**ids, "peek": "0"})
    assert code == 200 and body["code"] == 0
    assert states() == ["readed"]
