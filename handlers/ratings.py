"""`/admin/event/rating`: a visitor rates its ended conversation (`realtime.chat.ratings`)."""
from __future__ import annotations

from store.ratings import MAX_RATING_COMMENT

from .base import VisitorApiHandler
from .visitor import VisitorMixin


class RatingHandler(VisitorApiHandler, VisitorMixin):
    """POST `visiter_id`, `business_id`, `channel` (the visitor's proof, as for every visitor
    call), `score` (1-5), `comment` (optional, ≤ `MAX_RATING_COMMENT` characters). Answers
    `{code: 0, msg: "success", data: <rating + line>}`; codes in `Ratings.rate`."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        score = self.arg("score", required=True, max_len=20)
        comment = self.arg("comment", max_len=MAX_RATING_COMMENT)
        data = await self.ratings.rate(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id), score,
            comment)
        self.answer(0, "success", data)


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/event/rating", RatingHandler)]
