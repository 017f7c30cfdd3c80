"""Ratings: a visitor scores an ended conversation (1-5, an optional comment).

The end is the `ended` system line `Chat.close` writes into the transcript; a rating rates
the visitor's newest one, once (`store.ratings`: a second rating of the same end is refused
with code 2, nothing written). The rating is stored in `wolive_rating`, then written into the
transcript as a `rated` system line (pushed to the visitor's window and the conversation's
agent, like a message), so the agent sees it live and history shows it.
"""
from __future__ import annotations

import json
from typing import Any

from store import Conflict, NotFound
from store.ratings import MAX_RATING_COMMENT, RATING_FIELDS

from .errors import BLOCKED_MSG, ChatError

#: The system line keys this module writes and reads.

from .facade import Chat

#: The system line keys this module writes and reads.
ENDED = "ended"
RATED = "rated"
SCORES = range(1, 6)


def system_prefix(key: str) -> str:
    """How a system line with `key` starts in `wolive_chats.content` (the JSON
    `Chat.system_line` writes: `{"key": ..., "vars": ...}`)."""
    return json.dumps({"key": key}, ensure_ascii=False)[:-1] + ","


def parse_score(raw: str) -> int:
    """A score from a parameter: one ASCII digit 1-5 with nothing around it (as every whole
    number the APIs take: no spaces, no leading zero), else `ChatError` 1 (400)."""
    if not isinstance(raw, str) or len(raw) != 1 or not raw.isascii() or not raw.isdigit() \
            or int(raw) not in SCORES:
        raise ChatError(1, "score must be a whole number from 1 to 5 / 评分须为 1-5", 400)
    return int(raw)


def public_rating(row: dict[str, Any]) -> dict[str, Any]:
    """A rating as the APIs answer it: `{id, visiter_id, business_id, service_id, score,
    comment, ended_cid, timestamp}` (timestamp in unix seconds)."""
    return {k: row[k] for k in RATING_FIELDS}


class Ratings:
    """The rating use cases over one server's `Chat` (its store, hub and visitor check)."""

    def __init__(self, chat: Chat) -> None:
        self.chat = chat
        self.store = chat.store

    async def rate(self, visiter_id: str, business_id: str, channel: str, score: str,
                   comment: str = "") -> dict[str, Any]:
        """`/admin/event/rating`: store the visitor's rating of its newest ended
        conversation, then write and push the `rated` system line (vars `{score, comment,
        ended_cid}`). Returns the rating (`public_rating`) plus `line`, the system line.

        Raises `ChatError`: 1 (400) bad ids, a score not 1-5 or a comment over
        `MAX_RATING_COMMENT` characters; 3 (403) wrong channel, (404) unknown visitor;
        4 (403) blacklisted; 1 (409) nothing ended to rate; 2 (409) that end is rated
        already. Nothing is written when it raises."""
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        value = parse_score(score)
        comment = (comment or "").strip()
        if len(comment) > MAX_RATING_COMMENT:
            raise ChatError(1, f"comment is over {MAX_RATING_COMMENT} characters", 400)
        try:
            visitor = await self.store.get_visiter(visiter_id, business_id)
        except NotFound:
            raise ChatError(3, "unknown visitor: open the chat window first", 404) from None
        queue = await self.store.get_queue(visiter_id, business_id)
        if queue is not None and queue["state"] == "in_black_list":
            raise ChatError(4, BLOCKED_MSG, 403)
        ended = await self.store.last_system_line(visiter_id, business_id,
                                                  system_prefix(ENDED))
        if ended is None:
            raise ChatError(1, "no ended conversation to rate / 没有可评价的对话", 409)
        try:
            row = await self.store.add_rating(visiter_id, business_id,
                                              int(ended["service_id"]), value, comment,
                                              int(ended["cid"]))
        except Conflict:
            raise ChatError(2, "this conversation is rated already / 已评价", 409) from None
        line = await self.chat.system_line(
            visitor, business_id, int(ended["service_id"]), RATED,
            {"score": value, "comment": comment, "ended_cid": int(ended["cid"])})
        out = public_rating(row)
        out["line"] = line
        return out

    async def latest_for_agent(self, service_id: int, level: str, visiter_id: str,
                               business_id: str) -> dict[str, Any] | None:
        """The visitor's newest rating an agent may see (a `service` agent: of its own
        conversations; a manager: any in its business), or None. The caller has checked
        that the agent may read this visitor."""
        row = await self.store.latest_rating(visiter_id, business_id,
                                             service_id if level == "service" else None)
        return public_rating(row) if row else None
