"""wolive's listener (handlers/http_server.py): a keep-alive connection that sends ordinary
publishes is served by `_PublishConnection`, and anything else on it (another URL, a request
in pieces, pipelining, `Connection: close`) is answered exactly as before; a slow reader
gets its whole answer; idle and shut-down connections are closed. The answers themselves
are compared with the RequestHandlers' in tests/test_api_lean_path.py, whose connections
start on the same reader."""
from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pusher
import pytest
import tornado.iostream
import tornado.testing
from helpers import PusherSocket, wait_for
from test_api_lean_path import Http, event, signed
from test_pusher_protocol import APPS, cfg  # noqa: F401 (cfg: the apps those tests sign for)

from handlers import http_server as hs


def handed_over(http_server: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records every connection the reader hands to Tornado."""
    seen: list[Any] = []
    real = hs.HTTPServer.hand_over

    def spy(self: Any, conn: Any) -> None:
        seen.append(conn)
        real(self, conn)

    monkeypatch.setattr(hs.HTTPServer, "hand_over", spy)
    return seen


def signed_get(path: str) -> str:
    app = APPS[0]
    client = pusher.Pusher(app_id=app["id"], key=app["key"], secret=app["secret"])
    from pusher.http import Request
    req = Request(client._pusher_client, "GET", path, {})
    return req.signed_path


async def subscriber(ws_base: str) -> PusherSocket:
    sock = await PusherSocket.connect(ws_base)
    await sock.subscribe("news")
    return sock


@pytest.mark.gen_test(timeout=30)
async def test_publishes_stay_on_the_reader_until_something_else_comes(
        http_server: Any, ws_base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = handed_over(http_server, monkeypatch)
    sock = await subscriber(ws_base)
    assert len(seen) == 1  # the WebSocket handshake went to Tornado
    seen.clear()
    conn = await Http.open(http_server.port)
    try:
        for i in range(3):
            body = event(data=f"m{i}")
            assert (await conn.post(signed("1", "/apps/1/events", body), body))[::2] == \
                (200, {})
            assert (await sock.expect("e", "news"))["data"] == f"m{i}"
        assert len(http_server._lean_connections) == 1 and seen == []
        # A query on the same connection: Tornado's from now on, and it still answers.
        conn.writer.write(f"GET {signed_get('/apps/1/channels')} HTTP/1.1\r\nHost: x\r\n\r\n"
                          .encode())
        status_line = await conn.reader.readline()
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
        length = 0
        while (line := await conn.reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert "news" in json.loads(await conn.reader.readexactly(length))["channels"]
        assert len(seen) == 1 and http_server._lean_connections == set()
        body = event(data="after")
        assert (await conn.post(signed("1", "/apps/1/events", body), body))[0] == 200
        assert (await sock.expect("e", "news"))["data"] == "after"
    finally:
        conn.close()
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_request_in_pieces_and_pipelined_requests(
        http_server: Any, ws_base: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = handed_over(http_server, monkeypatch)
    sock = await subscriber(ws_base)
    seen.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)

    def request(data: str) -> bytes:
        body = event(data=data)
        return (f"POST {signed('1', '/apps/1/events', body)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode() + body

    async def answer() -> int:
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        assert await reader.readexactly(length) == b"{}"
        return status

    try:
        # Two requests in one write: both answered, in order, by the reader.
        writer.write(request("p1") + request("p2"))
        assert [await answer(), await answer()] == [200, 200]
        assert [(await sock.expect("e", "news"))["data"] for _ in "12"] == ["p1", "p2"]
        assert seen == []
        # Headers now, body later: handed to Tornado, which waits for the rest.
        wire = request("late")
        writer.write(wire[:-5])
        await asyncio.sleep(0.1)
        writer.write(wire[-5:])
        assert await answer() == 200
        assert (await sock.expect("e", "news"))["data"] == "late"
        assert len(seen) == 1
    finally:
        writer.close()
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_publish_answered_once_the_other_nodes_have_it_keeps_answers_in_order(
        wolive_server: Any, http_server: Any, ws_base: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Over an adapter that is not inline (several nodes) a publish is answered only once
    `Adapter.flushed` returns (the other nodes have it), still on the reader; a request
    pipelined behind it, refused at once on its own, is answered after it, never first;
    and a publish the other nodes cannot be told of is a 503 with Retry-After."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    adapter = wolive_server.hub.adapter
    gate = asyncio.Event()
    waiting: list[int | None] = []
    failing = False

    async def flushed(since: int | None = None) -> None:
        waiting.append(since)
        await gate.wait()
        if failing:
            raise RedisConnectionError("Redis cannot be reached")
    monkeypatch.setattr(adapter, "inline", False)
    monkeypatch.setattr(adapter, "flushed", flushed)
    monkeypatch.setattr(adapter, "unavailable_errors", (RedisConnectionError,))
    seen = handed_over(http_server, monkeypatch)
    sock = await subscriber(ws_base)
    seen.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)

    def request(data: str, secret: str = "") -> bytes:
        body = event(data=data)
        return (f"POST {signed('1', '/apps/1/events', body, secret=secret)} HTTP/1.1\r\n"
                f"Host: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def answer() -> tuple[int, dict[str, str], Any]:
        status = int((await reader.readline()).split()[1])
        headers = {}
        while (line := await reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        return status, headers, json.loads(await reader.readexactly(
            int(headers["content-length"])))

    try:
        writer.write(request("p1") + request("p2", secret="not-the-secret"))
        await wait_for(lambda: waiting, timeout=10)
        # Delivered on this node at once; its answer waits for the other nodes.
        assert (await sock.expect("e", "news"))["data"] == "p1"
        assert not reader.at_eof() and len(reader._buffer) == 0  # type: ignore[attr-defined]
        gate.set()
        assert (await answer())[0] == 200
        assert (await answer())[0] == 401
        gate.clear()
        failing = True
        writer.write(request("p3"))
        await wait_for(lambda: len(waiting) == 2, timeout=10)
        gate.set()
        status, headers, body = await answer()
        assert (status, headers["retry-after"]) == (503, "5"), body
        assert body == {"error": "service briefly unavailable, retry"}
        assert seen == []  # all of it on the reader
    finally:
        writer.close()
        sock.close()


@pytest.mark.gen_test(timeout=30)
async def test_connection_close_is_answered_then_closed_cleanly(
        http_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`Connection: close` goes to Tornado, which reads what follows before it closes: the
    client sees the answer and an end of stream, never a reset."""
    seen = handed_over(http_server, monkeypatch)
    conn = await Http.open(http_server.port)
    try:
        body = event()
        head = (f"POST {signed('1', '/apps/1/events', body)} HTTP/1.1\r\nHost: x\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        conn.writer.write(head + body + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(conn.reader.read(), 5)  # to the end: no reset
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in \
            answer and answer.endswith(b"\r\n\r\n{}"), answer
        assert len(seen) == 1
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_answers_are_never_held_for_an_ack(http_server: Any) -> None:
    """TCP_NODELAY on the reader's sockets: a pipelined request's answer is not held by
    Nagle until the client acknowledges the previous one (40 ms on Linux)."""
    conn = await Http.open(http_server.port)
    try:
        assert (await conn.post(signed("1", "/apps/1/events", event()), event()))[0] == 200
        (lean,) = http_server._lean_connections
        assert lean.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=30)
@pytest.mark.allow_error_logs  # the failure is logged, as Tornado logs an uncaught one
async def test_an_unexpected_failure_closes_the_connection(
        http_server: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    from handlers import pusher as hp

    def broken(cls: Any) -> str:
        raise RuntimeError("boom")

    conn = await Http.open(http_server.port)
    try:
        assert (await conn.post(signed("1", "/apps/1/events", event()), event()))[0] == 200
        monkeypatch.setattr(hp._HttpDate, "now", classmethod(broken))
        body = event()
        conn.writer.write((f"POST {signed('1', '/apps/1/events', body)} HTTP/1.1\r\n"
                           f"Host: x\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""  # closed, not left hanging
        assert http_server._lean_connections == set()
        assert any("failed" in r.getMessage() and r.name == "wolive.http"
                   for r in caplog.records)
    finally:
        conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_servers_without_keep_alive_are_tornados(app: Any) -> None:
    sock, port = tornado.testing.bind_unused_port()
    server = hs.HTTPServer(app, no_keep_alive=True)
    server.add_sockets([sock])
    conn = await Http.open(port)
    try:
        status, headers, answer = await conn.post(signed("1", "/apps/1/events", event()),
                                                  event())
        assert (status, answer, headers.get("connection")) == (200, {}, "close")
        assert server._lean_connections == set()
    finally:
        conn.close()
        server.stop()
        await server.close_all_connections()


@pytest.mark.gen_test(timeout=30)
async def test_a_slow_reader_gets_the_whole_answer_and_then_reads_on(
        http_server: Any, app: Any) -> None:
    """`_send` with a socket that takes only part of the answer: the rest waits for the
    socket, reading stops meanwhile, and resumes when it is all out."""
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    theirs.setblocking(False)
    stream = tornado.iostream.IOStream(ours)
    conn = hs._PublishConnection(http_server, app, stream, ("127.0.0.1", 1))
    try:
        big = bytes(range(256)) * 4096  # 1 MB: far more than both buffers
        conn._send(big)
        assert conn.out and not conn.reading
        got = bytearray()
        loop = asyncio.get_running_loop()
        while len(got) < len(big):
            try:
                got += theirs.recv(65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
            assert loop.time() < conn.last_active + 20
        assert bytes(got) == big
        await asyncio.sleep(0.01)
        assert conn.out == b"" and conn.reading
    finally:
        conn.close()
        theirs.close()


@pytest.mark.gen_test(timeout=30)
async def test_idle_and_shut_down_connections_are_closed(app: Any, io_loop: Any) -> None:
    sock, port = tornado.testing.bind_unused_port()
    server = hs.HTTPServer(app, idle_connection_timeout=0.3)
    server.add_sockets([sock])
    opened: list[Http] = []
    try:
        idle = await Http.open(port)
        opened.append(idle)
        assert (await idle.post(signed("1", "/apps/1/events", event()), event()))[0] == 200
        assert len(server._lean_connections) == 1
        assert await asyncio.wait_for(idle.reader.read(), 5) == b""  # after 0.3 s of quiet
        assert server._lean_connections == set()
        busy2 = await Http.open(port)
        opened.append(busy2)
        assert (await busy2.post(signed("1", "/apps/1/events", event()), event()))[0] == 200
        server.stop()
        await server.close_all_connections()
        assert server._lean_connections == set()
        assert await asyncio.wait_for(busy2.reader.read(), 5) == b""
    finally:
        server.stop()
        for conn in opened:
            conn.close()


@pytest.mark.gen_test(timeout=30)
async def test_behind_a_proxy_publishes_stay_on_the_reader_with_the_clients_address(
        app: Any, caplog: pytest.LogCaptureFixture) -> None:
    """`xheaders` (production behind nginx): publishes are still the reader's, and its
    access log names the client the proxy reports, as Tornado's own connection does
    (`X-Real-Ip`, else the last `X-Forwarded-For` hop not in `trusted_downstream`; an
    invalid address: the peer's)."""
    import logging
    caplog.set_level(logging.DEBUG, logger="tornado.access")
    sock, port = tornado.testing.bind_unused_port()
    server = hs.HTTPServer(app, xheaders=True, trusted_downstream=["10.0.0.1"])
    server.add_sockets([sock])
    cases = [(("X-Forwarded-For: 198.51.100.4, 203.0.113.9, 10.0.0.1",), "203.0.113.9"),
             (("X-Forwarded-For: 203.0.113.9", "X-Real-Ip: 192.0.2.7"), "192.0.2.7"),
             (("X-Forwarded-For: not-an-address",), "127.0.0.1"),
             ((), "127.0.0.1")]
    conn = await Http.open(port)
    try:
        for extra, client in cases:
            caplog.clear()
            answer = await conn.post(signed("1", "/apps/1/events", event()), event(),
                                     extra=extra)
            assert answer[::2] == (200, {})
            assert len(server._lean_connections) == 1  # the reader's, not Tornado's
            lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
            assert len(lines) == 1 and f"({client})" in lines[0], (extra, lines)
        # Tornado's own connection (`Connection: close` is its) names the same client.
        caplog.clear()
        answer = await conn.post(signed("1", "/apps/1/events", event()), event(),
                                 extra=cases[0][0] + ("Connection: close",))
        assert answer[0] == 200 and server._lean_connections == set()
        lines = [r.getMessage() for r in caplog.records if r.name == "tornado.access"]
        assert len(lines) == 1 and "(203.0.113.9)" in lines[0], lines
    finally:
        conn.close()
        server.stop()
        await server.close_all_connections()
