"""`/admin/event/contact`: contact details a visitor leaves when its agent is away (issue 9,
"Told when the agent leaves"). The visitor proves itself with `channel`, like the other
visitor calls; the rules are `realtime.chat.visitors.Visitors.leave_contact`'s."""
from __future__ import annotations

from realtime.chat.visitors import CONTACT_LIMITS

from .base import VisitorApiHandler
from .event import VisitorMixin


class ContactHandler(VisitorApiHandler, VisitorMixin):
    """POST `visiter_id`, `business_id`, `channel`, and `name`, `tel`, `email`, `note`
    (`tel` or `email` required). Data `{cid, saved}`: the transcript line's cid and the
    visitor-details fields it filled."""

    async def post(self) -> None:
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        values = {k: self.arg(k, "", max_len=n) for k, n in CONTACT_LIMITS.items()}
        data = await self.chat.leave_contact(
            visiter_id, business_id, self.visitor_channel_arg(business_id, visiter_id), values)
        self.answer(0, "success", data)


def routes() -> list[tuple[str, type]]:
    return [(r"/admin/event/contact", ContactHandler)]
