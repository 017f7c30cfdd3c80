"""The console's pages: the agent's workbench (`/admin/index/index`) and the other pages:
history, agents, settings, message board, businesses, embed code, reports. Each other page
is a page shell (templates/page_*.html) whose script calls the JSON APIs of docs/api.md;
the handler only checks who is asking.

Not logged in: 302 to the login page. Logged in below the page's level: 403 with a page that
keeps the top bar, so the agent can go elsewhere.
"""
from __future__ import annotations

from typing import Any

from .base import LEVELS, PageHandler
from .history import HistoryApiHandler

#: page name → lowest level that may open it.
PAGES = {
    "history": "service",
    "agents": "service",      # a service agent sees its own profile and password
    "settings": "service",    # a service agent sees its own greeting
    "messages": "service",
    "businesses": "super_manager",
    "embed": "service",
    "reports": "service",     # a service agent sees its own numbers (handlers/reports.py)
}


class WorkbenchPage(PageHandler):
    """`/admin/index/index`: the agent's workbench."""

    async def get(self) -> None:
        agent = self.current_user
        if agent is None:
            return self.redirect("/admin/login/index")
        boot = self.boot()
        # video.js shows the video button only when the business allows calls.
        boot["video_state"] = (await self.store.get_business(agent.business_id))["video_state"]
        boot["presence"] = await self.agent_status.boot(agent)
        self.render("console.html", agent=agent, boot=boot)

    def boot(self) -> dict[str, Any]:
        agent = self.agent
        return {"service_id": agent.service_id, "business_id": agent.business_id,
                "nick_name": agent.nick_name, "avatar": agent.avatar, "level": agent.level,
                "pusher": self.pusher_client}


class ConsolePage(PageHandler):
    """`/admin/page/{name}`: one of `PAGES`, for a logged-in agent of its level."""

    async def get(self, name: str) -> None:
        agent = self.current_user
        if agent is None:
            self.redirect("/admin/login/index")
            return
        if LEVELS.get(agent.level, 0) < LEVELS[PAGES[name]]:
            self.set_status(403)
            self.render("page_403.html", agent=agent, page=name, boot=await self.boot(name))
            return
        self.set_header("Cache-Control", "no-store")
        self.render(f"page_{name}.html", agent=agent, page=name, boot=await self.boot(name))

    def public_base(self) -> str:
        """Where visitors reach this server: `server.public_url`, else this request's."""
        configured = self.config.server.public_url.rstrip("/")
        return configured or f"{self.request.protocol}://{self.request.host}"

    async def boot(self, name: str) -> dict[str, Any]:
        agent = self.agent
        row = self.agent_row or {}
        me = {k: row.get(k) or "" for k in ("user_name", "nick_name", "phone", "email", "avatar")}
        return {"page": name, "me": me, "service_id": agent.service_id,
                "business_id": agent.business_id, "nick_name": agent.nick_name,
                "avatar": agent.avatar, "level": agent.level,
                "pusher": self.pusher_client, "base": self.public_base(),
                # Keeps the agent online on every page (static/.../presence.js).
                "presence": await self.agent_status.boot(agent)}




# ---- history search (the history page's list) ---------------------------------------------

#: Longest search text / visitor filter.
MAX_SEARCH = 100


class SearchHistoryHandler(HistoryApiHandler):
    """`GET /admin/set/searchhistory`: the visitors whose messages match, most recent first.

    Params (all optional): `q` (text in a message), `visiter` (part of the visitor's name or
    id), `service_id` (one agent; manager and up), `start`, `end` (YYYY-MM-DD or unix
    seconds, inclusive), `business_id` (super_manager), `page`, `limit` (1-100, default 20).
    A service agent only ever searches its own conversations. Answer `{rows: [{visiter_id,
    visiter_name, avatar, channel, state, last_time, messages, last_content, last_direction,
    last_type, nick_name}], total, page, limit}`; `messages` counts the matching messages
    (`realtime.chat.history.History.search`)."""

    async def get(self) -> None:
        business_id = self.arg("business_id", max_len=100) or self.agent.business_id
        self.require_business(business_id)
        self.answer(0, "", await self.history.search(
            self.agent, business_id, self.arg("q", max_len=MAX_SEARCH),
            self.arg("visiter", max_len=MAX_SEARCH), self.int_arg("service_id", 0),
            self.arg("start", max_len=20), self.arg("end", max_len=20),
            self.int_arg("page", 1), self.int_arg("limit", 20)))

    post = get


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/page/(%s)/?" % "|".join(PAGES), ConsolePage),
            (r"/admin/set/searchhistory", SearchHistoryHandler),
            (r"/admin(?:/index(?:/index)?)?/?", WorkbenchPage)]
