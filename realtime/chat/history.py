"""Conversation history for the console: which visitors an agent talked with
(`History.visitors`), a search over the transcripts (`History.search`), and one visitor's
conversation over a span (`History.views`, `History.views_between`) with its ratings.
Scope: a service agent its own conversations, a manager its business's, a super_manager
the business it names. Raises `ChatError` (400 bad argument, 403, 404, 409).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from store import NotFound, Store
from store.ratings import RATING_FIELDS

from .dates import parse_when
from .errors import ChatError
from .paging import check_page, page_of
from .values import Agent

#: `getviews` `puttime`: how far back "the last week" / "the last month" reach (seconds).
PUTTIME_SPANS_S = {"week": 7 * 86_400, "month": 30 * 86_400}


class History:
    """Conversation history. A service agent sees only its own conversations; a manager its
    business's; a super_manager the business it names (or any, when it names none:
    `business_id` None). Visitors are found by `channel` within that business only."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    async def visitors(self, agent: Agent, business_id: str | None, nick_name: str,
                       service_id: int, page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getvisiters`: the visitors the agent named by `nick_name` (the
        document's `service`) or `service_id` talked with; the caller by default. A service
        agent may only ask about itself (403). 404 no such agent in the business; 409 the
        nick name is shared (ask by `service_id`). `business_id` None (a super_manager who
        named none): the named agent's business, else the caller's."""
        offset, limit = check_page(page, limit)
        target, business_id = await self._target_agent(agent, business_id, nick_name,
                                                       service_id)
        rows, total = await self.store.visitors_of_service(business_id, target, offset,
                                                           limit)
        out = page_of(rows, total, page, limit)
        out.update(service_id=target, business_id=business_id)
        return out

    async def search(self, agent: Agent, business_id: str, text: str, who: str,
                     service_id: int, start: str, end: str, page: int,
                     limit: int) -> dict[str, Any]:
        """`/admin/set/searchhistory`: the visitors whose messages in `business_id` (already
        checked for the caller) match `text` (within a message), `who` (within the visitor's
        name or id) and `service_id` (0: any agent), between `start` and `end` (YYYY-MM-DD or
        unix seconds, inclusive; either may be empty), most recent first:
        `{rows, total, page, limit}` (rows: `HistoryStore.search_conversations`). A service
        agent only ever searches its own conversations. Raises `ChatError` 400, 404 for a
        `service_id` that is no agent of `business_id`."""
        offset, limit = check_page(page, limit)
        if agent.level == "service":
            service_id = agent.service_id
        elif service_id:
            # An agent of another business (or none) is not found, as everywhere else.
            await self._target_agent(agent, business_id, "", service_id)
        since = parse_when("start", start) if start.strip() else 0
        until = parse_when("end", end, end=True) if end.strip() else 2 ** 31 - 1
        if since > until:
            raise ChatError(1, "start is after end", 400)
        rows, total = await self.store.search_conversations(
            business_id, since, until, service_id, text.strip(), who.strip(), offset, limit)
        return page_of(rows, total, page, limit)

    async def _target_agent(self, agent: Agent, business_id: str | None, nick_name: str,
                            service_id: int) -> tuple[int, str]:
        """(service_id, business_id) of the agent asked about; see `visitors`."""
        if service_id:
            try:
                row = await self.store.get_service(service_id)
            except NotFound:
                raise ChatError(1, "no such agent in your business", 404) from None
            if business_id is None:
                business_id = row["business_id"]
            elif row["business_id"] != business_id:
                raise ChatError(1, "no such agent in your business", 404)
            target = service_id
        else:
            business_id = business_id or agent.business_id
            if not nick_name or (business_id == agent.business_id and
                                 nick_name == agent.nick_name):
                target = agent.service_id
            else:
                ids = [r["service_id"] for r in
                       await self.store.services_by_nick(business_id, nick_name)]
                if not ids:
                    raise ChatError(1, "no such agent in your business", 404)
                if agent.level == "service" and agent.service_id in ids:
                    target = agent.service_id
                elif agent.level != "service" and len(ids) > 1:
                    raise ChatError(1, "several agents have this nick_name: ask by "
                                       "service_id", 409)
                else:
                    target = ids[0]
        if agent.level == "service" and target != agent.service_id:
            raise ChatError(1, "a service agent sees only its own visitors / 权限不足", 403)
        return target, business_id

    async def views(self, agent: Agent, business_id: str | None, channel: str, puttime: str,
                    page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getviews`: the conversation with the visitor of `channel` in the last
        week (`puttime=week`, 7 days) or month (`month`, 30 days), oldest first; `ratings`:
        the visitor's ratings given in the span (a service agent: of its own conversations)."""
        span = PUTTIME_SPANS_S.get((puttime or "").strip())
        if span is None:
            raise ChatError(1, "puttime must be week or month", 400)
        now = int(self.clock())
        return await self._conversation(agent, business_id, channel, now - span, now, page,
                                        limit)

    async def views_between(self, agent: Agent, business_id: str | None, channel: str, start: str,
                            end: str, page: int, limit: int) -> dict[str, Any]:
        """`/admin/set/getdesignForViews`: the conversation between `start` and `end`
        (dates `YYYY-MM-DD` in the server's time zone, or unix seconds; `end` inclusive:
        a date means the whole of that day). 400 for a bad date or `start` after `end`."""
        since = parse_when("start", start)
        until = parse_when("end", end, end=True)
        if since > until:
            raise ChatError(1, "start is after end", 400)
        return await self._conversation(agent, business_id, channel, since, until, page,
                                        limit)

    async def _conversation(self, agent: Agent, business_id: str | None, channel: str, since: int,
                            until: int, page: int, limit: int) -> dict[str, Any]:
        offset, limit = check_page(page, limit)
        channel = (channel or "").strip()
        if not channel:
            raise ChatError(1, "missing parameter: channel", 400)
        visitor = await self.store.find_visiter_by_channel(channel)
        if visitor is None or business_id not in (None, visitor["business_id"]):
            raise ChatError(1, "no such visitor in your business", 404)
        business_id = visitor["business_id"]
        only: int | None = None
        if agent.level == "service":
            only = agent.service_id
            if not await self.store.has_chatted(business_id, visitor["visiter_id"], only):
                raise ChatError(1, "not your visitor: you never talked with it", 403)
        # The whole transcript, as the workbench shows it: an agent who took the visitor
        # over (a transfer, a hand-over) reads what was said before it came, too.
        rows, total = await self.store.chats_between(
            business_id, visitor["visiter_id"], since, until, offset, limit)
        out = page_of(rows, total, page, limit)
        out.update(visiter_id=visitor["visiter_id"], visiter_name=visitor["visiter_name"],
                   avatar=visitor["avatar"], start=since, end=until)
        # The visitor's ratings given in the span, oldest first.
        out["ratings"] = [{k: r[k] for k in RATING_FIELDS} for r in
                          await self.store.ratings_between(business_id, visitor["visiter_id"],
                                                           since, until, service_id=only)]
        return out
