"""SQL for the agent's explicit status (`wolive_service_status`: available / away).

Used by `realtime.chat.agent_status`; who may set what is decided there. An agent without a row is
`available`. Each write is one committed transaction.
"""
from __future__ import annotations

import time

from sqlalchemy import and_, insert, select, update

from . import schema as t
from .base import StoreBase
from .errors import NotFound

#: The values of `wolive_service_status.status`.
STATUSES = ("available", "away")


class AgentStatusStore(StoreBase):
    """Read and write agents' `available` / `away` status."""

    async def service_status(self, service_id: int) -> str:
        """The agent's status, `available` or `away` (`available` when never set)."""
        st = t.service_status
        row = await self._fetch_one(select(st.c.status).where(st.c.service_id == service_id))
        return str(row["status"]) if row else "available"

    async def set_service_status(self, service_id: int, status: str) -> bool:
        """Store the agent's status (`STATUSES`); True when it changed. Raises `ValueError`
        for another value, `NotFound` for an unknown agent."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        st = t.service_status
        now = int(time.time() * 1000)
        async with self.engine.begin() as conn:
            known = await self._one(conn, select(t.service.c.service_id).where(
                t.service.c.service_id == service_id))
            if known is None:
                raise NotFound(f"agent {service_id}")
            current = await self._one(conn, select(st.c.status).where(
                st.c.service_id == service_id))
            if current is None:
                await conn.execute(insert(st).values(service_id=service_id, status=status,
                                                     changed_ms=now))
                return status != "available"
            if current["status"] == status:
                return False
            await conn.execute(update(st).where(st.c.service_id == service_id)
                               .values(status=status, changed_ms=now))
            return True

    async def away_services(self, business_id: str) -> list[int]:
        """The `service_id`s of the business's agents whose status is `away`, ascending."""
        st, s = t.service_status, t.service
        rows = await self._fetch_all(
            select(s.c.service_id).select_from(s.join(st, st.c.service_id == s.c.service_id))
            .where(and_(s.c.business_id == business_id, st.c.status == "away"))
            .order_by(s.c.service_id))
        return [int(r["service_id"]) for r in rows]
