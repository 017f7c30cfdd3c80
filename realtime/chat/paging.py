"""Paged lists: the checked `page` / `limit` of a request (`check_page`, offsets for SQL) and
the answer shape `{rows, total, page, limit}` (`page_of`).
"""
from __future__ import annotations

from typing import Any

from .errors import ChatError

#: Largest page of a paged list (rows); the document's lists are for a console screen.
MAX_PAGE_LIMIT = 100
DEFAULT_PAGE_LIMIT = 20


def page_of(rows: list[dict[str, Any]], total: int, page: int, limit: int) -> dict[str, Any]:
    """The answer shape of every paged list: `{rows, total, page, limit}`."""
    return {"rows": rows, "total": total, "page": page, "limit": limit}


def check_page(page: int, limit: int) -> tuple[int, int]:
    """`page` ≥ 1 and 1 ≤ `limit` ≤ `MAX_PAGE_LIMIT`; returns (offset, limit). 400 else."""
    if page < 1:
        raise ChatError(1, "page starts at 1", 400)
    if not 1 <= limit <= MAX_PAGE_LIMIT:
        raise ChatError(1, f"limit must be 1-{MAX_PAGE_LIMIT}", 400)
    return (page - 1) * limit, limit
