"""SQL for agents' greetings (`wolive_sentence`, WoLive's table: one greeting per agent,
`using` or `unuse`), and the agent card's greeting and status read together.

Values arrive already validated (`realtime.chat.content`); this module only stores them. Every
write is committed before the method returns.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import NotFound
from .prepared import Prepared


def _card_extras(_dialect: str) -> Any:
    """`card_extras`'s one statement: the agent's active greeting and its status."""
    s, st = t.sentence, t.service_status
    greeting = select(s.c.content).where(and_(
        s.c.service_id == bindparam("service_id"), s.c.state == "using")
    ).limit(1).scalar_subquery()
    status = select(st.c.status).where(
        st.c.service_id == bindparam("service_id")).scalar_subquery()
    return select(greeting.label("greeting"), status.label("status"))


CARD_EXTRAS = Prepared(_card_extras)


class GreetingStore(StoreBase):
    """Agents' greetings (see the module docstring)."""

    async def greeting_row(self, service_id: int) -> Row | None:
        """The agent's greeting `{sid, content, service_id, state}`, or None."""
        return await self._fetch_one(select(t.sentence).where(
            t.sentence.c.service_id == service_id))

    async def save_greeting(self, service_id: int, content: str) -> Row:
        """Set the agent's greeting and turn it on (`state = using`); returns the row."""
        key = t.sentence.c.service_id == service_id
        async with self.engine.begin() as conn:
            res = await conn.execute(update(t.sentence).where(key).values(
                content=content, state="using"))
            if not res.rowcount:
                try:
                    async with conn.begin_nested():
                        await conn.execute(insert(t.sentence).values(
                            service_id=service_id, content=content, state="using"))
                except IntegrityError:  # a second tab inserted it first
                    await conn.execute(update(t.sentence).where(key).values(
                        content=content, state="using"))
            return await self._one(conn, select(t.sentence).where(key)) or {}

    async def set_greeting_state(self, service_id: int, state: str) -> Row:
        """`state` is "using" or "unuse". Raises `NotFound` when the agent has no greeting."""
        key = t.sentence.c.service_id == service_id
        async with self.engine.begin() as conn:
            await conn.execute(update(t.sentence).where(key).values(state=state))
            row = await self._one(conn, select(t.sentence).where(key))
        if row is None:
            raise NotFound(f"greeting of agent {service_id}")
        return row

    async def card_extras(self, service_id: int) -> tuple[str, str]:
        """The agent's active greeting (`active_greeting`; "" when none) and its status
        (`service_status`: `available` or `away`) in one statement."""
        async with self._reading() as conn:
            rows = (await self._run(conn, CARD_EXTRAS, service_id=service_id)).rows
        row = rows[0] if rows else {}
        return str(row.get("greeting") or ""), str(row.get("status") or "available")

    async def active_greeting(self, service_id: int) -> str:
        row = await self._fetch_one(select(t.sentence.c.content).where(and_(
            t.sentence.c.service_id == service_id, t.sentence.c.state == "using")))
        return row["content"] if row else ""

    async def business_greetings(self, business_id: str) -> list[Row]:
        """Every greeting of the business's agents, with the agent's `nick_name`."""
        s, sv = t.sentence, t.service
        return await self._fetch_all(
            select(s.c.sid, s.c.service_id, s.c.content, s.c.state, sv.c.nick_name)
            .join(sv, sv.c.service_id == s.c.service_id)
            .where(sv.c.business_id == business_id).order_by(s.c.service_id))
