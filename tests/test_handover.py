"""Issue 9, items 3 and 5: a transfer says so (system lines in the transcript, a note and a
notice for the receiving agent only), and a visitor is told when its agent leaves (moved
under `auto`, back to the queue under `claim`, else offered the contact form, whose details
are kept with the conversation). Every test runs on SQLite and on MariaDB."""
from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import db_rows, wait_for
from shop import BIZ, Agent, Shop, Visitor, expect_about, get, post, next_line, visitor_state

GRACE = 0.3
NOTE = "VIP customer, wants a refund for order 42"


@pytest.fixture
def short_grace(wolive_server: Any) -> None:
    wolive_server.presence.grace_s = GRACE


def system_rows(db: str, vid: str) -> list[dict[str, Any]]:
    rows = db_rows(db, "SELECT cid, service_id, content, direction, state FROM wolive_chats "
                   "WHERE visiter_id = %s AND msg_type = 'system' ORDER BY cid", (vid,))
    for r in rows:
        r["line"] = json.loads(r["content"])
    return rows


async def agents_line(a: Agent, key: str, timeout: float = 10.0) -> dict[str, Any]:
    assert a.sock is not None
    while True:
        m = (await a.sock.expect("cu-event", f"kefu{a.sid}", timeout))["data"]["message"]
        if m.get("msg_type") == "system" and json.loads(m["content"])["key"] == key:
            return m


async def shop_with(server: Any, base_url: str, ws_base: str, cfg: dict, online: tuple[str, ...],
                    rule: str = "auto") -> tuple[Shop, dict[str, Agent], Visitor]:
    """anna (+ the `online` others) online; v1 talks to anna and its window is open."""
    s = await Shop.open(server, base_url, ws_base, cfg.database.url, rule=rule)
    ag = {n: await s.agent(n) for n in ("anna", "bert", "carl")}
    await s.online(ag["anna"])
    v1 = await s.visitor("v1")
    await wait_for(lambda: visitor_state(s, "v1") == "online")
    if rule == "auto":
        body = await s.notice(v1, special=str(ag["anna"].sid))
        assert body["data"]["service_id"] == ag["anna"].sid
    else:
        assert (await s.notice(v1))["code"] == 2
        assert (await post(ag["anna"], "/admin/set/get", visiter_id="v1"))[1]["code"] == 0
    for n in online:
        await s.online(ag[n])
    return s, ag, v1


@pytest.mark.gen_test(timeout=40)
async def test_transfer_writes_lines_and_gives_the_receiver_the_note(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag, v1 = await shop_with(wolive_server, base_url, ws_base, cfg, ("bert",))
    anna, bert = ag["anna"], ag["bert"]
    # A note over 500 characters: refused, nothing written.
    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid,
                            note="x" * 501)
    assert (code, body["code"]) == (400, 1) and "note" in body["msg"]
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    assert system_rows(s.db, "v1") == []

    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid,
                            note=NOTE)
    assert (code, body["code"]) == (200, 0), body
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}
    # One line in the transcript, naming both agents, never unread, without the note.
    rows = system_rows(s.db, "v1")
    assert [r["line"] for r in rows] == [{"key": "transferred",
                                          "vars": {"from": "Anna", "to": "Bert"}}]
    assert rows[0]["state"] == "readed" and rows[0]["service_id"] == bert.sid
    # The note is kept for the agents (a reload must not lose it): one agent-only line
    # (`msg_type` "note"), pushed to the receiving console only.
    notes = db_rows(s.db, "SELECT cid, service_id, content, direction, state, msg_type FROM "
                    "wolive_chats WHERE content LIKE %s", ("%refund%",))
    assert [(n["msg_type"], n["service_id"], n["state"], json.loads(n["content"]))
            for n in notes] == [("note", bert.sid, "readed", {
                "key": "transfer_note", "vars": {"from": "Anna", "to": "Bert",
                                                 "note": NOTE}})]
    assert notes[0]["cid"] > rows[0]["cid"]
    # Pushed to the visitor, the old agent (before getswitch) and the new one.
    seen = await next_line(v1, "transferred")
    assert seen["cid"] == rows[0]["cid"]
    assert (await v1.sock.expect("cu_notice"))["data"]["service_id"] == anna.sid  # its notice
    assert (await v1.sock.expect("cu_notice"))["data"]["service_id"] == bert.sid
    assert (await agents_line(anna, "transferred"))["cid"] == rows[0]["cid"]
    assert (await anna.sock.expect("getswitch", f"kefu{anna.sid}"))["data"]["service_id"] == \
        bert.sid
    assert (await agents_line(bert, "transferred"))["cid"] == rows[0]["cid"]
    # The receiving console's notice: the visitor, who sent it, and the note.
    hand = (await expect_about(bert.sock, "handover", f"kefu{bert.sid}", "v1"))["data"]
    assert hand == {"visiter_id": "v1", "visiter_name": v1.boot["visiter_name"],
                    "from_service_id": anna.sid, "from_nick_name": "Anna", "note": NOTE,
                    "reason": "transferred"}
    # The visitor never got the note: not live, not in its history.
    assert v1.sock is not None
    for frame in v1.sock.pending:
        assert "refund" not in json.dumps(frame, ensure_ascii=False)
    _, hist = await v1.client.json("/admin/event/history", form=v1.ids)
    assert [json.loads(m["content"]) for m in hist["data"] if m["msg_type"] == "system"] == \
        [rows[0]["line"]]
    assert "refund" not in json.dumps(hist, ensure_ascii=False)
    _, hist = await v1.client.json("/admin/event/history", form={**v1.ids, "after": "0"})
    assert "refund" not in json.dumps(hist, ensure_ascii=False)  # nor in its catch-up
    # The receiving agent's transcript has the line and the note (as after a reload).
    _, hist = await get(bert, "/admin/set/history", visiter_id="v1")
    assert rows[0]["cid"] in [m["cid"] for m in hist["data"]]
    assert [m["msg_type"] for m in hist["data"] if m["cid"] == notes[0]["cid"]] == ["note"]


