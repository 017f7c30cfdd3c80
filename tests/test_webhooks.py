"""Webhooks (realtime/pusher/webhooks.py) against a receiver started here, from real sockets.

The receiver is a small Tornado app on a free port that records every request (arrival
time, path, headers, raw body) and can answer 500 to the first N calls or hang. Signatures
are checked with the official Python library (`validate_webhook`) and the official Node
library (`pusher.webhook({headers, rawBody}).isValid()`, tests/node/webhook_validate.js).

Events come from real sockets on the in-process server (private, presence and cache
channels, client events). `hub.emit`, the hub's own call, feeds `subscription_count` (the
hub does not emit it) and the queue-overflow test (twelve events before the first POST).

Webhooks never touch the database, so these tests run on SQLite only.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pusher
import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

import wolive
from conftest import write_config
from helpers import PusherSocket
from realtime.pusher import webhooks as wh
from realtime.pusher.hub import App, Hub
from realtime.pusher.signing import channel_auth
from realtime.pusher.adapter import run_inline

NODE_DIR = Path(__file__).resolve().parent / "node"
#: Generous bound for "answered promptly": far below the receiver's hang and the 1 s
#: request timeout the slow-receiver test sets, far above a subscribe's few milliseconds.
PROMPT_S = 0.5


# ---- the receiver ------------------------------------------------------------------------

@dataclass
class Hit:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.data["events"]


class Receiver:
    """Records requests; answers `fail_status` to the first `fail_first`, or hangs."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.fail_first = 0
        self.fail_status = 500
        self.hang = False
        self.release = asyncio.Event()
        self.port = 0

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def wait_hits(self, n: int, timeout: float = 5.0, path: Optional[str] = None
                        ) -> list[Hit]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            hits = self.hits if path is None else self.at(path)
            if len(hits) >= n:
                return hits
            if loop.time() > deadline:
                raise AssertionError(f"{len(hits)} of {n} webhook POSTs within {timeout} s: "
                                     f"{[h.events for h in hits]}")
            await asyncio.sleep(0.02)


class _Hook(tornado.web.RequestHandler):
    def initialize(self, rec: Receiver) -> None:
        self.rec = rec

    async def post(self) -> None:
        rec = self.rec
        rec.hits.append(Hit(time.monotonic(), self.request.path, dict(self.request.headers),
                            self.request.body))
        if rec.hang:
            await rec.release.wait()
            return
        if len(rec.hits) <= rec.fail_first:
            self.set_status(rec.fail_status)
        self.write("ok")


@pytest.fixture
def receiver(io_loop: Any) -> Iterator[Receiver]:
    rec = Receiver()
    sock, rec.port = bind_unused_port()
    # No access log: Tornado logs a 500 at ERROR, which would fail the test (conftest).
    server = HTTPServer(tornado.web.Application([(r"/.*", _Hook, {"rec": rec})],
                                                log_function=lambda handler: None))
    server.add_sockets([sock])
    yield rec
    rec.release.set()
    server.stop()
    io_loop.run_sync(server.close_all_connections)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    sock, port = bind_unused_port()
    sock.close()
    return port


# ---- the server under test ---------------------------------------------------------------

@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Webhooks never touch the database: SQLite only (conftest runs MariaDB too)."""
    return f"sqlite:///{tmp_path}/data/wolive.db"


@pytest.fixture
def hooks(request: pytest.FixtureRequest, receiver: Receiver) -> list[dict[str, Any]]:
    """The app's `webhooks` config. Tests parametrize it indirectly with entries whose
    `path` is on the receiver, or `unreachable: true` for a port nobody listens on."""
    entries = getattr(request, "param", None) or [{"path": "/hook"}]
    out = []
    for entry in entries:
        entry = dict(entry)
        if entry.pop("unreachable", False):
            entry["url"] = f"http://127.0.0.1:{closed_port()}/hook"
        else:
            entry["url"] = receiver.url(entry.pop("path"))
        out.append(entry)
    return out


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, hooks: list[dict[str, Any]]) -> dict[str, Any]:
    """The conftest config with webhooks on app 1, through `load_config`'s checks."""
    return wolive.load_config(str(write_config(tmp_path, db_url)), {
        "pusher.apps": [{"id": "1", "key": "wolive", "webhooks": hooks}]})


