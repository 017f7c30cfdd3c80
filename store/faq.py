"""SQL for the FAQ (`wolive_question`, WoLive's table): a business's questions and answers
shown in the visitor's chat window.

Every row is read and written within its business: each method that takes an id also
takes the `business_id` it must belong to, so a caller cannot reach another business's
rows by id. Values arrive already validated and sanitised (`realtime.chat.content` with
`realtime.rich_text`); this module only stores them. Every write is committed before the
method returns.
"""
from __future__ import annotations

from . import schema as t
from .base import Row, StoreBase


class FaqStore(StoreBase):
    """A business's FAQ entries (see the module docstring)."""

    async def count_questions(self, business_id: str) -> int:
        return await self._count(t.question, t.question.c.business_id == business_id)

    async def add_question(self, business_id: str, question: str, answer: str,
                           answer_read: str) -> Row:
        return await self._insert_row(t.question, "qid", business_id=business_id,
                                      question=question, answer=answer,
                                      answer_read=answer_read)

    async def update_question(self, business_id: str, qid: int, question: str, answer: str,
                              answer_read: str) -> Row:
        """Raises `NotFound` when `qid` is not a question of `business_id`."""
        return await self._update_owned(t.question, "qid", qid, business_id,
                                        f"question {qid}", question=question, answer=answer,
                                        answer_read=answer_read)

    async def list_questions(self, business_id: str, limit: int) -> list[Row]:
        """The business's questions, oldest first (the order they were written in)."""
        return await self._owned_rows(t.question, "qid", business_id, limit)

    async def delete_question(self, business_id: str, qid: int) -> None:
        """Raises `NotFound` when `qid` is not a question of `business_id`."""
        await self._delete_owned(t.question, "qid", qid, business_id, f"question {qid}")
