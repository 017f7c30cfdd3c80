"""Three `python wolive.py` processes on one MariaDB database and the machine's Redis
(`cluster.redis_url`), with clients spread over them, give the answers of one server; and a
cluster config that would half-work is refused at start, naming the key.

Redis is required when WOLIVE_REQUIRE_REDIS=1 (CI); otherwise skipped without it.
"""
from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pusher
import pytest
import tornado.web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port
from conftest import (ADMIN_PASSWORD, ADMIN_USER, RunningServer, start_server, stop_server,
                      write_config)
from test_e2e_node import run_node_script

from helpers import (OPEN_SOCKETS, REDIS_URL, Client, PrivateRedis, PusherSocket, db_rows,
                     open_visitor_window, require_redis, wait_for)

import wolive
from realtime.pusher.signing import channel_auth, user_auth

#: A running node's base URL → the `start_server` arguments that start one more node of its
#: cluster.
CLUSTER: dict[str, dict[str, Any]] = {}
SECRET = "cluster-app-secret-" + "x" * 16


require_redis()


#: What the cluster's webhooks POSTed (the `cluster` fixture's receiver): each body's events.
HOOKS: list[dict[str, Any]] = []


class HookReceiver(tornado.web.RequestHandler):
    def post(self) -> None:
        HOOKS.extend(json.loads(self.request.body)["events"])
        self.finish("ok")


def cluster_sections(uploads: Path, prefix: str, hook_url: str = "") -> dict[str, Any]:
    app: dict[str, Any] = {"id": "1", "key": "wolive", "secret": SECRET}
    if hook_url:
        app["webhooks"] = [{"url": hook_url, "events": ["member_added", "member_removed",
                                                        "channel_vacated"]}]
    return {
        "pusher": {"apps": [app]},
        "uploads": {"dir": str(uploads), "shared": True},
        "cluster": {"redis_url": REDIS_URL, "prefix": prefix},
        # One conversation per agent: the cap test's arrivals race for one place.
        "chat": {"max_conversations_per_agent": 1},
    }


@pytest.fixture
def cluster(io_loop: Any, tmp_path: Path, fresh_mysql_db: str
            ) -> Iterator[list[RunningServer]]:
    prefix = f"wolive-test-{uuid.uuid4().hex[:12]}"
    HOOKS.clear()
    sock, port = bind_unused_port()
    receiver = HTTPServer(tornado.web.Application([(r"/hook", HookReceiver)]))
    receiver.add_sockets([sock])
    extra = cluster_sections(tmp_path / "uploads", prefix, f"http://127.0.0.1:{port}/hook")
    keys = {"cookie_secret": secrets.token_hex(16), "channel_secret": secrets.token_hex(16)}
    nodes: list[RunningServer] = []
    try:
        for i in range(3):
            home = tmp_path / f"node{i}"
            home.mkdir()
            # Behind one address in production; here node 0's is the public one, so a
            # console page from node 0 opens agent sockets on any node.
            public = {"public_url": nodes[0].base_url} if nodes else {}
            nodes.append(start_server(home, fresh_mysql_db, create_admin=(i == 0),
                                      extra=extra, **keys, **public))
            CLUSTER[nodes[-1].base_url] = {"extra": extra, **keys, **public}
        yield nodes
    finally:
        async def close_sockets() -> None:  # this test's loop ends with the test
            while OPEN_SOCKETS:
                OPEN_SOCKETS.pop().close()
            await asyncio.sleep(0.01)
        io_loop.run_sync(close_sockets)
        receiver.stop()
        for node in nodes:
            if node.proc.poll() is not None and node.proc.returncode == -9:
                continue  # killed by the test
            code = stop_server(node)
            assert code == 0, f"node exited {code}:\n{node.logs()}"
            assert "Traceback" not in node.logs(), node.logs()
        import redis
        r = redis.Redis.from_url(REDIS_URL)
        stale = list(r.scan_iter(f"{prefix}:*"))
        if stale:
            r.delete(*stale)
        r.close()


