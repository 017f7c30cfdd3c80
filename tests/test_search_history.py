"""`/admin/set/searchhistory` (the history page's list): who may search what, the text and
visitor filters (`%` and `_` literal), the date range, paging and its refusals. The world
of tests/test_manager.py: shop1 (boss, mgr_a, svc_a) and shop2 (mgr_b, svc_b)."""
from __future__ import annotations

import time
from typing import Any

import pytest
from test_manager import A, B, World, world  # noqa: F401 (the fixture)

URL = "/admin/set/searchhistory"
DAY = 86400


async def search(client: Any, **params: Any) -> tuple[int, dict[str, Any]]:
    return await client.json(URL, "GET", form={k: str(v) for k, v in params.items()} or None)


async def seed(w: World) -> dict[str, int]:
    """Three visitors of shop1 (two with svc_a, one with mgr_a) and one of shop2."""
    store, chat = w.server.store, w.server.chat
    now = int(time.time())
    talks = [("v-tea", A, w.ids["svc_a"], "张三", ["green tea 100%", "thanks"], now - 3 * DAY),
             ("v-shoe", A, w.ids["svc_a"], "Li_Si", ["shoes size 42", "ok"], now - DAY),
             ("v-mgr", A, w.ids["mgr_a"], "Wang", ["tea for the manager"], now),
             ("v-other", B, w.ids["svc_b"], "Zhao", ["tea elsewhere"], now)]
    for vid, biz, sid, name, texts, at in talks:
        await store.upsert_visiter(vid, biz, name, chat.channel_for(biz, vid), "", "", "")
        for i, text in enumerate(texts):
            await store.add_chat(vid, sid, biz, text, "to_service", timestamp=at + i)
    return {"now": now}


@pytest.mark.gen_test
async def test_a_manager_searches_the_business(world: World) -> None:  # noqa: F811
    await seed(world)
    code, body = await search(world.mgr_a)
    assert code == 200 and body["code"] == 0, body
    data = body["data"]
    assert [r["visiter_id"] for r in data["rows"]] == ["v-mgr", "v-shoe", "v-tea"]
    assert (data["total"], data["page"], data["limit"]) == (3, 1, 20)
    tea = data["rows"][2]
    assert (tea["visiter_name"], tea["messages"], tea["last_content"], tea["nick_name"]) == \
        ("张三", 2, "thanks", "SVC_A")
    # Text inside a message; `%` and `_` are literal.
    code, body = await search(world.mgr_a, q="tea")
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-mgr", "v-tea"]
    assert body["data"]["rows"][1]["messages"] == 1
    code, body = await search(world.mgr_a, q="100%")
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-tea"]
    code, body = await search(world.mgr_a, q="%")
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-tea"]
    # Part of the visitor's name or id.
    code, body = await search(world.mgr_a, visiter="_Si")
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-shoe"]
    code, body = await search(world.mgr_a, visiter="mgr")
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-mgr"]
    # One agent; then paging.
    code, body = await search(world.mgr_a, service_id=world.ids["svc_a"])
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-shoe", "v-tea"]
    code, body = await search(world.mgr_a, page=2, limit=2)
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-tea"]
    assert body["data"]["total"] == 3


@pytest.mark.gen_test
async def test_dates_are_whole_days_or_unix_seconds(world: World) -> None:  # noqa: F811
    now = (await seed(world))["now"]
    today = time.strftime("%Y-%m-%d", time.localtime(now))
    code, body = await search(world.mgr_a, start=today, end=today)
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-mgr"]
    code, body = await search(world.mgr_a, end=now - 2 * DAY)
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-tea"]
    for params, words in [({"start": "2026-02-30"}, "no such date"),
                          ({"end": "yesterday"}, "must be a date"),
                          ({"start": today, "end": "2000-01-01"}, "start is after end"),
                          ({"limit": 0}, "limit must be 1-100"),
                          ({"limit": 101}, "limit must be 1-100"),
                          ({"page": 0}, "page starts at 1"),
                          # Past what a timestamp holds: refused, not a 500.
                          ({"end": "9999-12-31"}, "out of range"),
                          ({"start": "0001-01-01"}, "out of range"),
                          ({"start": "٢٠٢٦-٠١-٠١"}, "must be a date"),
                          ({"end": "١٧٠٠٠٠٠٠٠٠"}, "must be a date")]:
        code, body = await search(world.mgr_a, **params)
        assert (code, body["code"]) == (400, 1) and words in body["msg"], (params, body)


@pytest.mark.gen_test
async def test_who_may_search_what(world: World) -> None:  # noqa: F811
    await seed(world)
    # A service agent sees only its own conversations, whatever it asks for.
    for params in ({}, {"service_id": world.ids["mgr_a"]}):
        code, body = await search(world.svc_a, **params)
        assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-shoe", "v-tea"], params
    # Another business: 403, except for the super_manager.
    code, body = await search(world.mgr_a, business_id=B)
    assert (code, body["code"]) == (403, 1)
    code, body = await search(world.boss, business_id=B)
    assert [r["visiter_id"] for r in body["data"]["rows"]] == ["v-other"]
    code, body = await search(await world.anonymous())
    assert (code, body["code"]) == (401, 1)
    # An agent of another business, or no agent at all, is not found (as on every URL).
    for sid in (world.ids["svc_b"], 99999):
        code, body = await search(world.mgr_a, service_id=sid)
        assert (code, body["code"]) == (404, 1), sid
