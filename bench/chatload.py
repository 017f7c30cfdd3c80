"""The chat-path load generator: visitors arriving and messages both ways, against a wolive
that an agent is online in over a real WebSocket. Run by `bench/run.py --chat` (pinned to
its own core); prints one JSON object on stdout.

    python bench/chatload.py --port P --server-pid PID --counts FILE [--quick]

The server must run `bench/serve.py --variant stmtcount` (statement counters, dumped to
FILE on SIGUSR2) on a database with the business `bench` and its super_manager
`boss` / `bench-password` (`wolive.py --create-admin`). Phases, in order:

1. **statements**: one request at a time, counters read around each — the chat window page
   and the notice of a new visitor, of a returning one, a visitor message, an agent reply.
2. **arrivals** at fixed rates (new visitors, and returning ones): the chat window page
   (`/index/index/home`) then `/admin/event/notice` on a fresh connection, as a browser
   opening the window; latency = page request written → notice answer read.
3. **visitor messages** (`/admin/event/chats` → the agent's `kefu{id}` `cu-event`) and
   **agent replies** (`/admin/set/chats` → the visitor's `cu{channel}` `my-event`) at fixed
   rates and flat out; latency = request written → the WebSocket frame carrying that
   message read by the other side.
4. **burst**: `--burst` new visitors (default 500) arriving evenly within 5 s, each on its
   own connection, nobody waiting for anybody; every answer's status and code are counted.

Server CPU is utime + stime of the server's pid (/proc/PID/stat) over a phase, divided by
the requests the phase completed; the database server's the same for the `mariadbd` /
`mysqld` process when there is one (it serves other clients too on a shared machine).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from typing import Any, Callable, Optional
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import (WS, control_frame, cpu_s, now_ns, own_cpu_s,  # noqa: E402
                     percentile, uvloop)

BUSINESS = "bench"
AGENT = "boss"
AGENT_PASSWORD = "bench-password"
#: The target of the issue: a rate counts as sustained while its p99 stays within this.
P99_MS = 20.0
TOKEN = re.compile(rb"bench#(\d+)#")


# ---- helpers on /proc ----------------------------------------------------------------------

def db_server_pid() -> Optional[int]:
    """The pid of a local `mariadbd` / `mysqld`, if any."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip() in ("mariadbd", "mysqld"):
                        return int(name)
            except OSError:
                continue
    return None


class Counters:
    """The server's statement counters (the `stmtcount` variant), read through SIGUSR2."""

    def __init__(self, pid: int, path: str) -> None:
        self.pid, self.path, self.seq = pid, path, 0

    async def read(self) -> dict[str, Any]:
        os.kill(self.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(self.path) as f:
                    data = json.load(f)
                if data["seq"] > self.seq:
                    self.seq = data["seq"]
                    return data
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.002)
        raise RuntimeError("the server did not dump its counters (variant stmtcount?)")


def diff(a: dict[str, Any], b: dict[str, Any], n: int) -> dict[str, Any]:
    """Counters from `a` to `b`, per request (`n` requests)."""
    out = {k: round((b[k] - a[k]) / n, 2) for k in
           ("statements", "begin", "commit", "rollback", "checkout", "reset")}
    verbs = {v: round((b["verbs"].get(v, 0) - a["verbs"].get(v, 0)) / n, 2)
             for v in b["verbs"]}
    out["verbs"] = {v: c for v, c in sorted(verbs.items()) if c}
    return out


# ---- a keep-alive HTTP/1.1 client --------------------------------------------------------