def data_of(frame: dict[str, Any]) -> Any:
    raw = frame["data"]
    return json.loads(raw) if isinstance(raw, str) else raw


def api(node: RunningServer) -> pusher.Pusher:
    """The official Python library, pointed at one node."""
    url = urlsplit(node.base_url)
    return pusher.Pusher(app_id="1", key="wolive", secret=SECRET, host=url.hostname,
                         port=url.port, ssl=False)


async def join_presence(node: RunningServer, channel: str, user_id: str) -> PusherSocket:
    sock = await PusherSocket.connect(node.ws_url)
    data = json.dumps({"user_id": user_id, "user_info": {"name": user_id}})
    sock.send("pusher:subscribe", {"channel": channel, "channel_data": data,
                                   "auth": channel_auth("wolive", SECRET, sock.socket_id,
                                                        channel, data)})
    await sock.expect("pusher_internal:subscription_succeeded", channel)
    return sock


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_three_nodes_deliver_share_presence_and_agree_on_the_api(
        cluster: list[RunningServer]) -> None:
    a, b, c = cluster
    ids: set[int] = set()
    on_b = await PusherSocket.connect(b.ws_url)
    on_c = await PusherSocket.connect(c.ws_url)
    for sock in (on_b, on_c):
        assert (await sock.subscribe("news"))["event"] == \
            "pusher_internal:subscription_succeeded"
        ids.add(int(sock.socket_id.split(".")[0]))
    assert len(ids) == 2  # socket ids carry the node's number: never the same on two nodes
    # The official library publishes on A; B and C deliver; socket_id exclusion crosses.
    api(a).trigger("news", "flash", {"n": 1})
    for sock in (on_b, on_c):
        frame = await sock.expect("flash", "news")
        assert data_of(frame) == {"n": 1}
    api(a).trigger("news", "flash", {"n": 2}, socket_id=on_c.socket_id)
    assert data_of(await on_b.expect("flash", "news")) == {"n": 2}
    api(b).trigger("news", "after", {})
    await on_c.expect("after", "news")  # published after n=2: n=2 never came to C
    assert not [f for f in on_c.pending if f["event"] == "flash"]

    # Presence on A, B and C: one member list; u1's second tab on C raises no event.
    ch = "presence-desk"
    u1 = await join_presence(a, ch, "u1")
    u2 = await join_presence(b, ch, "u2")
    added = await u1.expect("pusher_internal:member_added", ch)
    assert data_of(added)["user_id"] == "u2"
    u1_again = await join_presence(c, ch, "u1")
    for node in cluster:
        assert api(node).users_info(ch) == {"users": [{"id": "u1"}, {"id": "u2"}]}
        assert api(node).channel_info(ch, ["user_count", "subscription_count"]) == {
            "occupied": True, "user_count": 2, "subscription_count": 3}
        assert api(node).channels_info(prefix_filter="presence-", attributes=["user_count"]) \
            == {"channels": {ch: {"user_count": 2}}}
    u1.close()  # u1 still has its tab on C: no member_removed
    await wait_for(lambda: api(b).channel_info(ch, ["subscription_count"])[
        "subscription_count"] == 2, timeout=10)
    await u2.nothing(0.5)
    u1_again.close()
    removed = await u2.expect("pusher_internal:member_removed", ch)
    assert data_of(removed) == {"user_id": "u1"}

    # terminate_connections asked of A closes the user's socket on C with 4009.
    signed = await PusherSocket.connect(c.ws_url)
    user_data = json.dumps({"id": "carol"})
    signed.send("pusher:signin", {"user_data": user_data, "auth": user_auth(
        "wolive", SECRET, signed.socket_id, user_data)})
    await signed.expect("pusher:signin_success")
    api(a).terminate_user_connections("carol")
    error = await signed.expect("pusher:error", timeout=10)
    assert data_of(error)["code"] == 4009

    # A cache channel's event set through A is replayed to a subscriber on C.
    api(a).trigger("cache-price", "price", {"eur": 3})
    late = await PusherSocket.connect(c.ws_url)
    await late.subscribe("cache-price")
    assert data_of(await late.expect("price", "cache-price")) == {"eur": 3}


