"""The floor under any fan-out that makes one `send()` per delivered message: the CPU a bare
Python loop spends writing one small WebSocket-sized frame to each of 100 loopback TCP
sockets, read by a separate process on the other core. No wolive involved.

    .venv/bin/python bench/send_floor.py            # prints µs of user and system CPU per send
    .venv/bin/python bench/send_floor.py --paced --json   # 1,000 rounds/s only, as JSON

Rounds are paced like the fan-out scenario (1,000 a second) and also run back to back, each
with and without TCP_NODELAY. The numbers are the kernel's price for a loopback send on
this machine; wolive's µs per message can approach them, never go under them.
"""
from __future__ import annotations

import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
from typing import Any

FRAME = b"\x81\x7e\x00\x90" + b"x" * 144  # a 148-byte text frame, the bench event's size
SOCKETS = 100
ROUNDS = 3000


def receiver(port: int) -> None:
    """Accept and drain everything (the other core)."""
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    class Drain(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Drain, "127.0.0.1", port, backlog=SOCKETS * 2)
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())


def sender(port: int, gap_s: float, nodelay: bool) -> tuple[float, float]:
    socks = []
    for _ in range(SOCKETS):
        s = socket.create_connection(("127.0.0.1", port))
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    for i in range(ROUNDS):
        for s in socks:
            s.send(FRAME)
        if gap_s:
            while time.monotonic() < t0 + (i + 1) * gap_s:
                time.sleep(0.0002)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    for s in socks:
        s.close()
    n = ROUNDS * SOCKETS
    return (r1.ru_utime - r0.ru_utime) / n * 1e6, (r1.ru_stime - r0.ru_stime) / n * 1e6


def measure(paced_only: bool = False) -> list[dict[str, Any]]:
    """µs of user and system CPU per send, for each pacing (1,000 rounds/s; back to back
    unless `paced_only`) with Nagle and with TCP_NODELAY. Pins this process to core 0."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    recv = subprocess.Popen(["taskset", "-c", "1", sys.executable, os.path.abspath(__file__),
                             "--receiver", str(port)], stdout=subprocess.PIPE, text=True)
    out = []
    try:
        assert recv.stdout is not None
        recv.stdout.readline()
        os.sched_setaffinity(0, {0})
        pacings = ((0.001, "1,000 rounds/s"),) if paced_only else \
            ((0.001, "1,000 rounds/s"), (0.0, "back to back"))
        for gap, label in pacings:
            for nodelay in (False, True):
                user, system = sender(port, gap, nodelay)
                out.append({"pacing": label, "tcp": "TCP_NODELAY" if nodelay else "Nagle",
                            "user_us": round(user, 2), "system_us": round(system, 2)})
    finally:
        recv.terminate()
        recv.wait()
    return out


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--receiver":
        receiver(int(sys.argv[2]))
        return 0
    rows = measure(paced_only="--paced" in sys.argv)
    if "--json" in sys.argv:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['pacing']:15s} {r['tcp']:11s} "
              f"user {r['user_us']:5.2f} µs  system {r['system_us']:5.2f} µs per send")
    return 0


if __name__ == "__main__":
    sys.exit(main())