class Http(asyncio.Protocol):
    """One keep-alive connection, one request at a time; keeps cookies like a browser."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.transport: Optional[asyncio.Transport] = None
        self.buf = b""
        self.waiter: Optional[asyncio.Future[tuple[int, dict[str, str], bytes]]] = None
        self.cookies: dict[str, str] = {}
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def request(self, method: str, path: str, form: Optional[dict[str, Any]] = None,
                headers: Optional[dict[str, str]] = None
                ) -> "asyncio.Future[tuple[int, dict[str, str], bytes]]":
        body = urlencode(form).encode() if form is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for k, v in (headers or {}).items():
            head.append(f"{k}: {v}")
        if method == "POST":
            head += ["Content-Type: application/x-www-form-urlencoded",
                     f"Content-Length: {len(body)}"]
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = self.buf[:end].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                k, _, v = value.split(";", 1)[0].partition("=")
                self.cookies[k] = v
            headers[name] = value
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4:end + 4 + length]
        self.buf = self.buf[end + 4 + length:]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((int(lines[0].split(" ", 2)[1]), headers, body))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def http(host: str, port: int) -> Http:
    _, h = await asyncio.get_running_loop().create_connection(
        lambda: Http(f"{host}:{port}"), host, port)
    return h


class CookieWS(WS):
    """A Pusher socket that sends the agent's cookie with its handshake (a console)."""

    def __init__(self, host: str, path: str, on_text: Callable[[WS, bytes, int], None],
                 cookie: str) -> None:
        super().__init__(host, path, on_text)
        self.cookie = cookie

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        import base64
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write((  # type: ignore[attr-defined]
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nCookie: {self.cookie}\r\n\r\n").encode())


async def socket(host: str, port: int, key: str, channels: list[str],
                 on_text: Callable[[WS, bytes, int], None], cookie: str = "") -> WS:
    """A Pusher socket subscribed to `channels` (each subscription waited for)."""
    loop = asyncio.get_running_loop()
    path = f"/app/{key}?protocol=7&client=bench&version=1.0&flash=false"
    _, ws = await loop.create_connection(
        lambda: CookieWS(f"{host}:{port}", path, on_text, cookie), host, port)
    assert ws.waiter is not None
    if await asyncio.wait_for(ws.waiter, 30) != "pusher:connection_established":
        raise RuntimeError("no connection_established")
    for channel in channels:
        ws.waiter = loop.create_future()
        ws.send(json.dumps({"event": "pusher:subscribe",
                            "data": {"auth": "", "channel": channel}}))
        event = await asyncio.wait_for(ws.waiter, 30)
        if event != "pusher_internal:subscription_succeeded":
            raise RuntimeError(f"subscribe {channel}: {event}")
    ws.waiter = None
    return ws


# ---- the bench -------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host, self.port, self.pid = args.host, args.port, args.server_pid
        self.db_pid = db_server_pid() if args.db == "mariadb" else None
        self.counters = Counters(self.pid, args.counts)
        self.sent: dict[int, int] = {}        # token → request written (ns)
        self.jars: dict[str, dict[str, str]] = {}  # visiter_id → its browser's cookies
        self.latencies: list[int] = []
        self.seq = 0
        self.visitors: list[dict[str, Any]] = []
        self.agent: Optional[Http] = None
        self.agent_conns: list[Http] = []
        self.xsrf = ""
        self.sockets: list[WS] = []

    # frames on any socket: a message token closes its latency
    def on_text(self, ws: WS, payload: bytes, t: int) -> None:
        if control_frame(ws, payload, t):
            return
        m = TOKEN.search(payload)
        if m:
            t0 = self.sent.pop(int(m.group(1)), None)
            if t0 is not None:
                self.latencies.append(t - t0)

    def token(self) -> tuple[int, str]:
        self.seq += 1
        return self.seq, f"bench#{self.seq}# hello"

    async def login(self) -> None:
        conns = []
        for _ in range(self.args.conns):
            h = await http(self.host, self.port)
            await h.request("GET", "/admin/login/index")
            status, _, body = await h.request("POST", "/admin/login/index", form={
                "username": AGENT, "password": AGENT_PASSWORD, "_xsrf": h.cookies["_xsrf"]})
            if status != 302:
                raise RuntimeError(f"login answered {status}: {body[:200]!r}")
            conns.append(h)
        self.agent_conns = conns
        self.agent = conns[0]
        cookie = "; ".join(f"{k}={v}" for k, v in self.agent.cookies.items())
        # The console's socket: kefu1 (messages), ud1 (assignments); online from now on.
        self.sockets.append(await socket(self.host, self.port, self.args.key,
                                         ["kefu1", "ud1"], self.on_text, cookie))
        await asyncio.sleep(0.5)  # presence is written after the subscription

    async def arrive(self, vid: str, h: Optional[Http] = None
                     ) -> tuple[int, int, int, int, str]:
        """The chat window page then the notice: (latency ns, page status, notice status,
        notice code, channel). A visitor seen before comes back as the same browser (its
        cookies: since issue 10 another browser with the same id is not that visitor)."""
        own = h is None
        h = h or await http(self.host, self.port)
        if own and vid in self.jars:
            h.cookies.update(self.jars[vid])
        try:
            t0 = now_ns()
            status, _, body = await h.request(
                "GET", f"/index/index/home?business_id={BUSINESS}&visiter_id={vid}")
            if status != 200:
                return now_ns() - t0, status, 0, -1, ""
            m = re.search(rb'"channel": "([^"]+)"', body)
            channel = m.group(1).decode() if m else ""
            status2, _, body2 = await h.request("POST", "/admin/event/notice", form={
                "visiter_id": vid, "business_id": BUSINESS, "channel": channel,
                "record": "http://shop.example/"})
            lat = now_ns() - t0
            self.jars[vid] = dict(h.cookies)
            try:
                code = int(json.loads(body2).get("code", -1))
            except ValueError:
                code = -1
            return lat, status, status2, code, channel
        except ConnectionError:
            return 0, 599, 0, -1, ""
        finally:
            if own:
                h.close()

    async def setup_visitors(self, n: int) -> None:
        for i in range(n):
            vid = f"talker-{i}"
            h = await http(self.host, self.port)
            _, s1, s2, code, channel = await self.arrive(vid, h)
            if (s1, s2, code) != (200, 200, 0):
                raise RuntimeError(f"visitor {vid} not assigned: {s1} {s2} {code}")
            ws = await socket(self.host, self.port, self.args.key, ["cu" + channel],
                              self.on_text)
            self.sockets.append(ws)
            self.visitors.append({"vid": vid, "channel": channel, "http": h})

    async def visitor_message(self, i: int) -> int:
        v = self.visitors[i % len(self.visitors)]
        tok, text = self.token()
        self.sent[tok] = now_ns()
        status, _, _ = await v["http"].request("POST", "/admin/event/chats", form={
            "visiter_id": v["vid"], "business_id": BUSINESS, "channel": v["channel"],
            "content": text})
        return status

    async def agent_reply(self, i: int, h: Http) -> int:
        v = self.visitors[i % len(self.visitors)]
        tok, text = self.token()
        self.sent[tok] = now_ns()
        status, _, _ = await h.request("POST", "/admin/set/chats", form={
            "visiter_id": v["vid"], "content": text},
            headers={"X-XSRFToken": h.cookies["_xsrf"]})
        return status

    # ---- phases ---------------------------------------------------------------------------

    async def statements(self) -> dict[str, Any]:
        """Counters per request, one request at a time."""
        n = self.args.stmt_samples
        out: dict[str, Any] = {}
        c = self.counters
        # The page and the notice separately, then whole arrivals: new, returning.
        for label, prefix in (("new", "stm"), ("returning", "stm")):
            pages, notices = [], []
            for i in range(n):
                vid = f"{prefix}-{i}"
                h = await http(self.host, self.port)
                h.cookies.update(self.jars.get(vid, {}))  # returning: the same browser
                p0 = await c.read()
                _, _, body = await h.request(
                    "GET", f"/index/index/home?business_id={BUSINESS}&visiter_id={vid}")
                p1 = await c.read()
                m = re.search(rb'"channel": "([^"]+)"', body)
                await h.request("POST", "/admin/event/notice", form={
                    "visiter_id": vid, "business_id": BUSINESS,
                    "channel": m.group(1).decode() if m else "", "record": "x"})
                p2 = await c.read()
                self.jars[vid] = dict(h.cookies)
                h.close()
                pages.append(diff(p0, p1, 1))
                notices.append(diff(p1, p2, 1))
            out[f"page_{label}"] = mean_counts(pages)
            out[f"notice_{label}"] = mean_counts(notices)
            out[f"arrival_{label}"] = add_counts(out[f"page_{label}"], out[f"notice_{label}"])
        msgs, replies = [], []
        assert self.agent is not None
        for i in range(n):
            a = await c.read()
            await self.visitor_message(i)
            b = await c.read()
            await self.agent_reply(i, self.agent)
            d = await c.read()
            msgs.append(diff(a, b, 1))
            replies.append(diff(b, d, 1))
        out["visitor_message"] = mean_counts(msgs)
        out["agent_reply"] = mean_counts(replies)
        await self.settle()
        self.latencies.clear()
        return out

    async def settle(self) -> None:
        """Wait until every message sent so far was heard (or 2 s without news)."""
        loop = asyncio.get_running_loop()
        last, last_t = -1, loop.time()
        while self.sent and loop.time() - last_t < 2.0:
            await asyncio.sleep(0.01)
            if len(self.sent) != last:
                last, last_t = len(self.sent), loop.time()
        self.sent.clear()

    def measure_start(self) -> tuple[float, float, float, float]:
        return (time.monotonic(), cpu_s(self.pid),
                cpu_s(self.db_pid) if self.db_pid else 0.0, own_cpu_s())

    def measure_end(self, start: tuple[float, float, float, float], done: int,
                    lat_ns: list[int], failures: int, wanted: float) -> dict[str, Any]:
        t0, c0, d0, o0 = start
        wall = time.monotonic() - t0
        lat = sorted(lat_ns)
        out = {
            "rate_wanted": wanted, "done": done, "rate": round(done / wall, 1),
            "failures": failures, "lost": done - len(lat) if wanted >= 0 else 0,
            "lat_ms": {f"p{q}": round(percentile(lat, q) / 1e6, 2) for q in (50, 99)},
            "lat_max_ms": round(lat[-1] / 1e6, 2) if lat else None,
            "server_cpu_ms_per_req": round((cpu_s(self.pid) - c0) / done * 1000, 3)
            if done else None,
            "server_cpu_util": round((cpu_s(self.pid) - c0) / wall, 3),
            "loadgen_cpu_util": round((own_cpu_s() - o0) / wall, 3),
            "wall_s": round(wall, 2),
        }
        if self.db_pid:
            out["db_cpu_ms_per_req"] = round((cpu_s(self.db_pid) - d0) / done * 1000, 3) \
                if done else None
        return out

    async def paced(self, rate: float, seconds: float,
                    one: Callable[[int], Any]) -> tuple[int, int]:
        """Start `one(i)` `rate` times a second for `seconds` (open loop, never waiting for
        an answer before the next start); returns (done, failures)."""
        loop = asyncio.get_running_loop()
        total = max(1, int(rate * seconds))
        t0 = loop.time()
        tasks = []
        for i in range(total):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        results = await asyncio.gather(*tasks)
        return len(results), sum(1 for r in results if not r)

    async def arrivals(self, rate: float, seconds: float, returning: bool,
                       tag: str) -> dict[str, Any]:
        lats: list[int] = []
        codes: dict[str, int] = {}

        async def one(i: int) -> bool:
            vid = f"ret-{i % 20}" if returning else f"{tag}-{i}"
            lat, s1, s2, code, _ = await self.arrive(vid)
            key = f"{s1}/{s2}/{code}"
            codes[key] = codes.get(key, 0) + 1
            ok = s1 == 200 and s2 == 200 and code in (0, 2)
            if ok:
                lats.append(lat)
            return ok

        if returning:  # they have been here before
            for i in range(20):
                await self.arrive(f"ret-{i}")
        start = self.measure_start()
        done, failures = await self.paced(rate, seconds, one)
        out = self.measure_end(start, done, lats, failures, rate)
        out["lost"] = 0
        out["answers"] = codes  # "page status/notice status/code": count
        return out

    async def messages(self, kind: str, rate: float, seconds: float) -> dict[str, Any]:
        """Visitor messages or agent replies at `rate`/s (0: flat out over `conns`
        connections, each sending when its previous answer came)."""
        self.latencies.clear()
        self.sent.clear()
        failures = 0
        if rate > 0:
            free = list(self.agent_conns)
            busy_visitors: set[int] = set()

            async def one(i: int) -> bool:
                if kind == "visitor":
                    j = i
                    while j % len(self.visitors) in busy_visitors:
                        j += 1
                        if j - i > len(self.visitors):
                            await asyncio.sleep(0.001)
                    busy_visitors.add(j % len(self.visitors))
                    try:
                        return await self.visitor_message(j) == 200
                    finally:
                        busy_visitors.discard(j % len(self.visitors))
                while not free:
                    await asyncio.sleep(0.001)
                h = free.pop()
                try:
                    return await self.agent_reply(i, h) == 200
                finally:
                    free.append(h)

            start = self.measure_start()
            done, failures = await self.paced(rate, seconds, one)
        else:
            loop = asyncio.get_running_loop()
            stop = loop.time() + seconds
            counts = [0] * self.args.conns
            start = self.measure_start()

            async def worker(k: int) -> None:
                nonlocal failures
                while loop.time() < stop:
                    if kind == "visitor":  # worker k talks as visitor k: one request
                        ok = await self.visitor_message(k) == 200  # at a time each
                    else:
                        ok = await self.agent_reply(k + len(counts) * counts[k],
                                                    self.agent_conns[k]) == 200
                    counts[k] += 1
                    failures += not ok

            await asyncio.gather(*(worker(k) for k in range(len(counts))))
            done = sum(counts)
        await self.settle()
        out = self.measure_end(start, done, list(self.latencies), failures, rate)
        return out

    async def burst(self) -> dict[str, Any]:
        n = self.args.burst
        return await self.arrivals(n / 5.0, 5.0, False, "burst")

    async def run(self) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {"scenario": "chat", "db": a.db}
        await self.login()
        await self.setup_visitors(max(a.talkers, a.conns))
        out["statements_per_request"] = await self.statements()
        if a.counts_only:
            return out
        ladder = lambda rates: [float(r) for r in rates.split(",") if r]  # noqa: E731
        out["arrivals_new"] = [await self.arrivals(r, a.duration, False, f"new{int(r)}")
                               for r in ladder(a.arrival_rates)]
        out["arrivals_returning"] = [await self.arrivals(r, a.duration, True, "ret")
                                     for r in ladder(a.arrival_rates)]
        for kind in ("visitor", "agent"):
            rows = []
            for r in ladder(a.message_rates):
                rows.append(await self.messages(kind, r, a.duration))
                if rows[-1]["lat_ms"]["p99"] > 10 * P99_MS or rows[-1]["rate"] < 0.8 * r:
                    break  # far past what it sustains
            rows.append(await self.messages(kind, 0, a.duration))
            out[f"{kind}_messages"] = rows
        for key in ("arrivals_new", "arrivals_returning", "visitor_messages",
                    "agent_messages"):
            ok = [row["rate_wanted"] for row in out[key] if row["rate_wanted"] > 0
                  and row["lat_ms"]["p99"] <= P99_MS and not row["failures"]
                  and row["rate"] >= 0.95 * row["rate_wanted"]]
            out[f"{key}_max_rate_p99_{int(P99_MS)}ms"] = max(ok) if ok else None
        out["burst"] = await self.burst() if self.args.burst else None
        for ws in self.sockets:
            if ws.transport is not None:
                ws.transport.close()
        return out


def mean_counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    out: dict[str, Any] = {k: round(sum(r[k] for r in rows) / n, 2) for k in
                           ("statements", "begin", "commit", "rollback", "checkout", "reset")}
    verbs: dict[str, float] = {}
    for r in rows:
        for v, c in r["verbs"].items():
            verbs[v] = verbs.get(v, 0) + c
    out["verbs"] = {v: round(c / n, 2) for v, c in sorted(verbs.items())}
    return out


def add_counts(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {k: round(a[k] + b[k], 2) for k in a if k != "verbs"}
    verbs = dict(a["verbs"])
    for v, c in b["verbs"].items():
        verbs[v] = round(verbs.get(v, 0) + c, 2)
    out["verbs"] = dict(sorted(verbs.items()))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--counts", required=True, help="the server's counters file")
    parser.add_argument("--db", default="sqlite", help="sqlite or mariadb (labels; the "
                                                       "database server's CPU on mariadb)")
    parser.add_argument("--key", default="bench")
    parser.add_argument("--talkers", type=int, default=20,
                        help="assigned visitors with a socket, for messages")
    parser.add_argument("--conns", type=int, default=8,
                        help="agent connections (replies), and flat-out workers")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per rate")
    parser.add_argument("--arrival-rates", default="5,10,20,40")
    parser.add_argument("--message-rates", default="50,100,200,400")
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--stmt-samples", type=int, default=10)
    parser.add_argument("--counts-only", action="store_true",
                        help="stop after the statement counts (no load, no burst)")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if uvloop is not None and not args.no_uvloop:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    result = asyncio.run(Bench(args).run())
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
