"""SQL for the message board (`wolive_message`, WoLive's table; its `state` is ours,
migration 4): the messages visitors leave for a business (name, phone, email, text) and
whether they were read.

Every row is read and written within its business: each method that takes an id also
takes the `business_id` it must belong to, so a caller cannot reach another business's
rows by id. Values arrive already validated and sanitised (`realtime.chat.content`); this
module only stores them. Every write is committed before the method returns.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, insert, select, update

from . import schema as t
from .base import Row, StoreBase
from .errors import NotFound


def _board_row(row: Row | None) -> Row:
    """A `wolive_message` row with `timestamp` as text "YYYY-MM-DD HH:MM:SS" on every
    database (MySQL hands back a datetime, SQLite the text), so it can be pushed as JSON."""
    row = dict(row or {})
    if isinstance(row.get("timestamp"), datetime):
        row["timestamp"] = row["timestamp"].strftime("%Y-%m-%d %H:%M:%S")
    return row


class BoardStore(StoreBase):
    """A business's board messages (see the module docstring)."""

    async def add_board_message(self, business_id: str, name: str, moblie: str, email: str,
                                content: str) -> Row:
        """Store a visitor's message (state unread); returns the whole row."""
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(t.message).values(
                business_id=business_id, name=name, moblie=moblie, email=email,
                content=content, state="unread"))
            return _board_row(await self._one(conn, select(t.message).where(
                t.message.c.mid == self._inserted_id(res))))

    async def board_messages(self, business_id: str, offset: int, limit: int
                             ) -> tuple[list[Row], int]:
        """One page of the business's messages, newest first, and how many there are."""
        m = t.message
        rows = await self._fetch_all(select(m).where(m.c.business_id == business_id)
                                     .order_by(m.c.mid.desc()).offset(offset).limit(limit))
        total = await self._count(m, m.c.business_id == business_id)
        return [_board_row(r) for r in rows], total

    async def unread_board_messages(self, business_id: str) -> int:
        m = t.message
        return await self._count(m, and_(m.c.business_id == business_id,
                                         m.c.state == "unread"))

    async def set_board_message_state(self, business_id: str, mid: int, state: str) -> Row:
        """Mark one message `state` ("readed" / "unread"), keeping its timestamp (WoLive's
        column updates itself on MySQL otherwise). Raises `NotFound`."""
        m = t.message
        key = and_(m.c.mid == mid, m.c.business_id == business_id)
        async with self.engine.begin() as conn:
            await conn.execute(update(m).where(key).values(state=state,
                                                           timestamp=m.c.timestamp))
            row = await self._one(conn, select(m).where(key))
        if row is None:
            raise NotFound(f"message {mid}")
        return _board_row(row)

    async def delete_board_message(self, business_id: str, mid: int) -> None:
        """Raises `NotFound` when `mid` is not a message of `business_id`."""
        await self._delete(t.message, and_(t.message.c.mid == mid,
                                           t.message.c.business_id == business_id),
                           f"message {mid}")
