"""Available / away (issue 9): `POST /admin/set/status`, stored in `wolive_service_status`,
pushed as `status` to the agent's own consoles (`ud{id}`), its colleagues (`all{business}`)
and its visitors (`se{id}`); the auto rule and transfers skip away agents; setting
`available` serves waiting visitors at once. Every test runs on SQLite and on MariaDB."""
from __future__ import annotations

import pytest
from helpers import Client, PusherSocket, db_rows
from shop import BIZ, SUBSCRIBED, Shop, post


def stored(db: str, sid: int) -> list[str]:
    return [r["status"] for r in db_rows(
        db, "SELECT status FROM wolive_service_status WHERE service_id = %s", (sid,))]


@pytest.mark.gen_test(timeout=30)
async def test_set_status_is_stored_and_pushed(shop: Shop, ws_base: str) -> None:
    s = shop
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    watcher = await PusherSocket.connect(ws_base)  # a visitor window watching anna
    assert (await watcher.subscribe(f"se{a.sid}"))["event"] == SUBSCRIBED

    code, body = await post(a, "/admin/set/status", status="away")
    assert (code, body["code"]) == (200, 0), body
    assert body["data"] == {"service_id": a.sid, "status": "away", "state": "online",
                            "changed": True}
    assert stored(s.db, a.sid) == ["away"]
    want = {"service_id": a.sid, "status": "away", "state": "online"}
    assert (await a.sock.expect("status", f"ud{a.sid}"))["data"] == want     # own tabs
    assert (await b.sock.expect("status", f"all{BIZ}"))["data"] == want      # colleagues
    assert (await watcher.expect("status", f"se{a.sid}"))["data"] == want    # visitors
    # WoLive's geton / logout keep meaning online / offline: away sends neither.
    await watcher.nothing(0.1)

    # The same status again changes nothing and pushes nothing.
    code, body = await post(a, "/admin/set/status", status="away")
    assert (body["code"], body["data"]["changed"]) == (0, False)
    await watcher.nothing(0.1)

    code, body = await post(a, "/admin/set/status", status="available")
    assert (body["code"], body["data"]["status"]) == (0, "available")
    assert stored(s.db, a.sid) == ["available"]
    assert (await watcher.expect("status", f"se{a.sid}"))["data"]["status"] == "available"


@pytest.mark.gen_test(timeout=30)
async def test_bad_status_and_strangers_write_nothing(shop: Shop, base_url: str) -> None:
    s = shop
    a = await s.agent("anna")
    for bad in ("busy", "", "AWAY", "away " * 10):
        code, body = await post(a, "/admin/set/status", status=bad)
        assert code == 400 and body["code"] == 1 and body["msg"], (bad, body)
    code, body = await post(a, "/admin/set/status")
    assert code == 400 and body["code"] == 1
    # Not logged in: 401, JSON.
    stranger = Client(base_url)
    code, body = await stranger.json("/admin/set/status", "POST", form={"status": "away"})
    assert code in (401, 403) and body["code"] != 0, body
    assert stored(s.db, a.sid) == []
    # Only one's own status: there is no parameter naming another agent to set.
    code, body = await post(a, "/admin/set/status", status="away", service_id=s.boss.sid)
    assert body["data"]["service_id"] == a.sid
    assert stored(s.db, s.boss.sid) == []


@pytest.mark.gen_test(timeout=30)
async def test_auto_rule_skips_away_and_available_serves_the_waiting(shop: Shop) -> None:
    s = shop
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    assert (await post(a, "/admin/set/status", status="away"))[1]["code"] == 0
    # Both new visitors go to bert, though anna has fewer conversations and the lower id.
    v1, v2 = await s.visitor("v1"), await s.visitor("v2")
    for v in (v1, v2):
        body = await s.notice(v)
        assert (body["code"], body["data"]["service_id"]) == (0, b.sid), body
        assert body["data"]["status"] == "available"
    # bert goes away too: an open conversation stays with its (away) agent on a reload ...
    assert (await post(b, "/admin/set/status", status="away"))[1]["code"] == 0
    body = await s.notice(v1)
    assert (body["code"], body["data"]["service_id"], body["data"]["status"]) == (
        0, b.sid, "away")
    # ... but a new visitor waits: everyone online is away.
    v3 = await s.visitor("v3")
    body = await s.notice(v3)
    assert (body["code"], body["data"]["position"]) == (2, 1), body
    assert s.queue("v3") == {"service_id": 0, "state": "normal"}
    # anna is available again: v3 is hers at once, and its window is told.
    assert (await post(a, "/admin/set/status", status="available"))[1]["code"] == 0
    assert s.queue("v3") == {"service_id": a.sid, "state": "normal"}
    assert v3.sock is not None
    card = (await v3.sock.expect("cu_notice"))["data"]
    assert (card["service_id"], card["status"]) == (a.sid, "available")


@pytest.mark.gen_test(timeout=30)
async def test_no_transfer_to_an_away_agent(shop: Shop) -> None:
    s = shop
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    assert (await s.notice(await s.visitor("v1")))["data"]["service_id"] == a.sid
    assert (await post(b, "/admin/set/status", status="away"))[1]["code"] == 0
    code, body = await post(a, "/admin/set/transfer", visiter_id="v1", service_id=b.sid)
    assert (code, body["code"]) == (409, 3), body
    assert s.queue("v1") == {"service_id": a.sid, "state": "normal"}
    assert (await post(b, "/admin/set/status", status="available"))[1]["code"] == 0
    code, body = await post(a, "/admin/set/transfer", visiter_id="v1", service_id=b.sid)
    assert (code, body["code"]) == (200, 0), body


@pytest.mark.gen_test(timeout=30)
async def test_console_pages_boot_with_their_channels_and_status(shop: Shop) -> None:
    s = shop
    import json
    import re
    a = await s.agent("anna")
    assert (await post(a, "/admin/set/status", status="away"))[1]["code"] == 0
    for path in ("/admin/index/index", "/admin/page/history", "/admin/page/settings",
                 "/admin/page/businesses"):  # the last one: a 403 page, with the top bar
        resp = await a.client.fetch(path)
        m = re.search(rb'<script id="boot" type="application/json">(.*?)</script>',
                      resp.body, re.S)
        assert m, path
        presence = json.loads(m.group(1))["presence"]
        assert presence == {"channels": {"presence": f"kefu{a.sid}", "own": f"ud{a.sid}",
                                         "team": f"presence-business-{BIZ}",
                                         "business": f"all{BIZ}"},
                            "status": "away", "away": [a.sid]}, path
        assert b'/assets/js/pages/presence.js' in resp.body, path
        assert b'id="me-status"' in resp.body, path
