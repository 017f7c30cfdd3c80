"""The Pusher endpoints: the WebSocket `/app/{key}`, the HTTP API `/apps/{app_id}/...`, and
wolive's own channel authorization (`/pusher/auth`) and user authentication
(`/pusher/user-auth`) endpoints for the agent console.

Thin glue: protocol logic lives in `realtime.hub`, the HTTP API's use cases in
`realtime.pusher_api`, who may join what in `realtime.chat.may_join`, signatures in
`realtime.signing`.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Union, cast
from urllib.parse import parse_qsl, urlsplit

import tornado
import tornado.httputil
import tornado.ioloop
import tornado.iostream
import tornado.routing
import tornado.web
import tornado.websocket
from tornado.util import _websocket_mask

from realtime import protocol as p
from realtime import pusher_api
from realtime.adapter import run_inline
from realtime.chat import may_join
from realtime.hub import App, Caller, Hub, Session
from store import NotFound, Unavailable

from .base import (AGENT_COOKIE, AGENT_COOKIE_DAYS, ApiError, BaseHandler,
                   access_log_level, password_tag)
from .logs import RequestIdTransform, WithRequestId, request_id_for

log = logging.getLogger("wolive.pusher")



#: A Pusher socket's connection: Tornado's handler (TLS) or the raw socket (plain TCP).
_Conn = Union["_WSConnection", "_RawWebSocket"]


class Outbox:
    """Frames waiting to be written, per connection, and when to write them.

    Every frame for a Pusher socket is queued here, and a callback writes each socket's
    queued frames with one `send()`. A loopback `send()` costs the kernel about as much for
    one frame as for ten (4-9 µs on the benchmark machine), so what is written together is
    nearly free (docs/performance.md, "Write coalescing" and "The write window"):

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


class _WSConnection:
    """`realtime.adapter.Connection` over a Tornado WebSocket, with a fast path for fan-out.

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

    def __init__(self, socket_id: str, handler: PusherSocket, outbox: Outbox) -> None:
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
        inside it, see `realtime.hub.Session`)."""
        return self.outbox.relaying()

    @staticmethod
    def prepare_frame(frame: str) -> bytes:
        """The whole server→client frame (RFC 6455 §5.2): FIN + text opcode, unmasked, no
        RSV bits. Valid because this handler never negotiates permessage-deflate
        (`PusherSocket.get_compression_options` returns None)."""
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


class _RawWebSocket:
    """A Pusher socket on plain TCP after the WebSocket handshake: `PusherSocket.open`
    takes the socket off Tornado (`take_over`), so the handler, the request, its headers,
    the HTTP connection and the IOStream are freed, and this object (with `Session`) is all
    a live socket keeps. RFC 6455 server side, no extension (none is negotiated:
    `PusherSocket.get_compression_options`):

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

    The `realtime.adapter.Connection` of its `Session`, with `_WSConnection`'s fast path
    (`prepare_frame`, `send_prepared`, `write_now`) for the `Outbox`.
    """

    __slots__ = ("_sock", "socket_id", "outbox", "session", "open", "awaiting_pong",
                 "max_message", "_state", "_inbuf", "_frag", "_frag_opcode", "_out",
                 "_timer")
    prepare_frame = staticmethod(_WSConnection.prepare_frame)

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
                  outbox: Outbox, max_message: int) -> _RawWebSocket | None:
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
        """As `_WSConnection.send`: an answer, written at the end of this iteration."""
        if not self.open:
            return False
        self.outbox.put_reply(self, self.prepare_frame(frame))
        return True

    def send_prepared(self, wire: bytes) -> bool:
        """As `_WSConnection.send_prepared`: a published frame, for the write window."""
        if not self.open:
            return False
        self.outbox.put(self, wire)
        return True

    def relaying(self) -> contextlib.AbstractContextManager[None]:
        """As `_WSConnection.relaying`: this socket's client events are relayed at once."""
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
    task per socket: every `interval` seconds each `_RawWebSocket` of the hub's sessions
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

    def _raw(self) -> list[_RawWebSocket]:
        return [s.conn for s in self.hub.sessions.values() if type(s.conn) is _RawWebSocket]

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