@pytest.mark.mariadb
@pytest.mark.e2e
def test_the_real_pusher_clients_conform_with_sockets_spread_over_three_nodes(
        cluster: list[RunningServer]) -> None:
    """tests/node/conformance.js (pusher-js 8, the Node library 5) with each pusher-js
    client on another node in turn: presence, private and encrypted channels, client
    events, sign-in, server-to-user events, the HTTP API and terminate_connections, all
    across nodes."""
    from test_pusher_conformance_node import SCRIPT, SCRIPT_TIMEOUT_S

    from realtime.pusher.signing import derive_master_key
    a, b, c = cluster
    summary = run_node_script(
        a, SCRIPT, SCRIPT_TIMEOUT_S, WOLIVE_APP_ID="1", WOLIVE_APP_SECRET=SECRET,
        WOLIVE_MASTER_KEY_B64=base64.b64encode(derive_master_key(SECRET)).decode(),
        WOLIVE_TIMEOUT_MS=str(SCRIPT_TIMEOUT_S * 1000),
        WOLIVE_WS_URLS=",".join(n.base_url for n in (b, c, a)))
    assert summary["ok"] is True


@pytest.mark.mariadb
@pytest.mark.e2e
def test_the_pusher_js_chat_runs_with_visitor_and_agent_on_different_nodes(
        cluster: list[RunningServer]) -> None:
    """tests/node/e2e_chat.js: a visitor and an agent chat both ways, pushed live, with
    their pusher-js sockets on two other nodes than the one serving the pages."""
    import test_e2e_node as e2e
    a, b, c = cluster
    summary = run_node_script(
        a, e2e.SCRIPT, e2e.SCRIPT_TIMEOUT_S, WOLIVE_VISITER_ID=e2e.VISITER_ID,
        WOLIVE_VISITER_NAME=e2e.VISITER_NAME, WOLIVE_VISITOR_TEXT=e2e.VISITOR_TEXT,
        WOLIVE_AGENT_TEXT=e2e.AGENT_TEXT, WOLIVE_E2E_TIMEOUT_MS=str(e2e.SCRIPT_TIMEOUT_S * 1000),
        WOLIVE_WS_URLS=",".join(n.base_url for n in (b, c)))
    assert summary["ok"] is True, summary


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_a_killed_node_is_removed_by_the_others_and_its_restart_keeps_agents_online(
        cluster: list[RunningServer], tmp_path: Path) -> None:
    a, b, c = cluster
    # An agent's console on A keeps it online; a visitor-like presence member sits on C.
    agent = Client(a.base_url)
    assert (await agent.login(ADMIN_USER, ADMIN_PASSWORD)).code == 302
    console = await PusherSocket.connect(a.ws_url, cookie=agent.cookie_header())
    assert (await console.subscribe("kefu1"))["event"] == \
        "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(a.db_url, "SELECT state FROM wolive_service "
                                   "WHERE service_id = 1")[0]["state"] == "online", 10)
    # A second agent, added by the boss, whose only console is on C.
    code, body = await agent.json("/admin/manager/registForService", "POST", form={
        "user_name": "anna", "nick_name": "Anna", "password": ADMIN_PASSWORD,
        "password2": ADMIN_PASSWORD})
    assert (code, body["code"]) == (200, 0), body
    anna = Client(c.base_url)
    assert (await anna.login("anna", ADMIN_PASSWORD)).code == 302
    anna_sid = int(db_rows(a.db_url, "SELECT service_id FROM wolive_service "
                           "WHERE user_name = 'anna'")[0]["service_id"])
    anna_console = await PusherSocket.connect(c.ws_url, cookie=anna.cookie_header())
    assert (await anna_console.subscribe(f"kefu{anna_sid}"))["event"] == \
        "pusher_internal:subscription_succeeded"

    def state(sid: int) -> str:
        return str(db_rows(a.db_url, "SELECT state FROM wolive_service WHERE service_id = %s",
                           (sid,))[0]["state"])
    await wait_for(lambda: state(anna_sid) == "online", 10)
    ch = "presence-desk"
    u1 = await join_presence(a, ch, "u1")
    await join_presence(c, ch, "u3")
    await u1.expect("pusher_internal:member_added", ch)
    c.proc.kill()  # SIGKILL: no goodbye
    c.proc.wait()
    # The survivors remove its member within the bound (heartbeat expiry + one look).
    removed = await u1.expect("pusher_internal:member_removed", ch, timeout=15)
    assert data_of(removed) == {"user_id": "u3"}
    assert api(b).channel_info(ch, ["user_count"]) == {"occupied": True, "user_count": 1}
    # A member_removed webhook for u3, sent by the node that removed it (after the hold).
    await wait_for(lambda: [e for e in HOOKS if e["name"] == "member_removed"], 15)
    # Anna's console died with C: the cluster writes her offline (after the 3 s grace);
    # the boss, on A, stays online.
    await wait_for(lambda: state(anna_sid) == "offline", 20)
    assert state(1) == "online"
    # By now every node's hold is long over: u3's removal was sent once, by one node.
    assert [e["user_id"] for e in HOOKS if e["name"] == "member_removed"] == ["u3"]
    # C comes back as a new process (a new node number): A's agent stays online, and the
    # new node answers for the whole cluster.
    home = tmp_path / "node2-again"
    home.mkdir()
    restarted = start_server(home, a.db_url, create_admin=False, **CLUSTER[a.base_url])
    try:
        assert db_rows(a.db_url, "SELECT state FROM wolive_service "
                       "WHERE service_id = 1")[0]["state"] == "online"
        assert api(restarted).channel_info("kefu1", ["subscription_count"]) == {
            "occupied": True, "subscription_count": 1}
        assert api(restarted).users_info(ch) == {"users": [{"id": "u1"}]}
    finally:
        assert stop_server(restarted) == 0, restarted.logs()
    assert "Traceback" not in restarted.logs(), restarted.logs()


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_cap_one_with_ten_arrivals_over_three_nodes_assigns_exactly_one(
        cluster: list[RunningServer]) -> None:
    a = cluster[0]
    agent = Client(a.base_url)
    assert (await agent.login(ADMIN_USER, ADMIN_PASSWORD)).code == 302
    console = await PusherSocket.connect(a.ws_url, cookie=agent.cookie_header())
    for channel in ("ud1", "allshop1", "kefu1"):
        assert (await console.subscribe(channel))["event"] == \
            "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(a.db_url, "SELECT state FROM wolive_service "
                                   "WHERE service_id = 1")[0]["state"] == "online", 10)
    visitors = [await open_visitor_window(cluster[i % 3].base_url, "shop1", f"v{i}")
                for i in range(10)]

    async def arrive(client: Client, boot: dict[str, Any], vid: str) -> int:
        code, body = await client.json("/admin/event/notice", "POST", form={
            "visiter_id": vid, "business_id": "shop1", "channel": boot["channel"],
            "visiter_name": boot["visiter_name"], "avatar": boot["avatar"],
            "record": "http://shop.example/"})
        assert code == 200, body
        return int(body["code"])

    codes = await asyncio.gather(*[arrive(client, boot, f"v{i}")
                                   for i, (client, boot) in enumerate(visitors)])
    assert sorted(codes) == [0] + [2] * 9  # one served, nine waiting
    served = db_rows(a.db_url, "SELECT COUNT(*) AS n FROM wolive_queue "
                     "WHERE business_id = 'shop1' AND service_id = 1")
    assert served[0]["n"] == 1


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=180)
async def test_a_conversation_written_on_three_nodes_at_once_is_pushed_in_cid_order(
        cluster: list[RunningServer]) -> None:
    """The visitor and the agent each send 15 messages at once, spread over the three nodes;
    the visitor's socket (on node 2) and the agent's console (on node 1) get all 30 in cid
    order, so a client's catch-up cursor (its highest cid) never passes a message it has
    not seen."""
    a, b, c = cluster
    agent = Client(a.base_url)
    assert (await agent.login(ADMIN_USER, ADMIN_PASSWORD)).code == 302
    console = await PusherSocket.connect(b.ws_url, cookie=agent.cookie_header())
    for channel in ("ud1", "allshop1", "kefu1"):
        assert (await console.subscribe(channel))["event"] == \
            "pusher_internal:subscription_succeeded"
    await wait_for(lambda: db_rows(a.db_url, "SELECT state FROM wolive_service "
                                   "WHERE service_id = 1")[0]["state"] == "online", 10)
    visitor, boot = await open_visitor_window(a.base_url, "shop1", "v-order")
    vsock = await PusherSocket.connect(c.ws_url)
    await vsock.subscribe("cu" + boot["channel"])
    code, body = await visitor.json("/admin/event/notice", "POST", form={
        "visiter_id": "v-order", "business_id": "shop1", "channel": boot["channel"],
        "visiter_name": boot["visiter_name"], "avatar": boot["avatar"],
        "record": "http://shop.example/"})
    assert (code, body["code"]) == (200, 0), body

    def on(client: Client, node: RunningServer) -> Client:
        """The same browser (its cookies) talking to another node."""
        other = Client(node.base_url)
        other.cookies = client.cookies
        return other

    async def visitor_says(n: int) -> int:
        code, body = await on(visitor, cluster[n % 3]).json("/admin/event/chats", "POST", form={
            "visiter_id": "v-order", "service_id": 1, "business_id": "shop1",
            "channel": boot["channel"], "content": f"v{n}", "avatar": "", "record": ""})
        assert (code, body["code"]) == (200, 0), body
        return int(body["data"]["cid"])

    async def agent_says(n: int) -> int:
        code, body = await on(agent, cluster[(n + 1) % 3]).json("/admin/set/chats", "POST", form={
            "visiter_id": "v-order", "content": f"a{n}", "avatar": ""})
        assert (code, body["code"]) == (200, 0), body
        return int(body["data"]["cid"])

    cids = await asyncio.gather(*[visitor_says(n) for n in range(15)],
                                *[agent_says(n) for n in range(15)])
    assert len(set(cids)) == 30

    async def pushed(sock: PusherSocket, events: tuple[str, ...]) -> list[int]:
        got: list[int] = []
        while len(got) < 30:
            frame = await sock.recv(timeout=20)
            if frame.get("event") in events:
                message = data_of(frame)["message"]
                if message["visiter_id"] == "v-order" and message["msg_type"] == "text":
                    got.append(int(message["cid"]))
        return got

    assert await pushed(vsock, ("my-event",)) == sorted(cids)
    assert await pushed(console, ("cu-event", "my-event")) == sorted(cids)


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_the_message_board_limit_holds_across_nodes(
        cluster: list[RunningServer]) -> None:
    from realtime.chat.content import BOARD_MESSAGES_PER_WINDOW

    async def leave(node: RunningServer, n: int) -> tuple[int, int]:
        code, body = await Client(node.base_url).json("/admin/event/message", "POST", form={
            "business_id": "shop1", "name": "Li", "moblie": "13800000000",
            "email": "", "content": f"message {n}"})
        return code, int(body["code"])

    # One address (this test's) leaves its five messages over three nodes, then is refused
    # on every node.
    for n in range(BOARD_MESSAGES_PER_WINDOW):
        assert await leave(cluster[n % 3], n) == (200, 0)
    for node in cluster:
        assert await leave(node, 99) == (429, 1)
    rows = db_rows(cluster[0].db_url, "SELECT COUNT(*) AS n FROM wolive_message")
    assert rows[0]["n"] == BOARD_MESSAGES_PER_WINDOW


