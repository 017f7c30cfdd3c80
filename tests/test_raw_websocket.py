"""The raw WebSocket (handlers/pusher.py `_RawWebSocket`): after the handshake a plain-TCP
Pusher socket leaves Tornado (handler, request, headers and stream are freed) and its
RFC 6455 framing is served by wolive itself. Frames are written by hand here, byte by
byte, against a real server: fragments, masking, sizes, control frames, the close
handshake both ways, a slow reader, bytes sent together with the handshake, WebSocket
pings (one `Pinger` for all sockets) and the Pusher activity timeout, and `xheaders`."""
from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import struct
import time
from typing import Any

import pytest
from helpers import PusherSocket, wait_for

import handlers.pusher as hp
from realtime.pusher import transport
from realtime.pusher import protocol as p
from realtime.pusher.adapter import run_inline

SUCCEEDED = "pusher_internal:subscription_succeeded"


def frame(opcode: int, payload: bytes, fin: bool = True, mask: bool = True,
          rsv: int = 0) -> bytes:
    """One client frame, as a browser sends it (masked) unless told otherwise."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | rsv | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 0x10000:
        head = bytes((b0, mbit | 126)) + struct.pack("!H", n)
    else:
        head = bytes((b0, mbit | 127)) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def text(event: str, data: Any = None, **extra: Any) -> bytes:
    return json.dumps({"event": event, "data": data or {}, **extra}).encode()


def handshake(port: int, headers: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET /app/wolive?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{headers}\r\n").encode()


class Raw:
    """A hand-driven WebSocket client over asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.socket_id = ""

    @classmethod
    async def open(cls, port: int, headers: str = "", pipelined: bytes = b"") -> Raw:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(handshake(port, headers) + pipelined)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert b" 101 " in head.split(b"\r\n")[0], head
        raw = cls(reader, writer)
        established = await raw.event()
        assert established["event"] == "pusher:connection_established"
        raw.socket_id = json.loads(established["data"])["socket_id"]
        return raw

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, timeout: float = 10) -> tuple[int, bytes]:
        """The next frame: (opcode, payload)."""
        async def one() -> tuple[int, bytes]:
            b0, b1 = await self.reader.readexactly(2)
            assert not b1 & 0x80, "server frames are never masked"
            assert not b0 & 0x70, "no RSV bits: nothing negotiated"
            assert b0 & 0x80, "the server never fragments"
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return b0 & 0x0F, await self.reader.readexactly(n)
        return await asyncio.wait_for(one(), timeout)

    async def event(self, timeout: float = 10) -> dict[str, Any]:
        opcode, body = await self.read(timeout)
        assert opcode == 0x1, (opcode, body)
        return dict(json.loads(body))

    async def closed_with(self, code: int, timeout: float = 10) -> bytes:
        """Reads up to the server's close frame; asserts its code, returns its reason."""
        while True:
            opcode, body = await self.read(timeout)
            if opcode == 0x8:
                assert struct.unpack("!H", body[:2])[0] == code, body
                return body[2:]

    async def at_end(self, timeout: float = 10) -> None:
        """The server closed the TCP connection."""
        assert await asyncio.wait_for(self.reader.read(), timeout) == b""

    def close(self) -> None:
        self.writer.close()


def server_conn(wolive_server: Any, socket_id: str) -> Any:
    return wolive_server.hub.sessions[socket_id].conn


@pytest.mark.gen_test(timeout=30)
async def test_a_plain_socket_leaves_tornado_after_the_handshake(
        wolive_server: Any, http_server: Any, ws_base: str) -> None:
    client = await PusherSocket.connect(ws_base)
    assert (await client.subscribe("news"))["event"] == SUCCEEDED
    conn = server_conn(wolive_server, client.socket_id)
    assert type(conn) is transport.RawWebSocket
    gc.collect()
    # Nothing of Tornado's per-request machinery is left for it.
    assert not [o for o in gc.get_objects() if isinstance(o, hp.PusherSocket)]
    wolive_server.hub.trigger("news", "hello", {"n": 1})
    assert (await client.expect("hello", "news"))["data"] == {"n": 1}
    client.send("pusher:ping", {})
    await client.expect("pusher:pong")