class PusherSocket(tornado.websocket.WebSocketHandler):
    """`/app/{key}`: one Pusher connection (protocol 7)."""

    session: Session | None = None

    @property
    def hub(self) -> Hub:
        return cast(Hub, self.settings["wolive_hub"])

    def log_app(self) -> str | None:
        """The app's id, for the access log (`wolive.log_request`)."""
        app = self.hub.apps_by_key.get(self.path_args[0] if self.path_args else "")
        return app.id if app is not None else None

    def get_compression_options(self) -> None:
        # Never permessage-deflate: prepared frames (_WSConnection.prepare_frame) are raw.
        return None

    def check_origin(self, origin: str) -> bool:
        # Any site may open a socket (visitor windows are embedded everywhere); what a
        # socket may hear is decided per channel, and the agent cookie only counts from our
        # own origin (see _caller), so a foreign page cannot borrow an agent's session.
        return True

    def _own_origin(self, origin: str) -> bool:
        """Whether a browser's `Origin` is one of wolive's own (the agent cookie counts only
        there; a page on another port of the same host is another origin, RFC 6454):
        the socket's own `scheme://host:port` as the browser addressed it (the `Host`
        header; behind a proxy, the public one), `server.public_url`, or, for WoLive's
        separate socket port (`legacy_ws_port`), the main port of the same host, whose
        pages open it."""
        try:
            o = urlsplit(origin)
            port = o.port or (443 if o.scheme == "https" else 80)
        except ValueError:
            return False
        if o.scheme not in ("http", "https") or not o.hostname:
            return False
        if o.netloc.lower() == self.request.host.lower():
            return True
        public = urlsplit(str(self.settings["wolive_config"]["server"].get("public_url") or ""))
        if public.netloc and (o.scheme, o.netloc.lower()) == (public.scheme,
                                                               public.netloc.lower()):
            return True
        ports: dict[str, int] = self.settings.get("wolive_ports") or {}
        return o.hostname == self.request.host_name and port == ports.get("main")

    async def _caller(self) -> Caller:
        origin = self.request.headers.get("Origin", "")
        if origin and not self._own_origin(origin):
            return Caller()
        raw = self.get_signed_cookie(AGENT_COOKIE, max_age_days=AGENT_COOKIE_DAYS)
        if not raw:
            return Caller()
        try:
            sid_s, tag = raw.decode().split(":", 1)
            row = await self.settings["wolive_store"].get_service(int(sid_s))
        except (ValueError, NotFound):  # bad cookie or unknown agent: an anonymous socket
            return Caller()
        if tag != password_tag(row["password"]):
            return Caller()
        return Caller(service_id=row["service_id"], business_id=row["business_id"])

    async def open(self, key: str) -> None:  # type: ignore[override]
        # No Nagle: frames already go out coalesced per loop iteration (`Outbox`); Nagle
        # would hold a small frame until the peer ACKs the last one, up to a delayed ACK
        # (40-200 ms) on the visitor's side (docs/performance.md, "TCP_NODELAY").
        self.set_nodelay(True)
        hub = self.hub
        conn = _WSConnection(hub.next_socket_id(), self, self.settings["wolive_outbox"])
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
            caller = await self._caller()
        except Unavailable:  # the store logged it; the client reconnects with backoff
            error = p.Errors.STORE_UNAVAILABLE
            conn.send(p.error_frame(error.code, error.message))
            conn.close(error.code, error.message)
            return
        if not conn.open:  # closed while we looked the agent up
            return
        ws = self.ws_connection
        raw = None if ws is None else _RawWebSocket.take_over(
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


def query_values(query: str) -> dict[str, str]:
    """A query string's values, URL-decoded, the last of a repeated name winning, nothing
    stripped: exactly what the client signed. `urllib.parse.parse_qsl(query,
    keep_blank_values=True)`'s answer, without its cost when nothing is escaped (the
    Pusher libraries' `auth_*` and `body_md5` values never are)."""
    if "%" in query or "+" in query:
        return dict(parse_qsl(query, keep_blank_values=True))
    out = {}
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            out[name] = value
    return out


class PusherApiHandler(BaseHandler):
    """Base of the HTTP API: signed requests only (PUSHER-COMPAT, "HTTP API"); JSON always,
    `{"error": ...}` on failure: 400 malformed, 401 signature, 403 disabled app, 404 unknown
    app, 413 too large."""

    app: App

    def set_default_headers(self) -> None:
        # Server-to-server JSON, never framed: none of the pages' frame headers (the lean
        # publish path answers exactly as these handlers do).
        return None

    def check_xsrf_cookie(self) -> None:
        return None  # signed by the app secret instead

    def log_app(self) -> str | None:
        """The app's id once the request is authenticated, for the access log."""
        app = getattr(self, "app", None)
        return app.id if app is not None else None

    def find_app(self) -> App | None:
        """The app named by the path's first group (`/apps/{app_id}/...`)."""
        return self.hub.apps_by_id.get(self.path_args[0] if self.path_args else "")

    def query(self) -> dict[str, str]:
        """The query string, URL-decoded (what the signature is computed over)."""
        return query_values(self.request.query)

    async def prepare(self) -> None:
        try:
            self.app = pusher_api.authenticate(self.find_app(), self.request.method or "",
                                               self.request.path, self.query(),
                                               self.request.body)
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        msg = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": msg}))

    def json_body(self) -> Any:
        """The body as JSON (400 when it is not)."""
        try:
            return pusher_api.parse_json(self.request.body)
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None

    async def reply(self, use_case: Callable[..., dict[str, Any] |
                                             Awaitable[dict[str, Any]]], *args: Any) -> None:
        """Answer `use_case(hub, app, *args)` (a dict, or a coroutine giving one) as JSON;
        its `ApiProblem` becomes the status."""
        try:
            answer = use_case(self.hub, self.app, *args)
            if inspect.isawaitable(answer):
                answer = await answer
        except pusher_api.ApiProblem as exc:
            raise tornado.web.HTTPError(exc.status, log_message=exc.message) from None
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, ensure_ascii=False))


