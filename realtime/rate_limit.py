"""An in-process sliding-window rate limiter (`RateLimiter`), keyed by a string (a client IP,
a sender). With several nodes `realtime.pusher.redis_adapter.RedisRateLimiter` answers the
same `allow` for the whole cluster.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable


class RateLimiter:
    """At most `limit` hits per key in any `window_s` seconds (sliding window), remembering
    at most `max_keys` keys. In-process; with several nodes `realtime.pusher.redis_adapter`'s
    `RedisRateLimiter` (the same `allow`) counts for the cluster."""

    def __init__(self, limit: int, window_s: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self.hits: OrderedDict[str, deque[float]] = OrderedDict()

    def take(self, key: str) -> bool:
        """Count one hit for `key`; False (not counted) when it is over the limit."""
        now = self.clock()
        q = self.hits.get(key)
        if q is None:
            q = self.hits[key] = deque()
            while len(self.hits) > self.max_keys:
                self.hits.popitem(last=False)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        self.hits.move_to_end(key)
        return True

    async def allow(self, key: str) -> bool:
        """`take`, as every limiter answers (one on Redis after a round trip)."""
        return self.take(key)
