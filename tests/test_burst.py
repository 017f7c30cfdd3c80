"""A burst of visitors never fails: concurrent first arrivals (the chat window page, then
`/admin/event/notice`) all get an answer (200, code 0 or 2) and one visitor row each, on
SQLite and MariaDB; when the database pool is exhausted past its timeout the answer is a
503 with `Retry-After` (which the visitor window retries), never a 500."""
from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from helpers import BIZ, Client, PusherSocket, db_rows, wait_for

#: Visitors arriving at once; enough to make the old UPDATE-then-INSERT upsert deadlock
#: on MariaDB (1213, then 1305 on the vanished savepoint, then a 500).
BURST = 60


async def _arrive(http: AsyncHTTPClient, base_url: str, n: int) -> tuple[int, int, int]:
    """One new visitor: the chat window page, then the notice. Returns (page status,
    notice status, notice code)."""
    c = Client(base_url)
    c.http = http
    vid = f"burst-{n}"
    page = await c.fetch("/index/index/home", form={"business_id": BIZ, "visiter_id": vid})
    if page.code != 200:
        return page.code, 0, -1
    m = re.search(rb'"channel": "([^"]+)"', page.body)
    assert m, page.body[:300]
    resp = await c.fetch("/admin/event/notice", "POST", form={
        "visiter_id": vid, "business_id": BIZ, "channel": m.group(1).decode(),
        "record": "http://shop.example/"})
    code = -1
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        import json
        code = json.loads(resp.body).get("code", -1)
    return page.code, resp.code, code


@pytest.mark.gen_test(timeout=120)
async def test_concurrent_first_arrivals_all_answered(
        boss: Client, base_url: str, ws_base: str, cfg: dict[str, Any]) -> None:
    db = cfg.database.url
    agent = boss
    sock = await PusherSocket.connect(ws_base, cookie=agent.cookie_header())
    assert (await sock.subscribe("kefu1"))["event"] == "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(db, "SELECT state FROM wolive_service WHERE service_id=1")
                   [0]["state"] == "online")
    http = AsyncHTTPClient(force_instance=True, max_clients=BURST)
    try:
        results = await asyncio.gather(*(_arrive(http, base_url, n) for n in range(BURST)))
    finally:
        http.close()
    bad = [(n, r) for n, r in enumerate(results) if r[:2] != (200, 200) or r[2] not in (0, 2)]
    assert not bad, bad
    rows = db_rows(db, "SELECT visiter_id, COUNT(*) AS n FROM wolive_visiter "
                       "GROUP BY visiter_id")
    assert sorted((r["visiter_id"], r["n"]) for r in rows) == \
        sorted((f"burst-{n}", 1) for n in range(BURST))
    infos = db_rows(db, "SELECT visiter_id, visits FROM wolive_visiter_info")
    assert sorted((r["visiter_id"], r["visits"]) for r in infos) == \
        sorted((f"burst-{n}", 1) for n in range(BURST))


@pytest.mark.gen_test(timeout=60)
async def test_upserts_keep_what_they_must(db_url: str) -> None:
    """The one-statement upserts: a returning visitor's row keeps its `vid` and `state` and
    gets the new name/page; the visitor card counts a visit only after `VISIT_GAP_S` and
    keeps the browser when a later page load does not say it."""
    from store import Store
    from store.visitors import VISIT_GAP_S
    store = await Store.open(db_url)
    try:
        await store.add_business(BIZ)
        first = await store.upsert_visiter("v1", BIZ, "甲", "ch1", "a.png", "1.2.3.4", "http://a/")
        await store.set_visiter_state("ch1", "online")
        again = await store.upsert_visiter("v1", BIZ, "乙", "ch1", "b.png", "5.6.7.8", "http://b/")
        assert again["vid"] == first["vid"] and again["state"] == "online"
        assert (again["visiter_name"], again["avatar"], again["ip"], again["from_url"]) == \
            ("乙", "b.png", "5.6.7.8", "http://b/")
        assert db_rows(db_url, "SELECT COUNT(*) AS n FROM wolive_visiter")[0]["n"] == 1

        t0 = 1_700_000_000
        await store.note_visit("v1", BIZ, "UA-1", "http://ref/", now=t0)
        await store.note_visit("v1", BIZ, "", "", now=t0 + 60)          # a reload: same visit
        info = await store.visitor_info("v1", BIZ)
        assert info is not None
        assert (info["visits"], info["first_visit"], info["last_visit"], info["user_agent"],
                info["referrer"]) == (1, t0, t0 + 60, "UA-1", "http://ref/")
        await store.note_visit("v1", BIZ, "UA-2", "", now=t0 + 60 + VISIT_GAP_S + 1)
        info = await store.visitor_info("v1", BIZ)
        assert info is not None
        assert (info["visits"], info["first_visit"], info["last_visit"], info["user_agent"],
                info["referrer"]) == (2, t0, t0 + 61 + VISIT_GAP_S, "UA-2", "http://ref/")
    finally:
        await store.close()


def test_the_windows_retry_waits_out_a_503() -> None:
    """`Wolive.apiRetry` (static/assets/js/wolive-common.js, as the pages load it) against a
    scripted fetch (tests/node/api_retry.js): a 503 is asked again after its Retry-After
    (default 5 s, capped at 30 s, up to a fifth more), the first other answer is returned,
    the last 503 rejects, and plain `Wolive.api` does not retry."""
    import json
    import shutil
    import subprocess
    from pathlib import Path
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (install Node 20+)")
    script = Path(__file__).resolve().parent / "node" / "api_retry.js"
    proc = subprocess.run([node, str(script)], capture_output=True, text=True,
                          encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["ok"], summary["problems"]
