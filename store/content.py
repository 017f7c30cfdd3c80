"""SQL for greetings, the FAQ, visitor-side tabs, business switches and the message board.

Tables are WoLive's (`wolive_sentence`, `wolive_question`, `wolive_tablist`,
`wolive_business`, `wolive_message`); `wolive_message.state` is ours (migration 3). Every
row is read and written within its business: each method that takes an id also takes the
`business_id` it must belong to, so a caller cannot reach another business's rows by id.
Values arrive already validated and sanitised (realtime/content.py); this module only
stores them. Every write is committed before the method returns.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (ColumnElement, Table, and_, bindparam, delete, func, insert, select,
                        update)
from sqlalchemy.exc import IntegrityError

from . import schema as t
from .base import Row, StoreBase
from .errors import NotFound
from .prepared import Prepared

#: Columns of `wolive_business` a switch may change (never `wid` / `business_id`).
SWITCH_COLUMNS = ("distribution_rule", "video_state", "audio_state", "voice_state",
                  "voice_address", "state")


def _board_row(row: Row | None) -> Row:
    """A `wolive_message` row with `timestamp` as text "YYYY-MM-DD HH:MM:SS" on every
    database (MySQL hands back a datetime, SQLite the text), so it can be pushed as JSON."""
    row = dict(row or {})
    if isinstance(row.get("timestamp"), datetime):
        row["timestamp"] = row["timestamp"].strftime("%Y-%m-%d %H:%M:%S")
    return row


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


class ContentStore(StoreBase):
    """Greetings, FAQ, tabs, switches and the message board (see module docstring)."""

    # ---- greetings (wolive_sentence: one per agent) -------------------------------------

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

    # ---- FAQ (wolive_question) and tabs (wolive_tablist) ---------------------------------

    async def count_questions(self, business_id: str) -> int:
        return await self._count(t.question, t.question.c.business_id == business_id)

    async def add_question(self, business_id: str, question: str, answer: str,
                           answer_read: str) -> Row:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(t.question).values(
                business_id=business_id, question=question, answer=answer,
                answer_read=answer_read))
            return await self._one(conn, select(t.question).where(
                t.question.c.qid == self._inserted_id(res))) or {}

    async def update_question(self, business_id: str, qid: int, question: str, answer: str,
                              answer_read: str) -> Row:
        """Raises `NotFound` when `qid` is not a question of `business_id`."""
        key = and_(t.question.c.qid == qid, t.question.c.business_id == business_id)
        async with self.engine.begin() as conn:
            row = await self._one(conn, select(t.question.c.qid).where(key))
            if row is None:
                raise NotFound(f"question {qid}")
            await conn.execute(update(t.question).where(key).values(
                question=question, answer=answer, answer_read=answer_read))
            return await self._one(conn, select(t.question).where(key)) or {}

    async def list_questions(self, business_id: str, limit: int) -> list[Row]:
        """The business's questions, oldest first (the order they were written in)."""
        return await self._fetch_all(select(t.question).where(
            t.question.c.business_id == business_id).order_by(t.question.c.qid).limit(limit))

    async def delete_question(self, business_id: str, qid: int) -> None:
        """Raises `NotFound` when `qid` is not a question of `business_id`."""
        await self._delete(t.question, and_(t.question.c.qid == qid,
                                            t.question.c.business_id == business_id),
                           f"question {qid}")

    async def count_tabs(self, business_id: str) -> int:
        return await self._count(t.tablist, t.tablist.c.business_id == business_id)

    async def add_tab(self, business_id: str, title: str, content: str,
                      content_read: str) -> Row:
        async with self.engine.begin() as conn:
            res = await conn.execute(insert(t.tablist).values(
                business_id=business_id, title=title, content=content,
                content_read=content_read))
            return await self._one(conn, select(t.tablist).where(
                t.tablist.c.tid == self._inserted_id(res))) or {}

    async def update_tab(self, business_id: str, tid: int, title: str, content: str,
                         content_read: str) -> Row:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        key = and_(t.tablist.c.tid == tid, t.tablist.c.business_id == business_id)
        async with self.engine.begin() as conn:
            row = await self._one(conn, select(t.tablist.c.tid).where(key))
            if row is None:
                raise NotFound(f"tab {tid}")
            await conn.execute(update(t.tablist).where(key).values(
                title=title, content=content, content_read=content_read))
            return await self._one(conn, select(t.tablist).where(key)) or {}

    async def list_tabs(self, business_id: str, limit: int) -> list[Row]:
        """The business's tabs, in the order they were made."""
        return await self._fetch_all(select(t.tablist).where(
            t.tablist.c.business_id == business_id).order_by(t.tablist.c.tid).limit(limit))

    async def delete_tab(self, business_id: str, tid: int) -> None:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        await self._delete(t.tablist, and_(t.tablist.c.tid == tid,
                                           t.tablist.c.business_id == business_id),
                           f"tab {tid}")

    # ---- business switches ----------------------------------------------------------------

    async def set_switches(self, business_id: str, values: dict[str, str]) -> Row:
        """Change some of `SWITCH_COLUMNS` (any other key raises `ValueError`); returns the
        business row. Raises `NotFound` for an unknown business."""
        bad = set(values) - set(SWITCH_COLUMNS)
        if bad:
            raise ValueError(f"not a switch: {sorted(bad)}")
        key = t.business.c.business_id == business_id
        async with self.engine.begin() as conn:
            if values:
                await conn.execute(update(t.business).where(key).values(**values))
            row = await self._one(conn, select(t.business).where(key))
        if row is None:
            raise NotFound(f"business {business_id}")
        return row

    # ---- message board (wolive_message) -------------------------------------------------

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
        """Mark one message `state` ("readed" / "unread"), keeping its timestamp (the
        WoLive's column updates itself on MySQL otherwise). Raises `NotFound`."""
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

    # ---- helpers ------------------------------------------------------------------------

    async def _count(self, table: Table, where: ColumnElement[bool]) -> int:
        async with self.read_engine.connect() as conn:
            return int((await conn.execute(
                select(func.count()).select_from(table).where(where))).scalar() or 0)

    async def _delete(self, table: Table, where: ColumnElement[bool], what: str) -> None:
        async with self.engine.begin() as conn:
            res = await conn.execute(delete(table).where(where))
        if not res.rowcount:
            raise NotFound(what)
