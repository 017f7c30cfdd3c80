"""An in-process cache of the rows the chat path reads on every request: a business
(`wolive_business`, by `business_id`) and an agent (`wolive_service`, by `service_id`).

Invalidation:

- **This process's writes**: every statement this store sends that writes one of those
  tables (`INSERT` / `UPDATE` / `DELETE` / `REPLACE` into it, whichever store method sent it,
  Core or plain SQL) empties that table's part of the cache when it is sent, again when its
  transaction ends (commit or rollback) and again when its connection goes back to the pool.
  A read that started before one of those moments is not put into the cache (`generation`),
  so a row read from a snapshot older than the commit never stays there.
- **Other processes** (another node on the same MariaDB, SQL typed by hand): nothing tells
  this one, so an entry lives at most `ttl_s` seconds (`database.row_cache_s`, default
  `DEFAULT_TTL_S`; 0 turns the cache off). wolive has no cross-node message bus yet (the
  realtime adapter is in-process only), so this bound is the whole guarantee across nodes.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

#: Seconds an entry is trusted (the staleness bound for writes made by another process).
DEFAULT_TTL_S = 2.0
#: The tables cached, by name.
TABLES = ("wolive_business", "wolive_service")
#: Entries per table at most (a business or an agent is a few hundred bytes).
MAX_ENTRIES = 10_000

_WRITE = re.compile(
    r"^\s*(?:UPDATE|INSERT\s+(?:IGNORE\s+)?INTO|DELETE\s+FROM|REPLACE\s+INTO)\s+"
    r"[`\"]?(wolive_business|wolive_service)[`\"]?(?=[\s(]|$)", re.I)


def written_table(statement: str) -> str | None:
    """The cached table `statement` (SQL text) writes, or None."""
    m = _WRITE.match(statement)
    return m.group(1).lower() if m else None


class RowCache:
    """Rows by (table, key), each trusted for `ttl_s` seconds of `clock` (seconds,
    monotonic); `ttl_s` 0 caches nothing. Not thread-safe: used from the event loop."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s < 0:
            raise ValueError("ttl_s must be 0 or more")
        self.ttl_s = ttl_s
        self.clock = clock
        self._rows: dict[str, dict[Any, tuple[float, dict[str, Any]]]] = {
            name: {} for name in TABLES}
        #: Per table: bumped by every invalidation; a fill carries the value it read at.
        self.generation: dict[str, int] = dict.fromkeys(TABLES, 0)
        #: Hits and misses since start (for tests and the benchmark).
        self.hits = 0
        self.misses = 0

    def get(self, table: str, key: Any) -> dict[str, Any] | None:
        """A copy of the cached row, or None (absent, expired or the cache is off)."""
        entry = self._rows[table].get(key)
        if entry is not None:
            if entry[0] > self.clock():
                self.hits += 1
                return dict(entry[1])
            del self._rows[table][key]
        self.misses += 1
        return None

    def put(self, table: str, key: Any, row: dict[str, Any], generation: int) -> None:
        """Keep `row`, read when the table's generation was `generation` (dropped when the
        table was invalidated since)."""
        if not self.ttl_s or generation != self.generation[table]:
            return
        rows = self._rows[table]
        if len(rows) >= MAX_ENTRIES:
            rows.clear()
        rows[key] = (self.clock() + self.ttl_s, dict(row))

    def invalidate(self, table: str) -> None:
        """Forget every row of `table` (one of `TABLES`)."""
        self._rows[table].clear()
        self.generation[table] += 1

    def invalidate_all(self) -> None:
        for name in TABLES:
            self.invalidate(name)
