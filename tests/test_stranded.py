"""A visitor whose agent went offline is moved when another agent can take it (a tester's
defect: it stayed with the offline agent for ever).

Stranded: the visitor's open conversation belongs to an agent who is offline (after the
presence hold) while the visitor's window is open, because nobody could take over when the
agent left (everyone offline or full), or the visitor's window was away just then. When an
agent of the business comes online, sets itself available, or a place frees under the cap,
the business's rule applies: `auto` hands it to an agent with room (as a transfer: a
`taken_over` line, `cu_notice` to the window, `handover` to the new agent), `claim` puts it
back in the waiting line. What the visitor wrote meanwhile reaches the new agent. Every test
runs on SQLite and on MariaDB (conftest `db_url`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from helpers import PusherSocket, db_rows, wait_for
from shop import BIZ, Agent, Shop, Visitor, expect_about, get, post, next_line, visitor_state

import wolive
from store import Store

GRACE = 0.3
SUBSCRIBED = "pusher_internal:subscription_succeeded"


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """conftest's, plus `chat.max_conversations_per_agent` from an indirect parameter."""
    cap = getattr(request, "param", 0)
    return wolive.load_config(str(write_config(tmp_path, db_url)),
                              {"chat.max_conversations_per_agent": cap})


@pytest.fixture
def short_grace(wolive_server: Any) -> None:
    wolive_server.presence.grace_s = GRACE


async def next_card(v: Visitor, service_id: int, timeout: float = 10.0) -> dict[str, Any]:
    """The next `cu_notice` naming agent `service_id` (earlier cards skipped)."""
    assert v.sock is not None
    while True:
        card = (await v.sock.expect("cu_notice", timeout=timeout))["data"]
        if card["service_id"] == service_id:
            return card


async def talking_to(s: Shop, agent: Agent, vid: str) -> Visitor:
    """A visitor whose window is open, in a conversation with `agent`."""
    v = await s.visitor(vid)
    await wait_for(lambda: visitor_state(s, vid) == "online")
    body = await s.notice(v, special=str(agent.sid))
    assert body["data"]["service_id"] == agent.sid, body
    return v


async def leaves(s: Shop, agent: Agent) -> None:
    """The agent closes its console: offline after the hold, and the tracker is done with
    it (its `agent_left` ran)."""
    assert agent.sock is not None
    agent.sock.close()
    await wait_for(lambda: s.state(agent) == "offline", timeout=10)
    await s.server.presence.apply(f"kefu{agent.sid}", False)  # waits for its listeners


@pytest.mark.gen_test(timeout=40)
async def test_under_auto_the_next_agent_online_takes_the_stranded_visitor_and_its_messages(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(anna)
    v1 = await talking_to(s, anna, "v1")
    await leaves(s, anna)
    left = await next_line(v1, "agent_left")  # nobody could take over
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "contact"}
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    # Written while stranded: stored (for anna, who is gone).
    code, body = await v1.client.json("/admin/event/chats", "POST",
                                      form={**v1.ids, "content": "anyone there?"})
    assert (code, body["code"], body["data"]["service_id"]) == (200, 0, anna.sid), body
    meanwhile = body["data"]["cid"]

    await s.online(bert)
    # The window learns of bert live, as for a transfer.
    moved = await next_line(v1, "taken_over")
    assert json.loads(moved["content"])["vars"] == {"from": "Anna", "to": "Bert"}
    card = await next_card(v1, bert.sid)
    assert (card["nick_name"], card["state"]) == ("Bert", "online")
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}
    # Bert's console: the conversation arrives, with who left it, and what was written.
    await expect_about(bert.sock, "on_notice", f"ud{bert.sid}", "v1")
    hand = (await expect_about(bert.sock, "handover", f"kefu{bert.sid}", "v1"))["data"]
    assert (hand["reason"], hand["from_service_id"], hand["from_nick_name"]) == (
        "agent_left", anna.sid, "Anna")
    _, body = await get(bert, "/admin/set/getchats")
    [entry] = [c for c in body["data"] if c["visiter_id"] == "v1"]
    assert entry["unread"] == 1
    _, hist = await get(bert, "/admin/set/history", visiter_id="v1")
    assert meanwhile in [m["cid"] for m in hist["data"] if m["content"] == "anyone there?"]
    # From now on the visitor's messages go to bert.
    code, body = await v1.client.json("/admin/event/chats", "POST",
                                      form={**v1.ids, "content": "hello Bert"})
    assert body["data"]["service_id"] == bert.sid
    pushed = await expect_about(bert.sock, "cu-event", f"kefu{bert.sid}", "v1")
    while pushed["data"]["message"]["content"] != "hello Bert":
        pushed = await expect_about(bert.sock, "cu-event", f"kefu{bert.sid}", "v1")