@pytest.mark.gen_test(timeout=30)
async def test_fragments_masking_and_control_frames_between_fragments(
        wolive_server: Any, http_server: Any) -> None:
    c = await Raw.open(http_server.port)
    body = text("pusher:subscribe", {"channel": "frag"})
    parts = [body[:5], body[5:20], body[20:]]
    c.send(frame(0x1, parts[0], fin=False))
    c.send(frame(0x9, b"mid"))  # a ping between fragments is answered at once
    c.send(frame(0x0, parts[1], fin=False))
    c.send(frame(0x0, parts[2]))
    assert await c.read() == (0xA, b"mid")
    assert (await c.event())["event"] == SUCCEEDED
    # Byte by byte: the frame is put together across reads.
    for b in frame(0x1, text("pusher:ping")):
        c.send(bytes((b,)))
        await c.writer.drain()
    assert (await c.event())["event"] == "pusher:pong"
    # A 126-length and a 127-length header (a message of 70,000 bytes).
    big = text("pusher:ping", {"pad": "x" * 300})
    c.send(frame(0x1, big))
    err = await c.event()  # 300+ bytes is a fine frame for pusher:ping
    assert err["event"] == "pusher:pong"
    huge = text("pusher:ping", {"pad": "y" * 70_000})
    c.send(frame(0x1, huge))
    err = await c.event()  # over MAX_PROTOCOL_FRAME_BYTES: refused, socket kept
    assert err["event"] == "pusher:error" and json.loads(err["data"])["code"] == 4000
    # A binary message reaches the protocol, which refuses it politely.
    c.send(frame(0x2, b"\x00\x01"))
    assert (await c.event())["event"] == "pusher:error"
    c.send(frame(0x1, text("pusher:ping")))
    assert (await c.event())["event"] == "pusher:pong"
    c.close()