def tune(server: wolive.Wolive, **attrs: float) -> wh.Webhooks:
    hooks = server.webhooks
    assert hooks is not None
    for name, value in attrs.items():
        assert hasattr(hooks, name), name
        setattr(hooks, name, value)
    return hooks


async def join(ws_base: str, server: wolive.Wolive, channel: str) -> PusherSocket:
    """A new socket subscribed to private `channel` (signed like an auth endpoint would)."""
    sock = await PusherSocket.connect(ws_base)
    app = server.hub.default_app
    answer = await sock.subscribe(channel, channel_auth(app.key, app.secret, sock.socket_id,
                                                        channel))
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return sock


def python_validates(server: wolive.Wolive, hit: Hit) -> Optional[dict[str, Any]]:
    app = server.hub.default_app
    client = pusher.Pusher(app_id=app.id, key=app.key, secret=app.secret)
    return client.validate_webhook(key=hit.headers["X-Pusher-Key"],
                                   signature=hit.headers["X-Pusher-Signature"], body=hit.body)


def all_events(hits: list[Hit]) -> list[dict[str, Any]]:
    return [e for h in hits for e in h.events]


# ---- the tests ---------------------------------------------------------------------------

def test_defaults_are_pusher_s() -> None:
    """The timings and limits, with their sources (module docstring of realtime.pusher.webhooks)."""
    assert wh.VACATE_GRACE_S == 3.0  # Pusher: back within 3 s, neither event is sent
    assert wh.RETRY_WINDOW_S == 300.0  # Pusher: retries with backoff for 5 minutes
    assert wh.BATCH_WINDOW_S == 0.25 and wh.BATCH_MAX_EVENTS == 20  # Pusher's batching
    assert wh.REQUEST_TIMEOUT_S == 4.0  # Pusher: answer within 4 s
    assert wh.QUEUE_MAX_EVENTS == 10_000
    built = wh.Webhooks({})
    assert (built.grace_s, built.retry_window_s, built.queue_max_events) == (3.0, 300.0, 10_000)


