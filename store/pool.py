"""The connection pool: a bounded queue in front of the database.

A burst of requests beyond the pool's connections waits in the pool's queue, each for at most
`pool_timeout` seconds; one that still gets no connection raises `Unavailable` (the handlers
answer 503 with `Retry-After`, which the visitor window retries), not SQLAlchemy's
`TimeoutError` (a 500 and a traceback).
"""
from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool

from .errors import Unavailable

log = logging.getLogger("wolive.store")

#: At most one "pool exhausted" warning per this many seconds (a burst would log thousands).
WARN_EVERY_S = 10.0

#: Connections kept open and extra ones opened under load, by dialect name, when the
#: config leaves them out (MySQL/MariaDB: one server serves many; SQLite: one writer at a
#: time, so more connections only wait on its lock).
DEFAULTS = {"mysql": (10, 20), "sqlite": (5, 10)}
#: Seconds a request waits for a connection before `Unavailable` (SQLAlchemy's default).
DEFAULT_TIMEOUT_S = 30.0


class BoundedPool(AsyncAdaptedQueuePool):
    """`AsyncAdaptedQueuePool` whose checkout timeout raises `Unavailable`."""

    _last_warning = 0.0

    def _do_get(self) -> Any:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            now = time.monotonic()
            if now - self._last_warning >= WARN_EVERY_S or not self._last_warning:
                self._last_warning = now
                log.warning("database pool exhausted: %d connections busy for %.1f s; "
                            "answering 503", self.size() + self._max_overflow,
                            self._timeout)
            raise Unavailable(f"no database connection free within {self._timeout} s") \
                from exc


#: A pooled MySQL/MariaDB connection that went back to the pool less than this many seconds
#: ago is used without a ping first (`ping_when_idle`).
FRESH_S = 1.0


def ping_when_idle(pool: Pool, fresh_s: float | None = None) -> None:
    """Pessimistic disconnect handling that costs nothing under load: a connection is pinged
    at checkout only when it has been back in the pool for `fresh_s` seconds or more (or
    was never used); a failed ping raises `DisconnectionError`, so the pool drops it and
    tries another, as `pool_pre_ping` does (SQLAlchemy's documented custom variant of it,
    "Disconnect Handling - Pessimistic"). Use with `pool_pre_ping=False`.

    A connection the server dropped within the last `fresh_s` seconds still fails its
    first statement: that is an `Unavailable` (503 with `Retry-After`), and SQLAlchemy
    then replaces every connection of the pool that is older than the failure."""

    fresh = FRESH_S if fresh_s is None else fresh_s

    @event.listens_for(pool, "checkin")
    def _back(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info["wolive_back_at"] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        back = record.info.get("wolive_back_at")
        # Not proof that the database works (`StoreBase._on_checkout` waits for one that is).
        record.info["wolive_unverified"] = back is not None and \
            time.monotonic() - back < fresh
        if record.info["wolive_unverified"]:
            return
        try:
            dbapi_conn.ping(False)
        except Exception as exc:
            raise sa_exc.DisconnectionError(f"ping failed: {exc}") from exc


def pool_options(dialect: str, pool_size: int | None, max_overflow: int | None,
                 pool_timeout: float | None) -> dict[str, Any]:
    """`create_async_engine` keyword arguments for the pool: `BoundedPool` with the given
    sizes (None: `DEFAULTS` for the dialect, "mysql" or "sqlite") and checkout timeout in
    seconds (None: `DEFAULT_TIMEOUT_S`)."""
    size, overflow = DEFAULTS.get(dialect, DEFAULTS["mysql"])
    return {"poolclass": BoundedPool,
            "pool_size": size if pool_size is None else pool_size,
            "max_overflow": overflow if max_overflow is None else max_overflow,
            "pool_timeout": DEFAULT_TIMEOUT_S if pool_timeout is None else pool_timeout}
