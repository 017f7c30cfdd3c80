"""Operating wolive (issue 13, items 1-3): `/metrics` in the Prometheus text format, moving
with traffic and refused to strangers; `/healthz` and `/readyz` (503 while the database is
unusable, 200 again after, 503 when shutting down); JSON logs one object per line; the
request id from `X-Request-Id` to the answer, the error body and the log line."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pusher
import pytest
from conftest import ADMIN_PASSWORD, start_server, stop_server, write_config
from helpers import BIZ, Client, PusherSocket, open_visitor_window
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient, HTTPResponse

import wolive
from handlers.ops import MetricsAccess
from handlers.services import SETTINGS_KEY

SECRET = "ops-secret"
EVENTS_ROUTE = r"/apps/([0-9A-Za-z_\-]+)/events"


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Metrics on (loopback only, the allow-list's default), and an app secret the official
    library can sign with."""
    return {"metrics.enabled": True,
            "pusher.apps": [{"id": "1", "key": "wolive", "secret": SECRET}]}


async def get(url: str, headers: dict[str, str] | None = None) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(url, headers=headers or {}, raise_error=False)


async def scrape(base_url: str) -> dict[str, float]:
    """Every sample of `/metrics`, as `name{label="value",...}` → value (labels sorted)."""
    resp = await get(base_url + "/metrics")
    assert resp.code == 200, resp.body[:300]
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.body.decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def moved(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


# ---- metrics -----------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_metrics_parse_and_move_with_traffic(base_url: str, ws_base: str) -> None:
    boss = Client(base_url)
    assert (await boss.install(BIZ, "boss", ADMIN_PASSWORD)).code == 302
    before = await scrape(base_url)
    for name in ("wolive_pusher_sockets", "wolive_visitors_waiting", "wolive_agents_online",
                 "process_cpu_seconds_total"):
        assert any(k.startswith(name + "{") for k in before), name

    assert (await get(base_url + "/healthz")).code == 200  # an HTTP request
    brew = await AsyncHTTPClient().fetch(base_url + "/healthz", method="BREW",
                                         allow_nonstandard_methods=True, raise_error=False)
    assert brew.code == 405  # any token is a method: counted as "other"
    sock = await PusherSocket.connect(ws_base)  # a WebSocket connect
    assert (await sock.subscribe("news"))["event"].endswith("subscription_succeeded")
    client = pusher.Pusher(app_id="1", key="wolive", secret=SECRET, host="127.0.0.1",
                           port=int(base_url.rsplit(":", 1)[1]), ssl=False)
    await asyncio.get_running_loop().run_in_executor(
        None, lambda: client.trigger("news", "tick", {"n": 1}))  # a publish, HTTP API
    assert (await sock.expect("tick", "news"))["data"] == {"n": 1}
    visitor, boot = await open_visitor_window(base_url, BIZ, "v-metrics")
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        k: boot[k] for k in ("visiter_id", "business_id", "channel")})  # a notice
    assert body["code"] == 3, body  # nobody online

    after = await scrape(base_url)
    app = '{app="1"}'
    assert moved(before, after, 'wolive_http_request_duration_seconds_count'
                 '{method="GET",route="/healthz",status="200"}') == 1
    assert moved(before, after, 'wolive_http_request_duration_seconds_count'
                 '{method="other",route="/healthz",status="405"}') == 1
    assert moved(before, after, 'wolive_http_request_duration_seconds_count'
                 f'{{method="POST",route="{EVENTS_ROUTE}",status="200"}}') == 1
    assert moved(before, after, 'wolive_http_request_duration_seconds_count'
                 '{method="POST",route="/admin/event/notice",status="200"}') == 1
    assert moved(before, after, "wolive_pusher_connections_total" + app) == 1
    assert after["wolive_pusher_sockets" + app] == 1
    assert after["wolive_cluster_ready{}"] == 1  # alone: always
    assert after["wolive_pusher_channels" + app] >= 1
    assert after["wolive_pusher_subscriptions" + app] >= 1
    assert moved(before, after, "wolive_pusher_messages_published_total" + app) >= 1
    assert moved(before, after, "wolive_pusher_messages_delivered_total" + app) >= 1
    assert moved(before, after, 'wolive_assignments_total{code="3"}') == 1
    assert moved(before, after, 'wolive_assignments_total{code="0"}') == 0
    assert moved(before, after, 'wolive_db_query_duration_seconds_count'
                 '{operation="select"}') > 0
    assert after["wolive_visitors_waiting{}"] == 1  # code 3 waits all the same
    assert after["wolive_agents_online{}"] == 0
    # Route labels are patterns from the route table, never raw paths.
    routes = {re.search(r'route="([^"]*)"', k)[1] for k in after  # type: ignore[index]
              if k.startswith("wolive_http_request_duration_seconds_count")}
    assert "/admin/event/notice" in routes and "/apps/1/events" not in routes, routes


