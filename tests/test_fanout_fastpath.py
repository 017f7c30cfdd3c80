"""The fan-out fast path (handlers/pusher.py `_WSConnection.send_prepared`): a reader that
stops reading gets every frame later, whole and in order; compression is never negotiated
(prepared frames are raw)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

import pytest

from helpers import PusherSocket


def masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = os.urandom(4)
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0x80 | 126)) + struct.pack(
        "!H", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await reader.readexactly(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", await reader.readexactly(8))[0]
    assert not b1 & 0x80, "server frames are never masked"
    assert not b0 & 0x70, "no RSV bits: no compression"
    return b0 & 0x0F, await reader.readexactly(n)


@pytest.mark.gen_test(timeout=60)
async def test_slow_reader_gets_every_frame_whole_and_in_order(http_server: Any,
                                                               wolive_server: Any) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /app/wolive?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n").encode())
    head = await reader.readuntil(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0]
    assert b"permessage-deflate" not in head.lower()  # never negotiated
    opcode, body = await read_frame(reader)
    assert json.loads(body)["event"] == "pusher:connection_established"
    writer.write(masked_text_frame(json.dumps(
        {"event": "pusher:subscribe", "data": {"channel": "firehose"}})))
    await writer.drain()
    opcode, body = await read_frame(reader)
    assert json.loads(body)["event"] == "pusher_internal:subscription_succeeded"

    # A second, normal subscriber on the same channel keeps getting frames meanwhile.
    other = await PusherSocket.connect(f"ws://127.0.0.1:{http_server.port}")
    await other.subscribe("firehose")

    # Publish far more than the socket buffers hold while this reader reads nothing.
    count, blob = 300, "x" * 40_000  # ~12 MB
    for i in range(count):
        wolive_server.hub.trigger("firehose", "chunk", {"i": i, "blob": blob})
        if i % 50 == 0:
            await asyncio.sleep(0)
    for i in range(count):  # the normal subscriber gets every frame while the other stalls
        assert (await other.expect("chunk", timeout=20))["data"]["i"] == i

    seen = []
    for _ in range(count):
        opcode, body = await asyncio.wait_for(read_frame(reader), 20)
        frame = json.loads(body)
        data = json.loads(frame["data"])
        assert data["blob"] == blob
        seen.append(data["i"])
    assert seen == list(range(count))
    writer.close()


def test_prepared_frame_lengths() -> None:
    from realtime.pusher.transport import WSConnection as _WSConnection
    for n, header_len in ((10, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)):
        wire = _WSConnection.prepare_frame("a" * n)
        assert wire[0] == 0x81 and len(wire) == n + header_len


class CountingSocket:
    """Stands in for a connection's socket: records every `send()`, then really sends."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.sends: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sends.append(bytes(data))
        return int(self.sock.send(data))

    def __getattr__(self, name: str) -> Any:  # recv, fileno, close: the socket's own
        return getattr(self.sock, name)


async def counted(wolive_server: Any, ws_base: str, channel: str
                  ) -> tuple[PusherSocket, Any, CountingSocket]:
    """A subscriber, its server-side connection (prepared writes already set up) and the
    recorder put in front of its socket."""
    client = await PusherSocket.connect(ws_base)
    await client.subscribe(channel)
    hub = wolive_server.hub
    hub.trigger(channel, "warm-up", {})
    assert (await client.expect("warm-up"))["channel"] == channel
    conn = hub.adapter._apps[hub.default_app.id][channel][client.socket_id]
    recorder = CountingSocket(conn._sock)
    conn._sock = recorder
    return client, conn, recorder