class EventsHandler(PusherApiHandler):
    """`POST /apps/{app_id}/events`: publish one event to 1-100 channels."""

    async def post(self, app_id: str) -> None:
        await self.reply(pusher_api.publish, self.json_body())


class BatchEventsHandler(PusherApiHandler):
    """`POST /apps/{app_id}/batch_events`: publish 1-10 events."""

    async def post(self, app_id: str) -> None:
        await self.reply(pusher_api.publish_batch, self.json_body())


class ChannelsHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels`: occupied channels."""

    async def get(self, app_id: str) -> None:
        await self.reply(pusher_api.channels, self.query())


class ChannelHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels/{name}`: one channel's state."""

    async def get(self, app_id: str, name: str) -> None:
        await self.reply(pusher_api.channel, name, self.query())


class UsersHandler(PusherApiHandler):
    """`GET /apps/{app_id}/channels/{name}/users`: a presence channel's users."""

    async def get(self, app_id: str, name: str) -> None:
        await self.reply(pusher_api.users, name)


class TerminateHandler(PusherApiHandler):
    """`POST /apps/{app_id}/users/{user_id}/terminate_connections` (the Node library)."""

    async def post(self, app_id: str, user_id: str) -> None:
        await self.reply(pusher_api.terminate, user_id)


class TerminateByKeyHandler(PusherApiHandler):
    """`POST /users/{user_id}/terminate_connections`: the Python library leaves out the
    `/apps/{id}` prefix, so the app is the one whose key signed the request."""

    def find_app(self) -> App | None:
        app = self.hub.apps_by_key.get(self.get_query_argument("auth_key", ""))
        if app is None:
            raise tornado.web.HTTPError(401, log_message="Unknown auth_key")
        return app

    async def post(self, user_id: str) -> None:
        await self.reply(pusher_api.terminate, user_id)


class ChannelAuthHandler(BaseHandler):
    """`POST /pusher/auth` (form `socket_id`, `channel_name`: pusher-js's default
    channelAuthorization request): signs only the channels `realtime.chat.may_join` allows
    the logged-in agent. Needs the agent cookie and the `_xsrf` token (header
    `X-XSRFToken`), so another site cannot obtain signatures. 403 JSON otherwise."""

    def post(self) -> None:
        socket_id = self.arg("socket_id", required=True, max_len=64)
        channel = self.arg("channel_name", required=True, max_len=p.MAX_CHANNEL_NAME)
        if not pusher_api.SOCKET_ID_RE.match(socket_id):
            raise ApiError(400, 1, "socket_id must look like 123.456")
        if not p.valid_channel_name(channel):
            raise ApiError(400, 1, "invalid channel_name")
        member = may_join(self.current_user, channel)
        if member is None:
            raise ApiError(403, 1, "you may not join this channel / 无权订阅该频道")
        self.send_json(self.hub.authorize_channel(self.hub.default_app, socket_id, channel,
                                                  member or None))

    def send_json(self, answer: dict[str, str]) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer, ensure_ascii=False))