@pytest.mark.gen_test(timeout=60)
async def test_metrics_refused_without_token_or_from_elsewhere(
        base_url: str, app: Any) -> None:
    url = base_url + "/metrics"
    # Default allow-list (127.0.0.1, ::1): a request a proxy forwarded is not "local".
    resp = await get(url, {"X-Forwarded-For": "203.0.113.9"})
    assert resp.code == 403 and json.loads(resp.body)["request_id"] == \
        resp.headers["X-Request-Id"]

    def access(**metrics: Any) -> MetricsAccess:
        return MetricsAccess.from_config(wolive.load_config(None, {
            "metrics.enabled": True, **{f"metrics.{k}": v for k, v in metrics.items()}}))

    def use(**changes: Any) -> None:  # this listener's services, with `changes`
        app.settings[SETTINGS_KEY] = dataclasses.replace(app.settings[SETTINGS_KEY], **changes)

    use(metrics_access=access(allow_ips=["10.0.0.0/8"]))
    assert (await get(url)).code == 403  # 127.0.0.1 is not in it
    use(metrics_access=access(token="t0ken", allow_ips=[]))
    assert (await get(url)).code == 403
    assert (await get(url, {"Authorization": "Bearer wrong"})).code == 403
    assert (await get(url, {"Authorization": "Basic t0ken"})).code == 403
    assert (await get(url, {"Authorization": "Bearer t0ken"})).code == 200
    use(metrics_access=access(token="t0ken"))  # both must pass
    assert (await get(url, {"Authorization": "Bearer t0ken",
                            "X-Real-Ip": "203.0.113.9"})).code == 403
    assert (await get(url, {"Authorization": "Bearer t0ken"})).code == 200
    # Off (the default): 404, as an unknown URL.
    use(metrics=None)
    resp = await get(url, {"Authorization": "Bearer t0ken"})
    assert resp.code == 404 and json.loads(resp.body)["code"] == 1


def test_metrics_config_refuses_an_open_endpoint(tmp_path: Path) -> None:
    with pytest.raises(wolive.ConfigProblem, match="metrics.enabled: give a token"):
        wolive.load_config(None, {"metrics.enabled": True, "metrics.allow_ips": []})
    with pytest.raises(wolive.ConfigProblem, match=r"metrics.allow_ips\[0\]"):
        wolive.load_config(None, {"metrics.allow_ips": ["localhost"]})
    with pytest.raises(wolive.ConfigProblem, match="log_format: must be text or json"):
        wolive.load_config(None, {"log_format": "xml"})
    assert wolive.load_config(None).metrics.enabled is False


# ---- request ids -------------------------------------------------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_request_id_round_trip(base_url: str) -> None:
    resp = await get(base_url + "/healthz", {"X-Request-Id": "lb-7f3a.9:x"})
    assert resp.headers["X-Request-Id"] == "lb-7f3a.9:x"
    # An error answer made by handlers/base.py: {code, msg, request_id}.
    resp = await get(base_url + "/admin/set/getchats", {"X-Request-Id": "trace-42"})
    body = json.loads(resp.body)
    assert resp.code == 401 and set(body) == {"code", "msg", "request_id"}, body
    assert body["request_id"] == "trace-42" == resp.headers["X-Request-Id"]
    # Not sane (a space, too long, two of them): a fresh id instead.
    seen = set()
    for bad in ("has space", "x" * 129, "a,b"):
        resp = await get(base_url + "/admin/set/getchats", {"X-Request-Id": bad})
        rid = resp.headers["X-Request-Id"]
        assert rid != bad and re.fullmatch(r"[0-9a-f]{16,}", rid), rid
        assert json.loads(resp.body)["request_id"] == rid
        seen.add(rid)
    assert len(seen) == 3
    # Pages, the 404 of no route, and the publish fast path carry one too.
    for path in ("/admin/login/index", "/no/such/page"):
        assert re.fullmatch(r"[0-9a-f]{16,}", (await get(base_url + path)).headers[
            "X-Request-Id"])
    resp = await AsyncHTTPClient().fetch(base_url + "/apps/1/events", method="POST",
                                         body=b"{}", raise_error=False,
                                         headers={"X-Request-Id": "pub-1"})
    assert resp.code == 401 and resp.headers["X-Request-Id"] == "pub-1"


