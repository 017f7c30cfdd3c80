"""Cross-node fan-out: N wolive nodes on one MariaDB database and Redis, against one node.

    .venv/bin/python bench/run.py --nodes 3            (or: bench/nodes.py --nodes 3)

Subscribers are spread evenly over the nodes (each on its own WebSocket); an HTTP API client
publishes to node 0 at a fixed rate, each event carrying its send time. On each node
`--probes` subscribers parse and time every frame; the others only count their frames from
the raw bytes, in a process of their own, so the probes never queue behind them. CPU is
read once every subscriber is in and again once everything is delivered, so it is the
publishing's alone (not the connections' and subscriptions' set-up). Reported per
run: delivered messages/s, latency from the publish request to the frame (p50/p99/max) for
the probes on node 0 ("local") and on the others ("remote"), and CPU µs per delivered
message summed over every node and the Redis server (from /proc). The same load is run
against one node without Redis, for the ratio. Not a test: results go to
bench/results/nodes.json and docs/performance.md.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import pymysql
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from loadgen import signed_query

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PY = sys.executable
SECRET = "bench-secret-" + "0" * 40
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def redis_pid() -> int | None:
    out = subprocess.run(["pgrep", "-x", "redis-server"], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if pids else None


class Node:
    def __init__(self, home: str, db_url: str, redis_url: str, prefix: str) -> None:
        self.home = home
        os.makedirs(home, exist_ok=True)
        cfg = os.path.join(home, "config.yaml")
        cluster = (f"cluster: {{redis_url: '{redis_url}', prefix: '{prefix}'}}\n"
                   f"uploads: {{dir: '{home}/../uploads', shared: true}}\n"
                   if redis_url else "")
        with open(cfg, "w") as f:
            f.write("server:\n  host: 127.0.0.1\n  port: 0\n  demo_port: null\n"
                    f"  data_dir: {home}/data\n  cookie_secret: '{'c' * 64}'\n"
                    f"  channel_secret: '{'d' * 64}'\n"
                    f"database:\n  url: '{db_url}'\n"
                    f"pusher:\n  apps:\n    - {{id: '1', key: bench, secret: '{SECRET}'}}\n"
                    f"{cluster}log_level: warning\n")
        self.log = open(os.path.join(home, "server.log"), "w+")
        self.proc = subprocess.Popen([PY, os.path.join(ROOT, "wolive.py"), "--config", cfg],
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.log.flush()
            with open(self.log.name) as f:
                m = re.search(r"wolive ready on http://127\.0\.0\.1:(\d+)/", f.read())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"node did not start:\n{open(self.log.name).read()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def signed_publish(port: int, body: bytes) -> HTTPRequest:
    path = "/apps/1/events"
    qs = signed_query(path, "bench", SECRET.encode(), body)
    return HTTPRequest(f"http://127.0.0.1:{port}{path}?{qs}", "POST",
                       body=body, headers={"Content-Type": "application/json"})


async def drain(port: int, counter: Any) -> asyncio.StreamWriter:
    """A subscriber that only counts its `tick` frames (into `counter.value`): the WebSocket
    handshake and the subscribe by hand, then raw reads with no frame parsing."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /app/bench?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  ).encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise SystemExit(f"handshake refused: {head[:200]!r}")
    payload = json.dumps({"event": "pusher:subscribe", "data": {"channel": "bench"}}).encode()
    mask = os.urandom(4)
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask +
                 bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    seen = b""
    while b"subscription_succeeded" not in seen:
        seen += await reader.read(4096)

    async def count() -> None:
        tail = b""
        marker = b'"event":"tick"'
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            both = tail + chunk
            counter.value += both.count(marker) - tail.count(marker)
            tail = both[-(len(marker) - 1):]
    asyncio.get_running_loop().create_task(count())
    return writer


def drains(ports: list[int], counter: Any, ready: Any, stop: Any) -> None:
    """The counting subscribers, in a process of their own (`measure`): one per port in
    `ports` (repeated as wanted); sets `ready` once all are subscribed, ends at `stop`."""
    async def main() -> None:
        writers = [await drain(port, counter) for port in ports]
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        for w in writers:
            w.close()
    asyncio.run(main())