@pytest.mark.gen_test(timeout=40)
async def test_agent_leaves_under_auto_the_visitor_is_told_and_moved(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s, ag, v1 = await shop_with(wolive_server, base_url, ws_base, cfg, ("bert",))
    anna, bert = ag["anna"], ag["bert"]
    assert anna.sock is not None
    anna.sock.close()  # anna closes her console
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "moved"}
    moved = await next_line(v1, "taken_over")
    assert json.loads(moved["content"])["vars"] == {"from": "Anna", "to": "Bert"}
    card = (await v1.sock.expect("cu_notice"))["data"]  # type: ignore[union-attr]
    assert card["service_id"] == anna.sid  # from its own notice
    card = (await v1.sock.expect("cu_notice"))["data"]  # type: ignore[union-attr]
    assert card["service_id"] == bert.sid
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}
    assert s.state(anna) == "offline"
    hand = (await expect_about(bert.sock, "handover", f"kefu{bert.sid}", "v1"))["data"]
    assert (hand["reason"], hand["from_nick_name"], hand["note"]) == ("agent_left", "Anna", "")
    assert [r["line"]["key"] for r in system_rows(s.db, "v1")] == ["agent_left", "taken_over"]
    _, hist = await get(bert, "/admin/set/history", visiter_id="v1")
    assert [json.loads(m["content"])["key"] for m in hist["data"]
            if m["msg_type"] == "system"] == ["agent_left", "taken_over"]