# ---- health ------------------------------------------------------------------------------

@pytest.mark.gen_test
async def test_probes_may_ask_with_head(base_url: str) -> None:
    """Load balancers and uptime monitors often probe with HEAD: `/healthz`, `/readyz` and
    the fixed default chime answer it as GET without the body (that an API still answers
    405 is test_install_login's `test_head_on_pages_is_answered_like_get`)."""
    for path, ctype in (("/healthz", "text/plain"), ("/readyz", "application/json"),
                        ("/upload/voice/default.mp3", "audio/wav")):
        got = await get(base_url + path)
        head = await AsyncHTTPClient().fetch(base_url + path, method="HEAD", raise_error=False)
        assert (got.code, head.code) == (200, 200), path
        assert head.body == b"" and got.body != b"", path
        assert head.headers["Content-Type"].startswith(ctype), path


async def serve(cfg: dict[str, Any]) -> tuple[wolive.Wolive, str]:
    server = await wolive.make_app(cfg)
    return server, f"http://127.0.0.1:{server.listen()['main']}"


async def wait_status(url: str, status: int, timeout: float = 10.0) -> HTTPResponse:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await get(url)
        if resp.code == status or asyncio.get_running_loop().time() > deadline:
            return resp
        await asyncio.sleep(0.2)


