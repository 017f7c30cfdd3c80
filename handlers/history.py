"""Conversation history for the console (WoLive document, "查看历史消息Api").

`/admin/set/getvisiters` (`service`: the agent's nick name), `/admin/set/getviews`
(`channel`, `puttime` week | month) and `/admin/set/getdesignForViews` (`channel`, `start`,
`end`). All paged (`page` from 1, `limit` ≤ 100) and scoped: a service agent sees its own
conversations, a manager its business's, a super_manager the business it names with
`business_id` (or any). Rules in realtime/chat/history.py (`History`).
"""
from __future__ import annotations

from typing import cast


from .base import AgentApiHandler
from .content import ContentMixin


class HistoryApiHandler(AgentApiHandler, ContentMixin):
    """Any logged-in agent; what it may see is decided by `History` from its level."""

    def history_scope(self) -> str | None:
        """The business asked about: `business_id` if the caller may see it (else 403), the
        caller's own by default, None (any) for a super_manager who names none."""
        agent = self.agent
        business_id = self.arg("business_id", max_len=100)
        if not business_id:
            return None if agent.level == "super_manager" else agent.business_id
        self.require_business(business_id)
        return business_id


class GetVisitersHandler(HistoryApiHandler):
    """`/admin/set/getvisiters`: `service` (an agent's nick name; the caller by default) or
    `service_id` → `{rows: [{visiter_id, visiter_name, avatar, channel, state, ip,
    from_url, timestamp, last_time, messages}], total, page, limit, service_id,
    business_id}`, the most recent conversation first."""

    async def get(self) -> None:
        page, limit = self.page_args()
        data = await self.history.visitors(
            self.agent, self.history_scope(), self.arg("service", max_len=255).strip(),
            cast(int, self.id_arg("service_id", required=False) or 0), page, limit)
        self.answer(0, "", data)

    post = get


class GetViewsHandler(HistoryApiHandler):
    """`/admin/set/getviews`: `channel`, `puttime` = week | month (the document's `time`
    is accepted too) → `{rows: [<wolive_chats row + nick_name>], total, page, limit,
    visiter_id, visiter_name, avatar, start, end}`, oldest first."""

    async def get(self) -> None:
        page, limit = self.page_args()
        puttime = self.arg("puttime", max_len=10) or self.arg("time", max_len=10)
        data = await self.history.views(self.agent, self.history_scope(),
                                        self.arg("channel", required=True, max_len=255),
                                        puttime, page, limit)
        self.answer(0, "", data)

    post = get


class GetDesignForViewsHandler(HistoryApiHandler):
    """`/admin/set/getdesignForViews`: `channel`, `start`, `end` (YYYY-MM-DD in the
    server's time zone, or unix seconds; `end` inclusive) → the same shape as getviews."""

    async def get(self) -> None:
        page, limit = self.page_args()
        data = await self.history.views_between(
            self.agent, self.history_scope(), self.arg("channel", required=True, max_len=255),
            self.arg("start", required=True, max_len=20),
            self.arg("end", required=True, max_len=20), page, limit)
        self.answer(0, "", data)

    post = get


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/set/getvisiters", GetVisitersHandler),
        (r"/admin/set/getviews", GetViewsHandler),
        (r"/admin/set/get[dD]esign[fF]or[vV]iews", GetDesignForViewsHandler),
    ]
