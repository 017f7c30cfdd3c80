"""The cluster's bus under churn and faults: a node listens to
`{prefix}:bus:{app}:{channel}` exactly while its sockets hold the channel, through
subscribe / unsubscribe races, crowds, killed bus connections, network blips and Redis
restarts; every publish made while a socket is in reaches it once, in order, after its
subscription_succeeded (cache channels and presence lists included); a subscribe burst waits
for Redis connections instead of being refused. (Written by a newcomer trying to break the
per-channel bus; the five that failed then are fixed.)

Every test uses its own key prefix on the machine's Redis, or a private Redis it may stop.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.pusher.hub import Hub
from helpers import REDIS_URL, PrivateRedis, require_redis, wait_for

require_redis()

import redis.asyncio as aioredis  # noqa: E402

from realtime.pusher import redis_adapter  # noqa: E402
from realtime.pusher.redis_adapter import RedisAdapter  # noqa: E402
from test_redis_adapter import APP, Node, nodes, subscribe, subscribed  # noqa: E402,F401
from conftest import _Collect  # noqa: E402


@pytest.fixture(autouse=True)
def asyncio_errors() -> Iterator[_Collect]:
    """conftest fails a test on wolive / tornado error logs; asyncio's own ("Task
    exception was never retrieved", "Future exception was never retrieved") too here."""
    handler = _Collect()
    logging.getLogger("asyncio").addHandler(handler)
    yield handler
    logging.getLogger("asyncio").removeHandler(handler)
    assert not handler.records, [handler.format(r) for r in handler.records]


def unsubscribe(session: Any, channel: str) -> None:
    session.on_frame(json.dumps({"event": "pusher:unsubscribe",
                                 "data": {"channel": channel}}))


async def bus_listeners(url: str, prefix: str) -> dict[str, int]:
    """Redis' own view: every `{prefix}:bus:*` channel with its subscriber count."""
    r = aioredis.from_url(url, decode_responses=True)
    try:
        names = await r.pubsub_channels(f"{prefix}:bus:*")
        if not names:
            return {}
        return {k: int(v) for k, v in await r.pubsub_numsub(*names)}
    finally:
        await r.aclose()


async def eventually(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if await check():
            return
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.05)


# ---- 1. a Redis restart: the sockets' leaves fail, the node listens on forever ---------------

@pytest.mark.allow_error_logs  # "cannot reach Redis" is an error for the operator
@pytest.mark.gen_test(timeout=60)
async def test_after_a_redis_restart_a_node_listens_only_to_channels_its_sockets_hold(
        tmp_path: Any) -> None:
    """A node's only socket holds three channels. Redis restarts: the socket is closed
    with 4200 and leaves its channels. Once the node listens again it holds no channel,
    so it should listen to no channel bus (and keep no closed socket as a subscriber)."""
    private = PrivateRedis(tmp_path).start()
    old = redis_adapter.LOST_AFTER_S
    redis_adapter.LOST_AFTER_S = 1.0
    adapter = RedisAdapter(private.url, "leak", "1")
    try:
        await adapter.start()
        node = Node(Hub([APP], adapter=adapter), adapter)
        s, c = node.open()
        for ch in ("news", "sport", "weather"):
            subscribe(s, ch)
            await subscribed(s, c, ch)
        assert set(await bus_listeners(private.url, "leak")) == {
            f"leak:bus:1:{ch}" for ch in ("news", "sport", "weather")}
        private.stop()
        await wait_for(lambda: c.closed is not None, timeout=20)
        assert c.closed == 4200
        await node.hub.settled()  # the closed socket's leaves have run (and failed)
        private.start()
        await wait_for(lambda: adapter.listening, timeout=20)

        async def quiet() -> bool:
            return await bus_listeners(private.url, "leak") == {}
        await eventually(quiet, timeout=10)  # "the node listens to channels none holds"
        assert adapter.local_channels(APP.id) == {}, "a closed socket is still a subscriber"
    finally:
        redis_adapter.LOST_AFTER_S = old
        await adapter.close()
        private.stop()


# ---- 2. churn: sockets on two nodes leave and join one channel while a third publishes -------

