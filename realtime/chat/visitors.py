"""What a visitor does: proves who it is (its channel), opens the chat window (`visit`),
asks for an agent (`notice`: assigned, waiting or nobody online), learns its place, writes
(`visitor_send`, which reopens a closed conversation), reads its history and, when its
agent is away, leaves its contact details (`leave_contact`).
"""
from __future__ import annotations

import re
from typing import Any

from store import Conflict, NotFound

from . import channels
from .assignment import pick_agent
from .conversations import visitor_event
from .errors import BLOCKED_MSG, ChatError
from .handover import Handover
from .values import BUSINESS_ID_RE, VISITER_ID_RE, Handed, NoticeAnswer
from ..pusher.signing import same, visitor_channel

#: Longest visitor name and avatar URL: the document's column sizes.
MAX_NAME = 255
MAX_AVATAR = 1024
DEFAULT_VISITOR_AVATAR = "/assets/images/index/avatar-visitor.png"

#: Contact details a visitor leaves when its agent is away: longest of each (characters).
CONTACT_LIMITS = {"name": 64, "tel": 32, "email": 254, "note": 500}
TEL_RE = re.compile(r"^\+?[0-9][0-9 ()\-]{4,31}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]+$")


class Visitors(Handover):
    """The visitor side of the chat."""

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
        docs/api.md, "`POST /admin/event/notice` — visitor").

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

    async def _reopened(self, visitor: dict[str, Any], business_id: str,
                        service_id: int) -> None:
        """A closed conversation opened again (the visitor wrote): a `reopened` system line
        in the transcript, and the agent's consoles told as for a new conversation
        (`ud{id}` `on_notice`; `all{business_id}` `on_notice` when it has no agent)."""
        await self.system_line(visitor, business_id, service_id, "reopened")
        target = (channels.agent_notices(service_id) if service_id
                  else channels.business(business_id))
        self.hub.trigger(target, "on_notice", visitor_event(visitor))

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
