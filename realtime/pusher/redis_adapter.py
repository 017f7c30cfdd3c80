"""Channel membership and fan-out for several nodes, on Redis (`RedisAdapter`).

Each node delivers to its own sockets as `LocalAdapter` does, and hands every publish to the
other nodes over Redis pub/sub: a channel's publishes go to `{prefix}:bus:{app}:{channel}`,
which a node listens to while its sockets hold that channel (the subscription confirmed
before a socket is told it is in), so a node reads only what its sockets get; notices to
every node (`broadcast`) go to `{prefix}:bus`, and the markers of `turn` to the node's own
`{prefix}:mark:{instance}` (Redis pub/sub ignores the database number, so the prefix is
what keeps two deployments on one Redis apart). What must
be the same on every node lives in Redis under `{prefix}:`, and each transition is decided
by exactly one Lua script run, so one node, and only one, hears of it:

- `ch:{app}:{channel}` hash socket_id → node: a channel's sockets. The subscribe that makes
  it non-empty reports "occupied", the unsubscribe that empties it "vacated"
  (`Adapter.add_occupancy_listener` is told on that node only). `chans:{app}`: the set of
  occupied channels.
- `pm:`/`pu:`/`pi:`/`po:{app}:{channel}`: a presence channel's socket → user, user → sockets,
  user → user_info (JSON), user → joining order. `add_member` is True on the node where a
  user's first socket (cluster-wide) joined, `remove_member` gives the user id where its last
  one left.
- `cache:{app}:{channel}`: a cache channel's last event, expiring with Redis' own clock.
- `node:{id}:subs`: the memberships held by a node's sockets, for removing them when the
  node is gone. `node:{id}:journal`: the webhook events the node has not delivered yet
  (`journal_add`), handed to the node that removes it (`Adapter.journal_listeners`).
- `nodes`: the registered node numbers; `node:{id}:alive` expires `NODE_TTL_S` after the
  node's last heartbeat (every `HEARTBEAT_S`). Every node looks for registered nodes whose
  key expired; the one that wins `node:{id}:reaping` removes the dead node's memberships
  with the same scripts, so each member_removed and vacated is decided once, and told where
  it was decided. A node that finds its own key gone (taken for dead) or cannot reach Redis
  for `LOST_AFTER_S` closes its sockets with a reconnect code (`Adapter.lost_listeners`).

Publishes, cache writes and journal entries leave in the order they were made, on one
connection of their own (`redis_bus.BusWriter`); `publish` and `cache_put` never wait for
Redis, and `flushed(since)` tells a caller that must know (the HTTP API's publish) whether
they reached it. The other nodes' publishes come in on another (`redis_bus.BusReader`).

`turn(key)` orders the publishes of several nodes: `turn:{key}` is taken by a script that
also tells which node held it last; when that was another node, this one first waits for a
marker of its own to come back on its bus connection (Redis sends one connection's messages
in the order it took the publishes, whatever their channels, so the last holder's publishes
are delivered here first), and the key is given back by the writer after the turn's
publishes, so the next holder's publishes follow them everywhere.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError, RedisError, \
    TimeoutError as RedisTimeoutError

from .adapter import CachedEvent, Connection, LocalAdapter
from .redis_bus import BusReader, BusWriter

log = logging.getLogger("wolive.realtime")

#: Seconds between a node's heartbeats, after which it also looks for dead nodes.
HEARTBEAT_S = 1.5
#: Seconds without a heartbeat after which a node counts as dead (its memberships are
#: removed by the survivors within about NODE_TTL_S + HEARTBEAT_S).
NODE_TTL_S = 4.5
#: Seconds without reaching Redis after which a node closes its sockets.
LOST_AFTER_S = 4.0
#: How long a vacated / member_removed stays held in Redis at most (ms): far past the
#: webhooks' 3 s, so the holder's `release_hold` decides, not the expiry.
HOLD_MS = 60_000
#: Connections to Redis a node opens at most for scripts and queries (more callers wait).
REDIS_CONNECTIONS = 64
#: How long a turn (`RedisAdapter.turn`) is kept at most (ms) if its holder dies holding it.
TURN_MS = 5_000

# KEYS: the node's alive key, nodes, node_seq. ARGV: node, ms. Claims the node number unless
# a live node has it; node_seq is raised to it, so numbers handed out later never collide
# with it (after Redis lost its data, running nodes claim their numbers again). 1 or 0.
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], ARGV[1])
  if tonumber(redis.call('GET', KEYS[3]) or '0') < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[3], ARGV[1])
  end
  return 1
end
return 0
"""

