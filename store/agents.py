"""SQL for agent management and businesses (`wolive_service`, `wolive_business`).

Used by `realtime.agents`; no rule about who may do what lives here (that is the use
case's job), only the writes, each in one committed transaction. Raises `Conflict` for a
taken `user_name` / `business_id` and `NotFound` for a missing row.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import Conflict, NotFound
from .quick_replies import quick_reply

#: What may be shown of an agent: every column except the password hash.
PUBLIC_SERVICE_COLUMNS = (
    "service_id", "user_name", "nick_name", "phone", "email", "business_id", "avatar",
    "level", "parent_id", "state",
)

#: The profile columns `update_service_profile` may write (the whitelist: never the
#: level, business, parent or password).
PROFILE_COLUMNS = ("user_name", "nick_name", "phone", "email", "avatar")


def _public_columns() -> list[Any]:
    return [t.service.c[name] for name in PUBLIC_SERVICE_COLUMNS]


class AgentStore(StoreBase):
    """Agents and businesses, as the agent-management use cases need them."""

    # ---- agents -------------------------------------------------------------------------

    async def services_of(self, business_id: str) -> list[Row]:
        """The business's agents (no password hash), highest level first, then by id."""
        level_rank = {"super_manager": 0, "manager": 1, "service": 2}
        rows = await self._fetch_all(
            select(*_public_columns()).where(t.service.c.business_id == business_id)
            .order_by(t.service.c.service_id))
        rows.sort(key=lambda r: (level_rank.get(r["level"], 3), r["service_id"]))
        return rows

    async def update_service_profile(self, service_id: int, values: dict[str, str]) -> Row:
        """Write the given profile columns (only `PROFILE_COLUMNS`; anything else is a
        programming error: `ValueError`). Returns the agent without its password hash.

        Raises `NotFound` (no such agent), `Conflict` ("user_name taken")."""
        bad = set(values) - set(PROFILE_COLUMNS)
        if bad:
            raise ValueError(f"not profile columns: {sorted(bad)}")
        key = t.service.c.service_id == service_id
        async with self.engine.begin() as conn:
            if await self._one(conn, select(t.service.c.service_id).where(key)) is None:
                raise NotFound(f"agent {service_id}")
            if values:
                try:
                    await conn.execute(update(t.service).where(key).values(**values))
                except IntegrityError as exc:
                    raise Conflict("user_name taken") from exc
            return await self._one(conn, select(*_public_columns()).where(key)) or {}

    async def delete_service(self, service_id: int, new_parent_id: int) -> list[Row]:
        """Delete an agent in one transaction and hand back what it held.

        - its open conversations (`wolive_queue`, state normal) go back to waiting
          (`service_id` 0); its other queue rows (complete, blacklist) keep their state but
          point at no agent, so a later agent never inherits them;
        - agents whose `parent_id` was this one get `new_parent_id`;
        - its greeting (`wolive_sentence`), WeChat links (`wolive_weixin`), own quick
          replies (`wolive_quick_reply`), status (`wolive_service_status`) and assignment
          times (`wolive_service_load`) go with it. Its id is never given again (schema,
          `_NO_REUSE`), so nothing left pointing at it (old messages, ratings) can ever
          belong to another agent.

        Returns the visitors released back to waiting: `{visiter_id, business_id,
        visiter_name, avatar, channel, from_url, state}`. Raises `NotFound`."""
        q, v = t.queue, t.visiter
        async with self.engine.begin() as conn:
            if self.dialect == "mysql":
                # Lock the agent row so a concurrent claim/assign sees it gone or not at all.
                await conn.execute(select(t.service.c.service_id).where(
                    t.service.c.service_id == service_id).with_for_update())
            gone = await conn.execute(delete(t.service).where(
                t.service.c.service_id == service_id))
            if not gone.rowcount:
                raise NotFound(f"agent {service_id}")
            released = [dict(r) for r in (await conn.execute(
                select(q.c.visiter_id, q.c.business_id, v.c.visiter_name, v.c.avatar,
                       v.c.channel, v.c.from_url, v.c.state)
                .join(v, and_(v.c.visiter_id == q.c.visiter_id,
                              v.c.business_id == q.c.business_id))
                .where(and_(q.c.service_id == service_id, q.c.state == "normal"))
                .order_by(q.c.qid))).mappings().all()]
            await conn.execute(update(q).where(q.c.service_id == service_id)
                               .values(service_id=0))
            await conn.execute(update(t.service).where(t.service.c.parent_id == service_id)
                               .values(parent_id=new_parent_id))
            await conn.execute(delete(t.sentence).where(t.sentence.c.service_id == service_id))
            for table in (t.weixin, t.service_status, t.service_load, quick_reply):
                await conn.execute(delete(table).where(table.c.service_id == service_id))
        return released

    # ---- businesses ---------------------------------------------------------------------

    async def businesses(self) -> list[Row]:
        """Every business (all `wolive_business` columns) with `agents`: how many agents it
        has and `online`: how many of them are online. Ordered by `wid`."""
        s = t.service
        agents = (select(func.count()).select_from(s)
                  .where(s.c.business_id == t.business.c.business_id).scalar_subquery())
        online = (select(func.count()).select_from(s)
                  .where(and_(s.c.business_id == t.business.c.business_id,
                              s.c.state == "online")).scalar_subquery())
        rows = await self._fetch_all(
            select(t.business, agents.label("agents"), online.label("online"))
            .order_by(t.business.c.wid))
        for r in rows:
            r["agents"], r["online"] = int(r["agents"] or 0), int(r["online"] or 0)
        return rows

    async def add_business_with_manager(self, business_id: str, user_name: str,
                                        nick_name: str, password_hash: str, parent_id: int,
                                        distribution_rule: str = "auto") -> Row:
        """Create a business and its first `manager` in one transaction: both or neither.

        Returns the manager (no password hash). Raises `Conflict` ("business exists" or
        "user_name taken")."""
        # No SAVEPOINT here: with pysqlite a SAVEPOINT that opens the transaction commits on
        # release. Any IntegrityError raises out of `begin()`, which rolls everything back.
        async with self.engine.begin() as conn:
            try:
                await conn.execute(insert(t.business).values(
                    business_id=business_id, distribution_rule=distribution_rule))
            except IntegrityError as exc:
                raise Conflict("business exists") from exc
            try:
                res = await conn.execute(insert(t.service).values(
                    user_name=user_name, nick_name=nick_name, password=password_hash,
                    business_id=business_id, level="manager", parent_id=parent_id,
                    state="offline"))
            except IntegrityError as exc:
                raise Conflict("user_name taken") from exc
            sid = self._inserted_id(res)
            return await self._one(conn, select(*_public_columns()).where(
                t.service.c.service_id == sid)) or {}
