"""The console's other pages (issue 5): history, agents, settings, message board, businesses,
embed code. Each is a page shell (templates/page_*.html) whose script calls the JSON APIs of
docs/api.md; the handler only checks who is asking.

Not logged in: 302 to the login page. Logged in below the page's level: 403 with a page that
keeps the top bar, so the agent can go elsewhere.
"""
from __future__ import annotations

from typing import Any

from .admin import PageHandler
from .base import LEVELS

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
            return self.redirect("/admin/login/index")
        if LEVELS.get(agent.level, 0) < LEVELS[PAGES[name]]:
            self.set_status(403)
            return self.render("page_403.html", agent=agent, page=name, boot=self.boot(name))
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
        return {"page": name, "me": me, "service_id": agent.service_id, "business_id": agent.business_id,
                "nick_name": agent.nick_name, "avatar": agent.avatar, "level": agent.level,
                "pusher": self.settings["wolive_pusher_client"], "base": self.public_base()}


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/page/(%s)/?" % "|".join(PAGES), ConsolePage)]
