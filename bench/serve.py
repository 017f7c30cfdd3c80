"""Start wolive for the benchmark, optionally with an experimental variant applied.

    python bench/serve.py [--tree DIR] [--variant NAME ...] --config CFG.yaml

Without `--variant` this is exactly `python wolive.py --config CFG.yaml`. Each variant is
a candidate change, applied here by patching at start-up so that it can be measured
*before* anyone edits the real module (the files it touches are owned by other people;
see docs/performance.md, "Next steps"). Nothing here is imported by the server itself.

Variants (``nowrap`` to ``lean`` measured the fast send path before it went into the code;
against today's code they write each frame at once, i.e. they also undo ``Outbox``):

- ``uvloop``   uvloop as the asyncio event loop (a runtime dependency, if adopted).
- ``orjson``   orjson for the frame encoder (`realtime.pusher.protocol.encode`) and the HTTP
               API's body parser (`PusherApiHandler.json_body`).
- ``nowrap``   `WSConnection.send` writes the WebSocket frame through Tornado's frame
               writer without `write_message`'s per-call coroutine + Task.
- ``prepared`` the WebSocket frame (header + payload: a server frame is unmasked, so it is
               the same bytes for every subscriber) is built once per publish and each
               subscriber gets one `IOStream.write` of it (`WSConnection.send_prepared`,
               the optional fast path `realtime.pusher.adapter.LocalAdapter.publish` looks for).
- ``direct``   like ``prepared``, and when the stream has nothing queued
               (`IOStream.writing()` is false) the bytes go straight to `socket.send`: no
               Future, callback or buffer bookkeeping per write; only a partial send (a slow
               reader) falls back to `IOStream.write`, which keeps the order.
- ``lean``     like ``direct``, with the connection keeping its IOStream and socket (set
               on the first send) instead of reaching them through the handler and the
               protocol object on every send, and `writing()` as the one check per send.
- ``quiet``    `tornado.access` logging off (it logs every API request at INFO).
- ``backlog``  listen backlog 1024 instead of Tornado's default 128 (`bind_sockets`).
- ``nogc``     CPython's default garbage collector settings (`wolive.setup_gc` skipped).
- ``cewindow`` client events wait for the write window like publishes (`Outbox.relaying`
               off): the behaviour before issue 11 item 5.
- ``tracemalloc`` trace Python allocations; SIGUSR1 writes a snapshot to
               $WOLIVE_BENCH_SNAPSHOT.N (for bench/memory_diff.py).
- ``nocork``   what wolive did before write coalescing (`realtime.pusher.transport.Outbox`): each
               prepared frame is written at once, one `send()` per message.
- ``nowindow`` `pusher.write_window_ms: 0`: the outbox writes at the end of every loop
               iteration that queued something, as before the write window.
- ``windowN``  `pusher.write_window_ms: N` (e.g. ``window3``, ``window1.5``).
- ``noreader`` no `handlers.http_server._PublishConnection`: every connection is Tornado's
               HTTP/1.1 connection from the start, as before the publish reader.
- ``nagle``    Nagle's algorithm back on for Pusher sockets (wolive sets TCP_NODELAY in
               `PusherSocket.open` since write coalescing; before, this was the default).
- ``tornadows`` plain-TCP Pusher sockets stay on Tornado's WebSocketHandler for their whole
               life, as before the raw socket (`realtime.pusher.transport.RAW_SOCKETS = False`;
               TLS sockets always do). ``nowrap`` to ``lean``, ``nocork`` and ``nagle``
               act on `WSConnection` / the handler, i.e. only on sockets Tornado keeps:
               combine them with ``tornadows``.
- ``stmtcount`` count what the server asks of its database: SQL statements sent through a
               cursor (SQLAlchemy's `before_cursor_execute`, by first word: SELECT, INSERT,
               BEGIN, SAVEPOINT, ...), transactions begun, committed and rolled back
               (Connection events), pool checkouts (on MySQL each one is also a pre-ping
               round trip) and pool resets (a ROLLBACK when a connection goes back).
               SIGUSR2 writes the counters as JSON to $WOLIVE_BENCH_COUNTS (with a `seq`
               that grows by one per dump). Costs a few µs per statement; the chat
               benchmark (`bench/chatload.py`) uses it.
- ``metrics``  `metrics.enabled: true` (off by default): the HTTP and database histograms
               are fed on every request and statement (docs/performance.md, "The cost of
               metrics"). Nothing scrapes them.
- ``scrape``   with ``metrics``: the server also renders its own `/metrics` once a second
               (`Metrics.refresh_database_gauges` + the client's `generate_latest`, what a
               scrape costs without the HTTP round trip), 15 times Prometheus's usual rate.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import re
import struct
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = ("uvloop", "orjson", "nowrap", "prepared", "direct", "lean", "quiet", "backlog",
            "nagle", "tracemalloc", "nocork", "nowindow", "noreader", "stmtcount",
            "nogc", "cewindow", "tornadows", "metrics", "scrape")


def count_statements(path: str) -> None:
    """The ``stmtcount`` variant: counters on every engine; SIGUSR2 dumps them to `path`."""
    import json
    import signal

    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    counts: dict[str, Any] = {"seq": 0, "statements": 0, "begin": 0, "commit": 0,
                              "rollback": 0, "checkout": 0, "reset": 0, "verbs": {}}
    verbs: dict[str, int] = counts["verbs"]

    def on_statement(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        counts["statements"] += 1
        head = statement.lstrip()[:16].split(None, 1)
        verb = head[0].upper() if head else "?"
        verbs[verb] = verbs.get(verb, 0) + 1

    def bump(name: str) -> Any:
        def on_event(*_args: Any, **_kw: Any) -> None:
            counts[name] += 1
        return on_event

    event.listen(Engine, "before_cursor_execute", on_statement)
    for name in ("begin", "commit", "rollback"):
        event.listen(Engine, name, bump(name))
    event.listen(Pool, "checkout", bump("checkout"))
    event.listen(Pool, "reset", bump("reset"))

    def dump(signum: int, frame: Any) -> None:
        counts["seq"] += 1
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, path)

    signal.signal(signal.SIGUSR2, dump)


def _ws_header(length: int) -> bytes:
    """RFC 6455 header of an unmasked, final, text frame of `length` payload bytes."""
    if length < 126:
        return struct.pack("!BB", 0x81, length)
    if length <= 0xFFFF:
        return struct.pack("!BBH", 0x81, 126, length)
    return struct.pack("!BBQ", 0x81, 127, length)


def apply(variants: list[str]) -> None:
    import tornado.iostream
    import tornado.websocket

    from handlers import pusher as hp

    from realtime.pusher import transport
    from realtime.pusher import protocol

    if "tornadows" in variants:
        transport.RAW_SOCKETS = False

    if "metrics" in variants or "scrape" in variants:
        import wolive
        real_load, real_make = wolive.load_config, wolive.make_app

        def load_config(path: Any, overrides: Any = None) -> Any:
            return real_load(path, {**(overrides or {}), "metrics.enabled": True})

        async def make_app(cfg: Any) -> Any:
            server = await real_make(cfg)
            metrics = server.services.metrics
            if "scrape" in variants:
                from prometheus_client import generate_latest

                async def scrape_forever() -> None:
                    while True:
                        await asyncio.sleep(1.0)
                        await metrics.refresh_database_gauges()
                        generate_latest(metrics.registry)

                server.scraper = asyncio.get_running_loop().create_task(scrape_forever())
            return server

        wolive.load_config = load_config  # type: ignore[assignment]
        wolive.make_app = make_app  # type: ignore[assignment]

    if "tracemalloc" in variants:
        import signal
        import tracemalloc
        tracemalloc.start(4)
        count = [0]

        def dump(signum: int, frame: Any) -> None:
            count[0] += 1
            tracemalloc.take_snapshot().dump(
                f"{os.environ.get('WOLIVE_BENCH_SNAPSHOT', '/tmp/wolive-snap')}.{count[0]}")

        signal.signal(signal.SIGUSR1, dump)

    if "nogc" in variants:
        import wolive
        wolive.setup_gc = lambda: (0, gc.get_threshold())  # type: ignore[assignment]

    if "cewindow" in variants:
        import contextlib
        for cls in (transport.WSConnection, transport.RawWebSocket):
            cls.relaying = (  # type: ignore[method-assign]
                lambda self: contextlib.nullcontext())

    if "stmtcount" in variants:
        count_statements(os.environ.get("WOLIVE_BENCH_COUNTS", "/tmp/wolive-counts.json"))

    if "backlog" in variants:
        import functools

        import tornado.netutil
        tornado.netutil.bind_sockets = functools.partial(  # type: ignore[assignment]
            tornado.netutil.bind_sockets, backlog=1024)

    if "uvloop" in variants:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    if "orjson" in variants:
        import json as _json

        import orjson
        import tornado.web

        def encode(event: str, data: Any = None, channel: Any = None,
                   user_id: Any = None, raw_data: bool = False) -> str:
            frame: dict[str, Any] = {"event": event}
            if channel is not None:
                frame["channel"] = channel
            if data is not None:
                frame["data"] = data if (raw_data or isinstance(data, str)) else \
                    orjson.dumps(data).decode()
            if user_id is not None:
                frame["user_id"] = user_id
            return orjson.dumps(frame).decode()

        protocol.encode = encode

        def json_body(self: Any) -> dict[str, Any]:
            try:
                body = orjson.loads(self.request.body or b"{}")
            except _json.JSONDecodeError:
                raise tornado.web.HTTPError(400, log_message="body is not JSON") from None
            if not isinstance(body, dict):
                raise tornado.web.HTTPError(400, log_message="body must be a JSON object")
            return body

        hp.PusherApiHandler.json_body = json_body  # type: ignore[method-assign]

    if "nagle" in variants:
        real_open = hp.PusherSocket.open

        async def open_nagle(self: Any, *args: Any, **kwargs: Any) -> None:
            await real_open(self, *args, **kwargs)
            self.set_nodelay(False)

        hp.PusherSocket.open = open_nagle  # type: ignore[method-assign]

    if "nowrap" in variants:
        def send_nowrap(self: Any, frame: str) -> bool:
            if not self.open:
                return False
            ws = self.handler.ws_connection
            if ws is None or ws.is_closing():
                self.open = False
                return False
            try:
                ws._write_frame(True, 0x1, frame.encode())
            except tornado.iostream.StreamClosedError:
                self.open = False
                return False
            return True

        transport.WSConnection.send = send_nowrap  # type: ignore[method-assign]

    if "prepared" in variants or "direct" in variants:
        direct = "direct" in variants
        plain_stream = tornado.iostream.IOStream  # not SSLIOStream: it has its own state

        def prepare_frame(frame: str) -> bytes:
            # PusherSocket never negotiates permessage-deflate (get_compression_options
            # is not overridden), so the frame needs no RSV1 bit and no compression.
            payload = frame.encode()
            return _ws_header(len(payload)) + payload

        def send_prepared(self: Any, wire: bytes) -> bool:
            if not self.open:
                return False
            ws = self.handler.ws_connection
            if ws is None or ws.is_closing():
                self.open = False
                return False
            stream = ws.stream
            try:
                # Public IOStream API only: writing() is "anything still queued?".
                if direct and not stream.writing() and type(stream) is plain_stream:
                    try:
                        n = stream.socket.send(wire)
                    except BlockingIOError:
                        n = 0
                    except OSError:  # reset or broken pipe: the read side will close it
                        self.open = False
                        return False
                    if n == len(wire):
                        return True
                    wire = wire[n:]  # a partial send: IOStream queues the rest, in order
                stream.write(wire)
            except tornado.iostream.StreamClosedError:
                self.open = False
                return False
            return True

        transport.WSConnection.prepare_frame = staticmethod(prepare_frame)  # type: ignore
        transport.WSConnection.send_prepared = send_prepared  # type: ignore[attr-defined]

    if "lean" in variants:
        base = transport.WSConnection

        class LeanConnection(base):  # type: ignore[valid-type, misc]
            """`PusherSocket.open` builds `WSConnection(...)` through the module global."""

            __slots__ = ("_stream", "_sock")

            @staticmethod
            def prepare_frame(frame: str) -> bytes:
                payload = frame.encode()
                return _ws_header(len(payload)) + payload

            def send_prepared(self: Any, wire: bytes) -> bool:
                if not self.open:
                    return False
                try:
                    stream = self._stream
                except AttributeError:
                    ws = self.handler.ws_connection
                    if ws is None or ws.is_closing():
                        self.open = False
                        return False
                    stream = self._stream = ws.stream
                    self._sock = stream.socket if type(stream) is \
                        tornado.iostream.IOStream else None
                sock = self._sock
                if sock is not None and not stream.writing():
                    try:
                        n = sock.send(wire)
                    except BlockingIOError:
                        n = 0
                    except OSError:
                        self.open = False
                        return False
                    if n == len(wire):
                        return True
                    wire = wire[n:]
                try:
                    stream.write(wire)
                except tornado.iostream.StreamClosedError:
                    self.open = False
                    return False
                return True

            def close(self: Any, code: int, reason: str) -> None:
                base.close(self, code, reason)

        transport.WSConnection = LeanConnection  # type: ignore[misc]


    if "nocork" in variants:
        def send_at_once(self: Any, wire: bytes) -> bool:
            if not self.open:
                return False
            self.outbox.flush_one(self)
            self.write_now(wire)
            return True

        transport.WSConnection.send_prepared = send_at_once  # type: ignore[method-assign]

    if "noreader" in variants:
        import tornado.httpserver

        from handlers import http_server
        http_server.HTTPServer.handle_stream = (  # type: ignore[method-assign]
            tornado.httpserver.HTTPServer.handle_stream)

    forced = [float(v[len("window"):]) / 1000 for v in variants if v.startswith("window")]
    if "nowindow" in variants:
        forced.append(0.0)
    if forced:
        real_init = transport.Outbox.__init__

        def fixed_window(self: Any, window: float = 0.0) -> None:
            real_init(self, forced[-1])

        transport.Outbox.__init__ = fixed_window  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", default=[],
                        help="one of %s, or windowN" % ", ".join(VARIANTS))
    parser.add_argument("--tree", default=ROOT, help="the wolive source tree to run")
    args, rest = parser.parse_known_args()
    for v in args.variant:
        if v not in VARIANTS and not re.fullmatch(r"window\d+(\.\d+)?", v):
            parser.error(f"unknown variant {v!r}")
    sys.path.insert(0, os.path.abspath(args.tree))
    apply(args.variant)
    import wolive
    if "quiet" in args.variant:
        real_basic_config = logging.basicConfig

        def basic_config(**kw: Any) -> None:
            real_basic_config(**kw)
            logging.getLogger("tornado.access").setLevel(logging.WARNING)

        logging.basicConfig = basic_config  # type: ignore[assignment]
    return wolive.main(rest)


if __name__ == "__main__":
    sys.exit(main())