@pytest.mark.gen_test(timeout=40)
async def test_agent_leaves_with_nobody_left_the_visitor_leaves_contact_details(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s, ag, v1 = await shop_with(wolive_server, base_url, ws_base, cfg, ())
    anna = ag["anna"]
    # An offline visitor of anna's is left alone (nobody to tell).
    v2 = await s.visitor("v2", listen=False)
    assert (await s.notice(v2, special=str(anna.sid)))["data"]["service_id"] == anna.sid
    assert anna.sock is not None
    anna.sock.close()
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "contact"}
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}  # still hers
    assert system_rows(s.db, "v2") == []
    # Writing now: stored for anna all the same.
    code, body = await v1.client.json("/admin/event/chats", "POST",
                                      form={**v1.ids, "content": "hello? anyone?"})
    assert (code, body["code"], body["data"]["service_id"]) == (200, 0, anna.sid)

    def written() -> tuple[Any, ...]:
        return (db_rows(s.db, "SELECT COUNT(*) AS n FROM wolive_chats")[0]["n"],
                db_rows(s.db, "SELECT name, tel, note FROM wolive_visiter_info "
                        "WHERE visiter_id = 'v1'"))

    before = written()
    good = {"name": "Li Lei", "tel": "+86 138-0000-0000", "email": "li@example.com",
            "note": "Call me after 6 pm"}
    for form, status, code_ in [
            ({**good, "tel": "", "email": ""}, 400, 1),          # neither phone nor email
            ({**good, "tel": "call me"}, 400, 1),                # not a phone number
            ({**good, "email": "li@"}, 400, 1),                  # not an email
            ({**good, "note": "n" * 501}, 400, 1),               # too long
            ({**good, "name": "n" * 65}, 400, 1),
            ({**good, "channel": "cu" + "0" * 40}, 403, 3),      # someone else
            ({**good, "visiter_id": "ghost"}, 403, 3),           # channel is not its
            ({**good, "business_id": "bad biz!"}, 400, 1)]:
        code, body = await v1.client.json("/admin/event/contact", "POST",
                                          form={**v1.ids, **form})
        assert (code, body["code"]) == (status, code_), (form, body)
        assert body["msg"]
    v3 = await s.visitor("v3", listen=False)  # opened the window, never queued
    code, body = await v3.client.json("/admin/event/contact", "POST", form={**v3.ids, **good})
    assert (code, body["code"]) == (409, 3), body
    assert written() == before

    # The agent had already written a phone number: it is kept.
    assert (await post(anna, "/admin/set/visitor", visiter_id="v1", tel="021-5555"))[1][
        "code"] == 0
    code, body = await v1.client.json("/admin/event/contact", "POST", form={**v1.ids, **good})
    assert (code, body["code"]) == (200, 0), body
    assert body["data"]["saved"] == ["name", "note"]
    line = await next_line(v1, "contact")
    assert line["cid"] == body["data"]["cid"]
    shown = "Li Lei · +86 138-0000-0000 · li@example.com · Call me after 6 pm"
    assert json.loads(line["content"])["vars"] == {**good, "text": shown}
    # Shown to the agent: the transcript and the details panel.
    _, hist = await get(anna, "/admin/set/history", visiter_id="v1")
    sys_lines = [json.loads(m["content"]) for m in hist["data"] if m["msg_type"] == "system"]
    assert sys_lines == [{"key": "agent_left", "vars": {"name": "Anna", "then": "contact"}},
                         {"key": "contact", "vars": {**good, "text": shown}}]
    _, info = await get(anna, "/admin/set/visitor", visiter_id="v1")
    assert (info["data"]["name"], info["data"]["tel"], info["data"]["note"]) == (
        "Li Lei", "021-5555", "li@example.com\nCall me after 6 pm")


@pytest.mark.gen_test(timeout=40)
async def test_agent_leaves_under_claim_the_conversation_waits_again(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict, short_grace: None) -> None:
    s, ag, v1 = await shop_with(wolive_server, base_url, ws_base, cfg, ("bert",), rule="claim")
    anna, bert = ag["anna"], ag["bert"]
    assert s.queue("v1") == {"service_id": anna.sid, "state": "normal"}
    assert anna.sock is not None
    anna.sock.close()
    left = await next_line(v1, "agent_left")
    assert json.loads(left["content"])["vars"] == {"name": "Anna", "then": "queue"}
    assert s.queue("v1") == {"service_id": 0, "state": "normal"}
    await expect_about(bert.sock, "on_notice", f"all{BIZ}", "v1", timeout=10)
    _, body = await v1.client.json("/admin/event/position", form=v1.ids)
    assert body["data"] == {"position": 1, "state": "waiting", "service_id": 0}
    # A manager hands the waiting visitor to bert: a line without a "from", the notice.
    code, body = await post(s.boss, "/admin/set/transfer", visiter_id="v1", service_id=bert.sid,
                            note="please take this one")
    assert (code, body["code"]) == (200, 0), body
    assert s.queue("v1") == {"service_id": bert.sid, "state": "normal"}
    line = await next_line(v1, "transferred_waiting")
    assert json.loads(line["content"])["vars"] == {"to": "Bert"}
    hand = (await expect_about(bert.sock, "handover", f"kefu{bert.sid}", "v1"))["data"]
    assert (hand["from_service_id"], hand["note"]) == (0, "please take this one")
    assert [r["line"]["key"] for r in system_rows(s.db, "v1")] == ["agent_left",
                                                                  "transferred_waiting"]
