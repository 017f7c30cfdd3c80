"""The load generator: light asyncio clients for Pusher WebSockets and the signed HTTP API.

Run by bench/run.py (pinned to its own core); prints one JSON object on stdout.

    python bench/loadgen.py idle   --port P --server-pid PID --conns 10000
    python bench/loadgen.py fanout --port P --server-pid PID --subs 100 --rate 1000
    python bench/loadgen.py fanout --port P --server-pid PID --subs 100 --rate 0  # flat out

The clients are written on `asyncio.Protocol` rather than a WebSocket library so that the
generator costs a few microseconds per received frame and a few KB per socket: it must
out-run the server it measures on one core. They speak just enough RFC 6455: the opening
handshake, unmasked server frames of any length, masked client text frames (the mask key
is all zeros, which RFC 6455 allows and which leaves the payload as is), close and ping.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import struct
import sys
import time
from typing import Any, Callable, Optional

try:
    import uvloop
except ImportError:  # the generator works without it, only more slowly
    uvloop = None

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
now_ns = time.monotonic_ns  # CLOCK_MONOTONIC: one clock for the whole machine


# ---- the server process, read from /proc -----------------------------------------------

def rss_kb(pid: int) -> int:
    """Resident set size of `pid` in KB (VmRSS of /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of `pid` in seconds (/proc/<pid>/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_s(pid: int) -> float:
    """utime + stime of `pid` in seconds."""
    return sum(cpu_times(pid))


def listen_overflows() -> int:
    """TcpExt ListenOverflows, machine-wide: connections dropped for a full accept queue."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:]))["ListenOverflows"])
    return 0


def own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---- a WebSocket client ----------------------------------------------------------------

ZERO_MASK = b"\x00\x00\x00\x00"
#: Header lines every request and handshake carries (`--xheaders`: what nginx adds).
EXTRA_HEADERS = ""


def client_frame(text: str, opcode: int = 0x1) -> bytes:
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + ZERO_MASK + payload


class WS(asyncio.Protocol):
    """One Pusher connection. `on_text(ws, payload_bytes, t_ns)` gets every text frame;
    `t_ns` is when the read that carried it returned."""

    __slots__ = ("host", "path", "on_text", "transport", "upgraded", "rest", "closed",
                 "close_code", "socket_id", "waiter", "lost")

    def __init__(self, host: str, path: str, on_text: Callable[["WS", bytes, int], None]):
        self.host = host
        self.path = path
        self.on_text = on_text
        self.transport: Optional[asyncio.Transport] = None
        self.upgraded = False
        self.rest = b""
        self.closed = False
        self.close_code: Optional[int] = None
        self.socket_id: Optional[str] = None
        # Created now: the first frame may arrive before `connect` runs again.
        loop = asyncio.get_running_loop()
        self.waiter: Optional[asyncio.Future[Any]] = loop.create_future()
        self.lost = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write((
            f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{EXTRA_HEADERS}\r\n").encode())

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        if not self.lost.done():
            self.lost.set_result(None)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("connection lost"))

    def send(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(text))

    def data_received(self, data: bytes) -> None:
        t = now_ns()
        if self.rest:
            data = self.rest + data
            self.rest = b""
        if not self.upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.rest = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                raise_to = self.waiter
                if raise_to is not None and not raise_to.done():
                    raise_to.set_exception(ConnectionError(data[:end].decode(errors="replace")))
                assert self.transport is not None
                self.transport.close()
                return
            self.upgraded = True
            data = data[end + 4:]
        n = len(data)
        i = 0
        on_text = self.on_text
        while n - i >= 2:
            ln = data[i + 1] & 0x7F
            if ln < 126:
                hl = 2
            elif ln == 126:
                if n - i < 4:
                    break
                ln = (data[i + 2] << 8) | data[i + 3]
                hl = 4
            else:
                if n - i < 10:
                    break
                ln = int.from_bytes(data[i + 2:i + 10], "big")
                hl = 10
            end = i + hl + ln
            if end > n:
                break
            op = data[i] & 0x0F
            if op == 0x1:
                on_text(self, data[i + hl:end], t)
            elif op == 0x8:
                self.close_code = struct.unpack("!H", data[i + hl:i + hl + 2])[0] if ln >= 2 \
                    else 1005
                assert self.transport is not None
                self.transport.close()
            elif op == 0x9:
                assert self.transport is not None
                self.transport.write(b"\x8a\x80" + ZERO_MASK)  # empty pong
            i = end
        if i < n:
            self.rest = data[i:]


def control_frame(ws: WS, payload: bytes, t: int) -> bool:
    """Handle the frames a bench client waits for; False for anything else."""
    if payload.startswith(b'{"event":"pusher'):
        frame = json.loads(payload)
        event = frame["event"]
        if event == "pusher:connection_established":
            ws.socket_id = json.loads(frame["data"])["socket_id"]
        if ws.waiter is not None and not ws.waiter.done():
            if event == "pusher:error" or event == "pusher:subscription_error":
                ws.waiter.set_exception(RuntimeError(payload.decode()))
            else:
                ws.waiter.set_result(event)
        return True
    return False


async def connect(host: str, port: int, key: str, channel: str,
                  on_text: Callable[[WS, bytes, int], None], timeout: float = 30.0) -> WS:
    """Open /app/{key}, wait for connection_established, subscribe to `channel`, wait for
    subscription_succeeded."""
    loop = asyncio.get_running_loop()
    path = f"/app/{key}?protocol=7&client=bench&version=1.0&flash=false"
    _, ws = await loop.create_connection(lambda: WS(f"{host}:{port}", path, on_text),
                                         host, port)
    assert ws.waiter is not None
    event = await asyncio.wait_for(ws.waiter, timeout)
    if event != "pusher:connection_established":
        raise RuntimeError(f"first frame was {event}")
    ws.waiter = loop.create_future()
    ws.send(json.dumps({"event": "pusher:subscribe",
                        "data": {"auth": "", "channel": channel}}))
    event = await asyncio.wait_for(ws.waiter, timeout)
    if event != "pusher_internal:subscription_succeeded":
        raise RuntimeError(f"subscribe answered {event}")
    ws.waiter = None
    return ws


# ---- a keep-alive HTTP client for the signed Pusher API --------------------------------

def signed_query(path: str, key: str, secret: bytes, body: bytes) -> str:
    """The query string of a signed `POST path` with `body` (Pusher REST API
    "Authentication": body_md5, auth_* in sorted order, then auth_signature, HMAC-SHA256)."""
    md5 = hashlib.md5(body).hexdigest()
    query = (f"auth_key={key}&auth_timestamp={int(time.time())}"
             f"&auth_version=1.0&body_md5={md5}")
    sig = hmac.new(secret, f"POST\n{path}\n{query}".encode(), hashlib.sha256).hexdigest()
    return f"{query}&auth_signature={sig}"


class Api(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; `post_event` signs like the Pusher libraries
    (Pusher REST API "Authentication": body_md5, auth_* query, HMAC-SHA256)."""

    def __init__(self, host: str, app_id: str, key: str, secret: str) -> None:
        self.host = host
        self.path = f"/apps/{app_id}/events"
        self.key = key
        self.secret = secret.encode()
        self.transport: Optional[asyncio.Transport] = None
        self.buf = b""
        self.waiter: Optional[asyncio.Future[int]] = None
        self.failures = 0
        self.last_error = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("API connection lost"))

    def request(self, body: bytes) -> bytes:
        query = signed_query(self.path, self.key, self.secret, body)
        return (f"POST {self.path}?{query} HTTP/1.1\r\n"
                f"Host: {self.host}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n{EXTRA_HEADERS}\r\n").encode() + body

    def send(self, req: bytes) -> "asyncio.Future[int]":
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(req)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            status = int(head.split(" ", 2)[1])
            if status != 200:
                self.failures += 1
                self.last_error = (head.split("\r\n")[0] + " " +
                                   self.buf[end + 4:end + 4 + length].decode(errors="replace"))
            self.buf = self.buf[end + 4 + length:]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(status)


async def api_client(host: str, port: int, args: argparse.Namespace) -> Api:
    loop = asyncio.get_running_loop()
    _, api = await loop.create_connection(
        lambda: Api(f"{host}:{port}", args.app_id, args.key, args.secret), host, port)
    return api


# ---- scenarios -------------------------------------------------------------------------

def percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


async def scenario_idle(args: argparse.Namespace) -> dict[str, Any]:
    """Open `conns` sockets, each subscribed to its own public channel; server RSS before,
    at each checkpoint and after; then check that the server still answers."""
    host, port, pid = args.host, args.port, args.server_pid
    conns: list[WS] = []
    errors: list[str] = []
    out: dict[str, Any] = {"scenario": "idle", "conns_wanted": args.conns}

    def ignore(ws: WS, payload: bytes, t: int) -> None:
        control_frame(ws, payload, t)

    await asyncio.sleep(0.5)
    out["rss_before_kb"] = rss_before = rss_kb(pid)
    checkpoints: dict[int, int] = {}
    marks = sorted({m for m in (1000, args.conns // 2, args.conns) if 0 < m <= args.conns})
    sem = asyncio.Semaphore(args.concurrency)

    async def one(i: int) -> None:
        async with sem:
            try:
                conns.append(await connect(host, port, args.key, f"idle-{i}", ignore))
            except Exception as exc:  # counted and reported, the run goes on
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

    overflows0 = listen_overflows()
    cpu0 = cpu_s(pid)
    t0 = time.monotonic()
    start = 0
    for mark in marks:
        await asyncio.gather(*(one(i) for i in range(start, mark)))
        start = mark
        if mark == marks[-1]:
            out["connect_s"] = round(time.monotonic() - t0, 2)
            out["connect_server_cpu_ms_per_conn"] = round((cpu_s(pid) - cpu0) / mark * 1000, 3)
            out["listen_overflows"] = listen_overflows() - overflows0
        await asyncio.sleep(args.settle)
        checkpoints[len(conns)] = rss_kb(pid)
    out["conns_open"] = len(conns)
    out["errors"] = len(errors)
    out["first_errors"] = errors[:3]
    out["rss_checkpoints_kb"] = checkpoints
    rss_after = checkpoints[max(checkpoints)]
    out["rss_after_kb"] = rss_after
    n = len(conns)
    out["kb_per_conn"] = round((rss_after - rss_before) / n, 2) if n else None
    lo = min(checkpoints)
    if n > lo:
        out["kb_per_conn_marginal"] = round((rss_after - checkpoints[lo]) / (n - lo), 2)
    out["server_cpu_s_total"] = round(cpu_s(pid), 2)

    # Still answering with every socket open? A fresh socket, and an API publish that must
    # reach the socket subscribed to idle-0.
    t = time.monotonic()
    probe = await connect(host, port, args.key, "idle-probe", ignore)
    out["fresh_connect_ms"] = round((time.monotonic() - t) * 1000, 2)
    got = asyncio.get_running_loop().create_future()

    def on_probe(ws: WS, payload: bytes, t: int) -> None:
        if not control_frame(ws, payload, t) and not got.done():
            got.set_result(payload)

    for ws in conns:
        ws.on_text = on_probe
    api = await api_client(host, port, args)
    t = time.monotonic()
    status = await api.send(api.request(json.dumps(
        {"name": "probe", "channels": ["idle-0", "idle-probe"], "data": "{}"}).encode()))
    await asyncio.wait_for(got, 10)
    out["probe_publish_ms"] = round((time.monotonic() - t) * 1000, 2)
    out["probe_status"] = status
    api.transport.close()  # type: ignore[union-attr]
    for ws in conns + [probe]:
        ws.transport.close()  # type: ignore[union-attr]
    await asyncio.sleep(args.settle + 1)
    out["rss_after_close_kb"] = rss_kb(pid)
    return out


async def scenario_fanout(args: argparse.Namespace) -> dict[str, Any]:
    """`subs` sockets on one channel; publishes through the HTTP API at `rate` per second
    (0: flat out, `publishers` connections each sending back to back) for `duration` s.
    Each event's data carries the send time; every subscriber records the latency."""
    host, port, pid = args.host, args.port, args.server_pid
    latencies: list[int] = []
    record = latencies.append
    marker = b'ts\\":'
    state = {"received": 0, "other": 0}

    def on_text(ws: WS, payload: bytes, t: int) -> None:
        k = payload.find(marker)
        if k < 0:
            if not control_frame(ws, payload, t):
                state["other"] += 1
            return
        j = payload.find(b",", k)
        record(t - int(payload[k + 5:j]))

    subs = [await connect(host, port, args.key, args.channel, on_text)
            for _ in range(args.subs)]
    apis = [await api_client(host, port, args) for _ in range(args.publishers)]
    body_head = ('{"name":"bench","channel":"%s","data":"{\\"ts\\":' % args.channel)
    pad = "x" * args.payload

    def body(i: int) -> bytes:
        return (body_head + f'{now_ns()},\\"i\\":{i},\\"p\\":\\"{pad}\\"}}"}}').encode()

    async def fixed_rate(seconds: float, rate: float) -> int:
        """Publish at `rate`/s for `seconds`, spread over the connections round-robin; a
        connection still waiting for its answer is skipped, and when all are waiting the
        schedule slips (reported as lag; the achieved rate is what counts)."""
        loop = asyncio.get_running_loop()
        interval = 1.0 / rate
        total = int(seconds * rate)
        t0 = loop.time()
        inflight: list[Optional[asyncio.Future[int]]] = [None] * len(apis)
        sent = 0
        lag = 0.0
        k = 0
        deadline = t0 + seconds
        while sent < total and loop.time() < deadline:  # a server behind the rate: stop
            due = t0 + sent * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag = max(lag, -delay)
            for _ in range(len(apis)):
                k = (k + 1) % len(apis)
                f = inflight[k]
                if f is None or f.done():
                    break
            else:
                await asyncio.wait([f for f in inflight if f is not None],
                                   return_when=asyncio.FIRST_COMPLETED)
                continue
            api = apis[k]
            inflight[k] = api.send(api.request(body(sent)))
            sent += 1
        await asyncio.gather(*(f for f in inflight if f is not None))
        state["max_lag_ms"] = round(lag * 1000, 2)
        return sent

    async def flat_out(seconds: float) -> int:
        loop = asyncio.get_running_loop()
        stop = loop.time() + seconds
        counts = [0] * len(apis)

        async def worker(j: int) -> None:
            api = apis[j]
            while loop.time() < stop:
                await api.send(api.request(body(counts[j])))
                counts[j] += 1

        await asyncio.gather(*(worker(j) for j in range(len(apis))))
        return sum(counts)

    async def drain(expected: int, timeout: float = 10.0) -> float:
        """Wait until every expected delivery arrived or nothing arrives for 1 s."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        last, last_t = -1, loop.time()
        while len(latencies) < expected and loop.time() < end:
            await asyncio.sleep(0.01)
            if len(latencies) != last:
                last, last_t = len(latencies), loop.time()
            elif loop.time() - last_t > 1.0:
                break
        return loop.time()

    async def run(seconds: float) -> tuple[int, float]:
        t = asyncio.get_running_loop().time()
        sent = await (fixed_rate(seconds, args.rate) if args.rate > 0 else flat_out(seconds))
        return sent, t

    # warm-up, not recorded
    sent, _ = await run(args.warmup)
    await drain(sent * args.subs)
    latencies.clear()

    rss0 = rss_kb(pid)
    (u0, s0), own0 = cpu_times(pid), own_cpu_s()
    sent, t_start = await run(args.duration)
    t_sent = asyncio.get_running_loop().time()
    t_end = await drain(sent * args.subs)
    (u1, s1), own1 = cpu_times(pid), own_cpu_s()
    cpu0, cpu1 = u0 + s0, u1 + s1
    rss1 = rss_kb(pid)
    wall = t_end - t_start

    delivered = len(latencies)
    lat = sorted(latencies)
    failures = sum(a.failures for a in apis)
    out: dict[str, Any] = {
        "scenario": "fanout" if args.rate > 0 else "flat",
        "subs": args.subs, "rate_wanted": args.rate, "publishers": args.publishers,
        "duration_s": args.duration, "published": sent,
        "publish_rate": round(sent / (t_sent - t_start), 1),
        "api_failures": failures,
        "api_last_error": next((a.last_error for a in apis if a.last_error), ""),
        "delivered": delivered, "expected": sent * args.subs,
        "lost": sent * args.subs - delivered,
        "delivered_per_s": round(delivered / wall),
        "lat_ms": {f"p{q}": round(percentile(lat, q) / 1e6, 3) for q in (50, 95, 99)},
        "lat_max_ms": round(lat[-1] / 1e6, 3) if lat else None,
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "server_cpu_util": round((cpu1 - cpu0) / wall, 3),
        "server_us_per_msg": round((cpu1 - cpu0) / delivered * 1e6, 2) if delivered else None,
        "server_user_us_per_msg": round((u1 - u0) / delivered * 1e6, 2) if delivered else None,
        "server_sys_us_per_msg": round((s1 - s0) / delivered * 1e6, 2) if delivered else None,
        "server_rss_kb": [rss0, rss1],
        "loadgen_cpu_util": round((own1 - own0) / wall, 3),
        "wall_s": round(wall, 2),
    }
    if "max_lag_ms" in state:
        out["publisher_max_lag_ms"] = state["max_lag_ms"]
    for ws in subs:
        ws.transport.close()  # type: ignore[union-attr]
    for a in apis:
        a.transport.close()  # type: ignore[union-attr]
    return out


async def connect_private(host: str, port: int, key: str, secret: str, channel: str,
                          on_text: Callable[[WS, bytes, int], None],
                          timeout: float = 30.0) -> WS:
    """As `connect`, on a private- channel: the subscription is signed here with the app
    secret, as an app's auth endpoint would (`key:HMAC-SHA256(secret, socket_id:channel)`)."""
    loop = asyncio.get_running_loop()
    path = f"/app/{key}?protocol=7&client=bench&version=1.0&flash=false"
    _, ws = await loop.create_connection(lambda: WS(f"{host}:{port}", path, on_text),
                                         host, port)
    assert ws.waiter is not None
    event = await asyncio.wait_for(ws.waiter, timeout)
    if event != "pusher:connection_established" or ws.socket_id is None:
        raise RuntimeError(f"first frame was {event}")
    sig = hmac.new(secret.encode(), f"{ws.socket_id}:{channel}".encode(),
                   hashlib.sha256).hexdigest()
    ws.waiter = loop.create_future()
    ws.send(json.dumps({"event": "pusher:subscribe",
                        "data": {"auth": f"{key}:{sig}", "channel": channel}}))
    event = await asyncio.wait_for(ws.waiter, timeout)
    if event != "pusher_internal:subscription_succeeded":
        raise RuntimeError(f"subscribe answered {event}")
    ws.waiter = None
    return ws


async def scenario_client_events(args: argparse.Namespace) -> dict[str, Any]:
    """`subs` sockets in pairs, each pair on its own `private-ce-{i}` channel; the sockets
    take turns sending `client-bench` events (each to its peer) at `rate` per second in all
    for `duration` s (`rate / subs` per socket: keep it under the protocol's 10 per second).
    Each event's data carries its send time; the peer records the latency. CPU per message
    is the server's CPU over the deliveries."""
    host, port, pid = args.host, args.port, args.server_pid
    latencies: list[int] = []
    record = latencies.append
    marker = b'ts\\":'
    state = {"other": 0}

    def on_text(ws: WS, payload: bytes, t: int) -> None:
        k = payload.find(marker)
        if k < 0:
            if not control_frame(ws, payload, t):
                state["other"] += 1
            return
        j = payload.find(b",", k)
        record(t - int(payload[k + 5:j]))

    n = args.subs - args.subs % 2
    socks = [await connect_private(host, port, args.key, args.secret, f"private-ce-{i // 2}",
                                   on_text) for i in range(n)]
    channels = [f"private-ce-{i // 2}" for i in range(n)]

    async def fixed_rate(seconds: float) -> int:
        loop = asyncio.get_running_loop()
        interval = 1.0 / args.rate
        total = int(seconds * args.rate)
        t0 = loop.time()
        for sent in range(total):
            delay = t0 + sent * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            k = sent % n
            socks[k].send('{"event":"client-bench","channel":"%s","data":"{\\"ts\\":%d,'
                          '\\"i\\":%d}"}' % (channels[k], now_ns(), sent))
        return total

    async def drain(expected: int, timeout: float = 10.0) -> float:
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        last, last_t = -1, loop.time()
        while len(latencies) < expected and loop.time() < end:
            await asyncio.sleep(0.01)
            if len(latencies) != last:
                last, last_t = len(latencies), loop.time()
            elif loop.time() - last_t > 1.0:
                break
        return loop.time()

    sent = await fixed_rate(args.warmup)
    await drain(sent)
    latencies.clear()
    (u0, s0), own0 = cpu_times(pid), own_cpu_s()
    t_start = asyncio.get_running_loop().time()
    sent = await fixed_rate(args.duration)
    t_sent = asyncio.get_running_loop().time()
    t_end = await drain(sent)
    (u1, s1), own1 = cpu_times(pid), own_cpu_s()
    wall = t_end - t_start
    delivered = len(latencies)
    lat = sorted(latencies)
    cpu = (u1 + s1) - (u0 + s0)
    out: dict[str, Any] = {
        "scenario": "client-events", "subs": n, "rate_wanted": args.rate,
        "duration_s": args.duration, "published": sent,
        "publish_rate": round(sent / (t_sent - t_start), 1),
        "delivered": delivered, "expected": sent, "lost": sent - delivered,
        "delivered_per_s": round(delivered / wall),
        "other_frames": state["other"],
        "lat_ms": {f"p{q}": round(percentile(lat, q) / 1e6, 3) for q in (50, 95, 99)},
        "lat_max_ms": round(lat[-1] / 1e6, 3) if lat else None,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_util": round(cpu / wall, 3),
        "server_us_per_msg": round(cpu / delivered * 1e6, 2) if delivered else None,
        "loadgen_cpu_util": round((own1 - own0) / wall, 3),
        "wall_s": round(wall, 2),
    }
    for ws in socks:
        ws.transport.close()  # type: ignore[union-attr]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=("idle", "fanout", "clientevents"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--app-id", default="1")
    parser.add_argument("--key", default="bench")
    parser.add_argument("--secret", default="bench-secret")
    parser.add_argument("--conns", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=200,
                        help="handshakes in flight at once (idle)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait before reading RSS")
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--channel", default="fanout")
    parser.add_argument("--rate", type=float, default=1000.0, help="publishes/s; 0: flat out")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--payload", type=int, default=32, help="padding bytes in data")
    parser.add_argument("--no-uvloop", action="store_true")
    parser.add_argument("--xheaders", action="store_true",
                        help="send the headers a proxy adds (X-Real-Ip, X-Forwarded-For/Proto)")
    args = parser.parse_args()
    if args.xheaders:
        global EXTRA_HEADERS
        EXTRA_HEADERS = ("X-Real-Ip: 203.0.113.7\r\nX-Forwarded-For: 203.0.113.7\r\n"
                         "X-Forwarded-Proto: http\r\n")
    if uvloop is not None and not args.no_uvloop:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    coro = (scenario_idle(args) if args.scenario == "idle" else
            scenario_client_events(args) if args.scenario == "clientevents" else
            scenario_fanout(args))
    result = asyncio.run(coro)
    result["loadgen_loop"] = "uvloop" if (uvloop and not args.no_uvloop) else "asyncio"
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