@pytest.mark.gen_test(timeout=60)
async def test_churning_subscribers_get_every_publish_made_while_they_are_in(
        nodes: list[Node]) -> None:
    """a publishes numbered events without pause; 4 sockets on b and 4 on c subscribe,
    wait for 5 more numbers and unsubscribe, over and over (so b's and c's last socket
    leaving and a first one joining cross each other all the time). Every number
    triggered after a socket saw subscription_succeeded, up to the last it got, must reach
    it exactly once; when all have left, nobody listens to the channel any more."""
    a, b, c = nodes
    ch = "private-churn"
    counter = [0]
    stop = asyncio.Event()

    async def publisher() -> None:
        while not stop.is_set():
            counter[0] += 1
            a.hub.trigger(ch, "e", {"n": counter[0]}, app=APP)
            await asyncio.sleep(0.002 if counter[0] % 3 else 0)

    problems: list[str] = []
    periods = [0]

    async def churner(node: Node, rnd: random.Random) -> None:
        s, conn = node.open()
        while not stop.is_set():
            before = len(conn.frames)
            subscribe(s, ch)
            await s.settled()
            n0 = counter[0]  # every number above was triggered after the succeeded
            ok = [i for i in range(before, len(conn.frames))
                  if conn.frames[i]["event"] == "pusher_internal:subscription_succeeded"]
            assert len(ok) == 1, conn.frames[before:]
            start = ok[0] + 1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            got: list[int] = []
            while loop.time() < deadline:
                got = [json.loads(f["data"])["n"] for f in conn.frames[start:]
                       if f.get("event") == "e"]
                if got and got[-1] >= n0 + 5 or stop.is_set():
                    break
                await asyncio.sleep(0.003)
            expected = list(range(n0 + 1, (got[-1] if got else n0) + 1))
            after = [n for n in got if n > n0]
            if (not got or got[-1] < n0 + 5) and not stop.is_set():
                problems.append(f"{s.socket_id}: stalled after n0={n0}: {got[-10:]}")
            elif after != expected:
                missing = sorted(set(expected) - set(after))
                dup = sorted({n for n in after if after.count(n) > 1})
                problems.append(f"{s.socket_id}: n0={n0} missing={missing[:10]} dup={dup[:10]}")
            periods[0] += 1
            await asyncio.sleep(rnd.random() * 0.01)
            unsubscribe(s, ch)
            await s.settled()
            await asyncio.sleep(rnd.random() * 0.01)

    rnd = random.Random(7)
    pub = asyncio.ensure_future(publisher())
    churners = [asyncio.ensure_future(churner(n, random.Random(rnd.random())))
                for n in (b, c) for _ in range(4)]
    await asyncio.sleep(8)
    stop.set()
    await asyncio.gather(pub, *churners)
    for n in nodes:
        await n.hub.settled()
    assert periods[0] > 50
    assert not problems, problems[:10]
    bus = a.adapter._channel_bus(APP.id, ch)
    await eventually(lambda: _numsub_is(bus, 0))
    for n in nodes:
        assert bus not in n.adapter._reader.following()


async def _numsub_is(bus: str, want: int) -> bool:
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        return dict(await r.pubsub_numsub(bus))[bus] == want
    finally:
        await r.aclose()


# ---- 3. the last socket leaving and a first one joining in one loop turn ---------------------

@pytest.mark.gen_test(timeout=60)
async def test_the_last_leaving_and_a_first_joining_in_one_turn_keep_the_node_listening(
        nodes: list[Node]) -> None:
    """On b, socket 1 leaves (b's last on the channel) and socket 2 joins in the same loop
    turn, in both orders, 30 times; socket 2, once told it is in, gets a's next publish,
    and b listens to the channel exactly while one of its sockets holds it."""
    a, b, _ = nodes
    ch = "private-flip"
    bus = a.adapter._channel_bus(APP.id, ch)
    (s1, c1), (s2, c2) = b.open(), b.open()
    subscribe(s1, ch)
    await subscribed(s1, c1, ch)
    holder, holder_conn, joiner, joiner_conn = s1, c1, s2, c2
    for i in range(30):
        if i % 2:
            unsubscribe(holder, ch)
            subscribe(joiner, ch)
        else:
            subscribe(joiner, ch)
            unsubscribe(holder, ch)
        await holder.settled()
        await subscribed(joiner, joiner_conn, ch)
        a.hub.trigger(ch, "e", {"n": i}, app=APP)
        await wait_for(lambda: joiner_conn.events("e") and
                       json.loads(joiner_conn.events("e")[-1]["data"])["n"] == i, timeout=5)
        assert await _numsub_is(bus, 1)
        holder, holder_conn, joiner, joiner_conn = joiner, joiner_conn, holder, holder_conn
    unsubscribe(holder, ch)
    await holder.settled()
    await eventually(lambda: _numsub_is(bus, 0))