@pytest.mark.gen_test(timeout=30)
async def test_one_loop_iteration_is_one_send_per_socket(wolive_server: Any,
                                                         ws_base: str) -> None:
    """Write coalescing (handlers/pusher.py `Outbox`): what is published in one IOLoop
    iteration reaches each socket in one `send()`, every frame whole and in order; the next
    iteration's publish is a send of its own."""
    client, conn, recorder = await counted(wolive_server, ws_base, "burst")
    other, _, other_recorder = await counted(wolive_server, ws_base, "burst")
    await client.expect("warm-up")  # the second warm-up reached the first socket too
    conn.outbox.window = 0.0  # `pusher.write_window_ms: 0` (the window: the next test)
    recorder.sends.clear()
    hub = wolive_server.hub
    for i in range(5):  # one iteration: no await between them
        hub.trigger("burst", "n", {"i": i})
    assert recorder.sends == []  # nothing written yet: the flush is scheduled
    for i in range(5):
        assert (await client.expect("n", "burst"))["data"] == {"i": i}
        assert (await other.expect("n", "burst"))["data"] == {"i": i}
    for rec in (recorder, other_recorder):
        assert len(rec.sends) == 1 and rec.sends[0].count(b'"event":"n"') == 5
    hub.trigger("burst", "n", {"i": 5})
    await asyncio.sleep(0)
    hub.trigger("burst", "n", {"i": 6})
    for i in (5, 6):
        assert (await client.expect("n", "burst"))["data"] == {"i": i}
    assert len(recorder.sends) == 3
    await client.nothing(0.1)


@pytest.mark.gen_test(timeout=30)
async def test_the_write_window_holds_frames_only_after_a_recent_write(
        wolive_server: Any, cfg: dict[str, Any], ws_base: str) -> None:
    """`pusher.write_window_ms`: a quiet server writes on the next loop iteration, with no
    timer; a frame queued less than the window after the last write waits for the rest of
    it, and everything queued meanwhile goes out with it in one `send()`."""
    client, conn, recorder = await counted(wolive_server, ws_base, "win")
    outbox = conn.outbox
    assert outbox.window == cfg.pusher.write_window_ms / 1000 > 0  # config reaches it
    outbox.window = 0.3  # long enough to see on a busy test machine
    outbox.last_flush = float("-inf")  # nothing written lately
    recorder.sends.clear()
    hub = wolive_server.hub
    hub.trigger("win", "n", {"i": 0})
    await asyncio.sleep(0)
    assert len(recorder.sends) == 1  # quiet: written on the next iteration
    loop = asyncio.get_running_loop()
    written = outbox.last_flush
    hub.trigger("win", "n", {"i": 1})
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(recorder.sends) == 1  # held: the last write was less than 0.3 s ago
    hub.trigger("win", "n", {"i": 2})
    for i in range(3):
        assert (await client.expect("n", "win"))["data"] == {"i": i}
    held = loop.time() - written
    assert 0.3 - 0.01 <= held < 0.3 + 0.25, held  # the timer's clock rounds to milliseconds
    assert len(recorder.sends) == 2 and recorder.sends[1].count(b'"event":"n"') == 2
    await client.nothing(0.1)


@pytest.mark.gen_test(timeout=30)
async def test_answers_never_wait_for_the_write_window(wolive_server: Any,
                                                       ws_base: str) -> None:
    """A pong (any answer to the socket's own request) goes at the end of the iteration,
    even while published frames wait for the window; what that socket had waiting goes
    first, in one `send()`."""
    client, conn, recorder = await counted(wolive_server, ws_base, "quick")
    outbox = conn.outbox
    loop = asyncio.get_running_loop()
    outbox.window = 5.0
    outbox.last_flush = loop.time()  # just written: published frames wait 5 s
    recorder.sends.clear()
    wolive_server.hub.trigger("quick", "held", {})
    await asyncio.sleep(0.05)
    assert recorder.sends == []
    asked = loop.time()
    client.send("pusher:ping", {})
    assert (await client.recv())["event"] == "held"  # let out early, before the answer
    assert (await client.recv())["event"] == "pusher:pong"
    assert loop.time() - asked < 2.5
    assert len(recorder.sends) == 1
    outbox.window = 0.0