@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=40)
async def test_under_auto_a_full_agent_takes_the_stranded_visitor_once_a_place_frees(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(bert)
    await talking_to(s, bert, "v2")
    await s.online(anna)
    v1 = await talking_to(s, anna, "v1")
    await leaves(s, anna)
    left = await next_line(v1, "agent_left")  # bert is full (cap 1)
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "contact"}
    # Nobody has room: asking again moves nothing.
    assert await wolive_server.chat.assign_waiting(BIZ) == 0
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    # Bert ends his conversation: the freed place is the stranded visitor's.
    assert (await post(bert, "/admin/set/close", visiter_id="v2"))[1]["code"] == 0
    await next_line(v1, "taken_over")
    await next_card(v1, bert.sid)
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=40)
async def test_an_agent_setting_itself_available_takes_the_stranded_visitor(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(bert)
    assert (await post(bert, "/admin/set/status", status="away"))[1]["code"] == 0
    await s.online(anna)
    v1 = await talking_to(s, anna, "v1")
    await leaves(s, anna)
    await next_line(v1, "agent_left")
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}  # bert is away
    assert (await post(bert, "/admin/set/status", status="available"))[1]["code"] == 0
    await next_line(v1, "taken_over")
    await next_card(v1, bert.sid)
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=40)
async def test_under_claim_the_stranded_visitor_waits_to_be_claimed_when_an_agent_comes(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    """Under `claim` an agent who leaves puts its visitors back in the line, but only those
    whose window is open then: one whose window was away (a network blip) stays stranded
    until an agent comes online, who sees it to claim."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url, rule="claim")
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(anna)
    v1 = await s.visitor("v1")
    assert (await s.notice(v1))["code"] == 2
    assert (await post(anna, "/admin/set/get", visiter_id="v1"))[1]["code"] == 0
    assert v1.sock is not None
    v1.sock.close()
    await wait_for(lambda: visitor_state(s, "v1") == "offline", timeout=10)
    await leaves(s, anna)
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    # The window's connection comes back (it stays on anna: nothing tells it otherwise).
    v1.sock = await PusherSocket.connect(ws_base)
    assert (await v1.sock.subscribe("cu" + v1.boot["channel"]))["event"] == SUBSCRIBED
    await wait_for(lambda: visitor_state(s, "v1") == "online")

    await s.online(bert)
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "queue"}
    await expect_about(bert.sock, "on_notice", f"all{BIZ}", "v1")
    assert s.queue("v1") == {"service_id": 0, "state": "normal"}
    _, body = await v1.client.json("/admin/event/position", form=v1.ids)
    assert body["data"] == {"position": 1, "state": "waiting", "service_id": 0}
    assert (await post(bert, "/admin/set/get", visiter_id="v1"))[1]["code"] == 0
    await next_card(v1, bert.sid)


@pytest.mark.gen_test(timeout=40)
async def test_an_agent_expected_back_keeps_its_visitors_until_its_time_is_up(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    """After a restart every agent is offline until its console reconnects: the first
    agent back must not take the others' visitors. Agents who were online are expected
    back (`expect_back`, wired in make_app); one who does not come back in time is handled
    as an agent who left."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna, bert = await s.agent("anna"), await s.agent("bert")
    await s.online(anna)
    v1 = await talking_to(s, anna, "v1")
    await leaves(s, anna)
    await next_line(v1, "agent_left")
    # As at start-up: anna's console is expected back (a real server waits
    # WAITING_RECONNECT_S; here a moment).
    wolive_server.presence.expect_back([f"kefu{anna.sid}"], 1.5)
    await s.online(bert)
    assert await wolive_server.chat.assign_waiting(BIZ) == 0
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    # Not back in time: her visitor is handed over as when an agent leaves.
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "moved"}
    await next_line(v1, "taken_over")
    await next_card(v1, bert.sid)
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=30)
async def test_at_start_up_agents_who_were_online_are_expected_back(cfg: dict) -> None:
    store = await Store.open(cfg.database.url, base_dir=cfg.base_dir)
    await store.add_business(BIZ)
    anna = (await store.add_service(BIZ, "anna", "Anna", "x"))["service_id"]
    bert = (await store.add_service(BIZ, "bert", "Bert", "x"))["service_id"]
    await store.set_service_states({anna: "online"})
    await store.close()
    server = await wolive.make_app(cfg)
    try:
        assert server.presence.settling(f"kefu{anna}")
        assert not server.presence.settling(f"kefu{bert}")
        assert db_rows(cfg.database.url, "SELECT state FROM wolive_service WHERE "
                       "service_id = %s", (anna,)) == [{"state": "offline"}]
    finally:
        await server.stop()
