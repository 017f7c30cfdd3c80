"""Quick replies (canned responses) use cases: an agent's own ones and a business's shared ones.

Rules:
- everyone sees the shared quick replies of their business and their own, never another
  agent's own ones nor another business's;
- an agent adds, edits, deletes and reorders their own; managers (`manager`,
  `super_manager`) also the business's shared ones; a `service` agent may not (403);
- a row of another agent or another business is "not found" (404): knowing an id proves
  nothing and tells nothing;
- titles and contents are plain text (clients render them as text); bad input raises
  `ChatError` and nothing is written.

Use cases raise `ChatError(code, msg, status)`; handlers render it (handlers/base.py).
"""
from __future__ import annotations

import re
from typing import Any, Sequence

from store import Conflict, NotFound, Store
from store.quick_replies import SHARED

from .agents import LEVEL_RANK
from .errors import ChatError

# ---- limits (each a named constant, with its unit and reason) ---------------------------
from .values import Agent

# ---- limits (each a named constant, with its unit and reason) ---------------------------

#: Longest title / shortcut (characters): a word or two shown before the text in the menu.
MAX_TITLE_CHARS = 32
#: Longest content (characters): a paragraph or two; the composer takes up to 5,000.
MAX_CONTENT_CHARS = 1000
#: Most own quick replies per agent / shared ones per business: the menu shows them all.
MAX_OWN = 100
MAX_SHARED = 200
#: Most entries one import may send (blank and repeated ones included): a browser's old
#: list was capped at 50; anything much longer is not one.
MAX_IMPORT_ENTRIES = 500
#: Characters a title may not hold (control characters: it is one line of text).
_TITLE_BAD = re.compile(r"[\x00-\x1f\x7f]")
#: Control characters a content may not hold (line breaks and tabs are kept).
_CONTENT_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def can_edit_shared(agent: Agent) -> bool:
    """True for `manager` and `super_manager` (of the agent's own business)."""
    return LEVEL_RANK.get(agent.level, 0) >= LEVEL_RANK["manager"]


def check_title(title: str) -> str:
    """The title stripped; `ChatError` 400 with control characters, 413 over the limit."""
    title = (title or "").strip()
    if _TITLE_BAD.search(title):
        raise ChatError(1, "title must be one line of text / 标题只能是一行文字", 400)
    if len(title) > MAX_TITLE_CHARS:
        raise ChatError(1, f"title is over {MAX_TITLE_CHARS} characters / 标题太长", 413)
    return title


def check_content(content: str) -> str:
    """The content stripped; `ChatError` 400 when empty or with control characters, 413 over
    `MAX_CONTENT_CHARS`."""
    content = (content or "").strip()
    if not content:
        raise ChatError(1, "content is empty / 请输入快捷回复内容", 400)
    if _CONTENT_BAD.search(content):
        raise ChatError(1, "content holds control characters / 内容含有控制字符", 400)
    if len(content) > MAX_CONTENT_CHARS:
        raise ChatError(1, f"content is over {MAX_CONTENT_CHARS} characters / 内容太长", 413)
    return content


