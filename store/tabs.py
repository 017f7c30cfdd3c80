"""SQL for the visitor-side tabs (`wolive_tablist`, WoLive's table): a business's tabs of
content shown beside the visitor's chat.

Rows are reached only within their business, as the FAQ's are (`store.faq`): each method
that takes a `tid` also takes the `business_id` it must belong to.
"""
from __future__ import annotations

from . import schema as t
from .base import Row, StoreBase


class TabStore(StoreBase):
    """A business's visitor-side tabs (see the module docstring)."""

    async def count_tabs(self, business_id: str) -> int:
        return await self._count(t.tablist, t.tablist.c.business_id == business_id)

    async def add_tab(self, business_id: str, title: str, content: str,
                      content_read: str) -> Row:
        return await self._insert_row(t.tablist, "tid", business_id=business_id, title=title,
                                      content=content, content_read=content_read)

    async def update_tab(self, business_id: str, tid: int, title: str, content: str,
                         content_read: str) -> Row:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        return await self._update_owned(t.tablist, "tid", tid, business_id, f"tab {tid}",
                                        title=title, content=content,
                                        content_read=content_read)

    async def list_tabs(self, business_id: str, limit: int) -> list[Row]:
        """The business's tabs, in the order they were made."""
        return await self._owned_rows(t.tablist, "tid", business_id, limit)

    async def delete_tab(self, business_id: str, tid: int) -> None:
        """Raises `NotFound` when `tid` is not a tab of `business_id`."""
        await self._delete_owned(t.tablist, "tid", tid, business_id, f"tab {tid}")