@pytest.mark.gen_test(timeout=20)
async def test_occupied_then_vacated_after_the_default_3_s_grace(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    assert wolive_server.webhooks is not None
    assert wolive_server.webhooks.grace_s == wh.VACATE_GRACE_S == 3.0
    sock = await join(ws_base, wolive_server, "private-room")
    (hit,) = await receiver.wait_hits(1)
    assert hit.path == "/hook"
    assert hit.headers["Content-Type"] == "application/json"  # exactly, no charset
    assert hit.headers["X-Pusher-Key"] == "wolive"
    assert hit.events == [{"name": "channel_occupied", "channel": "private-room"}]
    time_ms = hit.data["time_ms"]
    assert isinstance(time_ms, int) and abs(time_ms - time.time() * 1000) < 5000
    assert python_validates(wolive_server, hit) == hit.data

    closed_at = time.monotonic()
    sock.close()
    hits = await receiver.wait_hits(2, timeout=8)
    assert hits[1].events == [{"name": "channel_vacated", "channel": "private-room"}]
    assert hits[1].at - closed_at >= 3.0
    assert python_validates(wolive_server, hits[1]) == hits[1].data


@pytest.mark.gen_test(timeout=20)
async def test_a_reload_within_the_grace_sends_nothing(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    hooks = tune(wolive_server, grace_s=1.0)
    first = await join(ws_base, wolive_server, "private-page")
    await receiver.wait_hits(1)
    first.close()
    await asyncio.sleep(0.2)
    second = await join(ws_base, wolive_server, "private-page")  # the reloaded page
    await asyncio.sleep(hooks.grace_s + 1.0)
    assert [h.events for h in receiver.hits] == [
        [{"name": "channel_occupied", "channel": "private-page"}]]  # no vacated, no occupied

    second.close()  # now it really leaves
    hits = await receiver.wait_hits(2, timeout=5)
    assert hits[1].events == [{"name": "channel_vacated", "channel": "private-page"}]
    await asyncio.sleep(0.5)
    assert len(receiver.hits) == 2


@pytest.mark.gen_test(timeout=20)
async def test_events_due_together_share_one_post(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    sock = await PusherSocket.connect(ws_base)
    app = wolive_server.hub.default_app
    names = [f"private-batch-{i}" for i in range(5)]
    for name in names:
        await sock.subscribe(name, channel_auth(app.key, app.secret, sock.socket_id, name))
    await receiver.wait_hits(1)
    await asyncio.sleep(wh.BATCH_WINDOW_S * 2)
    assert len(receiver.hits) == 1
    assert receiver.hits[0].events == [{"name": "channel_occupied", "channel": n}
                                       for n in names]


@pytest.mark.gen_test(timeout=20)
async def test_failed_posts_are_retried_with_growing_delays(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    base = 0.2
    tune(wolive_server, retry_base_s=base)
    receiver.fail_first = 3
    await join(ws_base, wolive_server, "private-retry")
    hits = await receiver.wait_hits(4, timeout=10)
    expected = [{"name": "channel_occupied", "channel": "private-retry"}]
    assert all(h.events == expected for h in hits)
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:])]
    for i, gap in enumerate(gaps):
        assert gap >= base * 2 ** i, gaps  # base, 2×base, 4×base (plus up to 25 % jitter)
    assert gaps[0] < gaps[1] < gaps[2], gaps
    # Each attempt is stamped and signed afresh, and every one is valid.
    stamps = [h.data["time_ms"] for h in hits]
    assert stamps == sorted(stamps) and all(python_validates(wolive_server, h) for h in hits)
    await asyncio.sleep(1.0)
    assert len(receiver.hits) == 4  # the 200 ended it
    # What /metrics reports (realtime/metrics.py): three retries, one delivery.
    assert wolive_server.webhooks is not None
    assert wolive_server.webhooks.stats == {"1": {"retried": 3, "delivered": 1}}


@pytest.mark.gen_test(timeout=20)
async def test_a_receiver_failing_past_the_retry_window_is_dropped_with_a_warning(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="wolive.webhooks")
    tune(wolive_server, retry_base_s=0.1, retry_window_s=0.8)
    receiver.fail_first = 10**6
    receiver.fail_status = 503
    await join(ws_base, wolive_server, "private-lost")
    for _ in range(100):
        if any("dropped 1 event(s)" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    warning = [r for r in caplog.records if "dropped 1 event(s)" in r.getMessage()]
    assert warning and warning[0].levelno == logging.WARNING
    assert "HTTP 503" in warning[0].getMessage()
    tried = len(receiver.hits)
    assert tried >= 3

    receiver.fail_first = tried  # the receiver is back: the next event goes through alone
    await join(ws_base, wolive_server, "private-later")
    hits = await receiver.wait_hits(tried + 1)
    assert hits[-1].events == [{"name": "channel_occupied", "channel": "private-later"}]
    assert wolive_server.webhooks is not None
    stats = wolive_server.webhooks.stats["1"]  # what /metrics reports
    assert (stats["failed"], stats["retried"]) == (1, tried - 1), stats
    for _ in range(50):
        if stats.get("delivered"):
            break
        await asyncio.sleep(0.02)
    assert stats["delivered"] == 1, stats


@pytest.mark.gen_test(timeout=30)
async def test_a_hanging_receiver_never_delays_a_subscribe(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    tune(wolive_server, request_timeout_s=1.0)
    receiver.hang = True
    await join(ws_base, wolive_server, "private-first")
    await receiver.wait_hits(1)  # a POST is now stuck in the receiver
    loop = asyncio.get_running_loop()
    took = []
    for i in range(20):
        sock = await PusherSocket.connect(ws_base)
        app = wolive_server.hub.default_app
        name = f"private-busy-{i}"
        started = loop.time()
        answer = await sock.subscribe(name, channel_auth(app.key, app.secret, sock.socket_id,
                                                         name))
        took.append(loop.time() - started)
        assert answer["event"] == "pusher_internal:subscription_succeeded"
        sock.send("pusher:ping", {})
        assert (await sock.recv())["event"] == "pusher:pong"
        sock.close()
    assert max(took) < PROMPT_S, took
    # The stuck POST timed out (1 s here) and counted as a failure: it is tried again.
    hits = await receiver.wait_hits(2, timeout=6)
    assert hits[1].events == hits[0].events


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("hooks", [[{"unreachable": True}]], indirect=True)
async def test_an_unreachable_receiver_never_delays_a_subscribe(
        wolive_server: wolive.Wolive, ws_base: str, caplog: pytest.LogCaptureFixture) -> None:
    tune(wolive_server, retry_base_s=0.1, retry_window_s=0.6)
    loop = asyncio.get_running_loop()
    for i in range(5):
        started = loop.time()
        await join(ws_base, wolive_server, f"private-nobody-{i}")
        assert loop.time() - started < PROMPT_S
    for _ in range(100):
        if any("dropped" in r.getMessage() for r in caplog.records):
            break
        await asyncio.sleep(0.05)
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert dropped and "ConnectionRefusedError" in dropped[0], dropped


@pytest.mark.gen_test(timeout=20)
async def test_signature_valid_under_the_python_and_node_libraries(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver,
        tmp_path: Path) -> None:
    app = wolive_server.hub.default_app
    sock = await join(ws_base, wolive_server, "private-chat")
    sock.send("client-typing", {"text": "你好 👋"}, channel="private-chat")
    for _ in range(100):
        if any(e["name"] == "client_event" for e in all_events(receiver.hits)):
            break
        await asyncio.sleep(0.02)
    hit = next(h for h in receiver.hits if h.events[-1]["name"] == "client_event")
    assert "你好 👋".encode() in hit.body  # UTF-8 on the wire, signed as sent
    assert python_validates(wolive_server, hit) == hit.data
    assert python_validates(wolive_server, Hit(0, "", hit.headers, hit.body + b" ")) is None

    node = shutil.which("node")
    assert node, "node is not on PATH (Node 20+ and `npm ci --prefix tests/node` needed)"
    assert (NODE_DIR / "node_modules" / "pusher" / "package.json").exists(), \
        "the Node pusher library is missing: run `npm ci --prefix tests/node`"
    headers = {k.lower(): v for k, v in hit.headers.items()}
    raw = hit.body.decode("utf-8")
    cases = [
        {"name": "as_sent", "headers": headers, "rawBody": raw},
        {"name": "tampered", "headers": headers, "rawBody": raw.replace("你好", "再见")},
        {"name": "charset", "headers": {**headers,
                                        "content-type": "application/json; charset=utf-8"},
         "rawBody": raw},
    ]
    case_file = tmp_path / "webhook_cases.json"
    case_file.write_text(json.dumps({"appId": app.id, "key": app.key, "secret": app.secret,
                                     "cases": cases}), encoding="utf-8")
    proc = await asyncio.get_running_loop().run_in_executor(None, lambda: subprocess.run(
        [node, str(NODE_DIR / "webhook_validate.js"), str(case_file)], cwd=NODE_DIR,
        capture_output=True, text=True, encoding="utf-8", timeout=30))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["as_sent"] == {"valid": True, "events": hit.events,
                                 "time_ms": hit.data["time_ms"]}
    assert result["tampered"]["valid"] is False
    assert result["charset"]["valid"] is False  # why Content-Type must be exact


@pytest.mark.gen_test(timeout=20)
@pytest.mark.parametrize("hooks", [[{"path": "/pusher", "events": ["channel_vacated"]},
                                    {"path": "/legacy", "legacy_names": True}]],
                         indirect=True)
async def test_legacy_names_for_wolive_admin_event_and_event_filters(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    tune(wolive_server, grace_s=0.3)
    sock = await join(ws_base, wolive_server, "private-old")
    await receiver.wait_hits(1, path="/legacy")
    sock.close()
    legacy = await receiver.wait_hits(2, path="/legacy")
    modern = await receiver.wait_hits(1, path="/pusher")
    await asyncio.sleep(0.5)

    assert all_events(receiver.at("/legacy")) == [
        {"name": "channel_added", "channel": "private-old"},
        {"name": "channel_removed", "channel": "private-old"}]
    secret = wolive_server.hub.default_app.secret
    for hit in legacy:
        stamp = hit.data["time_ms"]  # WoLive's pusher: microtime(true), float seconds
        assert isinstance(stamp, float) and abs(stamp - time.time()) < 5
        # What WoLive's /admin/event does (its document, "离线访问"): HMAC of the raw body.
        expected = hmac.new(secret.encode(), hit.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(hit.headers["X-Pusher-Signature"], expected)
        assert hit.headers["Content-Type"] == "application/json"
        assert python_validates(wolive_server, hit) is None  # seconds: why it is opt-in

    assert all_events(receiver.at("/pusher")) == [
        {"name": "channel_vacated", "channel": "private-old"}]  # the filter
    assert isinstance(modern[0].data["time_ms"], int)
    assert python_validates(wolive_server, modern[0]) == modern[0].data


async def join_presence(ws_base: str, server: wolive.Wolive, channel: str,
                        user_id: str) -> PusherSocket:
    sock = await PusherSocket.connect(ws_base)
    app = server.hub.default_app
    channel_data = json.dumps({"user_id": user_id})
    sock.send("pusher:subscribe", {"channel": channel, "channel_data": channel_data,
                                   "auth": channel_auth(app.key, app.secret, sock.socket_id,
                                                        channel, channel_data)})
    await sock.expect("pusher_internal:subscription_succeeded", channel)
    return sock


@pytest.mark.gen_test(timeout=20)
async def test_member_client_and_cache_events_from_real_sockets(
        wolive_server: wolive.Wolive, ws_base: str, receiver: Receiver) -> None:
    hooks = tune(wolive_server, grace_s=0.5)
    room = "presence-room"
    ann = await join_presence(ws_base, wolive_server, room, "7")
    bo = await join_presence(ws_base, wolive_server, room, "8")
    ann.send("client-typing", {"text": "你好 👋"}, channel=room)
    await bo.expect("client-typing", room)
    ann.close()  # Ann reloads her page: member_removed held, then cancelled
    await asyncio.sleep(0.1)
    await join_presence(ws_base, wolive_server, room, "7")
    bo.close()  # Bo really leaves: member_removed after the grace
    cache = await PusherSocket.connect(ws_base)
    assert (await cache.subscribe("cache-prices"))["event"] == \
        "pusher_internal:subscription_succeeded"
    await asyncio.sleep(hooks.grace_s + 0.8)

    assert all_events(receiver.hits) == [
        {"name": "channel_occupied", "channel": room},
        {"name": "member_added", "channel": room, "user_id": "7"},
        {"name": "member_added", "channel": room, "user_id": "8"},
        {"name": "client_event", "channel": room, "event": "client-typing",
         "data": '{"text":"你好 👋"}', "socket_id": ann.socket_id, "user_id": "7"},
        {"name": "channel_occupied", "channel": "cache-prices"},
        {"name": "cache_miss", "channel": "cache-prices"},
        {"name": "member_removed", "channel": room, "user_id": "8"},  # after its grace
    ]
    assert all(python_validates(wolive_server, h) == h.data for h in receiver.hits)


@pytest.mark.gen_test(timeout=20)
async def test_subscription_counts_queued_together_are_coalesced(
        wolive_server: wolive.Wolive, receiver: Receiver) -> None:
    """Fed through `hub.emit`, the hub's own call: the hub does not emit this one (yet)."""
    hub = wolive_server.hub
    app = hub.default_app
    for count in (1, 2, 3):  # before the first POST: only the latest count is sent
        hub.emit(app, {"name": "subscription_count", "channel": "private-n",
                       "subscription_count": count})
    hub.emit(app, {"name": "subscription_count", "channel": "private-m",
                   "subscription_count": 1})
    await receiver.wait_hits(1)
    await asyncio.sleep(wh.BATCH_WINDOW_S * 2)
    assert all_events(receiver.hits) == [
        {"name": "subscription_count", "channel": "private-n", "subscription_count": 3},
        {"name": "subscription_count", "channel": "private-m", "subscription_count": 1}]


@pytest.mark.gen_test(timeout=20)
async def test_a_full_queue_drops_the_oldest_with_one_warning(
        wolive_server: wolive.Wolive, receiver: Receiver,
        caplog: pytest.LogCaptureFixture) -> None:
    tune(wolive_server, queue_max_events=5)
    app = wolive_server.hub.default_app
    for i in range(12):  # all before the worker's first POST
        wolive_server.hub.emit(app, {"name": "cache_miss", "channel": f"cache-{i}"})
    (hit,) = await receiver.wait_hits(1)
    assert [e["channel"] for e in hit.events] == [f"cache-{i}" for i in range(7, 12)]
    full = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full) == 1 and full[0].levelno == logging.WARNING


class _FakeConn:
    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id

    def send(self, frame: str) -> bool:
        return True

    def close(self, code: int, reason: str) -> None:
        pass


@pytest.mark.gen_test(timeout=20)
async def test_close_sends_held_events_at_once(receiver: Receiver) -> None:
    """Shutdown (`Wolive.stop`): a held vacated is sent now, not lost or waited for."""
    app = App(id="1", key="k", secret="s")
    hub = Hub([app])
    hooks = wh.Webhooks({app: [wh.WebhookTarget(receiver.url())]})
    hub.add_listener(hooks.on_event)
    conn = _FakeConn("1.1")
    run_inline(hub.adapter.subscribe(app.id, "private-x", conn))
    await receiver.wait_hits(1)
    run_inline(hub.adapter.unsubscribe(app.id, "private-x", conn))  # held for 3 s
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hooks.close()
    assert loop.time() - started < 1.0
    assert all_events(receiver.hits) == [
        {"name": "channel_occupied", "channel": "private-x"},
        {"name": "channel_vacated", "channel": "private-x"}]
    run_inline(hub.adapter.subscribe(app.id, "private-y", _FakeConn("1.2")))  # ignored
    assert hooks.pending() == 0
    await hooks.close()  # twice is fine


@pytest.mark.gen_test(timeout=20)
async def test_close_gives_a_hanging_receiver_a_short_drain(
        receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    app = App(id="1", key="k", secret="s")
    hooks = wh.Webhooks({app: [wh.WebhookTarget(receiver.url())]}, batch_window_s=0)
    receiver.hang = True
    hooks.on_event(app, {"name": "cache_miss", "channel": "cache-a"})
    await receiver.wait_hits(1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await hooks.close(drain_s=0.5)
    assert 0.4 < loop.time() - started < 1.5
    assert any("1 event(s) not delivered" in r.getMessage() for r in caplog.records)


# ---- config ------------------------------------------------------------------------------

def _app_with(webhooks: Any) -> dict[str, Any]:
    return {"pusher.apps": [{"id": "1", "key": "k", "webhooks": webhooks}]}


@pytest.mark.parametrize("webhooks, message", [
    ("http://x/", "pusher.apps[0].webhooks: must be list"),
    (["http://x/"], "pusher.apps[0].webhooks[0]: must be a mapping"),
    ([{"events": ["cache_miss"]}], "pusher.apps[0].webhooks[0].url: must be an http://"),
    ([{"url": "ftp://x/"}], "pusher.apps[0].webhooks[0].url: must be an http://"),
    ([{"url": "http:///path"}], "pusher.apps[0].webhooks[0].url: must be an http://"),
    ([{"url": "http://x:99999/"}], "pusher.apps[0].webhooks[0].url: must be an http://"),
    ([{"url": "http://x/"}, {"url": "http://y/", "events": ["channel_ocupied"]}],
     "pusher.apps[0].webhooks[1].events: unknown event 'channel_ocupied'"),
    ([{"url": "http://x/", "events": []}], "pusher.apps[0].webhooks[0].events: must be a"),
    ([{"url": "http://x/", "events": "cache_miss"}], "pusher.apps[0].webhooks[0].events:"),
    ([{"url": "http://x/", "legacy_names": "yes"}],
     "pusher.apps[0].webhooks[0].legacy_names: must be true or false"),
    ([{"url": "http://x/", "colour": "red"}], "pusher.apps[0].webhooks[0].colour: unknown key"),
])
def test_bad_webhook_config_names_the_key(webhooks: Any, message: str) -> None:
    with pytest.raises(wolive.ConfigProblem) as info:
        wolive.load_config(None, _app_with(webhooks))
    assert str(info.value).startswith(message), str(info.value)


def test_webhook_config_defaults_and_aliases() -> None:
    assert wolive.load_config(None).pusher.apps[0].webhooks == ()
    cfg = wolive.load_config(None, _app_with([
        {"url": "https://kefu.example.com/admin/event", "legacy_names": True},
        {"url": "http://h/", "events": ["channel_removed", "member_added"]}]))
    assert [t.to_config() for t in cfg.pusher.apps[0].webhooks] == [
        {"url": "https://kefu.example.com/admin/event", "events": None, "legacy_names": True},
        {"url": "http://h/", "events": ["channel_vacated", "member_added"],
         "legacy_names": False}]


def test_bad_webhook_config_exits_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("pusher:\n  apps:\n    - id: '1'\n      key: k\n      webhooks:\n"
                    "        - url: 'ftp://x/'\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(Path(wolive.__file__)), "--config",
                             str(path)], capture_output=True, text=True, timeout=30,
                            cwd=tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert lines == ["wolive: config error: pusher.apps[0].webhooks[0].url: must be an "
                     "http:// or https:// URL"]


def test_signed_body_shape() -> None:
    """`encode_body` / `signed_headers` without a server: compact JSON, int ms, HMAC."""
    app = App(id="1", key="key", secret="secret")
    body = wh.encode_body([{"name": "channel_occupied", "channel": "c"}], now=1700000000.1234)
    assert body == b'{"time_ms":1700000000123,"events":[{"name":"channel_occupied",' \
                   b'"channel":"c"}]}'
    legacy = wh.encode_body([{"name": "channel_vacated", "channel": "c"}], legacy_names=True,
                            now=1700000000.5)
    assert json.loads(legacy) == {"time_ms": 1700000000.5,
                                  "events": [{"name": "channel_removed", "channel": "c"}]}
    headers = wh.signed_headers(app, body)
    assert headers == {"Content-Type": "application/json", "X-Pusher-Key": "key",
                       "X-Pusher-Signature": hmac.new(b"secret", body,
                                                      hashlib.sha256).hexdigest()}
