"""wolive's HTTP listener: Tornado's `HTTPServer`, plus a lean reader for the connections
Pusher server libraries keep open to publish.

A backend that publishes (the official Pusher libraries, WoLive integrations) keeps one
keep-alive connection and sends `POST /apps/{id}/events` on it again and again. Tornado's
HTTP/1.1 connection spends most of such a request's CPU on its own machinery (a coroutine
per request, buffered reads, a timeout per header read, Futures per write); at 1,000
publishes a second to 100 subscribers that was a third of the server's CPU per delivered
message (docs/performance.md, "The publish connection").

`HTTPServer.handle_stream` therefore gives each new plain (not TLS) connection to
`_PublishConnection` first. It only *peeks* at the socket (`MSG_PEEK`): while what waits
there is one whole, ordinary publish request (the application's `lean_delegate` takes it,
and a complete `Content-Length` body), it takes it off the socket, answers it with that
delegate (`handlers.pusher._LeanPublish`: the same checks, use cases, headers and log
lines as everywhere else) and writes the answer itself. Anything else (another URL or method, a
WebSocket handshake, a request that arrived in pieces, chunked, `Expect`, HTTP/1.0, TLS) and
the connection is handed, with its bytes
still unread, to Tornado's own HTTP/1.1 connection for the rest of its life; so every
unusual request gets exactly Tornado's answer. `Connection: close`, and servers made with
`no_keep_alive` or `decompress_request`, are Tornado's too; the server's `max_header_size`
and `max_body_size` are kept (over them: handed over, and Tornado refuses). Behind a proxy
(`xheaders`, how production runs behind nginx) the reader serves publishes too, and takes
the client's address from `X-Real-Ip` / `X-Forwarded-For` by Tornado's documented rule
(`forwarded_ip`), as Tornado's own connection would for the access log.

Oversized requests get an answer, not a silent close. Tornado closes a connection whose head
is over its `max_header_size` without a word, and answers a `Content-Length` over
`max_body_size` with a bare 400 before closing on the unread body (the client, still sending,
usually sees a reset). So the listener reads heads up to `READ_HEAD_BYTES` and, before the
body, `_Limits` (wrapping every request's delegate, public `HTTPServerConnectionDelegate`
API) answers a request target over `MAX_TARGET_BYTES` with 414, header fields over
`MAX_HEADERS_BYTES` with 431 and a declared body over the server's `max_body_size` with 413:
a short JSON `{code, msg}` and `Connection: close`, then it reads and drops what the client
still sends for a bounded time (`LINGER_S`, nginx's "lingering close"), so the client gets
to read the answer. Only a head over `READ_HEAD_BYTES` is still closed unanswered.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
from typing import Any, cast

import tornado.gen
import tornado.httpserver
import tornado.httputil
import tornado.ioloop
import tornado.iostream
import tornado.netutil

from . import pusher as hp
from .logs import request_id_for

log = logging.getLogger("wolive.http")

#: Bytes peeked at once: a request bigger than this (headers and body) is Tornado's.
PEEK_BYTES = 64 * 1024
_HEAD_END = b"\r\n\r\n"
_DIGITS = re.compile(rb"[0-9]{1,9}")
#: One buffer for every peek: requests are handled one at a time, synchronously.
_peek_buffer = bytearray(PEEK_BYTES)

#: Largest request body any listener reads (bytes): an 18 MB upload (WoLive's nginx
#: `client_max_body_size 18M`) plus its multipart envelope fits. Over it: 413.
MAX_BODY_BYTES = 32 * 1024 * 1024
#: Longest request target (path and query, bytes) answered; over it: 414. Tornado's own
#: head limit (64 KB) was the cap before; no URL of the API needs more.
MAX_TARGET_BYTES = 64 * 1024
#: Most bytes of header fields answered; over them: 431. As MAX_TARGET_BYTES.
MAX_HEADERS_BYTES = 64 * 1024
#: Bytes of a request head Tornado reads (its `max_header_size`), so that heads over the two
#: limits above are read and answered; a head over this is closed unanswered (the memory a
#: connection may hold before it is refused).
READ_HEAD_BYTES = 2 * 1024 * 1024
#: Seconds a refused connection is kept reading (and dropping) what the client still sends,
#: so it reads the answer rather than a reset; and seconds of silence that end it sooner.
LINGER_S = 10.0
LINGER_IDLE_S = 2.0

_REASONS = {413: "Payload Too Large", 414: "URI Too Long",
            431: "Request Header Fields Too Large"}


def forwarded_ip(headers: tornado.httputil.HTTPHeaders, peer_ip: str,
                 trusted_downstream: set[str]) -> str:
    """The client's address behind a proxy, as Tornado's `HTTPServer(xheaders=True)` takes
    it (its documentation: `X-Real-Ip`, else the last `X-Forwarded-For` hop that is not in
    `trusted_downstream`); `peer_ip` when that is not a valid IP address."""
    ip = headers.get("X-Forwarded-For", peer_ip)
    for ip in (hop.strip() for hop in reversed(ip.split(","))):
        if ip not in trusted_downstream:
            break
    ip = headers.get("X-Real-Ip", ip)
    return ip if tornado.netutil.is_valid_ip(ip) else peer_ip


class HTTPServer(tornado.httpserver.HTTPServer):
    """`tornado.httpserver.HTTPServer` whose new plain connections start on
    `_PublishConnection` when the application answers publishes lean
    (`handlers.pusher.Application.lean_publish`)."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_header_size", READ_HEAD_BYTES)
        kwargs.setdefault("max_body_size", MAX_BODY_BYTES)
        super().initialize(*args, **kwargs)
        #: `xheaders`' proxies to skip in `X-Forwarded-For` (Tornado's `trusted_downstream`).
        self.trusted_hops: set[str] = set(self.trusted_downstream or ())
        self._lean_connections: set[_PublishConnection] = set()
        self._refused: set[tornado.iostream.IOStream] = set()

    def start_request(self, server_conn: object,
                      request_conn: tornado.httputil.HTTPConnection
                      ) -> tornado.httputil.HTTPMessageDelegate:
        """Tornado's delegate for the request, behind `_Limits`."""
        return _Limits(self, super().start_request(server_conn, request_conn), request_conn)

    def refuse(self, stream: tornado.iostream.IOStream, status: int, msg: str,
               request_id: str) -> None:
        """Answer `status` with `{code: 1, msg, request_id}` (and `X-Request-Id`) on
        `stream` (detached from Tornado), drop what the client still sends for up to
        `LINGER_S`, then close."""
        self._refused.add(stream)
        body = json.dumps({"code": 1, "msg": msg, "request_id": request_id},
                          ensure_ascii=False).encode()
        head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                "Content-Type: application/json; charset=UTF-8\r\n"
                f"X-Request-Id: {request_id}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        tornado.ioloop.IOLoop.current().add_future(
            tornado.gen.convert_yielded(_linger(stream, head.encode() + body)),
            lambda f: self._refused.discard(stream))

    def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        app = self.request_callback
        params = self.conn_params
        if params.no_keep_alive or params.decompress or \
                type(stream) is not tornado.iostream.IOStream or \
                not getattr(app, "lean_publish", False):
            super().handle_stream(stream, address)
            return
        self._lean_connections.add(
            _PublishConnection(self, cast(hp.Application, app), stream, address))

    def hand_over(self, conn: _PublishConnection) -> None:
        """Serve the rest of `conn` with Tornado's own HTTP/1.1 connection."""
        self._lean_connections.discard(conn)
        super().handle_stream(conn.stream, conn.address)

    def forget(self, conn: _PublishConnection) -> None:
        self._lean_connections.discard(conn)

    async def close_all_connections(self) -> None:
        """Close the publish connections (they are between requests: a request is answered
        in the loop iteration that reads it), then Tornado's."""
        for conn in list(self._lean_connections):
            conn.close()
        for stream in list(self._refused):
            stream.close()
        await super().close_all_connections()