class UserAuthHandler(ChannelAuthHandler):
    """`POST /pusher/user-auth` (form `socket_id`: pusher-js's `signin()` request): a
    logged-in agent signs in as user `agent-{service_id}` with user_info {nick_name,
    avatar}. Cookie and `_xsrf` as for `/pusher/auth`; 403 JSON for anyone else."""

    def post(self) -> None:
        socket_id = self.arg("socket_id", required=True, max_len=64)
        if not pusher_api.SOCKET_ID_RE.match(socket_id):
            raise ApiError(400, 1, "socket_id must look like 123.456")
        agent = self.current_user
        if agent is None:
            raise ApiError(403, 1, "not logged in / 请先登录")
        user = {"id": f"agent-{agent.service_id}",
                "user_info": {"nick_name": agent.nick_name, "avatar": agent.avatar}}
        self.send_json(self.hub.authenticate_user(self.hub.default_app, socket_id, user))


# ---- the publish fast path -----------------------------------------------------------------

#: The endpoints `Application` answers without a RequestHandler: `POST` to these paths.
_LEAN_POST = re.compile(r"/apps/([0-9A-Za-z_\-]+)/(events|batch_events)")
_LEAN_USE_CASES: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "events": pusher_api.publish, "batch_events": pusher_api.publish_batch}
_access_log = logging.getLogger("tornado.access")
_SERVER = f"TornadoServer/{tornado.version}"


class _HttpDate:
    """The `Date` header as a RequestHandler writes it (`httputil.format_timestamp`),
    formatted once a second."""

    second = -1
    text = ""

    @classmethod
    def now(cls) -> str:
        t = int(time.time())
        if t != cls.second:
            cls.second, cls.text = t, tornado.httputil.format_timestamp(t)
        return cls.text


#: A Host header the lean path takes as it is: a host name or IPv4 / [IPv6] address and a
#: port. Anything else (missing, repeated, odd) goes through Tornado's routing, which
#: answers it 400 or serves it as usual.
_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
#: More query fields than a signed Pusher request has (6) by far: routed as usual (Tornado's
#: own limit then applies).
_LEAN_MAX_QUERY_FIELDS = 64
_general_log = logging.getLogger("tornado.general")


def _lean_eligible(start_line: tornado.httputil.RequestStartLine,
                   headers: tornado.httputil.HTTPHeaders) -> bool:
    """True when a POST to the publish endpoints is an ordinary one: HTTP/1.1, one plain
    Host, a JSON (or no) Content-Type, a short query. Only those take the lean path, so
    every unusual request gets exactly Tornado's answer."""
    if start_line.version != "HTTP/1.1":
        return False
    hosts = headers.get_list("Host")
    if len(hosts) != 1 or _PLAIN_HOST.fullmatch(hosts[0]) is None:
        return False
    ctype = headers.get("Content-Type", "")
    if ctype and ctype.split(";", 1)[0].strip().lower() != "application/json":
        return False
    return start_line.path.count("&") < _LEAN_MAX_QUERY_FIELDS


class _HeadersOnly:
    """What Tornado's output transforms (gzip, `RequestIdTransform`) read of a request."""

    __slots__ = ("headers", "request_id")

    def __init__(self, headers: tornado.httputil.HTTPHeaders, request_id: str) -> None:
        self.headers = headers
        self.request_id = request_id