# ---- 4. the bus connection killed while sockets subscribe -----------------------------------

async def _kill_reader(node: Node) -> bool:
    conn = node.adapter._reader._conn
    if conn is None or conn.transport is None:
        return False
    host, port = conn.transport.get_extra_info("sockname")[:2]
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        return bool(await r.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}"))
    except Exception:
        return False
    finally:
        await r.aclose()


@pytest.mark.gen_test(timeout=90)
async def test_subscribing_across_killed_bus_connections_leaves_nothing_behind(
        nodes: list[Node]) -> None:
    """b's bus connection is killed 12 times, at random moments while sockets keep
    opening there and subscribing to channels only b holds (some to a channel b already
    listens to, some to new ones). A socket still open once b listens again must get a's
    publishes; once every socket has gone, b listens to no channel bus and holds no
    socket; no traceback."""
    a, b, _ = nodes
    prefix = a.adapter.prefix
    rnd = random.Random(3)
    stop = asyncio.Event()
    opened: list[tuple[Any, Any, str]] = []

    async def opener() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            s, conn = b.open()
            ch = f"private-k{rnd.randrange(6)}"
            subscribe(s, ch)
            if rnd.random() < 0.5:
                subscribe(s, f"private-solo{i}")
            if rnd.random() < 0.3:
                unsubscribe(s, ch)
                subscribe(s, ch)
            opened.append((s, conn, ch))
            await asyncio.sleep(rnd.random() * 0.02)

    task = asyncio.ensure_future(opener())
    kills = 0
    for _ in range(12):
        await asyncio.sleep(0.05 + rnd.random() * 0.2)
        if await _kill_reader(b):
            kills += 1
        await wait_for(lambda: b.adapter.listening, timeout=10)
    await asyncio.sleep(0.3)
    stop.set()
    await task
    await b.hub.settled()
    assert kills >= 8
    live = [(s, conn, ch) for s, conn, ch in opened if conn.closed is None]
    assert live, "no socket survived the last kill"
    for s, conn, ch in live:
        assert conn.events("pusher_internal:subscription_succeeded"), conn.frames
    for k in range(6):
        a.hub.trigger(f"private-k{k}", "e", {"k": k}, app=APP)
    for s, conn, ch in live:
        if ch in s.channels:
            await wait_for(lambda conn=conn: conn.events("e"), timeout=5)
    # b's listening matches what its sockets hold, by b's own book and by Redis'.
    held = {b.adapter._channel_bus(APP.id, c) for c in b.adapter.local_channels(APP.id)}
    assert b.adapter._reader.following() - set(b.adapter._reader.channels) == held
    assert set(await bus_listeners(REDIS_URL, prefix)) == held
    for s, _, _ in opened:
        s.on_close()
    await b.hub.settled()
    assert b.adapter.local_channels(APP.id) == {}
    await eventually(lambda: _empty_bus(prefix))


async def _empty_bus(prefix: str) -> bool:
    return await bus_listeners(REDIS_URL, prefix) == {}


# ---- 5. the same with a network blip (Redis keeps its data) ---------------------------------

