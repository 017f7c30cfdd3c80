"""The HTTP API's publish fast path (handlers/pusher.py `Application` and `_LeanPublish`):
`POST /apps/{id}/events` and `/batch_events` answer exactly as the RequestHandler routes
they stand in for (same status, same JSON, same deliveries), over the raw HTTP/1.1
connection: keep-alive goes on after every answer, chunked bodies work, an oversized body
is refused without being kept, and the access log still names every refusal."""
from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import logging
import time
from typing import Any, Iterator

import pusher
import pytest
import tornado.httpserver
import tornado.testing
import tornado.web
from helpers import PusherSocket
from pusher.http import Request, make_query_string
from pusher.signature import sign
from test_pusher_protocol import APPS, cfg, lib, raw_request  # noqa: F401 (cfg: three apps, one disabled)

import handlers
from handlers import pusher as hp


def signed(app_id: str, path: str, body: bytes, *, secret: str = "",
           stale: bool = False, md5: str | None = None, fields: int = 0,
           send: dict[str, Any] | None = None, routed: bool = False) -> str:
    """`path?query` signed as the official library signs (its `Request._generate_auth`),
    for any body, even one the library would refuse to build."""
    app = next(a for a in APPS if a["id"] == app_id) if app_id in ("1", "2", "3") else APPS[0]
    client = pusher.Pusher(app_id=app_id, key=app["key"], secret=secret or app["secret"])
    req = Request(client._pusher_client, "POST", path, {})
    req.body, req.query_params = body, {f"x{i}": "1" for i in range(fields)}
    req._generate_auth()
    if stale or md5 is not None:
        req.query_params.pop("auth_signature")
        if stale:
            req.query_params["auth_timestamp"] = str(int(time.time()) - 3600)
        if md5 is not None:
            req.query_params["body_md5"] = md5
        to_sign = "\n".join(["POST", path, make_query_string(req.query_params)])
        req.query_params["auth_signature"] = sign(secret or app["secret"], to_sign)
    return req.signed_path


def event(**extra: Any) -> bytes:
    return json.dumps({"name": "e", "channel": "news", "data": "hi", **extra}).encode()


#: (label, app id, path, body, signing options) — every answer the endpoints can give.
CASES: list[tuple[str, str, str, bytes, dict[str, Any]]] = [
    ("ok", "1", "/apps/1/events", event(), {}),
    ("ok, channels and info", "1", "/apps/1/events",
     json.dumps({"name": "e", "channels": ["news", "other"], "data": "2",
                 "info": "subscription_count"}).encode(), {}),
    ("ok, socket_id excluded", "1", "/apps/1/events", event(socket_id="1.2"), {}),
    ("batch", "1", "/apps/1/batch_events", json.dumps({"batch": [
        {"name": "a", "channel": "news", "data": "3"},
        {"name": "b", "channel": "news", "data": "4", "info": "subscription_count"}]}).encode(),
     {}),
    ("unknown app", "99", "/apps/99/events", event(), {}),
    ("disabled app", "3", "/apps/3/events", event(), {}),
    ("wrong secret", "1", "/apps/1/events", event(), {"secret": "guess"}),
    ("stale", "1", "/apps/1/events", event(), {"stale": True}),
    ("body_md5 of another body", "1", "/apps/1/events", event(),
     {"md5": hashlib.md5(b"other").hexdigest()}),
    ("not JSON", "1", "/apps/1/events", b"not json", {}),
    ("not UTF-8", "1", "/apps/1/events", b"\xff\xfe{}", {}),
    ("empty body", "1", "/apps/1/events", b"", {}),
    ("no channel", "1", "/apps/1/events", json.dumps({"name": "e", "data": "1"}).encode(), {}),
    ("data not a string", "1", "/apps/1/events",
     json.dumps({"name": "e", "channel": "news", "data": {"a": 1}}).encode(), {}),
    ("data over 10 KB", "1", "/apps/1/events", event(data="x" * 10241), {}),
    ("body over 256 KB", "1", "/apps/1/events", event(data="x" * 300_000), {}),
    ("batch of 11", "1", "/apps/1/batch_events", json.dumps({"batch": [
        {"name": "a", "channel": "news", "data": "1"}] * 11}).encode(), {}),
    ("batch event with two channels", "1", "/apps/1/batch_events", json.dumps({"batch": [
        {"name": "a", "channels": ["news", "x"], "data": "1"}]}).encode(), {}),
    # Unusual requests: the lean path leaves them to Tornado, so the answers are its own.
    ("no Host", "1", "/apps/1/events", event(), {"send": {"host": ()}, "routed": True}),
    ("two Hosts", "1", "/apps/1/events", event(),
     {"send": {"host": ("a", "b")}, "routed": True}),
    ("odd Host", "1", "/apps/1/events", event(),
     {"send": {"host": ("user@evil",)}, "routed": True}),
    ("Host with a port", "1", "/apps/1/events", event(), {"send": {"host": ("[::1]:80",)}}),
    ("multipart", "1", "/apps/1/events", event(),
     {"send": {"ctype": "multipart/form-data; boundary=x"}, "routed": True}),
    ("form", "1", "/apps/1/events", event(),
     {"send": {"ctype": "application/x-www-form-urlencoded"}, "routed": True}),
    ("no Content-Type", "1", "/apps/1/events", event(), {"send": {"ctype": ""}}),
    ("JSON with charset", "1", "/apps/1/events", event(),
     {"send": {"ctype": "Application/JSON; charset=utf-8"}}),
    ("HTTP/1.0", "1", "/apps/1/events", event(), {"send": {"version": "HTTP/1.0"}, "routed": True}),
    ("gzip asked, small answer", "1", "/apps/1/events", event(),
     {"send": {"extra": ("Accept-Encoding: gzip",)}}),
    ("gzip asked, big answer", "1", "/apps/1/events", json.dumps({
        "name": "e", "channels": [f"c{i:03}" for i in range(100)], "data": "1",
        "info": "subscription_count"}).encode(), {"send": {"extra": ("Accept-Encoding: gzip",)}}),
    ("1,200 query fields", "1", "/apps/1/events", event(), {"fields": 1200, "routed": True}),
]


