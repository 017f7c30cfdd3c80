"""SQLite run in the event loop's thread (`store.inloop`): writers one at a time through an
asyncio gate, another process's lock waited for without blocking the loop, a cancelled task
never leaves the gate or a transaction behind, and reads never wait for a writer."""
from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from store import schema as t
from store.errors import Unavailable
from store import Store


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/data/wolive.db"


async def _max_loop_lag(until: asyncio.Future[object], tick_s: float = 0.005) -> float:
    """The longest the loop went without running this task, while `until` is pending (s)."""
    worst = 0.0
    while not until.done():
        t0 = time.monotonic()
        await asyncio.sleep(tick_s)
        worst = max(worst, time.monotonic() - t0 - tick_s)
    return worst


@pytest.mark.gen_test(timeout=30)
async def test_writers_take_turns_in_order_and_reads_do_not_wait(url: str) -> None:
    store = await Store.open(url)
    order: list[str] = []
    release = asyncio.Event()
    try:
        async def writer(name: str, hold: bool = False) -> None:
            async with store.engine.begin() as conn:
                order.append(name + "+")
                await conn.execute(insert(t.business).values(business_id=name))
                if hold:
                    await release.wait()  # a transaction held across an await
                order.append(name + "-")

        first = asyncio.ensure_future(writer("a", hold=True))
        await asyncio.sleep(0.01)
        others = [asyncio.ensure_future(writer(n)) for n in ("b", "c", "d")]
        await asyncio.sleep(0.05)
        assert order == ["a+"]  # the others wait at the gate, not on SQLite's lock
        # Reads answer meanwhile, from the last committed state.
        assert await asyncio.wait_for(store.has_super_manager(), 1.0) is False
        release.set()
        await asyncio.gather(first, *others)
        assert order == ["a+", "a-", "b+", "b-", "c+", "c-", "d+", "d-"]  # first come first
        assert not store.engine.gate.busy
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_task_cancelled_at_the_gate_or_mid_transaction_leaves_nothing_behind(
        url: str) -> None:
    store = await Store.open(url, row_cache_s=3600)
    try:
        await store.add_business("b1")
        hold = asyncio.Event()

        async def holder() -> None:
            async with store.engine.begin() as conn:
                await conn.execute(insert(t.business).values(business_id="ghost"))
                await hold.wait()

        h = asyncio.ensure_future(holder())
        await asyncio.sleep(0.01)
        waiter = asyncio.ensure_future(store.add_business("b2"))
        await asyncio.sleep(0.01)
        waiter.cancel()  # cancelled while waiting at the gate
        with pytest.raises(asyncio.CancelledError):
            await waiter
        h.cancel()  # cancelled inside its transaction: rolled back
        with pytest.raises(asyncio.CancelledError):
            await h
        assert not store.engine.gate.busy
        await store.add_business("b3")
        names = {r["business_id"] for r in await store._fetch_all(select(t.business))}
        assert names == {"b1", "b3"}
        assert (await store.get_business("b1"))["state"] == "open"
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_nested_write_connection_in_one_task_is_an_error_not_a_wait(url: str) -> None:
    store = await Store.open(url)
    try:
        with pytest.raises(RuntimeError, match="nested"):
            async with store.engine.begin():
                async with store.engine.begin():
                    pass
        assert not store.engine.gate.busy
        await store.add_business("ok")
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_another_process_holding_the_lock_is_waited_for_without_blocking_the_loop(
        url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """While another process holds SQLite's write lock, a write waits in asyncio sleeps (the
    loop keeps running: its lag stays far below the wait); once the lock is gone it goes
    through; held past the busy wait it is `Unavailable` (503), logged once."""
    store = await Store.open(url)
    lock = sqlite3.connect(tmp_path / "data" / "wolive.db", isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(store.add_business("late"))
        lag = asyncio.ensure_future(_max_loop_lag(write))
        await asyncio.sleep(0.5)
        assert not write.done()
        # Reads go on meanwhile (WAL).
        assert await asyncio.wait_for(store.has_super_manager(), 1.0) is False
        lock.execute("ROLLBACK")
        await asyncio.wait_for(write, 5)
        assert await lag < 0.1, await lag

        store.engine.busy_wait_s = 0.3  # give up sooner than the default 5 s
        lock.execute("BEGIN IMMEDIATE")
        write = asyncio.ensure_future(store.add_business("refused"))
        lag = asyncio.ensure_future(_max_loop_lag(write))
        with pytest.raises(Unavailable):
            await write
        assert await lag < 0.1, await lag
        assert store.unavailable_since is not None
        assert "database unavailable" in caplog.text
        assert not store.engine.gate.busy
        lock.execute("ROLLBACK")
        await store.add_business("back")
        names = {r["business_id"] for r in await store._fetch_all(select(t.business))}
        assert names == {"late", "back"}
    finally:
        lock.close()
        await store.close()


SLOW = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
        "SELECT count(*) FROM n")


@pytest.mark.gen_test(timeout=60)
async def test_a_long_read_of_the_slow_read_engine_runs_beside_the_loop(url: str) -> None:
    """History and search reads (`slow_read_engine`) run in a thread: a scan of seconds
    leaves the loop free (chat writes go on meanwhile); cancelled, it is interrupted and its
    connection goes back usable."""
    from sqlalchemy import text
    store = await Store.open(url)
    try:
        t0 = time.monotonic()
        async with store.slow_read_engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar() == 1
        conn = await store.slow_read_engine.connect()
        try:
            scanned: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            lag = asyncio.ensure_future(_max_loop_lag(scanned))

            async def write_meanwhile() -> int:
                n = 0
                while not scanned.done():
                    await store.add_business(f"meanwhile{n}")
                    n += 1
                    await asyncio.sleep(0.01)
                return n

            writes = asyncio.ensure_future(write_meanwhile())
            await asyncio.sleep(0.02)  # both running
            assert (await conn.execute(text(SLOW))).scalar() == 3000000
            scanned.set_result(None)
            assert await lag < 0.05, await lag  # in the loop it would be the whole scan
            assert await writes >= 3  # chat writes went on during the scan
        finally:
            await conn.close()
        spent = time.monotonic() - t0

        async def scan() -> int:
            async with store.slow_read_engine.connect() as c:
                return int((await c.execute(text(SLOW))).scalar())

        task = asyncio.ensure_future(scan())
        await asyncio.sleep(min(0.2, spent / 4))
        task.cancel()
        t1 = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - t1 < spent  # interrupted, not run to its end
        assert await scan() == 3000000  # the pool's connections are fine
    finally:
        await store.close()