@pytest.mark.parametrize("change, key", [
    ({"database": {"url": "sqlite:///data/wolive.db"}}, "database.url"),
    ({"server": {"cookie_secret": ""}}, "server.cookie_secret"),
    ({"server": {"cookie_secret": "change-me"}}, "server.cookie_secret"),
    ({"server": {"channel_secret": ""}}, "server.channel_secret"),
    ({"pusher": {"apps": [{"id": "1", "key": "wolive"}]}}, "pusher.apps[0].secret"),
    ({"uploads": {"dir": "up", "shared": False}}, "uploads.shared"),
    ({"cluster": {"redis_url": "http://127.0.0.1:6379", "prefix": "p"}}, "cluster.redis_url"),
    ({"cluster": {"redis_url": REDIS_URL, "prefix": "a b"}}, "cluster.prefix"),
])
def test_a_cluster_config_that_would_half_work_is_refused_naming_the_key(
        tmp_path: Path, change: dict[str, Any], key: str) -> None:
    sections = cluster_sections(tmp_path / "uploads", "p")
    server = {"cookie_secret": "c" * 32, "channel_secret": "d" * 32}
    for section, values in change.items():
        if section == "server":
            server.update(values)
        elif section != "database":
            sections[section] = values
    db = change.get("database", {}).get("url", "mysql://root:@127.0.0.1:3306/x")
    path = write_config(tmp_path, db, extra=sections, **server)
    with pytest.raises(wolive.ConfigProblem) as refused:
        wolive.load_config(str(path))
    assert str(refused.value).startswith(key + ":"), str(refused.value)
    # The same config without the cluster key is a good single-node config.
    if key not in ("cluster.redis_url", "cluster.prefix"):
        sections["cluster"] = {"redis_url": ""}
        wolive.load_config(str(write_config(tmp_path, db, extra=sections, **server)))


