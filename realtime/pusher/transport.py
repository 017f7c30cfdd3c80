"""The WebSocket transport of the Pusher engine: frames out (`Outbox`, `WSConnection`), the
plain-TCP socket that takes a connection over from Tornado after the handshake
(`RawWebSocket`), WebSocket pings for those sockets (`Pinger`), and the `/app/{key}` handler
(`PusherSocketHandler`), each socket being a `hub.Session`'s `adapter.Connection`.

Sources: RFC 6455 (framing, close codes, ping/pong), Pusher Channels protocol 7.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Union, cast

import tornado
import tornado.ioloop
import tornado.iostream
import tornado.websocket
from tornado.util import _websocket_mask

from . import protocol as p
from .hub import App, Caller, Hub, Session

log = logging.getLogger("wolive.pusher")


class CallerUnavailable(Exception):
    """Raised by `PusherSocketHandler.caller` when the caller cannot be known now (its
    store is out of reach)."""


#: A Pusher socket's connection: Tornado's handler (TLS) or the raw socket (plain TCP).
_Conn = Union["WSConnection", "RawWebSocket"]


class Outbox:
    """Frames waiting to be written, per connection, and when to write them.

    Every frame for a Pusher socket is queued here, and a callback writes each socket's
    queued frames with one `send()`. A loopback `send()` costs the kernel about as much for
    one frame as for ten, so what is written together is nearly free (docs/performance.md,
    "Machine", "Write coalescing" and "The write window"):

    - Published frames (`put`: channel events, fan-out) wait for the write window: after a
      write of published frames, the next one waits until `window` seconds have passed
      since it, so at a high rate every socket gets one `send()` per window with everything
      published meanwhile. When nothing was published in the last `window` they go at the
      end of this loop iteration, with no timer: the window only ever delays a frame by
      less than `window`, and only while publishes come faster than one per window.
      Frames queued in the same iteration always share the write.
    - Answers to the socket's own requests (`put_reply`: connection_established,
      subscription answers, pongs, errors) go at the end of this loop iteration, with
      whatever that socket had waiting before them, so a client's round trips never wait
      for the window.
    - Client events (`relaying`: one socket's `client-*` event, relayed to the others on
      its channel) go at the end of this loop iteration too: a client event is one person
      talking to another, and comes no faster than the protocol's 10 per second a socket,
      while the window exists to batch publishes that come fast.
    """

    __slots__ = ("pending", "window", "last_flush", "_timer", "_soon", "_replies",
                 "_relaying")

    def __init__(self, window: float = 0.0) -> None:
        """`window`: seconds (config `pusher.write_window_ms` / 1000); 0 writes at the end
        of every loop iteration that queued something."""
        self.pending: dict[_Conn, list[bytes]] = {}
        self.window = window
        self.last_flush = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a flush of everything is scheduled for this iteration
        self._replies: list[_Conn] = []  # sockets with an answer waiting
        self._relaying = 0  # inside `relaying()`: `put` is written as an answer is

    def put(self, conn: _Conn, wire: bytes) -> None:
        """Queue a published frame for `conn`, to go out by the write window's rule (at the
        end of this iteration inside `relaying()`)."""
        if self._relaying:
            self.put_reply(conn, wire)
            return
        parts = self.pending.get(conn)
        if parts is None:
            self.pending[conn] = [wire]
        else:
            parts.append(wire)
        if self._soon or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        due = self.last_flush + self.window
        if due <= loop.time():
            self._soon = True
            loop.call_soon(self.flush)
        else:
            self._timer = loop.call_at(due, self.flush)

    @contextlib.contextmanager
    def relaying(self) -> Iterator[None]:
        """Frames `put` inside this block go at the end of this loop iteration (with what
        their sockets had waiting before them), not by the write window."""
        self._relaying += 1
        try:
            yield
        finally:
            self._relaying -= 1

    def put_reply(self, conn: _Conn, wire: bytes) -> None:
        """Queue an answer to `conn`'s own request: written at the end of this iteration,
        after what `conn` already had waiting."""
        parts = self.pending.get(conn)
        if parts is None:
            self.pending[conn] = [wire]
        else:
            parts.append(wire)
        if not self._replies:
            asyncio.get_running_loop().call_soon(self._flush_replies)
        self._replies.append(conn)

    def flush(self) -> None:
        """Write everything waiting (the window's callback)."""
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = self.pending
        if not batch:
            return
        self.pending = {}  # a send that closes a socket may publish again: a new round
        self.last_flush = asyncio.get_running_loop().time()
        for conn, parts in batch.items():
            self._write(conn, parts)

    def _flush_replies(self) -> None:
        conns = self._replies
        self._replies = []
        for conn in conns:
            self.flush_one(conn)

    def flush_one(self, conn: _Conn) -> None:
        """Write what `conn` has waiting now (an answer, or before its close frame)."""
        parts = self.pending.pop(conn, None)
        if parts:
            self._write(conn, parts)

    @staticmethod
    def _write(conn: _Conn, parts: list[bytes]) -> None:
        try:
            conn.write_now(parts[0] if len(parts) == 1 else b"".join(parts))
        except Exception:  # one broken socket must not keep the others' frames back
            log.exception("writing to socket %s failed; it gets nothing more", conn.socket_id)
            conn.open = False


class WSConnection:
    """`realtime.pusher.adapter.Connection` over a Tornado WebSocket, with a fast path for fan-out.

    `LocalAdapter.publish` builds a frame's wire bytes once (`prepare_frame`) and hands them
    to every subscriber (`send_prepared`), which queues them in the app's `Outbox`; when
    the outbox's write window says so, `write_now` writes them straight to the socket when
    nothing is queued on it: one `send()` per socket per window instead of Tornado's encode
    + header + Future + Task per message (docs/performance.md).
    """

    __slots__ = ("handler", "open", "socket_id", "outbox", "_ws", "_stream", "_sock")
    _ws: tornado.websocket.WebSocketProtocol
    _stream: tornado.iostream.IOStream
    _sock: socket.socket | None

    def __init__(self, socket_id: str, handler: PusherSocketHandler, outbox: Outbox) -> None:
        self.socket_id = socket_id
        self.handler = handler
        self.outbox = outbox
        self.open = True

    def send(self, frame: str) -> bool:
        """Queue an answer to this socket's own request (`Session` uses it), written at the
        end of this loop iteration; False when the socket is closed. Every frame goes
        through the outbox, so a socket's frames keep the order they were sent in."""
        if not self.open:
            return False
        self.outbox.put_reply(self, self.prepare_frame(frame))
        return True

    def relaying(self) -> contextlib.AbstractContextManager[None]:
        """`Outbox.relaying` of this socket's outbox (a client event it sends is relayed
        inside it, see `realtime.pusher.hub.Session`)."""
        return self.outbox.relaying()

    @staticmethod
    def prepare_frame(frame: str) -> bytes:
        """The whole server→client frame (RFC 6455 §5.2): FIN + text opcode, unmasked, no
        RSV bits. Valid because this handler never negotiates permessage-deflate
        (`PusherSocketHandler.get_compression_options` returns None)."""
        payload = frame.encode()
        n = len(payload)
        if n < 126:
            head = bytes((0x81, n))
        elif n < 0x10000:
            head = bytes((0x81, 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x81, 127)) + n.to_bytes(8, "big")
        return head + payload

    def send_prepared(self, wire: bytes) -> bool:
        """A published frame, prepared: queued for the write window (`Outbox.put`);
        False when the socket is closed."""
        if not self.open:
            return False
        self.outbox.put(self, wire)
        return True

    def write_now(self, wire: bytes) -> None:
        """Write prepared frames. Order is kept: the socket is written directly only while
        Tornado has nothing queued for it, and a partial write hands the rest to the
        stream's queue. A socket closed meanwhile drops them (its reader is gone)."""
        if not self.open:
            return
        try:
            stream = self._stream
        except AttributeError:  # first prepared write: look the stream up once
            ws = self.handler.ws_connection
            if ws is None or ws.is_closing():
                self.open = False
                return
            found = ws.stream  # type: ignore[attr-defined]
            if found is None:
                self.open = False
                return
            self._ws = ws
            stream = self._stream = found
            # A TLS stream keeps state of its own: always through IOStream.write.
            self._sock = stream.socket if type(stream) is tornado.iostream.IOStream else None
        if self._ws.server_terminated:  # type: ignore[attr-defined]
            # Tornado sent a close frame itself (message too big, ping timeout): nothing
            # may follow it (RFC 6455 §5.5.1), though the stream waits for the peer's.
            self.open = False
            return
        sock = self._sock
        if sock is not None and not stream.writing():
            try:
                n = sock.send(wire)
            except BlockingIOError:
                n = 0
            except OSError:  # reset or broken pipe: the read side closes the handler
                self.open = False
                return
            if n == len(wire):
                return
            wire = wire[n:]  # a slow reader: the stream queues the rest, in order
        try:
            stream.write(wire)
        except tornado.iostream.StreamClosedError:
            self.open = False

    def close(self, code: int, reason: str) -> None:
        if self.open:
            self.outbox.flush_one(self)  # what was published before the close goes first
            self.open = False
            self.handler.close(code, reason)


# ---- the raw WebSocket: a live plain-TCP socket without Tornado's objects --------------------

#: Unsent bytes a socket may have waiting (a reader that stopped reading) before it is
#: closed; a frame that does not fit is never dropped alone, the socket is closed instead.
MAX_PENDING_BYTES = 16 * 1024 * 1024
#: Seconds a close this server starts waits for the client's close frame (as Tornado).
CLOSE_WAIT_S = 5.0
#: Bytes asked of the kernel per read.
_RECV_BYTES = 64 * 1024
#: Take plain-TCP sockets off Tornado after the handshake (bench/serve.py's `tornadows`
#: variant turns it off to measure the difference).
RAW_SOCKETS = True

_OPEN, _CLOSE_SENT, _FAILED, _CLOSED = range(4)
_READ, _WRITE = tornado.ioloop.IOLoop.READ, tornado.ioloop.IOLoop.WRITE
_READ_WRITE = _READ | _WRITE
_READ_ERROR = _READ | tornado.ioloop.IOLoop.ERROR


def _close_payload(code: int | None, reason: str = "") -> bytes:
    """A close frame's payload: the code (2 bytes) and the UTF-8 reason, at most 125
    bytes in all (RFC 6455 §5.5)."""
    if code is None:
        return b""
    return code.to_bytes(2, "big") + reason.encode()[:123]


def _control(opcode: int, payload: bytes) -> bytes:
    return bytes((0x80 | opcode, len(payload))) + payload


class RawWebSocket:
    """A Pusher socket on plain TCP after the WebSocket handshake: `PusherSocketHandler.open`
    takes the socket off Tornado (`take_over`), so the handler, the request, its headers,
    the HTTP connection and the IOStream are freed, and this object (with `Session`) is all
    a live socket keeps. RFC 6455 server side, no extension (none is negotiated:
    `PusherSocketHandler.get_compression_options`):

    - reads with the event loop's `add_reader`; client frames must be masked, messages
      (fragments joined) are at most `max_message` bytes, else close 1009; a text message
      that is not UTF-8 gets 1007, any other protocol breach 1002 (then the socket is
      closed after the close frame, reading and dropping what the client still sends,
      for at most `CLOSE_WAIT_S`);
    - a ping is answered with a pong carrying its payload; pings and pongs count as
      activity (`Session.touch`); `Pinger` pings every socket;
    - writes go straight to the socket; what the kernel does not take waits here, in
      order, written as the socket drains (`add_writer`); past `MAX_PENDING_BYTES` waiting
      the socket is closed;
    - the close handshake either way: a client's close is answered with its code and the
      socket closed; `close()` sends ours and waits `CLOSE_WAIT_S` for the answer.

    The `realtime.pusher.adapter.Connection` of its `Session`, with `WSConnection`'s fast path
    (`prepare_frame`, `send_prepared`, `write_now`) for the `Outbox`.
    """

    __slots__ = ("_sock", "socket_id", "outbox", "session", "open", "awaiting_pong",
                 "max_message", "_state", "_inbuf", "_frag", "_frag_opcode", "_out",
                 "_timer")
    prepare_frame = staticmethod(WSConnection.prepare_frame)

    def __init__(self, sock: socket.socket, socket_id: str, outbox: Outbox,
                 max_message: int) -> None:
        self._sock = sock
        self.socket_id = socket_id
        self.outbox = outbox
        self.session: Session | None = None
        #: False once nothing more may be written (a close sent or received, or closed).
        self.open = True
        #: Pinged and no pong since (`Pinger`).
        self.awaiting_pong = False
        self.max_message = max_message
        self._state = _OPEN
        self._inbuf: bytes | None = None  # the start of a frame not yet whole
        self._frag: bytearray | None = None  # a fragmented message so far
        self._frag_opcode = 0
        self._out: bytearray | None = None  # bytes the kernel did not take yet
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def take_over(cls, ws: tornado.websocket.WebSocketProtocol, socket_id: str,
                  outbox: Outbox, max_message: int) -> RawWebSocket | None:
        """Take `ws`'s socket off Tornado, right after the handshake, before Tornado reads
        any frame; None (the socket stays Tornado's) when it is not plain TCP, is closing,
        or the stream is busy (the handshake answer not all written, a read pending).
        Bytes Tornado already read past the handshake are kept and parsed first."""
        if not RAW_SOCKETS or ws.is_closing():
            return None
        stream = ws.stream  # type: ignore[attr-defined]
        if type(stream) is not tornado.iostream.IOStream or stream.writing() or \
                stream.reading() or stream.socket is None:
            return None
        size = getattr(stream, "_read_buffer_size", None)
        buffered = getattr(stream, "_read_buffer", None)
        abort = getattr(ws, "_abort", None)
        if not isinstance(size, int) or not isinstance(buffered, bytearray) or \
                not callable(abort):
            return None  # a Tornado whose insides we do not know: stay on it
        leftover = bytes(buffered[:size])
        old = stream.socket
        stream.io_loop.remove_handler(old)  # nothing if Tornado never watched it
        sock = socket.socket(fileno=old.detach())  # the stream's socket is now empty
        sock.setblocking(False)
        raw = cls(sock, socket_id, outbox, max_message)
        # Tornado's side ends here: its ping task is cancelled, the stream (now without a
        # socket) closes, the frame loop ends before its first read and the handler's
        # on_close runs (it has no session: this object holds it).
        abort()
        # Through Tornado's IOLoop, so that closing the loop with all_fds closes it too.
        tornado.ioloop.IOLoop.current().add_handler(sock, raw._on_events,
                                                    tornado.ioloop.IOLoop.READ)
        if leftover:
            raw._inbuf = leftover
        return raw

    def start(self, session: Session) -> None:
        """Hand frames to `session` from now on, starting with any already read."""
        self.session = session
        if self._inbuf:
            data, self._inbuf = self._inbuf, None
            self._parse(data)

    # ---- Connection -------------------------------------------------------------------

    def send(self, frame: str) -> bool:
        """As `WSConnection.send`: an answer, written at the end of this iteration."""
        if not self.open:
            return False
        self.outbox.put_reply(self, self.prepare_frame(frame))
        return True

    def send_prepared(self, wire: bytes) -> bool:
        """As `WSConnection.send_prepared`: a published frame, for the write window."""
        if not self.open:
            return False
        self.outbox.put(self, wire)
        return True

    def relaying(self) -> contextlib.AbstractContextManager[None]:
        """As `WSConnection.relaying`: this socket's client events are relayed at once."""
        return self.outbox.relaying()

    def write_now(self, wire: bytes) -> None:
        """Write prepared frames (the `Outbox`), after whatever waits unsent."""
        if self.open:
            self._write(wire)

    def close(self, code: int, reason: str) -> None:
        """Close with `code` (a Pusher or WebSocket close code) and `reason`: what was
        published before goes first, then the close frame; the socket closes when the
        client answers, or after `CLOSE_WAIT_S`."""
        if not self.open:
            return
        self.outbox.flush_one(self)
        self.open = False
        self._write(_control(0x8, _close_payload(code, reason)))
        if self._state == _OPEN:
            self._state = _CLOSE_SENT
            self._timer = asyncio.get_running_loop().call_later(CLOSE_WAIT_S, self.abort)

    def ping(self) -> None:
        """Send a WebSocket ping (`Pinger`); its pong clears `awaiting_pong`."""
        if self.open:
            self.awaiting_pong = True
            self._write(b"\x89\x00")

    # ---- writing ----------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._state == _CLOSED:
            return
        out = self._out
        if out is not None:
            if len(out) + len(data) > MAX_PENDING_BYTES:
                log.info("socket %s reads too slowly (%d bytes waiting): closed",
                         self.socket_id, len(out))
                self.abort()
                return
            out += data
            return
        try:
            n = self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError:  # reset or broken pipe: the socket is gone
            self.abort()
            return
        if n < len(data):
            self._out = bytearray(memoryview(data)[n:])
            tornado.ioloop.IOLoop.current().update_handler(self._sock, _READ_WRITE)

    def _on_writable(self) -> None:
        out = self._out
        if out is None:
            return
        try:
            n = self._sock.send(out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort()
            return
        del out[:n]
        if not out:
            self._out = None
            tornado.ioloop.IOLoop.current().update_handler(self._sock, _READ)
            if self._state == _FAILED:  # closing: all written, the client sees the end
                try:
                    self._sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

    # ---- reading ----------------------------------------------------------------------

    def _on_events(self, fd: object, events: int) -> None:
        if events & _WRITE:
            self._on_writable()
        if events & _READ_ERROR and self._state != _CLOSED:
            self._on_readable()

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(_RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort()
            return
        if not data:  # the client closed its side (with or without a close frame)
            self.abort()
        elif self._state == _FAILED:
            pass  # closing after a protocol error: what follows is dropped
        elif self._inbuf is not None:
            data, self._inbuf = self._inbuf + data, None
            self._parse(data)
        else:
            self._parse(data)

    def _parse(self, buf: bytes) -> None:
        """Handle every whole frame in `buf`; keep the rest for the next read."""
        n, pos = len(buf), 0
        while n - pos >= 2 and self._state in (_OPEN, _CLOSE_SENT):
            b0, b1 = buf[pos], buf[pos + 1]
            opcode, length, head = b0 & 0x0F, b1 & 0x7F, 2
            if b0 & 0x70:
                return self._fail(1002, "reserved bits set")
            if not b1 & 0x80:
                return self._fail(1002, "client frames must be masked")
            if opcode & 0x8 and (length > 125 or not b0 & 0x80):
                return self._fail(1002, "bad control frame")
            if length == 126:
                if n - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if n - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if not opcode & 0x8:
                if length + (len(self._frag) if self._frag is not None else 0) > \
                        self.max_message:
                    return self._fail(1009, "message too big")
            end = pos + head + 4 + length
            if end > n:
                break
            start = pos + head + 4
            payload = _websocket_mask(buf[start - 4:start], buf[start:end])
            pos = end
            self._frame(b0 & 0x80, opcode, payload)
        if pos < n and self._state in (_OPEN, _CLOSE_SENT):
            self._inbuf = buf[pos:]
        return None

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        session = self.session
        if opcode == 0x1 or opcode == 0x2:
            if self._frag is not None:
                return self._fail(1002, "a new message inside a fragmented one")
            if not fin:
                self._frag, self._frag_opcode = bytearray(payload), opcode
                return None
            return self._message(opcode, payload)
        if opcode == 0x0:
            if self._frag is None:
                return self._fail(1002, "continuation frame with nothing to continue")
            self._frag += payload
            if fin:
                data, self._frag = bytes(self._frag), None
                return self._message(self._frag_opcode, data)
            return None
        if opcode == 0x8:
            return self._close_received(payload)
        if opcode == 0x9:
            if self._state == _OPEN:
                self._write(_control(0xA, payload))
            if session is not None:
                session.touch()
            return None
        if opcode == 0xA:
            self.awaiting_pong = False
            if session is not None:
                session.touch()
            return None
        return self._fail(1002, f"unknown opcode {opcode}")

    def _message(self, opcode: int, data: bytes) -> None:
        session = self.session
        if self._state != _OPEN or session is None:
            return None  # after our close frame: only the client's close counts
        if opcode == 0x1:
            try:
                text: str | bytes = data.decode()
            except UnicodeDecodeError:
                return self._fail(1007, "text message is not UTF-8")
        else:
            text = data
        try:
            session.on_frame(text)
        except Exception:  # as Tornado: a handler that fails loses its socket
            log.exception("socket %s: handling a frame failed", self.socket_id)
            self.abort()
        return None

    def _close_received(self, payload: bytes) -> None:
        if len(payload) == 1:
            return self._fail(1002, "close frame with a 1-byte payload")
        if self._state == _OPEN:  # the client starts it: echo its code (RFC 6455 §5.5.1)
            self.open = False
            code = int.from_bytes(payload[:2], "big") if payload else None
            self._write(_control(0x8, _close_payload(code)))
        self._finish()
        return None

    def _fail(self, code: int, reason: str) -> None:
        """A protocol breach by the client: a close frame with `code`, then the socket is
        closed once the client has closed its side (what it sends meanwhile is dropped) or
        after `CLOSE_WAIT_S`."""
        log.info("socket %s: %s: closing with %d", self.socket_id, reason, code)
        if self.open:
            self.outbox.flush_one(self)
            self.open = False
            self._write(_control(0x8, _close_payload(code, reason)))
        self._inbuf = self._frag = None
        if self._state == _CLOSED:
            return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_WAIT_S, self.abort)
        self._state = _FAILED
        if self._out is None:  # else once it is written (`_on_writable`)
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if self.session is not None:
            session, self.session = self.session, None
            session.on_close()

    def _finish(self) -> None:
        """The close handshake is done: close once what waits unsent is written (or
        `CLOSE_WAIT_S` passed)."""
        if self._out is None:
            self.abort()
            return
        self._state = _FAILED  # read nothing more; the writer empties `_out`
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CLOSE_WAIT_S, self.abort)
        if self.session is not None:
            session, self.session = self.session, None
            session.on_close()

    def abort(self) -> None:
        """Close the socket now; the session (if still open) hears of it."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self.open = False
        tornado.ioloop.IOLoop.current().remove_handler(self._sock)
        self._out = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inbuf = self._frag = None
        self._sock.close()
        if self.session is not None:
            session, self.session = self.session, None
            session.on_close()


class Pinger:
    """WebSocket pings (RFC 6455 §5.5.2) for every raw socket on one timer, instead of a
    task per socket: every `interval` seconds each `RawWebSocket` of the hub's sessions
    gets a ping, and one that has not answered with a pong `timeout` seconds later is
    closed (1000, "ping timed out"), as Tornado's `websocket_ping_interval` /
    `websocket_ping_timeout` do for the sockets it keeps (TLS). `interval` 0: no pings."""

    __slots__ = ("hub", "interval", "timeout", "_tick", "_check", "_due")

    def __init__(self, hub: Hub, interval: float, timeout: float) -> None:
        """`interval`, `timeout`: seconds (config `pusher.ping_interval_s`,
        `ping_timeout_s`; 0 < timeout ≤ interval)."""
        self.hub = hub
        self.interval = interval
        self.timeout = min(timeout or interval, interval)
        self._tick: asyncio.TimerHandle | None = None
        self._check: asyncio.TimerHandle | None = None
        self._due = False  # pings sent whose pongs are not checked yet

    def watch(self) -> None:
        """A raw socket opened: make sure the timer runs (it stops when none is left)."""
        if self.interval > 0 and self._tick is None:
            self._tick = asyncio.get_running_loop().call_later(self.interval, self._ping)

    def _raw(self) -> list[RawWebSocket]:
        return [s.conn for s in self.hub.sessions.values() if type(s.conn) is RawWebSocket]

    def _ping(self) -> None:
        self._tick = None
        if self._due:  # timeout == interval: last round's pongs are due now
            self._close_silent()
        sockets = self._raw()
        if not sockets:
            return
        for conn in sockets:
            conn.ping()
        loop = asyncio.get_running_loop()
        self._due = True
        if self.timeout < self.interval:
            self._check = loop.call_later(self.timeout, self._close_silent)
        self._tick = loop.call_later(self.interval, self._ping)

    def _close_silent(self) -> None:
        self._check = None
        self._due = False
        for conn in self._raw():
            if conn.awaiting_pong:
                conn.close(1000, "ping timed out")

    def stop(self) -> None:
        """Cancel the timers (shutdown)."""
        for timer in (self._tick, self._check):
            if timer is not None:
                timer.cancel()
        self._tick = self._check = None
        self._due = False


class PusherSocketHandler(tornado.websocket.WebSocketHandler):
    """`/app/{key}`: one Pusher connection (protocol 7). Settings it reads: `wolive_hub`
    (the `Hub`), `wolive_outbox` (an `Outbox`), `wolive_pinger` (a `Pinger`).

    Who the socket's caller is belongs to the application: a subclass overrides `caller`
    (anonymous here) and `check_origin`."""

    session: Session | None = None

    @property
    def hub(self) -> Hub:
        return cast(Hub, self.settings["wolive_hub"])

    def log_app(self) -> str | None:
        """The app's id, for the access log (`wolive.log_request`)."""
        app = self.hub.apps_by_key.get(self.path_args[0] if self.path_args else "")
        return app.id if app is not None else None

    def get_compression_options(self) -> None:
        # Never permessage-deflate: prepared frames (WSConnection.prepare_frame) are raw.
        return None

    def check_origin(self, origin: str) -> bool:
        # Any site may open a socket; what a socket may hear is decided per channel.
        return True

    async def caller(self) -> Caller:
        """Who opened the socket (the hub's channel policy decides with it). Raises
        `CallerUnavailable` when that cannot be known now (the socket is closed with
        4201, and its client reconnects)."""
        return Caller()

    async def open(self, key: str) -> None:  # type: ignore[override]
        # No Nagle: frames already go out coalesced per loop iteration (`Outbox`); Nagle
        # would hold a small frame until the peer ACKs the last one, up to a delayed ACK
        # (40-200 ms) on the visitor's side (docs/performance.md, "TCP_NODELAY").
        self.set_nodelay(True)
        hub = self.hub
        conn = WSConnection(hub.next_socket_id(), self, self.settings["wolive_outbox"])
        app = hub.apps_by_key.get(key)
        error = None
        if hub.closing:
            error = p.Errors.SERVER_SHUTDOWN
        elif app is None:
            error = p.Errors.APP_NOT_FOUND
        elif not app.enabled:
            error = p.Errors.APP_DISABLED
        else:
            try:
                proto = int(self.get_query_argument("protocol", "7"))
            except ValueError:
                proto = 0
            if proto not in p.PROTOCOLS:
                error = p.Errors.BAD_PROTOCOL
        if error is not None:
            conn.send(p.error_frame(error.code, error.message))
            conn.close(error.code, error.message)
            return
        try:
            caller = await self.caller()
        except CallerUnavailable:  # logged where raised; the client reconnects with backoff
            error = p.Errors.STORE_UNAVAILABLE
            conn.send(p.error_frame(error.code, error.message))
            conn.close(error.code, error.message)
            return
        if not conn.open:  # closed while we looked the agent up
            return
        ws = self.ws_connection
        raw = None if ws is None else RawWebSocket.take_over(
            ws, conn.socket_id, conn.outbox, self.max_message_size)
        if raw is None:  # TLS (or a busy stream): Tornado keeps serving this socket
            self.session = Session(hub=hub, app=cast(App, app), conn=conn, caller=caller)
            self.session.start()
            return
        # Plain TCP: the socket is `raw`'s now, this handler is done with (and freed).
        session = Session(hub=hub, app=cast(App, app), conn=raw, caller=caller)
        session.start()
        raw.start(session)
        self.settings["wolive_pinger"].watch()

    def on_message(self, message: str | bytes) -> None:
        if self.session is not None:
            self.session.on_frame(message)

    def on_ping(self, data: bytes) -> None:
        # WebSocket control frames are activity too: native Pusher clients and most
        # WebSocket libraries keep a link alive with pings and never send `pusher:ping`.
        if self.session is not None:
            self.session.touch()

    def on_pong(self, data: bytes) -> None:
        if self.session is not None:  # an answer to the server's own ping
            self.session.touch()

    def on_close(self) -> None:
        if self.session is not None:
            self.session.conn.open = False  # type: ignore[attr-defined]
            self.session.on_close()
