"""What the metrics add to the hot paths, measured in-process (docs/performance.md, "The
cost of metrics"); the end-to-end fan-out is `bench/run.py --fanout --compare metrics`.

    .venv/bin/python bench/metrics_cost.py [--subs 100] [--sockets 10000]

Prints, in µs: one `LocalAdapter.publish` to `--subs` sockets with the per-publish counters
(today's code) and without them (the method as it was before them, copied below); one
`Metrics.observe_http` (an HTTP request's histogram); one `Metrics.observe_query` (a
statement's); and one scrape (`generate_latest`) with `--sockets` open sockets, each on a
channel of its own.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import timeit
from types import SimpleNamespace
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from prometheus_client import generate_latest  # noqa: E402

from realtime.pusher.adapter import _UNSET, LocalAdapter  # noqa: E402
from realtime.pusher.hub import App, Hub  # noqa: E402
from realtime.metrics import Metrics  # noqa: E402
from realtime.pusher.adapter import run_inline  # noqa: E402


class Conn:
    """A socket that takes every frame (the fan-out's work without the I/O)."""

    __slots__ = ("socket_id",)

    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id

    @staticmethod
    def prepare_frame(frame: str) -> bytes:
        return frame.encode()

    def send(self, frame: str) -> bool:
        return True

    def send_prepared(self, wire: bytes) -> bool:
        return True


class Uncounted(LocalAdapter):
    """`LocalAdapter.publish` as it was before the metrics' counters."""

    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: str | None = None) -> int:
        members = self._apps.get(app_id, {}).get(channel)
        if not members:
            return 0
        sent = 0
        prepared: dict[type, Any] = {}
        last_cls: type | None = None
        wire: Any = None
        for socket_id, conn in list(members.items()):
            if socket_id == except_socket_id:
                continue
            cls = conn.__class__
            if cls is not last_cls:
                wire = prepared.get(cls, _UNSET)
                if wire is _UNSET:
                    prepare = getattr(cls, "prepare_frame", None)
                    wire = prepared[cls] = prepare(frame) if prepare is not None else None
                last_cls = cls
            if conn.send(frame) if wire is None else conn.send_prepared(wire):
                sent += 1
        return sent


def per_call_us(fn: Any, number: int) -> float:
    """Best of 5 repeats, µs per call."""
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subs", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    args = parser.parse_args()
    out: dict[str, Any] = {"subs": args.subs, "sockets": args.sockets}

    frame = '{"event":"e","channel":"fanout","data":"{\\"n\\":1}"}'
    adapters: dict[str, LocalAdapter] = {}
    for name, cls in (("publish_without_counters_us", Uncounted),
                      ("publish_with_counters_us", LocalAdapter)):
        adapters[name] = cls()
        for i in range(args.subs):
            adapters[name].subscribe("1", "fanout", Conn(f"1.{i}"))
    best = dict.fromkeys(adapters, float("inf"))
    for _ in range(args.rounds):  # interleaved, so that load from elsewhere hits both
        for name, adapter in adapters.items():
            best[name] = min(best[name], per_call_us(
                lambda: adapter.publish("1", "fanout", frame), 2000))
    out.update({name: round(us, 3) for name, us in best.items()})
    out["counters_per_publish_us"] = round(out["publish_with_counters_us"]
                                           - out["publish_without_counters_us"], 3)

    app = App(id="1", key="bench", secret="s")
    hub = Hub([app])
    store = SimpleNamespace(observe_queries=lambda *a: None)
    chat = SimpleNamespace(notice_counts={0: 5, 2: 1})
    metrics = Metrics(hub, chat, store, None)  # type: ignore[arg-type]
    route = r"/apps/([0-9A-Za-z_\-]+)/events"
    out["observe_http_us"] = round(per_call_us(
        lambda: metrics.observe_http(route, "POST", 200, 0.0002), 20000), 3)
    out["observe_query_us"] = round(per_call_us(
        lambda: metrics.observe_query("SELECT wolive_service.service_id FROM ...", 0.0001),
        20000), 3)

    for i in range(args.sockets):
        sid = f"1.{i}"
        hub.sessions[sid] = SimpleNamespace(app=app)  # type: ignore[assignment]
        run_inline(hub.adapter.subscribe("1", f"idle-{i}", Conn(sid)))
    metrics.database_gauges = (3, 2)
    out["scrape_ms"] = round(per_call_us(lambda: generate_latest(metrics.registry), 20) / 1000, 2)
    out["scrape_bytes"] = len(generate_latest(metrics.registry))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