async def measure(ports: list[int], subs: int, rate: float, seconds: float,
                  probes: int, cpu: Any) -> dict[str, Any]:
    """`subs` subscribers spread evenly over `ports`: on each node `probes` of them, in
    this process, parse and time every frame (latency); the rest count theirs in another
    process (`drains`), so the probes never queue behind them. `cpu()` gives the CPU
    seconds to charge, read once everyone is subscribed and again once all is delivered."""
    lat: dict[str, list[float]] = {"local": [], "remote": []}
    probed = [0]

    async def probe(port: int, kind: str) -> Any:
        ws = await websocket_connect(f"ws://127.0.0.1:{port}/app/bench?protocol=7")
        await ws.read_message()
        ws.write_message(json.dumps({"event": "pusher:subscribe",
                                     "data": {"channel": "bench"}}))
        while "subscription_succeeded" not in (await ws.read_message() or ""):
            pass

        async def read() -> None:
            while True:
                msg = await ws.read_message()
                if msg is None:
                    return
                now = time.perf_counter()
                frame = json.loads(msg)
                if frame.get("event") == "tick":
                    lat[kind].append((now - json.loads(frame["data"])["t"]) * 1000)
                    probed[0] += 1
        asyncio.get_running_loop().create_task(read())
        return ws

    counted = multiprocessing.Value("q", 0, lock=False)
    ready, stop = multiprocessing.Event(), multiprocessing.Event()
    rest = [ports[i % len(ports)] for i in range(subs) if i // len(ports) >= probes]
    counter = multiprocessing.Process(target=drains, args=(rest, counted, ready, stop))
    counter.start()
    sockets = [await probe(ports[i % len(ports)], "local" if i % len(ports) == 0 else "remote")
               for i in range(subs) if i // len(ports) < probes]
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, ready.wait, 120):
        raise SystemExit("the counting subscribers did not subscribe")
    http = AsyncHTTPClient(max_clients=50)
    await asyncio.sleep(1.0)
    cpu_before = cpu()
    interval, sent = 1.0 / rate, 0
    start = time.perf_counter()
    pending = []
    while time.perf_counter() - start < seconds:
        body = json.dumps({"name": "tick", "channels": ["bench"],
                           "data": json.dumps({"t": time.perf_counter()})}).encode()
        pending.append(asyncio.ensure_future(http.fetch(signed_publish(ports[0], body))))
        sent += 1
        await asyncio.sleep(max(0.0, start + sent * interval - time.perf_counter()))
    await asyncio.gather(*pending)
    deadline = time.perf_counter() + 10
    while probed[0] + counted.value < sent * subs and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - start
    cpu_spent = [after - before for after, before in zip(cpu(), cpu_before)]
    received = probed[0] + counted.value
    stop.set()
    counter.join(30)
    for sock in sockets:
        sock.close()
    http.close()
    out: dict[str, Any] = {"published": sent, "delivered": received,
                           "expected": sent * subs, "delivered_per_s": received / elapsed,
                           "cpu_spent": cpu_spent}
    for kind, values in lat.items():
        if values:
            out[kind] = {"p50_ms": round(pct(values, 0.5), 2),
                         "p99_ms": round(pct(values, 0.99), 2),
                         "max_ms": round(max(values), 2), "n": len(values)}
    return out


def fresh_db(mysql: str) -> tuple[str, str]:
    name = "wolive_bench_" + uuid.uuid4().hex[:8]
    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    conn.close()
    return f"{mysql.rstrip('/')}/{name}", name


def drop_db(name: str) -> None:
    conn = pymysql.connect(host="127.0.0.1", user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


def run(n: int, args: argparse.Namespace) -> dict[str, Any]:
    db_url, db_name = fresh_db(args.mysql_url)
    home = tempfile.mkdtemp(prefix="wolive-nodes-")
    prefix = f"wolive-bench-{uuid.uuid4().hex[:8]}"
    redis_url = args.redis_url if n > 1 else ""
    nodes: list[Node] = []
    try:
        for i in range(n):
            nodes.append(Node(os.path.join(home, f"node{i}"), db_url, redis_url, prefix))
        rpid = redis_pid() if redis_url else None
        pids = [node.proc.pid for node in nodes] + ([rpid] if rpid else [])
        # Subscribers on the first `--holding` nodes; every node's CPU is counted.
        holding = nodes[:args.holding] if args.holding else nodes
        result = asyncio.run(measure([node.port for node in holding], args.subs, args.rate,
                                     args.duration, args.probes,
                                     lambda: [cpu_s(pid) for pid in pids]))
        spent = result.pop("cpu_spent")
        result["nodes"] = n
        result["cpu_s_per_node"] = [round(x, 3) for x in spent[:n]]
        result["cpu_s"] = {"nodes": round(sum(spent[:n]), 3),
                           "redis": round(spent[n], 3) if len(spent) > n else 0.0}
        delivered = max(1, result["delivered"])
        result["cpu_us_per_delivered"] = round(sum(spent) / delivered * 1e6, 2)
        result["server_errors"] = sum(
            open(node.log.name).read().count("Traceback") for node in nodes)
        return result
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(home, ignore_errors=True)
        drop_db(db_name)
        if redis_url:
            import redis
            r = redis.Redis.from_url(args.redis_url)
            keys = list(r.scan_iter(f"{prefix}:*"))
            if keys:
                r.delete(*keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--subs", type=int, default=300, help="subscribers in all")
    parser.add_argument("--rate", type=float, default=50.0, help="publishes per second")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=5,
                        help="subscribers per node that time every frame (the rest count)")
    parser.add_argument("--mysql-url", default=os.environ.get(
        "WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "nodes.json"))
    parser.add_argument("--holding", type=int, default=0,
                        help="subscribers on the first K nodes only (the others hold none "
                             "but run, and their CPU counts); 0: on every node")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pairs of runs (one node, N nodes), the order alternating; "
                             "the ratio reported is the median of the pairs'")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    pairs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        # Alternating which runs first, so a drift of the machine over the session (another
        # tenant's load, a warming cache) falls on both sides alike.
        order = [1, args.nodes] if i % 2 == 0 else [args.nodes, 1]
        done = {n: run(n, args) for n in order}
        one, many = done[1], done[args.nodes]
        ratio = (one["cpu_us_per_delivered"] / many["cpu_us_per_delivered"]
                 if many["cpu_us_per_delivered"] else float("nan"))
        pairs.append({"one": one, "many": many, "ratio": round(ratio, 3)})
        print(f"pair {i + 1}/{args.repeat}: 1 node {one['cpu_us_per_delivered']} µs, "
              f"{args.nodes} nodes {many['cpu_us_per_delivered']} µs "
              f"(per node {many['cpu_s_per_node']} s, Redis {many['cpu_s']['redis']} s): "
              f"{ratio:.2f}×", flush=True)
    ratios = sorted(p["ratio"] for p in pairs)
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else \
        (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    results = [pairs[-1]["one"], pairs[-1]["many"]]
    summary = {"subs": args.subs, "rate": args.rate, "duration": args.duration,
               "probes_per_node": args.probes, "runs": results,
               "pairs": [{"ratio": p["ratio"],
                          "one_cpu_us_per_delivered": p["one"]["cpu_us_per_delivered"],
                          "many_cpu_us_per_delivered": p["many"]["cpu_us_per_delivered"],
                          "many_cpu_s_per_node": p["many"]["cpu_s_per_node"],
                          "many_cpu_s_redis": p["many"]["cpu_s"]["redis"],
                          "local": p["many"].get("local"), "remote": p["many"].get("remote"),
                          "delivered": [p["one"]["delivered"], p["many"]["delivered"]],
                          "expected": [p["one"]["expected"], p["many"]["expected"]]}
                         for p in pairs],
               "throughput_per_cpu_ratio": round(median, 3),
               "throughput_per_cpu_ratio_range": [ratios[0], ratios[-1]]}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(summary, f, indent=2)
    print("| nodes | delivered/s | local p50/p99 ms | remote p50/p99 ms | CPU µs/delivered "
          "(nodes + Redis) |")
    print("|---|---|---|---|---|")
    for r in results:
        loc, rem = r.get("local", {}), r.get("remote", {})
        print(f"| {r['nodes']} | {r['delivered_per_s']:.0f} | "
              f"{loc.get('p50_ms', '-')}/{loc.get('p99_ms', '-')} | "
              f"{rem.get('p50_ms', '-')}/{rem.get('p99_ms', '-')} | "
              f"{r['cpu_us_per_delivered']} ({r['cpu_s']}) |")
    if args.repeat > 1:
        print(f"throughput per CPU, {args.nodes} nodes vs one: median {median:.2f}× of "
              f"{args.repeat} pairs (range {ratios[0]:.2f}–{ratios[-1]:.2f}×)")
    else:
        print(f"throughput per CPU, {args.nodes} nodes vs one: {median:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