@pytest.mark.allow_error_logs
@pytest.mark.gen_test(timeout=60)
async def test_after_a_network_blip_a_node_listens_only_to_channels_its_sockets_hold(
        nodes: list[Node]) -> None:
    """b reaches Redis through a TCP proxy that is cut for 1.5 s (less than the node TTL,
    so b is not taken for dead and Redis keeps everything): b's socket, holding two
    channels and a presence channel, is closed with 4200 and leaves them. Once b listens
    again, no socket holds anything on b: Redis should count nobody on those channels
    and b should listen to none of their buses."""
    from test_outage import TcpProxy
    a, _, _ = nodes
    prefix = a.adapter.prefix
    proxy = TcpProxy("127.0.0.1", 6379)
    await proxy.start()
    adapter = RedisAdapter(f"redis://127.0.0.1:{proxy.port}/0", prefix, "9")
    try:
        await adapter.start()
        b = Node(Hub([APP], adapter=adapter), adapter)
        s, c = b.open()
        for ch, uid in (("news", None), ("sport", None), ("presence-room", "u1")):
            subscribe(s, ch, user_id=uid)
            await subscribed(s, c, ch)
        await proxy.stop()
        await wait_for(lambda: c.closed is not None, timeout=20)
        await b.hub.settled()
        await asyncio.sleep(1.5)
        await proxy.start()
        await wait_for(lambda: adapter.listening, timeout=20)
        seen: list[Any] = []

        async def settled() -> bool:
            counts = {ch: await a.adapter.subscription_count(APP.id, ch)
                      for ch in ("news", "sport", "presence-room")}
            members = await a.adapter.members(APP.id, "presence-room")
            listening = await bus_listeners(REDIS_URL, prefix)
            local = adapter.local_channels(APP.id)
            seen[:] = [counts, members, listening, local]
            return (counts, members, listening, local) == (
                {"news": 0, "sport": 0, "presence-room": 0}, {}, {}, {})
        try:
            await eventually(settled, timeout=10)
        except AssertionError:
            raise AssertionError(f"counts, members, listening, local: {seen}") from None
    finally:
        await adapter.close()
        if proxy.server is not None and proxy.server.is_serving():
            await proxy.stop()


# ---- 6. a crowd joining one channel at once on a fresh node --------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_a_crowd_joining_at_once_on_a_fresh_node_gets_every_later_publish(
        nodes: list[Node]) -> None:
    """90 sockets on b and 90 on c subscribe to one channel in the same loop turn while a
    publishes without pause: each gets every number triggered after its
    subscription_succeeded, once."""
    a, b, c = nodes
    ch = "crowd"
    counter = [0]
    stop = asyncio.Event()

    async def publisher() -> None:
        while not stop.is_set():
            counter[0] += 1
            a.hub.trigger(ch, "e", {"n": counter[0]}, app=APP)
            await asyncio.sleep(0.001)

    pub = asyncio.ensure_future(publisher())
    await asyncio.sleep(0.05)
    socks = [n.open() for n in (b, c) for _ in range(90)]
    seen_at: dict[str, int] = {}
    for s, _ in socks:
        subscribe(s, ch)

    async def note(s: Any, conn: Any) -> None:
        await s.settled()
        seen_at[s.socket_id] = counter[0]
    await asyncio.gather(*(note(s, conn) for s, conn in socks))
    await asyncio.sleep(0.3)
    stop.set()
    await pub
    last = counter[0]
    # A last event after every numbered one: once each socket has it, it has all it gets.
    a.hub.trigger(ch, "end", {}, app=APP)
    for _, conn in socks:
        await wait_for(lambda conn=conn: conn.events("end"), timeout=30)
    unanswered = [(s.socket_id, conn.closed, conn.frames[:3]) for s, conn in socks
                  if not conn.events("pusher_internal:subscription_succeeded")]
    assert not unanswered, (len(unanswered), unanswered[:3])
    bad = []
    for s, conn in socks:
        ok = [i for i, f in enumerate(conn.frames)
              if f["event"] == "pusher_internal:subscription_succeeded"][0]
        ns = [json.loads(f["data"])["n"] for f in conn.frames[ok:] if f["event"] == "e"]
        n0 = seen_at[s.socket_id]
        after = [n for n in ns if n > n0]
        if after != list(range(n0 + 1, last + 1)):
            bad.append((s.socket_id, n0, sorted(set(range(n0 + 1, last + 1)) - set(after))[:5]))
    assert not bad, bad[:5]


# ---- 7. a reconnect storm: more sockets subscribing at once than the Redis pool holds -------

@pytest.mark.gen_test(timeout=60)
async def test_a_subscribe_storm_on_one_node_is_answered_not_refused(
        nodes: list[Node]) -> None:
    """After a node restart its clients all reconnect at once: 150 sockets subscribing in
    one loop turn on b. Each should be told it is in (maybe later), not closed with 4200
    because b's redis-py pool (100 connections, not blocking) is momentarily empty."""
    _, b, _ = nodes
    socks = [b.open() for _ in range(150)]
    for i, (s, _) in enumerate(socks):
        subscribe(s, f"private-user-{i}")
    await b.hub.settled()
    closed = [s.socket_id for s, conn in socks if conn.closed is not None]
    assert not closed, f"{len(closed)} of 150 sockets closed with 4200"


