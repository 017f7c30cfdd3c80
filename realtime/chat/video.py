"""Video calls: ask and refuse (the WoLive document's `video` / `video-refuse` events), and
the private call channels both sides later join for WebRTC signalling.

Document: agents listen on `kefu{service_id}` and visitors on `cu{channel}` for `video`
("监听视频申请请求") and `video-refuse` ("监听对方拒绝视频的请求"). The WebRTC
offer / answer / ICE candidates travel as client events on a private channel for the call;
STUN/TURN servers come from config (the original hard-coded a third party's).

A request allocates `private-call-<32 hex>`, remembered (`CALL_TTL_S`) with the one agent and
the one visitor who may join it (`Video.may_join_call`), so a call's signalling can be read
by nobody else: in memory, or with several nodes in Redis (`Video.shared`), where every node
sees it. Asking works only when the business's
`wolive_business.video_state` is `open`; refusing always works.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from store import NotFound, Store

from . import channels
from .errors import ChatError
from .facade import Chat
from .values import Agent
from ..pusher.hub import Hub

#: Prefix of a call's channel: `private-` so joining needs a signature (Pusher "private
#: channels") and client events are allowed on it.
CALL_PREFIX = channels.CALL_PREFIX
#: How long after the last ask a call channel may still be joined (seconds): ringing plus a
#: long conversation; a refusal ends it at once.
CALL_TTL_S = 4 * 3600
#: Most calls remembered at once; beyond it the oldest are forgotten (memory stays bounded
#: even if someone asks in a loop: each entry is ~200 bytes).
MAX_CALLS = 10_000
#: WebRTC ICE server URL schemes (RFC 7064, RFC 7065).
ICE_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


@dataclass(frozen=True)
class VisitorParty:
    """A visitor as the call rules see it (after it proved itself with its channel)."""

    business_id: str
    visiter_id: str


Party = Agent | VisitorParty


@dataclass(frozen=True)
class Call:
    """One call channel and the two who may join it; `expires_at` is `clock()` seconds."""

    channel: str
    business_id: str
    service_id: int
    visiter_id: str
    expires_at: float


def check_ice_servers(raw: Any) -> list[dict[str, Any]]:
    """Check `video.ice_servers`: a list of `{urls, username?, credential?}` (the WebRTC
    RTCIceServer dictionary), `urls` one URL or a list of them, each stun:, stuns:, turn:
    or turns:. Returns the list as given. Raises `TypeError` / `ValueError` naming the
    bad key."""
    if not isinstance(raw, list):
        raise TypeError("video.ice_servers: must be a list")
    for i, entry in enumerate(raw):
        where = f"video.ice_servers[{i}]"
        if not isinstance(entry, dict):
            raise TypeError(f"{where}: must be a mapping with urls")
        for key in entry:
            if key not in ("urls", "username", "credential"):
                raise ValueError(f"{where}.{key}: unknown key")
        urls = entry.get("urls")
        listed = [urls] if isinstance(urls, str) else urls
        if not listed or not isinstance(listed, list) or not all(
                isinstance(u, str) and u.startswith(ICE_SCHEMES) for u in listed):
            raise ValueError(f"{where}.urls: one or more stun:, stuns:, turn: or turns: URLs")
        for key in ("username", "credential"):
            if key in entry and not isinstance(entry[key], str):
                raise ValueError(f"{where}.{key}: must be text")
    return raw


class Video:
    """The video use cases of one server."""

    def __init__(self, store: Store, hub: Hub, chat: Chat,
                 ice_servers: list[dict[str, Any]] | None = None,
                 ttl_s: float = CALL_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.hub = hub
        self.chat = chat
        self.ice_servers = list(ice_servers or [])
        self.ttl_s = ttl_s
        self.clock = clock
        self._calls: dict[str, Call] = {}
        #: With several nodes, a `realtime.pusher.redis_adapter.RedisAdapter` (its `redis` and
        #: `prefix`): calls are kept there, under `{prefix}:call:`, for every node.
        self.shared: Any = None

    # ---- calls --------------------------------------------------------------------------

    def _shared_key(self, *parts: object) -> str:
        # business ids and service ids hold no ':', so the last part may
        return f"{self.shared.prefix}:call:" + ":".join(map(str, parts))

    async def _allocate(self, business_id: str, service_id: int, visiter_id: str) -> Call:
        """The pair's live call (its time renewed), or a new one."""
        if self.shared is not None:
            redis, pair = self.shared.redis, self._shared_key(business_id, service_id,
                                                               visiter_id)
            name = await redis.get(pair) or channels.new_call()
            ttl_ms = max(1, int(self.ttl_s * 1000))
            pipe = redis.pipeline(transaction=True)
            pipe.set(pair, name, px=ttl_ms)
            pipe.set(self._shared_key(name), json.dumps([business_id, service_id,
                                                         visiter_id]), px=ttl_ms)
            await pipe.execute()
            return Call(name, business_id, service_id, visiter_id,
                        self.clock() + self.ttl_s)
        now = self.clock()
        for name in [n for n, c in self._calls.items() if c.expires_at <= now]:
            del self._calls[name]
        for name, call in list(self._calls.items()):
            if (call.business_id, call.service_id, call.visiter_id) == (
                    business_id, service_id, visiter_id):
                del self._calls[name]
                break
        else:
            name = channels.new_call()
        while len(self._calls) >= MAX_CALLS:
            del self._calls[next(iter(self._calls))]
        call = Call(name, business_id, service_id, visiter_id, now + self.ttl_s)
        self._calls[name] = call
        return call

    async def _live(self, channel: str) -> Call | None:
        if self.shared is not None:
            raw = await self.shared.redis.get(self._shared_key(channel))
            if raw is None:
                return None
            business_id, service_id, visiter_id = json.loads(raw)
            return Call(channel, business_id, int(service_id), visiter_id, self.clock())
        call = self._calls.get(channel)
        if call is not None and call.expires_at <= self.clock():
            del self._calls[channel]
            return None
        return call

    async def may_join_call(self, channel: str, party: Party | None) -> bool:
        """True when `party` (a logged-in `Agent`, or a `VisitorParty` that proved itself)
        is one of the two sides of the live call on `channel`. For the Pusher channel
        authorization of `private-call-*` (handlers/video.py's auth URLs; any other auth
        endpoint may use it too)."""
        call = await self._live(channel)
        if call is None or party is None:
            return False
        if isinstance(party, Agent):
            return party.service_id == call.service_id and \
                party.business_id == call.business_id
        return party.business_id == call.business_id and party.visiter_id == call.visiter_id

    async def _end(self, channel: str, business_id: str, visiter_id: str) -> None:
        if self.shared is not None:
            call = await self._live(channel) if channel.startswith(CALL_PREFIX) else None
            if call is not None and (call.business_id, call.visiter_id) == (business_id,
                                                                            visiter_id):
                await self.shared.redis.delete(
                    self._shared_key(channel),
                    self._shared_key(business_id, call.service_id, visiter_id))
            return
        call = self._calls.get(channel)
        if call is not None and (call.business_id, call.visiter_id) == (business_id,
                                                                        visiter_id):
            del self._calls[channel]

    # ---- checks -------------------------------------------------------------------------

    async def _video_open(self, business_id: str) -> None:
        try:
            business = await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None
        if business["video_state"] != "open":
            raise ChatError(2, "video calls are turned off for this site / 该商户未开启视频",
                            403)

    async def _visitor_and_agent(self, visiter_id: str, business_id: str,
                                 channel: str) -> tuple[dict[str, Any], int]:
        """The visitor row and its agent's id. Raises `ChatError` 403 (channel), 404
        (unknown visitor), 409 (no agent yet), 403 code 4 (blacklisted)."""
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        try:
            visitor = await self.store.get_visiter(visiter_id, business_id)
        except NotFound:
            raise ChatError(3, "unknown visitor: open the chat window first", 404) from None
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue is not None and queue["state"] == "in_black_list":
            raise ChatError(4, "you are blocked by this site / 您已被禁止咨询", 403)
        if queue is None or not queue["service_id"]:
            raise ChatError(3, "not talking to an agent yet: call /admin/event/notice", 409)
        return visitor, int(queue["service_id"])

    async def _agents_visitor(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """The visitor row if `agent` may talk to it: the conversation rule of
        `/admin/set/chats` (`Chat._queue_for`). Raises `ChatError`."""
        visitor, _queue = await self.chat._queue_for(agent, visiter_id)
        return visitor

    # ---- use cases ----------------------------------------------------------------------

    async def visitor_asks(self, visiter_id: str, business_id: str,
                           channel: str) -> dict[str, Any]:
        """`/admin/event/video`: push `kefu{agent}` `video` {visiter_id, visiter_name,
        avatar, channel, call, ice_servers}; returns {call, service_id, ice_servers}.
        Raises `ChatError` (see `_visitor_and_agent`; code 2, 403 when video is off)."""
        visitor, service_id = await self._visitor_and_agent(visiter_id, business_id, channel)
        await self._video_open(business_id)
        call = await self._allocate(business_id, service_id, visiter_id)
        self.hub.trigger(channels.agent(service_id), "video", {
            "visiter_id": visiter_id, "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "call": call.channel, "ice_servers": self.ice_servers})
        return {"call": call.channel, "service_id": service_id,
                "ice_servers": self.ice_servers}

    async def agent_asks(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/video`: push `cu{channel}` `video` {service_id, nick_name, avatar,
        call, ice_servers}; returns {call, visiter_id, ice_servers}. Raises `ChatError`
        (404 / 403 as `/admin/set/chats`; code 2, 403 when video is off)."""
        visitor = await self._agents_visitor(agent, visiter_id)
        await self._video_open(agent.business_id)
        call = await self._allocate(agent.business_id, agent.service_id, visiter_id)
        self.hub.trigger(channels.visitor(visitor["channel"]), "video", {
            "service_id": agent.service_id, "nick_name": agent.nick_name,
            "avatar": agent.avatar, "call": call.channel, "ice_servers": self.ice_servers})
        return {"call": call.channel, "visiter_id": visiter_id,
                "ice_servers": self.ice_servers}

    async def visitor_refuses(self, visiter_id: str, business_id: str, channel: str,
                              call: str = "") -> None:
        """`/admin/event/refuse`: push `kefu{agent}` `video-refuse` {visiter_id, channel,
        call}; the call (if it is this visitor's) can no longer be joined."""
        visitor, service_id = await self._visitor_and_agent(visiter_id, business_id, channel)
        await self._end(call, business_id, visiter_id)
        self.hub.trigger(channels.agent(service_id), "video-refuse", {
            "visiter_id": visiter_id, "channel": visitor["channel"], "call": call})

    async def agent_refuses(self, agent: Agent, visiter_id: str, call: str = "") -> None:
        """`/admin/set/refuse`: push `cu{channel}` `video-refuse` {service_id, nick_name,
        call}; the call (if it is this visitor's in the agent's business) ends."""
        visitor = await self._agents_visitor(agent, visiter_id)
        await self._end(call, agent.business_id, visiter_id)
        self.hub.trigger(channels.visitor(visitor["channel"]), "video-refuse", {
            "service_id": agent.service_id, "nick_name": agent.nick_name, "call": call})