@pytest.fixture
def reference(io_loop: Any, wolive_server: Any) -> Iterator[int]:
    """The same routes and hub behind wolive's `Application` with its lean path off: every
    request goes through the RequestHandlers. Yields its port."""
    app = hp.Application(handlers.default_handlers(), **wolive_server.app.settings)
    app.lean_publish = False
    sock, port = tornado.testing.bind_unused_port()
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    yield port
    server.stop()
    io_loop.run_sync(server.close_all_connections)


class Http:
    """One raw keep-alive HTTP/1.1 connection: what is sent and read is exactly what is
    written here."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Http:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, target: str, body: bytes, *, chunked: bool = False,
                   version: str = "HTTP/1.1", extra: tuple[str, ...] = (),
                   host: tuple[str, ...] = ("x",), ctype: str = "application/json"
                   ) -> tuple[int, dict[str, str], Any]:
        """Status, headers (lower-case names) and the answer: JSON (un-gzipped) when it is,
        else the raw bytes; an answer without Content-Length is read to the close."""
        head = f"POST {target} {version}\r\n" + "".join(f"Host: {h}\r\n" for h in host)
        if ctype:
            head += f"Content-Type: {ctype}\r\n"
        head += "".join(f"{line}\r\n" for line in extra)
        if chunked:
            half = len(body) // 2
            wire = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n"
                            for part in (body[:half], body[half:]) if part) + b"0\r\n\r\n"
            head += "Transfer-Encoding: chunked\r\n"
        else:
            wire = body
            head += f"Content-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + wire)
        status_line = await asyncio.wait_for(self.reader.readline(), 10)
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            raw = await self.reader.readexactly(int(headers["content-length"]))
        else:
            raw = await asyncio.wait_for(self.reader.read(), 10)
        if headers.get("content-encoding") == "gzip":
            raw = gzip.decompress(raw)
        try:
            return status, headers, json.loads(raw)
        except ValueError:
            return status, headers, raw

    def close(self) -> None:
        self.writer.close()


@pytest.mark.gen_test(timeout=60)
async def test_lean_path_answers_as_the_request_handlers_do(
        http_server: Any, reference: int, ws_base: str, wolive_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(wolive_server.app, hp.Application) and wolive_server.app.lean_publish
    served_by_handlers: list[str] = []
    for cls in (hp.EventsHandler, hp.BatchEventsHandler):
        def counting(self: Any, *args: Any, **kwargs: Any) -> None:
            served_by_handlers.append(self.request.path)
        monkeypatch.setattr(cls, "initialize", counting)

    sock = await PusherSocket.connect(ws_base)
    await sock.subscribe("news")
    lean = ref = None
    try:
        for label, app_id, path, body, opts in CASES:
            send = opts.get("send", {})
            lean, ref = await Http.open(http_server.port), await Http.open(reference)
            got = await lean.post(signed(app_id, path, body, **opts), body, **send)
            if not opts.get("routed"):
                assert served_by_handlers == [], f"{label}: not the lean path"
            served_by_handlers.clear()
            want = await ref.post(signed(app_id, path, body, **opts), body, **send)
            if want[0] != 400 or not opts.get("routed"):
                assert served_by_handlers, f"{label}: the reference did not use the handlers"
            served_by_handlers.clear()
            lean.close()
            ref.close()
            assert got[0] == want[0] and got[2] == want[2], (label, got, want)
            for name in set(got[1]) | set(want[1]):  # every header but the clock's and
                if name not in ("date", "x-request-id"):  # the request id (one each)
                    assert got[1].get(name) == want[1].get(name), (label, name, got, want)
            # (Tornado's own bare 400s, before any route, have none.)
            assert ("x-request-id" in got[1]) == ("x-request-id" in want[1]), label
            assert "date" in got[1] or got[0] == want[0] == 400, label
            # What was published reached the subscriber once per server, in order.
            if got[0] == 200 and b'"news"' in body:
                names = ["a", "b"] if "batch" in path else ["e"]
                for _ in (lean, ref):
                    for name in names:
                        assert (await sock.expect(name, "news"))["event"] == name, label
            await sock.nothing(0.05)
    finally:
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_one_connection_goes_on_after_every_answer(
        http_server: Any, ws_base: str, caplog: pytest.LogCaptureFixture) -> None:
    sock = await PusherSocket.connect(ws_base)
    await sock.subscribe("news")
    conn = await Http.open(http_server.port)
    caplog.set_level(logging.DEBUG, logger="tornado.access")
    try:
        # A refusal, an oversized body, a chunked body, then a plain one: one connection.
        status, _, answer = await conn.post(signed("1", "/apps/1/events", event(), secret="x"),
                                            event())
        assert (status, answer) == (401, {"error": "Invalid signature"})
        big = event(data="x" * 600_000)
        status, _, answer = await conn.post(signed("1", "/apps/1/events", big), big)
        assert (status, answer) == (413, {"error": "body is over 256 KB"})
        status, _, answer = await conn.post(signed("1", "/apps/1/events", event()), event(),
                                            chunked=True)
        assert (status, answer) == (200, {})
        assert (await sock.expect("e", "news"))["data"] == "hi"
        body = event(data="again")
        status, _, answer = await conn.post(signed("1", "/apps/1/events", body), body)
        assert (status, answer) == (200, {})
        assert (await sock.expect("e", "news"))["data"] == "again"
        await sock.nothing(0.1)
    finally:
        conn.close()
        sock.close()
    # The access log names each request; refusals at WARNING, publishes at DEBUG.
    lines = [(r.levelname, r.getMessage()) for r in caplog.records
             if r.name == "tornado.access"]
    assert [lvl for lvl, _ in lines] == ["WARNING", "WARNING", "DEBUG", "DEBUG"], lines
    for (_, msg), status in zip(lines, (401, 413, 200, 200)):
        assert msg.startswith(f"{status} POST /apps/1/events?auth_key=") and \
            "(127.0.0.1)" in msg and msg.endswith("ms"), msg
    # And the reason of each refusal, as a RequestHandler logs it.
    reasons = [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records
               if r.name == "tornado.general"]
    assert reasons == ["Invalid signature", "body is over 256 KB"], reasons


@pytest.mark.gen_test(timeout=30)
async def test_http_1_0_is_answered_then_closed(http_server: Any) -> None:
    conn = await Http.open(http_server.port)
    try:
        status, headers, answer = await conn.post(signed("1", "/apps/1/events", event()),
                                                  event(), version="HTTP/1.0")
        assert (status, answer) == (200, {})
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""  # closed by the server
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_other_methods_and_neighbours_still_route(http_server: Any) -> None:
    """Only POST to the two paths is taken from the routes: any other method (an unsigned
    OPTIONS: 401, a signed GET: 405) and the other API URLs are the RequestHandlers' as
    before."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError
    base = f"http://127.0.0.1:{http_server.port}"
    client = AsyncHTTPClient()
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/apps/1/events", method="OPTIONS")
    assert info.value.code == 401
    with pytest.raises(pusher.errors.PusherBadStatus, match="405"):
        await asyncio.get_running_loop().run_in_executor(
            None, raw_request, lib(base), "GET", "/apps/1/events", {})
    with pytest.raises(HTTPClientError) as info:
        await client.fetch(base + "/apps/1/events/more", method="POST", body=b"{}")
    assert info.value.code == 404
    answer = await asyncio.get_running_loop().run_in_executor(
        None, lib(base).channels_info)  # a signed GET
    assert answer == {"channels": {}}


def test_query_values_is_parse_qsl() -> None:
    """`query_values` (what the signature is checked over) answers as
    `dict(parse_qsl(q, keep_blank_values=True))` for any query, escaped or not."""
    import random
    from urllib.parse import parse_qsl
    rng = random.Random(7)
    cases = ["", "a", "a=", "=b", "a=1&a=2", "a=1&&b=2", "&", "a=b=c", "x=%20y", "k+1=v+2",
             "a=1;b=2", "é=ü", "a=%ff", "auth_key=k&auth_timestamp=1&auth_version=1.0"]
    cases += ["".join(rng.choice("ab=&%+;1é") for _ in range(rng.randint(0, 12)))
              for _ in range(5000)]
    for q in cases:
        assert hp.query_values(q) == dict(parse_qsl(q, keep_blank_values=True)), q