# ---- 8. presence churn across three nodes ---------------------------------------------------

def _pusher_js_members(frames: list[dict[str, Any]], channel: str) -> set[str] | None:
    """What pusher-js' Members would hold after these frames (None: not subscribed):
    member_added / member_removed change it, subscription_succeeded replaces it."""
    members: set[str] = set()
    subscribed = False
    for f in frames:
        if f.get("channel") != channel:
            continue
        data = json.loads(f["data"]) if isinstance(f.get("data"), str) else f.get("data")
        if f["event"] == "pusher_internal:subscription_succeeded":
            members, subscribed = set(data["presence"]["ids"]), True
        elif f["event"] == "pusher_internal:member_added":
            members.add(data["user_id"])
        elif f["event"] == "pusher_internal:member_removed":
            members.discard(data["user_id"])
    return members if subscribed else None


@pytest.mark.gen_test(timeout=90)
async def test_presence_churn_over_three_nodes_leaves_every_socket_with_the_true_members(
        nodes: list[Node]) -> None:
    """8 users, 2 sockets each on random nodes, join and leave one presence channel at
    random for 6 s. Once it is quiet, every socket still in holds (as pusher-js would
    build it from the frames it got) exactly the members Redis has."""
    ch = "presence-lobby"
    rnd = random.Random(11)
    stop = asyncio.Event()
    socks: list[tuple[Any, Any, str]] = []

    async def user(uid: str, r: random.Random) -> None:
        mine = []
        for _ in range(2):
            s, conn = r.choice(nodes).open()
            mine.append((s, conn))
            socks.append((s, conn, uid))
        while not stop.is_set():
            s, conn = r.choice(mine)
            # A fresh frame list per subscription, as a new pusher-js Channel would have.
            if ch in s.channels:
                unsubscribe(s, ch)
            else:
                conn.frames.clear()
                subscribe(s, ch, user_id=uid)
            await s.settled()
            await asyncio.sleep(r.random() * 0.03)

    tasks = [asyncio.ensure_future(user(f"u{i}", random.Random(rnd.random())))
             for i in range(8)]
    await asyncio.sleep(6)
    stop.set()
    await asyncio.gather(*tasks)
    for n in nodes:
        await n.hub.settled()
    # An event from each node after its member events: once every socket still in has all
    # three, it has every member_added / member_removed it will get.
    for n in nodes:
        n.hub.trigger(ch, "end", {}, app=APP)
    for s, conn, _ in socks:
        if ch in s.channels:
            await wait_for(lambda conn=conn: len(conn.events("end")) >= 3, timeout=30)
    truth = set(await nodes[0].adapter.members(APP.id, ch))
    holders = {uid for s, _, uid in socks if ch in s.channels}
    assert truth == holders
    wrong = []
    for s, conn, uid in socks:
        if ch in s.channels:
            seen = _pusher_js_members(conn.frames, ch)
            if seen != truth:
                wrong.append((s.socket_id, uid, "extra", sorted((seen or set()) - truth),
                              "missing", sorted(truth - (seen or set()))))
    assert not wrong, wrong


