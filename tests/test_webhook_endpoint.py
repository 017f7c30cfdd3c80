"""`POST /admin/event`: presence webhooks from a Pusher server, signed with the app secret.

Bodies are signed with the official Python library's own `pusher.signature.sign` and
checked with its `validate_webhook`, so what passes here passes a real Pusher server's.
"""
from __future__ import annotations

import json
import time
from typing import Any

import pusher
import pytest
from pusher.signature import sign

from helpers import BIZ, Client, PusherSocket, db_rows, open_visitor_window, wait_for



def webhook_body(*events: dict[str, Any], legacy: bool = False,
                 age_s: float = 0.0) -> bytes:
    """A webhook body as Pusher sends it (`time_ms` int ms), or as WoLive's pusher did
    (`legacy`: float seconds)."""
    now = time.time() - age_s
    stamp: float = now if legacy else int(now * 1000)
    return json.dumps({"time_ms": stamp, "events": list(events)}).encode()


async def post_webhook(base_url: str, body: bytes, key: str, secret: str,
                       signature: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json", "X-Pusher-Key": key,
               "X-Pusher-Signature": sign(secret, body.decode()) if signature is None
               else signature}
    return await Client(base_url).json("/admin/event", "POST", body=body, headers=headers)


def app_of(server: Any) -> tuple[str, str, str]:
    a = server.hub.default_app
    return a.id, a.key, a.secret


def state(db: str, table: str, where: str) -> str:
    return db_rows(db, f"SELECT state FROM {table} WHERE {where}")[0]["state"]


@pytest.mark.gen_test(timeout=20)
async def test_agent_presence_from_signed_standard_webhooks(
        boss: Client, base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    app_id, key, secret = app_of(wolive_server)
    watcher = await PusherSocket.connect(ws_base)  # a visitor page watching its agent
    assert (await watcher.subscribe("se1"))["event"] == "pusher_internal:subscription_succeeded"

    body = webhook_body({"name": "channel_occupied", "channel": "kefu1"})
    official = pusher.Pusher(app_id=app_id, key=key, secret=secret)
    assert official.validate_webhook(key, sign(secret, body.decode()), body.decode())
    code, answer = await post_webhook(base_url, body, key, secret)
    assert (code, answer) == (200, {"code": 0, "msg": "success",
                                    "data": {"applied": 1, "ignored": 0}})
    assert state(db, "wolive_service", "service_id = 1") == "online"
    pushed = await watcher.expect("geton", "se1")
    assert pushed["data"] == {"service_id": 1, "state": "online"}

    # The same again changes and pushes nothing.
    code, answer = await post_webhook(base_url, body, key, secret)
    assert answer["code"] == 0
    await watcher.nothing(0.3)

    code, answer = await post_webhook(base_url, webhook_body(
        {"name": "channel_vacated", "channel": "kefu1"}), key, secret)
    assert answer["data"] == {"applied": 1, "ignored": 0}
    assert state(db, "wolive_service", "service_id = 1") == "offline"
    assert (await watcher.expect("logout", "se1"))["data"]["state"] == "offline"


@pytest.mark.gen_test(timeout=20)
async def test_visitor_presence_from_wolive_legacy_names(
        boss: Client, base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    """WoLive's pusher: channel_added / channel_removed, time_ms in float seconds."""
    db = cfg.database.url
    agent = boss
    console = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await console.subscribe("kefu1"))["event"] == \
        "pusher_internal:subscription_succeeded"
    await wait_for(lambda: state(db, "wolive_service", "service_id = 1") == "online")
    visitor, boot = await open_visitor_window(base_url, BIZ, "visitor-w")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "visitor-w", "business_id": BIZ, "channel": boot["channel"]})
    assert body["code"] == 0
    _, key, secret = app_of(wolive_server)
    channel = "cu" + boot["channel"]

    code, answer = await post_webhook(base_url, webhook_body(
        {"name": "channel_added", "channel": channel}, legacy=True), key, secret)
    assert answer["data"] == {"applied": 1, "ignored": 0}, answer
    assert state(db, "wolive_visiter", "visiter_id = 'visitor-w'") == "online"
    pushed = await console.expect("geton", "kefu1")
    assert pushed["data"] == {"visiter_id": "visitor-w", "channel": boot["channel"],
                              "state": "online"}
    code, answer = await post_webhook(base_url, webhook_body(
        {"name": "channel_removed", "channel": channel}, legacy=True), key, secret)
    assert answer["data"]["applied"] == 1
    assert state(db, "wolive_visiter", "visiter_id = 'visitor-w'") == "offline"
    assert (await console.expect("logout", "kefu1"))["data"]["state"] == "offline"