@pytest.mark.gen_test(timeout=30)
@pytest.mark.allow_error_logs  # the failing write is logged
async def test_a_flush_with_nothing_left_and_a_failing_write_stop_nothing(
        wolive_server: Any, ws_base: str) -> None:
    """A publish and a close of its only socket in the same iteration leave the scheduled
    flush nothing to write; a write that raises takes only its own socket out. Either way
    the next publish to another socket still goes out."""
    gone, conn, _ = await counted(wolive_server, ws_base, "left")
    other, other_conn, _ = await counted(wolive_server, ws_base, "stays")
    hub = wolive_server.hub
    hub.trigger("left", "n", {})
    conn.close(4200, "bye")
    await asyncio.sleep(0.05)
    hub.trigger("stays", "n", {"i": 1})
    assert (await other.expect("n", "stays"))["data"] == {"i": 1}

    class Broken:
        def send(self, data: bytes) -> int:
            raise RuntimeError("boom")

    third, third_conn, _ = await counted(wolive_server, ws_base, "stays")
    await other.expect("warm-up")
    third_conn._sock = Broken()  # only this socket breaks
    third.send("pusher:ping", {})
    other.send("pusher:ping", {})
    assert (await other.expect("pusher:pong"))["event"] == "pusher:pong"
    hub.trigger("stays", "n", {"i": 2})
    assert (await other.expect("n", "stays"))["data"] == {"i": 2}
    assert third_conn.open is False


@pytest.mark.gen_test(timeout=30)
async def test_queued_frames_go_before_any_later_frame_or_the_close(wolive_server: Any,
                                                                    ws_base: str) -> None:
    """A frame written the ordinary way (a pong, an error, a subscription answer) or a close
    right after a publish, in the same iteration, comes after the published frames."""
    client, conn, recorder = await counted(wolive_server, ws_base, "order")
    wolive_server.hub.trigger("order", "first", {})
    conn.send('{"event":"pusher:pong","data":"{}"}')
    wolive_server.hub.trigger("order", "third", {})
    conn.close(4200, "bye")
    assert (await client.recv())["event"] == "first"
    assert (await client.recv())["event"] == "pusher:pong"
    assert (await client.recv())["event"] == "third"
    assert await client.conn.read_message() is None  # then the close
    assert client.conn.close_code == 4200


@pytest.mark.gen_test(timeout=30)
async def test_pusher_sockets_have_no_nagle(wolive_server: Any, ws_base: str) -> None:
    """TCP_NODELAY on every Pusher socket: a frame is never held for the peer's ACK."""
    import socket
    client, conn, recorder = await counted(wolive_server, ws_base, "nagle")
    assert recorder.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "tornado"])
@pytest.mark.gen_test(timeout=30)
async def test_nothing_follows_a_close_tornado_sent_itself(http_server: Any,
                                                           wolive_server: Any, raw: bool,
                                                           monkeypatch: Any) -> None:
    """When the transport closes a socket on its own (a message too big, a ping timeout)
    it sends the close frame and waits for the peer's: no published frame may follow it.
    Both transports: the raw socket (plain TCP) and Tornado's handler (TLS; here by
    turning the raw path off)."""
    from realtime.pusher import transport
    monkeypatch.setattr(transport, "RAW_SOCKETS", raw)
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /app/wolive?protocol=7 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await reader.readuntil(b"\r\n\r\n")
    opcode, body = await read_frame(reader)
    socket_id = json.loads(json.loads(body)["data"])["socket_id"]
    writer.write(masked_text_frame(json.dumps(
        {"event": "pusher:subscribe", "data": {"channel": "closing"}})))
    await read_frame(reader)  # subscription_succeeded
    hub = wolive_server.hub
    hub.trigger("closing", "before", {})
    opcode, body = await read_frame(reader)
    assert json.loads(body)["event"] == "before"
    conn = hub.adapter._apps[hub.default_app.id]["closing"][socket_id]
    if raw:
        assert type(conn) is transport.RawWebSocket
        conn._fail(1009, "message too big")  # as it does for a message too big
    else:
        assert type(conn) is transport.WSConnection
        conn.handler.ws_connection.close(1009, "message too big")  # as Tornado does
    hub.trigger("closing", "after", {})
    opcode, body = await read_frame(reader)
    assert opcode == 0x8 and body[:2] == struct.pack("!H", 1009)
    # Nothing after the close frame: Tornado waits for ours; the raw socket has also shut
    # its side (the end of the stream).
    try:
        assert await asyncio.wait_for(reader.read(1), 0.5) == b""
        assert raw
    except asyncio.TimeoutError:
        assert not raw
    writer.close()
