"""What waking another process costs on this machine: the floor under cross-node fan-out.

    .venv/bin/python bench/wakeup.py

A sender writes 300 bytes every 4 ms to a reader that sleeps in recv() between them, over
TCP loopback and over a Unix socket pair; the sender's CPU (user + system, from
`time.process_time`) per write, against the same loop with the sleep alone. Each node that
hears a publish from Redis pays one such wake-up per publish (and Redis pays one per node it
writes to), whatever the Python around it costs. Not a test: the figures go to
docs/performance.md.
"""
from __future__ import annotations

import os
import socket
import time

N = 500
GAP_S = 0.004
MESSAGE = b"x" * 300


def _pair(kind: str) -> tuple[socket.socket, socket.socket]:
    if kind == "unix":
        return socket.socketpair()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sender = socket.create_connection(listener.getsockname())
    sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader, _ = listener.accept()
    listener.close()
    return sender, reader


def measure(kind: str) -> tuple[float, float]:
    """(µs of the sender's CPU per write + sleep, µs per sleep alone)."""
    sender, reader = _pair(kind)
    pid = os.fork()
    if pid == 0:  # the reader: sleeps in recv until each write wakes it
        sender.close()
        while reader.recv(65536):
            pass
        os._exit(0)
    reader.close()
    t0 = time.process_time()
    for _ in range(N):
        sender.send(MESSAGE)
        time.sleep(GAP_S)
    t1 = time.process_time()
    for _ in range(N):
        time.sleep(GAP_S)
    t2 = time.process_time()
    sender.close()
    os.waitpid(pid, 0)
    return (t1 - t0) / N * 1e6, (t2 - t1) / N * 1e6


def main() -> None:
    for kind in ("tcp", "unix", "tcp", "unix"):
        both, alone = measure(kind)
        print(f"{kind:4s}: write + sleep {both:5.1f} µs, sleep alone {alone:5.1f} µs, "
              f"the write that wakes the reader {both - alone:5.1f} µs")


if __name__ == "__main__":
    main()