# KEYS: the node's alive key. ARGV: the process's token, ms. The heartbeat: 1 when the key
# is still this process's (kept alive), 0 when it expired or another node claimed it.
_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: turn. ARGV: token, ms. Takes the turn unless another holds it: returns nil (held),
# else what the key held ('free:{node}' after a turn of that node, or '' when none was had).
_TAKE_TURN = """
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 5) ~= 'free:' then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return v or ''
"""

# KEYS: turn. ARGV: token, node, ms. Gives the turn back, if still the holder's, as
# 'free:{node}' (so the next holder knows whose publishes it must see first).
_GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'free:' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: ch, chans, node subs, hold. Returns 0 (already), 1, 2 (occupied) or 3 (occupied,
# taking back a held vacated).
_SUBSCRIBE = """
local added = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if added == 0 then return 0 end
redis.call('SADD', KEYS[3], ARGV[4])
if redis.call('HLEN', KEYS[1]) == 1 then
  redis.call('SADD', KEYS[2], ARGV[3])
  if redis.call('DEL', KEYS[4]) == 1 then return 3 end
  return 2
end
return 1
"""

# KEYS: ch, chans, node subs, hold. ARGV: socket_id, channel, subs entry, hold ms.
_UNSUBSCRIBE = """
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if removed == 0 then return 0 end
redis.call('SREM', KEYS[3], ARGV[3])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[4], '1', 'PX', ARGV[4])
  return 2
end
return 1
"""

# KEYS: pm, pu, pi, po, seq, the user's hold. ARGV: socket_id, user_id, user_info JSON.
# Returns 0, 1 (the user's first socket) or 2 (first, taking back a held member_removed).
_ADD_MEMBER = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('HINCRBY', KEYS[2], ARGV[2], 1) == 1 then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[5]), ARGV[2])
  if redis.call('DEL', KEYS[6]) == 1 then return 2 end
  return 1
end
return 0
"""

# KEYS: pm, pu, pi, po. ARGV: socket_id, the holds' key prefix, hold ms. Returns the user
# id when it was its last socket (and holds its member_removed).
_REMOVE_MEMBER = """
local user = redis.call('HGET', KEYS[1], ARGV[1])
if not user then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HINCRBY', KEYS[2], user, -1) <= 0 then
  redis.call('HDEL', KEYS[2], user)
  redis.call('HDEL', KEYS[3], user)
  redis.call('ZREM', KEYS[4], user)
  redis.call('SET', ARGV[2] .. user, '1', 'PX', ARGV[3])
  return user
