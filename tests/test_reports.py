"""Reports for managers (issue 13, item 7; docs/api.md, "Reports").

The conversation rows (`wolive_conversation`) are written by the real chat endpoints
(arrival, reply, transfer, close, leaving a message while waiting); the report's numbers are
checked exactly against a small data set computed by hand; who may see what; bad input
answers 400 and never 500; the CSV opens with a UTF-8 BOM. Every test runs on SQLite and on
MariaDB."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

import pytest
from helpers import Client, db_rows
from shop import BIZ, Agent, Shop, Visitor, get, post

# Two local days (the server's time zone: the report's days are local, as the test's).
D1 = int(datetime(2026, 3, 2).timestamp())
D2 = D1 + 86400


async def say(v: Visitor, content: str) -> dict[str, Any]:
    code, body = await v.client.json("/admin/event/chats", "POST",
                                      form={**v.ids, "content": content})
    assert (code, body["code"]) == (200, 0), body
    return body


def conversations(db: str, vid: str) -> list[dict[str, Any]]:
    return db_rows(db, "SELECT * FROM wolive_conversation WHERE visiter_id = %s ORDER BY id",
                   (vid,))


@pytest.mark.gen_test(timeout=60)
async def test_chat_endpoints_write_the_conversation_rows(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    anna = await s.agent("anna")
    bert = await s.agent("bert")

    # Nobody online: v2 waits, then leaves a message: a missed conversation.
    v2 = await s.visitor("v2")
    assert (await s.notice(v2))["code"] == 3
    [row] = conversations(s.db, "v2")
    assert (row["service_id"], row["assigned_at"], row["ended_at"]) == (0, None, None)
    code, body = await v2.client.json("/admin/event/message", "POST", form={
        **v2.ids, "name": "V2", "moblie": "13800000000", "email": "", "content": "call me"})
    assert (code, body["code"]) == (200, 0), body
    [row] = conversations(s.db, "v2")
    assert row["missed"] == 1 and row["ended_at"] is not None and row["assigned_at"] is None

    # v1: assigned to anna at once, one message each way, transferred to bert, closed.
    await s.online(anna)
    await s.online(bert)
    v1 = await s.visitor("v1")
    assert (await s.notice(v1, special=str(anna.sid)))["code"] == 0
    [row] = conversations(s.db, "v1")
    assert row["service_id"] == anna.sid
    assert row["assigned_at"] == row["started_at"] and row["first_reply_at"] is None
    await say(v1, "hello")
    assert (await post(anna, "/admin/set/chats", visiter_id="v1", content="hi!"))[1]["code"] \
        == 0
    first = conversations(s.db, "v1")[0]["first_reply_at"]
    assert first is not None and first >= row["started_at"]
    assert (await post(anna, "/admin/set/chats", visiter_id="v1", content="again"))[1][
        "code"] == 0
    assert conversations(s.db, "v1")[0]["first_reply_at"] == first  # set once
    code, body = await post(anna, "/admin/set/transfer", visiter_id="v1",
                            service_id=str(bert.sid))
    assert (code, body["code"]) == (200, 0), body
    assert conversations(s.db, "v1")[0]["service_id"] == bert.sid
    assert (await post(bert, "/admin/set/close", visiter_id="v1"))[1]["code"] == 0
    [row] = conversations(s.db, "v1")
    assert row["ended_at"] is not None and row["missed"] == 0
    assert (row["visitor_messages"], row["agent_messages"]) == (1, 2)

    # Writing after the end starts a second conversation, with the same agent.
    await say(v1, "one more thing")
    rows = conversations(s.db, "v1")
    assert len(rows) == 2 and rows[1]["ended_at"] is None
    assert rows[1]["service_id"] == bert.sid and rows[1]["assigned_at"] is not None

    # The report (today) sees them: bert has v1's first conversation and its second.
    today = datetime.now().strftime("%Y-%m-%d")
    code, body = await get(s.boss, "/admin/report/data", **{"from": today, "to": today})
    assert (code, body["code"]) == (200, 0), body
    totals = body["data"]["totals"]
    assert (totals["conversations"], totals["answered"], totals["missed"]) == (3, 2, 1)
    by_agent = {a["service_id"]: a for a in body["data"]["agents"]}
    assert by_agent[bert.sid]["conversations"] == 2
    assert by_agent[anna.sid]["conversations"] == 0
    assert by_agent[0]["missed"] == 1


@pytest.mark.gen_test(timeout=60)
async def test_claim_and_blacklist_while_waiting(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url, rule="claim")
    anna = await s.agent("anna")
    await s.online(anna)
    v1, v2 = await s.visitor("v1"), await s.visitor("v2")
    assert (await s.notice(v1))["code"] == 2
    assert (await s.notice(v2))["code"] == 2
    for vid in ("v1", "v2"):
        [row] = conversations(s.db, vid)
        assert (row["service_id"], row["assigned_at"]) == (0, None)
    # A reload while waiting starts nothing new.
    assert (await s.notice(v1))["code"] == 2
    assert len(conversations(s.db, "v1")) == 1
    code, body = await post(anna, "/admin/set/get", visiter_id="v1")
    assert (code, body["code"]) == (200, 0), body
    [row] = conversations(s.db, "v1")
    assert row["service_id"] == anna.sid and row["assigned_at"] >= row["started_at"]
    code, body = await post(anna, "/admin/set/blacklist", visiter_id="v2")
    assert (code, body["code"]) == (200, 0), body
    [row] = conversations(s.db, "v2")
    assert row["ended_at"] is not None and row["assigned_at"] is None and row["missed"] == 0
    today = datetime.now().strftime("%Y-%m-%d")
    code, body = await get(anna, "/admin/report/data", **{"from": today, "to": today})
    assert (code, body["data"]["totals"]["conversations"], body["data"]["totals"]["answered"]) \
        == (200, 1, 1)
    code, body = await get(s.boss, "/admin/report/data", **{"from": today, "to": today})
    t = body["data"]["totals"]
    assert (t["conversations"], t["answered"], t["abandoned"], t["missed"]) == (2, 1, 1, 0)


def _conv(db: str, sid: int, start: int, assigned: int | None, reply: int | None,
          ended: int | None, missed: int = 0, vmsg: int | None = None,
          amsg: int | None = None, business: str = BIZ, vid: str = "x") -> None:
    db_rows(db, "INSERT INTO wolive_conversation (business_id, visiter_id, service_id, "
            "started_at, assigned_at, first_reply_at, ended_at, missed, visitor_messages, "
            "agent_messages) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (business, vid, sid, start, None if assigned is None else start + assigned,
             None if reply is None else start + reply, None if ended is None else start + ended,
             missed, vmsg, amsg))


def _rating(db: str, sid: int, when: int, score: int, business: str = BIZ) -> None:
    db_rows(db, "INSERT INTO wolive_rating (visiter_id, business_id, service_id, score, "
            "comment, ended_cid, timestamp) VALUES (%s, %s, %s, %s, '', %s, %s)",
            (f"r{when}", business, sid, score, when, when))


async def hand_set(wolive_server: Any, base_url: str, ws_base: str, cfg: dict
                   ) -> tuple[Shop, dict[str, Agent]]:
    """The hand-computed data set (numbers in `test_report_numbers_computed_by_hand`)."""
    s = await Shop.open(wolive_server, base_url, ws_base, cfg.database.url)
    ag = {name: await s.agent(name, level) for name, level in
          [("anna", "service"), ("bert", "service"), ("mia", "manager")]}
    await s.agent("otto", "manager", business_id="other")
    db_rows(s.db, "UPDATE wolive_service SET nick_name = '小白' WHERE service_id = %s",
            (ag["bert"].sid,))
    a, b = ag["anna"].sid, ag["bert"].sid
    _conv(s.db, a, D1 + 3600, 10, 30, 600, vmsg=4, amsg=3)
    _conv(s.db, a, D1 + 7200, 20, 50, 1200, vmsg=2, amsg=2)
    _conv(s.db, b, D1 + 9000, 40, 100, 300, vmsg=1, amsg=1)
    _conv(s.db, 0, D1 + 10000, None, None, 120, missed=1, vmsg=1, amsg=0)
    _conv(s.db, 0, D1 + 11000, None, None, 60, vmsg=0, amsg=0)
    _conv(s.db, b, D2 + 100, 0, 20, None)  # still open
    _conv(s.db, a, D2 + 5000, 60, None, 900, vmsg=3, amsg=0)
    _conv(s.db, a, D1 - 10, 1, 2, 3, vmsg=9, amsg=9)  # the day before: not counted
    _conv(s.db, a, D2 + 86400, 1, 2, 3, vmsg=9, amsg=9)  # the day after: not counted
    _conv(s.db, 99, D1 + 50, 5, 6, 7, vmsg=1, amsg=1, business="other")
    _rating(s.db, a, D1 + 700, 5)
    _rating(s.db, a, D2 + 1000, 4)
    _rating(s.db, b, D1 + 400, 2)
    _rating(s.db, a, D1 - 100, 1)  # the day before
    _rating(s.db, 99, D1 + 100, 3, business="other")
    return s, ag


def timed(median: float | None, p90: float | None, count: int) -> dict[str, Any]:
    return {"median": median, "p90": p90, "count": count}


def measures(conv: int, answered: int, missed: int, abandoned: int, messages: int,
             fr: dict, res: dict, qw: dict, ratings: int, avg: float | None) -> dict[str, Any]:
    return {"conversations": conv, "answered": answered, "missed": missed,
            "abandoned": abandoned, "messages": messages, "first_response": fr,
            "resolution": res, "queue_wait": qw, "ratings": ratings, "rating_avg": avg}


NONE = timed(None, None, 0)
DAY1 = measures(5, 3, 1, 1, 14, timed(50, 100, 3), timed(600, 1200, 3), timed(20, 40, 3),
                2, 3.5)
DAY2 = measures(2, 2, 0, 0, 3, timed(20, 20, 1), timed(900, 900, 1), timed(30, 60, 2), 1, 4.0)
TOTAL = measures(7, 5, 1, 1, 17, timed(40, 100, 4), timed(750, 1200, 4), timed(20, 60, 5),
                 3, 3.67)
ANNA = measures(3, 3, 0, 0, 14, timed(40, 50, 2), timed(900, 1200, 3), timed(20, 60, 3), 2, 4.5)
BERT = measures(2, 2, 0, 0, 2, timed(60, 100, 2), timed(300, 300, 1), timed(20, 40, 2), 1, 2.0)
NOBODY = measures(2, 0, 1, 1, 1, NONE, NONE, NONE, 0, None)
EMPTY = measures(0, 0, 0, 0, 0, NONE, NONE, NONE, 0, None)
RANGE = {"from": "2026-03-02", "to": "2026-03-03"}


def strip(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]


@pytest.mark.gen_test(timeout=60)
async def test_report_numbers_computed_by_hand(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag = await hand_set(wolive_server, base_url, ws_base, cfg)
    a, b = ag["anna"].sid, ag["bert"].sid
    code, body = await get(ag["mia"], "/admin/report/data", **RANGE)
    assert (code, body["code"]) == (200, 0), body
    data = body["data"]
    assert (data["from"], data["to"], data["business_id"], data["service_id"]) == (
        "2026-03-02", "2026-03-03", BIZ, 0)
    assert data["days"] == [{"day": "2026-03-02", **DAY1}, {"day": "2026-03-03", **DAY2}]
    assert data["totals"] == TOTAL
    assert strip(data["agents"], "deleted") == [
        {"service_id": 0, "nick_name": "", **NOBODY},
        {"service_id": 1, "nick_name": "Boss", **EMPTY},
        {"service_id": a, "nick_name": "Anna", **ANNA},
        {"service_id": b, "nick_name": "小白", **BERT},
        {"service_id": ag["mia"].sid, "nick_name": "Mia", **EMPTY}]

    # One agent, asked by a manager; the same numbers the agent sees of itself.
    code, body = await get(ag["mia"], "/admin/report/data", service_id=str(b), **RANGE)
    assert code == 200 and body["data"]["totals"] == BERT
    assert [x["service_id"] for x in body["data"]["agents"]] == [b]
    code, body = await get(ag["anna"], "/admin/report/data", **RANGE)
    assert code == 200 and body["data"]["totals"] == ANNA and body["data"]["service_id"] == a
    assert [x["service_id"] for x in body["data"]["agents"]] == [a]
    assert [d["conversations"] for d in body["data"]["days"]] == [2, 1]

    # One day only.
    code, body = await get(ag["mia"], "/admin/report/data", **{"from": "2026-03-03",
                                                              "to": "2026-03-03"})
    assert body["data"]["totals"] == {**DAY2}

    # A super_manager: any business.
    code, body = await get(s.boss, "/admin/report/data", business_id="other", **RANGE)
    assert (code, body["data"]["totals"]["conversations"], body["data"]["totals"]["ratings"]) \
        == (200, 1, 1)


@pytest.mark.gen_test(timeout=60)
async def test_who_may_see_what_and_bad_input(
        wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag = await hand_set(wolive_server, base_url, ws_base, cfg)
    anna, mia = ag["anna"], ag["mia"]
    cases = [
        (anna, {"service_id": str(ag["bert"].sid)}, 403),
        (anna, {"business_id": "other"}, 403),
        (mia, {"business_id": "other"}, 403),
        (mia, {"service_id": "9999"}, 404),
        (mia, {"service_id": "abc"}, 400),
        (mia, {"service_id": "-1"}, 400),
        (s.boss, {"business_id": "nope"}, 404),
        (s.boss, {"business_id": "other", "service_id": str(anna.sid)}, 404),
        (mia, {"from": "2026-13-01"}, 400),
        (mia, {"from": "2026-02-30"}, 400),
        (mia, {"from": "yesterday"}, 400),
        (mia, {"to": "1e9"}, 400),
        (mia, {"from": "2026-03-04", "to": "2026-03-03"}, 400),
        (mia, {"from": "2025-03-02", "to": "2026-03-03"}, 400),  # 367 days
        (mia, {"from": "0000-01-01"}, 400),
        (mia, {"from": "x" * 30}, 400),
    ]
    for who, args, status in cases:
        for path in ("/admin/report/data", "/admin/report/csv"):
            args = {**RANGE, **args}
            code, body = await get(who, path, **args)
            assert (code, body["code"]) == (status, 1), (who.user, path, args, body)
            assert body["msg"] and "Traceback" not in json.dumps(body)
    # 366 days is the longest range.
    code, body = await get(mia, "/admin/report/data", **{"from": "2025-03-03",
                                                        "to": "2026-03-03"})
    assert code == 200 and len(body["data"]["days"]) == 366
    assert body["data"]["totals"]["conversations"] == 8  # the day before D1 too
    # Not logged in.
    code, body = await Client(base_url).json("/admin/report/data")
    assert code == 401 and body["code"] == 1


@pytest.mark.gen_test(timeout=60)
async def test_csv_with_bom(wolive_server: Any, base_url: str, ws_base: str, cfg: dict) -> None:
    s, ag = await hand_set(wolive_server, base_url, ws_base, cfg)
    resp = await ag["mia"].client.fetch("/admin/report/csv?from=2026-03-02&to=2026-03-03")
    assert resp.code == 200
    assert resp.headers["Content-Type"].startswith("text/csv")
    assert resp.headers["Content-Disposition"] == \
        'attachment; filename="wolive-report-shop1-2026-03-02-2026-03-03.csv"'
    assert resp.body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(resp.body.decode("utf-8-sig"))))
    assert rows[0][:5] == ["scope", "day", "service_id", "agent", "conversations"]
    head = rows[0]
    recs = [dict(zip(head, r)) for r in rows[1:]]
    assert [r["scope"] for r in recs] == ["day", "day"] + ["agent"] * 5 + ["total"]
    assert recs[0] == {
        "scope": "day", "day": "2026-03-02", "service_id": "", "agent": "",
        "conversations": "5", "answered": "3", "missed": "1", "abandoned": "1",
        "messages": "14", "first_response_median_s": "50", "first_response_p90_s": "100",
        "resolution_median_s": "600", "resolution_p90_s": "1200", "queue_wait_median_s": "20",
        "queue_wait_p90_s": "40", "ratings": "2", "rating_avg": "3.5"}
    bert = next(r for r in recs if r["service_id"] == str(ag["bert"].sid))
    assert (bert["agent"], bert["conversations"], bert["first_response_median_s"]) == \
        ("小白", "2", "60")
    total = recs[-1]
    assert (total["day"], total["conversations"], total["resolution_median_s"],
            total["rating_avg"]) == ("2026-03-02..2026-03-03", "7", "750", "3.67")
    nobody = next(r for r in recs if r["service_id"] == "0")
    assert nobody["first_response_median_s"] == "" and nobody["missed"] == "1"


def test_csv_agent_names_are_never_formulas() -> None:
    """An agent may name itself `=cmd|...`: the export shows it as text (a leading `'`),
    for every character a spreadsheet starts a formula with; plain names are unchanged."""
    from realtime.chat.reports import report_csv
    empty = {"conversations": 0, "answered": 0, "missed": 0, "abandoned": 0, "messages": 0,
             "ratings": 0, "rating_avg": None}
    from realtime.chat.reports import TIMED
    for measure in TIMED:
        empty[measure] = {"median": None, "p90": None}
    names = ["=cmd|'/C calc'!A0", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", "Mia", "王小明"]
    data = {"from": "2026-03-02", "to": "2026-03-02", "days": [], "totals": empty,
            "agents": [{"service_id": i + 1, "nick_name": n, **empty}
                       for i, n in enumerate(names)]}
    rows = list(csv.reader(io.StringIO(report_csv(data).lstrip("\ufeff"))))
    shown = [r[3] for r in rows if r[0] == "agent"]
    assert shown == ["'" + n for n in names[:6]] + ["Mia", "王小明"]
