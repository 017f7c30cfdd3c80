"""Dates a caller names: `YYYY-MM-DD` (a day in the server's local time zone) or unix
seconds, turned into unix seconds (`parse_when`). Raises `ChatError` 400 naming the
parameter.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from .errors import ChatError

DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _local_ts(d: datetime) -> int:
    return int(d.timestamp())


def parse_when(name: str, raw: str, end: bool = False) -> int:
    """`YYYY-MM-DD` (the server's local day; the end of that day when `end`) or unix seconds.
    Raises `ChatError` 400 naming the parameter."""
    raw = (raw or "").strip()
    if not raw:
        raise ChatError(1, f"missing parameter: {name}", 400)
    if raw.isascii() and raw.isdigit() and len(raw) <= 12:
        return int(raw)
    if DATE_RE.match(raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d")
        except ValueError:
            raise ChatError(1, f"{name}: no such date {raw!r}", 400) from None
        if not 1970 <= day.year <= 9998:  # what a timestamp holds, in any time zone
            raise ChatError(1, f"{name}: date {raw!r} out of range (1970-9998)", 400)
        if end:
            return _local_ts(day + timedelta(days=1)) - 1
        return _local_ts(day)
    raise ChatError(1, f"{name} must be a date YYYY-MM-DD or unix seconds", 400)