end
return false
"""

# KEYS: pi, po. Returns {user_id, info, user_id, info, ...} in joining order.
_MEMBERS = """
local users = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
for _, user in ipairs(users) do
  out[#out + 1] = user
  out[#out + 1] = redis.call('HGET', KEYS[1], user) or 'null'
end
return out
"""


# KEYS: the key's window. ARGV: limit, window ms, a unique member. Redis' own clock.
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RedisRateLimiter:
    """At most `limit` hits per key in any `window_s` seconds (sliding window) across every
    node: a sorted set per key under `{prefix}:rate:{name}:`, expiring with its window."""

    def __init__(self, adapter: RedisAdapter, name: str, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._adapter = adapter
        self._prefix = f"{adapter.prefix}:rate:{name}:"
        self._script = adapter.redis.register_script(_RATE)
        self._seq = 0

    async def allow(self, key: str) -> bool:
        """Count one hit for `key`; False (not counted) when it is over the limit."""
        self._seq += 1
        return bool(await self._script(
            keys=[self._prefix + key],
            args=[self.limit, max(1, int(self.window_s * 1000)),
                  f"{self._adapter.node}.{self._seq}"]))


class RedisAdapter(LocalAdapter):
    """Membership, presence, cache and fan-out shared by every node on `redis_url` that uses
    the same `prefix` (module docstring). Call `start()` before use (it gives the node its
    number when none is given) and `close()` at the end."""

    inline = False
    unavailable_errors = (RedisError, OSError)

    def __init__(self, redis_url: str, prefix: str, node: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock)
        self.prefix = prefix
        #: This node's number among the nodes of `prefix` (digits); given, or taken from
        #: Redis by `start` (`INCR {prefix}:node_seq`, so never one another node has).
        self.node = node
        # A burst (every client of a restarted node reconnecting at once) waits for one of
        # the pool's connections instead of being refused ("Too many connections").
        self.redis = aioredis.Redis.from_pool(aioredis.BlockingConnectionPool.from_url(
            redis_url, decode_responses=True, max_connections=REDIS_CONNECTIONS,
            timeout=LOST_AFTER_S))
        self._lua_subscribe = self.redis.register_script(_SUBSCRIBE)
        self._lua_unsubscribe = self.redis.register_script(_UNSUBSCRIBE)
        self._lua_add_member = self.redis.register_script(_ADD_MEMBER)
        self._lua_remove_member = self.redis.register_script(_REMOVE_MEMBER)
        self._lua_members = self.redis.register_script(_MEMBERS)
        self._lua_take_turn = self.redis.register_script(_TAKE_TURN)
        self._lua_claim = self.redis.register_script(_CLAIM)
        self._lua_refresh = self.redis.register_script(_REFRESH)
        #: This process's mark in its node's alive key (told apart from a node given the
        #: same number after Redis lost its data).
        self._instance = uuid.uuid4().hex
        #: Bus markers this node waits to see come back (`_caught_up`), by id.
        self._markers: dict[str, asyncio.Future[None]] = {}
        self._journaled = 0  # journal tokens given so far
        #: The notices' bus channel (every node listens); a channel's publishes go to
        #: `_channel_bus` (the nodes holding sockets on it listen), markers to `_markers_bus`.
        self._bus = f"{prefix}:bus"
        self._markers_bus = f"{prefix}:mark:{self._instance}"
        # Publishes, cache writes and journal entries leave in order by one connection;
        # the other nodes' publishes come in by another (`redis_bus`).
        self._writer = BusWriter(redis_url)
        self._reader = BusReader(redis_url, [self._bus, self._markers_bus], self._on_bus,
                                 held=self._held_buses)
        self._tasks: list[asyncio.Task[None]] = []
        #: Whether this node hears the other nodes' publishes now (False from losing its
        #: bus connection until it listens again).
        self.listening = False
        self._last_ok = time.monotonic()
        self._lost = False
        self._member_comebacks: set[tuple[str, str, str]] = set()
        #: Whether Redis may still hold memberships of sockets gone here (a leave failed,
        #: or the bus was lost): `_reconcile` runs at the next heartbeat that reaches Redis.
        self._stale = False

    def _node_key(self, node: str, what: str) -> str:
        return f"{self.prefix}:node:{node}:{what}"

    # ---- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, listen to the other nodes' publishes and start the writer. Raises
        `redis.exceptions.ConnectionError` when Redis does not answer."""
        await self.redis.ping()
        await self._reader.open()
        self.listening = True
        await self._writer.open()
        await self._register()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._heartbeat())]

    async def _claim(self, node: str) -> bool:
        return bool(await self._lua_claim(
            keys=[self._node_key(node, "alive"), f"{self.prefix}:nodes",
                  f"{self.prefix}:node_seq"],
            args=[node, int(NODE_TTL_S * 1000), self._instance]))

    async def _register(self) -> None:
        """Claim this node's number (a new one from `node_seq` when it has none, or when a
        live node holds it: after Redis lost its data, a node started meanwhile may have
        been given it; this node's sockets were closed then, so it may change)."""
        if self.node is not None and await self._claim(str(self.node)):
            return
        had = self.node
        while True:
            node = str(await self.redis.incr(f"{self.prefix}:node_seq"))
            if await self._claim(node):
                break
        self.node = node
        if had is not None:
            log.warning("cluster: node %s's number was taken by another node; now node %s",
                        had, node)

    async def live_nodes(self) -> list[str]:
        """The registered nodes whose heartbeat has not expired, this one included."""
        held: set[Any] = await self.redis.smembers(  # type: ignore[misc]
            f"{self.prefix}:nodes")
        nodes = sorted(map(str, held), key=int)
        alive = await self.redis.exists(*[self._node_key(n, "alive") for n in nodes]) \
            if nodes else 0
        if alive == len(nodes):
            return list(nodes)
        return [n for n in nodes if await self.redis.exists(self._node_key(n, "alive"))]

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                kept = await self._lua_refresh(
                    keys=[self._node_key(str(self.node), "alive")],
                    args=[self._instance, int(NODE_TTL_S * 1000)])
                if not kept:
                    # Taken for dead (a long stall), or Redis lost its data (and another
                    # node may have been given this number): what Redis held of this node's
                    # sockets is gone, so they must connect again.
                    log.warning("cluster: node %s was taken for dead; closing its sockets",
                                self.node)
                    self._emit_lost()
                    await self._register()
                self._last_ok = time.monotonic()
                if self._lost:
                    log.warning("cluster: node %s reaches Redis again", self.node)
                    self._lost = False
                if self._stale:
                    await self._reconcile()
                await self.reap()
            except RedisError as exc:
                if not self._lost and time.monotonic() - self._last_ok > LOST_AFTER_S:
                    log.error("cluster: node %s cannot reach Redis (%s); closing its "
                              "sockets", self.node, exc)
                    self._lost = True
                    self._emit_lost()

    async def reap(self) -> list[str]:
        """Remove the memberships of every registered node whose heartbeat expired (those
        this node wins the right to); returns the nodes reaped."""
        reaped = []
        nodes: set[Any] = await self.redis.smembers(  # type: ignore[misc]
            f"{self.prefix}:nodes")
        for node in map(str, nodes):
            if node == str(self.node) or \
                    await self.redis.exists(self._node_key(node, "alive")):
                continue
            if not await self.redis.set(self._node_key(node, "reaping"), str(self.node),
                                        nx=True, px=30_000):
                continue
            await self._remove_node(node)
            reaped.append(node)
        return reaped

    async def _reconcile(self) -> None:
        """Remove from Redis the memberships of this node's sockets that are gone here (their
        leaves failed while Redis was out of reach), with the member_removed and vacated
        that follow, decided as every leave is. Raises `RedisError` (tried again later)."""
        self._stale = False
        subs_key = self._node_key(str(self.node), "subs")
        try:
            entries: set[str] = await self.redis.smembers(  # type: ignore[misc,assignment]
                subs_key)
            gone = []
            for raw in entries:
                app_id, channel, socket_id = json.loads(raw)
                if socket_id not in self._apps.get(app_id, {}).get(channel, ()):
                    gone.append(raw)
            if gone:
                log.warning("cluster: node %s removes %d subscriptions of its sockets that "
                            "left while Redis was out of reach", self.node, len(gone))
                await self._remove_entries(subs_key, gone)
        except BaseException:
            self._stale = True
            raise

    async def _remove_entries(self, subs_key: str, entries: Any) -> None:
        """Remove the memberships `entries` (members of `subs_key`) from Redis, telling the
        member_removed and vacated they decide."""
        for raw in entries:
            app_id, channel, socket_id = json.loads(raw)
            if channel.startswith("presence-"):
                gone = await self._lua_remove_member(
                    keys=self._presence_keys(app_id, channel),
                    args=[socket_id, self._member_hold_prefix(app_id, channel), HOLD_MS])
                if gone:
                    self._emit_member_gone(app_id, channel, str(gone))
            decided = await self._lua_unsubscribe(
                keys=[self._key("ch", app_id, channel), f"{self.prefix}:chans:{app_id}",
                      subs_key, self._key("hold:c", app_id, channel)],
                args=[socket_id, channel, raw, HOLD_MS])
            if decided == 2:
                self._emit(app_id, channel, False)

    async def _remove_node(self, node: str) -> None:
        subs_key = self._node_key(node, "subs")
        entries = await self.redis.smembers(subs_key)  # type: ignore[misc]
        log.warning("cluster: node %s is gone; removing its %d subscriptions", node,
                    len(entries))
        await self._remove_entries(subs_key, entries)
        journal_key = self._node_key(node, "journal")
        left: dict[str, str] = await self.redis.hgetall(  # type: ignore[misc, assignment]
            journal_key)
        await self.redis.delete(journal_key)
        if left:
            log.warning("cluster: node %s left %d webhook event(s) undelivered; sending them",
                        node, len(left))
        for token in sorted(left, key=int):
            app_id, event = json.loads(left[token])
            for listener in self.journal_listeners:
                try:
                    listener(app_id, event)
                except Exception:
                    log.exception("journal listener failed")
        await self.redis.srem(f"{self.prefix}:nodes", node)  # type: ignore[misc]
        await self.redis.delete(subs_key, self._node_key(node, "reaping"))

    # ---- the webhook journal ------------------------------------------------------------

    def journal_add(self, app_id: str, event: dict[str, Any]) -> str | None:
        self._journaled += 1
        token = str(self._journaled)
        self._queue("HSET", self._node_key(str(self.node), "journal"), token,
                    json.dumps([app_id, event], ensure_ascii=False))
        return token

    def journal_remove(self, token: str) -> None:
        self._queue("HDEL", self._node_key(str(self.node), "journal"), token)

    async def close(self) -> None:
        """Send what is queued, remove what this node's sockets still hold (with the
        events that follow), leave the registry, stop listening and disconnect."""
        await self._settle()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self._remove_node(str(self.node))
            await self.redis.delete(self._node_key(str(self.node), "alive"))
            await self._settle()
            left = self._writer.pending()
            if left:
                pipe = self.redis.pipeline(transaction=False)
                for command in left:
                    pipe.execute_command(*command)
                await pipe.execute()
        except RedisError as exc:
            log.warning("cluster: node %s left without cleaning up (%s); the others will",
                        self.node, exc)
        self._writer.close()
        self._reader.close()
        try:  # a connection stuck on a silent peer must not hold up the node's exit
            await asyncio.wait_for(self.redis.aclose(), LOST_AFTER_S)
        except (asyncio.TimeoutError, RedisError, OSError) as exc:
            log.warning("cluster: node %s: closing its Redis connections: %r", self.node, exc)

    async def _settle(self) -> None:
        """`flushed`, for at most `LOST_AFTER_S` (Redis may be gone)."""
        try:
            await asyncio.wait_for(self.flushed(), LOST_AFTER_S)
        except (asyncio.TimeoutError, RedisError):
            pass

    def rate_limiter(self, name: str, limit: int, window_s: float) -> RedisRateLimiter:
        """A limiter counting for the cluster (`RedisRateLimiter`), named `name`."""
        return RedisRateLimiter(self, name, limit, window_s)

    # ---- the writer: publishes and cache writes, in order -------------------------------

    def _queue(self, *command: Any) -> None:
        self._writer.queue(*command)

    def sent_mark(self) -> int:
        return self._writer.queued

    def problem(self) -> str | None:
        if not self.listening:
            return "cluster: not listening to the other nodes (bus connection to Redis lost)"
        silent = time.monotonic() - self._last_ok
        if self._lost or silent > LOST_AFTER_S:
            return f"cluster: Redis has not answered for {silent:.0f} s"
        return None

    async def flushed(self, since: int | None = None) -> None:
        """Wait until every publish and cache write made so far has reached Redis (or was
        given up: the connection lost, or refused), for at most `LOST_AFTER_S`. With `since`
        (a `sent_mark()`), raises `redis.exceptions.ConnectionError` when one made after it
        was given up or refused, `redis.exceptions.TimeoutError` when Redis did not answer
        in time (a caller answering for them says 503: unknown, send again). Without, it
        returns after the wait whatever happened (what was not sent is logged; the nodes
        that miss it close their sockets, whose clients catch up)."""
        try:
            await self._writer.written_through(self._writer.queued, LOST_AFTER_S)
        except RedisTimeoutError:
            if since is not None:
                raise
            log.warning("cluster: node %s: Redis did not take its publishes within %s s",
                        self.node, LOST_AFTER_S)
            return
        if since is not None and self._writer.failed_since(since):
            raise RedisConnectionError("publishes were not sent: Redis refused them or "
                                       "cannot be reached")

    async def _read(self) -> None:
        """Deliver the other nodes' publishes; after losing Redis, listen again once it
        answers (what was published meanwhile is gone: the sockets were closed with 4200 and
        their clients catch up)."""
        while True:
            why = await self._reader.wait_closed()
            # What the other nodes published from now on until listening again is lost to
            # this node's sockets: they are closed with 4200 (their clients reconnect and
            # catch up), and again those that came meanwhile once it listens again.
            log.warning("cluster: node %s lost the bus (%s); closing its sockets, "
                        "listening again", self.node, why or "closed")
            self.listening = False
            self._emit_lost()
            pause = 0.0
            while True:
                await asyncio.sleep(pause)
                try:
                    await self._reader.open()
                    break
                except (RedisError, OSError):
                    pause = 0.5
            self._emit_lost()
            self._stale = True  # the sockets closed meanwhile may have failed to leave
            self.listening = True
            log.warning("cluster: node %s listens to the bus again", self.node)
            try:
                await self._reconcile()
            except RedisError as exc:  # the heartbeat tries again
                log.warning("cluster: node %s could not settle its sockets' leaves yet (%s)",
                            self.node, exc)

    def _channel_bus(self, app_id: str, channel: str) -> str:
        """The Redis channel carrying `channel`'s publishes (no ':' in a channel name)."""
        return f"{self.prefix}:bus:{app_id}:{channel}"

    def _held_buses(self) -> list[str]:
        """The channel buses this node must hear: those of the channels its sockets hold."""
        return [self._channel_bus(app_id, channel)
                for app_id, chans in self._apps.items() for channel in chans]

    def _on_bus(self, data: str) -> None:
        try:
            parts = json.loads(data)
            if len(parts) == 2:  # a marker: [node, id], for its node alone
                back = self._markers.get(parts[1]) if parts[0] == self.node else None
                if back is not None and not back.done():
                    back.set_result(None)
                return
            if len(parts) == 3:  # a notice: [node, kind, payload]
                if parts[0] != self.node:
                    self._notice(parts[1], parts[2])
                return
            node, app_id, channel, frame, except_socket_id = parts
        except (ValueError, TypeError):
            log.warning("redis adapter: a message on %s that is not ours", self._bus)
            return
        if node != self.node:
            LocalAdapter.publish(self, app_id, channel, frame, except_socket_id)

    # ---- fan-out ------------------------------------------------------------------------

    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: str | None = None) -> int:
        # Queued first, so the bus write leaves before this node's own socket writes and
        # the other nodes deliver meanwhile.
        self._queue("PUBLISH", self._channel_bus(app_id, channel), json.dumps(
            [self.node, app_id, channel, frame, except_socket_id], ensure_ascii=False))
        return super().publish(app_id, channel, frame, except_socket_id)

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """`Adapter.turn` for the cluster (module docstring); returns once the turn's
        publishes have reached Redis. Waits while another node holds the turn (at most
        about `TURN_MS`, when a holder died holding it); raises
        `redis.exceptions.RedisError` when Redis cannot be reached, or the turn or the bus
        marker did not come within `2 * TURN_MS`. A holder stopped for longer than
        `TURN_MS` (SIGSTOP, a swap storm) loses the turn and its later publishes may then
        arrive after the next holder's."""
        name = f"{self.prefix}:turn:{key}"
        token = f"{self.node}:{uuid.uuid4().hex}"
        deadline = time.monotonic() + 2 * TURN_MS / 1000
        pause = 0.001
        while True:
            before = await self._lua_take_turn(keys=[name], args=[token, TURN_MS])
            if before is not None:
                break
            if time.monotonic() > deadline:
                raise RedisTimeoutError(f"the turn {name} was held past {2 * TURN_MS} ms")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.02)
        try:
            if before != f"free:{self.node}":
                await self._caught_up(deadline)
            yield
        finally:
            # After the turn's publishes, by the same writer: the next holder's follow them.
            self._queue("EVAL", _GIVE_BACK, 1, name, token, str(self.node), TURN_MS)
            # And on Redis before the caller answers: what it acknowledges is on the bus,
            # even if this node is killed the next moment.
            await self.flushed()

    async def _caught_up(self, deadline: float) -> None:
        """Return once this node has delivered every bus message Redis had before now: a
        marker published now comes back after them."""
        marker = uuid.uuid4().hex
        back = self._markers[marker] = asyncio.get_running_loop().create_future()
        try:
            self._queue("PUBLISH", self._markers_bus, json.dumps([self.node, marker]))
            await asyncio.wait_for(back, max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise RedisTimeoutError("the bus marker did not come back") from None
        finally:
            self._markers.pop(marker, None)

    def broadcast(self, kind: str, payload: Any) -> None:
        self._queue("PUBLISH", self._bus, json.dumps([self.node, kind, payload],
                                                     ensure_ascii=False))

    # ---- membership ---------------------------------------------------------------------

    def _key(self, kind: str, app_id: str, channel: str) -> str:
        return f"{self.prefix}:{kind}:{app_id}:{channel}"

    async def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        members = self._apps.setdefault(app_id, {}).setdefault(channel, {})
        if conn.socket_id in members:
            return False
        members[conn.socket_id] = conn
        # Listening to the channel's bus (sent at once, confirmed while the script runs):
        # once the subscriber is told it is in, every publish to the channel reaches it.
        listening = self._reader.follow(self._channel_bus(app_id, channel))
        decided = await self._lua_subscribe(
            keys=[self._key("ch", app_id, channel), f"{self.prefix}:chans:{app_id}",
                  f"{self.prefix}:node:{self.node}:subs", self._key("hold:c", app_id, channel)],
            args=[conn.socket_id, str(self.node), channel,
                  json.dumps([app_id, channel, conn.socket_id])])
        if decided == 2:
            self._emit(app_id, channel, True)
        elif decided == 3:  # a vacated held (maybe on another node) is taken back
            self.emitting_comeback = True
            try:
                self._emit(app_id, channel, True)
            finally:
                self.emitting_comeback = False
        if listening is not None:
            # After the occupancy it decided is told (a failure here closes the socket,
            # whose unsubscribe then decides the vacated that pairs with it).
            try:
                await asyncio.wait_for(asyncio.shield(listening), LOST_AFTER_S)
            except asyncio.TimeoutError:
                raise RedisTimeoutError("Redis did not confirm a bus subscription") from None
        return True

    def _forget_local(self, app_id: str, channel: str, conn: Connection) -> bool | None:
        emptied = super()._forget_local(app_id, channel, conn)
        if emptied:  # no socket here holds it any more: its publishes need not come here
            self._reader.unfollow(self._channel_bus(app_id, channel))
        return emptied

    async def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        if self._forget_local(app_id, channel, conn) is None:
            return False
        try:
            decided = await self._lua_unsubscribe(
                keys=[self._key("ch", app_id, channel), f"{self.prefix}:chans:{app_id}",
                      f"{self.prefix}:node:{self.node}:subs",
                      self._key("hold:c", app_id, channel)],
                args=[conn.socket_id, channel, json.dumps([app_id, channel, conn.socket_id]),
                      HOLD_MS])
        except BaseException:
            self._stale = True  # Redis may still count it: `_reconcile` removes it later
            raise
        if decided == 2:
            self._emit(app_id, channel, False)
        return True

    async def subscription_count(self, app_id: str, channel: str) -> int:
        return int(await self.redis.hlen(self._key("ch", app_id, channel)))

    async def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        held: set[str] = await self.redis.smembers(  # type: ignore[misc,assignment]
            f"{self.prefix}:chans:{app_id}")
        names = sorted(n for n in held if n.startswith(prefix))
        if not names:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hlen(self._key("ch", app_id, name))
        counts = await pipe.execute()
        return {name: int(n) for name, n in zip(names, counts) if n}

    # ---- presence -----------------------------------------------------------------------

    def _presence_keys(self, app_id: str, channel: str) -> list[str]:
        return [self._key(kind, app_id, channel) for kind in ("pm", "pu", "pi", "po")]

    async def add_member(self, app_id: str, channel: str, socket_id: str, user_id: str,
                         user_info: Any) -> bool:
        first = await self._lua_add_member(
            keys=[*self._presence_keys(app_id, channel), self._key("pseq", app_id, channel),
                  self._member_hold_prefix(app_id, channel) + user_id],
            args=[socket_id, user_id, json.dumps(user_info, ensure_ascii=False)])
        if first == 2:
            self._member_comebacks.add((app_id, channel, user_id))
        return bool(first)

    def member_comeback(self, app_id: str, channel: str, user_id: str) -> bool:
        key = (app_id, channel, user_id)
        if key in self._member_comebacks:
            self._member_comebacks.discard(key)
            return True
        return False

    def _member_hold_prefix(self, app_id: str, channel: str) -> str:
        return self._key("hold:m", app_id, channel) + ":"  # no ':' in a channel name

    async def release_hold(self, app_id: str, event: Any) -> bool:
        """A held `channel_vacated` / `member_removed` stands when its hold is still in
        Redis (then it is removed): a comeback anywhere removes it first (the subscribe
        and add_member scripts)."""
        channel = str(event.get("channel"))
        if event.get("name") == "member_removed":
            key = self._member_hold_prefix(app_id, channel) + str(event.get("user_id"))
        else:
            key = self._key("hold:c", app_id, channel)
        return bool(await self.redis.delete(key))

    async def remove_member(self, app_id: str, channel: str, socket_id: str) -> str | None:
        try:
            gone = await self._lua_remove_member(
                keys=self._presence_keys(app_id, channel),
                args=[socket_id, self._member_hold_prefix(app_id, channel), HOLD_MS])
        except BaseException:
            self._stale = True  # `_reconcile` removes the member once Redis answers
            raise
        return str(gone) if gone else None

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        flat = await self._lua_members(keys=[self._key("pi", app_id, channel),
                                         self._key("po", app_id, channel)])
        return {flat[i]: json.loads(flat[i + 1]) for i in range(0, len(flat), 2)}

    # ---- cache channels -----------------------------------------------------------------

    def cache_put(self, app_id: str, channel: str, event: str, frame: str,
                  ttl_s: float) -> None:
        self._queue("SET", self._key("cache", app_id, channel),
                    json.dumps([event, frame], ensure_ascii=False),
                    "PX", max(1, int(ttl_s * 1000)))

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        await self.flushed()  # this node's own latest write first
        key = self._key("cache", app_id, channel)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        raw, ttl_ms = await pipe.execute()
        if raw is None or ttl_ms is None or ttl_ms < 0:
            return None
        event, frame = json.loads(raw)
        return CachedEvent(event, frame, self.clock() + ttl_ms / 1000)
