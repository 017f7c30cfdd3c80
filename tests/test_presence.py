"""Presence: an agent is online while its console holds kefu{id}; written to the database
and pushed on se{id}. A visitor is online while its window holds cu{channel}."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers import PASSWORD, Client, PusherSocket, db_rows, open_visitor_window, wait_for
from realtime.pusher.adapter import run_inline

GRACE = 0.3


def agent_state(db: str) -> str:
    return db_rows(db, "SELECT state FROM wolive_service WHERE service_id = 1")[0]["state"]


@pytest.fixture
def short_grace(wolive_server: Any) -> None:
    wolive_server.presence.grace_s = GRACE


@pytest.mark.gen_test
async def test_agent_presence_written_and_pushed(
        boss: Client, ws_base: str, cfg: dict, short_grace: None) -> None:
    db = cfg.database.url
    agent = boss
    assert agent_state(db) == "offline"
    watcher = await PusherSocket.connect(ws_base)  # a visitor page watching its agent
    assert (await watcher.subscribe("se1"))["event"] == "pusher_internal:subscription_succeeded"

    console = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await console.subscribe("kefu1"))["event"] == "pusher_internal:subscription_succeeded"
    assert (await watcher.expect("geton", "se1"))["data"]["service_id"] == 1
    await wait_for(lambda: agent_state(db) == "online")

    # A second tab, then a reload of one: still online, nothing pushed.
    tab2 = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    await tab2.subscribe("kefu1")
    tab2.close()
    await asyncio.sleep(GRACE * 2)
    assert agent_state(db) == "online"
    await watcher.nothing(0.05)

    # The last tab leaves: offline after the grace, `logout` pushed.
    console.close()
    frame = await watcher.expect("logout", "se1", timeout=GRACE + 3)
    assert frame["data"] == {"service_id": 1, "state": "offline"}
    await wait_for(lambda: agent_state(db) == "offline")


@pytest.mark.gen_test
async def test_reload_within_grace_is_not_a_flap(base_url: str, ws_base: str, cfg: dict,
                                                 wolive_server: Any) -> None:
    """A reload (the channel left, then taken again within the grace) cancels the pending
    offline write: nothing is written or pushed. Driven by events, not by time: the grace is
    long, and the test waits for the server to see each step (was a 0.3 s grace that a
    loaded machine's reconnect could outlast)."""
    presence, hub = wolive_server.presence, wolive_server.hub
    presence.grace_s = 60.0
    db = cfg.database.url
    agent = Client(base_url)
    await agent.install("shop1", "boss", PASSWORD)
    watcher = await PusherSocket.connect(ws_base)
    await watcher.subscribe("se1")
    console = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    await console.subscribe("kefu1")
    await watcher.expect("geton", "se1")
    console.close()
    await wait_for(lambda: not run_inline(hub.occupied("kefu1")))
    assert "kefu1" in presence._timers  # offline is pending, not written
    again = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    await again.subscribe("kefu1")
    await wait_for(lambda: "kefu1" not in presence._timers)
    await watcher.nothing(0.05)
    assert agent_state(db) == "online"


@pytest.mark.gen_test
async def test_stranger_cannot_make_agent_look_online(
        boss: Client, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    db = cfg.database.url
    agent = boss
    stranger = await PusherSocket.connect(ws_base)
    for channel in ("kefu1", "ud1", "allshop1"):
        answer = await stranger.subscribe(channel)
        assert answer["event"] == "pusher:subscription_error", answer
        assert answer["data"]["status"] == 403
    # The agent's own cookie from a foreign page's origin does not count either.
    foreign = await PusherSocket.connect(ws_base, cookie=agent.cookie_header(),
                                         origin="http://evil.example")
    assert (await foreign.subscribe("kefu1"))["event"] == "pusher:subscription_error"
    # Nor from another port of the same host (another origin: the demo site, any other
    # service on the machine), nor a malformed one.
    host, port = base_url.split("://", 1)[1].rsplit(":", 1)
    for origin in (f"http://{host}:{int(port) + 1}", f"http://{host}", f"https://{host}",
                   f"http://{host}:99999", "null"):
        other = await PusherSocket.connect(ws_base, cookie=agent.cookie_header(),
                                           origin=origin)
        answer = await other.subscribe("kefu1")
        assert answer["event"] == "pusher:subscription_error", (origin, answer)
    await asyncio.sleep(GRACE)
    assert agent_state(db) == "offline"
    # From wolive's own origin it counts (the console).
    own = await PusherSocket.connect(ws_base, cookie=agent.cookie_header(), origin=base_url)
    assert (await own.subscribe("kefu1"))["event"] == "pusher_internal:subscription_succeeded"
    await wait_for(lambda: agent_state(db) == "online")


@pytest.mark.gen_test
async def test_visitor_presence_written_and_pushed_to_its_agent(
        boss: Client, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    db = cfg.database.url
    agent = boss
    console = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    await console.subscribe("kefu1")
    await wait_for(lambda: agent_state(db) == "online")
    visitor, boot = await open_visitor_window(base_url, "shop1", "walker")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "walker", "business_id": "shop1", "channel": boot["channel"]})
    assert body["code"] == 0

    window = await PusherSocket.connect(ws_base)
    await window.subscribe("cu" + boot["channel"])
    frame = await console.expect("geton", "kefu1")
    assert frame["data"]["visiter_id"] == "walker"

    def visitor_state() -> str:
        return db_rows(db, "SELECT state FROM wolive_visiter WHERE visiter_id='walker'")[0]["state"]
    await wait_for(lambda: visitor_state() == "online")
    window.close()
    assert (await console.expect("logout", "kefu1", timeout=GRACE + 3))["data"]["visiter_id"] \
        == "walker"
    await wait_for(lambda: visitor_state() == "offline")
