"""The console's other pages (issue 5): history, agents, settings, message board, businesses,
embed code. Each is a page shell (templates/page_*.html) whose script calls the JSON APIs of
docs/api.md; the handler only checks who is asking.

Not logged in: 302 to the login page. Logged in below the page's level: 403 with a page that
keeps the top bar, so the agent can go elsewhere.
"""
from __future__ import annotations

import datetime
import time
from typing import Any

from .admin import PageHandler
from .base import LEVELS, AgentApiHandler, ApiError

#: page name → lowest level that may open it.
PAGES = {
    "history": "service",
    "agents": "service",      # a service agent sees its own profile and password
    "settings": "service",    # a service agent sees its own greeting
    "messages": "service",
    "businesses": "super_manager",
    "embed": "service",
}


class ConsolePage(PageHandler):
    """`/admin/page/{name}`: one of `PAGES`, for a logged-in agent of its level."""

    def get(self, name: str) -> None:
        agent = self.current_user
        if agent is None:
            self.redirect("/admin/login/index")
            return
        if LEVELS.get(agent.level, 0) < LEVELS[PAGES[name]]:
            self.set_status(403)
            self.render("page_403.html", agent=agent, page=name, boot=self.boot(name))
            return
        self.set_header("Cache-Control", "no-store")
        self.render(f"page_{name}.html", agent=agent, page=name, boot=self.boot(name))

    def public_base(self) -> str:
        """Where visitors reach this server: `server.public_url`, else this request's."""
        configured = str(self.config["server"].get("public_url") or "").rstrip("/")
        return configured or f"{self.request.protocol}://{self.request.host}"

    def boot(self, name: str) -> dict[str, Any]:
        agent = self.agent
        row = self.agent_row or {}
        me = {k: row.get(k) or "" for k in ("user_name", "nick_name", "phone", "email", "avatar")}
        return {"page": name, "me": me, "service_id": agent.service_id,
                "business_id": agent.business_id, "nick_name": agent.nick_name,
                "avatar": agent.avatar, "level": agent.level,
                "pusher": self.settings["wolive_pusher_client"], "base": self.public_base()}




# ---- history search (the history page's list) ---------------------------------------------

#: Longest search text / visitor filter.
MAX_SEARCH = 100


def _like(text: str) -> str:
    """`%text%` for LIKE, with `\\`, `%` and `_` taken literally (ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _day(name: str, value: str, end: bool = False) -> int:
    """`YYYY-MM-DD` (the server's time zone) → unix seconds: its start, or with `end` its
    last second."""
    try:
        day = datetime.datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ApiError(400, 1, f"{name} must be a date YYYY-MM-DD") from None
    if end:
        day += datetime.timedelta(days=1)
    return int(time.mktime(day.timetuple())) - (1 if end else 0)


class SearchHistoryHandler(AgentApiHandler):
    """`GET /admin/set/searchhistory`: the visitors whose messages match, most recent first.

    Params (all optional): `q` (text in a message), `visiter` (part of the visitor's name or
    id), `service_id` (one agent; manager and up), `start`, `end` (YYYY-MM-DD, inclusive),
    `business_id` (super_manager), `page`, `limit` (1-100, default 20). A service agent only
    ever searches its own conversations. Answer `{rows: [{visiter_id, visiter_name, avatar,
    channel, state, last_time, messages, last_content, last_direction, nick_name}], total,
    page, limit}`; `messages` counts the matching messages."""

    async def get(self) -> None:
        from sqlalchemy import and_, func, or_, select

        from store import schema as t

        agent = self.agent
        business_id = self.arg("business_id", max_len=100) or agent.business_id
        self.require_business(business_id)
        q = self.arg("q", max_len=MAX_SEARCH).strip()
        who = self.arg("visiter", max_len=MAX_SEARCH).strip()
        service_id = self.int_arg("service_id", 0)
        if agent.level == "service":
            service_id = agent.service_id
        page = max(1, self.int_arg("page", 1))
        limit = self.int_arg("limit", 20)
        if not 1 <= limit <= 100:
            raise ApiError(400, 1, "limit must be 1-100")
        start, end = self.arg("start", max_len=10), self.arg("end", max_len=10)
        since = _day("start", start) if start else 0
        until = _day("end", end, end=True) if end else 2 ** 31 - 1
        if since > until:
            raise ApiError(400, 1, "start is after end")

        c, v, sv = t.chats, t.visiter, t.service
        cond = [c.c.business_id == business_id, c.c.timestamp >= since, c.c.timestamp <= until]
        if service_id:
            cond.append(c.c.service_id == service_id)
        if q:
            cond.append(c.c.content.like(_like(q), escape="\\"))
        if who:
            cond.append(c.c.visiter_id.in_(select(v.c.visiter_id).where(and_(
                v.c.business_id == business_id,
                or_(v.c.visiter_name.like(_like(who), escape="\\"),
                    v.c.visiter_id.like(_like(who), escape="\\"))))))
        where = and_(*cond)
        last_time = func.max(c.c.timestamp).label("last_time")
        stmt = (select(c.c.visiter_id, last_time, func.count().label("messages"),
                       func.max(c.c.cid).label("last_cid"))
                .where(where).group_by(c.c.visiter_id)
                .order_by(last_time.desc(), c.c.visiter_id)
                .offset((page - 1) * limit).limit(limit))
        async with self.store.engine.connect() as conn:
            found = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
            total = int((await conn.execute(
                select(func.count(c.c.visiter_id.distinct())).where(where))).scalar() or 0)
            people: dict[str, Any] = {}
            last: dict[int, Any] = {}
            if found:
                ids = [f["visiter_id"] for f in found]
                for r in (await conn.execute(
                        select(v.c.visiter_id, v.c.visiter_name, v.c.avatar, v.c.channel,
                               v.c.state).where(and_(v.c.business_id == business_id,
                                                     v.c.visiter_id.in_(ids))))).mappings():
                    people[r["visiter_id"]] = dict(r)
                for r in (await conn.execute(
                        select(c.c.cid, c.c.content, c.c.direction, c.c.msg_type, sv.c.nick_name)
                        .outerjoin(sv, sv.c.service_id == c.c.service_id)
                        .where(c.c.cid.in_([f["last_cid"] for f in found])))).mappings():
                    last[r["cid"]] = dict(r)
        rows = []
        for f in found:
            row = people.get(f["visiter_id"]) or {
                "visiter_id": f["visiter_id"], "visiter_name": "", "avatar": "", "channel": "",
                "state": "offline"}
            m = last.get(f["last_cid"], {})
            row.update(last_time=int(f["last_time"] or 0), messages=int(f["messages"]),
                       last_content=m.get("content", ""), last_direction=m.get("direction"),
                       last_type=m.get("msg_type") or "text", nick_name=m.get("nick_name") or "")
            rows.append(row)
        self.answer(0, "", {"rows": rows, "total": total, "page": page, "limit": limit})

    post = get


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/page/(%s)/?" % "|".join(PAGES), ConsolePage),
            (r"/admin/set/searchhistory", SearchHistoryHandler)]
