"""Reports benchmark: how long `/admin/report/data`'s work takes with a year of data
(docs/performance.md, "Reports"). Not a test.

    .venv/bin/python bench/reports_bench.py              # SQLite (a temp dir)
    .venv/bin/python bench/reports_bench.py --mariadb    # also MariaDB ($WOLIVE_TEST_MYSQL_URL,
                                                         # default root@127.0.0.1:3306; a
                                                         # database made and dropped here)

1. A fresh database (`Store.open`: every table and migration) gets business `shop1` with 20
   agents and a second business `other` with 5, then, inserted in bulk (SQLAlchemy Core
   executemany, 5,000 rows a statement): 100,000 `wolive_conversation` rows for `shop1` and
   20,000 for `other`, their starts spread over the last 365 days (a fixed pseudo-random
   set: 15% never answered, of those 60% missed), and a rating for 30% of the answered ones.
2. `realtime.chat.reports.Reports.report` (what the handler calls: the indexed reads, then the
   medians and p90s in Python) for the ranges 7, 30 and 366 days ending today, as the
   manager (all of `shop1`) and as one agent (`service_id`, level service); `--runs` times
   each (default 5) after one warm-up; median and max in milliseconds, and the longest
   stall of the event loop meanwhile (a task that wakes every millisecond: how long the
   chat server, which shares the loop, could not answer anything else).
3. The cost to the chat path of the agent reply's conditional UPDATE of `first_reply_at`
   (`first_reply_update_us`, run as the server runs it), with the table full.
4. The query plans of the two reads (SQLite `EXPLAIN QUERY PLAN`, MariaDB `EXPLAIN`) are
   recorded, to show the indexes used.

Writes bench/results/reports-bench.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, text  # noqa: E402

from realtime.chat.values import Agent  # noqa: E402
from realtime.chat.reports import Reports  # noqa: E402
from store import Store  # noqa: E402
from store.ratings import rating  # noqa: E402
from store.reports import FIRST_REPLY, conversation  # noqa: E402

DAY = 86400
BATCH = 5000


def mariadb_url() -> str:
    import pymysql
    base = os.environ.get("WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306/")
    u = urlsplit(base)
    name = "wolive_reportsbench_" + secrets.token_hex(4)
    conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=u.username or "root", password=u.password or "",
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()
    return f"mysql://{u.netloc}/{name}"


def drop_mariadb(url: str) -> None:
    import pymysql
    u = urlsplit(url)
    conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=u.username or "root", password=u.password or "",
                           autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{u.path.strip('/')}`")
    conn.close()


class LoopTicker:
    """Wakes every millisecond while a report runs; the longest gap between two wakes is
    how long the event loop (the chat server's) could not serve anything else."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.running = True
        self.task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        last = time.perf_counter()
        while self.running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def stop(self) -> float:
        self.running = False
        await self.task
        return self.longest * 1000


async def fill(store: Store, business: str, agents: list[int], n: int, rnd: random.Random,
               now: int) -> None:
    convs: list[dict[str, Any]] = []
    rates: list[dict[str, Any]] = []
    for i in range(n):
        start = now - rnd.randint(0, 365 * DAY - 1)
        vid = f"{business}-v{i}"
        if rnd.random() < 0.15:
            convs.append(dict(business_id=business, visiter_id=vid, service_id=0,
                              started_at=start, assigned_at=None, first_reply_at=None,
                              ended_at=start + rnd.randint(30, 600),
                              missed=1 if rnd.random() < 0.6 else 0, visitor_messages=1,
                              agent_messages=0))
        else:
            sid = rnd.choice(agents)
            wait = rnd.randint(0, 120)
            reply = wait + rnd.randint(3, 300)
            end = reply + rnd.randint(60, 3600)
            convs.append(dict(business_id=business, visiter_id=vid, service_id=sid,
                              started_at=start, assigned_at=start + wait,
                              first_reply_at=start + reply, ended_at=start + end, missed=0,
                              visitor_messages=rnd.randint(1, 15),
                              agent_messages=rnd.randint(1, 15)))
            if rnd.random() < 0.3:
                rates.append(dict(visiter_id=vid, business_id=business, service_id=sid,
                                  score=rnd.randint(1, 5), comment="", ended_cid=i,
                                  timestamp=start + end + 30))
    for rows, table in ((convs, conversation), (rates, rating)):
        for k in range(0, len(rows), BATCH):
            async with store.engine.begin() as conn:
                await conn.execute(insert(table), rows[k:k + BATCH])


async def first_reply_cost(store: Store, n: int = 2000) -> dict[str, float]:
    """What an agent reply pays for the reports: the conditional UPDATE `FIRST_REPLY`, run as
    the server runs it (`Store._run`: compiled once, on the driver's cursor, inside the
    reply's transaction), on the full table, n times in one transaction (the statement, not
    a commit), microseconds each: `no_match`, a visitor whose conversation has ended or was
    answered already (every reply after the first); `first_reply`, n open conversations
    each getting its first reply."""
    c = conversation
    now = int(time.time())
    async with store.engine.begin() as conn:
        await conn.execute(insert(c), [dict(business_id="shop1", visiter_id=f"open-{i}",
                                            service_id=1, started_at=now, missed=0)
                                       for i in range(n)])
    out = {}
    for case, vids in (("no_match", ["shop1-v17"] * n),
                       ("first_reply", [f"open-{i}" for i in range(n)])):
        async with store._writing() as conn:
            t0 = time.perf_counter()
            for vid in vids:
                await store._run(conn, FIRST_REPLY, visiter_id=vid, business_id="shop1",
                                 now=now)
            out[case] = round((time.perf_counter() - t0) / n * 1e6, 1)
    return out


async def plans(store: Store, business: str, sid: int, since: int, until: int) -> list[str]:
    """The query plans of the report's conversation reads (all agents, one agent)."""
    cols = "service_id, started_at, assigned_at, first_reply_at, ended_at, missed, " \
           "visitor_messages, agent_messages"
    sqls = [f"SELECT {cols} FROM wolive_conversation WHERE started_at >= {since} AND "
            f"started_at < {until} AND business_id = '{business}'",
            f"SELECT {cols} FROM wolive_conversation WHERE started_at >= {since} AND "
            f"started_at < {until} AND business_id = '{business}' AND service_id = {sid}"]
    out = []
    prefix = "EXPLAIN QUERY PLAN " if store.dialect == "sqlite" else "EXPLAIN "
    async with store.read_engine.connect() as conn:
        for sql in sqls:
            rows = (await conn.execute(text(prefix + sql))).all()
            out.append(" | ".join(" ".join(str(c) for c in r if c is not None) for r in rows))
    return out


async def bench(url: str, runs: int) -> dict[str, Any]:
    store = await Store.open(url)
    try:
        rnd = random.Random(13)
        now = int(time.time())
        ids: dict[str, list[int]] = {}
        for business, count in (("shop1", 20), ("other", 5)):
            await store.add_business(business)
            ids[business] = []
            for k in range(count):
                row = await store.add_service(business, f"{business}_a{k}", f"Agent {k}", "x",
                                              level="manager" if k == 0 else "service")
                ids[business].append(int(row["service_id"]))
        t0 = time.perf_counter()
        await fill(store, "shop1", ids["shop1"], 100_000, rnd, now)
        await fill(store, "other", ids["other"], 20_000, rnd, now)
        fill_s = time.perf_counter() - t0
        if store.dialect == "mysql":
            async with store.engine.begin() as conn:
                await conn.execute(text("ANALYZE TABLE wolive_conversation, wolive_rating"))
        else:
            async with store.engine.begin() as conn:
                await conn.execute(text("ANALYZE"))
        reports = Reports(store)
        manager = Agent(ids["shop1"][0], "shop1", "manager")
        one = Agent(ids["shop1"][5], "shop1", "service")
        today = date.today()
        results: dict[str, Any] = {}
        for who, agent in (("manager", manager), ("agent", one)):
            for days in (7, 30, 366):
                frm = (today - timedelta(days=days - 1)).isoformat()
                await reports.report(agent, frm, today.isoformat())  # warm-up
                times = []
                stalls = []
                data: dict[str, Any] = {}
                for _ in range(runs):
                    ticker = LoopTicker()
                    s0 = time.perf_counter()
                    data = await reports.report(agent, frm, today.isoformat())
                    times.append((time.perf_counter() - s0) * 1000)
                    stalls.append(await ticker.stop())
                results[f"{who}_{days}d"] = {
                    "conversations": data["totals"]["conversations"],
                    "ratings": data["totals"]["ratings"],
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "longest_loop_stall_ms": round(max(stalls), 1)}
                print(f"  {store.dialect:6} {who:7} {days:3} days: "
                      f"{data['totals']['conversations']:6} conversations, median "
                      f"{statistics.median(times):7.1f} ms, max {max(times):7.1f} ms, "
                      f"longest loop stall {max(stalls):6.1f} ms", flush=True)
        since = now - 30 * DAY
        return {"fill_s": round(fill_s, 1), "reports": results,
                "first_reply_update_us": await first_reply_cost(store),
                "plans": await plans(store, "shop1", ids["shop1"][5], since, now)}
    finally:
        await store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mariadb", action="store_true", help="also MariaDB")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    out: dict[str, Any] = {
        "what": "Reports.report on 100,000 conversations over 365 days (bench/reports_bench.py)",
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "runs": args.runs, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        print("sqlite:", flush=True)
        out["results"]["sqlite"] = asyncio.run(
            bench(f"sqlite:///{tmp}/reports.db", args.runs))
    if args.mariadb:
        url = mariadb_url()
        try:
            print("mariadb:", flush=True)
            out["results"]["mariadb"] = asyncio.run(bench(url, args.runs))
        finally:
            drop_mariadb(url)
    dest = ROOT / "bench" / "results" / "reports-bench.json"
    dest.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
