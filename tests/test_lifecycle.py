"""Start-up and shutdown of the real process: SIGTERM closes open sockets with 4200 (so
clients reconnect at once), and the process exits 0."""
from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from tornado.websocket import websocket_connect

from conftest import start_server


def test_sigterm_closes_sockets_with_4200_and_exits_0(tmp_path: Path) -> None:
    server = start_server(tmp_path, f"sqlite:///{tmp_path}/w.db")

    async def scenario() -> tuple[int | None, float]:
        conn = await websocket_connect(server.ws_url + "/app/wolive?protocol=7")
        assert json.loads(await conn.read_message())["event"] == "pusher:connection_established"
        conn.write_message(json.dumps({"event": "pusher:subscribe",
                                       "data": {"channel": "news"}}))
        await conn.read_message()
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        frames = []
        while True:
            msg = await asyncio.wait_for(conn.read_message(), 10)
            if msg is None:
                break
            frames.append(json.loads(msg))
        conn.close()
        assert frames and frames[-1]["event"] == "pusher:error"
        assert json.loads(frames[-1]["data"])["code"] == 4200
        return conn.close_code, time.monotonic() - started

    try:
        code, took = asyncio.run(scenario())
        assert code == 4200
        assert server.proc.wait(timeout=15) == 0, server.logs()
        assert took < 5
        assert "Traceback" not in server.logs()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def test_the_serving_process_freezes_start_up_objects_and_collects_young_ones_less_often(
        tmp_path: Path) -> None:
    """`wolive.setup_gc` runs once start-up is done (issue 11 item 5: no full-collection
    stalls under fan-out), and says so in the log."""
    import re

    import wolive
    server = start_server(tmp_path, f"sqlite:///{tmp_path}/w.db", log_level="info")
    try:
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=15) == 0
        m = re.search(r"garbage collector: (\d+) start-up objects frozen, thresholds "
                      r"\((\d+), \d+, \d+\)", server.logs())
        assert m, server.logs()[-2000:]
        assert int(m.group(1)) > 10_000  # the modules, the app, the engine
        assert int(m.group(2)) == wolive.GC_GEN0_THRESHOLD
    finally:
        if server.proc.poll() is None:
            server.proc.kill()


def test_sqlite_default_needs_no_setup(tmp_path: Path) -> None:
    """A fresh data dir: the SQLite file, its folder and the secrets are made at start-up."""
    server = start_server(tmp_path, "sqlite:///nested/dir/wolive.db", create_admin=False)
    try:
        assert (tmp_path / "nested" / "dir" / "wolive.db").exists()
        assert (tmp_path / "data" / "secrets.json").exists()
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=15) == 0
