"""The two hot paths between nodes, each on one Redis connection of its own: the ordered
writer of publishes and cache writes (`BusWriter`) and the bus subscriber (`BusReader`).

Both are asyncio protocols parsing with hiredis (the parser redis-py itself uses when
installed) and framing commands with `hiredis.pack_command`, so a reply or a bus message is
handled in the event loop's read callback: no task is woken per command, which is where
redis-py's asyncio client spends most of its time per round trip. Everything else (scripts,
queries, the heartbeat) goes through redis-py. Connections are opened from a redis-py URL
(`redis://`, `rediss://`, `unix://`, with user, password and database), with its AUTH and
SELECT.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError, ResponseError, \
    TimeoutError as RedisTimeoutError

log = logging.getLogger("wolive.realtime")

#: Seconds to wait for a connection and its AUTH / SELECT.
CONNECT_TIMEOUT_S = 5.0


class _Resp(asyncio.Protocol):
    """A Redis connection: replies go to `on_reply` as they are parsed (error replies as
    `hiredis.ReplyError` instances); `lost` resolves when the connection closes."""

    def __init__(self) -> None:
        self._parser = hiredis.Reader(encoding="utf-8")
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[Exception | None] = \
            asyncio.get_running_loop().create_future()
        self._pending: deque[asyncio.Future[Any]] = deque()
        self.on_reply: Callable[[Any], None] = self._answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed(data)
        while True:
            reply = self._parser.gets()
            if reply is False:
                return
            self.on_reply(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        for waiter in self._pending:
            if not waiter.done():
                waiter.set_exception(RedisConnectionError("connection to Redis lost"))
        self._pending.clear()
        if not self.lost.done():
            self.lost.set_result(exc)

    def send(self, commands: list[tuple[Any, ...]]) -> None:
        """Write `commands` in one send. Raises `redis.exceptions.ConnectionError` when the
        connection is closed."""
        if self.transport is None or self.transport.is_closing():
            raise RedisConnectionError("connection to Redis lost")
        self.transport.write(b"".join(hiredis.pack_command(c) for c in commands))

    def _answer(self, reply: Any) -> None:
        if self._pending:
            waiter = self._pending.popleft()
            if not waiter.done():
                waiter.set_result(reply)

    async def call(self, *command: Any) -> Any:
        """Send one command and wait for its reply (the handshake's). Raises
        `redis.exceptions.ResponseError` for an error reply."""
        waiter = asyncio.get_running_loop().create_future()
        self._pending.append(waiter)
        self.send([command])
        reply = await waiter
        if isinstance(reply, hiredis.ReplyError):
            raise ResponseError(str(reply))
        return reply

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _tls(options: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def _open(url: str) -> _Resp:
    """A connection to the Redis at `url`, authenticated and on its database. Raises
    `redis.exceptions.ConnectionError` when it cannot be opened,
    `redis.exceptions.ResponseError` when AUTH or SELECT is refused."""
    options: dict[str, Any] = dict(parse_url(url))
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            if "path" in options:
                _, protocol = await loop.create_unix_connection(_Resp, options["path"])
            else:
                tls = _tls(options) if options.get("connection_class") is SSLConnection \
                    else None
                _, protocol = await loop.create_connection(
                    _Resp, options.get("host", "localhost"), options.get("port", 6379),
                    ssl=tls)
            if options.get("password") is not None:
                if options.get("username"):
                    await protocol.call("AUTH", options["username"], options["password"])
                else:
                    await protocol.call("AUTH", options["password"])
            if options.get("db"):
                await protocol.call("SELECT", options["db"])
    except TimeoutError:
        raise RedisConnectionError(f"Redis did not answer within {CONNECT_TIMEOUT_S} s") \
            from None
    except OSError as exc:
        raise RedisConnectionError(f"Redis cannot be reached: {exc}") from exc
    return protocol


class BusWriter:
    """Sends commands in the order they were queued, a loop turn's worth in one send, and
    counts their replies: `written` is how many of the `queued` have been answered or
    given up. Commands queued while the connection is down are sent once it is opened again
    (tried at the next `queue` after `retry_s`); those that were in flight when it closed,
    or queued when it could not be opened, are given up and logged (`failed_since`)."""

    def __init__(self, url: str, retry_s: float = 0.5) -> None:
        self.url = url
        self.retry_s = retry_s
        self.queued = 0
        self.written = 0
        self._out: list[tuple[Any, ...]] = []
        self._scheduled = False
        self._conn: _Resp | None = None
        self._opening: asyncio.Task[None] | None = None
        self._next_try = 0.0
        # Batches sent and not answered yet: [replies still due, `queued` after the batch].
        self._inflight: deque[list[int]] = deque()
        # Ranges (first, last] of commands given up, the latest last.
        self._failed: deque[tuple[int, int]] = deque(maxlen=64)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._closed = False

    async def open(self) -> None:
        """Open the connection. Raises as `_open` does."""
        self._attach(await _open(self.url))

    def _attach(self, conn: _Resp) -> None:
        if self._inflight:  # sent on a connection that closed before its replies came
            last = self._inflight[-1][1]
            self._inflight.clear()
            self._give_up(self.written, last, "the connection to Redis closed")
        self._conn = conn
        conn.on_reply = self._reply
        conn.lost.add_done_callback(lambda _done: self._lost(conn))

    def queue(self, *command: Any) -> None:
        """Queue one command (str / int / float / bytes arguments); sent at the end of this
        loop turn."""
        self._out.append(command)
        self.queued += 1
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self._out or self._closed:
            return
        conn = self._conn
        if conn is None or conn.transport is None or conn.transport.is_closing():
            self._reopen()
            return
        batch, self._out = self._out, []
        self._inflight.append([len(batch), self.queued - len(self._out)])
        conn.send(batch)

    def _reply(self, reply: Any) -> None:
        if not self._inflight:
            return
        head = self._inflight[0]
        if isinstance(reply, hiredis.ReplyError):
            # Refused (BUSY, LOADING, OOM, ...): that command was not done, as if given up.
            command = head[1] - head[0] + 1
            log.warning("redis bus: a publish or cache write was refused (%s)", reply)
            self._failed.append((command - 1, command))
        head[0] -= 1
        if head[0] == 0:
            self._inflight.popleft()
            self._advance(head[1])

    def _advance(self, upto: int) -> None:
        self.written = max(self.written, upto)
        if self._waiters:
            due = [w for w in self._waiters if w[0] <= self.written]
            self._waiters = [w for w in self._waiters if w[0] > self.written]
            for _, waiter in due:
                if not waiter.done():
                    waiter.set_result(None)

    def _give_up(self, first: int, last: int, why: str) -> None:
        if last > first:
            log.warning("redis bus: %d publishes or cache writes were not sent (%s)",
                        last - first, why)
            self._failed.append((first, last))
            self._advance(last)

    def _lost(self, conn: _Resp) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        if self._inflight:
            last = self._inflight[-1][1]
            self._inflight.clear()
            self._give_up(self.written, last, "the connection to Redis closed")
        if self._out and not self._closed:
            self._reopen()

    def _reopen(self) -> None:
        if self._opening is not None or self._closed:
            return
        self._opening = asyncio.get_running_loop().create_task(self._open_again())

    async def _open_again(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(max(0.0, self._next_try - loop.time()))
            self._next_try = loop.time() + self.retry_s
            try:
                self._attach(await _open(self.url))
            except (RedisConnectionError, ResponseError) as exc:
                first = self.queued - len(self._out)
                self._out = []
                self._give_up(first, self.queued, f"Redis cannot be reached: {exc}")
                return
        finally:
            self._opening = None
        self._flush()

    def failed_since(self, mark: int) -> bool:
        """Whether a command queued after `mark` (a `queued` value) was given up or
        refused."""
        return any(last > mark for _, last in self._failed)

    async def written_through(self, target: int, timeout: float | None = None) -> None:
        """Wait until the first `target` commands have been answered or given up. Raises
        `redis.exceptions.TimeoutError` after `timeout` seconds (Redis stalled: paused, or
        the network silently gone); the commands may still be done later."""
        if self.written >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        try:
            await asyncio.wait_for(waiter, timeout)
        except asyncio.TimeoutError:
            raise RedisTimeoutError(f"Redis did not answer within {timeout} s") from None

    def close(self) -> None:
        """Close the connection; what is still queued is left in `pending()`."""
        self._closed = True
        if self._opening is not None:
            self._opening.cancel()
        if self._conn is not None:
            self._conn.close()

    def pending(self) -> list[tuple[Any, ...]]:
        """Take the commands queued and not sent (at close)."""
        out, self._out = self._out, []
        return out


class BusReader:
    """Subscribed to some fixed channels and to those `follow` adds; each message's data
    goes to `on_message` (str), in the order Redis sent them, from the loop's read callback.
    Subscribes and unsubscribes made in one loop turn leave in one send, in order. On
    `open` (the first and after a lost connection) it subscribes to the fixed channels and
    to every name `held()` gives."""

    def __init__(self, url: str, channels: list[str], on_message: Callable[[str], None],
                 held: Callable[[], Iterable[str]] = tuple) -> None:
        self.url = url
        self.channels = list(channels)
        self.on_message = on_message
        self.held = held
        self._conn: _Resp | None = None
        self._latest: _Resp | None = None  # the last connection opened (`wait_closed`)
        # Followed names: the waiter while Redis has not confirmed the subscription, then
        # None (a confirmed channel keeps no object of its own).
        self._following: dict[str, asyncio.Future[None] | None] = {}
        # Subscriptions sent and not confirmed yet, in the order they were sent.
        self._confirming: deque[tuple[str, asyncio.Future[None]]] = deque()
        self._out: list[tuple[str, ...]] = []
        self._scheduled = False

    async def open(self) -> None:
        """Connect and subscribe; returns once Redis confirmed every subscription. Raises
        as `_open` does, and `redis.exceptions.ConnectionError` when the connection closes
        before, `redis.exceptions.TimeoutError` when Redis does not confirm within
        `CONNECT_TIMEOUT_S`."""
        conn = await _open(self.url)
        self._conn = self._latest = conn
        conn.on_reply = self._reply
        conn.lost.add_done_callback(lambda _done: self._lost(conn))
        self._following = {}
        waits = [self._follow_on(conn, name) for name in [*self.channels, *self.held()]]
        self._flush()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await asyncio.gather(*(w for w in waits if w is not None))
        except TimeoutError:
            self._lost(conn)  # at once: no follow() may be handed a cancelled waiter
            conn.close()
            raise RedisTimeoutError("Redis did not confirm the bus subscriptions") from None
        except BaseException:
            self._lost(conn)
            conn.close()
            raise

    def follow(self, name: str) -> asyncio.Future[None] | None:
        """Subscribe to `name` too: None when already confirmed, else a future done once
        Redis confirmed it (failing with `redis.exceptions.ConnectionError` if the
        connection closes first). Raises `redis.exceptions.ConnectionError` when not
        connected."""
        if name in self._following:
            return self._following[name]
        conn = self._conn
        if conn is None or conn.transport is None or conn.transport.is_closing():
            raise RedisConnectionError("not listening to the bus: connection to Redis lost")
        return self._follow_on(conn, name)

    def _follow_on(self, conn: _Resp, name: str) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter.add_done_callback(_retrieve)
        self._following[name] = waiter
        self._confirming.append((name, waiter))
        self._send(("SUBSCRIBE", name))
        return waiter

    def unfollow(self, name: str) -> None:
        """Stop listening to `name` (a `follow`ed one; others are left as they are)."""
        if name in self._following:
            del self._following[name]
            if self._conn is not None:
                self._send(("UNSUBSCRIBE", name))

    def following(self) -> set[str]:
        """The names followed now (the fixed channels included)."""
        return set(self._following)

    def _send(self, command: tuple[str, ...]) -> None:
        self._out.append(command)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        out, self._out = self._out, []
        conn = self._conn
        if out and conn is not None and conn.transport is not None \
                and not conn.transport.is_closing():
            conn.send(out)

    def _reply(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3:
            kind = reply[0]
            if kind == "message":
                try:
                    self.on_message(reply[2])
                except Exception:  # one bad message must not close the bus
                    log.exception("redis bus: a message could not be delivered")
            elif kind == "subscribe":
                for i, (name, waiter) in enumerate(self._confirming):
                    if name == reply[1]:
                        del self._confirming[i]
                        if self._following.get(name) is waiter:
                            self._following[name] = None
                        if not waiter.done():
                            waiter.set_result(None)
                        break
        elif isinstance(reply, hiredis.ReplyError):
            # A refused SUBSCRIBE (an ACL without the channel): its waiter fails.
            log.warning("redis bus: a subscription was refused (%s)", reply)
            if self._confirming:
                name, waiter = self._confirming.popleft()
                if self._following.get(name) is waiter:
                    del self._following[name]
                if not waiter.done():
                    waiter.set_exception(ResponseError(str(reply)))

    def _lost(self, conn: _Resp) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._following = {}
        self._out = []
        while self._confirming:
            _, waiter = self._confirming.popleft()
            if not waiter.done():
                waiter.set_exception(RedisConnectionError("connection to Redis lost"))

    async def wait_closed(self) -> Exception | None:
        """Wait until the connection closes; returns why (None when closed by `close`)."""
        assert self._latest is not None
        # Shielded: a waiter cancelled (the node closing) must not mark the connection lost.
        return await asyncio.shield(self._latest.lost)

    def close(self) -> None:
        if self._latest is not None:
            self._latest.close()


def _retrieve(done: asyncio.Future[None]) -> None:
    """Marks a waiter's exception as seen: a subscriber that left no longer awaits it."""
    if not done.cancelled():
        done.exception()