async def _linger(stream: tornado.iostream.IOStream, answer: bytes) -> None:
    loop = tornado.ioloop.IOLoop.current()
    deadline = loop.time() + LINGER_S
    try:
        await stream.write(answer)
        if type(stream) is tornado.iostream.IOStream:  # plain TCP: the client sees the end
            stream.socket.shutdown(socket.SHUT_WR)
        while loop.time() < deadline:
            await tornado.gen.with_timeout(
                min(deadline, loop.time() + LINGER_IDLE_S),
                stream.read_bytes(64 * 1024, partial=True),
                quiet_exceptions=tornado.iostream.StreamClosedError)
    except (tornado.iostream.StreamClosedError, tornado.gen.TimeoutError, OSError):
        pass
    finally:
        stream.close()


def oversize(start_line: tornado.httputil.RequestStartLine,
             headers: tornado.httputil.HTTPHeaders, max_body: int) -> tuple[int, str] | None:
    """(status, message) when a request is over a limit, else None: 414 a target over
    `MAX_TARGET_BYTES`, 431 header fields over `MAX_HEADERS_BYTES`, 413 a `Content-Length`
    over `max_body` bytes (a malformed one is left to Tornado, which answers 400)."""
    if len(start_line.path) > MAX_TARGET_BYTES:
        return 414, (f"the URL is over {MAX_TARGET_BYTES // 1024} KB / "
                     f"网址超过 {MAX_TARGET_BYTES // 1024} KB")
    size = sum(len(name) + len(value) + 4 for name, value in headers.get_all())
    if size > MAX_HEADERS_BYTES:
        return 431, (f"the request headers are over {MAX_HEADERS_BYTES // 1024} KB / "
                     f"请求头超过 {MAX_HEADERS_BYTES // 1024} KB")
    length = headers.get("Content-Length", "")
    if length.isascii() and length.isdigit() and int(length) > max_body:
        return 413, (f"the request body is over {max_body // (1024 * 1024)} MB / "
                     f"请求体超过 {max_body // (1024 * 1024)} MB")
    return None