@pytest.mark.gen_test(timeout=90)
async def test_a_bus_connection_dropped_at_every_step_of_a_subscribe_leaves_nothing_behind(
        nodes: list[Node]) -> None:
    """b's bus connection is dropped (its transport aborted) 0, 1, 2, ... loop turns after
    a socket's subscribe began, for a channel b already listens to and for a new one.
    After each, once b listens again: b listens to exactly the channels its open sockets
    hold (its own book and Redis'), and an open socket told it is in hears a."""
    a, b, _ = nodes
    prefix = a.adapter.prefix
    opened: list[tuple[Any, Any]] = []
    keeper, keeper_conn = None, None
    for step in range(24):
        if keeper is None or keeper_conn.closed is not None:
            keeper, keeper_conn = b.open()
            subscribe(keeper, "private-old")
            await subscribed(keeper, keeper_conn, "private-old")
        s, conn = b.open()
        opened.append((s, conn))
        subscribe(s, "private-old" if step % 2 else f"private-new{step}")
        for _ in range(step // 2):
            await asyncio.sleep(0)
        old = b.adapter._reader._conn
        old.transport.abort()
        await wait_for(lambda: b.adapter._reader._latest is not old and b.adapter.listening,
                       timeout=10)
        await b.hub.settled()
        live = [(x, c) for x, c in opened + [(keeper, keeper_conn)] if c.closed is None]
        assert not live, [c.frames for _, c in live]  # every socket of the moment closed
        held = {b.adapter._channel_bus(APP.id, c) for c in b.adapter.local_channels(APP.id)}
        assert held == set(), held
        assert b.adapter._reader.following() == set(b.adapter._reader.channels)
        await eventually(lambda: _empty_bus(prefix))
    # And it still works.
    s, conn = b.open()
    subscribe(s, "private-old")
    await subscribed(s, conn, "private-old")
    a.hub.trigger("private-old", "e", {}, app=APP)
    await wait_for(lambda: conn.events("e"), timeout=5)


# ---- 9. cache channels: the replayed event and the live one -------------------------------

@pytest.mark.gen_test(timeout=60)
async def test_a_cache_channel_subscriber_never_gets_one_event_twice(
        nodes: list[Node]) -> None:
    """a publishes numbered events on a cache channel without pause; 60 sockets subscribe
    on b one after the other. Each gets the cached event (or a cache miss) and the live
    ones: no number twice, and in increasing order."""
    a, b, _ = nodes
    ch = "cache-ticker"
    counter = [0]
    stop = asyncio.Event()

    async def publisher() -> None:
        while not stop.is_set():
            counter[0] += 1
            a.hub.trigger(ch, "tick", {"n": counter[0]}, app=APP)
            await asyncio.sleep(0.001)

    pub = asyncio.ensure_future(publisher())
    await asyncio.sleep(0.05)
    socks = []
    for _ in range(60):
        s, conn = b.open()
        subscribe(s, ch)
        await s.settled()
        socks.append((s, conn))
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)
    stop.set()
    await pub
    bad = []
    for s, conn in socks:
        ns = [json.loads(f["data"])["n"] for f in conn.frames if f["event"] == "tick"]
        if len(ns) != len(set(ns)) or ns != sorted(ns):
            bad.append((s.socket_id, [
                f["event"][-9:] + (f":{json.loads(f['data'])['n']}" if f["event"] == "tick"
                                   else "") for f in conn.frames[1:6]]))
        unsubscribe(s, ch)
    await b.hub.settled()
    assert not bad, (len(bad), bad[:5])


# ---- 10. presence: a member_added that overtakes the subscriber's member list --------------

@pytest.mark.gen_test(timeout=30)
async def test_a_member_joining_while_another_subscribes_is_in_its_member_list_or_added(
        nodes: list[Node]) -> None:
    """u1 subscribes to a presence channel on b; b reads the member list from Redis (u0
    only), and before b goes on with that answer (a busy loop: here the reply is held
    back by wrapping `members`), u2 joins on a, whose member_added reaches b's bus and is
    delivered to u1's socket, which is already in b's local list, before
    subscription_succeeded. pusher-js then replaces its member list with the older one
    from subscription_succeeded: u2 is lost to u1 for good. u1 should end up knowing u2."""
    a, b, c = nodes
    ch = "presence-race"
    s0, c0 = c.open()
    subscribe(s0, ch, user_id="u0")
    await subscribed(s0, c0, ch)
    s2, c2 = a.open()
    orig = b.adapter.members
    calls = [0]

    async def members_then_a_join(app_id: str, channel: str) -> dict[str, Any]:
        answer = await orig(app_id, channel)
        calls[0] += 1
        if calls[0] == 2:  # the read for subscription_succeeded (the first checks the cap)
            subscribe(s2, ch, user_id="u2")
            await subscribed(s2, c2, ch)
            await a.adapter.flushed()
            await asyncio.sleep(0.05)  # b's reader has delivered what a published
        return answer
    b.adapter.members = members_then_a_join  # type: ignore[method-assign]
    s1, c1 = b.open()
    subscribe(s1, ch, user_id="u1")
    await subscribed(s1, c1, ch)
    b.adapter.members = orig  # type: ignore[method-assign]
    order = [f["event"].split(":")[-1] for f in c1.frames[1:]]
    assert _pusher_js_members(c1.frames, ch) == {"u0", "u1", "u2"}, order
