"""Who gets a visitor: `/admin/event/notice` under `auto` and `claim`, the per-agent cap,
`special`, the atomic claim (`/admin/set/get`), the queue position, and waiting visitors'
messages. Every test runs on SQLite and on MariaDB (conftest `db_url`)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import write_config
from helpers import Client, db_rows, wait_for
from shop import BIZ, Shop, expect_about, post

import wolive
from realtime.chat.assignment import pick_agent


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """conftest's, plus `chat.max_conversations_per_agent` from an indirect parameter."""
    cap = getattr(request, "param", 0)
    return wolive.load_config(str(write_config(tmp_path, db_url)),
                              {"chat.max_conversations_per_agent": cap})


async def shop(wolive_server: Any, base_url: str, ws_base: str, cfg: dict,
               rule: str = "auto") -> Shop:
    return await Shop.open(wolive_server, base_url, ws_base, cfg.database.url, rule)


# ---- the choice, as a pure function ------------------------------------------------------

def test_pick_agent_rules() -> None:
    def a(sid: int, load: int, idle: int) -> dict[str, int]:
        return {"service_id": sid, "load": load, "idle_since_ms": idle}
    assert pick_agent([]) is None
    assert pick_agent([a(1, 2, 0), a(2, 1, 999)]) == 2          # fewest open first
    assert pick_agent([a(1, 1, 500), a(2, 1, 100)]) == 2        # tie: idle longest
    assert pick_agent([a(3, 1, 100), a(2, 1, 100)]) == 2        # full tie: lowest id
    assert pick_agent([a(1, 2, 0), a(2, 3, 0)], cap=3) == 1
    assert pick_agent([a(1, 3, 0), a(2, 3, 0)], cap=3) is None  # everyone at the cap
    assert pick_agent([a(1, 30, 0)], cap=0) == 1                # 0 = no cap


# ---- auto ----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_auto_balances_load_then_idle_longest(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    got = {}

    async def arrive(vid: str) -> None:
        v = await s.visitor(vid)
        body = await s.notice(v)
        assert body["code"] == 0, body
        got[vid] = body["data"]["service_id"]
        # The visitor's window learns its agent; the agent's console learns its visitor.
        assert (await v.sock.expect("cu_notice"))["data"]["service_id"] == got[vid]
        agent = a if got[vid] == a.sid else b
        await expect_about(agent.sock, "on_notice", f"ud{agent.sid}", vid)

    await arrive("v1")  # 0 - 0, both never busy: the lower id
    await arrive("v2")  # 1 - 0: the one with fewer open conversations
    # 1 - 1; anna was given v1 before bert got v2, but anna has replied since (a reply is
    # activity), so bert is the one idle longest.
    assert (await post(a, "/admin/set/chats", visiter_id="v1", content="hi"))[1]["code"] == 0
    await arrive("v3")
    await arrive("v4")  # 1 - 2
    assert got == {"v1": a.sid, "v2": b.sid, "v3": b.sid, "v4": a.sid}
    assert s.queue("v3") == {"service_id": b.sid, "state": "normal"}