@pytest.mark.gen_test(timeout=60)
async def test_readyz_sqlite_file_unusable_then_back(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    cfg = wolive.load_config(str(write_config(tmp_path, f"sqlite:///{tmp_path}/data/w.db")),
                             {"metrics.enabled": True})
    server, base = await serve(cfg)
    try:
        resp = await get(base + "/readyz")
        assert (resp.code, json.loads(resp.body)) == (200, {"status": "ready"})
        # Unusable: the database file and its WAL overwritten (kept, to put back).
        saved = {}
        for path in (tmp_path / "data").glob("w.db*"):
            saved[path] = path.read_bytes()
            path.write_bytes(b"\xff" * len(saved[path]))
        resp = await get(base + "/readyz")
        body = json.loads(resp.body)
        assert resp.code == 503 and body["status"] == "not ready", body
        assert body["reason"].startswith("database: "), body
        assert (await get(base + "/healthz")).code == 200  # alive all the same
        for path, data in saved.items():
            path.write_bytes(data)
        resp = await wait_status(base + "/readyz", 200)
        assert resp.code == 200, resp.body
        # The outage was counted, and logged once each way (not per probe).
        assert [r.getMessage() for r in caplog.records if r.name == "wolive.ops"] == \
            ["not ready: " + body["reason"], "ready again"]
        server.hub.closing = True  # what `Wolive.stop` does first
        resp = await get(base + "/readyz")
        assert resp.code == 503 and json.loads(resp.body)["reason"] == "shutting down"
    finally:
        await server.stop()


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_readyz_mariadb_stopped_then_back(tmp_path: Path, fresh_mysql_db: str) -> None:
    from test_outage import TcpProxy
    u = urlsplit(fresh_mysql_db)
    proxy = TcpProxy(u.hostname or "127.0.0.1", u.port or 3306)
    await proxy.start()
    via = f"mysql://{u.username or 'root'}:{u.password or ''}@127.0.0.1:{proxy.port}{u.path}"
    server, base = await serve(wolive.load_config(str(write_config(tmp_path, via))))
    try:
        assert (await get(base + "/readyz")).code == 200
        await proxy.stop()  # the database "stops"
        resp = await get(base + "/readyz")
        body = json.loads(resp.body)
        assert resp.code == 503 and body["reason"].startswith("database: "), body
        assert resp.headers["Retry-After"] == "5"
        await proxy.start()
        assert (await wait_status(base + "/readyz", 200)).code == 200
    finally:
        await server.stop()
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()


# ---- JSON logs ---------------------------------------------------------------------------

ACCESS_FIELDS = {"time", "level", "logger", "message", "request_id", "method", "route",
                 "status", "latency_ms", "remote_ip"}


def test_json_logs_one_object_per_line(tmp_path: Path) -> None:
    srv = start_server(tmp_path, f"sqlite:///{tmp_path}/data/wolive.db", log_level="debug",
                       extra={"log_format": "json"})
    try:
        for args in (["-H", "X-Request-Id: json-1", f"{srv.base_url}/healthz"],
                     [f"{srv.base_url}/admin/set/getchats"],
                     [f"{srv.base_url}/app/wolive?protocol=7"]):
            subprocess.run(["curl", "-s", "-o", "/dev/null", *args], check=True, timeout=10)
    finally:
        assert stop_server(srv) == 0
    lines = [line for line in srv.logs().splitlines()
             if line.strip() and not line.startswith("wolive ready on ")]
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for r in records:
        assert {"time", "level", "logger", "message"} <= set(r), r
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"]), r
    access = [r for r in records if r["logger"] == "tornado.access"]
    health = next(r for r in access if r["request_id"] == "json-1")
    assert ACCESS_FIELDS <= set(health), health
    assert (health["method"], health["route"], health["status"], health["level"]) == \
        ("GET", "/healthz", 200, "debug")
    assert isinstance(health["latency_ms"], float) and health["remote_ip"] == "127.0.0.1"
    refused = next(r for r in access if r["route"] == "/admin/set/getchats")
    assert (refused["status"], refused["level"]) == (401, "warning")
    # A line written while the handler ran (Tornado's refusal warning) has its request id.
    why = next(r for r in records if r["logger"] == "tornado.general"
               and "/admin/set/getchats" in r["message"])
    assert why["request_id"] == refused["request_id"], (why, refused)
    socket = next(r for r in access if r["route"] == "/app/([^/]+)")
    assert socket["app"] == "1", socket


def test_json_formatter_fields_channel_and_traceback() -> None:
    """Lines about one channel carry `app` and `channel` (e.g. a failing occupancy
    listener); a traceback is one JSON string, so the line stays one line."""
    import logging

    from handlers.logs import REQUEST_ID, JsonFormatter
    logger = logging.getLogger("wolive.test-json")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed for %s",
                                   ("cu1",), __import__("sys").exc_info(),
                                   extra={"app": "1", "channel": "cu1"})
    token = REQUEST_ID.set("req-9")
    try:
        line = JsonFormatter().format(record)
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    out = json.loads(line)
    assert (out["level"], out["logger"], out["message"], out["app"], out["channel"],
            out["request_id"]) == ("error", "wolive.test-json", "failed for cu1", "1", "cu1",
                                   "req-9")
    assert "ValueError: boom" in out["exc_info"]


@pytest.mark.gen_test(timeout=60)
async def test_readyz_slow_database_is_one_probe_and_a_bounded_wait(
        base_url: str, wolive_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that does not answer: `/readyz` says so within 2 s, the probe is not
    cancelled, and probes meanwhile share it (no pile of pooled connections)."""
    calls: list[float] = []
    release = asyncio.Event()

    async def hanging_ping() -> None:
        calls.append(asyncio.get_running_loop().time())
        await release.wait()

    monkeypatch.setattr(wolive_server.store, "ping", hanging_ping)
    started = asyncio.get_running_loop().time()
    answers = await asyncio.gather(*(get(base_url + "/readyz") for _ in range(3)))
    assert asyncio.get_running_loop().time() - started < 4
    for resp in answers:
        assert resp.code == 503, resp.body
        assert json.loads(resp.body)["reason"] == "database: no answer within 2 s"
    assert len(calls) == 1
    release.set()
    resp = await wait_status(base_url + "/readyz", 200)
    assert resp.code == 200 and len(calls) == 2
