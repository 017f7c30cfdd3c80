"""Connect storm: thousands of visitor windows and a team of agents opening their sockets at
once, then everyone's online state in the database checked against reality (issue 10 item 7).
Not a test; see docs/performance.md, "Connect storm on SQLite (issue 10 item 7)".

    .venv/bin/python bench/connect_storm.py                      # SQLite, 5,000 visitors
    .venv/bin/python bench/connect_storm.py --db sqlite,mariadb  # both databases
    .venv/bin/python bench/connect_storm.py --visitors 500 --agents 5   # a quick look

For each database a fresh server (`bench/run.py`'s `Server`: `bench/serve.py` on a generated
config, pinned to core 0, this process on core 1) and a fresh database:

1. **set-up** (not measured): the business `storm` and its super_manager; `--agents` - 1 more
   agents registered by it (`/admin/manager/registForService`); `--visitors` visitors each
   opening the chat window once (`/index/index/home` from a browser of its own: the visitor
   row and its `channel`). With `--arrive` the visitors are new instead: each opens the
   window page and sends `/admin/event/notice` in the storm, just before its socket.
2. **storm**: every visitor opens a Pusher socket and subscribes to `cu{channel}` (as the
   visitor window does) and every agent logs in (`/admin/login/index`), opens a socket with
   its cookie and subscribes to `kefu{id}`, `ud{id}`, `all{business}` and
   `presence-business-{business}` (signed by `/pusher/auth`), as a console page does; at most
   `--concurrency` of these at a time, the agents spread evenly among the visitors.
   Meanwhile the super_manager, already signed in, reads its waiting list and sets its
   status in turn (`probe`: latency, failures). Counted: failed handshakes (no
   `pusher:connection_established`), failed subscriptions, failed window pages / notices,
   HTTP answers >= 500; agent handshake time (login to last subscription).
3. **online check**: the database polled until every connected agent and visitor is
   `online` (or `--settle` seconds pass); `wrong` = those still not online then.
4. **offline check**: every socket closed; the database polled until all of them are
   `offline` (the 3 s vacate grace, then up to `--settle` seconds); `wrong` likewise.

Prints one JSON object per database (and keeps them, as a list, in `--out`); the
server log's error lines are counted by kind. Needs a raised open-files limit (done here,
up to the hard limit: 2 descriptors per visitor).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sqlite3
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chatload import CookieWS, Http, http  # noqa: E402
from loadgen import WS, control_frame  # noqa: E402
from run import (HERE, Server, error_kinds, fresh_mariadb, machine,  # noqa: E402
                 raise_nofile, tree_version)

BUSINESS = "storm"
BOSS, PASSWORD = "boss", "storm-password"
KEY = "bench"
SOCKET_PATH = f"/app/{KEY}?protocol=7&client=bench&version=1.0&flash=false"
CHANNEL = re.compile(rb'"channel": "([^"]+)"')


class Counts:
    def __init__(self) -> None:
        self.handshake_failed = {"visitor": 0, "agent": 0}
        self.subscribe_failed = {"visitor": 0, "agent": 0}
        self.http_5xx = 0
        self.window_failed = 0
        self.first_failures: list[str] = []

    def note(self, what: str) -> None:
        if len(self.first_failures) < 5:
            self.first_failures.append(what[:300])


def on_text(ws: WS, payload: bytes, t: int) -> None:
    control_frame(ws, payload, t)


async def open_socket(host: str, port: int, cookie: str = "") -> WS:
    """A Pusher socket past `pusher:connection_established` (raises otherwise)."""
    loop = asyncio.get_running_loop()
    _, ws = await loop.create_connection(
        lambda: CookieWS(f"{host}:{port}", SOCKET_PATH, on_text, cookie) if cookie
        else WS(f"{host}:{port}", SOCKET_PATH, on_text), host, port)
    assert ws.waiter is not None
    event = await asyncio.wait_for(ws.waiter, 60)
    if event != "pusher:connection_established":
        raise RuntimeError(f"first frame was {event}")
    return ws


async def subscribe(ws: WS, channel: str, auth: str = "", channel_data: str = "") -> None:
    """Subscribe and wait for the answer (raises on anything but success)."""
    ws.waiter = asyncio.get_running_loop().create_future()
    data: dict[str, str] = {"auth": auth, "channel": channel}
    if channel_data:
        data["channel_data"] = channel_data
    ws.send(json.dumps({"event": "pusher:subscribe", "data": data}))
    event = await asyncio.wait_for(ws.waiter, 60)
    ws.waiter = None
    if event != "pusher_internal:subscription_succeeded":
        raise RuntimeError(f"subscribe {channel}: {event}")


class Storm:
    def __init__(self, args: argparse.Namespace, port: int, db: Callable[[str], list[Any]]
                 ) -> None:
        self.args = args
        self.host, self.port = "127.0.0.1", port
        self.db = db
        self.counts = Counts()
        self.agents: list[dict[str, Any]] = []      # {service_id, user_name}
        self.visitors: list[dict[str, Any]] = []    # {vid, channel}
        self.sockets: list[WS] = []
        self.online_agents: list[int] = []
        self.online_visitors: list[str] = []        # channels
        self.agent_s: list[float] = []              # login → last subscription, seconds
        self.probe: dict[str, Any] = {"n": 0, "failed": 0, "max_s": 0.0, "lat": []}

    def status(self, code: int, what: str) -> None:
        if code >= 500:
            self.counts.http_5xx += 1
            self.counts.note(f"{what}: {code}")

    # ---- set-up ------------------------------------------------------------------------

    async def login(self, user: str) -> Http:
        h = await http(self.host, self.port)
        status, _, _ = await h.request("GET", "/admin/login/index")
        self.status(status, "login page")
        if status != 200:
            h.close()
            raise RuntimeError(f"login page for {user} answered {status}")
        status, _, body = await h.request("POST", "/admin/login/index", form={
            "username": user, "password": PASSWORD, "_xsrf": h.cookies.get("_xsrf", "")})
        self.status(status, "login")
        if status != 302:
            raise RuntimeError(f"login {user} answered {status}: {body[:200]!r}")
        return h

    async def setup(self) -> None:
        boss = await self.login(BOSS)
        rows = self.db(f"SELECT service_id FROM wolive_service WHERE user_name = '{BOSS}'")
        self.agents.append({"service_id": int(rows[0][0]), "user_name": BOSS})
        for i in range(1, self.args.agents):
            name = f"agent{i}"
            status, _, body = await boss.request(
                "POST", "/admin/manager/registForService",
                form={"user_name": name, "nick_name": name, "password": PASSWORD,
                      "password2": PASSWORD, "_xsrf": boss.cookies.get("_xsrf", "")},
                headers={"X-XSRFToken": boss.cookies.get("_xsrf", "")})
            answer = json.loads(body)
            if status != 200 or answer.get("code") != 0:
                raise RuntimeError(f"register {name}: {status} {body[:200]!r}")
            self.agents.append({"service_id": int(answer["data"]["service_id"]),
                                "user_name": name})
        boss.close()
        gate = asyncio.Semaphore(50)

        async def visitor(i: int) -> None:
            vid = f"storm-{i}"
            async with gate:
                h = await http(self.host, self.port)
                try:
                    status, _, body = await h.request(
                        "GET", f"/index/index/home?business_id={BUSINESS}&visiter_id={vid}")
                finally:
                    h.close()
            m = CHANNEL.search(body)
            if status != 200 or not m:
                raise RuntimeError(f"visitor {vid}: {status} {body[:200]!r}")
            self.visitors.append({"vid": vid, "channel": m.group(1).decode()})

        if self.args.arrive:  # the window pages are opened in the storm
            self.visitors = [{"vid": f"storm-{i}", "channel": ""}
                             for i in range(self.args.visitors)]
        else:
            await asyncio.gather(*(visitor(i) for i in range(self.args.visitors)))

    # ---- the storm ---------------------------------------------------------------------

    async def window(self, v: dict[str, Any]) -> bool:
        """The chat window page and the notice (a new visitor, as the window opens)."""
        vid = v["vid"]
        try:
            h = await http(self.host, self.port)
        except OSError as exc:
            self.counts.handshake_failed["visitor"] += 1
            self.counts.note(f"visitor page connect: {exc}")
            return False
        try:
            status, _, body = await h.request(
                "GET", f"/index/index/home?business_id={BUSINESS}&visiter_id={vid}")
            self.status(status, "window page")
            m = CHANNEL.search(body)
            if status != 200 or not m:
                self.counts.window_failed += 1
                self.counts.note(f"window page {vid}: {status} {body[:120]!r}")
                return False
            v["channel"] = m.group(1).decode()
            status, _, body = await h.request("POST", "/admin/event/notice", form={
                "visiter_id": vid, "business_id": BUSINESS, "channel": v["channel"],
                "record": "http://shop.example/"})
            self.status(status, "notice")
            if status != 200:
                self.counts.window_failed += 1
                self.counts.note(f"notice {vid}: {status} {body[:120]!r}")
        except ConnectionError as exc:
            self.counts.window_failed += 1
            self.counts.note(f"window {vid}: {exc}")
            return False
        finally:
            h.close()
        return True

    async def visitor_socket(self, v: dict[str, Any]) -> None:
        if self.args.arrive and not await self.window(v):
            return
        try:
            ws = await open_socket(self.host, self.port)
        except Exception as exc:
            self.counts.handshake_failed["visitor"] += 1
            self.counts.note(f"visitor handshake: {exc}")
            return
        self.sockets.append(ws)
        try:
            await subscribe(ws, "cu" + v["channel"])
        except Exception as exc:
            self.counts.subscribe_failed["visitor"] += 1
            self.counts.note(f"visitor subscribe: {exc}")
            return
        self.online_visitors.append(v["channel"])

    async def agent_socket(self, a: dict[str, Any]) -> None:
        t0 = time.monotonic()
        try:
            h = await self.login(a["user_name"])
        except Exception as exc:
            self.counts.handshake_failed["agent"] += 1
            self.counts.note(f"agent login: {exc}")
            return
        cookie = "; ".join(f"{k}={v}" for k, v in h.cookies.items())
        try:
            ws = await open_socket(self.host, self.port, cookie)
        except Exception as exc:
            self.counts.handshake_failed["agent"] += 1
            self.counts.note(f"agent handshake: {exc}")
            h.close()
            return
        self.sockets.append(ws)
        sid = a["service_id"]
        try:
            for channel in (f"kefu{sid}", f"ud{sid}", f"all{BUSINESS}"):
                await subscribe(ws, channel)
            team = f"presence-business-{BUSINESS}"
            status, _, body = await h.request(
                "POST", "/pusher/auth", form={"socket_id": ws.socket_id or "",
                                              "channel_name": team},
                headers={"X-XSRFToken": h.cookies.get("_xsrf", "")})
            self.status(status, "pusher/auth")
            if status != 200:
                raise RuntimeError(f"/pusher/auth answered {status}: {body[:200]!r}")
            signed = json.loads(body)
            await subscribe(ws, team, signed["auth"], signed.get("channel_data", ""))
        except Exception as exc:
            self.counts.subscribe_failed["agent"] += 1
            self.counts.note(f"agent subscribe: {exc}")
            return
        finally:
            h.close()
        self.online_agents.append(sid)
        self.agent_s.append(time.monotonic() - t0)

    async def probing(self, stop: asyncio.Event) -> None:
        """An agent already at work during the storm: its waiting list (a read) and its
        status (a write), in turn, one after the other; latency and failures counted."""
        h = await self.login(BOSS)
        xsrf = h.cookies.get("_xsrf", "")
        i = 0
        while not stop.is_set():
            i += 1
            t0 = time.monotonic()
            try:
                if i % 2:
                    status, _, _ = await h.request("GET", "/admin/set/getwait")
                else:
                    status, _, _ = await h.request(
                        "POST", "/admin/set/status",
                        form={"status": "available", "_xsrf": xsrf},
                        headers={"X-XSRFToken": xsrf})
            except ConnectionError:
                status = 599
                h = await self.login(BOSS)
                xsrf = h.cookies.get("_xsrf", "")
            lat = time.monotonic() - t0
            self.status(status, "probe")
            self.probe["n"] += 1
            self.probe["lat"].append(lat)
            if status != 200:
                self.probe["failed"] += 1
                self.counts.note(f"probe: {status}")
            await asyncio.sleep(0.05)
        h.close()

    async def storm(self) -> float:
        jobs: list[Callable[[], Any]] = [
            (lambda v=v: self.visitor_socket(v)) for v in self.visitors]  # type: ignore
        step = max(1, len(jobs) // (len(self.agents) + 1))
        for i, a in enumerate(self.agents):  # spread among the visitors
            jobs.insert((i + 1) * step + i, lambda a=a: self.agent_socket(a))
        gate = asyncio.Semaphore(self.args.concurrency)

        async def run(job: Callable[[], Any]) -> None:
            async with gate:
                await job()

        stop = asyncio.Event()
        probe = asyncio.ensure_future(self.probing(stop))
        t0 = time.monotonic()
        await asyncio.gather(*(run(j) for j in jobs))
        took = time.monotonic() - t0
        stop.set()
        await probe
        return took

    # ---- checks ------------------------------------------------------------------------

    def wrong(self, online: bool) -> dict[str, int]:
        """Agents and visitors whose database state is not what reality says: `online`
        (the connected ones online) or not (everyone offline)."""
        want = "online" if online else "offline"
        agents = {int(r[0]): r[1] for r in self.db(
            f"SELECT service_id, state FROM wolive_service WHERE business_id = '{BUSINESS}'")}
        visitors = {r[0]: r[1] for r in self.db(
            f"SELECT channel, state FROM wolive_visiter WHERE business_id = '{BUSINESS}'")}
        if online:
            on_a, on_v = set(self.online_agents), set(self.online_visitors)
            return {"agents": sum(1 for k, s in agents.items() if s != ("online" if k in on_a
                                                                         else "offline")),
                    "visitors": sum(1 for k, s in visitors.items()
                                    if s != ("online" if k in on_v else "offline"))}
        return {"agents": sum(1 for s in agents.values() if s != want),
                "visitors": sum(1 for s in visitors.values() if s != want)}

    async def settle(self, online: bool, wait_first: float = 0.0) -> dict[str, Any]:
        """Poll until no state is wrong or `--settle` s (after `wait_first`) pass."""
        t0 = time.monotonic()
        deadline = t0 + wait_first + self.args.settle
        while True:
            wrong = self.wrong(online)
            if not any(wrong.values()) or time.monotonic() > deadline:
                return {"wrong": wrong, "s": round(time.monotonic() - t0, 2)}
            await asyncio.sleep(0.25)

    async def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        await self.setup()
        setup_s = time.monotonic() - t0
        storm_s = await self.storm()
        online = await self.settle(True)
        for ws in self.sockets:
            if ws.transport is not None:
                ws.transport.close()
        await asyncio.gather(*(ws.lost for ws in self.sockets))
        offline = await self.settle(False, wait_first=3.0)
        c = self.counts
        lat = sorted(self.probe.pop("lat"))
        agent_s = sorted(self.agent_s)

        def q(values: list[float], f: float) -> float:
            return round(values[min(len(values) - 1, int(f * len(values)))], 3) \
                if values else 0.0
        return {"visitors": len(self.visitors), "agents": len(self.agents),
                "concurrency": self.args.concurrency, "setup_s": round(setup_s, 1),
                "storm_s": round(storm_s, 1),
                "handshake_failed": c.handshake_failed,
                "subscribe_failed": c.subscribe_failed, "http_5xx": c.http_5xx,
                "window_failed": c.window_failed, "arrive": self.args.arrive,
                "agent_handshake_s": {"p50": q(agent_s, 0.5), "max": q(agent_s, 1.0)},
                "probe": {**self.probe, "p50_s": q(lat, 0.5), "p99_s": q(lat, 0.99),
                          "max_s": q(lat, 1.0)},
                "connected": {"agents": len(self.online_agents),
                              "visitors": len(self.online_visitors)},
                "online_check": online, "offline_check": offline,
                "first_failures": c.first_failures}


def sqlite_reader(path: str) -> Callable[[str], list[Any]]:
    def query(sql: str) -> list[Any]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    return query


def mysql_reader(url: str) -> Callable[[str], list[Any]]:
    from urllib.parse import urlsplit

    import pymysql
    u = urlsplit(url)

    def query(sql: str) -> list[Any]:
        conn = pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                               user=u.username or "root", password=u.password or "",
                               database=u.path.lstrip("/"), autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()
    return query


def run_db(db: str, args: argparse.Namespace) -> dict[str, Any]:
    url, drop = ("", None)
    if db == "mariadb":
        url, drop = fresh_mariadb(args.mysql_url)
    try:
        server = Server([], args.log_level, args.server_cpu, args.tree, db_url=url,
                        admin=f"{BOSS}:{PASSWORD}:{BUSINESS}")
        try:
            reader = mysql_reader(url) if url else \
                sqlite_reader(os.path.join(server.dir, "data", "wolive.db"))
            result = asyncio.run(Storm(args, server.port, reader).run())
            errors = server.errors()
            result["server_errors"] = len(errors)
            result["server_error_kinds"] = error_kinds(errors)
            if errors:
                result["server_first_error"] = errors[0][:300]
            warnings = [line for line in open(server.log.name) if " WARNING " in line]
            result["server_warnings"] = len(warnings)
            result["server_first_warnings"] = [w.rstrip()[:200] for w in warnings[:3]]
        finally:
            server.stop()
    finally:
        if drop:
            drop()
    result["db"] = db
    result["tree"] = tree_version(args.tree)
    result["machine"] = machine()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="sqlite", help="sqlite, mariadb or both (comma)")
    ap.add_argument("--visitors", type=int, default=5000)
    ap.add_argument("--agents", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=100,
                    help="handshakes (socket + subscriptions) in flight at once")
    ap.add_argument("--settle", type=float, default=60.0,
                    help="seconds the states may take to become right before they count "
                         "as wrong")
    ap.add_argument("--tree", default=os.path.dirname(HERE),
                    help="the wolive checkout to serve (default: this one)")
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--loadgen-cpu", default="1")
    ap.add_argument("--log-level", default="WARNING")
    ap.add_argument("--mysql-url", default=os.environ.get(
        "WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306/"))
    ap.add_argument("--arrive", action="store_true",
                    help="new visitors: each opens the chat window page and sends the notice "
                         "in the storm, then its socket (default: the visitors exist and "
                         "only reconnect their sockets)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "storm-latest.json"),
                    help="where the results go (a JSON list, one object per database)")
    ap.add_argument("--label", default="", help="kept in the result (e.g. before/after)")
    args = ap.parse_args()
    raise_nofile()
    try:
        os.sched_setaffinity(0, {int(args.loadgen_cpu)})
    except (OSError, ValueError):
        pass
    results = []
    for db in args.db.split(","):
        result = run_db(db.strip(), args)
        result["label"] = args.label
        results.append(result)
        print(json.dumps(result), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
