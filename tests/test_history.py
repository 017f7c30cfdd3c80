"""Conversation history (WoLive document, "查看历史消息Api"): getvisiters, getviews and
getdesignForViews, paged and scoped — a service agent sees its own visitors, a manager
its business's, never another business's."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from helpers import BIZ, PASSWORD, Client
from helpers import OTHER_BIZ as OTHER
from shop import Shop

from handlers.install import hash_password

DAY = 86_400
TIMEOUT = 60


@dataclass
class World:
    clients: dict[str, Client]
    ids: dict[str, int]
    channels: dict[str, str]
    now: int
    times: dict[str, int]  # message label -> its unix time


@pytest.fixture
def w(io_loop: Any, shop: Shop) -> World:
    return io_loop.run_sync(lambda: world(shop))


async def world(shop: Shop) -> World:
    """shop1: boss (super_manager), mgr (manager), alice and bob (service);
    shop2: mgr2 (manager), carol (service). Visitors v1, v2 of shop1, v3 of shop2.

    Messages (label: visitor, agent, age):
      a1 v1 alice 1 d · b2 v1 bob 2 d · a3 v1 alice 3 d · a20 v1 alice 20 d ·
      a40 v1 alice 40 d · a5 v2 alice 5 d · c1 v3 carol 1 d
    """
    store, chat = shop.server.store, shop.server.chat
    ids, clients = await shop.staff(("mgr", "manager", BIZ), ("alice", "service", BIZ),
                                    ("bob", "service", BIZ), ("mgr2", "manager", OTHER),
                                    ("carol", "service", OTHER))  # nick names: Mgr, Alice...
    clients["anon"] = Client(shop.base_url)
    channels = {}
    for vid, biz in (("v1", BIZ), ("v2", BIZ), ("v3", OTHER)):
        channels[vid] = chat.channel_for(biz, vid)
        await store.upsert_visiter(vid, biz, f"Visitor {vid}", channels[vid], "/a.png",
                                   "10.0.0.1", "https://shop.example/")
    now = int(time.time())
    times = {}
    for label, vid, biz, agent, age in (("a40", "v1", BIZ, "alice", 40 * DAY),
                                        ("a20", "v1", BIZ, "alice", 20 * DAY),
                                        ("a5", "v2", BIZ, "alice", 5 * DAY),
                                        ("a3", "v1", BIZ, "alice", 3 * DAY),
                                        ("b2", "v1", BIZ, "bob", 2 * DAY),
                                        ("a1", "v1", BIZ, "alice", 1 * DAY),
                                        ("c1", "v3", OTHER, "carol", 1 * DAY)):
        times[label] = now - age
        await store.add_chat(vid, ids[agent], biz, label, "to_visiter", timestamp=now - age)
    return World(clients, ids, channels, now, times)


def labels(body: dict[str, Any]) -> list[str]:
    return [r["content"] for r in body["data"]["rows"]]


# ---- getvisiters -------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getvisiters(w: World) -> None:
    alice, mgr, boss = w.clients["alice"], w.clients["mgr"], w.clients["boss"]

    # Default: the caller. Most recent conversation first; the document's `service`.
    code, body = await alice.json("/admin/set/getvisiters")
    assert (code, body["code"]) == (200, 0)
    rows = body["data"]["rows"]
    assert [r["visiter_id"] for r in rows] == ["v1", "v2"]
    assert rows[0]["visiter_name"] == "Visitor v1" and rows[0]["channel"] == w.channels["v1"]
    assert rows[0]["last_time"] == w.times["a1"] and rows[0]["messages"] == 4
    assert rows[1]["messages"] == 1
    assert (body["data"]["total"], body["data"]["page"], body["data"]["limit"]) == (2, 1, 20)
    assert body["data"]["service_id"] == w.ids["alice"]
    assert (await alice.json("/admin/set/getvisiters", "POST",
                             form={"service": "Alice"}))[1]["data"]["rows"] == rows

    # A manager asks about any agent of its business by nick name (or id).
    code, body = await mgr.json("/admin/set/getvisiters", form={"service": "Bob"})
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v1"]
    code, body = await mgr.json("/admin/set/getvisiters", form={"service_id": w.ids["alice"]})
    assert body["data"]["total"] == 2
    code, body = await mgr.json("/admin/set/getvisiters")
    assert body["data"]["rows"] == [] and body["data"]["total"] == 0

    # Paging.
    code, body = await alice.json("/admin/set/getvisiters", form={"limit": 1, "page": 2})
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v2"]
    assert body["data"]["total"] == 2
    code, body = await alice.json("/admin/set/getvisiters", form={"limit": 1, "page": 3})
    assert body["data"]["rows"] == []

    # A super_manager: the business it names, or the named agent's.
    code, body = await boss.json("/admin/set/getvisiters",
                                 form={"business_id": OTHER, "service": "Carol"})
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v3"]
    code, body = await boss.json("/admin/set/getvisiters", form={"service_id": w.ids["carol"]})
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v3"]


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getvisiters_refuses(w: World, wolive_server: Any) -> None:
    alice, mgr, mgr2 = w.clients["alice"], w.clients["mgr"], w.clients["mgr2"]
    url = "/admin/set/getvisiters"
    # Too low a level: a service agent sees only its own visitors.
    assert (await alice.json(url, form={"service": "Bob"}))[0] == 403
    assert (await alice.json(url, form={"service_id": w.ids["bob"]}))[0] == 403
    # Another business: by name or id it is not found; naming the business is 403.
    assert (await mgr.json(url, form={"service": "Carol"}))[0] == 404
    assert (await mgr.json(url, form={"service_id": w.ids["carol"]}))[0] == 404
    assert (await mgr2.json(url, form={"business_id": BIZ, "service": "Alice"}))[0] == 403
    assert (await mgr.json(url, form={"service": "Nobody"}))[0] == 404
    assert (await mgr.json(url, form={"service_id": 999}))[0] == 404
    # Bad paging and ids.
    for bad in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"page": "two"},
                {"service_id": "x"}):
        code, body = await alice.json(url, form=bad)
        assert (code, body["code"]) == (400, 1), bad
    # Nobody logged in.
    code, body = await w.clients["anon"].json(url)
    assert (code, body["code"]) == (401, 1)
    # A nick name two agents share: the manager must ask by id.
    await wolive_server.store.add_service(BIZ, "alice2", "Alice",
                                          await hash_password(PASSWORD, 4))
    code, body = await mgr.json(url, form={"service": "Alice"})
    assert (code, body["code"]) == (409, 1)
    # ...while Alice asking about "Alice" still means herself.
    code, body = await alice.json(url, form={"service": "Alice"})
    assert (code, body["data"]["total"]) == (200, 2)


# ---- getviews ----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getviews(w: World) -> None:
    alice, mgr, boss = w.clients["alice"], w.clients["mgr"], w.clients["boss"]
    v1 = w.channels["v1"]
    url = "/admin/set/getviews"
    # A service agent who talked with the visitor: the whole transcript, as its workbench
    # shows it (also bob's part, e.g. before a transfer to alice); oldest first.
    code, body = await alice.json(url, form={"channel": v1, "puttime": "week"})
    assert (code, body["code"], labels(body)) == (200, 0, ["a3", "b2", "a1"])
    data = body["data"]
    assert data["visiter_id"] == "v1" and data["total"] == 3
    assert data["rows"][0]["nick_name"] == "Alice" and data["rows"][0]["timestamp"] == \
        w.times["a3"]
    code, body = await alice.json(url, "POST", form={"channel": v1, "puttime": "month"})
    assert labels(body) == ["a20", "a3", "b2", "a1"]
    # A manager: the whole conversation in its business.
    code, body = await mgr.json(url, form={"channel": v1, "puttime": "week"})
    assert labels(body) == ["a3", "b2", "a1"]
    code, body = await mgr.json(url, form={"channel": v1, "puttime": "week", "limit": 2,
                                           "page": 2})
    assert (labels(body), body["data"]["total"]) == (["a1"], 3)
    # The document's prose calls it `time`.
    code, body = await mgr.json(url, form={"channel": v1, "time": "month"})
    assert labels(body) == ["a20", "a3", "b2", "a1"]
    # A super_manager: any business.
    code, body = await boss.json(url, form={"channel": w.channels["v3"], "puttime": "week"})
    assert labels(body) == ["c1"]


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getviews_refuses(w: World) -> None:
    c = w.clients
    v1, v2, v3 = w.channels["v1"], w.channels["v2"], w.channels["v3"]
    url = "/admin/set/getviews"
    for form, status in (({"channel": v1, "puttime": "year"}, 400),
                         ({"channel": v1}, 400),
                         ({"puttime": "week"}, 400),
                         ({"channel": v1, "puttime": "week", "limit": 500}, 400),
                         ({"channel": "cu-no-such", "puttime": "week"}, 404),
                         ({"channel": v3, "puttime": "week"}, 404)):  # another business
        code, body = await c["mgr"].json(url, form=form)
        assert (code, body["code"]) == (status, 1), form
    # Too low a level: a service agent and a visitor it never talked with.
    code, body = await c["bob"].json(url, form={"channel": v2, "puttime": "month"})
    assert (code, body["code"]) == (403, 1)
    # Another business's agents, by channel or by naming the business.
    assert (await c["mgr2"].json(url, form={"channel": v1, "puttime": "week"}))[0] == 404
    assert (await c["carol"].json(url, form={"channel": v1, "puttime": "week"}))[0] == 404
    assert (await c["mgr2"].json(url, form={"channel": v1, "puttime": "week",
                                            "business_id": BIZ}))[0] == 403
    assert (await c["boss"].json(url, form={"channel": v1, "puttime": "week",
                                            "business_id": OTHER}))[0] == 404
    assert (await c["anon"].json(url, form={"channel": v1, "puttime": "week"}))[0] == 401


# ---- getdesignForViews -------------------------------------------------------------------

def day_of(ts: int) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getdesignforviews(w: World) -> None:
    alice, mgr = w.clients["alice"], w.clients["mgr"]
    v1 = w.channels["v1"]
    url = "/admin/set/getdesignForViews"
    # Dates (the server's days); the end day is included whole.
    start, end = day_of(w.times["a3"]), day_of(w.times["b2"])
    code, body = await mgr.json(url, form={"channel": v1, "start": start, "end": end})
    assert (code, body["code"]) == (200, 0)
    assert labels(body) == ["a3", "b2"]
    assert body["data"]["start"] == int(datetime.strptime(start, "%Y-%m-%d").timestamp())
    # A service agent who talked with the visitor: the whole transcript in the range.
    code, body = await alice.json(url, "POST", form={"channel": v1, "start": start,
                                                     "end": end})
    assert labels(body) == ["a3", "b2"]
    # Unix seconds, both ends inclusive.
    code, body = await mgr.json(url, form={"channel": v1, "start": w.times["a20"],
                                           "end": w.times["a3"]})
    assert labels(body) == ["a20", "a3"]
    code, body = await mgr.json(url, form={"channel": v1, "start": w.times["a3"] + 1,
                                           "end": w.times["b2"] - 1})
    assert labels(body) == []
    # One day, paged; the URL's case as ThinkPHP allowed it.
    code, body = await mgr.json("/admin/set/getdesignforviews", form={
        "channel": v1, "start": day_of(w.times["a40"]), "end": end, "limit": 1, "page": 2})
    assert (labels(body), body["data"]["total"]) == (["a20"], 4)


@pytest.mark.gen_test(timeout=TIMEOUT)
async def test_getdesignforviews_refuses(w: World) -> None:
    c = w.clients
    v1, v2 = w.channels["v1"], w.channels["v2"]
    url = "/admin/set/getdesignForViews"
    ok = {"channel": v1, "start": "2024-01-01", "end": "2024-01-31"}
    for over, status in (({"start": "2024-13-01"}, 400), ({"end": "2024-02-30"}, 400),
                         ({"start": "yesterday"}, 400), ({"end": "1.5"}, 400),
                         ({"start": "2024-02-01"}, 400),      # start after end
                         ({"start": w.now, "end": w.now - 1}, 400),
                         ({"start": ""}, 400), ({"channel": ""}, 400),
                         ({"page": -1}, 400),
                         ({"channel": w.channels["v3"]}, 404)):
        code, body = await c["mgr"].json(url, form={**ok, **over})
        assert (code, body["code"]) == (status, 1), over
    form = {**ok, "channel": v2}
    assert (await c["bob"].json(url, form=form))[0] == 403
    assert (await c["mgr2"].json(url, form=ok))[0] == 404
    assert (await c["mgr2"].json(url, form={**ok, "business_id": BIZ}))[0] == 403
    assert (await c["anon"].json(url, form=ok))[0] == 401
