"""Waiting visitors are served as soon as someone can serve them (issue 9, item 2).

Triggers: an agent comes online (the presence tracker), a place frees under the cap, an
agent is added (and logs in); the decision is atomic (several triggers at once, and two
`Chat`s on two connection pools over the same database, as two server processes would be).
A visitor on "nobody online" (code 3) waits while its window is open; leaving a message or
closing the window takes it out of waiting; everyone still waiting is told its place
(`cu{channel}` `queue`). Every test runs on SQLite and on MariaDB (conftest `db_url`).
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from helpers import db_rows, wait_for
from shop import BIZ, PASSWORD, Shop, Visitor, expect_about, post

import wolive
from realtime.chat.facade import Chat
from store import Store


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """conftest's, plus `chat.max_conversations_per_agent` from an indirect parameter."""
    cap = getattr(request, "param", 0)
    return wolive.load_config(str(write_config(tmp_path, db_url)),
                              {"chat.max_conversations_per_agent": cap})


async def shop(wolive_server: Any, base_url: str, ws_base: str, cfg: dict,
               rule: str = "auto") -> Shop:
    return await Shop.open(wolive_server, base_url, ws_base, cfg.database.url, rule)


async def nobody(s: Shop, vid: str) -> Visitor:
    """A visitor whose window is open (its socket holds `cu{channel}`) while nobody is
    online: code 3, and it waits."""
    v = await s.visitor(vid)
    await wait_for(lambda: db_rows(s.db, "SELECT state FROM wolive_visiter WHERE "
                                   "visiter_id = %s", (vid,))[0]["state"] == "online")
    body = await s.notice(v)
    assert (body["code"], body["msg"]) == (3, "请留言"), body
    assert s.queue(vid) == {"service_id": 0, "state": "normal"}
    return v


def assigned_count(s: Shop) -> int:
    return int(db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_queue WHERE service_id <> 0 "
                       "AND state = 'normal'")[0]["n"])


# ---- an agent comes online -------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_agent_coming_online_serves_nobody_online_visitors_oldest_first(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    v1, v2 = await nobody(s, "v1"), await nobody(s, "v2")
    await s.online(a)  # the presence tracker writes anna online: the waiting are hers
    for v in (v1, v2):
        card = (await v.sock.expect("cu_notice", "cu" + v.boot["channel"]))["data"]
        assert card["service_id"] == a.sid and card["nick_name"] == "Anna"
        await expect_about(a.sock, "on_notice", f"ud{a.sid}", v.vid)
        assert s.queue(v.vid) == {"service_id": a.sid, "state": "normal"}
    # The console's list has them; the waiting list is empty.
    _, body = await a.client.json("/admin/set/getchats")
    assert sorted(r["visiter_id"] for r in body["data"]) == ["v1", "v2"]
    _, body = await a.client.json("/admin/set/getwait")
    assert body["data"] == []
    # They can talk now.
    _, body = await v1.client.json("/admin/event/chats", "POST",
                                   form={**v1.ids, "content": "hello"})
    assert body["code"] == 0 and body["data"]["service_id"] == a.sid


