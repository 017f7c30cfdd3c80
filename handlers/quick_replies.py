"""`/admin/quickreply/*`: quick replies (canned responses) kept on the server, an agent's own
and the business's shared ones. The rules are `realtime.chat.quick_replies`';
this module parses, knows the caller (a logged-in agent; `_xsrf` on POSTs) and answers.
"""
from __future__ import annotations

import json
from typing import Any

from realtime.chat.quick_replies import MAX_CONTENT_CHARS, MAX_OWN

from .base import AgentApiHandler, ApiError

#: Longest raw `ids` list (characters): 200 ids of up to 10 digits, with commas.
MAX_IDS_CHARS = 2_400
#: Longest raw `contents` (characters) of an import, as JSON text: the most entries of the
#: longest length, quoted and escaped.
MAX_IMPORT_CHARS = MAX_OWN * (MAX_CONTENT_CHARS * 6 + 4)


class QuickReplyHandler(AgentApiHandler):
    """Typed access to the `QuickReplies` use cases and the small argument helpers."""

    def reply_id(self) -> int:
        """`id`: a whole number ≥ 1; `ApiError` 400 else."""
        value = self.int_arg("id", 0, lo=1)  # "0", "-1": out of range (1 to ...)
        if value < 1:
            raise ApiError(400, 1, "missing parameter: id")
        return value

    def shared_arg(self) -> bool:
        """`shared`: 1 / true (the business's list) or 0 / false / absent (one's own)."""
        raw = self.arg("shared", "", max_len=5).strip().lower()
        if raw in ("", "0", "false"):
            return False
        if raw in ("1", "true"):
            return True
        raise ApiError(400, 1, "parameter shared must be 0 or 1")

    def optional(self, name: str, max_len: int) -> str | None:
        """A text parameter, or None when it was not sent (so it does not change)."""
        if name not in self.body_args():
            return None
        return self.arg(name, max_len=max_len)


class QuickReplyListHandler(QuickReplyHandler):
    """GET: the shared and own quick replies (`QuickReplies.listing`)."""

    async def get(self) -> None:
        self.answer(0, "", await self.quick_replies.listing(self.agent))


class AddHandler(QuickReplyHandler):
    """POST `content`, `title`, `shared`: one more quick reply."""

    async def post(self) -> None:
        row = await self.quick_replies.add(self.agent, self.arg("content", max_len=10_000),
                                           self.arg("title", max_len=2_000), self.shared_arg())
        self.answer(0, "成功", row)


class EditHandler(QuickReplyHandler):
    """POST `id` and `content` and/or `title`: change one."""

    async def post(self) -> None:
        rid = self.reply_id()
        row = await self.quick_replies.edit(self.agent, rid, self.optional("content", 10_000),
                                            self.optional("title", 2_000))
        self.answer(0, "成功", row)


class QuickReplyDeleteHandler(QuickReplyHandler):
    """POST `id`: delete one."""

    async def post(self) -> None:
        rid = self.reply_id()
        await self.quick_replies.delete(self.agent, rid)
        self.answer(0, "成功", {"id": rid})


class ReorderHandler(QuickReplyHandler):
    """POST `ids` (comma-separated, the new order), `shared`: order one list."""

    async def post(self) -> None:
        raw = self.body_args().get("ids")
        if isinstance(raw, list):
            parts = [str(x) for x in raw]
        else:
            parts = [p.strip() for p in self.arg("ids", max_len=MAX_IDS_CHARS).split(",")]
            parts = [p for p in parts if p]
        if not all(p.isdigit() and len(p) <= 10 for p in parts):
            raise ApiError(400, 1, "parameter ids must be ids separated by commas")
        shared = self.shared_arg()
        rows = await self.quick_replies.reorder(self.agent, [int(p) for p in parts], shared)
        self.answer(0, "成功", rows)


class ImportHandler(QuickReplyHandler):
    """POST `contents`: a JSON array of texts (or, in a JSON body, the array itself), added
    as the caller's own (`QuickReplies.import_own`)."""

    async def post(self) -> None:
        raw: Any = self.body_args().get("contents")
        if raw is None:
            raise ApiError(400, 1, "missing parameter: contents")
        if not isinstance(raw, list):
            text = self.arg("contents", max_len=MAX_IMPORT_CHARS)
            try:
                raw = json.loads(text)
            except ValueError:
                raw = None
            if not isinstance(raw, list):
                raise ApiError(400, 1, "parameter contents must be a JSON array of texts")
        self.answer(0, "成功", await self.quick_replies.import_own(self.agent, raw))


def routes() -> list[tuple[str, type]]:
    return [
        (r"/admin/quickreply/list", QuickReplyListHandler),
        (r"/admin/quickreply/add", AddHandler),
        (r"/admin/quickreply/edit", EditHandler),
        (r"/admin/quickreply/delete", QuickReplyDeleteHandler),
        (r"/admin/quickreply/reorder", ReorderHandler),
        (r"/admin/quickreply/import", ImportHandler),
    ]