@pytest.mark.mariadb
@pytest.mark.gen_test(timeout=120)
async def test_redis_out_of_reach_is_a_503_on_the_http_api_and_the_chat(
        tmp_path: Path, fresh_mysql_db: str) -> None:
    """A node whose Redis (here a private one, stopped by the test) cannot be reached
    answers the Pusher HTTP API's queries and a chat message with 503 and `Retry-After`,
    in each caller's error shape, never a 500."""
    private = PrivateRedis(tmp_path).start()
    extra = cluster_sections(tmp_path / "uploads", "wolive-test-503")
    extra["cluster"]["redis_url"] = private.url
    extra["metrics"] = {"enabled": True, "allow_ips": ["127.0.0.1"]}
    home = tmp_path / "node"
    home.mkdir()
    node = start_server(home, fresh_mysql_db, extra=extra, cookie_secret=secrets.token_hex(16),
                        channel_secret=secrets.token_hex(16))
    try:
        visitor, boot = await open_visitor_window(node.base_url, "shop1", "v-503")
        code, body = await visitor.json("/admin/event/notice", "POST", form={
            "visiter_id": "v-503", "business_id": "shop1", "channel": boot["channel"],
            "visiter_name": boot["visiter_name"], "avatar": boot["avatar"],
            "record": "http://shop.example/"})
        assert code == 200 and body["code"] in (0, 3), body  # 3: nobody online, waiting
        agent = Client(node.base_url)
        assert (await agent.login(ADMIN_USER, ADMIN_PASSWORD)).code == 302
        assert api(node).trigger("news", "flash", {"n": 1}) == {}  # Redis has it
        private.stop()
        with pytest.raises(pusher.errors.PusherError) as raised:
            api(node).channels_info()
        assert "503" in str(raised.value) or "unavailable" in str(raised.value)
        # A publish the other nodes cannot be told of is refused, not answered {}.
        for publish in (lambda: api(node).trigger("news", "flash", {"n": 2}),
                        lambda: api(node).trigger_batch(
                            [{"channel": "news", "name": "flash", "data": "{}"}])):
            with pytest.raises(pusher.errors.PusherError) as raised:
                publish()
            assert "503" in str(raised.value) or "unavailable" in str(raised.value)
        resp = await Client(node.base_url).http.fetch(
            node.base_url + "/apps/1/channels", raise_error=False)
        assert resp.code in (401, 503)  # unsigned: refused before Redis is asked
        code, body = await visitor.json("/admin/event/chats", "POST", form={
            "visiter_id": "v-503", "business_id": "shop1", "channel": boot["channel"],
            "content": "hello?"})
        assert code in (200, 503), body  # stored and answered, or refused: never a 500
        if code == 503:
            assert body["code"] == 1 and "unavailable" in body["msg"]
        # Closing the conversation: refused as a whole, never closed without its "ended"
        # line (the visitor's rating prompt).
        state = "SELECT state FROM wolive_queue WHERE visiter_id = 'v-503'"
        before = db_rows(node.db_url, state)[0]["state"]
        code, body = await agent.json("/admin/set/close", "POST",
                                      form={"visiter_id": "v-503"})
        assert code == 503, body
        assert db_rows(node.db_url, state)[0]["state"] == before != "complete"
        # Not ready while cut off (a load balancer sends new sockets elsewhere), ready again
        # once Redis is back.
        probe = Client(node.base_url).http

        async def readiness(code: int) -> Any:
            deadline = time.monotonic() + 20
            while True:
                resp = await probe.fetch(node.base_url + "/readyz", raise_error=False)
                if resp.code == code:
                    return json.loads(resp.body)
                assert time.monotonic() < deadline, (resp.code, resp.body, node.logs())
                await asyncio.sleep(0.1)
        assert (await readiness(503))["reason"].startswith("cluster: ")

        async def cluster_ready() -> str:
            text = (await probe.fetch(node.base_url + "/metrics")).body.decode()
            return next(line.split()[1] for line in text.splitlines()
                        if line.startswith("wolive_cluster_ready "))
        assert await cluster_ready() == "0.0"
        private.start()
        assert (await readiness(200)) == {"status": "ready"}
        assert await cluster_ready() == "1.0"
    finally:
        private.stop()
        assert stop_server(node) == 0, node.logs()
    assert "Traceback" not in node.logs(), node.logs()