@pytest.mark.parametrize("bad, code", [
    (frame(0x1, text("pusher:ping"), mask=False), 1002),  # clients must mask
    (frame(0x1, text("pusher:ping"), rsv=0x40), 1002),  # no extension negotiated
    (frame(0x0, b"orphan"), 1002),  # a continuation of nothing
    (frame(0x9, b"x", fin=False), 1002),  # a fragmented control frame
    (frame(0x3, b"x"), 1002),  # a reserved opcode
    (frame(0x1, b"\xff\xfe"), 1007),  # text that is not UTF-8
    (frame(0x1, b"x" * (p.MAX_FRAME_BYTES + 1)), 1009),  # too big
], ids=["unmasked", "rsv", "continuation", "fragmented-ping", "opcode", "utf8", "too-big"])
@pytest.mark.gen_test(timeout=30)
async def test_a_broken_frame_closes_that_socket_alone(
        wolive_server: Any, http_server: Any, bad: bytes, code: int) -> None:
    c = await Raw.open(http_server.port)
    other = await Raw.open(http_server.port)
    c.send(frame(0x1, text("pusher:subscribe", {"channel": "x"})))
    assert (await c.event())["event"] == SUCCEEDED
    c.send(bad + frame(0x1, text("pusher:ping")))  # nothing after it is read
    assert await c.closed_with(code)
    await wait_for(lambda: c.socket_id not in wolive_server.hub.sessions)
    assert run_inline(wolive_server.hub.adapter.subscription_count("1", "x")) == 0
    c.send(frame(0x8, struct.pack("!H", code)))  # the client answers; the server is gone
    await c.at_end()
    other.send(frame(0x1, text("pusher:ping")))
    assert (await other.event())["event"] == "pusher:pong"
    other.close()
    c.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_message_too_big_in_fragments_is_1009(wolive_server: Any,
                                                      http_server: Any) -> None:
    c = await Raw.open(http_server.port)
    piece = b"z" * (p.MAX_FRAME_BYTES // 2)
    c.send(frame(0x1, piece, fin=False) + frame(0x0, piece, fin=False) +
           frame(0x0, b"!", fin=True))
    assert await c.closed_with(1009)
    await c.at_end()
    c.close()


@pytest.mark.gen_test(timeout=30)
async def test_ping_pong_and_activity(wolive_server: Any, http_server: Any) -> None:
    c = await Raw.open(http_server.port)
    session = wolive_server.hub.sessions[c.socket_id]
    session.last_seen -= 100
    c.send(frame(0x9, b"payload-echoed"))
    assert await c.read() == (0xA, b"payload-echoed")
    assert time.monotonic() - session.last_seen < 50  # a ping is activity
    session.last_seen -= 100
    c.send(frame(0xA, b""))  # an unasked pong is activity too, and gets no answer
    c.send(frame(0x1, text("pusher:ping")))
    assert (await c.event())["event"] == "pusher:pong"
    assert time.monotonic() - session.last_seen < 50
    c.close()


@pytest.mark.gen_test(timeout=30)
async def test_close_started_by_the_client(wolive_server: Any, http_server: Any) -> None:
    c = await Raw.open(http_server.port)
    c.send(frame(0x1, text("pusher:subscribe", {"channel": "bye"})))
    assert (await c.event())["event"] == SUCCEEDED
    c.send(frame(0x8, struct.pack("!H", 1001) + b"going away"))
    assert await c.closed_with(1001) == b""  # its code echoed
    await c.at_end()
    assert c.socket_id not in wolive_server.hub.sessions
    assert run_inline(wolive_server.hub.adapter.subscription_count("1", "bye")) == 0
    c.close()


@pytest.mark.gen_test(timeout=30)
async def test_close_started_by_the_server(wolive_server: Any, http_server: Any,
                                           monkeypatch: Any) -> None:
    hub = wolive_server.hub
    answers, silent = await Raw.open(http_server.port), await Raw.open(http_server.port)
    # `answers` would wait a minute for the client's close frame, `silent` a moment.
    for c, wait in ((answers, 60.0), (silent, 0.3)):
        monkeypatch.setattr(transport, "CLOSE_WAIT_S", wait)
        c.send(frame(0x1, text("pusher:subscribe", {"channel": "shut"})))
        assert (await c.event())["event"] == SUCCEEDED
        hub.sessions[c.socket_id].fail(p.Errors.TERMINATED)
        assert json.loads((await c.event())["data"])["code"] == p.Errors.TERMINATED.code
        assert await c.closed_with(p.Errors.TERMINATED.code)
    hub.trigger("shut", "late", {})  # nothing may follow a close frame
    answers.send(frame(0x8, struct.pack("!H", p.Errors.TERMINATED.code)))
    await answers.at_end(timeout=20)  # closed on the answer, not after its minute
    await silent.at_end(timeout=20)  # no answer: closed after its wait
    assert run_inline(hub.adapter.subscription_count("1", "shut")) == 0
    for c in (answers, silent):
        c.close()


@pytest.mark.gen_test(timeout=30)
async def test_frames_sent_with_the_handshake_are_read(wolive_server: Any,
                                                       http_server: Any) -> None:
    c = await Raw.open(http_server.port, pipelined=frame(0x1, text(
        "pusher:subscribe", {"channel": "early"})))
    assert (await c.event())["event"] == SUCCEEDED
    c.close()


@pytest.mark.gen_test(timeout=60)
async def test_a_slow_reader_past_the_bound_is_closed(wolive_server: Any, http_server: Any,
                                                      monkeypatch: Any) -> None:
    monkeypatch.setattr(transport, "MAX_PENDING_BYTES", 1024 * 1024)
    hub = wolive_server.hub
    slow = await Raw.open(http_server.port)
    slow.send(frame(0x1, text("pusher:subscribe", {"channel": "flood"})))
    assert (await slow.event())["event"] == SUCCEEDED
    keeps_up = await Raw.open(http_server.port)
    keeps_up.send(frame(0x1, text("pusher:subscribe", {"channel": "flood"})))
    assert (await keeps_up.event())["event"] == SUCCEEDED
    blob = "b" * 20_000
    sent = 0
    while slow.socket_id in hub.sessions:  # `slow` reads nothing meanwhile
        assert sent < 2000, "never closed"
        hub.trigger("flood", "chunk", {"i": sent, "blob": blob})
        sent += 1
        event = await keeps_up.event()
        assert json.loads(event["data"])["i"] == sent - 1
    # Closed, not left to grow: a few MB at most were kept for it (kernel buffers + 1 MB).
    assert sent * 20_000 < 40 * 1024 * 1024
    got = 0
    try:
        while True:
            opcode, body = await slow.read()
            assert opcode == 0x1
            assert json.loads(json.loads(body)["data"])["i"] == got  # whole, in order
            got += 1
    except (asyncio.IncompleteReadError, ConnectionError):
        pass  # then the connection ends
    assert 0 < got < sent
    slow.close()
    keeps_up.close()


@pytest.mark.gen_test(timeout=30)
async def test_one_pinger_closes_sockets_that_do_not_answer(
        wolive_server: Any, http_server: Any, ws_base: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(transport, "CLOSE_WAIT_S", 0.5)
    pinger = wolive_server.pinger
    pinger.stop()
    pinger.interval = pinger.timeout = 0.3
    answering = await PusherSocket.connect(ws_base)  # Tornado's client answers pings
    mute = await Raw.open(http_server.port)  # this one reads pings and never answers
    pings = 0
    while True:
        opcode, body = await mute.read(timeout=5)
        if opcode == 0x9:
            pings += 1
            continue
        assert opcode == 0x8 and struct.unpack("!H", body[:2])[0] == 1000
        assert body[2:] == b"ping timed out"
        break
    assert pings >= 1
    await mute.at_end()
    mute.close()
    assert mute.socket_id not in wolive_server.hub.sessions
    # The one that answers was pinged in the same rounds (it connected first) and is open.
    assert answering.socket_id in wolive_server.hub.sessions
    assert server_conn(wolive_server, answering.socket_id).open
    answering.send("pusher:ping", {})
    await answering.expect("pusher:pong")
    pinger.stop()


@pytest.mark.gen_test(timeout=30)
async def test_the_pusher_activity_timeout_closes_a_raw_socket(
        wolive_server: Any, http_server: Any) -> None:
    c = await Raw.open(http_server.port)
    hub = wolive_server.hub
    assert hub.sweep(time.monotonic() + 1) == 0
    assert hub.sweep(time.monotonic() + p.ACTIVITY_TIMEOUT_S + p.DEAD_SOCKET_GRACE_S + 1) == 1
    err = await c.event()
    assert json.loads(err["data"])["code"] == p.Errors.PONG_NOT_RECEIVED.code
    assert await c.closed_with(p.Errors.PONG_NOT_RECEIVED.code)
    c.send(frame(0x8, struct.pack("!H", p.Errors.PONG_NOT_RECEIVED.code)))
    await c.at_end()
    c.close()


@pytest.mark.gen_test(timeout=30)
async def test_behind_a_proxy_with_xheaders(wolive_server: Any) -> None:
    from tornado.testing import bind_unused_port

    from handlers.http_server import HTTPServer
    sock, port = bind_unused_port()
    server = HTTPServer(wolive_server.app, xheaders=True)
    server.add_sockets([sock])
    try:
        c = await Raw.open(port, headers="X-Real-Ip: 203.0.113.7\r\n"
                                         "X-Forwarded-For: 203.0.113.7\r\n"
                                         "X-Forwarded-Proto: http\r\n")
        assert type(server_conn(wolive_server, c.socket_id)) is transport.RawWebSocket
        c.send(frame(0x1, text("pusher:subscribe", {"channel": "proxied"})))
        assert (await c.event())["event"] == SUCCEEDED
        wolive_server.hub.trigger("proxied", "hi", {})
        assert (await c.event())["event"] == "hi"
        c.close()
    finally:
        server.stop()
        await server.close_all_connections()