class _Limits(tornado.httputil.HTTPMessageDelegate):
    """Passes a request on to Tornado's delegate, unless its head is over a limit
    (`oversize`): then the connection is detached from Tornado and answered by
    `HTTPServer.refuse`."""

    __slots__ = ("server", "inner", "conn", "refused")

    def __init__(self, server: HTTPServer, inner: tornado.httputil.HTTPMessageDelegate,
                 conn: tornado.httputil.HTTPConnection) -> None:
        self.server, self.inner, self.conn = server, inner, conn
        self.refused = False

    def headers_received(self, start_line: tornado.httputil.RequestStartLine |
                         tornado.httputil.ResponseStartLine,
                         headers: tornado.httputil.HTTPHeaders) -> Any:
        assert isinstance(start_line, tornado.httputil.RequestStartLine)
        refusal = oversize(start_line, headers,
                           self.server.conn_params.max_body_size or MAX_BODY_BYTES)
        if refusal is None:
            return self.inner.headers_received(start_line, headers)
        self.refused = True
        status, msg = refusal
        rid = request_id_for(headers)
        stream = cast(Any, self.conn).detach()  # Tornado reads no more of this connection
        log.warning("%d %s %s (%s): %s", status, start_line.method, start_line.path[:200],
                    getattr(getattr(self.conn, "context", None), "remote_ip", "?"), msg,
                    extra={"request_id": rid, "status": status})
        self.server.refuse(stream, status, msg, rid)
        return None

    def data_received(self, chunk: bytes) -> Any:
        return self.inner.data_received(chunk)

    def finish(self) -> None:
        self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()


