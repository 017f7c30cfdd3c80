"""Hostile input decoded in one place (realtime/inputs.py): deeply nested JSON, lone
surrogates, absurd numbers and Unicode digits get a clear refusal — a 400 `{code, msg}`, the
Pusher API's 400/401, a `pusher:error` frame with the socket kept — never a 500, a
traceback (the autouse fail_on_error_logs fixture) or a dropped socket; refusals write
nothing."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from helpers import BIZ, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window
from test_api_lean_path import signed
from test_pusher_protocol import (  # noqa: F401 (cfg: apps with known secrets)
    APPS,
    SUCCEEDED,
    cfg,
    lib,
    private,
)

from realtime import inputs
from realtime.pusher.signing import hmac_sha256_hex

DEEP = "[" * 100_000 + "]" * 100_000
LONE = '"\\ud800"'  # JSON text of a string holding a lone surrogate


def test_loads_refuses_what_json_loads_crashes_on_or_lets_through() -> None:
    with pytest.raises(RecursionError):
        json.loads(DEEP)  # what the parsers did before: a 500
    for bad in (DEEP, "[" * 33 + "]" * 33, LONE, '{"a": ["x", {"b": "\\uDFFF"}]}',
                '{"\\ud800": 1}', b"\xff\xfe", "{bad", b'"\xed\xa0\x80"'):
        with pytest.raises(inputs.InputError):
            inputs.loads(bad)
    # Brackets inside strings are text, a surrogate pair is one good character.
    assert inputs.loads('["' + "[" * 100 + '"]') == ["[" * 100]
    assert inputs.loads('"\\ud83d\\ude00"') == "😀"
    assert inputs.loads("[" * 32 + "]" * 32) is not None


def test_whole_numbers_are_ascii_digits_in_range() -> None:
    assert inputs.whole_number("7") == 7 and inputs.whole_number("-3") == -3
    for bad in ("٣", " 7 ", "7 ", "+7", "1e3", "0x10", "", "9" * 20, "1_000"):
        with pytest.raises(inputs.InputError):
            inputs.whole_number(bad)
    with pytest.raises(inputs.InputError):
        inputs.whole_number("101", 1, 100)


async def post_json(client: Client, path: str, body: str) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    if "_xsrf" in client.cookies:
        headers["X-XSRFToken"] = client.cookies["_xsrf"]
    resp = await client.fetch(path, "POST", body=body.encode(), headers=headers)
    return resp.code, json.loads(resp.body)


@pytest.mark.gen_test(timeout=60)
async def test_deep_json_and_lone_surrogates_get_a_400_on_every_kind_of_url(
        boss: Client, base_url: str, cfg: dict[str, Any]) -> None:  # noqa: F811
    db = cfg.database.url
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-hostile")
    ids = {k: boot[k] for k in ("visiter_id", "business_id", "channel")}
    before = db_rows(db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"]
    cases = [
        (visitor, "/admin/event/notice", DEEP),
        (visitor, "/admin/event/chats", json.dumps({**ids, "content": "x"})[:-1]
         + ', "content": ' + LONE + "}"),
        (visitor, "/admin/event/notice", json.dumps(ids)[:-1] + ', "visiter_name": ' + LONE
         + "}"),
        (boss, "/admin/set/chats", DEEP),
        (boss, "/admin/set/chats", '{"visiter_id": "v-hostile", "content": ' + LONE + "}"),
    ]
    for client, path, body in cases:
        status, answer = await post_json(client, path, body)
        assert status == 400 and answer["code"] != 0 and answer["msg"], (path, status, answer)
    assert db_rows(db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"] == before

    # The webhook endpoint, signed by a known app: a 400, not a 500.
    app = APPS[0]
    for body in (DEEP.encode(), ('{"time_ms": %d, "events": [{"name": "channel_occupied", '
                                 '"channel": %s}]}' % (time.time() * 1000, LONE)).encode()):
        resp = await boss.fetch("/admin/event", "POST", body=body, headers={
            "Content-Type": "application/json", "X-Pusher-Key": app["key"],
            "X-Pusher-Signature": hmac_sha256_hex(app["secret"], body)})
        assert resp.code == 400, (resp.code, resp.body[:200])


@pytest.mark.gen_test(timeout=60)
async def test_pusher_api_refuses_deep_json_surrogates_and_absurd_timestamps(
        base_url: str) -> None:
    http = Client(base_url)
    for body in (DEEP, '{"name": "e", "channel": "news", "data": ' + LONE + "}",
                 '{"name": ' + LONE + ', "channel": "news", "data": "x"}'):
        for path in ("/apps/1/events", "/apps/1/batch_events"):
            raw = body if path.endswith("/events") else '{"batch": [' + body + "]}"
            resp = await http.fetch(signed("1", path, raw.encode()), "POST", body=raw.encode(),
                                    headers={"Content-Type": "application/json"})
            assert resp.code == 400, (path, body[:40], resp.code, resp.body[:200])
    resp = await http.fetch(
        "/apps/1/events?auth_key=wolive&auth_timestamp=" + "9" * 400
        + "&auth_version=1.0&body_md5=x&auth_signature=x", "POST", body=b"{}",
        headers={"Content-Type": "application/json"})
    assert resp.code == 401, (resp.code, resp.body)


@pytest.mark.gen_test(timeout=60)
async def test_hostile_frames_get_pusher_error_and_the_socket_lives(
        ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    sock = await private(ws_base, client, "private-room")
    other = await private(ws_base, client, "private-room")
    deep_frame = "[" * 4000 + "]" * 4000  # under the frame size limit, past the recursion one
    lone = '{"event": "client-x", "channel": "private-room", "data": ' + LONE + "}"
    for raw in (deep_frame, lone):
        sock.conn.write_message(raw)
        err = await sock.expect("pusher:error")
        assert err["data"]["message"], err
    await other.nothing(0.3)
    sock.send("pusher:ping", {})
    await sock.expect("pusher:pong")
    sock.send("client-ok", {"n": 1}, channel="private-room")
    assert (await other.expect("client-ok"))["data"] == {"n": 1}


@pytest.mark.gen_test(timeout=60)
async def test_presence_channel_data_with_a_lone_surrogate_announces_nothing(
        ws_base: str, base_url: str) -> None:
    client = lib(base_url)
    first = await PusherSocket.connect(ws_base)
    signed = client.authenticate("presence-room", first.socket_id, {"user_id": "a"})
    first.send("pusher:subscribe", {"channel": "presence-room", "auth": signed["auth"],
                                    "channel_data": signed["channel_data"]})
    await first.expect(SUCCEEDED, "presence-room")
    bad = await PusherSocket.connect(ws_base)
    channel_data = '{"user_id": "b", "user_info": {"name": ' + LONE + "}}"
    from realtime.pusher.signing import channel_auth
    auth = channel_auth(APPS[0]["key"], APPS[0]["secret"], bad.socket_id, "presence-room",
                        channel_data)
    bad.send("pusher:subscribe", {"channel": "presence-room", "auth": auth,
                                  "channel_data": channel_data})
    answer = await bad.expect("pusher:subscription_error", "presence-room")
    assert answer["data"]["status"] == 400, answer
    await first.nothing(0.3)
    bad.send("pusher:ping", {})
    await bad.expect("pusher:pong")


@pytest.mark.gen_test(timeout=60)
async def test_limits_and_ids_are_checked_as_documented(
        boss: Client, base_url: str, cfg: dict[str, Any]) -> None:  # noqa: F811
    db = cfg.database.url
    status, body = await boss.json("/admin/manager/registForService", "POST", form={
        "user_name": "ann", "nick_name": "Ann", "password": PASSWORD, "password2": PASSWORD})
    assert body["code"] == 0, body
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-limits")
    ids = {k: boot[k] for k in ("visiter_id", "business_id", "channel")}
    for limit in ("-1", "0", "٣", " 7 "):
        code, body = await visitor.json("/admin/event/history", form={**ids, "limit": limit})
        assert code == 400 and body["code"] != 0, (limit, code, body)
        code, body = await boss.json("/admin/set/history",
                                     form={"visiter_id": "v-limits", "limit": limit})
        assert code == 400 and body["code"] != 0, (limit, code, body)
    agents = len(db_rows(db, "SELECT service_id FROM wolive_service"))
    for sid in ("٢", " 2 ", "2\u00a0"):
        code, body = await boss.json("/admin/manager/delete", "POST",
                                     form={"service_id": sid})
        assert code == 400, (sid, code, body)
    assert len(db_rows(db, "SELECT service_id FROM wolive_service")) == agents
