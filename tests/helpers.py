"""Test clients: an HTTP client that keeps cookies (like a browser) and a raw Pusher socket."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from http.cookies import SimpleCookie
from typing import Any, Optional
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

#: The test credentials, defined once: the business the tests install, its super_manager
#: and the password every test agent has; and a second business.
BIZ = "shop1"
BOSS = "boss"
PASSWORD = "s3cret-enough"
OTHER_BIZ = "shop2"


class Client:
    """Cookies in, cookies out, `_xsrf` on every POST: what a browser tab does."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.http = AsyncHTTPClient()

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _keep(self, resp: HTTPResponse) -> None:
        for raw in resp.headers.get_list("Set-Cookie"):
            c: SimpleCookie = SimpleCookie()
            c.load(raw)
            for name, morsel in c.items():
                if morsel["expires"] and "1970" in morsel["expires"] or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def fetch(self, path: str, method: str = "GET", form: Optional[dict[str, Any]] = None,
                    json_body: Any = None, headers: Optional[dict[str, str]] = None,
                    xsrf: bool = True, body: Optional[bytes] = None) -> HTTPResponse:
        hdrs = dict(headers or {})
        if self.cookies:
            hdrs["Cookie"] = self.cookie_header()
        url = self.base_url + path
        payload: Optional[bytes] = body
        if method == "GET" and form:
            url += ("&" if "?" in url else "?") + urlencode(form)
        elif form is not None:
            data = dict(form)
            if xsrf and "_xsrf" in self.cookies:
                data.setdefault("_xsrf", self.cookies["_xsrf"])
            payload = urlencode(data).encode()
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif json_body is not None:
            payload = json.dumps(json_body).encode()
            hdrs.setdefault("Content-Type", "application/json")
            if xsrf and "_xsrf" in self.cookies:
                hdrs.setdefault("X-XSRFToken", self.cookies["_xsrf"])
        if method == "POST" and payload is None:
            payload = b""
        resp = await self.http.fetch(url, method=method, body=payload, headers=hdrs,
                                     follow_redirects=False, raise_error=False)
        self._keep(resp)
        return resp

    async def json(self, path: str, method: str = "GET", **kw: Any) -> tuple[int, dict[str, Any]]:
        resp = await self.fetch(path, method, **kw)
        assert resp.headers.get("Content-Type", "").startswith("application/json"), \
            (resp.code, resp.headers.get("Content-Type"), resp.body[:300])
        return resp.code, json.loads(resp.body)

    async def get_xsrf(self, path: str = "/admin/login/index") -> str:
        resp = await self.fetch(path)
        if "_xsrf" not in self.cookies:
            m = re.search(rb'name="_xsrf" value="([^"]+)"', resp.body)
            assert m, f"no _xsrf on {path}: {resp.code}"
            self.cookies["_xsrf"] = m.group(1).decode()
        return self.cookies["_xsrf"]

    async def install(self, business_id: str, user: str, password: str) -> HTTPResponse:
        await self.get_xsrf("/install")
        return await self.fetch("/install", "POST", form={
            "business_id": business_id, "user_name": user, "nick_name": user.title(),
            "password": password, "password2": password})

    async def login(self, user: str, password: str) -> HTTPResponse:
        await self.get_xsrf()
        return await self.fetch("/admin/login/index", "POST",
                                form={"username": user, "password": password})


OPEN_SOCKETS: list["PusherSocket"] = []


class PusherSocket:
    """A raw Pusher protocol 7 client, for asserting exact frames. Tests' sockets are
    closed by the `wolive_server` fixture (OPEN_SOCKETS)."""

    def __init__(self, conn: WebSocketClientConnection) -> None:
        OPEN_SOCKETS.append(self)
        self.conn = conn
        self.socket_id = ""
        self.pending: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, ws_base: str, key: str = "wolive", cookie: str = "",
                      origin: Optional[str] = None, query: str = "protocol=7&client=test"
                      ) -> "PusherSocket":
        from tornado.httpclient import HTTPRequest
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if origin:
            headers["Origin"] = origin
        req = HTTPRequest(f"{ws_base}/app/{key}?{query}", headers=headers)
        sock = cls(await websocket_connect(req))
        first = await sock.recv()
        if first["event"] == "pusher:connection_established":
            sock.socket_id = first["data"]["socket_id"]
        else:
            sock.pending.insert(0, first)
        return sock

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        if self.pending:
            return self.pending.pop(0)
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            return {"event": "__closed__", "code": self.conn.close_code,
                    "reason": self.conn.close_reason}
        frame = json.loads(raw)
        if isinstance(frame.get("data"), str):
            try:
                frame["data"] = json.loads(frame["data"])
            except ValueError:
                pass
        return frame

    async def expect(self, event: str, channel: Optional[str] = None,
                     timeout: float = 5.0) -> dict[str, Any]:
        """The next frame with `event` (and `channel`); frames before it are kept."""
        skipped = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                frame = await self.recv(max(0.01, deadline - loop.time()))
                if frame["event"] == event and (channel is None or frame.get("channel") == channel):
                    return frame
                if frame["event"] == "__closed__":
                    raise AssertionError(f"socket closed waiting for {event}: {frame}")
                skipped.append(frame)
        finally:
            self.pending = skipped + self.pending

    async def nothing(self, within: float = 0.3) -> None:
        """Assert no frame arrives within `within` seconds."""
        try:
            frame = await self.recv(within)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame}")

    def send(self, event: str, data: Any = None, channel: Optional[str] = None) -> None:
        frame: dict[str, Any] = {"event": event}
        if data is not None:
            frame["data"] = data
        if channel is not None:
            frame["channel"] = channel
        self.conn.write_message(json.dumps(frame))

    async def subscribe(self, channel: str, auth: Optional[str] = None) -> dict[str, Any]:
        """Subscribe and return the answer: succeeded or subscription_error."""
        self.send("pusher:subscribe", {"channel": channel, "auth": auth or ""})
        skipped = []
        while True:
            frame = await self.recv()
            if frame.get("channel") == channel and frame["event"] in (
                    "pusher_internal:subscription_succeeded", "pusher:subscription_error"):
                self.pending = skipped + self.pending
                return frame
            if frame["event"] == "pusher:error":
                self.pending = skipped + self.pending
                return frame
            skipped.append(frame)

    def close(self) -> None:
        self.conn.close()