@pytest.mark.gen_test(timeout=30)
async def test_tie_goes_to_the_agent_idle_longest(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    assert (await s.notice(await s.visitor("v1")))["data"]["service_id"] == a.sid
    assert (await post(a, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    # Both have 0 open conversations; by id anna would win, but anna just worked.
    assert (await s.notice(await s.visitor("v2")))["data"]["service_id"] == b.sid
    assert (await post(b, "/admin/set/close", visiter_id="v2"))[1]["code"] == 0
    assert (await s.notice(await s.visitor("v3")))["data"]["service_id"] == a.sid
    times = db_rows(s.db, "SELECT service_id, last_assigned_ms FROM wolive_service_load "
                    "ORDER BY service_id")
    assert [r["service_id"] for r in times] == [a.sid, b.sid]
    assert times[0]["last_assigned_ms"] > times[1]["last_assigned_ms"] > 0


@pytest.mark.gen_test(timeout=30)
async def test_returning_visitor_goes_back_to_its_agent(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    v1 = await s.visitor("v1")
    assert (await s.notice(v1))["data"]["service_id"] == a.sid
    assert (await s.notice(await s.visitor("v2")))["data"]["service_id"] == b.sid
    assert (await s.notice(await s.visitor("v3")))["data"]["service_id"] == a.sid
    assert (await post(a, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    # 1 - 1 open, bert idle longest: a new visitor would go to bert ...
    assert pick_agent(await s.server.store.online_services_with_load(BIZ)) == b.sid
    # ... but v1 comes back to anna: opening the window shows the ended conversation
    # (nothing written), and writing again opens it with her.
    body = await s.notice(v1)
    assert (body["code"], body["data"]["service_id"]) == (0, a.sid)
    assert s.queue("v1") == {"service_id": a.sid, "state": "complete"}
    _, body = await v1.client.json("/admin/event/chats", "POST",
                                   form={**v1.ids, "content": "back"})
    assert body["code"] == 0, body
    assert s.queue("v1") == {"service_id": a.sid, "state": "normal"}
    # A reload while the conversation is open stays with anna too.
    assert (await s.notice(v1))["data"]["service_id"] == a.sid

    # anna goes offline (presence, after its grace): v1 goes to bert, and anna's console
    # is told to drop it.
    a.sock.close()
    await wait_for(lambda: s.state(a) == "offline", timeout=10)
    body = await s.notice(v1)
    assert body["data"]["service_id"] == b.sid
    assert s.queue("v1") == {"service_id": b.sid, "state": "normal"}


@pytest.mark.parametrize("cfg", [1], indirect=True)
@pytest.mark.gen_test(timeout=30)
async def test_cap_makes_visitors_wait_and_a_freed_place_takes_the_oldest(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    assert cfg.chat.max_conversations_per_agent == 1
    assert wolive_server.chat.max_conversations_per_agent == 1
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    v1, v2 = await s.visitor("v1"), await s.visitor("v2")
    assert (await s.notice(v1))["data"]["service_id"] == a.sid
    assert (await s.notice(v2))["data"]["service_id"] == b.sid
    v3, v4 = await s.visitor("v3"), await s.visitor("v4")
    body = await s.notice(v3)
    assert (body["code"], body["msg"], body["data"]) == (2, "等待认领", {"position": 1})
    assert (await a.sock.expect("on_notice", f"all{BIZ}"))["data"]["visiter_id"] == "v3"
    assert (await s.notice(v4))["data"] == {"position": 2}
    assert (await s.notice(v3))["data"] == {"position": 1}  # asking again keeps the place
    assert s.queue("v3") == {"service_id": 0, "state": "normal"}
    _, body = await v4.client.json("/admin/event/position", form=v4.ids)
    assert body["data"] == {"position": 2, "state": "waiting", "service_id": 0}

    # anna closes v1: the oldest waiting visitor (v3) is hers, and everyone is told.
    assert (await post(a, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    assert (await v3.sock.expect("cu_notice"))["data"]["service_id"] == a.sid
    await expect_about(a.sock, "on_notice", f"ud{a.sid}", "v3")
    claimed = await b.sock.expect("claimed", f"all{BIZ}")
    assert claimed["data"]["visiter_id"] == "v3" and claimed["data"]["service_id"] == a.sid
    assert s.queue("v3") == {"service_id": a.sid, "state": "normal"}
    _code, body = await v4.client.json("/admin/event/position", form=v4.ids)
    assert body["data"]["position"] == 1
    # A returning visitor whose agent is full waits too.
    assert (await s.notice(v1))["code"] == 2
    # A personal link is not capped.
    v5 = await s.visitor("v5")
    body = await s.notice(v5, special=str(b.sid))
    assert (body["code"], body["data"]["service_id"]) == (0, b.sid)
    # The console's waiting list, oldest first.
    _, body = await s.boss.client.json("/admin/set/getwait")
    assert [r["visiter_id"] for r in body["data"]] == ["v4", "v1"]
    assert [r["position"] for r in body["data"]] == [1, 2]


@pytest.mark.gen_test(timeout=30)
async def test_special_forces_an_online_agent_of_the_business(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a, b, c = await s.agent("anna"), await s.agent("bert"), await s.agent("carl")
    stranger = await s.agent("zed", business_id="shop2")
    await s.online(a)
    await s.online(b)
    await s.online(stranger)
    body = await s.notice(await s.visitor("v1"), special=str(b.sid))
    assert body["data"]["service_id"] == b.sid  # load-balancing alone picks anna
    # Offline (carl) or of another business (zed): ignored, the usual rule applies.
    v2 = await s.visitor("v2")
    assert (await s.notice(v2, special=str(c.sid)))["data"]["service_id"] == a.sid
    assert (await s.notice(await s.visitor("v3"), special=str(stranger.sid)))["data"][
        "service_id"] in (a.sid, b.sid)
    # special moves an open conversation (the same browser again); the old agent's
    # console drops it.
    body = await s.notice(v2, special=str(b.sid))
    assert body["data"]["service_id"] == b.sid
    switch = await a.sock.expect("getswitch", f"kefu{a.sid}")
    assert switch["data"]["visiter_id"] == "v2" and switch["data"]["service_id"] == b.sid
    # Under `claim`, special still forces its agent (no queue).
    db_rows(s.db, "UPDATE wolive_business SET distribution_rule = 'claim'")
    body = await s.notice(await s.visitor("v4"), special=str(a.sid))
    assert (body["code"], body["data"]["service_id"]) == (0, a.sid)


@pytest.mark.gen_test(timeout=30)
async def test_a_bad_special_in_the_page_is_left_out_and_the_visitor_is_served(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    """A site's snippet with a `special` that is no agent id (letters, other digits, too
    big): the chat window's boot leaves it out, so the window's notice is an ordinary one
    (code 0), not a 400 the window would show as "not taking chats". A good one is passed
    on as the number."""
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    await s.online(a)
    for n, bad in enumerate(("abc", "\u0663", "99999999999999999999", "-1", " 7")):
        v = await s.visitor(f"vbad{n}", special=bad)
        assert v.boot["special"] is None, (bad, v.boot)
        assert (await s.notice(v))["data"]["service_id"] == a.sid
    v = await s.visitor("vgood", special=str(a.sid))
    assert v.boot["special"] == a.sid


@pytest.mark.gen_test(timeout=30)
async def test_nobody_online_is_code_3_under_both_rules(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    await s.agent("anna")
    await s.agent("bert", level="manager")
    for rule in ("auto", "claim"):
        db_rows(s.db, "UPDATE wolive_business SET distribution_rule = %s", (rule,))
        body = await s.notice(await s.visitor(f"v-{rule}", listen=False))
        assert (body["code"], body["msg"]) == (3, "请留言")
    # Issue 9: they wait all the same (the first agent online serves them), oldest first.
    assert db_rows(s.db, "SELECT visiter_id, service_id, state FROM wolive_queue "
                   "ORDER BY qid") == [
        {"visiter_id": "v-auto", "service_id": 0, "state": "normal"},
        {"visiter_id": "v-claim", "service_id": 0, "state": "normal"}]


# ---- claim -----------------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=30)
async def test_claim_rule_queue_position_and_claim(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a, b = await s.agent("anna"), await s.agent("bert")
    await s.online(a)
    await s.online(b)
    v1, v2 = await s.visitor("v1", visiter_name="Ann"), await s.visitor("v2")
    body = await s.notice(v1)
    assert (body["code"], body["data"]) == (2, {"position": 1})
    pushed = await b.sock.expect("on_notice", f"all{BIZ}")
    assert pushed["data"]["visiter_id"] == "v1" and pushed["data"]["visiter_name"] == "Ann"
    assert (await s.notice(v2))["data"] == {"position": 2}
    assert (await s.notice(v1))["data"] == {"position": 1}  # a reload keeps its place
    code, body = await v1.client.json("/admin/event/position", form=v1.ids)
    assert (code, body["code"], body["data"]) == (
        200, 0, {"position": 1, "state": "waiting", "service_id": 0})

    code, body = await a.client.json("/admin/set/getwait")
    assert [(r["visiter_id"], r["position"]) for r in body["data"]] == [("v1", 1), ("v2", 2)]
    assert body["data"][0]["visiter_name"] == "Ann" and body["data"][0]["channel"] == \
        v1.boot["channel"]

    code, body = await post(a, "/admin/set/get", visiter_id="v1")
    assert (code, body["code"]) == (200, 0), body
    assert body["data"]["visiter_id"] == "v1" and body["data"]["service_id"] == a.sid
    card = (await v1.sock.expect("cu_notice"))["data"]
    assert card["service_id"] == a.sid and card["nick_name"] == "Anna" and "password" not in card
    claimed = await b.sock.expect("claimed", f"all{BIZ}")
    assert claimed["data"] == {"visiter_id": "v1", "service_id": a.sid, "nick_name": "Anna",
                               "reason": "claimed"}
    assert s.queue("v1") == {"service_id": a.sid, "state": "normal"}
    # The loser is told; the list and positions move on.
    code, body = await post(b, "/admin/set/get", visiter_id="v1")
    assert (code, body["code"]) == (409, 2) and "claimed" in body["msg"]
    code, body = await v2.client.json("/admin/event/position", form=v2.ids)
    assert body["data"]["position"] == 1
    code, body = await v1.client.json("/admin/event/position", form=v1.ids)
    assert body["data"] == {"position": 0, "state": "assigned", "service_id": a.sid}
    code, body = await a.client.json("/admin/set/getchats")
    assert [r["visiter_id"] for r in body["data"]] == ["v1"]
    # The winner talks to it; a returning claimed visitor stays with its agent.
    assert (await post(a, "/admin/set/chats", visiter_id="v1", content="hi"))[1]["code"] == 0
    assert (await s.notice(v1))["data"]["service_id"] == a.sid


@pytest.mark.gen_test(timeout=60)
async def test_ten_agents_claim_one_visitor_exactly_one_wins(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    agents = [await s.agent(f"agent{n}") for n in range(10)]
    watcher = await s.online(s.boss)  # sees the business's events, claims nothing
    v = await s.visitor("contested")
    assert (await s.notice(v))["code"] == 2
    await watcher.expect("on_notice", f"all{BIZ}")

    results = await asyncio.gather(*(post(ag, "/admin/set/get", visiter_id="contested")
                                     for ag in agents))
    winners = [ag for ag, (code, body) in zip(agents, results) if body["code"] == 0]
    assert len(winners) == 1, results
    losers = [(code, body["code"]) for code, body in results if body["code"] != 0]
    assert losers == [(409, 2)] * 9
    winner = winners[0]
    assert s.queue("contested") == {"service_id": winner.sid, "state": "normal"}
    assert (await v.sock.expect("cu_notice"))["data"]["service_id"] == winner.sid
    assert (await watcher.expect("claimed", f"all{BIZ}"))["data"]["service_id"] == winner.sid
    await v.sock.nothing(0.3)  # one cu_notice only
    await watcher.nothing(0.3)  # one claimed only


@pytest.mark.gen_test(timeout=30)
async def test_waiting_visitor_messages_are_stored_and_shown_to_all(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    a = await s.agent("anna")
    await s.online(a)
    v = await s.visitor("v1")
    assert (await s.notice(v))["code"] == 2
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": "anyone there?"})
    assert (code, body["code"]) == (200, 0)
    msg = (await a.sock.expect("cu-event", f"all{BIZ}"))["data"]["message"]
    assert msg["content"] == "anyone there?" and msg["service_id"] == 0
    assert db_rows(s.db, "SELECT service_id, direction, content FROM wolive_chats") == [
        {"service_id": 0, "direction": "to_service", "content": "anyone there?"}]
    code, body = await a.client.json("/admin/set/getwait")
    assert body["data"][0]["last_content"] == "anyone there?" and body["data"][0]["unread"] == 1
    # Any agent may read a waiting visitor; after the claim it is the winner's.
    code, body = await a.client.json("/admin/set/history", form={"visiter_id": "v1"})
    assert [m["content"] for m in body["data"]] == ["anyone there?"]
    assert (await post(a, "/admin/set/get", visiter_id="v1"))[1]["code"] == 0
    code, body = await a.client.json("/admin/set/getchats")
    assert body["data"][0]["unread"] == 1
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": "thanks"})
    assert (await a.sock.expect("cu-event", f"kefu{a.sid}"))["data"]["message"]["content"] \
        == "thanks"


@pytest.mark.gen_test(timeout=30)
async def test_blacklisted_visitor_gets_code_4_and_nothing_is_stored(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg)
    a = await s.agent("anna")
    await s.online(a)
    v = await s.visitor("pest")
    assert (await s.notice(v))["code"] == 0
    assert (await post(a, "/admin/set/blacklist", visiter_id="pest"))[1]["code"] == 0
    body = await s.notice(v)
    assert body["code"] == 4 and body["msg"]
    code, body = await v.client.json("/admin/event/chats", "POST",
                                     form={**v.ids, "content": "spam"})
    assert (code, body["code"]) == (403, 4)
    assert db_rows(s.db, "SELECT * FROM wolive_chats") == []
    code, body = await v.client.json("/admin/event/position", form=v.ids)
    assert body["data"]["state"] == "in_black_list"
    # Under claim too.
    db_rows(s.db, "UPDATE wolive_business SET distribution_rule = 'claim'")
    assert (await s.notice(v))["code"] == 4
    assert s.queue("pest") == {"service_id": a.sid, "state": "in_black_list"}


@pytest.mark.gen_test(timeout=30)
async def test_position_needs_the_visitors_channel(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await shop(wolive_server, base_url, ws_base, cfg, rule="claim")
    await s.online(await s.agent("anna"))
    v = await s.visitor("v1", listen=False)
    code, body = await v.client.json("/admin/event/position", form=v.ids)
    assert body["data"] == {"position": 0, "state": "none", "service_id": 0}
    assert (await s.notice(v))["code"] == 2
    other = await s.visitor("v2", listen=False)
    stranger = Client(base_url)
    for form, status in [({**v.ids, "channel": other.boot["channel"]}, 403),
                         ({**v.ids, "channel": "v" + "0" * 40}, 403),
                         ({"visiter_id": "v1", "business_id": BIZ}, 403),
                         ({"business_id": BIZ, "channel": v.boot["channel"]}, 400),
                         ({**v.ids, "visiter_id": "bad id"}, 400)]:
        code, body = await stranger.json("/admin/event/position", form=form)
        assert code == status and body["code"] != 0 and body["msg"], (form, body)
    # The window's own signed cookie works in place of `channel`.
    code, body = await v.client.json("/admin/event/position",
                                     form={"visiter_id": "v1", "business_id": BIZ})
    assert body["data"]["position"] == 1