class _PublishConnection:
    """One client connection while it sends only ordinary publish requests. Implements the
    two `tornado.httputil.HTTPConnection` calls `_LeanPublish` makes (`write_headers`,
    `finish`) and `context.remote_ip` for its log line."""

    __slots__ = ("server", "app", "stream", "address", "sock", "fd", "loop", "peer_ip",
                 "remote_ip", "out", "closed", "last_active", "idle_timer", "reading")

    def __init__(self, server: HTTPServer, app: hp.Application,
                 stream: tornado.iostream.IOStream, address: Any) -> None:
        self.server, self.app, self.stream, self.address = server, app, stream, address
        self.sock: socket.socket = stream.socket
        self.fd = self.sock.fileno()
        self.loop = asyncio.get_running_loop()
        self.peer_ip = address[0] if isinstance(address, tuple) and address else "0.0.0.0"
        #: The current request's client (`forwarded_ip` behind a proxy, with `xheaders`).
        self.remote_ip = self.peer_ip
        self.out = b""  # answer bytes the socket did not take yet
        self.closed = False
        self.last_active = self.loop.time()
        self.reading = True
        # Each answer is one send(): Nagle would only hold a pipelined request's answer
        # for the client's delayed ACK (Tornado's connection sets it too, and after a
        # hand-over whoever serves the socket decides).
        stream.set_nodelay(True)
        self.loop.add_reader(self.fd, self._readable)
        self.idle_timer = self.loop.call_later(self._idle_limit(), self._idle_check)

    @property
    def context(self) -> _PublishConnection:
        return self

    def _idle_limit(self) -> float:
        return float(self.server.conn_params.header_timeout or 3600.0)

    def _idle_check(self) -> None:
        """Tornado's `idle_connection_timeout`: a connection silent that long is closed."""
        left = self.last_active + self._idle_limit() - self.loop.time()
        if self.out:  # still writing an answer: not idle
            left = self._idle_limit()
        if left > 0:
            self.idle_timer = self.loop.call_later(left, self._idle_check)
        else:
            self.close()

    # ---- reading -----------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            n = self.sock.recv_into(_peek_buffer, PEEK_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if n == 0:  # the client closed between requests
            self.close()
            return
        request = self._take(n)
        if request is None:
            self._hand_over()
            return
        delegate, body_start, total = request
        try:
            got = self.sock.recv_into(_peek_buffer, total)  # what was peeked: consume it
        except OSError:
            got = -1
        if got != total:  # cannot happen: nobody else reads this socket
            log.error("publish connection from %s: peeked %d bytes, read %d", self.remote_ip,
                      total, got)
            self.close()
            return
        self.last_active = self.loop.time()
        body = bytes(_peek_buffer[body_start:total])
        try:
            delegate.data_received(body)
            # Answers through write_headers + finish, now or (several nodes) by a task.
            later: asyncio.Future[None] | None = cast(Any, delegate).finish()
        except Exception:  # as Tornado does with an uncaught one: log it, drop the connection
            log.exception("publish connection from %s: a publish failed", self.remote_ip)
            self.close()
            return
        if later is not None:  # answered once the other nodes have it: read on after that
            self._stop_watching()
            later.add_done_callback(self._answered)

    def _answered(self, _done: Any) -> None:
        if not self.closed and not self.out and not self.reading:
            self.reading = True
            self.loop.add_reader(self.fd, self._readable)

    def _take(self, n: int) -> tuple[tornado.httputil.HTTPMessageDelegate, int, int] | None:
        """The request at the front of the peeked `n` bytes when it is whole and ordinary:
        (its `_LeanPublish`, body offset, total length); else None."""
        data = _peek_buffer
        head_end = data.find(_HEAD_END, 0, n)
        if head_end < 0:
            return None  # not all there yet, or headers too big: Tornado's
        head = bytes(data[:head_end])
        # Only CRLF line ends (Tornado also takes bare LF) and no leading empty lines.
        if head.count(b"\n") != head.count(b"\r\n") or head.startswith(b"\r\n"):
            return None
        line_end = head.find(b"\r\n")
        if line_end < 0 or not head.startswith(b"POST /apps/"):  # a WebSocket, a page...
            return None
        try:
            text = head.decode("latin1")
            start_line = tornado.httputil.parse_request_start_line(text[:line_end])
            headers = tornado.httputil.HTTPHeaders.parse(text[line_end + 2:])
        except tornado.httputil.HTTPInputError:
            return None
        if "Transfer-Encoding" in headers or "Expect" in headers:
            return None
        # `Connection: close` is Tornado's: it reads what follows before closing, so the
        # client gets a clean close, not a reset (RFC 9112 §9.6).
        if headers.get("Connection", "keep-alive").lower() != "keep-alive":
            return None
        length = headers.get("Content-Length", "0")
        if _DIGITS.fullmatch(length.encode("latin1")) is None:
            return None  # repeated, signed, too long: Tornado's answer
        params = self.server.conn_params
        body_start = head_end + len(_HEAD_END)
        if body_start > (params.max_header_size or PEEK_BYTES) or \
                int(length) > (params.max_body_size or PEEK_BYTES):
            return None  # over the server's own limits: Tornado refuses it
        total = body_start + int(length)
        if total > n:
            return None  # the body is not all there (or over PEEK_BYTES)
        delegate = self.app.lean_delegate(cast(tornado.httputil.HTTPConnection, self),
                                          start_line, headers)
        if delegate is None:
            return None
        server = self.server
        if server.xheaders:
            self.remote_ip = forwarded_ip(headers, self.peer_ip, server.trusted_hops)
        return delegate, body_start, total

    def _hand_over(self) -> None:
        self._stop_watching()
        self.idle_timer.cancel()
        self.server.hand_over(self)

    # ---- writing (what `_LeanPublish._respond` calls) ----------------------------------

    def write_headers(self, start_line: tornado.httputil.ResponseStartLine,
                      headers: tornado.httputil.HTTPHeaders, chunk: bytes | None = None
                      ) -> None:
        """The answer, formatted as Tornado's `HTTP1Connection.write_headers` does for an
        HTTP/1.1 request with a Content-Length."""
        lines = [b"HTTP/1.1 %d %s" % (start_line.code, start_line.reason.encode("latin1"))]
        lines.extend(f"{name}: {value}".encode("latin1") for name, value in headers.get_all())
        self._send(b"\r\n".join(lines) + _HEAD_END + (chunk or b""))

    def finish(self) -> None:
        pass  # keep-alive: the next request is read when it comes

    def _send(self, data: bytes) -> None:
        if self.closed:
            return
        if self.out:
            self.out += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(data):  # a slow reader: read nothing more until it took the answer
            self.out = data[sent:]
            self._stop_watching()
            self.loop.add_writer(self.fd, self._writable)

    def _writable(self) -> None:
        try:
            sent = self.sock.send(self.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        self.out = self.out[sent:]
        if self.out:
            return
        self.loop.remove_writer(self.fd)
        self.reading = True
        self.loop.add_reader(self.fd, self._readable)

    # ---- the end -----------------------------------------------------------------------

    def _stop_watching(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
            self.reading = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop_watching()
        if self.out:
            self.loop.remove_writer(self.fd)
            self.out = b""
        self.idle_timer.cancel()
        self.server.forget(self)
        self.stream.close()
