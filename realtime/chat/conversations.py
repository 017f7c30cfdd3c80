"""Chat use cases: assign a visitor, carry messages both ways, say who may listen where.

Rules come from the WoLive document (`/admin/event/notice` codes 0-3, the channels and
events it lists) and WOLIVE-NOTES ("Assigning a visitor", "Messages", the flaws to fix).
Every write is committed by the store before its event is pushed.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from config import ChatConfig
from store import Conflict, NotFound, Store

from . import channels
from ..pusher.hub import Hub, Session
from ..ordering import ConversationOrder
from ..pusher.signing import same, visitor_channel

#: The configured limits' defaults (`chat.max_message_chars`, `max_conversations_per_agent`).
_DEFAULTS = ChatConfig()
#: The `content` parameter of a message may be this many times `max_message_chars` long
#: before it is stripped and checked (whitespace around a message is not refused as long).
RAW_CONTENT_FACTOR = 4
#: Longest visitor name and avatar URL: the document's column sizes.
MAX_NAME = 255
MAX_AVATAR = 1024
VISITER_ID_RE = re.compile(r"^[A-Za-z0-9_\-.:@]{1,200}$")
BUSINESS_ID_RE = re.compile(r"^[A-Za-z0-9_\-.]{1,100}$")
DEFAULT_VISITOR_AVATAR = "/assets/images/index/avatar-visitor.png"

BLOCKED_MSG = "you are blocked by this site / 您已被禁止咨询"
#: Longest transfer note for the receiving agent (characters).
MAX_TRANSFER_NOTE = 500
#: Contact details a visitor leaves when its agent is away: longest of each (characters).
CONTACT_LIMITS = {"name": 64, "tel": 32, "email": 254, "note": 500}
TEL_RE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,31}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")


#: One hand-over of an assignment decision: `(visiter_id, service_id, previous)`: the visitor
#: now talks to agent `service_id` (0: it waits in the line again) and came from the waiting
#: line (`previous` 0) or from its offline agent `previous` (it was stranded).
Handed = tuple[str, int, int]


class ChatError(Exception):
    """A use case refused: `code` / `msg` are the answer, `status` the HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class Agent:
    """The logged-in agent, as the use cases see it."""

    service_id: int
    business_id: str
    level: str
    nick_name: str = ""
    avatar: str = ""


@dataclass
class NoticeAnswer:
    code: int
    msg: str
    data: dict[str, Any] = field(default_factory=dict)


def public_agent(row: dict[str, Any]) -> dict[str, Any]:
    """What a visitor may see of an agent (never the password hash, phone or email)."""
    return {"service_id": row["service_id"], "nick_name": row["nick_name"],
            "avatar": row["avatar"], "state": row["state"], "business_id": row["business_id"]}


