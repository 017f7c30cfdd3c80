"""`/admin/manager/weixin`: an agent's WeChat bindings (`wolive_weixin`), so it gets a
template message when a visitor writes while it is offline (`realtime.chat.wechat`).

Logged-in agent, `_xsrf` on POST. `service_id` (optional) names another agent of the
business: managers and super_managers only.
"""
from __future__ import annotations

from .base import AgentApiHandler, ApiError


class WeixinHandler(AgentApiHandler):
    """`GET /admin/manager/weixin` → `{code: 0, data: [{wid, service_id, open_id}]}`.
    `POST` `open_id` → binds it (`data`: the row); `POST` `open_id` + `action=unbind` →
    unbinds it (`data: {removed}`). Errors: 400 malformed `open_id` or `action`, 401 not
    logged in, 403 `_xsrf` missing / another agent without the level / another business,
    404 unknown agent or not bound, 409 too many bindings."""

    async def get(self) -> None:
        rows = await self.wechat.bindings(self.agent, self.int_arg("service_id", 0))
        self.answer(0, "", rows)

    async def post(self) -> None:
        open_id = self.arg("open_id", required=True, max_len=64)
        service_id = self.int_arg("service_id", 0)
        action = self.arg("action", "bind", max_len=10)
        if action == "bind":
            row = await self.wechat.bind(self.agent, open_id, service_id)
            self.answer(0, "success", row)
        elif action == "unbind":
            removed = await self.wechat.unbind(self.agent, open_id, service_id)
            self.answer(0, "success", {"removed": removed})
        else:
            raise ApiError(400, 1, "action must be bind or unbind")


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/manager/weixin", WeixinHandler)]
