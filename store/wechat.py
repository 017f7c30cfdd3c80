"""SQL for WeChat bindings (`wolive_weixin`: an agent's `service_id` ↔ a WeChat `open_id`).

Used by `realtime.chat.wechat`; who may bind what is decided there. Each write is one committed
transaction.
"""
from __future__ import annotations

from sqlalchemy import and_, delete, func, insert, select

from . import schema as t
from .base import Row, StoreBase


class WechatStore(StoreBase):
    """`wolive_weixin` rows, and the offline agents a notification goes to."""

    async def weixin_of(self, service_id: int) -> list[Row]:
        """The agent's bindings `{wid, service_id, open_id}`, oldest first."""
        w = t.weixin
        return await self._fetch_all(select(w.c.wid, w.c.service_id, w.c.open_id)
                                     .where(w.c.service_id == service_id).order_by(w.c.wid))

    async def add_weixin(self, service_id: int, open_id: str, max_per_agent: int
                         ) -> Row | None:
        """Bind `open_id` to the agent (idempotent: an existing binding is returned as is).
        Returns the row, or None when the agent already has `max_per_agent` bindings."""
        w = t.weixin
        key = and_(w.c.service_id == service_id, w.c.open_id == open_id)
        async with self.engine.begin() as conn:
            if self.dialect == "mysql":
                # Serialise binds of one agent, so the cap holds under concurrency.
                await conn.execute(select(t.service.c.service_id).where(
                    t.service.c.service_id == service_id).with_for_update())
            row = await self._one(conn, select(w.c.wid, w.c.service_id, w.c.open_id)
                                  .where(key))
            if row is not None:
                return row
            count = (await conn.execute(select(func.count()).select_from(w).where(
                w.c.service_id == service_id))).scalar() or 0
            if count >= max_per_agent:
                return None
            res = await conn.execute(insert(w).values(service_id=service_id, open_id=open_id))
            return {"wid": self._inserted_id(res), "service_id": service_id,
                    "open_id": open_id}

    async def remove_weixin(self, service_id: int, open_id: str) -> int:
        """Unbind; returns how many rows went (0 when it was not bound)."""
        w = t.weixin
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(w).where(and_(
                w.c.service_id == service_id, w.c.open_id == open_id)))
            return int(res.rowcount or 0)

    async def offline_weixin_targets(self, business_id: str,
                                     service_id: int | None = None) -> list[Row]:
        """Bindings of the business's offline agents (only agent `service_id` when given):
        `{service_id, nick_name, open_id}`, by agent then binding."""
        w, s = t.weixin, t.service
        cond = [s.c.business_id == business_id, s.c.state == "offline"]
        if service_id is not None:
            cond.append(s.c.service_id == service_id)
        return await self._fetch_all(
            select(s.c.service_id, s.c.nick_name, w.c.open_id)
            .select_from(w.join(s, w.c.service_id == s.c.service_id))
            .where(and_(*cond)).order_by(s.c.service_id, w.c.wid))
