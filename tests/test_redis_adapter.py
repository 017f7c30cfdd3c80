"""`RedisAdapter` on the machine's Redis: three nodes (a hub and an adapter each, in this
process, each with its own Redis connections) give the answers of one.

Every test uses its own key prefix, so runs and tests never hear each other. Redis is
required when WOLIVE_REQUIRE_REDIS=1 (CI); otherwise these tests are skipped without it.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from realtime.pusher import protocol as p
from realtime.pusher import http_api as pusher_api
from realtime.pusher.hub import App, Hub, Session
from realtime.pusher.signing import channel_auth
from helpers import REDIS_URL, PrivateRedis, RecordingConn, require_redis, wait_for

APP = App("1", "key", "secret")


require_redis()

from realtime.pusher.redis_adapter import RedisAdapter  # noqa: E402


class Node:
    def __init__(self, hub: Hub, adapter: RedisAdapter) -> None:
        self.hub, self.adapter = hub, adapter
        self.happenings: list[dict[str, Any]] = []
        hub.add_listener(lambda app, e: self.happenings.append(dict(e)))
        self._n = 0

    def open(self) -> tuple[Session, RecordingConn]:
        self._n += 1
        conn = RecordingConn(f"{self.adapter.node}.{self._n}")
        session = Session(hub=self.hub, app=APP, conn=conn)
        session.start()
        return session, conn


@pytest.fixture
def nodes(io_loop: Any) -> Iterator[list[Node]]:
    prefix = f"wolive-test-{uuid.uuid4().hex[:12]}"

    async def start() -> list[Node]:
        out = []
        for i in range(3):
            adapter = RedisAdapter(REDIS_URL, prefix, str(i + 1))
            await adapter.start()
            out.append(Node(Hub([APP], adapter=adapter), adapter))
        return out
    out = io_loop.run_sync(start, timeout=60)
    yield out

    async def stop() -> None:
        for node in out:
            await node.adapter.close()
        import redis.asyncio as aioredis
        r = aioredis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
    io_loop.run_sync(stop, timeout=60)  # a stuck close fails the test, not the run


def subscribe(session: Session, channel: str, user_id: str | None = None) -> None:
    data: dict[str, Any] = {"channel": channel}
    if user_id is not None:
        channel_data = json.dumps({"user_id": user_id, "user_info": {"name": user_id}})
        data["channel_data"] = channel_data
        data["auth"] = channel_auth(APP.key, APP.secret, session.socket_id, channel,
                                    channel_data)
    elif channel.startswith("private-"):
        data["auth"] = channel_auth(APP.key, APP.secret, session.socket_id, channel)
    session.on_frame(json.dumps({"event": "pusher:subscribe", "data": data}))


async def subscribed(session: Session, conn: RecordingConn, channel: str) -> None:
    await session.settled()
    assert conn.events("pusher_internal:subscription_succeeded")[-1]["channel"] == channel


def names(node: Node, *kinds: str) -> list[tuple[str, str]]:
    return [(e["name"], e["channel"]) for e in node.happenings if e["name"] in kinds]


@pytest.mark.gen_test(timeout=20)
async def test_a_publish_on_one_node_reaches_every_nodes_subscribers_but_the_excluded(
        nodes: list[Node]) -> None:
    a, b, c = nodes
    socks = [n.open() for n in nodes]
    for s, conn in socks:
        subscribe(s, "news")
        await subscribed(s, conn, "news")
    excluded = socks[2][0].socket_id  # on node c
    a.hub.trigger("news", "flash", {"n": 1}, app=APP, except_socket_id=excluded)
    a.hub.trigger("news", "flash", {"n": 2}, app=APP)
    for _, conn in socks[:2]:
        await wait_for(lambda conn=conn: len(conn.events("flash")) == 2)
        assert [json.loads(f["data"])["n"] for f in conn.events("flash")] == [1, 2]
    await wait_for(lambda: len(socks[2][1].events("flash")) == 1)
    assert json.loads(socks[2][1].events("flash")[0]["data"]) == {"n": 2}
    # A marker published on b after a's publishes reached Redis arrives after anything
    # a's publishes could still bring: then each socket has had each publish once.
    await a.adapter.flushed()
    b.hub.trigger("news", "marker", {}, app=APP)
    for _, conn in socks:
        await wait_for(lambda conn=conn: conn.events("marker"))
    assert [len(conn.events("flash")) for _, conn in socks] == [2, 2, 1]


@pytest.mark.gen_test(timeout=30)
async def test_a_node_hears_only_the_channels_its_sockets_hold(nodes: list[Node]) -> None:
    """A channel's publishes go to the nodes holding sockets on it (Redis' own count of its
    listeners says so), a node holding none reads none of them, and a socket told it is
    subscribed gets the very next publish, wherever it was made."""
    import redis.asyncio as aioredis
    a, b, c = nodes
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    bus = a.adapter._channel_bus(APP.id, "private-chat-1")

    async def listeners() -> int:
        return dict(await r.pubsub_numsub(bus))[bus]

    heard_on_c: list[str] = []
    read = c.adapter._reader.on_message
    c.adapter._reader.on_message = lambda data: (heard_on_c.append(data), read(data))
    try:
        (sa, ca), (sb, cb) = a.open(), b.open()
        for s, conn in ((sa, ca), (sb, cb)):
            subscribe(s, "private-chat-1")
            await subscribed(s, conn, "private-chat-1")
        assert await listeners() == 2
        for n in range(20):
            a.hub.trigger("private-chat-1", "line", {"n": n}, app=APP)
        await wait_for(lambda: len(cb.events("line")) == 20)
        await a.adapter.flushed()
        c.hub.trigger("news", "marker", {}, app=APP)  # c's own publishes still go out
        await c.adapter.flushed()
        assert not [d for d in heard_on_c if "private-chat-1" in d]

        # Subscribed on c: the first publish after its subscription_succeeded reaches it.
        sc, cc = c.open()
        subscribe(sc, "private-chat-1")
        await subscribed(sc, cc, "private-chat-1")
        assert await listeners() == 3
        b.hub.trigger("private-chat-1", "line", {"n": 20}, app=APP)
        await wait_for(lambda: cc.events("line"))
        assert [json.loads(f["data"])["n"] for f in cc.events("line")] == [20]

        # The last socket of a node leaving stops that node's listening; coming back
        # starts it again.
        sb.on_frame(json.dumps({"event": "pusher:unsubscribe",
                                "data": {"channel": "private-chat-1"}}))
        await sb.settled()
        deadline = asyncio.get_running_loop().time() + 5
        while await listeners() != 2:  # its UNSUBSCRIBE leaves at the end of a loop turn
            assert asyncio.get_running_loop().time() < deadline, "b kept listening"
            await asyncio.sleep(0.02)
        subscribe(sb, "private-chat-1")
        await subscribed(sb, cb, "private-chat-1")
        assert await listeners() == 3
        a.hub.trigger("private-chat-1", "line", {"n": 21}, app=APP)
        await wait_for(lambda: json.loads(cb.events("line")[-1]["data"])["n"] == 21)
    finally:
        await r.aclose()


@pytest.mark.gen_test(timeout=20)
async def test_client_events_cross_nodes_and_are_not_echoed(nodes: list[Node]) -> None:
    (sa, ca), (sb, cb) = nodes[0].open(), nodes[1].open()
    for s, conn in ((sa, ca), (sb, cb)):
        subscribe(s, "private-room")
        await subscribed(s, conn, "private-room")
    sa.on_frame(json.dumps({"event": "client-typing", "channel": "private-room",
                            "data": {"who": "a"}}))
    await wait_for(lambda: cb.events("client-typing"))
    await nodes[0].adapter.flushed()
    assert not ca.events("client-typing")


@pytest.mark.gen_test(timeout=20)
async def test_occupied_and_vacated_are_decided_once_across_nodes(nodes: list[Node]) -> None:
    socks = [n.open() for n in nodes]
    for s, conn in socks:
        subscribe(s, "private-desk")
        await subscribed(s, conn, "private-desk")
    for s, _ in reversed(socks):
        s.on_close()
        await s.settled()
    every = [e for n in nodes for e in names(n, "channel_occupied", "channel_vacated")]
    assert sorted(every) == [("channel_occupied", "private-desk"),
                             ("channel_vacated", "private-desk")]
    assert names(nodes[0], "channel_occupied") == [("channel_occupied", "private-desk")]
    assert names(nodes[0], "channel_vacated") == [("channel_vacated", "private-desk")]
    for n in nodes:
        assert await n.hub.adapter.channels(APP.id) == {}


@pytest.mark.gen_test(timeout=20)
async def test_presence_gives_one_member_list_and_a_second_tab_elsewhere_is_silent(
        nodes: list[Node]) -> None:
    a, b, c = nodes
    ch = "presence-team"
    s1, c1 = a.open()
    subscribe(s1, ch, "u1")
    await subscribed(s1, c1, ch)
    s2, c2 = b.open()
    subscribe(s2, ch, "u2")
    await subscribed(s2, c2, ch)
    succeeded = c2.events("pusher_internal:subscription_succeeded")[0]
    assert json.loads(succeeded["data"])["presence"]["ids"] == ["u1", "u2"]
    await wait_for(lambda: c1.events("pusher_internal:member_added"))
    # u1's second tab, on node c: no member_added anywhere, one list everywhere.
    s3, c3 = c.open()
    subscribe(s3, ch, "u1")
    await subscribed(s3, c3, ch)
    await c.adapter.flushed()
    for n in nodes:
        assert list(await n.hub.members(APP, ch)) == ["u1", "u2"]
        assert await pusher_api.channel(n.hub, APP, ch, {"info": "user_count,subscription_count"}
                                        ) == {"occupied": True, "user_count": 2,
                                              "subscription_count": 3}
    added = [e for n in nodes for e in n.happenings if e["name"] == "member_added"]
    assert [e["user_id"] for e in added] == ["u1", "u2"]
    # u1 closes the first tab: still a member; then the second: member_removed, once.
    s1.on_close()
    await s1.settled()
    assert not c2.events("pusher_internal:member_removed")
    s3.on_close()
    await s3.settled()
    await wait_for(lambda: c2.events("pusher_internal:member_removed"))
    removed = [e for n in nodes for e in n.happenings if e["name"] == "member_removed"]
    assert [(e["user_id"]) for e in removed] == ["u1"]
    assert list(await a.hub.members(APP, ch)) == ["u2"]


@pytest.mark.gen_test(timeout=20)
async def test_a_cache_event_set_on_one_node_is_replayed_on_another(nodes: list[Node]) -> None:
    a, b, _ = nodes
    a.hub.trigger("cache-price", "price", {"eur": 3}, app=APP)
    await a.adapter.flushed()
    s, conn = b.open()
    subscribe(s, "cache-price")
    await subscribed(s, conn, "cache-price")
    assert json.loads(conn.events("price")[0]["data"]) == {"eur": 3}
    s2, conn2 = b.open()
    subscribe(s2, "cache-empty")
    await subscribed(s2, conn2, "cache-empty")
    assert conn2.events("pusher:cache_miss")
    assert p.CACHE_TTL_S > 0


@pytest.mark.gen_test(timeout=20)
async def test_the_http_api_channel_lists_agree_on_every_node(nodes: list[Node]) -> None:
    for i, n in enumerate(nodes):
        s, conn = n.open()
        subscribe(s, f"private-{i}")
        await subscribed(s, conn, f"private-{i}")
    s, conn = nodes[2].open()
    subscribe(s, "private-0")
    await subscribed(s, conn, "private-0")
    answers = [await pusher_api.channels(n.hub, APP, {"info": "subscription_count"})
               for n in nodes]
    assert answers[0] == answers[1] == answers[2] == {"channels": {
        "private-0": {"subscription_count": 2}, "private-1": {"subscription_count": 1},
        "private-2": {"subscription_count": 1}}}


@pytest.mark.gen_test(timeout=20)
async def test_two_prefixes_on_one_redis_never_hear_each_other(nodes: list[Node]) -> None:
    other = RedisAdapter(REDIS_URL, f"wolive-test-{uuid.uuid4().hex[:12]}", "1")
    await other.start()
    try:
        stranger = Node(Hub([APP], adapter=other), other)
        s, conn = stranger.open()
        subscribe(s, "news")
        await subscribed(s, conn, "news")
        mine, mine_conn = nodes[1].open()
        subscribe(mine, "news")
        await subscribed(mine, mine_conn, "news")
        nodes[0].hub.trigger("news", "flash", {}, app=APP)
        await wait_for(lambda: mine_conn.events("flash"))
        stranger.hub.trigger("news", "own", {}, app=APP)
        await wait_for(lambda: conn.events("own"))
        assert not conn.events("flash") and not mine_conn.events("own")
        assert await stranger.hub.adapter.subscription_count(APP.id, "news") == 1
        s.on_close()
        await s.settled()
    finally:
        await other.close()


@pytest.mark.gen_test(timeout=20)
async def test_a_dead_nodes_members_are_removed_once_by_the_survivors(
        nodes: list[Node]) -> None:
    a, b, c = nodes
    ch = "presence-desk"
    s1, c1 = a.open()
    subscribe(s1, ch, "u1")
    await subscribed(s1, c1, ch)
    s3, c3 = c.open()
    subscribe(s3, ch, "u3")
    await subscribed(s3, c3, ch)
    s3b, c3b = c.open()
    subscribe(s3b, "private-only-on-c")
    await subscribed(s3b, c3b, "private-only-on-c")
    await wait_for(lambda: c1.events("pusher_internal:member_added"))
    # Node c dies: its heartbeat stops and its key expires (here: is deleted at once).
    c_tasks = c.adapter._tasks
    for task in c_tasks:
        task.cancel()
    await c.adapter.redis.delete(f"{c.adapter.prefix}:node:{c.adapter.node}:alive")
    # Both survivors look at once; one wins, and each removal is decided once.
    reaped = [await a.adapter.reap(), await b.adapter.reap()]
    assert sorted(reaped, key=len) == [[], [c.adapter.node]]
    await wait_for(lambda: c1.events("pusher_internal:member_removed"))
    assert json.loads(c1.events("pusher_internal:member_removed")[0]["data"]) == {
        "user_id": "u3"}
    removed = [e for n in (a, b) for e in n.happenings if e["name"] == "member_removed"]
    vacated = [e for n in (a, b) for e in n.happenings if e["name"] == "channel_vacated"]
    assert [e["user_id"] for e in removed] == ["u3"]
    assert [e["channel"] for e in vacated] == ["private-only-on-c"]
    assert list(await a.hub.members(APP, ch)) == ["u1"]
    assert await a.adapter.channels(APP.id) == {ch: 1}
    assert await a.adapter.live_nodes() == [a.adapter.node, b.adapter.node]
    c.adapter._tasks = []  # already stopped; its close only disconnects


@pytest.mark.gen_test(timeout=20)
async def test_a_node_taken_for_dead_closes_its_sockets_with_a_reconnect_code(
        nodes: list[Node]) -> None:
    a = nodes[0]
    s, conn = a.open()
    subscribe(s, "news")
    await subscribed(s, conn, "news")
    # Its key expired (a long stall): the others may already have removed its sockets.
    await a.adapter.redis.delete(f"{a.adapter.prefix}:node:{a.adapter.node}:alive")
    await wait_for(lambda: conn.closed is not None, timeout=10)
    assert conn.closed == 4200  # pusher-js reconnects at once
    assert a.adapter.node in await a.adapter.live_nodes()  # registered again


@pytest.mark.gen_test(timeout=20)
async def test_an_agents_sessions_end_on_every_node(nodes: list[Node]) -> None:
    from realtime.pusher.hub import Caller
    a, _, c = nodes
    conn = RecordingConn(f"{c.adapter.node}.99")
    console = Session(hub=c.hub, app=APP, conn=conn, caller=Caller(service_id=7))
    console.start()
    other = RecordingConn(f"{c.adapter.node}.98")
    Session(hub=c.hub, app=APP, conn=other, caller=Caller(service_id=8)).start()
    assert a.hub.close_caller(7, p.Errors.SESSION_ENDED) == 0  # none of its sockets on a
    await wait_for(lambda: conn.closed is not None)
    assert conn.closed == 4009
    assert json.loads(conn.events("pusher:error")[-1]["data"])["message"] == \
        "Session ended: sign in again"
    assert other.closed is None


def webhooks_of(node: Node, grace_s: float) -> list[dict[str, Any]]:
    """Webhooks on `node` as wolive.make_app wires them for a cluster; returns the list
    their queue receives (what would be POSTed)."""
    from realtime.pusher.webhooks import Webhooks, WebhookTarget
    hooks = Webhooks({APP: [WebhookTarget("http://127.0.0.1:9/hook")]}, grace_s=grace_s)
    hooks.release_check = node.adapter.release_hold
    sent: list[dict[str, Any]] = []
    hooks._queue = lambda app_id, event: sent.append(dict(event))  # type: ignore[method-assign]
    node.hub.add_listener(hooks.on_event)
    node.hooks = hooks  # type: ignore[attr-defined]
    return sent


@pytest.mark.gen_test(timeout=30)
async def test_a_comeback_on_another_node_within_the_hold_sends_no_webhook(
        nodes: list[Node]) -> None:
    a, b, c = nodes
    sent_a, sent_b, sent_c = (webhooks_of(n, 0.5) for n in nodes)
    ch = "presence-desk"
    s1, c1 = a.open()
    subscribe(s1, ch, "u1")
    await subscribed(s1, c1, ch)
    assert [e["name"] for e in sent_a] == ["channel_occupied", "member_added"]
    # u1 reloads: its socket on a goes, it comes back on b within the hold.
    s1.on_close()
    await s1.settled()
    s2, c2 = b.open()
    subscribe(s2, ch, "u1")
    await subscribed(s2, c2, ch)
    # a's holds are up and asked Redis: both were taken back; b sent nothing either.
    await wait_for(lambda: not a.hooks._held and not a.hooks._checks)  # type: ignore
    assert [e["name"] for e in sent_a] == ["channel_occupied", "member_added"]
    assert sent_b == [] and sent_c == []
    # u1 leaves for good (from b): after the hold, one vacated and one member_removed.
    s2.on_close()
    await s2.settled()
    await wait_for(lambda: len(sent_b) == 2)
    assert sorted(e["name"] for e in sent_b) == ["channel_vacated", "member_removed"]
    await wait_for(lambda: not b.hooks._held and not b.hooks._checks)  # type: ignore
    assert len(sent_b) == 2 and sent_c == [] and len(sent_a) == 2


@pytest.mark.gen_test(timeout=20)
async def test_a_video_call_asked_on_one_node_is_joined_and_ended_on_others(
        nodes: list[Node]) -> None:
    from realtime.chat.values import Agent
    from realtime.chat.video import Video, VisitorParty
    videos = []
    for n in nodes:
        video = Video(None, n.hub, None, ttl_s=60)  # type: ignore[arg-type]
        video.shared = n.adapter
        videos.append(video)
    call = await videos[0]._allocate("shop1", 7, "v1")
    agent, visitor = Agent(7, "shop1", "service"), VisitorParty("shop1", "v1")
    assert await videos[1].may_join_call(call.channel, agent)
    assert await videos[2].may_join_call(call.channel, visitor)
    assert not await videos[1].may_join_call(call.channel, VisitorParty("shop1", "v2"))
    assert not await videos[1].may_join_call(call.channel, Agent(8, "shop1", "service"))
    # Asking again from another node renews the same call.
    assert (await videos[2]._allocate("shop1", 7, "v1")).channel == call.channel
    # Another visitor cannot end it; its own visitor, on any node, can.
    await videos[1]._end(call.channel, "shop1", "v2")
    assert await videos[0].may_join_call(call.channel, agent)
    await videos[1]._end(call.channel, "shop1", "v1")
    for video in videos:
        assert not await video.may_join_call(call.channel, agent)
    assert (await videos[0]._allocate("shop1", 7, "v1")).channel != call.channel


@pytest.mark.gen_test(timeout=30)
async def test_one_wechat_token_for_the_cluster_fetched_once(nodes: list[Node]) -> None:
    import asyncio

    import tornado.web
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    from realtime.chat.wechat import WechatClient
    fetched: list[int] = []

    class Token(tornado.web.RequestHandler):
        async def get(self) -> None:
            fetched.append(1)
            await asyncio.sleep(0.2)  # slow: the other nodes ask meanwhile
            self.finish({"access_token": f"TOKEN-{len(fetched)}", "expires_in": 7200})

    sock, port = bind_unused_port()
    server = HTTPServer(tornado.web.Application([(r"/cgi-bin/token", Token)]))
    server.add_sockets([sock])
    try:
        clients = []
        for n in nodes:
            client = WechatClient(f"http://127.0.0.1:{port}", "wx-app", "wx-secret", "tpl")
            client.shared = n.adapter
            clients.append(client)
        tokens = await asyncio.gather(*[c.access_token() for c in clients])
        assert tokens == ["TOKEN-1"] * 3 and len(fetched) == 1
        # A node told the token is refused drops it for everyone; the next one is fetched
        # once; a stale "refused" for an older token drops nothing.
        await clients[1].forget_token("TOKEN-1")
        assert await clients[2].access_token() == "TOKEN-2"
        await clients[0].forget_token("TOKEN-1")
        assert await clients[0].access_token() == "TOKEN-2" and len(fetched) == 2
    finally:
        server.stop()


@pytest.mark.allow_error_logs  # "cannot reach Redis" is an error for the operator
@pytest.mark.gen_test(timeout=60)
async def test_nodes_ride_out_a_redis_restart(tmp_path: Any) -> None:
    """A Redis of our own (the machine's is shared): stopped, its nodes close their
    sockets with 4200 (clients reconnect and catch up); started again, the same nodes
    deliver across again without a restart of their own."""
    import asyncio

    from realtime.pusher import redis_adapter
    private = PrivateRedis(tmp_path).start()
    url = private.url
    old = redis_adapter.LOST_AFTER_S
    redis_adapter.LOST_AFTER_S = 1.0
    adapters = [RedisAdapter(url, "restart", str(i)) for i in (1, 2)]
    try:
        for adapter in adapters:
            await adapter.start()
        a, b = (Node(Hub([APP], adapter=ad), ad) for ad in adapters)
        sa, ca = a.open()
        subscribe(sa, "news")
        await subscribed(sa, ca, "news")
        private.stop()
        await wait_for(lambda: ca.closed is not None, timeout=20)
        assert ca.closed == 4200
        await wait_for(lambda: not a.adapter.listening, timeout=20)
        private.start()
        # The same processes: a new socket on a, once it listens again, hears b's publishes.
        await wait_for(lambda: a.adapter.listening, timeout=20)
        s2, c2 = a.open()

        async def through() -> bool:
            try:
                subscribe(s2, "news2")
                await s2.settled()
            except Exception:
                return False
            return bool(c2.events("pusher_internal:subscription_succeeded"))
        for _ in range(100):
            if await through():
                break
            await asyncio.sleep(0.1)
        for _ in range(100):
            b.hub.trigger("news2", "flash", {}, app=APP)
            await asyncio.sleep(0.1)
            if c2.events("flash"):
                break
        assert c2.events("flash")
    finally:
        redis_adapter.LOST_AFTER_S = old
        for adapter in adapters:
            try:
                await adapter.close()
            except Exception:
                pass
        private.stop()


@pytest.mark.gen_test(timeout=60)
async def test_random_joins_and_leaves_across_nodes_give_one_occupied_and_one_vacated(
        nodes: list[Node]) -> None:
    """Sockets on random nodes join one channel all at once, then leave all at once, in a
    random order: however the nodes' scripts interleave, one occupied and one vacated are
    heard (on all nodes together) per episode. When joins and leaves overlap, the channel
    may empty in between: then occupied and vacated still come in pairs."""
    import random
    rng = random.Random(12)
    for episode in range(30):
        ch = f"private-ep{episode}"
        socks = [rng.choice(nodes).open() for _ in range(rng.randint(1, 8))]
        overlap = episode >= 20
        for s, _ in socks:
            subscribe(s, ch)
        if not overlap:
            for s, _ in socks:
                await s.settled()
        rng.shuffle(socks)
        for s, _ in socks:
            if overlap and rng.random() < 0.5:
                await asyncio.sleep(0)
            s.on_close()
        for s, _ in socks:
            await s.settled()
        heard = [e["name"] for n in nodes for e in n.happenings
                 if e.get("channel") == ch]
        occupied, vacated = heard.count("channel_occupied"), heard.count("channel_vacated")
        if overlap:
            assert occupied == vacated, (episode, heard)  # 0 when all left before joining
        else:
            assert (occupied, vacated) == (1, 1), (episode, heard)
        for n in nodes:
            assert await n.hub.adapter.subscription_count(APP.id, ch) == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_stale_presence_write_from_another_node_is_corrected(
        wolive_server: Any, nodes: list[Node]) -> None:
    """Two nodes' presence writes may land in either order: a node that wrote a state the
    cluster no longer has (here: offline while a console is held on another node) checks
    after its write and makes it right."""
    from realtime.passwords import hash_password
    from helpers import db_rows
    from realtime.chat.presence import PresenceTracker
    store = wolive_server.store
    await store.add_business("shop1")
    row = await store.add_service("shop1", "anna", "Anna", await hash_password("pw-pw-pw-pw", 4))
    sid, ch = row["service_id"], f"kefu{row['service_id']}"
    a, b = nodes[0], nodes[1]
    trackers = []
    for n in (a, b):
        tracker = PresenceTracker(store, n.hub)
        tracker.shared = True
        trackers.append(tracker)
    db = wolive_server.config.database.url

    def state() -> str:
        return str(db_rows(db, "SELECT state FROM wolive_service WHERE service_id = %s",
                           (sid,))[0]["state"])
    console, conn = a.open()
    subscribe(console, ch)
    await subscribed(console, conn, ch)
    await wait_for(lambda: state() == "online")
    b_tracker = trackers[1]
    b_tracker._set(ch, False)  # b's offline, decided earlier, lands after a's online
    # b wrote it, checked the cluster, and wrote it right (all its work done).
    await wait_for(lambda: b_tracker._flusher is None and not b_tracker._dirty
                   and not b_tracker._checks, timeout=10)
    assert state() == "online"
    for tracker in trackers:
        await tracker.drain()
    console.on_close()
    await console.settled()


@pytest.mark.gen_test(timeout=30)
async def test_a_turn_is_held_by_one_node_at_a_time_and_its_publishes_come_first(
        nodes: list[Node]) -> None:
    a, b, c = nodes
    socks = [n.open() for n in nodes]
    for s, conn in socks:
        subscribe(s, "conv")
        await subscribed(s, conn, "conv")
    tries: list[int] = []
    take = b.adapter._lua_take_turn

    async def counted(**kw: Any) -> Any:
        tries.append(1)
        return await take(**kw)
    b.adapter._lua_take_turn = counted  # type: ignore[method-assign]

    async def b_writes() -> None:
        async with b.adapter.turn("k"):
            b.hub.trigger("conv", "msg", {"n": 2}, app=APP)

    async with a.adapter.turn("k"):
        a.hub.trigger("conv", "msg", {"n": 1}, app=APP)
        later = asyncio.ensure_future(b_writes())
        # b asked for the turn twice while a holds it, and did not have it.
        await wait_for(lambda: len(tries) >= 2)
        assert not later.done()
    await later
    for _, conn in socks:
        await wait_for(lambda conn=conn: len(conn.events("msg")) == 2)
        assert [json.loads(f["data"])["n"] for f in conn.events("msg")] == [1, 2]


@pytest.mark.gen_test(timeout=60)
async def test_turns_taken_on_three_nodes_reach_every_socket_in_turn_order(
        nodes: list[Node]) -> None:
    """Each node writes 40 times in turns of one key, numbering its writes inside the turn
    (as a conversation's cids are taken); every node's socket gets the 120 numbers in order,
    however the nodes' local deliveries and the bus interleave: each node's bus reader is
    made to lag (a busy node), so a node that pushed at once on taking the turn would put
    its number before the previous holder's."""
    socks = [n.open() for n in nodes]
    for s, conn in socks:
        subscribe(s, "conv")
        await subscribed(s, conn, "conv")
    lags = []
    for node in nodes:
        backlog: asyncio.Queue[str] = asyncio.Queue()
        reader = node.adapter._reader
        deliver, reader.on_message = reader.on_message, backlog.put_nowait

        async def lagging(backlog: asyncio.Queue[str] = backlog,
                          deliver: Any = deliver) -> None:
            while True:
                message = await backlog.get()
                await asyncio.sleep(0.003)
                deliver(message)
        lags.append(asyncio.ensure_future(lagging()))
    taken = [0]

    async def writer(node: Node) -> None:
        for _ in range(40):
            async with node.adapter.turn("conv-1"):
                taken[0] += 1
                n = taken[0]
                await asyncio.sleep(0)  # the store's commit, between the number and the push
                node.hub.trigger("conv", "msg", {"n": n}, app=APP)

    await asyncio.gather(*(writer(n) for n in nodes))
    for _, conn in socks:
        await wait_for(lambda conn=conn: len(conn.events("msg")) == 120, timeout=20)
        assert [json.loads(f["data"])["n"] for f in conn.events("msg")] == \
            list(range(1, 121))
    for lag in lags:
        lag.cancel()


@pytest.mark.gen_test(timeout=30)
async def test_a_turn_whose_holder_died_is_had_after_its_expiry(nodes: list[Node]) -> None:
    a, b, _ = nodes
    # A holder that never gave the turn back (its node killed): the key expires.
    await a.adapter.redis.set(f"{a.adapter.prefix}:turn:gone", "7:dead", px=300)
    async with b.adapter.turn("gone"):
        assert (await b.adapter.redis.get(f"{b.adapter.prefix}:turn:gone")).startswith(
            f"{b.adapter.node}:")
    await b.adapter.flushed()
    assert await b.adapter.redis.get(f"{b.adapter.prefix}:turn:gone") == \
        f"free:{b.adapter.node}"


@pytest.mark.gen_test(timeout=40)
async def test_webhooks_a_dead_node_had_not_delivered_are_sent_once_by_a_survivor(
        nodes: list[Node]) -> None:
    """c decides channel_occupied (its receiver answers 503, so c keeps retrying) and then
    channel_vacated (held), and dies before delivering either; a removes c and sends both,
    once, in order, the vacated after its hold."""
    import tornado.web
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    from realtime.pusher.webhooks import Webhooks, WebhookTarget

    got: list[dict[str, Any]] = []
    up = [False]

    class Hook(tornado.web.RequestHandler):
        def post(self) -> None:
            # c's deliveries never succeed: a POST c had on the wire when it "died" may
            # still arrive late here (a real kill cannot take it back either).
            if not up[0] or self.get_query_argument("from") == "c":
                self.set_status(503)
                return
            got.extend(json.loads(self.request.body)["events"])

    sock, port = bind_unused_port()
    server = HTTPServer(tornado.web.Application([(r"/hook", Hook)],
                                               log_function=lambda handler: None))
    server.add_sockets([sock])
    a, b, c = nodes
    hooks = {}
    for node, name in zip(nodes, "abc"):
        h = Webhooks({APP: [WebhookTarget(f"http://127.0.0.1:{port}/hook?from={name}")]},
                     grace_s=0.3, batch_window_s=0, retry_base_s=0.05)
        h.release_check = node.adapter.release_hold
        h.journal = node.adapter
        node.adapter.journal_listeners.append(h.adopt)
        node.hub.add_listener(h.on_event)
        hooks[node.adapter.node] = h
    try:
        s, conn = c.open()
        subscribe(s, "private-on-c")
        await subscribed(s, conn, "private-on-c")
        journal = f"{c.adapter.prefix}:node:{c.adapter.node}:journal"
        s.on_close()
        await s.settled()
        await c.adapter.flushed()
        # Both are in c's journal: the occupied being retried, the vacated held.
        assert await c.adapter.redis.hlen(journal) == 2
        # c dies: its tasks stop, its webhooks with them, its key expires.
        for task in c.adapter._tasks:
            task.cancel()
        for delivery in hooks[c.adapter.node]._deliveries[APP.id]:
            if delivery.task is not None:
                delivery.task.cancel()
        for timer, _, _ in hooks[c.adapter.node]._held.values():
            timer.cancel()
        await c.adapter.redis.delete(f"{c.adapter.prefix}:node:{c.adapter.node}:alive")
        up[0] = True
        assert await a.adapter.reap() == [c.adapter.node]
        await wait_for(lambda: len(got) >= 2, timeout=10)
        assert [(e["name"], e["channel"]) for e in got] == [
            ("channel_occupied", "private-on-c"), ("channel_vacated", "private-on-c")]
        # Delivered: a's own journal is empty again, c's is gone; nothing more comes.
        await wait_for(lambda: not hooks[a.adapter.node].pending())
        await a.adapter.flushed()
        assert await a.adapter.redis.exists(journal) == 0
        assert await a.adapter.redis.hlen(
            f"{a.adapter.prefix}:node:{a.adapter.node}:journal") == 0
        assert len(got) == 2
    finally:
        c.adapter._tasks = []
        hooks[c.adapter.node].closing = True  # dead: it sends nothing more
        for h in hooks.values():
            await h.close(0.1)
        server.stop()


@pytest.mark.gen_test(timeout=40)
async def test_after_redis_lost_its_data_no_two_live_nodes_share_a_number() -> None:
    """Redis restarted empty: `node_seq` starts again, so a node started then is handed a
    number a running node still has; the running node, finding its number taken when it
    registers again, takes another. Socket ids follow the node's number."""
    prefix = f"wolive-test-{uuid.uuid4().hex[:12]}"
    a, b = RedisAdapter(REDIS_URL, prefix), RedisAdapter(REDIS_URL, prefix)
    started = [a, b]
    try:
        await a.start()
        await b.start()
        assert (a.node, b.node) == ("1", "2")
        keys = [k async for k in a.redis.scan_iter(f"{prefix}:*")]
        await a.redis.delete(*keys)  # what a Redis restart without persistence leaves
        c = RedisAdapter(REDIS_URL, prefix)
        started.append(c)
        await c.start()
        assert c.node == "1"
        # a and b register again on their next heartbeat; a finds 1 taken.
        await wait_for(lambda: len({a.node, b.node, c.node}) == 3, timeout=15)
        await wait_for(lambda: a._lost is False and b._lost is False, timeout=15)
        live = await c.live_nodes()
        assert sorted(live, key=int) == sorted({a.node, b.node, c.node}, key=int)
        hub = Hub([APP], adapter=a)
        assert hub.next_socket_id().split(".")[0] == a.node
    finally:
        for adapter in started:
            await adapter.close()
        import redis.asyncio as aioredis
        r = aioredis.from_url(REDIS_URL)
        keys = [k async for k in r.scan_iter(f"{prefix}:*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()


@pytest.mark.gen_test(timeout=20)
async def test_a_turns_publishes_are_on_redis_when_the_turn_ends(nodes: list[Node]) -> None:
    """What a caller acknowledges after a turn (a chat message's 200) is already on the bus,
    so a node killed right after answering loses nothing it said it sent."""
    a = nodes[0]
    async with a.adapter.turn("ack"):
        a.hub.trigger("conv", "msg", {"n": 1}, app=APP)
    assert a.adapter._writer.written == a.adapter._writer.queued


@pytest.mark.gen_test(timeout=60)
async def test_the_bus_writer_reports_what_it_could_not_send_and_sends_again_once_back(
        tmp_path: Any) -> None:
    """`BusWriter` (the ordered writer): commands answered by Redis count as written; those
    queued while Redis is gone are given up and reported to `failed_since` (so a publish is
    not acknowledged when the other nodes were never told); once Redis is back, later
    commands go through, in order, on a new connection."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from realtime.pusher.redis_bus import BusReader, BusWriter
    private = PrivateRedis(tmp_path).start()
    writer = BusWriter(private.url, retry_s=0.1)
    heard: list[str] = []
    try:
        await writer.open()
        mark = writer.queued
        writer.queue("SET", "k", "1")
        writer.queue("PUBLISH", "bus", "one")
        await writer.written_through(writer.queued)
        assert not writer.failed_since(mark)
        check = aioredis.from_url(private.url)
        assert await check.get("k") == b"1"
        await check.aclose()

        private.stop()
        mark = writer.queued
        writer.queue("PUBLISH", "bus", "lost")
        await writer.written_through(writer.queued)
        assert writer.failed_since(mark)

        private.start()
        # A command Redis refuses (here a wrong type) is not done: reported as given up.
        mark = writer.queued
        writer.queue("SET", "word", "x")
        writer.queue("INCR", "word")
        for _ in range(100):  # the first try may come before the retry pause
            await writer.written_through(writer.queued)
            if writer._conn is not None:
                break
            mark = writer.queued
            writer.queue("SET", "word", "x")
            writer.queue("INCR", "word")
        assert writer.failed_since(mark) and not writer.failed_since(writer.queued)
        # Redis stalled (SIGSTOP): waiting for it is bounded; once it goes on, all is done.
        import signal
        private.proc.send_signal(signal.SIGSTOP)
        try:
            mark = writer.queued
            writer.queue("PUBLISH", "bus", "late")
            with pytest.raises(RedisTimeoutError):
                await writer.written_through(writer.queued, timeout=0.3)
        finally:
            private.proc.send_signal(signal.SIGCONT)
        await writer.written_through(writer.queued, timeout=10)
        assert not writer.failed_since(mark)
        reader = BusReader(private.url, ["bus"], heard.append)
        await reader.open()
        mark = writer.queued
        for n in range(50):
            writer.queue("PUBLISH", "bus", str(n))
        await writer.written_through(writer.queued)
        if writer.failed_since(mark):  # the first try may come before the retry pause
            mark = writer.queued
            for n in range(50):
                writer.queue("PUBLISH", "bus", str(n))
            await writer.written_through(writer.queued)
        assert not writer.failed_since(mark)
        await wait_for(lambda: len(heard) >= 50, timeout=10)
        assert heard[-50:] == [str(n) for n in range(50)]
        assert "lost" not in heard and "late" not in heard
        reader.close()
    finally:
        writer.close()
        private.stop()
    with pytest.raises(RedisConnectionError):
        await BusWriter(private.url).open()


@pytest.mark.gen_test(timeout=30)
async def test_the_bus_reader_follows_channels_and_follows_the_held_ones_again_on_reopen(
        tmp_path: Any) -> None:
    """`BusReader.follow` answers once Redis confirmed the subscription (then None: nothing
    to wait for), `unfollow` stops the messages, a follow while disconnected is refused, and
    `open` after a Redis restart subscribes again to the fixed channels and to what
    `held()` gives, and to nothing else."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from realtime.pusher.redis_bus import BusReader
    private = PrivateRedis(tmp_path).start()
    heard: list[str] = []
    held = {"ch:a"}
    reader = BusReader(private.url, ["fixed"], heard.append, held=lambda: sorted(held))
    r = aioredis.from_url(private.url, decode_responses=True)

    async def listening() -> set[str]:
        return set(await r.pubsub_channels())

    try:
        await reader.open()
        assert await listening() == {"fixed", "ch:a"}
        waiter = reader.follow("ch:b")
        assert waiter is not None and reader.follow("ch:b") is waiter
        await waiter
        assert reader.follow("ch:b") is None
        await r.publish("ch:b", "one")
        await wait_for(lambda: heard == ["one"])
        reader.unfollow("ch:b")
        await wait_for(lambda: "ch:b" not in reader.following())
        deadline = asyncio.get_running_loop().time() + 5
        while "ch:b" in await listening():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        await r.publish("ch:b", "two")
        await r.publish("fixed", "three")
        await wait_for(lambda: heard[-1:] == ["three"])
        assert "two" not in heard

        await r.aclose()
        private.stop()
        await asyncio.wait_for(reader.wait_closed(), 10)  # the reader saw it go
        with pytest.raises(RedisConnectionError):
            reader.follow("ch:c")
        private.start()
        held.add("ch:d")
        await reader.open()
        r = aioredis.from_url(private.url, decode_responses=True)
        assert await listening() == {"fixed", "ch:a", "ch:d"}
        assert reader.follow("ch:d") is None
        await r.publish("ch:d", "four")
        await wait_for(lambda: heard[-1:] == ["four"])
    finally:
        reader.close()
        await r.aclose()
        private.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_node_whose_bus_connection_drops_closes_its_sockets_and_listens_again(
        nodes: list[Node]) -> None:
    """Redis closes a node's bus subscription (`CLIENT KILL`, as it does itself to a
    subscriber over its output-buffer limit): what the others publish meanwhile never
    reaches that node, so its sockets are closed with 4200 (their clients reconnect and
    catch up) rather than left open and silently missing events; it then listens again, and
    a new socket there gets the others' publishes."""
    import redis.asyncio as aioredis
    a, b, _ = nodes
    sa, ca = a.open()
    subscribe(sa, "news")
    await subscribed(sa, ca, "news")
    host, port = a.adapter._reader._conn.transport.get_extra_info("sockname")[:2]
    r = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        assert await r.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}") in (1, True)
    finally:
        await r.aclose()
    await wait_for(lambda: ca.closed is not None, timeout=10)
    assert ca.closed == 4200
    await wait_for(lambda: a.adapter.listening, timeout=10)
    s2, c2 = a.open()
    subscribe(s2, "news")
    await subscribed(s2, c2, "news")

    async def heard() -> bool:
        b.hub.trigger("news", "flash", {}, app=APP)
        await b.adapter.flushed()
        return bool(c2.events("flash"))
    await wait_for_async(heard, timeout=10)
    assert c2.closed is None


async def wait_for_async(check: Any, timeout: float) -> None:
    """Wait until the coroutine function `check` answers True (asked again each 50 ms)."""
    import asyncio
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)