class _LeanPublish(tornado.httputil.HTTPMessageDelegate):
    """One `POST /apps/{id}/events` or `/batch_events`, answered straight on the HTTP/1.1
    connection: the same checks and use cases as `EventsHandler` / `BatchEventsHandler`
    (`pusher_api.authenticate`, `parse_json`, `publish`), the same headers, gzip and log
    lines, without a RequestHandler, its routing, cookies and Futures: a third of the
    request's CPU, which 100 deliveries of the event share (docs/performance.md)."""

    __slots__ = ("app", "conn", "start_line", "headers", "app_id", "use_case", "route",
                 "chunks", "size", "t0")

    def __init__(self, app: Application, conn: tornado.httputil.HTTPConnection,
                 start_line: tornado.httputil.RequestStartLine,
                 headers: tornado.httputil.HTTPHeaders, app_id: str,
                 use_case: Callable[..., Coroutine[Any, Any, dict[str, Any]]],
                 route: str) -> None:
        self.app, self.conn, self.start_line, self.headers = app, conn, start_line, headers
        self.app_id, self.use_case, self.route = app_id, use_case, route
        self.chunks: list[bytes] = []
        self.size = 0
        self.t0 = time.monotonic()

    def data_received(self, chunk: bytes) -> None:
        # Kept until the body is known to be too big (413): never more than a chunk past it.
        if self.size <= pusher_api.MAX_BODY_BYTES:
            self.chunks.append(chunk)
        self.size += len(chunk)

    def finish(self) -> None:
        body = b"".join(self.chunks)
        self.chunks = []
        status, problem = 200, ""
        hub: Hub = self.app.settings["wolive_hub"]
        try:
            path, _, query = self.start_line.path.partition("?")
            app = pusher_api.authenticate(hub.apps_by_id.get(self.app_id), "POST", path,
                                          query_values(query), body)
            # The lean path serves only an inline adapter (`Application`): no await.
            answer = run_inline(self.use_case(hub, app, pusher_api.parse_json(body)))
        except pusher_api.ApiProblem as exc:
            status, problem, answer = exc.status, exc.message, {"error": exc.message}
        except Exception:
            log.exception("HTTP API publish failed: %s", self.start_line.path)
            status, answer = 500, {"error": "Internal Server Error"}
        self._respond(status, json.dumps(answer, ensure_ascii=False).encode(), problem)

    def _respond(self, status: int, body: bytes, problem: str) -> None:
        headers = tornado.httputil.HTTPHeaders({
            "Server": _SERVER, "Content-Type": "application/json",
            "Date": _HttpDate.now(), "Content-Length": str(len(body))})
        rid = request_id_for(self.headers)
        for transform in self.app.transforms:  # gzip, when `compress_response` is on
            status, headers, body = transform(
                cast(tornado.httputil.HTTPServerRequest, _HeadersOnly(self.headers, rid))
            ).transform_first_chunk(status, headers, body, True)
        self.conn.write_headers(tornado.httputil.ResponseStartLine(
            "HTTP/1.1", status, tornado.httputil.responses.get(status, "Unknown")),
            headers, body)
        self.conn.finish()
        seconds = time.monotonic() - self.t0
        metrics = self.app.metrics
        if metrics is not None:
            metrics.observe_http(self.route, "POST", status, seconds)
        # The log lines a RequestHandler writes: the refusal's reason, then the access log
        # as `wolive.log_request` writes it (2xx at DEBUG).
        level = access_log_level(status)
        if problem or _access_log.isEnabledFor(level):
            ip = getattr(getattr(self.conn, "context", None), "remote_ip", "?")
            summary = f"POST {self.start_line.path} ({ip})"
            fields = {"request_id": rid, "method": "POST", "route": self.route,
                      "status": status, "latency_ms": round(1000.0 * seconds, 3),
                      "remote_ip": ip, "app": self.app_id}
            if problem:
                _general_log.warning("%d %s: %s", status, summary, problem, extra=fields)
            _access_log.log(level, "%d %s %.2fms", status, summary, 1000.0 * seconds,
                            extra=fields)

    def on_connection_close(self) -> None:
        self.chunks = []