@pytest.mark.mariadb
def test_a_node_that_cannot_listen_exits_and_leaves_the_cluster(
        tmp_path: Path, fresh_mysql_db: str) -> None:
    """A node whose port is taken says so and exits 1, and leaves nothing registered in
    Redis for the others to reap as a dead node (its number, its alive key)."""
    import subprocess
    import sys

    import redis

    import conftest
    prefix = f"wolive-test-{uuid.uuid4().hex[:12]}"
    taken, port = bind_unused_port()
    taken.listen(1)
    extra = cluster_sections(tmp_path / "uploads", prefix)
    config = conftest.write_config(tmp_path, fresh_mysql_db, extra=extra, port=port,
                                   cookie_secret=secrets.token_hex(16),
                                   channel_secret=secrets.token_hex(16), log_level="info")
    r = redis.Redis.from_url(REDIS_URL)
    try:
        done = subprocess.run([sys.executable, str(conftest.ROOT / "wolive.py"), "--config",
                               str(config)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1, done.stderr
        assert "cannot listen" in done.stderr
        assert "cluster: node" in done.stderr  # it had joined the cluster before
        assert r.smembers(f"{prefix}:nodes") == set()
        assert list(r.scan_iter(f"{prefix}:node:*")) == []
    finally:
        taken.close()
        keys = list(r.scan_iter(f"{prefix}:*"))
        if keys:
            r.delete(*keys)
        r.close()


def test_the_redis_url_is_logged_with_its_password_masked() -> None:
    """`wolive.shown_url`, used for the "cluster: node N on URL" line: a password never
    reaches the log; everything else of the URL does."""
    assert wolive.shown_url("redis://:s3cret@10.0.0.5:6380/3") == "redis://:***@10.0.0.5:6380/3"
    assert wolive.shown_url("rediss://app:pw@redis.example:6379/0") == \
        "rediss://app:***@redis.example:6379/0"
    assert wolive.shown_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert wolive.shown_url("unix:///run/redis.sock?db=1") == "unix:///run/redis.sock?db=1"