class QuickReplies:
    """Quick replies of one server; every method acts for `agent` in its own business."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- reading ------------------------------------------------------------------------

    def shape(self, agent: Agent, row: dict[str, Any]) -> dict[str, Any]:
        """A row as the API answers it: `{id, title, content, shared, mine, editable, sort,
        created_at, updated_at}` (times in unix seconds)."""
        shared = int(row["service_id"]) == SHARED
        mine = int(row["service_id"]) == agent.service_id
        return {"id": int(row["id"]), "title": row["title"] or "", "content": row["content"],
                "shared": shared, "mine": mine,
                "editable": mine or (shared and can_edit_shared(agent)),
                "sort": int(row["sort"]), "created_at": int(row["created_at"]),
                "updated_at": int(row["updated_at"])}

    async def listing(self, agent: Agent) -> dict[str, Any]:
        """`{rows, can_edit_shared, limits}`: the shared rows then the agent's own, each list
        in its order; `limits` = `{title, content, own, shared}` (characters, rows)."""
        rows = await self.store.quick_replies(agent.business_id, agent.service_id)
        return {"rows": [self.shape(agent, r) for r in rows],
                "can_edit_shared": can_edit_shared(agent),
                "limits": {"title": MAX_TITLE_CHARS, "content": MAX_CONTENT_CHARS,
                           "own": MAX_OWN, "shared": MAX_SHARED}}

    async def _editable(self, agent: Agent, reply_id: int) -> dict[str, Any]:
        """The row, when the agent may change it. `ChatError` 404 when it is not in the
        agent's business or is another agent's own; 403 a shared one for a `service` agent."""
        try:
            row = await self.store.quick_reply(agent.business_id, reply_id)
        except NotFound:
            row = None
        owner = int(row["service_id"]) if row else -1
        if row is None or owner not in (SHARED, agent.service_id):
            raise ChatError(1, "no such quick reply / 快捷回复不存在", 404)
        if owner == SHARED and not can_edit_shared(agent):
            raise ChatError(1, "only managers change shared quick replies / "
                               "只有管理员可以修改共享的快捷回复", 403)
        return row

    def _owner(self, agent: Agent, shared: bool) -> tuple[int, int]:
        """`(service_id, cap)` of the list the agent writes to; 403 shared for a service."""
        if not shared:
            return agent.service_id, MAX_OWN
        if not can_edit_shared(agent):
            raise ChatError(1, "only managers change shared quick replies / "
                               "只有管理员可以修改共享的快捷回复", 403)
        return SHARED, MAX_SHARED

    # ---- writing ------------------------------------------------------------------------

    async def add(self, agent: Agent, content: str, title: str = "",
                  shared: bool = False) -> dict[str, Any]:
        """Append one to the agent's own list, or (managers) the shared one. `ChatError` 400
        / 413 bad input, 403 shared for a service agent, 409 the list is full."""
        owner, cap = self._owner(agent, shared)
        item = (check_title(title), check_content(content))
        try:
            rows = await self.store.add_quick_replies(agent.business_id, owner, [item], cap)
        except Conflict:
            raise ChatError(1, f"at most {cap} quick replies / 快捷回复已满", 409) from None
        return self.shape(agent, rows[0])

    async def edit(self, agent: Agent, reply_id: int, content: str | None = None,
                   title: str | None = None) -> dict[str, Any]:
        """Change the title and/or content (only those given). Errors as `add`, and 404."""
        values: dict[str, str] = {}
        if title is not None:
            values["title"] = check_title(title)
        if content is not None:
            values["content"] = check_content(content)
        if not values:
            raise ChatError(1, "nothing to change: send content and/or title", 400)
        await self._editable(agent, reply_id)
        try:
            row = await self.store.update_quick_reply(agent.business_id, reply_id, values)
        except NotFound:  # deleted meanwhile
            raise ChatError(1, "no such quick reply / 快捷回复不存在", 404) from None
        return self.shape(agent, row)

    async def delete(self, agent: Agent, reply_id: int) -> None:
        """Delete one the agent may change; `ChatError` 404 / 403 as `edit`."""
        await self._editable(agent, reply_id)
        try:
            await self.store.delete_quick_reply(agent.business_id, reply_id)
        except NotFound:
            raise ChatError(1, "no such quick reply / 快捷回复不存在", 404) from None

    async def reorder(self, agent: Agent, ids: Sequence[int],
                      shared: bool = False) -> list[dict[str, Any]]:
        """Put the agent's own list (or, managers, the shared one) in the order of `ids`,
        which must name each of its rows once. `ChatError` 400 otherwise, 403 shared for a
        service agent. Returns that list in its new order."""
        owner, _cap = self._owner(agent, shared)
        try:
            rows = await self.store.reorder_quick_replies(agent.business_id, owner, ids)
        except Conflict:
            raise ChatError(1, "ids must name every quick reply of the list once / "
                               "排序须包含列表中的每一条", 400) from None
        return [self.shape(agent, r) for r in rows]

    async def import_own(self, agent: Agent, contents: Sequence[Any]) -> dict[str, Any]:
        """Add `contents` (texts kept in a browser before quick replies were on the server)
        to the agent's own list, after the ones it has. Blank entries and texts already in
        the list are skipped. All or nothing: `ChatError` 400 an entry that is not text or
        holds control characters, or over `MAX_IMPORT_ENTRIES` entries; 413 one too long;
        409 the list would be over `MAX_OWN`.
        Returns `{imported, skipped, rows}` (`rows`: the new ones)."""
        if len(contents) > MAX_IMPORT_ENTRIES:
            raise ChatError(1, f"contents has over {MAX_IMPORT_ENTRIES} entries", 400)
        have = {r["content"] for r in await self.store.quick_replies(
            agent.business_id, agent.service_id) if int(r["service_id"]) == agent.service_id}
        items: list[tuple[str, str]] = []
        skipped = 0
        for raw in contents:
            if not isinstance(raw, str):
                raise ChatError(1, "contents must be a list of texts", 400)
            text = raw.strip()
            if not text or text in have:
                skipped += 1
                continue
            items.append(("", check_content(text)))
            have.add(text)
        try:
            rows = await self.store.add_quick_replies(agent.business_id, agent.service_id,
                                                      items, MAX_OWN)
        except Conflict:
            raise ChatError(1, f"at most {MAX_OWN} quick replies / 快捷回复已满", 409) from None
        return {"imported": len(rows), "skipped": skipped,
                "rows": [self.shape(agent, r) for r in rows]}
