"""CPU per Redis command on the bus's two paths, redis-py's asyncio client against the hiredis
protocols of `realtime/pusher/redis_bus.py` (docs/performance.md, "Several nodes on Redis").

    python bench/redis_roundtrip.py [--redis-url redis://127.0.0.1:6379/0]

Writer: 3,000 `PUBLISH`es of a bus-sized message, one per loop turn about 0.5 ms apart, each
through a redis-py pipeline (as the writer did) or `BusWriter`; an idle loop doing the same
turns without publishing is the floor. Reader: the same 3,000 messages, published by another
process, read by a redis-py pub/sub `listen()` or a `BusReader`. Prints CPU µs per message
(this process's user + system time)."""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import sys

import redis.asyncio as aioredis

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from realtime.pusher.redis_bus import BusReader, BusWriter  # noqa: E402

N = 3000
CHANNEL = "wolive-bench-roundtrip"
MESSAGE = json.dumps(["1", "app", "chan", json.dumps(
    {"event": "x", "channel": "chan", "data": "x" * 150}), None])


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def idle(url: str) -> float:
    t = cpu()
    for _ in range(N):
        await asyncio.sleep(0.0005)
    return (cpu() - t) / N * 1e6


async def write_redis_py(url: str) -> float:
    r = aioredis.from_url(url)
    await r.ping()
    t = cpu()
    for _ in range(N):
        pipe = r.pipeline(transaction=False)
        pipe.execute_command("PUBLISH", CHANNEL, MESSAGE)
        await pipe.execute()
        await asyncio.sleep(0.0005)
    used = cpu() - t
    await r.aclose()
    return used / N * 1e6


async def write_hiredis(url: str) -> float:
    writer = BusWriter(url)
    await writer.open()
    t = cpu()
    for _ in range(N):
        writer.queue("PUBLISH", CHANNEL, MESSAGE)
        await asyncio.sleep(0.0005)
    await writer.written_through(writer.queued)
    used = cpu() - t
    writer.close()
    return used / N * 1e6


def publish_all(url: str) -> None:
    """The readers' messages, from a process of their own (its CPU is not counted)."""
    asyncio.run(_publish_all(url))


def sender(url: str) -> multiprocessing.Process:
    proc = multiprocessing.Process(target=publish_all, args=(url,))
    proc.start()
    return proc


async def _publish_all(url: str) -> None:
    r = aioredis.from_url(url)
    await asyncio.sleep(0.2)
    for _ in range(N):
        await r.publish(CHANNEL, MESSAGE)
        await asyncio.sleep(0.0005)
    await r.publish(CHANNEL, "end")
    await r.aclose()


async def read_redis_py(url: str) -> float:
    r = aioredis.from_url(url, decode_responses=True)
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(CHANNEL)
    proc = sender(url)
    t = None
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        if t is None:
            t = cpu()
        if message["data"] == "end":
            break
        json.loads(message["data"])
    used = cpu() - (t or cpu())
    proc.join()
    await pubsub.aclose()
    await r.aclose()
    return used / N * 1e6


async def read_hiredis(url: str) -> float:
    done = asyncio.get_running_loop().create_future()
    start: list[float] = []

    def on_message(data: str) -> None:
        if not start:
            start.append(cpu())
        if data == "end":
            done.set_result(cpu() - start[0])
            return
        json.loads(data)
    reader = BusReader(url, [CHANNEL], on_message)
    await reader.open()
    proc = sender(url)
    used = await done
    proc.join()
    reader.close()
    return used / N * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    for name, run in (("idle loop turns", idle), ("write, redis-py pipeline", write_redis_py),
                      ("write, BusWriter", write_hiredis),
                      ("read, redis-py pub/sub", read_redis_py),
                      ("read, BusReader", read_hiredis)):
        print(f"{name:28s} {asyncio.run(run(args.redis_url)):7.1f} µs CPU per message")


if __name__ == "__main__":
    main()
