"""A conversation's messages are pushed in cid (commit) order.

Clients follow a conversation by the highest cid they have received from the server's stream
and, after a reconnect, ask for what came `after` it (docs/api.md, "Exactly once, in order: `cid` is
the cursor"). That cursor is only safe when a conversation's messages reach the stream in cid
order and a message is in the database before any later one is pushed. Two sends in one
conversation at once (the visitor and the agent, two tabs) could otherwise commit and push
in either order: on MariaDB two transactions take cids 10 and 11 and may commit (and push)
11 first, and any await between the commit and the push (e.g. noting the agent's activity)
lets a later message overtake.

`ConversationOrder.hold(business_id, visiter_id)` is held around "store the row, push it":
one writer per conversation at a time in this process, so cid order, commit order and push
order are the same. Different conversations never wait for each other. Every row with a cid
(text, image, file, the system lines other features add) goes through it alike.

With several nodes the per-process lock is not enough: two nodes could commit cids 10 and
11 and push 11 first. So inside its own lock a writer also takes the conversation's turn
from the adapter (`Adapter.turn`, a no-op alone; on Redis a key held across nodes, whose
publishes every node delivers in one order and which is given back only after them).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any


class ConversationOrder:
    """One lock per conversation `(business_id, visiter_id)`, made on first use and dropped
    when nobody holds or waits for it (so idle conversations cost nothing)."""

    def __init__(self, turn: Callable[[str], AbstractAsyncContextManager[None]] | None = None,
                 ) -> None:
        #: turn(key): the cluster-wide turn taken inside this process's lock (None: none).
        self._turn = turn
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._users: dict[tuple[str, str], int] = {}
        self._holders: dict[tuple[str, str], asyncio.Task[Any]] = {}

    @asynccontextmanager
    async def hold(self, business_id: str, visiter_id: str) -> AsyncIterator[None]:
        """Hold the conversation's turn while a message is written and pushed. Nothing is
        raised of its own (but the adapter's turn's errors, e.g. Redis out of reach); an
        error in the body releases the turn and propagates. Re-entrant within one task: a
        use case that changes a conversation's state and writes its line holds the turn
        around both (so with the cluster out of reach neither happens), and the line's own
        `hold` inside it goes straight on."""
        key = (business_id, visiter_id)
        task = asyncio.current_task()
        if task is not None and self._holders.get(key) is task:
            yield
            return
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                if task is not None:
                    self._holders[key] = task
                try:
                    if self._turn is None:
                        yield
                    else:
                        async with self._turn(
                                f"conv:{len(business_id)}:{business_id}:{visiter_id}"):
                            yield
                finally:
                    self._holders.pop(key, None)
        finally:
            left = self._users[key] - 1
            if left:
                self._users[key] = left
            else:
                del self._users[key]
                del self._locks[key]

    def busy(self) -> int:
        """Conversations with a writer holding or waiting for their turn (for tests)."""
        return len(self._locks)