@pytest.mark.gen_test(timeout=20)
async def test_other_events_and_channels_are_ignored_politely(
        boss: Client, base_url: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    _, key, secret = app_of(wolive_server)
    code, answer = await post_webhook(base_url, webhook_body(
        {"name": "member_added", "channel": "presence-x", "user_id": "1"},
        {"name": "member_removed", "channel": "presence-x", "user_id": "1"},
        {"name": "client_event", "channel": "private-x", "event": "client-a", "data": "{}",
         "socket_id": "1.2"},
        {"name": "channel_occupied", "channel": "my-channel"},
        {"name": "channel_occupied", "channel": "kefu1"},
        {"name": "channel_occupied"},
        {"name": "subscription_count", "channel": "kefu1", "subscription_count": 2},
    ), key, secret)
    assert (code, answer["code"]) == (200, 0)
    assert answer["data"] == {"applied": 1, "ignored": 6}
    assert state(db, "wolive_service", "service_id = 1") == "online"


@pytest.mark.gen_test(timeout=20)
async def test_bad_signatures_change_nothing(
        boss: Client, base_url: str, ws_base: str, cfg: dict, wolive_server: Any) -> None:
    db = cfg.database.url
    _, key, secret = app_of(wolive_server)
    watcher = await PusherSocket.connect(ws_base)
    await watcher.subscribe("se1")
    body = webhook_body({"name": "channel_occupied", "channel": "kefu1"})
    good = sign(secret, body.decode())
    for headers_key, signature in (
            (key, sign("not-the-secret", body.decode())),  # another secret
            (key, good[:-1] + ("0" if good[-1] != "0" else "1")),  # one digit off
            (key, good.upper()),  # hex compared exactly
            (key, ""),  # none
            ("no-such-key", good),  # unknown app
            ("", good)):
        code, answer = await post_webhook(base_url, body, headers_key, secret, signature)
        assert (code, answer["code"]) == (401, 1), (headers_key, signature, answer)
    # A body changed after signing.
    tampered = body.replace(b"kefu1", b"kefu2")
    code, answer = await post_webhook(base_url, tampered, key, secret, good)
    assert code == 401
    # Correctly signed but stale (a replay) or from the far future.
    for age in (301, -301):
        old = webhook_body({"name": "channel_occupied", "channel": "kefu1"}, age_s=age)
        code, answer = await post_webhook(base_url, old, key, secret)
        assert (code, answer["code"]) == (401, 1), answer
        assert "time_ms" in answer["msg"]
    assert state(db, "wolive_service", "service_id = 1") == "offline"
    await watcher.nothing(0.3)


@pytest.mark.gen_test(timeout=20)
async def test_malformed_signed_bodies_are_400(base_url: str, wolive_server: Any) -> None:
    _, key, secret = app_of(wolive_server)
    for body in (b"not json", b"[]", b'{"events": "kefu1"}', b'{"events": [1]}',
                 b'{"events": []}', b'{"time_ms": "soon", "events": []}'):
        code, answer = await post_webhook(base_url, body, key, secret)
        assert (code, answer["code"]) == (400, 1), (body, answer)
    # No agent cookie, no _xsrf: a server-to-server call needs neither; GET is not served.
    resp = await Client(base_url).fetch("/admin/event")
    assert resp.code == 405

