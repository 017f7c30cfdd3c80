"""UI benchmark: how long the console's workbench and history page take to become usable
with a big agent (docs/performance.md, "Console and history page load").

    .venv/bin/python bench/ui_bench.py                       # SQLite, 5 runs each
    .venv/bin/python bench/ui_bench.py --mariadb             # also MariaDB ($WOLIVE_TEST_MYSQL_URL)
    .venv/bin/python bench/ui_bench.py --runs 9 --keep       # more runs; keep the temp dir

1. A fresh database (SQLite in a temp dir, or a fresh MariaDB database) gets the business
   `shop1` and the agent `boss` (`wolive.py --create-admin`), then, inserted in bulk with
   SQLAlchemy Core (executemany): 1,000 visitors, each with an open conversation
   (`wolive_queue` `normal`) with boss, and 100,000 messages (100 per visitor, both
   directions, the last 60 days, the newest few of each visitor unread).
2. `python wolive.py` serves it. Debian's Chromium (/usr/bin/chromium, Playwright's sync
   API) signs in once; each run is a fresh browser context (cold HTTP cache, the signed-in
   cookies) at 1280x800.
3. Usable, measured inside the page with performance.now() (0 = navigation start). An init
   script (runs before the page's own) watches the DOM and stamps `window.__woliveReady`:
   - workbench `list`: the first conversation row is in `#convs`; then the bench clicks the
     first conversation and `open` is the time from that click until its messages are in
     `#messages`; `usable` = list + open (the page cannot show a conversation's messages
     before someone picks one).
   - history `usable`: the first result row is in `#visitors` (the page searches the last 30
     days on load).
   Median and max of the runs; the target is under 1 s each.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USER, PASSWORD, BUSINESS = "boss", "correct horse 42", "shop1"
CHANNEL_SECRET = "ui-bench-channel-secret"
VIEWPORT = {"width": 1280, "height": 800}

READY_SCRIPT = """
(() => {
  const r = window.__woliveReady = window.__woliveReady || {};
  const check = () => {
    const now = performance.now();
    if (r.list === undefined && document.querySelector('#convs .conv')) { r.list = now; }
    if (r.history === undefined && document.querySelector('#visitors .vrow')) { r.history = now; }
    if (r.clicked !== undefined && r.open === undefined &&
        document.querySelector('#messages .msg[data-cid]')) { r.open = now - r.clicked; }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
  document.addEventListener('DOMContentLoaded', check);
})();
"""


# ---- the data ----------------------------------------------------------------------------

WORDS = ("您好 请问 订单 什么时候 发货 可以 退换 尺码 颜色 优惠券 包邮 快递 地址 修改 谢谢 "
         "hello order shipping refund size thanks please tracking number").split()


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))


def fill(db_url: str, conversations: int, per_conversation: int, seed: int = 1) -> dict[str, Any]:
    """Bulk-insert visitors, open conversations with boss and their messages."""
    from sqlalchemy import create_engine, select

    from realtime.pusher.signing import visitor_channel
    from store import schema as t

    sync_url = db_url.replace("mysql://", "mysql+pymysql://", 1)
    engine = create_engine(sync_url)
    rng = random.Random(seed)
    now = int(time.time())
    started = time.perf_counter()
    with engine.begin() as conn:
        service_id = conn.execute(select(t.service.c.service_id).where(
            t.service.c.user_name == USER)).scalar_one()
        visitors, queue = [], []
        for i in range(conversations):
            vid = f"bench-v{i:05d}"
            visitors.append({"visiter_id": vid, "visiter_name": f"访客{i:04d}",
                             "channel": visitor_channel(CHANNEL_SECRET, BUSINESS, vid),
                             "avatar": "", "ip": f"10.0.{i // 256}.{i % 256}",
                             "from_url": f"https://shop.example.com/p/{i}",
                             "business_id": BUSINESS, "state": "offline"})
            queue.append({"visiter_id": vid, "service_id": service_id,
                          "business_id": BUSINESS, "state": "normal"})
        conn.execute(t.visiter.insert(), visitors)
        conn.execute(t.queue.insert(), queue)
        # Messages in time order across all conversations, as a live server would store them.
        msgs = []
        for i in range(conversations):
            vid = visitors[i]["visiter_id"]
            start = now - rng.randint(0, 60 * 86400)
            ts = start
            for k in range(per_conversation):
                ts += rng.randint(5, 600)
                msgs.append((min(ts, now), vid, k))
        msgs.sort()
        rows = []
        for ts, vid, k in msgs:
            to_service = k % 2 == 0
            rows.append({"visiter_id": vid, "service_id": service_id, "business_id": BUSINESS,
                         "content": sentence(rng), "timestamp": ts,
                         "state": "unread" if to_service and k >= per_conversation - 3
                         else "readed",
                         "direction": "to_service" if to_service else "to_visiter",
                         "msg_type": "text"})
        for n in range(0, len(rows), 5000):
            conn.execute(t.chats.insert(), rows[n:n + 5000])
    engine.dispose()
    return {"conversations": conversations, "messages": len(rows),
            "fill_s": round(time.perf_counter() - started, 2)}


# ---- the server --------------------------------------------------------------------------

def write_config(tmp: Path, db_url: str) -> Path:
    import yaml
    cfg = {"server": {"host": "127.0.0.1", "port": 0, "demo_port": None, "data_dir": "data",
                      "channel_secret": CHANNEL_SECRET},
           "database": {"url": db_url}, "security": {"bcrypt_rounds": 4},
           "log_level": "warning"}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def create_admin(config: Path) -> None:
    env = dict(os.environ, WOLIVE_ADMIN_PASSWORD=PASSWORD)
    subprocess.run([sys.executable, str(ROOT / "wolive.py"), "--config", str(config),
                    "--create-admin", USER, "--business-id", BUSINESS],
                   check=True, env=env, capture_output=True, text=True, timeout=120)


def start(config: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    out = open(log, "wb")
    proc = subprocess.Popen([sys.executable, str(ROOT / "wolive.py"), "--config", str(config)],
                            stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    out.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"wolive ready on (https?://\S+?)/", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("wolive did not start:\n" + log.read_text(errors="replace"))


# ---- the browser -------------------------------------------------------------------------

def measure(base: str, runs: int, shots: Path | None) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright
    out: dict[str, list[float]] = {"workbench_list": [], "workbench_open": [],
                                   "workbench_usable": [], "history_usable": [],
                                   "getchats_ms": [], "searchhistory_ms": []}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN")
        page = ctx.new_page()
        page.goto(f"{base}/admin/login/index")
        page.fill("input[name=username]", USER)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r"/admin/index/index"))
        state = ctx.storage_state()
        ctx.close()
        for run in range(runs + 1):      # run 0 warms the server (template, query plans)
            ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", storage_state=state)
            ctx.add_init_script(READY_SCRIPT)
            page = ctx.new_page()
            page.goto(f"{base}/admin/index/index", wait_until="commit")
            page.wait_for_function("window.__woliveReady && window.__woliveReady.list",
                                   timeout=30000)
            rows = page.locator("#convs .conv").count()
            page.evaluate("window.__woliveReady.clicked = performance.now()")
            page.locator("#convs .conv").first.click()
            page.wait_for_function("window.__woliveReady.open !== undefined", timeout=30000)
            r = page.evaluate("window.__woliveReady")
            api = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/admin/set/getchats'))
                .map(e => e.responseEnd - e.requestStart)""")
            if run:
                out["workbench_list"].append(r["list"])
                out["workbench_open"].append(r["open"])
                out["workbench_usable"].append(r["list"] + r["open"])
                if api:
                    out["getchats_ms"].append(api[0])
            if shots and run == runs:
                page.screenshot(path=str(shots / "bench-workbench.png"))
            print(f"  workbench run {run}: list {r['list']:.0f} ms ({rows} rows), "
                  f"open {r['open']:.0f} ms", flush=True)

            page = ctx.new_page()
            page.goto(f"{base}/admin/page/history", wait_until="commit")
            page.wait_for_function("window.__woliveReady && window.__woliveReady.history",
                                   timeout=30000)
            r = page.evaluate("window.__woliveReady")
            rows = page.locator("#visitors .vrow").count()
            api = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(e => e.name.includes('/admin/set/searchhistory'))
                .map(e => e.responseEnd - e.requestStart)""")
            if run:
                out["history_usable"].append(r["history"])
                if api:
                    out["searchhistory_ms"].append(api[0])
            if shots and run == runs:
                page.screenshot(path=str(shots / "bench-history.png"))
            print(f"  history run {run}: {r['history']:.0f} ms ({rows} rows)", flush=True)
            ctx.close()
        browser.close()
    return out


def summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values)), "max": round(max(values)),
            "min": round(min(values))}


def mariadb_url() -> str:
    import pymysql
    base = os.environ.get("WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306/")
    u = urlsplit(base)
    name = "wolive_uibench_" + secrets.token_hex(4)
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


def bench(db: str, args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"wolive-uibench-{db}-"))
    db_url = f"sqlite:///{tmp}/data/wolive.db" if db == "sqlite" else mariadb_url()
    proc = None
    try:
        config = write_config(tmp, db_url)
        create_admin(config)
        filled = fill(db_url, args.conversations, args.messages // args.conversations)
        print(f"{db}: filled {filled}", flush=True)
        proc, base = start(config, tmp / "server.log")
        shots = ROOT / "bench" / "results" if args.screenshots else None
        if shots:
            shots.mkdir(parents=True, exist_ok=True)
        times = measure(base, args.runs, shots)
        return {"db": db, **filled, "runs": args.runs,
                **{k: summary(v) for k, v in times.items()}, "raw": times}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if db != "sqlite":
            drop_mariadb(db_url)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--conversations", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--mariadb", action="store_true", help="also MariaDB")
    ap.add_argument("--only-mariadb", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (server log, db)")
    ap.add_argument("--screenshots", action="store_true",
                    help="bench/results/bench-workbench.png, bench-history.png")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results" / "ui-bench.json"))
    args = ap.parse_args()
    dbs = ["mariadb"] if args.only_mariadb else ["sqlite"] + (["mariadb"] if args.mariadb else [])
    results = [bench(db, args) for db in dbs]
    machine = {"cpu": next((ln.split(":", 1)[1].strip() for ln in
                            Path("/proc/cpuinfo").read_text().splitlines()
                            if ln.startswith("model name")), platform.processor()),
               "cores": os.cpu_count(), "python": platform.python_version(),
               "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True,
                                          text=True).stdout.strip()}
    print(f"\nmachine: {machine}")
    print(f"{'db':8} {'page':24} {'median ms':>10} {'max ms':>8}")
    for r in results:
        for key in ("workbench_list", "workbench_open", "workbench_usable", "history_usable",
                    "getchats_ms", "searchhistory_ms"):
            s = r.get(key) or {}
            if s:
                print(f"{r['db']:8} {key:24} {s['median']:>10} {s['max']:>8}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=1),
                               encoding="utf-8")
    print(f"results: {args.json}")


if __name__ == "__main__":
    main()