class _Dispatch(tornado.httputil.HTTPMessageDelegate):
    """Picks, from the request line and headers, the lean publish path or Tornado's
    routing."""

    __slots__ = ("app", "server_conn", "request_conn", "delegate")

    def __init__(self, app: Application, server_conn: object,
                 request_conn: tornado.httputil.HTTPConnection) -> None:
        self.app, self.server_conn, self.request_conn = app, server_conn, request_conn
        self.delegate: tornado.httputil.HTTPMessageDelegate | None = None

    def headers_received(self, start_line: tornado.httputil.RequestStartLine |
                         tornado.httputil.ResponseStartLine,
                         headers: tornado.httputil.HTTPHeaders) -> Awaitable[None] | None:
        if isinstance(start_line, tornado.httputil.RequestStartLine):
            self.delegate = self.app.lean_delegate(self.request_conn, start_line, headers)
            if self.delegate is not None:
                return None
        self.delegate = tornado.web.Application.start_request(
            self.app, self.server_conn, self.request_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.delegate is not None
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        assert self.delegate is not None
        self.delegate.finish()

    def on_connection_close(self) -> None:
        if self.delegate is not None:
            self.delegate.on_connection_close()


class _Labelled(tornado.routing.Matcher):
    """A route's matcher that also notes the route's pattern on the request it matches
    (`request.wolive_route`, the metrics' and access log's `route`: bounded, never the raw
    path)."""

    def __init__(self, inner: tornado.routing.Matcher, label: str) -> None:
        self.inner, self.label = inner, label

    def match(self, request: tornado.httputil.HTTPServerRequest) -> dict[str, Any] | None:
        params = self.inner.match(request)
        if params is not None:
            request.wolive_route = self.label  # type: ignore[attr-defined]
        return params

    def reverse(self, *args: Any) -> str | None:
        return self.inner.reverse(*args)


def route_label(matcher: tornado.routing.Matcher) -> str:
    """A route's label: its path pattern as written in the route table."""
    regex = getattr(matcher, "regex", None)
    pattern = regex.pattern if regex is not None else type(matcher).__name__
    return pattern[:-1] if pattern.endswith("$") else pattern


class Application(tornado.web.Application):
    """`tornado.web.Application` whose listeners answer `POST /apps/{id}/events` and
    `/batch_events` through `_LeanPublish` when its routes include `EventsHandler` (the main
    port and WoLive's 2080); every other request, and every other method on those paths
    (CORS preflight, 405), goes through the routes as usual.

    Every request gets an id (`handlers.logs`: `request.request_id`, `X-Request-Id` on the
    answer, `REQUEST_ID` while its handler runs) and its route's pattern
    (`request.wolive_route`)."""

    def __init__(self, handlers: list[Any], **settings: Any) -> None:
        super().__init__(handlers, **settings)
        # The lean path answers in the caller's stack, so only over an inline adapter.
        hub = settings.get("wolive_hub")
        self.lean_publish = any(spec[1] is EventsHandler for spec in handlers) and \
            (hub is None or hub.adapter.inline)
        self.add_transform(RequestIdTransform)
        for rule in self.wildcard_router.rules:
            rule.matcher = _Labelled(rule.matcher, route_label(rule.matcher))
        #: `realtime.metrics.Metrics` when `metrics.enabled`, else None.
        self.metrics = settings.get("wolive_metrics")

    def get_handler_delegate(self, request: tornado.httputil.HTTPServerRequest,
                             target_class: type[tornado.web.RequestHandler],
                             target_kwargs: dict[str, Any] | None = None,
                             path_args: list[bytes] | None = None,
                             path_kwargs: dict[str, bytes] | None = None
                             ) -> tornado.web._HandlerDelegate:
        rid = request_id_for(request.headers)
        request.request_id = rid  # type: ignore[attr-defined]
        inner = super().get_handler_delegate(request, target_class, target_kwargs,
                                             path_args, path_kwargs)
        return cast(tornado.web._HandlerDelegate, WithRequestId(inner, rid))

    def start_request(self, server_conn: object, request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        if not self.lean_publish:
            return super().start_request(server_conn, request_conn)
        return _Dispatch(self, server_conn, request_conn)

    def lean_delegate(self, request_conn: tornado.httputil.HTTPConnection,
                      start_line: tornado.httputil.RequestStartLine,
                      headers: tornado.httputil.HTTPHeaders
                      ) -> tornado.httputil.HTTPMessageDelegate | None:
        """The `_LeanPublish` that answers this request, when it is an ordinary `POST` to
        the publish endpoints (`_lean_eligible`) and this application serves them; None:
        route it as usual. Used by `_Dispatch` and by `handlers.http_server`'s reader."""
        if not self.lean_publish or start_line.method != "POST":
            return None
        m = _LEAN_POST.fullmatch(start_line.path.partition("?")[0])
        if m is None or not _lean_eligible(start_line, headers):
            return None
        return _LeanPublish(self, request_conn, start_line, headers, m[1],
                            _LEAN_USE_CASES[m[2]], _LEAN_ROUTES[m[2]])


_APP = r"/apps/([0-9A-Za-z_\-]+)"
#: The lean path's route labels: the patterns of `EventsHandler` / `BatchEventsHandler`.
_LEAN_ROUTES = {"events": _APP + r"/events", "batch_events": _APP + r"/batch_events"}


def routes() -> list[tuple[str, type]]:
    """The WebSocket, the HTTP API and the console's auth endpoints."""
    return [
        (r"/app/([^/]+)", PusherSocket),
        (_APP + r"/events", EventsHandler),
        (_APP + r"/batch_events", BatchEventsHandler),
        (_APP + r"/channels", ChannelsHandler),
        (_APP + r"/channels/([^/]+)", ChannelHandler),
        (_APP + r"/channels/([^/]+)/users", UsersHandler),
        (_APP + r"/users/([^/]+)/terminate_connections", TerminateHandler),
        (r"/users/([^/]+)/terminate_connections", TerminateByKeyHandler),
        (r"/pusher/auth", ChannelAuthHandler),
        (r"/pusher/user-auth", UserAuthHandler),
    ]