@pytest.mark.parametrize("cfg", [2], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_second_agent_online_takes_up_to_the_cap_and_the_rest_learn_their_place(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    for vid in ("busy1", "busy2"):
        assert (await s.notice(await s.visitor(vid)))["data"]["service_id"] == a.sid
    waiting = [await s.visitor(f"w{n}") for n in (1, 2, 3)]
    for n, v in enumerate(waiting, 1):
        assert (await s.notice(v))["data"] == {"position": n}
    await s.online(b)
    for v in waiting[:2]:
        assert (await v.sock.expect("cu_notice"))["data"]["service_id"] == b.sid
    third = waiting[2]
    assert (await third.sock.expect("queue", "cu" + third.boot["channel"]))["data"] == {
        "position": 1}
    assert s.queue("w3") == {"service_id": 0, "state": "normal"}
    assert assigned_count(s) == 4


@pytest.mark.gen_test(timeout=30)
async def test_claim_rule_agent_online_turns_nobody_online_into_queue_places(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a = await s.agent("anna")
    v1, v2 = await nobody(s, "v1"), await nobody(s, "v2")
    await s.online(a)
    assert (await v1.sock.expect("queue"))["data"] == {"position": 1}
    assert (await v2.sock.expect("queue"))["data"] == {"position": 2}
    _, body = await a.client.json("/admin/set/getwait")
    assert [(r["visiter_id"], r["position"]) for r in body["data"]] == [("v1", 1), ("v2", 2)]
    # A claim: the claimed one is connected, the other moves up at once.
    assert (await post(a, "/admin/set/get", visiter_id="v1"))[1]["code"] == 0
    assert (await v1.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    assert (await v2.sock.expect("queue"))["data"] == {"position": 1}
    assert s.queue("v2") == {"service_id": 0, "state": "normal"}


# ---- a place frees under the cap ---------------------------------------------------------------

@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_freed_place_goes_to_the_oldest_and_the_others_move_up_live(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    await s.online(a)
    assert (await s.notice(await s.visitor("v1")))["data"]["service_id"] == a.sid
    v2, v3, v4 = await s.visitor("v2"), await s.visitor("v3"), await s.visitor("v4")
    for n, v in enumerate((v2, v3, v4), 1):
        assert (await s.notice(v))["data"] == {"position": n}
    assert (await post(a, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    assert (await v2.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    assert (await v3.sock.expect("queue"))["data"] == {"position": 1}
    assert (await v4.sock.expect("queue"))["data"] == {"position": 2}
    # Blacklisting frees a place too.
    assert (await post(a, "/admin/set/blacklist", visiter_id="v2"))[1]["code"] == 0
    assert (await v3.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    assert (await v4.sock.expect("queue"))["data"] == {"position": 1}
    assert assigned_count(s) == 1


# ---- an agent is added -----------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_an_added_agent_serves_the_waiting_as_soon_as_its_console_opens(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    from helpers import Client
    s = await shop(wolive_server, base_url, ws_base, cfg)
    await s.online(s.boss)
    assert (await s.notice(await s.visitor("v1")))["data"]["service_id"] == 1
    v2 = await s.visitor("v2")
    assert (await s.notice(v2))["data"] == {"position": 1}
    code, body = await post(s.boss, "/admin/manager/registForService", user_name="newbie",
                            nick_name="Newbie", password=PASSWORD, password2=PASSWORD)
    assert (code, body["code"]) == (200, 0), body
    sid = body["data"]["service_id"]
    # Added, not yet at work: nobody is given to an agent who is offline.
    assert s.queue("v2") == {"service_id": 0, "state": "normal"}
    client = Client(base_url)
    assert (await client.login("newbie", PASSWORD)).code == 302
    from shop import Agent
    newbie = Agent(sid, "newbie", BIZ, client)
    await s.online(newbie)
    assert (await v2.sock.expect("cu_notice"))["data"]["service_id"] == sid
    assert s.queue("v2") == {"service_id": sid, "state": "normal"}


# ---- a switch makes service possible again ---------------------------------------------------

@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_switching_claim_to_auto_serves_the_waiting_at_once_in_order_up_to_the_cap(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """Under `claim` visitors wait to be claimed; a manager switches the business to `auto`
    (`/admin/manager/switches`, the settings page's switch): the oldest go to the online
    agents with room at once, one each (cap 1), their windows told; the rest move up."""
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    waiting = [await s.visitor(f"w{n}") for n in (1, 2, 3)]
    for n, v in enumerate(waiting, 1):
        assert (await s.notice(v))["data"] == {"position": n}
    # Another switch changes nothing for them.
    code, body = await post(s.boss, "/admin/manager/switches", voice_state="close")
    assert (code, body["code"]) == (200, 0), body
    assert assigned_count(s) == 0

    code, body = await post(s.boss, "/admin/manager/switches", distribution_rule="auto")
    assert (code, body["code"], body["data"]["distribution_rule"]) == (200, 0, "auto"), body
    got = {}
    for v in waiting[:2]:
        card = (await v.sock.expect("cu_notice", "cu" + v.boot["channel"]))["data"]
        got[v.vid] = card["service_id"]
        assert s.queue(v.vid) == {"service_id": card["service_id"], "state": "normal"}
        moved = await expect_about(a.sock, "claimed", f"all{BIZ}", v.vid)
        assert moved["data"]["reason"] == "assigned"
    assert sorted(got.values()) == sorted([a.sid, b.sid])  # one each: the cap
    third = waiting[2]
    assert (await third.sock.expect("queue", "cu" + third.boot["channel"]))["data"] == {
        "position": 1}
    assert s.queue("w3") == {"service_id": 0, "state": "normal"}
    assert assigned_count(s) == 2
    _, body = await a.client.json("/admin/set/getwait")
    assert [(r["visiter_id"], r["position"]) for r in body["data"]] == [("w3", 1)]


@pytest.mark.parametrize("how", ["switches", "business_state"])
@pytest.mark.gen_test(timeout=40)
async def test_opening_a_closed_business_serves_those_who_waited(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, how: str) -> None:
    """A visitor waits (nobody online); the super_manager closes the business; an agent
    comes online, but a closed business serves nobody. Opening it again (the switch, or
    `/admin/business/state`) hands the visitor to the agent at once."""
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    v1 = await nobody(s, "v1")
    code, body = await post(s.boss, "/admin/business/state", business_id=BIZ, state="close")
    assert (code, body["code"]) == (200, 0), body
    await s.online(a)
    assert (await s.notice(await s.visitor("late", listen=False)))["code"] == 1
    assert s.queue("v1") == {"service_id": 0, "state": "normal"}

    if how == "switches":
        code, body = await post(s.boss, "/admin/manager/switches", state="open")
    else:
        code, body = await post(s.boss, "/admin/business/state", business_id=BIZ,
                                state="open")
    assert (code, body["code"]) == (200, 0), body
    card = (await v1.sock.expect("cu_notice", "cu" + v1.boot["channel"]))["data"]
    assert card["service_id"] == a.sid
    assert s.queue("v1") == {"service_id": a.sid, "state": "normal"}
    await expect_about(a.sock, "on_notice", f"ud{a.sid}", "v1")


# ---- leaving the line --------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_a_visitor_who_left_a_message_is_not_pulled_back(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    v1, v2 = await nobody(s, "v1"), await nobody(s, "v2")
    form = {"business_id": BIZ, "name": "Wang", "moblie": "13800000000", "content": "call me"}
    # A malformed id, or someone else's channel: refused, nothing stored, still waiting.
    code, body = await v1.client.json("/admin/event/message", "POST", form={
        **form, "visiter_id": "no spaces!", "channel": v1.boot["channel"]})
    assert (code, body["code"]) == (400, 1), body
    code, body = await v1.client.json("/admin/event/message", "POST", form={
        **form, "visiter_id": "v1", "channel": v2.boot["channel"]})
    assert (code, body["code"]) == (403, 3), body
    assert db_rows(s.db, "SELECT * FROM wolive_message") == []
    assert s.queue("v1") == {"service_id": 0, "state": "normal"}
    code, body = await v1.client.json("/admin/event/message", "POST", form={
        **form, "visiter_id": "v1", "channel": v1.boot["channel"]})
    assert (code, body["code"]) == (200, 0), body
    assert s.queue("v1") is None  # out of waiting; the message is on the board
    assert len(db_rows(s.db, "SELECT * FROM wolive_message")) == 1
    await s.online(a)
    assert (await v2.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    _, body = await a.client.json("/admin/set/getchats")
    assert [r["visiter_id"] for r in body["data"]] == ["v2"]
    assert s.queue("v1") is None
    await v1.sock.nothing(0.3)


@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_a_closed_window_stops_waiting(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    await s.online(a)
    assert (await s.notice(await s.visitor("v1")))["data"]["service_id"] == a.sid
    v2, v3 = await s.visitor("v2"), await s.visitor("v3")
    assert (await s.notice(v2))["data"] == {"position": 1}
    assert (await s.notice(v3))["data"] == {"position": 2}
    assert v2.sock is not None
    v2.sock.close()  # after the presence grace, v2 is offline and out of the line
    left = await expect_about(a.sock, "claimed", f"all{BIZ}", "v2", timeout=15)
    assert left["data"] == {"visiter_id": "v2", "service_id": 0, "nick_name": "",
                            "reason": "left"}
    assert (await v3.sock.expect("queue"))["data"] == {"position": 1}
    assert s.queue("v2") is None
    # The freed place goes to v3, not to the window that closed.
    assert (await post(a, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    assert (await v3.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    # Coming back (the same browser: its identity token), v2 queues again, at the back.
    assert (await s.notice(v2))["data"] == {"position": 1}


# ---- atomic -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_simultaneous_triggers_with_cap_1_assign_exactly_one(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    for n in range(5):
        await s.notice(await s.visitor(f"v{n}", listen=False))
    # anna is online in the database (as another process's tracker would write it), and
    # every trigger fires at once.
    db_rows(s.db, "UPDATE wolive_service SET state = 'online' WHERE service_id = %s", (a.sid,))
    chat = wolive_server.chat
    got = await asyncio.gather(*[chat.assign_waiting(BIZ) for _ in range(6)],
                               *[chat.agent_available(a.sid) for _ in range(6)])
    assert sum(got) == 1
    assert assigned_count(s) == 1
    assert s.queue("v0") == {"service_id": a.sid, "state": "normal"}


@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=60)
async def test_two_processes_on_one_database_never_over_assign(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """A second `Chat` with its own connection pool on the same database stands for a
    second server process: only the database's lock is shared."""
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    for n in range(8):
        await s.notice(await s.visitor(f"v{n}", listen=False))
    other_store = await Store.open(cfg.database.url, base_dir=cfg.base_dir)
    try:
        other = Chat(other_store, wolive_server.hub, wolive_server.config.server.channel_secret,
                     max_conversations_per_agent=1)
        db_rows(s.db, "UPDATE wolive_service SET state = 'online' WHERE service_id IN "
                "(%s, %s)", (a.sid, b.sid))
        chats = [wolive_server.chat, other]
        got = await asyncio.gather(*[chats[n % 2].assign_waiting(BIZ) for n in range(12)])
        assert sum(got) == 2  # two agents, one place each
        rows = db_rows(s.db, "SELECT service_id, COUNT(*) AS n FROM wolive_queue WHERE "
                       "service_id <> 0 AND state = 'normal' GROUP BY service_id "
                       "ORDER BY service_id")
        assert [(r["service_id"], r["n"]) for r in rows] == [(a.sid, 1), (b.sid, 1)]
        assert s.queue("v0")["service_id"] and s.queue("v1")["service_id"]  # type: ignore
    finally:
        await other_store.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_nobody_online_visitor_joins_the_waiting_list_like_a_queued_one(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    from helpers import PusherSocket
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a = await s.agent("anna")
    # A console that watches the business's channel without being online (no kefu{id}).
    sock = await PusherSocket.connect(ws_base, cookie=a.client.cookie_header())
    assert (await sock.subscribe(f"all{BIZ}"))["event"].endswith("subscription_succeeded")
    v1 = await nobody(s, "v1")
    joined = await sock.expect("on_notice", f"all{BIZ}")
    assert joined["data"]["visiter_id"] == "v1" and joined["data"]["channel"] == \
        v1.boot["channel"]
    # Asking again keeps its place and tells nobody again.
    assert (await s.notice(v1))["code"] == 3
    await sock.nothing(0.3)
    _, body = await a.client.json("/admin/set/getwait")
    assert [(r["visiter_id"], r["position"]) for r in body["data"]] == [("v1", 1)]


@pytest.mark.gen_test(timeout=30)
async def test_after_a_restart_a_window_that_never_comes_back_leaves_the_line(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """At start-up the server holds the windows of visitors who were waiting
    (`expect_back`, wired in wolive.make_app): one that reconnects keeps its place, one
    that does not leaves the line."""
    from helpers import PusherSocket
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    watcher = await PusherSocket.connect(ws_base, cookie=a.client.cookie_header())
    assert (await watcher.subscribe(f"all{BIZ}"))["event"].endswith("succeeded")
    # Waiting when the server stopped (their windows were never seen by this server, nor
    # their notices: that server's own hold on them, `waiting_listeners`, is gone with it).
    wolive_server.chat.waiting_listeners.clear()
    gone, back = await s.visitor("gone", listen=False), await s.visitor("back", listen=False)
    for v in (gone, back):
        assert (await s.notice(v))["code"] == 3
    channels = await wolive_server.store.waiting_visitor_channels()
    assert channels == [gone.boot["channel"], back.boot["channel"]]
    # A real server waits WAITING_RECONNECT_S; here a moment.
    wolive_server.presence.expect_back(["cu" + c for c in channels], 0.5)
    sock = await PusherSocket.connect(ws_base)
    assert (await sock.subscribe("cu" + back.boot["channel"]))["event"].endswith("succeeded")
    left = await expect_about(watcher, "claimed", f"all{BIZ}", "gone", timeout=10)
    assert left["data"]["reason"] == "left"
    assert s.queue("gone") is None
    assert s.queue("back") == {"service_id": 0, "state": "normal"}
    # The window that came back is online like any other (the agents see it so).
    await wait_for(lambda: db_rows(s.db, "SELECT state FROM wolive_visiter WHERE "
                                   "visiter_id = 'back'")[0]["state"] == "online")


@pytest.mark.gen_test(timeout=30)
async def test_a_visitor_without_a_window_does_not_wait_for_ever(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Put in the line by an API call alone (no socket ever holds its `cu{channel}`), a
    visitor leaves it once its window had its time (WAITING_RECONNECT_S, here a moment):
    the consoles drop it (`claimed`, reason "left"). One whose window holds the channel
    keeps its place; under `claim` (code 2) and with nobody online (code 3) alike."""
    from helpers import PusherSocket
    monkeypatch.setattr(wolive, "WAITING_RECONNECT_S", 0.5)
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a = await s.agent("anna")
    watcher = await PusherSocket.connect(ws_base, cookie=a.client.cookie_header())
    assert (await watcher.subscribe(f"all{BIZ}"))["event"].endswith("succeeded")
    ghost, real = await s.visitor("ghost3", listen=False), await nobody(s, "real3")
    assert (await s.notice(ghost))["code"] == 3
    left = await expect_about(watcher, "claimed", f"all{BIZ}", "ghost3", timeout=10)
    assert left["data"]["reason"] == "left"
    assert s.queue("ghost3") is None
    await s.online(a)
    ghost = await s.visitor("ghost2", listen=False)
    assert (await s.notice(ghost))["code"] == 2
    left = await expect_about(watcher, "claimed", f"all{BIZ}", "ghost2", timeout=10)
    assert left["data"]["reason"] == "left"
    assert s.queue("ghost2") is None
    assert s.queue("real3") == {"service_id": 0, "state": "normal"}
    assert real.sock is not None


@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_last_agent_going_offline_tells_the_waiting_nobody_is_online(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """Queued under the cap (code 2), then the last agent goes offline: every waiting
    window is told at once (`queue` `{position: 0}`: nobody online) instead of keeping a
    place in a line nobody serves; the position URL and a new notice say the same."""
    wolive_server.presence.grace_s = 0.3
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    await s.online(a)
    assert (await s.notice(await s.visitor("busy1")))["data"]["service_id"] == a.sid
    waiting = [await s.visitor(f"w{n}") for n in (1, 2)]
    for n, v in enumerate(waiting, 1):
        assert (await s.notice(v))["data"] == {"position": n}
    assert a.sock is not None
    a.sock.close()
    await wait_for(lambda: s.state(a) == "offline", timeout=10)
    for v in waiting:
        frame = await v.sock.expect("queue", "cu" + v.boot["channel"], 10)
        assert frame["data"] == {"position": 0}
        _, body = await v.client.json("/admin/event/position", form=v.ids)
        assert body["data"] == {"position": 0, "state": "waiting", "service_id": 0}
    # Asking again: nobody online (code 3), still waiting for the next agent.
    assert (await s.notice(waiting[0]))["code"] == 3
    assert s.queue("w1") == {"service_id": 0, "state": "normal"}
