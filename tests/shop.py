"""A shop with several agents and visitors, for the assignment and conversation tests.

`Shop.open(...)` installs business `shop1` (its super_manager `boss`, service_id 1); `agent()`
adds agents (any business, any level) and logs each into its own `Client`; `online()`
connects a Pusher socket holding the agent's `kefu{id}`, `ud{id}` and `all{business}`
channels (so the presence tracker marks it online, and the test sees its events).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from helpers import (BIZ, BOSS, PASSWORD, Client, PusherSocket, db_rows, open_visitor_window,
                     wait_for)

from handlers.install import hash_password
from store import NotFound

SUBSCRIBED = "pusher_internal:subscription_succeeded"


@dataclass
class Agent:
    sid: int
    user: str
    business_id: str
    client: Client
    sock: PusherSocket | None = None


@dataclass
class Visitor:
    vid: str
    business_id: str
    client: Client
    boot: dict[str, Any]
    sock: PusherSocket | None = None

    @property
    def ids(self) -> dict[str, str]:
        return {"visiter_id": self.vid, "business_id": self.business_id,
                "channel": self.boot["channel"]}


@dataclass
class Shop:
    server: Any
    base_url: str
    ws_base: str
    db: str
    boss: Agent
    agents: dict[str, Agent] = field(default_factory=dict)
    hashed: str = ""  # PASSWORD's hash, made once: every agent added has the same

    @classmethod
    async def open(cls, server: Any, base_url: str, ws_base: str, db: str,
                   rule: str = "auto") -> Shop:
        boss = Client(base_url)
        resp = await boss.install(BIZ, BOSS, PASSWORD)
        assert resp.code == 302, resp.code
        shop = cls(server, base_url, ws_base, db, Agent(1, BOSS, BIZ, boss))
        if rule != "auto":
            await shop.set_rule(rule)
        return shop

    async def set_rule(self, rule: str) -> None:
        """Every business's distribution rule, through the server's store (so its row
        cache follows at once, as after `/admin/manager/switches`)."""
        store = self.server.store
        for row in await store.businesses():
            await store.set_switches(row["business_id"], {"distribution_rule": rule})

    async def agent(self, user: str, level: str = "service", business_id: str = BIZ,
                    nick_name: str | None = None) -> Agent:
        store = self.server.store
        try:
            await store.get_business(business_id)
        except NotFound:
            await store.add_business(business_id)
        self.hashed = self.hashed or await hash_password(PASSWORD, 4)
        row = await store.add_service(business_id, user, nick_name or user.title(),
                                      self.hashed, level=level)
        client = Client(self.base_url)
        resp = await client.login(user, PASSWORD)
        assert resp.code == 302, (user, resp.code)
        agent = Agent(row["service_id"], user, business_id, client)
        self.agents[user] = agent
        return agent

    async def staff(self, *people: tuple[str, str, str], nick: Any = None
                    ) -> tuple[dict[str, int], dict[str, Client]]:
        """Agents (user, level, business_id), in order, logged in; their service ids (the
        boss's too) and clients. `nick(user)`: the nick names (default: user.title())."""
        ids, clients = {BOSS: 1}, {BOSS: self.boss.client}
        for user, level, business_id in people:
            agent = await self.agent(user, level, business_id,
                                     nick_name=nick(user) if nick else None)
            ids[user], clients[user] = agent.sid, agent.client
        return ids, clients

    async def online(self, agent: Agent) -> PusherSocket:
        sock = await PusherSocket.connect(self.ws_base, cookie=agent.client.cookie_header())
        # `kefu` last: holding it is what makes the agent online, and coming online hands it
        # the waiting visitors at once (told on `ud`/`all`), possibly before a later
        # subscription is answered; the console reads them again on subscribing instead.
        for channel in (f"ud{agent.sid}", f"all{agent.business_id}", f"kefu{agent.sid}"):
            answer = await sock.subscribe(channel)
            assert answer["event"] == SUBSCRIBED, answer
        agent.sock = sock
        await wait_for(lambda: self.state(agent) == "online")
        return sock

    def state(self, agent: Agent) -> str:
        return str(db_rows(self.db, "SELECT state FROM wolive_service WHERE service_id = %s",
                           (agent.sid,))[0]["state"])

    async def visitor(self, vid: str, business_id: str = BIZ, listen: bool = True,
                      **query: str) -> Visitor:
        client, boot = await open_visitor_window(self.base_url, business_id, vid, **query)
        v = Visitor(vid, business_id, client, boot)
        if listen:
            v.sock = await PusherSocket.connect(self.ws_base)
            assert (await v.sock.subscribe("cu" + boot["channel"]))["event"] == SUBSCRIBED
        return v

    async def notice(self, v: Visitor, **extra: Any) -> dict[str, Any]:
        code, body = await v.client.json("/admin/event/notice", "POST", form={
            **v.ids, "visiter_name": v.boot["visiter_name"], "avatar": v.boot["avatar"],
            "record": "http://shop.example/p/1", **extra})
        assert code == 200, body
        return body

    def queue(self, vid: str, business_id: str = BIZ) -> dict[str, Any] | None:
        rows = db_rows(self.db, "SELECT service_id, state FROM wolive_queue WHERE "
                       "visiter_id = %s AND business_id = %s", (vid, business_id))
        return rows[0] if rows else None


async def post(agent: Agent, path: str, **form: Any) -> tuple[int, dict[str, Any]]:
    """POST as the agent's console (with its `_xsrf`)."""
    return await agent.client.json(path, "POST", form=form)


async def get(agent: Agent, path: str, **form: Any) -> tuple[int, dict[str, Any]]:
    return await agent.client.json(path, "GET", form=form or None)


async def expect_about(sock: PusherSocket | None, event: str, channel: str, visiter_id: str,
                       timeout: float = 5.0) -> dict[str, Any]:
    """The next `event` on `channel` about `visiter_id` (earlier ones about others skipped)."""
    assert sock is not None
    while True:
        frame = await sock.expect(event, channel, timeout)
        data = frame["data"]
        vid = data.get("visiter_id") or data.get("message", {}).get("visiter_id")
        if vid == visiter_id:
            return frame


def visitor_state(s: Shop, vid: str) -> str:
    """The visitor's presence state in `wolive_visiter` (online / offline)."""
    return str(db_rows(s.db, "SELECT state FROM wolive_visiter WHERE visiter_id = %s",
                       (vid,))[0]["state"])


async def next_line(v: Visitor, key: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next system line `key` pushed to the visitor window (others skipped)."""
    assert v.sock is not None
    while True:
        m = (await v.sock.expect("my-event", timeout=timeout))["data"]["message"]
        if m.get("msg_type") == "system" and json.loads(m["content"])["key"] == key:
            return m
