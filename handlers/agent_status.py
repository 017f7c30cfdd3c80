"""`/admin/set/status`: the agent sets itself `available` or `away` (issue 9).

Thin glue: the rule and the events live in `realtime.chat.agent_status`.
"""
from __future__ import annotations

from .base import AgentApiHandler


class SetStatusHandler(AgentApiHandler):
    """`POST /admin/set/status` with `status` = `available` | `away` (the caller's own
    status; `_xsrf` as every console POST). Answer `{code: 0, data: {service_id, status,
    state, changed}}`; code 1 (400) for another value, 401 when not logged in."""

    async def post(self) -> None:
        status = self.arg("status", required=True, max_len=20)
        self.answer(0, "", await self.agent_status.set(self.agent, status))


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/set/status", SetStatusHandler)]