class Chat:
    """The chat use cases of one server. `secret` derives visitor channels."""

    def __init__(self, store: Store, hub: Hub, secret: str,
                 max_message_chars: int = _DEFAULTS.max_message_chars,
                 max_conversations_per_agent: int = _DEFAULTS.max_conversations_per_agent
                 ) -> None:
        self.store = store
        self.hub = hub
        self.secret = secret
        #: Told of visitors' doings, after the write and the push: hook(kind, data) with
        #: kind "message" (data: the message, as pushed) or "unattended" (data: the
        #: visitor row; nobody was online). Hooks must not block (realtime/chat/wechat.py).
        self.visitor_hooks: list[Callable[[str, dict[str, Any]], None]] = []
        #: Told `cu{channel}` of each visitor the notice puts in the waiting line (after
        #: the commit), so that one whose window never holds that channel (an API call
        #: alone, a window closed at once) can be taken out of it (wolive.py wires the
        #: presence tracker's `expect_back`). Listeners must not block.
        self.waiting_listeners: list[Callable[[str], None]] = []
        self.max_message_chars = max_message_chars
        self.max_conversations_per_agent = max_conversations_per_agent
        # One auto-assignment at a time per business, so two visitors arriving together
        # cannot both take an agent's last free place (the cap): the database's lock
        # (`Store.assignment`) decides across processes; this per-process lock only queues
        # a process's own contenders in front of it (`_lock`). Claims need no lock: they
        # are a conditional UPDATE (see `claim`).
        self._assign_locks: dict[str, asyncio.Lock] = {}
        #: Store-then-push of a conversation's messages, one at a time: pushes follow cids.
        self.order = ConversationOrder(turn=None if hub.adapter.inline else hub.adapter.turn)
        #: agent_settling(service_id): whether the presence tracker has not settled that
        #: agent's state yet (expected back after a start, its change not written yet, or
        #: `agent_left` still running for it); its conversations are not stranded then.
        #: wolive.py wires `PresenceTracker.settling` here.
        self.agent_settling: Callable[[int], bool] = lambda _service_id: False
        #: `notice` answers given, by code (0-4), for `realtime.metrics`.
        self.notice_counts: dict[int, int] = {}

    # ---- identity -----------------------------------------------------------------------

    def channel_for(self, business_id: str, visiter_id: str) -> str:
        return visitor_channel(self.secret, business_id, visiter_id)

    def check_visitor(self, business_id: str, visiter_id: str, channel: str) -> None:
        """The visitor proves who it is with its channel. Raises `ChatError` (403)."""
        if not channel or not same(channel, self.channel_for(business_id, visiter_id)):
            raise ChatError(3, "visitor not recognised: channel does not match visiter_id",
                            403)

    @staticmethod
    def check_ids(visiter_id: str, business_id: str) -> None:
        if not VISITER_ID_RE.match(visiter_id or ""):
            raise ChatError(1, "visiter_id must be 1-200 letters, digits or _-.:@", 400)
        if not BUSINESS_ID_RE.match(business_id or ""):
            raise ChatError(1, "business_id must be 1-100 letters, digits or _-.", 400)

    @property
    def max_content_arg(self) -> int:
        """Longest `content` parameter a handler reads (characters): `max_message_chars`
        times `RAW_CONTENT_FACTOR`; `check_content` then refuses what is over
        `max_message_chars` once stripped."""
        return self.max_message_chars * RAW_CONTENT_FACTOR

    def check_content(self, content: str) -> str:
        content = (content or "").strip()
        if not content:
            raise ChatError(1, "content is empty", 400)
        if len(content) > self.max_message_chars:
            raise ChatError(1, f"content is over {self.max_message_chars} characters", 413)
        return content

    @staticmethod
    def policy(session: Session, channel: str) -> str | None:
        """Who may subscribe to WoLive's public-looking channels: the hub's channel policy,
        `realtime.chat.channels.subscription_refusal` for the socket's caller."""
        return channels.subscription_refusal(session.caller, channel)

    # ---- visitor side -------------------------------------------------------------------

    async def visit(self, visiter_id: str, business_id: str, visiter_name: str,
                    avatar: str, ip: str, from_url: str
                    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record a visitor opening the chat window; returns the visitor row and its
        business's row (`wolive_business`).

        Raises `ChatError` (404) for an unknown business."""
        self.check_ids(visiter_id, business_id)
        try:
            business = await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None
        return await self._record_visit(visiter_id, business_id, visiter_name, avatar, ip,
                                        from_url), business

    async def _record_visit(self, visiter_id: str, business_id: str, visiter_name: str,
                            avatar: str, ip: str, from_url: str) -> dict[str, Any]:
        """`visit` once the ids are checked and the business is known to exist."""
        name = (visiter_name or "").strip()[:MAX_NAME] or f"访客{visiter_id[-6:]}"
        return await self.store.upsert_visiter(
            visiter_id, business_id, name, self.channel_for(business_id, visiter_id),
            (avatar or DEFAULT_VISITOR_AVATAR)[:MAX_AVATAR], ip[:255], from_url or "")

    async def notice(self, visiter_id: str, business_id: str, channel: str,
                     visiter_name: str = "", avatar: str = "", record: str = "",
                     ip: str = "", special: int | None = None) -> NoticeAnswer:
        """`/admin/event/notice` (`_notice`), its answer counted in `notice_counts`."""
        answer = await self._notice(visiter_id, business_id, channel, visiter_name, avatar,
                                    record, ip, special)
        self.notice_counts[answer.code] = self.notice_counts.get(answer.code, 0) + 1
        return answer

    async def _notice(self, visiter_id: str, business_id: str, channel: str,
                      visiter_name: str = "", avatar: str = "", record: str = "",
                      ip: str = "", special: int | None = None) -> NoticeAnswer:
        """`/admin/event/notice`: assign the visitor (WoLive document, "访客分配接口";
        WOLIVE-NOTES, "Assigning a visitor").

        Codes: 0 assigned (data: the agent and its greeting; pushes `ud{id}` `on_notice` and
        `cu{channel}` `cu_notice`), 1 business closed, 2 waiting in the queue (data:
        `position`, 1-based; pushes `all{business_id}` `on_notice` when it joins), 3 nobody
        online (the visitor waits all the same, see `_wait_for_anyone`), 4 blacklisted.
        Raises `ChatError` 400/403/404 for bad ids, a wrong channel or an unknown
        business.

        Whom: `special` (an online agent of the business, not away) first; then the agent
        of an open conversation when it is online (away or not); then under `claim` the
        queue; under `auto` a returning visitor's last agent when online, not away and under
        the cap, else `pick_agent` (everyone away or full: the queue, code 2).

        Transcript: when a conversation starts with an agent (not when the visitor already
        talks to it: a reload), the agent's greeting is stored as its first message
        (`_greet`; the answer's `greeting_message`). A closed (`complete`) conversation whose
        agent is online, available and under the cap is left closed (code 0 with that agent,
        nothing written): it starts again when the visitor writes. One that goes to another agent
        or to the queue gets a `reopened` system line first.
        """
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        try:
            business = await self.store.get_business(business_id)
        except NotFound:
            raise ChatError(1, f"unknown business_id {business_id!r}", 404) from None
        if business["state"] == "close":
            return NoticeAnswer(1, "该网站已经停止客服咨询！")
        name = (visiter_name or "").strip()[:MAX_NAME] or f"访客{visiter_id[-6:]}"
        auto = business["distribution_rule"] != "claim"
        was_closed = joined = False
        # Visitors handed to agents with room before this one (`_decide_waiting`, in the
        # same locked transaction), told once it committed (`_hand_out`, in `finally`).
        done: list[Handed] = []
        try:
            # One transaction: the visit, then the decision (read under the lock: a notice
            # of the same visitor in another tab may have assigned it just before, and must
            # not start, and greet, a second conversation).
            async with self._lock(business_id), self.store.assignment(business_id):
                visitor, queue = await self.store.upsert_visiter_and_queue(
                    visiter_id, business_id, name, self.channel_for(business_id, visiter_id),
                    (avatar or DEFAULT_VISITOR_AVATAR)[:MAX_AVATAR], ip[:255], record or "")
                if queue and queue["state"] == "in_black_list":
                    return NoticeAnswer(4, BLOCKED_MSG)
                was_closed = bool(queue and queue["state"] == "complete")
                if auto:
                    # Places freed up (e.g. an agent came online): the oldest waiting go
                    # first, perhaps this visitor.
                    done.extend(await self._decide_waiting(business_id))
                    if done:
                        queue = await self.store.get_queue(visiter_id, business_id) or queue
                online = await self.store.online_services_with_load(business_id)
                if not online:
                    answer = await self._wait_for_anyone(visitor, queue)
                    for hook in self.visitor_hooks:
                        hook("unattended", visitor)
                    return answer
                by_id = {r["service_id"]: r for r in online}
                ended = by_id.get(queue["service_id"]) if queue and was_closed else None
                cap = self.max_conversations_per_agent
                if (ended is not None and not ended["away"] and not special
                        and (not cap or ended["load"] < cap)):
                    # An ended conversation stays ended until the visitor writes again
                    # (`visitor_send` reopens it with a `reopened` line): opening the window
                    # shows its agent and writes nothing (no new conversation, no greeting).
                    return NoticeAnswer(0, "", await self._agent_card(ended["service_id"]))
                is_open = bool(queue and queue["state"] == "normal")
                current = queue["service_id"] if queue and is_open else 0
                chosen: int | None = None
                if special and special in by_id and not by_id[special]["away"]:
                    chosen = special
                elif current and current in by_id:
                    chosen = current  # an open conversation stays with its agent
                elif is_open and current == 0:
                    chosen = None  # waiting already: keeps its place
                elif not auto:
                    chosen = None
                else:
                    last = queue["service_id"] if queue else 0
                    if (last in by_id and not by_id[last]["away"]
                            and (not cap or by_id[last]["load"] < cap)):
                        chosen = last  # a returning visitor goes back to its agent
                    else:
                        chosen = pick_agent(online, cap)
                if chosen is None:
                    joined = not (is_open and current == 0)
                    if joined:
                        try:
                            await self.store.enqueue(visiter_id, business_id)
                        except Conflict:
                            return NoticeAnswer(4, BLOCKED_MSG)
                else:
                    try:
                        await self.store.put_queue(visiter_id, business_id, chosen)
                    except Conflict:
                        return NoticeAnswer(4, BLOCKED_MSG)
                    if chosen != current:
                        await self.store.note_service_activity(chosen, assigned=True)
                # What the answer says, read in the same transaction.
                if chosen is None:
                    place = await self.store.waiting_position(visiter_id, business_id)
                else:
                    data = await self._agent_card(chosen)
        except BaseException:
            done.clear()  # rolled back: nobody was handed over
            raise
        finally:
            if done:
                await self._hand_out(business_id, done)
        if was_closed and (chosen is not None or joined):
            await self.system_line(visitor, business_id, chosen or 0, "reopened")
        if chosen is None:
            if joined:
                self._joined_line(visitor)
            return NoticeAnswer(2, "等待认领", {"position": place})
        if chosen != current:  # a conversation starts with this agent (not a reload)
            await self._greet(visitor, business_id, chosen, data)
        await self._announce(visitor, business_id, chosen, current if is_open else None,
                             data, "assigned")
        return NoticeAnswer(0, "", data)

    async def assign_waiting(self, business_id: str,
                             business: dict[str, Any] | None = None) -> int:
        """Run whenever an agent may have become available (came online, set itself
        available, a place freed under the cap, a waiting visitor left): under `auto`, give
        waiting visitors (oldest first) to online agents with room (`pick_agent`), up to the
        cap. The decision runs under `Store.assignment` (the business's lock in the
        database), so two triggers at once, in one process or two, never over-assign; each
        hand-over is also the same conditional UPDATE as a claim, so it never takes a
        visitor an agent just claimed.

        Stranded visitors (`store.conversations`: their agent went offline and nobody could take
        over then, their window is open) are served too, in the same first-come order
        (`qid`), unless the presence tracker has not settled their agent yet
        (`agent_settling`): under `auto` each goes to an agent with room as when its agent
        leaves (`_hand_over`, reason "agent_left": a `transferred` line, `cu{channel}`
        `cu_notice`, `ud{id}` `on_notice`, `kefu{id}` `handover`); under `claim`, while any
        agent is online, back to the waiting line (an `agent_left` line with `then`
        "queue", `all{business_id}` `on_notice`). What the visitor wrote meanwhile stays in
        the conversation (the new agent reads it and its unread count).

        Then (both rules) every visitor still waiting is told its place, `cu{channel}`
        `queue` `{position}` (0 when nobody is online; `publish_positions`).
        `business`: its `wolive_business` row when the caller has just read it. Returns
        how many were assigned or queued; pushes as `notice` does, plus
        `all{business_id}` `claimed`; each agent's greeting is stored as its first message
        for a visitor that was waiting (`_greet`)."""
        return await self._assign_waiting(business_id, business, publish=True)

    async def _assign_waiting(self, business_id: str, business: dict[str, Any] | None,
                              publish: bool) -> int:
        """`assign_waiting`; `publish` False: tell the waiting their places only when some
        were assigned (a visitor's own `notice` answers its place itself)."""
        if business is None:
            try:
                business = await self.store.get_business(business_id)
            except NotFound:
                return 0
        if business["state"] == "close":
            return 0
        done = await self._assign_decision(business_id,
                                           auto=business["distribution_rule"] != "claim")
        if done:
            await self._hand_out(business_id, done)
        elif publish:
            await self.publish_positions(business_id)
        return len(done)

    async def _hand_out(self, business_id: str, done: list[Handed]) -> None:
        """Tell a committed hand-over (`[(visiter_id, service_id, previous)]`, see `Handed`):
        a waiting visitor's new agent greets it (`_greet`) and is announced (`_announce`);
        a stranded one is handed over from its offline agent (`_hand_over`) or, under
        `claim`, told it waits again; then everyone still waiting learns their place
        (`publish_positions`)."""
        for taken, chosen, previous in done:
            visitor = await self.store.get_visiter(taken, business_id)
            if not previous:
                card = await self._agent_card(chosen)
                await self._greet(visitor, business_id, chosen, card)
                await self._announce(visitor, business_id, chosen, 0, card, "assigned")
            elif chosen:
                await self._hand_over(visitor, business_id, previous,
                                      await self._agent_card(chosen), "", "agent_left")
            else:
                try:
                    name = (await self.store.get_service(previous))["nick_name"]
                except NotFound:
                    name = ""
                await self.system_line(visitor, business_id, previous, "agent_left",
                                       {"name": name, "then": "queue"})
                self.hub.trigger(channels.business(business_id), "on_notice",
                                 visitor_event(visitor))
        await self.publish_positions(business_id)

    async def _assign_decision(self, business_id: str, auto: bool) -> list[Handed]:
        """The decision of `assign_waiting`, committed (see `Handed`)."""
        # Who waits is read under the lock too: a visitor a notice is queueing right now
        # (it saw every agent full) is seen here once that notice commits, so a place
        # freed meanwhile is not left empty.
        async with self._lock(business_id), self.store.assignment(business_id):
            return await self._decide_waiting(business_id, stranded=True, auto=auto)

    async def _decide_waiting(self, business_id: str, stranded: bool = False,
                              auto: bool = True) -> list[Handed]:
        """`_assign_decision`'s work; the caller holds the business's assignment lock
        (`_lock` and `Store.assignment`). `stranded`: serve stranded visitors too (see
        `assign_waiting`); `auto` False (the `claim` rule): only put those back in the
        waiting line. Returns what was handed (`Handed`)."""
        done: list[Handed] = []
        unserved = [(vid, previous) for vid, previous in
                    await self.store.unserved(business_id, stranded=stranded)
                    if not (previous and self.agent_settling(previous))]
        if not unserved:  # the usual case: nobody to hand over
            return done
        online = await self.store.online_services_with_load(business_id)
        if not online:
            return done
        for waiting_id, previous in unserved:
            if not auto:
                if previous and await self.store.take_stranded(waiting_id, business_id,
                                                               previous, 0):
                    done.append((waiting_id, 0, previous))
                continue
            chosen = pick_agent(online, self.max_conversations_per_agent)
            if chosen is None:
                break
            if previous:
                if not await self.store.take_stranded(waiting_id, business_id, previous,
                                                      chosen):
                    continue
            elif not await self.store.claim_waiting(waiting_id, business_id, chosen):
                continue
            await self.store.note_service_activity(chosen, assigned=True)
            for r in online:
                if r["service_id"] == chosen:
                    r["load"] += 1
                    r["idle_since_ms"] = int(time.time() * 1000)
            done.append((waiting_id, chosen, previous))
        return done

    async def publish_positions(self, business_id: str) -> int:
        """Tell every waiting visitor of the business its place: `cu{channel}` `queue`
        `{position}` (1-based, first come first) while at least one agent is online;
        `{position: 0}` to all of them when nobody is (the last agent went offline: the
        windows show "nobody online", not a place in a line nobody serves). Returns how
        many were told."""
        anyone = bool(await self.store.online_services_with_load(business_id))
        rows = await self.store.waiting_channels(business_id)
        for n, (_vid, channel) in enumerate(rows, 1):
            self.hub.trigger(channels.visitor(channel), "queue", {"position": n if anyone else 0})
        return len(rows)

    async def _wait_for_anyone(self, visitor: dict[str, Any],
                               queue: dict[str, Any] | None) -> NoticeAnswer:
        """Nobody online (code 3): the visitor waits (a `wolive_queue` row, `service_id`
        0, as for code 2; one already waiting keeps its place), so the first agent to come
        online gets it (`auto`) or sees it to claim (`claim`), and its window is told
        (`cu_notice` / `queue`). It stops waiting when its window closes or it leaves a
        message (`leave_waiting`). Runs under the assignment lock."""
        vid, business_id = visitor["visiter_id"], visitor["business_id"]
        if not (queue and queue["state"] == "normal" and queue["service_id"] == 0):
            try:
                await self.store.enqueue(vid, business_id)
            except Conflict:
                return NoticeAnswer(4, BLOCKED_MSG)
            # In the waiting list like a code 2 visitor (consoles that are open see it).
            self.store.on_commit(lambda: self._joined_line(visitor))
        return NoticeAnswer(3, "请留言")

    def _joined_line(self, visitor: dict[str, Any]) -> None:
        """A visitor joined the waiting line: the business's consoles are told
        (`all{business_id}` `on_notice`), and `waiting_listeners` its channel."""
        self.hub.trigger(channels.business(visitor["business_id"]), "on_notice",
                         visitor_event(visitor))
        for listener in self.waiting_listeners:
            listener(channels.visitor(visitor["channel"]))

    async def agent_available(self, service_id: int) -> int:
        """An agent became available (the presence tracker wrote it online; wired in
        wolive.py): waiting visitors of its business are served at once
        (`assign_waiting`). Returns how many were assigned."""
        try:
            row = await self.store.get_service(service_id)
        except NotFound:
            return 0
        if row["state"] != "online":
            return 0
        return await self.assign_waiting(str(row["business_id"]))

    async def leave_waiting(self, visiter_id: str, business_id: str, reason: str) -> bool:
        """Take a visitor out of the waiting line: its window closed (`reason` "left":
        the presence tracker saw its channel vacated, after the grace) or it left a
        message ("message"). Pushes `all{business_id}` `claimed` `{visiter_id,
        service_id: 0, nick_name: "", reason}` (consoles drop it from the queue) and the
        others' new places (`publish_positions`). True when it was waiting."""
        if not await self.store.leave_waiting(visiter_id, business_id,
                                              missed=reason == "message"):
            return False
        self._gone(business_id, visiter_id, 0, reason)
        await self.publish_positions(business_id)
        return True

    def _lock(self, business_id: str) -> asyncio.Lock:
        """This process's contenders for a business queue here before they take the
        database lock (`Store.assignment`, which alone makes the decision safe across
        processes), so they do not each hold a pooled connection while waiting."""
        lock = self._assign_locks.get(business_id)
        if lock is None:
            lock = self._assign_locks[business_id] = asyncio.Lock()
        return lock

    async def _agent_card(self, service_id: int) -> dict[str, Any]:
        """What the visitor is told about its agent: `public_agent` + `greeting` + `status`
        (`available` / `away`, the agent's explicit status) + `agent_channel` (`se{id}`,
        where its window hears the agent's state)."""
        data = public_agent(await self.store.get_service(service_id))
        data["greeting"], data["status"] = await self.store.card_extras(service_id)
        data["agent_channel"] = channels.agent_state(service_id)
        return data

    async def _announce(self, visitor: dict[str, Any], business_id: str, chosen: int,
                        previous: int | None, card: dict[str, Any], reason: str) -> None:
        """Tell everyone a visitor now talks to `chosen` (after the write committed):
        `ud{chosen}` `on_notice` (the visitor), `cu{channel}` `cu_notice` (`card`); the
        previous agent's `kefu{id}` `getswitch`, or `all{business_id}` `claimed` when the
        visitor was waiting (`previous` 0)."""
        vid = visitor["visiter_id"]
        self.hub.trigger(channels.agent_notices(chosen), "on_notice", visitor_event(visitor))
        self.hub.trigger(channels.visitor(visitor["channel"]), "cu_notice", card)
        moved = {"visiter_id": vid, "service_id": chosen, "nick_name": card["nick_name"],
                 "reason": reason}
        if previous == 0:
            self.hub.trigger(channels.business(business_id), "claimed", moved)
        elif previous and previous != chosen:
            self.hub.trigger(channels.agent(previous), "getswitch", moved)

    async def position(self, visiter_id: str, business_id: str,
                       channel: str) -> dict[str, Any]:
        """`/admin/event/position`: where the visitor stands. `{position, state,
        service_id}`: `position` 1-based while waiting and an agent is online, else 0
        (waiting with position 0: nobody online); `state` "waiting",
        "assigned", "complete", "in_black_list" or "none" (never queued). Raises
        `ChatError` 400/403."""
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue is None:
            return {"position": 0, "state": "none", "service_id": 0}
        if queue["state"] != "normal":
            return {"position": 0, "state": queue["state"], "service_id": queue["service_id"]}
        if queue["service_id"]:
            return {"position": 0, "state": "assigned", "service_id": queue["service_id"]}
        if not await self.store.online_services_with_load(business_id):
            return {"position": 0, "state": "waiting", "service_id": 0}
        return {"position": await self.store.waiting_position(visiter_id, business_id),
                "state": "waiting", "service_id": 0}

    async def visitor_send(self, visiter_id: str, business_id: str, channel: str,
                           content: str, msg_type: str = "text") -> dict[str, Any]:
        """`/admin/event/chats`: store a visitor's message, then push `kefu{id}` `cu-event`
        (`all{business_id}` `cu-event` while the visitor waits to be claimed) and, for the
        visitor's other windows, `cu{channel}` `my-event`, in cid order with the
        conversation's other messages (`self.order`).

        The agent is the one the visitor is assigned to (the `service_id` a client sends is
        not trusted). A closed (`complete`) conversation reopens with the same agent, with a
        `reopened` system line before the message (`_reopened`).
        Raises `ChatError`: 3 when the visitor is unknown or was never queued (the
        document's failure code for this URL); 4 (HTTP 403) when blacklisted, storing
        nothing."""
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        content = self.check_content(content) if msg_type == "text" else content

        def decide(visitor: dict[str, Any] | None, queue: dict[str, Any] | None) -> int | None:
            if visitor is None:
                raise ChatError(3, "unknown visitor: open the chat window first", 404)
            if queue is None:
                raise ChatError(3, "not assigned to an agent yet: call /admin/event/notice",
                                409)
            if queue["state"] == "in_black_list":
                raise ChatError(4, BLOCKED_MSG, 403)
            return int(queue["service_id"]) if queue["state"] == "normal" else None

        async with self.order.hold(business_id, visiter_id):
            # The usual case, an open conversation: checked and stored in one transaction,
            # pushed before the next message of the conversation is stored.
            found, queue, row = await self.store.add_message(
                visiter_id, business_id, content, "to_service", decide, msg_type=msg_type)
            assert found is not None and queue is not None  # else `decide` raised
            visitor: dict[str, Any] = found
            if row is not None:
                message = self._push_visitor_message(visitor, queue, row, content, msg_type)
        if row is None:
            # Closed (`complete`). The document ("getchatnow"): a visitor who writes again
            # is back in the list, and both sides see a new conversation start (a
            # `reopened` line before the message).
            if await self.store.change_queue(visiter_id, business_id, queue["service_id"],
                                             "complete", state="normal"):
                await self._reopened(visitor, business_id, queue["service_id"])
            else:
                queue = await self.store.get_queue(visiter_id, business_id) or queue
                if queue["state"] == "in_black_list":
                    raise ChatError(4, BLOCKED_MSG, 403)
            async with self.order.hold(business_id, visiter_id):
                row = await self.store.add_chat(visiter_id, queue["service_id"], business_id,
                                                content, "to_service", msg_type=msg_type)
                message = self._push_visitor_message(visitor, queue, row, content, msg_type)
        for hook in self.visitor_hooks:
            hook("message", message)
        return message

    def _push_visitor_message(self, visitor: dict[str, Any], queue: dict[str, Any],
                              row: dict[str, Any], content: str,
                              msg_type: str) -> dict[str, Any]:
        """Push a stored (committed) visitor message: `kefu{id}` `cu-event` (`all{business_id}`
        while it waits to be claimed) and `cu{channel}` `my-event`. Returns the message."""
        business_id = visitor["business_id"]
        message = {
            "cid": row["cid"], "visiter_id": visitor["visiter_id"], "visiter_name":
            visitor["visiter_name"], "avatar": visitor["avatar"],
            "channel": visitor["channel"], "business_id": business_id,
            "service_id": queue["service_id"], "content": content,
            "msg_type": msg_type, "timestamp": row["timestamp"], "direction": "to_service"}
        target = (channels.agent(queue["service_id"]) if queue["service_id"]
                  else channels.business(business_id))
        self.hub.trigger(target, "cu-event", {"message": message})
        # The visitor's other windows (tabs) show its message too.
        self.hub.trigger(channels.visitor(visitor["channel"]), "my-event", {"message": message})
        return message

    async def history_for_visitor(self, visiter_id: str, business_id: str, channel: str,
                                  before_cid: int = 0, limit: int = 50,
                                  after_cid: int = -1, mark: bool = True
                                  ) -> tuple[list[dict[str, Any]], int]:
        """`/admin/event/history`: the visitor's conversation (oldest first, at most 100),
        and the agent messages it marked read (0: nothing was unread, no receipt is due;
        always 0 with `mark=False`, a window not shown yet). Raises `ChatError` 400/403
        (`check_ids`, `check_visitor`)."""
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        rows = await self.store.chats_of(visiter_id, business_id, before_cid, min(limit, 100),
                                         after_cid=after_cid, agent_lines=False)
        if not mark:
            return rows, 0
        return rows, await self.store.mark_read(visiter_id, business_id, "to_visiter")

    # ---- agent side ---------------------------------------------------------------------

    async def resolve_visiter(self, agent: Agent, visiter_id: str = "",
                              channel: str = "") -> str:
        """The `visiter_id` a console call means: given, or found by the visitor's
        `channel` (the document's parameter for getmessage/getwatch/blacklist; a leading
        `cu` is allowed). Only visitors of the agent's business exist for it: else
        `ChatError` 404; neither given: 400."""
        if visiter_id:
            return visiter_id
        channel = channel.strip()
        if not channel:
            raise ChatError(1, "missing parameter: visiter_id or channel", 400)
        row = await self.store.find_visiter_by_channel(channel)
        if row is None and (bare := channels.visitor_part(channel)) is not None:
            row = await self.store.find_visiter_by_channel(bare)
        if row is None or row["business_id"] != agent.business_id:
            raise ChatError(1, "no such visitor in your business", 404)
        return str(row["visiter_id"])

    async def _queue_for(self, agent: Agent, visiter_id: str, write: bool = True
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The visitor and its queue row, if `agent` may act on them. The levels rule: a
        `service` agent touches only its own conversations (and, to read or blacklist, the
        business's waiting visitors: `write=False`); a manager or super_manager its
        business's; nobody another business's (rows are looked up in the agent's own
        business only). Raises `ChatError` 404 (no such visitor / never queued), 403."""
        try:
            visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        except NotFound:
            visitor = None
        queue = await self.store.get_queue(visiter_id, agent.business_id) if visitor else None
        self._may_act(agent, visitor, queue, write)
        assert visitor is not None and queue is not None
        return visitor, queue

    @staticmethod
    def _may_act(agent: Agent, visitor: dict[str, Any] | None,
                 queue: dict[str, Any] | None, write: bool = True) -> None:
        """`_queue_for`'s rule on rows already read. Raises `ChatError` 404, 403."""
        if visitor is None:
            raise ChatError(1, "no such visitor in your business", 404)
        if queue is None:
            raise ChatError(1, "no conversation with this visitor", 404)
        if agent.level == "service" and queue["service_id"] != agent.service_id and \
                (write or queue["service_id"] != 0):
            raise ChatError(1, "this visitor is talking to another agent / 不是您的访客", 403)

    async def _conversation_for(self, agent: Agent, visiter_id: str,
                                write: bool = True) -> dict[str, Any]:
        """The visitor row, if `agent` may talk to it (see `_queue_for`). Raises
        `ChatError`."""
        return (await self._queue_for(agent, visiter_id, write))[0]

    async def agent_send(self, agent: Agent, visiter_id: str, content: str,
                         msg_type: str = "text") -> dict[str, Any]:
        """`/admin/set/chats`: store the agent's reply, then push `cu{channel}` `my-event`
        and, for the agent's other consoles, `kefu{id}` `my-event` (in cid order with the
        conversation's other messages: `self.order`). A manager writing in a colleague's
        conversation: the conversation's agent (`wolive_queue.service_id`) gets the same
        `kefu{owner}` `my-event`, so its console shows the reply live.

        `msg_type` "image" / "file": `content` is an upload's URL path (see store.add_chat).
        A blacklisted visitor gets nothing (`ChatError` 4)."""
        content = self.check_content(content) if msg_type == "text" else content

        def decide(visitor: dict[str, Any] | None, queue: dict[str, Any] | None) -> int:
            self._may_act(agent, visitor, queue)
            assert queue is not None
            if queue["state"] == "in_black_list":
                raise ChatError(4, "this visitor is blacklisted / 该访客已被拉黑", 409)
            return agent.service_id

        async with self.order.hold(agent.business_id, visiter_id):
            # One transaction: who may write, the message, the agent's activity (for
            # `pick_agent`'s idle order); pushed once committed.
            found, queue, row = await self.store.add_message(
                visiter_id, agent.business_id, content, "to_visiter", decide,
                msg_type=msg_type, active_service_id=agent.service_id)
            assert found is not None and queue is not None and row is not None  # else raised
            visitor: dict[str, Any] = found
            message = {
                "cid": row["cid"], "visiter_id": visiter_id, "service_id": agent.service_id,
                "nick_name": agent.nick_name, "avatar": agent.avatar,
                "business_id": agent.business_id, "content": content, "msg_type": msg_type,
                "timestamp": row["timestamp"], "direction": "to_visiter"}
            self.hub.trigger(channels.visitor(visitor["channel"]), "my-event", {"message": message})
            # The agent's other consoles (tabs) show its reply too, and so does the
            # conversation's own agent when a manager wrote in it.
            for sid in dict.fromkeys((agent.service_id, int(queue["service_id"] or 0))):
                if sid:
                    self.hub.trigger(channels.agent(sid), "my-event", {"message": message})
        return message

    async def conversations(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getchats`: the agent's open conversations (`wolive_queue` rows
        `normal` with its `service_id`), newest activity first."""
        return [c.as_dict() for c in await self.store.conversations(agent.service_id)]

    async def waiting_list(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getwait`: the agent's business's visitors waiting to be claimed,
        oldest first, each with its 1-based `position`."""
        rows = [c.as_dict() for c in await self.store.waiting(agent.business_id)]
        for n, row in enumerate(rows, 1):
            row["position"] = n
        return rows

    async def blacklist_of(self, agent: Agent) -> list[dict[str, Any]]:
        """`/admin/set/getblackdata`: blacklisted visitors, latest first: the business's for
        a manager, the agent's own for a `service` agent."""
        only = agent.service_id if agent.level == "service" else None
        return [c.as_dict() for c in await self.store.blacklisted(agent.business_id, only)]

    async def history_for_agent(self, agent: Agent, visiter_id: str, before_cid: int = 0,
                                limit: int = 50, after_cid: int = -1) -> list[dict[str, Any]]:
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.chats_of(visiter_id, agent.business_id, before_cid,
                                         min(limit, 100), after_cid=after_cid)

    async def mark_read_by_agent(self, agent: Agent, visiter_id: str) -> int:
        """`/admin/set/getwatch`: mark the visitor's messages read; returns how many."""
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.mark_read(visiter_id, agent.business_id, "to_service")

    async def unread_for_agent(self, agent: Agent, visiter_id: str) -> int:
        """`/admin/set/getmessage`: the visitor's unread messages to the agents."""
        await self._conversation_for(agent, visiter_id, write=False)
        return await self.store.unread_count(visiter_id, agent.business_id)

    async def claim(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/get`: take a waiting visitor (WOLIVE-NOTES: "the claim must be atomic
        — exactly one agent wins"). One conditional UPDATE decides; the winner's visitor
        gets `cu{channel}` `cu_notice` (the agent and its greeting), the winner's consoles
        `ud{id}` `on_notice`, the business's agents `all{business_id}` `claimed`
        `{visiter_id, service_id, nick_name, reason}`; those still waiting their new
        places (`publish_positions`). Returns the conversation entry. The winner's greeting
        is stored as its first message (`_greet`).

        Raises `ChatError`: 2 (409) already claimed / no longer waiting, 4 (409)
        blacklisted, 404 unknown visitor or not queued."""
        try:
            visitor = await self.store.get_visiter(visiter_id, agent.business_id)
        except NotFound:
            raise ChatError(1, "no such visitor in your business", 404) from None
        queue = await self.store.get_queue(visiter_id, agent.business_id)
        if queue is None:
            raise ChatError(1, "this visitor is not waiting / 该访客不在排队中", 404)
        if queue["state"] == "in_black_list":
            raise ChatError(4, "this visitor is blacklisted / 该访客已被拉黑", 409)
        if not await self.store.claim_waiting(visiter_id, agent.business_id, agent.service_id):
            raise ChatError(2, "already claimed / 已被认领", 409)
        await self.store.note_service_activity(agent.service_id, assigned=True)
        card = await self._agent_card(agent.service_id)
        await self._greet(visitor, agent.business_id, agent.service_id, card)
        await self._announce(visitor, agent.business_id, agent.service_id, 0, card, "claimed")
        await self.publish_positions(agent.business_id)
        return await self._entry(visiter_id, agent.business_id)

    async def restore(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/getchatnow`: bring back a conversation the agent removed from its
        list (the document: "不小心删除对话表中的通话对象"): its closed (`complete`) queue
        row with this agent opens again. Returns the conversation entry. Raises
        `ChatError` 4 (409) blacklisted, 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] == "in_black_list":
            raise ChatError(4, "this visitor is blacklisted: unblack it first / 该访客已被拉黑",
                            409)
        if queue["state"] == "complete" and queue["service_id"] == agent.service_id:
            await self.store.change_queue(visiter_id, agent.business_id, agent.service_id,
                                          "complete", state="normal")
        return await self._entry(visiter_id, agent.business_id)

    async def transfer(self, agent: Agent, visiter_id: str, to_service_id: int,
                       note: str = "") -> dict[str, Any]:
        """`/admin/set/transfer` (WoLive's later `getswitch`): hand an open conversation to
        another online agent of the same business. Pushes `ud{new}` `on_notice`,
        `cu{channel}` `cu_notice` (the new agent), and the old agent's `kefu{old}`
        `getswitch` `{visiter_id, service_id, nick_name, reason}` so its console drops it
        (`all{business_id}` `claimed` when the visitor was waiting); see `_hand_over` for
        the `transferred` line in the transcript and the receiving agent's `handover`, which
        alone carries `note` (at most `MAX_TRANSFER_NOTE` characters, never sent to the
        visitor).

        Raises `ChatError`: 1 (400) note too long, 1 (400) to the same agent, 1 (404) no
        such agent in the business, 1 (409) not an open conversation, 3 (409) the agent is
        offline or away, 2 (409) the conversation changed meanwhile; 403/404 as
        `_queue_for`."""
        note = self.check_note(note)
        visitor, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] != "normal":
            raise ChatError(1, f"not an open conversation ({queue['state']})", 409)
        try:
            target = await self.store.get_service(to_service_id)
        except NotFound:
            target = None
        if target is None or target["business_id"] != agent.business_id:
            raise ChatError(1, "no such agent in your business / 没有该客服", 404)
        if to_service_id == queue["service_id"]:
            raise ChatError(1, "the visitor already talks to that agent", 400)
        if target["state"] != "online":
            raise ChatError(3, "that agent is offline / 该客服不在线", 409)
        if await self.store.service_status(to_service_id) == "away":
            raise ChatError(3, "that agent is away / 该客服暂时离开", 409)
        # The move and its lines together (as `close`).
        async with self.order.hold(agent.business_id, visiter_id):
            if not await self.store.change_queue(visiter_id, agent.business_id,
                                                 queue["service_id"], "normal",
                                                 service_id=to_service_id):
                raise ChatError(2, "the conversation changed meanwhile; reload", 409)
            await self.store.note_service_activity(to_service_id, assigned=True)
            card = await self._agent_card(to_service_id)
            await self._hand_over(visitor, agent.business_id, queue["service_id"], card,
                                  note, "transferred")
        await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "service_id": to_service_id,
                "nick_name": card["nick_name"]}

    # ---- hand-over: transfer notes, the agent who leaves, contact details -------------

    @staticmethod
    def check_note(note: str) -> str:
        """A transfer note, stripped. Raises `ChatError` 1 (400) over `MAX_TRANSFER_NOTE`."""
        note = (note or "").strip()
        if len(note) > MAX_TRANSFER_NOTE:
            raise ChatError(1, f"note is over {MAX_TRANSFER_NOTE} characters", 400)
        return note

    async def _hand_over(self, visitor: dict[str, Any], business_id: str, previous: int,
                         card: dict[str, Any], note: str, reason: str) -> None:
        """Tell everyone a conversation moved from agent `previous` (0: it was waiting) to
        `card`'s agent, after the queue row was written: a system line `transferred` `{from,
        to}` (the agents' nick names; `taken_over` `{from, to}` when `reason` is
        "agent_left"; `transferred_waiting` `{to}` for a waiting visitor)
        in the transcript, pushed to the visitor and both agents; then `_announce` (reason
        `reason`); then `kefu{new}` `handover` `{visiter_id, visiter_name, from_service_id,
        from_nick_name, note, reason}` for the receiving console's notice, badge and sound
        (only there: `note` is for that agent). A `note` is also kept in the transcript for
        the agents only: a "note" line `transfer_note` `{from, to, note}`, pushed to the
        receiving agent (its console shows it after a reload too)."""
        old_name = ""
        if previous:
            try:
                old_name = (await self.store.get_service(previous))["nick_name"]
            except NotFound:
                pass
        chosen = int(card["service_id"])
        if previous:
            # Nobody transferred anything when the agent left: the next one took over.
            key = "taken_over" if reason == "agent_left" else "transferred"
            await self.system_line(visitor, business_id, chosen, key,
                                   {"from": old_name, "to": card["nick_name"]},
                                   agents=(previous,))
        else:  # a waiting visitor, handed to an agent by a manager
            await self.system_line(visitor, business_id, chosen, "transferred_waiting",
                                   {"to": card["nick_name"]})
        if note:
            await self.system_line(visitor, business_id, chosen, "transfer_note",
                                   {"from": old_name, "to": card["nick_name"], "note": note},
                                   agents_only=True)
        await self._announce(visitor, business_id, chosen, previous, card, reason)
        self.hub.trigger(channels.agent(chosen), "handover", {
            "visiter_id": visitor["visiter_id"], "visiter_name": visitor["visiter_name"],
            "from_service_id": previous, "from_nick_name": old_name, "note": note,
            "reason": reason})

    async def agent_left(self, service_id: int) -> int:
        """The presence tracker's hook: agent `service_id` went offline (after its grace).
        For each of its open conversations (`wolive_queue` `normal` with its id) whose
        visitor is online, a system line `agent_left` `{name, then}` tells the visitor, and:

        - `auto` (business open): the conversation moves to another online agent with room
          (`pick_agent`), as a transfer does (`_hand_over`, reason "agent_left"); `then`
          "moved". Nobody with room: it stays with the agent, `then` "contact" (the
          visitor window offers the contact form, `leave_contact`).
        - `claim`: it goes back to the waiting queue (`service_id` 0; its place is by its
          first arrival, `qid`), `all{business_id}` `on_notice`; `then` "queue", or
          "contact" when no agent of the business is online.

        A conversation changed meanwhile (claimed, closed, moved) is left alone; an agent
        already back online changes nothing. Returns how many conversations were told."""
        try:
            agent = await self.store.get_service(service_id)
            business = await self.store.get_business(agent["business_id"])
        except NotFound:
            return 0
        if agent["state"] == "online":
            return 0
        business_id = agent["business_id"]
        claim = business["distribution_rule"] == "claim"
        auto = not claim and business["state"] != "close"
        told = 0
        for conv in await self.store.conversations(service_id):
            if not conv.online:
                continue
            vid = conv.visiter_id
            chosen: int | None = None
            async with self._lock(business_id):
                others = [r for r in await self.store.online_services_with_load(business_id)
                          if r["service_id"] != service_id]
                if auto:
                    chosen = pick_agent(others, self.max_conversations_per_agent)
                    if chosen is not None and not await self.store.change_queue(
                            vid, business_id, service_id, "normal", service_id=chosen):
                        continue
                elif claim and not await self.store.change_queue(
                        vid, business_id, service_id, "normal", service_id=0):
                    continue
            try:
                visitor = await self.store.get_visiter(vid, business_id)
            except NotFound:
                continue
            then = "moved" if chosen else ("queue" if claim and others else "contact")
            await self.system_line(visitor, business_id, service_id, "agent_left",
                                   {"name": agent["nick_name"], "then": then})
            told += 1
            if chosen:
                await self.store.note_service_activity(chosen, assigned=True)
                await self._hand_over(visitor, business_id, service_id,
                                      await self._agent_card(chosen), "", "agent_left")
            elif claim:
                self.hub.trigger(channels.business(business_id), "on_notice",
                                 visitor_event(visitor))
        # The waiting learn their places again (those moved back to the queue joined it),
        # or, the last agent gone, that nobody is online.
        await self.publish_positions(business_id)
        return told

    async def agent_deleted(self, agent: dict[str, Any], released: list[dict[str, Any]]
                            ) -> int:
        """A manager deleted `agent` (its `wolive_service` row, now gone) and its open
        conversations went back to the waiting line in the same transaction (`released`:
        `Store.delete_service`'s visitors). Its visitors are handled as when an agent goes
        offline (`agent_left`): each whose window is open is told by a system line
        `agent_left` `{name, then}` (`then` "queue": it waits for the next agent, or
        "contact" when no agent of the business is online: the window offers the contact
        form); each is announced on `all{business_id}` `on_notice` (consoles list it to
        claim); then `assign_waiting` (under `auto` online agents with room take them:
        `cu{channel}` `cu_notice`; the rest learn their place). Returns how many were
        told."""
        business_id = str(agent["business_id"])
        if not released:
            return 0
        anyone = bool(await self.store.online_services_with_load(business_id))
        told = 0
        for visitor in released:
            if visitor["state"] == "online":
                await self.system_line(visitor, business_id, int(agent["service_id"]),
                                       "agent_left", {"name": agent["nick_name"],
                                                      "then": "queue" if anyone else "contact"})
                told += 1
            self.hub.trigger(channels.business(business_id), "on_notice", visitor_event(visitor))
        await self.assign_waiting(business_id)
        return told

    async def leave_contact(self, visiter_id: str, business_id: str, channel: str,
                            values: dict[str, str]) -> dict[str, Any]:
        """`/admin/event/contact`: a visitor whose agent is away leaves `values` `{name,
        tel, email, note}` (each optional, at most `CONTACT_LIMITS` characters; a phone
        number or an email is required). Kept with the conversation: the visitor details
        (`wolive_visiter_info`) name / tel / note get them where still empty (the email
        and the note go into the note), and a system line `contact` `{name, tel, email,
        note, text}` (`text`: the given ones joined by " · ") is written to the transcript and
        pushed (the visitor, its agent).

        Returns `{cid, saved}` (the line's cid, the details fields filled). Raises
        `ChatError` before writing anything: 1 (400) bad ids or values, 3 (403) a wrong
        channel, 3 (404) unknown visitor, 3 (409) never queued, 4 (403) blacklisted."""
        self.check_ids(visiter_id, business_id)
        self.check_visitor(business_id, visiter_id, channel)
        clean = {k: " ".join(str(values.get(k) or "").split()) if k != "note"
                 else str(values.get(k) or "").strip() for k in CONTACT_LIMITS}
        for k, limit in CONTACT_LIMITS.items():
            if len(clean[k]) > limit:
                raise ChatError(1, f"{k} is over {limit} characters", 400)
        if not clean["tel"] and not clean["email"]:
            raise ChatError(1, "give a phone number or an email / 请填写电话或邮箱", 400)
        if clean["tel"] and not TEL_RE.match(clean["tel"]):
            raise ChatError(1, "tel is not a phone number / 电话号码格式不对", 400)
        if clean["email"] and not EMAIL_RE.match(clean["email"]):
            raise ChatError(1, "email is not an email address / 邮箱格式不对", 400)
        try:
            visitor = await self.store.get_visiter(visiter_id, business_id)
        except NotFound:
            raise ChatError(3, "unknown visitor: open the chat window first", 404) from None
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue is None:
            raise ChatError(3, "no conversation yet: call /admin/event/notice", 409)
        if queue["state"] == "in_black_list":
            raise ChatError(4, BLOCKED_MSG, 403)
        info = await self.store.visitor_info(visiter_id, business_id) or {}
        fill = {k: clean[k] for k in ("name", "tel")
                if clean[k] and not str(info.get(k) or "").strip()}
        both = "\n".join(v for v in (clean["email"], clean["note"]) if v)
        if both and not str(info.get("note") or "").strip():
            fill["note"] = both
        if fill:
            await self.store.set_visitor_info(visiter_id, business_id, **fill)
        shown = " · ".join(clean[k] for k in ("name", "tel", "email", "note") if clean[k])
        line = await self.system_line(visitor, business_id, queue["service_id"], "contact",
                                      {**clean, "text": shown})
        return {"cid": line["cid"], "saved": sorted(fill)}

    async def close(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/close`: the conversation is over (`wolive_queue.state = complete`);
        it leaves the agent's list and load. Writes the `ended` system line (vars `{name}`: the
        closing agent's nick name; pushed to the visitor, the conversation's agent and the
        closer), whose cid a rating names (realtime/chat/ratings.py). Pushes `kefu{agent}` `closed`
        `{visiter_id}`
        (`all{business_id}` `claimed` for a waiting visitor), then under `auto` gives the
        freed place to the oldest waiting visitor. Already closed: code 0 again.

        Raises `ChatError`: 1 (409) blacklisted, 2 (409) changed meanwhile; 403/404 as
        `_queue_for`."""
        visitor, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] == "complete":
            return {"visiter_id": visiter_id, "state": "complete"}
        if queue["state"] == "in_black_list":
            raise ChatError(1, "this visitor is blacklisted, not in a conversation", 409)
        # The state and its line together: with the cluster out of reach, neither (a 503 to
        # send again), never a closed conversation without its "ended" line.
        async with self.order.hold(agent.business_id, visiter_id):
            if not await self.store.change_queue(visiter_id, agent.business_id,
                                                 queue["service_id"], "normal",
                                                 state="complete"):
                raise ChatError(2, "the conversation changed meanwhile; reload", 409)
            # The closing line (the visitor's window then asks for a rating).
            await self.system_line(visitor, agent.business_id, queue["service_id"], "ended",
                                   {"name": agent.nick_name}, agents=(agent.service_id,))
        self._gone(agent.business_id, visiter_id, queue["service_id"], "closed")
        await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "state": "complete"}

    async def blacklist(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/blacklist`: `wolive_queue.state = in_black_list`; the visitor's
        messages and notices are refused (code 4) from now on. A waiting visitor may be
        blacklisted by any agent of the business (it becomes that agent's). Pushes
        `kefu{agent}` `blacklisted` `{visiter_id}` (`all{business_id}` `claimed` when it was
        waiting). Already blacklisted: code 0 again. Raises `ChatError` 2 (409) changed
        meanwhile; 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id, write=False)
        if queue["state"] == "in_black_list":
            return {"visiter_id": visiter_id, "state": "in_black_list"}
        owner = queue["service_id"] or agent.service_id
        if not await self.store.change_queue(visiter_id, agent.business_id,
                                             queue["service_id"], queue["state"],
                                             service_id=owner, state="in_black_list"):
            raise ChatError(2, "the conversation changed meanwhile; reload", 409)
        if queue["state"] == "normal":
            self._gone(agent.business_id, visiter_id, queue["service_id"], "blacklisted")
            await self.assign_waiting(agent.business_id)
        return {"visiter_id": visiter_id, "state": "in_black_list"}

    async def unblack(self, agent: Agent, visiter_id: str) -> dict[str, Any]:
        """`/admin/set/unblack`: take the visitor off the blacklist (state `complete`: it
        may write or be assigned again). Raises `ChatError` 1 (409) not blacklisted,
        2 (409) changed meanwhile; 403/404 as `_queue_for`."""
        _, queue = await self._queue_for(agent, visiter_id)
        if queue["state"] != "in_black_list":
            raise ChatError(1, "this visitor is not blacklisted", 409)
        if not await self.store.change_queue(visiter_id, agent.business_id,
                                             queue["service_id"], "in_black_list",
                                             state="complete"):
            raise ChatError(2, "the conversation changed meanwhile; reload", 409)
        return {"visiter_id": visiter_id, "state": "complete"}

    async def system_line(self, visitor: dict[str, Any], business_id: str, service_id: int,
                          key: str, values: dict[str, Any] | None = None,
                          agents: tuple[int, ...] = (),
                          agents_only: bool = False) -> dict[str, Any]:
        """Write a line into a conversation's transcript (an end, a transfer, ...) and push it
        after the commit: `cu{channel}` `my-event` and `kefu{id}` `cu-event` for `service_id`
        and each of `agents` (0s skipped), as messages are pushed.

        The row: `msg_type` "system", `content` JSON `{"key": key, "vars": values}` (the
        pages render it in their language), direction `to_visiter`, state `readed` (never
        unread). `visitor` is its `wolive_visiter` row. `agents_only`: `msg_type` "note", a
        line the visitor never gets (not pushed to `cu{channel}`, not in its history).
        Returns the message as pushed."""
        content = json.dumps({"key": key, "vars": values or {}}, ensure_ascii=False)
        msg_type = "note" if agents_only else "system"
        async with self.order.hold(business_id, visitor["visiter_id"]):
            row = await self.store.add_chat(visitor["visiter_id"], service_id, business_id,
                                            content, "to_visiter", msg_type=msg_type,
                                            state="readed")
            message = {
                "cid": row["cid"], "visiter_id": visitor["visiter_id"],
                "visiter_name": visitor["visiter_name"], "channel": visitor["channel"],
                "business_id": business_id, "service_id": service_id, "content": content,
                "msg_type": msg_type, "timestamp": row["timestamp"],
                "direction": "to_visiter"}
            if not agents_only:
                self.hub.trigger(channels.visitor(visitor["channel"]), "my-event",
                                 {"message": message})
            for sid in dict.fromkeys((service_id, *agents)):
                if sid:
                    self.hub.trigger(channels.agent(sid), "cu-event", {"message": message})
        return message

    async def _reopened(self, visitor: dict[str, Any], business_id: str,
                        service_id: int) -> None:
        """A closed conversation opened again (the visitor wrote): a `reopened` system line
        in the transcript, and the agent's consoles told as for a new conversation
        (`ud{id}` `on_notice`; `all{business_id}` `on_notice` when it has no agent)."""
        await self.system_line(visitor, business_id, service_id, "reopened")
        target = (channels.agent_notices(service_id) if service_id
                  else channels.business(business_id))
        self.hub.trigger(target, "on_notice", visitor_event(visitor))

    async def _greet(self, visitor: dict[str, Any], business_id: str, service_id: int,
                     card: dict[str, Any]) -> None:
        """A conversation starts with agent `service_id`: its active greeting (`card`'s
        `greeting`, from `wolive_sentence`) is stored as the agent's first message
        (`to_visiter`, text, sent by that agent) and pushed (`cu{channel}` `my-event`);
        `card` gains `greeting_message`, the message as pushed. No greeting: nothing."""
        greeting = str(card.get("greeting") or "").strip()
        if not greeting:
            return
        async with self.order.hold(business_id, visitor["visiter_id"]):
            row = await self.store.add_chat(visitor["visiter_id"], service_id, business_id,
                                            greeting, "to_visiter")
            message = {
                "cid": row["cid"], "visiter_id": visitor["visiter_id"],
                "service_id": service_id, "nick_name": card["nick_name"],
                "avatar": card["avatar"], "business_id": business_id, "content": greeting,
                "msg_type": "text", "timestamp": row["timestamp"], "direction": "to_visiter"}
            self.hub.trigger(channels.visitor(visitor["channel"]), "my-event", {"message": message})
        card["greeting_message"] = message

    def _gone(self, business_id: str, visiter_id: str, service_id: int, event: str) -> None:
        """A conversation left an agent's list (`kefu{id}` `event`), or a visitor left the
        waiting list (`all{business_id}` `claimed`, with `reason` = `event`)."""
        if service_id:
            self.hub.trigger(channels.agent(service_id), event, {"visiter_id": visiter_id})
        else:
            self.hub.trigger(channels.business(business_id), "claimed", {
                "visiter_id": visiter_id, "service_id": 0, "nick_name": "", "reason": event})

    async def _entry(self, visiter_id: str, business_id: str) -> dict[str, Any]:
        row = await self.store.conversation(visiter_id, business_id)
        if row is None:
            raise ChatError(1, "no conversation with this visitor", 404)
        return row.as_dict()


def pick_agent(online: list[dict[str, Any]], cap: int = 0) -> int | None:
    """Auto-assignment's choice among online agents `[{service_id, load, idle_since_ms,
    away?}]`: the fewest open conversations, ties to the one idle longest (smallest
    `idle_since_ms`), then the lowest id; agents at `cap` (> 0) and agents `away` are passed
    over. None when all are full or away.
    (WOLIVE-NOTES: the original's "fewest queue rows ever" replaced by current load.)"""
    free = [r for r in online if not r.get("away") and (not cap or r["load"] < cap)]
    if not free:
        return None
    return int(min(free, key=lambda r: (r["load"], r["idle_since_ms"], r["service_id"]))
               ["service_id"])


def visitor_event(visitor: dict[str, Any]) -> dict[str, Any]:
    """The `on_notice` payload: who the visitor is (never its IP)."""
    return {"visiter_id": visitor["visiter_id"], "visiter_name": visitor["visiter_name"],
            "avatar": visitor["avatar"], "channel": visitor["channel"],
            "business_id": visitor["business_id"], "from_url": visitor["from_url"],
            "state": visitor["state"]}
