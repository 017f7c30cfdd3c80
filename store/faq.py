"""SQL for the FAQ (`wolive_question`, WoLive's table): a business's questions and answers
shown in the visitor's chat window.

Every row is read and written within its business: each method that takes an id also
takes the `business_id` it must belong to, so a caller cannot reach another business's
rows by id. Values arrive already validated and sanitised (`realtime.content`); this
module only stores them. Every write is committed before the method returns.
"""
from __future__ import annotations

from sqlalchemy import and_, insert, select, update

from . import schema as t
from .base import Row, StoreBase
from .errors import NotFound


class FaqStore(StoreBase):
    """A business's FAQ entries (see the module docstring)."""

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