def db_rows(db_url: str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run `sql` (%s params) straight on the database a server uses (SQLite file or MariaDB)
    with plain drivers, commit, and return the rows: what is really stored, not what the
    server says."""
    if db_url.startswith("sqlite:///"):
        import sqlite3
        conn = sqlite3.connect(db_url[len("sqlite:///"):])
        conn.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in conn.execute(sql.replace("%s", "?"), params).fetchall()]
            conn.commit()
            return rows
        finally:
            conn.close()
    import pymysql
    import pymysql.cursors
    from urllib.parse import urlsplit
    u = urlsplit(db_url)
    conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                           password=u.password or "", database=u.path.lstrip("/"),
                           charset="utf8mb4", cursorclass=pymysql.cursors.DictCursor)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = list(cur.fetchall())
        conn.commit()
        return rows
    finally:
        conn.close()


async def open_visitor_window(base_url: str, business_id: str, visiter_id: str = "",
                              **query: str) -> tuple[Client, dict[str, Any]]:
    """GET the visitor chat window as the floating button would; returns its boot data."""
    c = Client(base_url)
    resp = await c.fetch("/index/index/home", form={"business_id": business_id,
                                                    "visiter_id": visiter_id, **query})
    assert resp.code == 200, resp.body[:300]
    m = re.search(rb'<script id="boot" type="application/json">(.*?)</script>', resp.body, re.S)
    assert m, "no boot data in the visitor window"
    return c, json.loads(m.group(1))


async def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll `predicate()` (sync) until it returns something truthy; fail after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


#: The Redis the several-node tests use (each under its own key prefix).
REDIS_URL = os.environ.get("WOLIVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> None:
    """Call at a test module's top: skip the module when Redis at `REDIS_URL` does not
    answer, or fail it when WOLIVE_REQUIRE_REDIS=1 (CI)."""
    import pytest
    import redis
    try:
        answers = bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.exceptions.RedisError:
        answers = False
    if not answers:
        if os.environ.get("WOLIVE_REQUIRE_REDIS") == "1":
            raise RuntimeError(f"WOLIVE_REQUIRE_REDIS=1 but Redis at {REDIS_URL} does not answer")
        pytest.skip(f"Redis at {REDIS_URL} does not answer", allow_module_level=True)


class PrivateRedis:
    """A redis-server of the test's own on a free port (the machine's Redis is shared, so a
    test that stops Redis uses one of these), keeping nothing on disk. `start()` returns
    once it answers; `stop()` kills it; `url` stays the same across restarts. Skips the test
    when redis-server is not installed."""

    def __init__(self, workdir: Any) -> None:
        import shutil
        import socket

        import pytest
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.workdir = str(workdir)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Any = None

    def start(self) -> "PrivateRedis":
        import subprocess
        import time

        import redis
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.workdir], stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                if redis.Redis(port=self.port).ping():
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class RecordingConn:
    """A stand-in for a socket (`realtime.pusher.adapter.Connection`) that keeps the frames
    it is sent, decoded; `close` records the code, after which sends fail."""

    def __init__(self, socket_id: str) -> None:
        self.socket_id = socket_id
        self.frames: list[dict[str, Any]] = []
        self.closed: int | None = None

    def send(self, frame: str) -> bool:
        if self.closed is not None:
            return False
        self.frames.append(json.loads(frame))
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = code

    def names(self) -> list[str]:
        """The event names received, in order."""
        return [f["event"] for f in self.frames]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The frames of event `name`, in order."""
        return [f for f in self.frames if f["event"] == name]


class ErrorRecords(logging.Handler):
    """A logging handler keeping every ERROR (and worse) record in `sink`, for tests that
    check no request logged a fault (or exactly which did)."""

    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)
