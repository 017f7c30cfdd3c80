"""End to end with the real pusher-js: `tests/node/e2e_chat.js` plays the agent console and
the visitor window against `python wolive.py`; this test runs it and then reads the database.

The script logs the agent in, holds `kefu{id}` with the agent's cookie on the WebSocket
handshake, checks that a cookie-less client (and a foreign Origin carrying the cookie) is
refused that channel and hears nothing, assigns the visitor, carries one message each way
(`cu-event` on `kefu{id}`, `my-event` on `cu{channel}`) and prints a JSON summary.

Needs Node and `npm ci --prefix tests/node`; missing either fails the test (it never skips).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, BUSINESS, RunningServer
from helpers import db_rows

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "e2e_chat.js"
INSTALL_HINT = ("install Node 20+ and the client libraries: `npm ci --prefix tests/node` "
                "(from the repository root)")

VISITER_ID = "e2e-node-visitor"
VISITER_NAME = "小明"
VISITOR_TEXT = "你好 👋"
AGENT_TEXT = "您好，请问有什么可以帮您？🎉"
#: The script gives up after this long; the subprocess gets a little more.
SCRIPT_TIMEOUT_S = 15


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"node is not on PATH: {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "pusher-js" / "package.json").exists():
        pytest.fail(f"pusher-js is not installed in {NODE_DIR / 'node_modules'}: {INSTALL_HINT}")
    return node


def run_node_script(server: RunningServer, script: Path, timeout_s: int,
                    **env_extra: str) -> dict[str, Any]:
    """Run one of tests/node's scripts against `server`; its last stdout line is a JSON
    summary. Fails the test (with the script's output and the server log's tail) when it
    exits non-zero, hangs past `timeout_s` + 15 s, or prints no summary."""
    env = dict(os.environ, WOLIVE_BASE_URL=server.base_url, WOLIVE_APP_KEY=server.app_key,
               WOLIVE_USER=ADMIN_USER, WOLIVE_PASSWORD=ADMIN_PASSWORD,
               WOLIVE_BUSINESS=BUSINESS, **env_extra)
    try:
        proc = subprocess.run([node_binary(), str(script)], cwd=NODE_DIR, env=env,
                              capture_output=True, text=True, encoding="utf-8",
                              timeout=timeout_s + 15)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} hung past its own timeout:\nstdout: {exc.stdout}\n"
                    f"stderr: {exc.stderr}\nserver log:\n{server.logs()[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{script.name} exited {proc.returncode}\nstderr:\n{proc.stderr}\n"
                    f"stdout:\n{proc.stdout}\nserver log:\n{server.logs()[-4000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert lines, f"{script.name} printed no summary; stderr:\n{proc.stderr}"
    summary: dict[str, Any] = json.loads(lines[-1])
    print(f"{script.name} summary:", json.dumps(summary, ensure_ascii=False))
    return summary


def run_script(server: RunningServer) -> dict[str, Any]:
    return run_node_script(server, SCRIPT, SCRIPT_TIMEOUT_S, WOLIVE_VISITER_ID=VISITER_ID,
                           WOLIVE_VISITER_NAME=VISITER_NAME, WOLIVE_VISITOR_TEXT=VISITOR_TEXT,
                           WOLIVE_AGENT_TEXT=AGENT_TEXT,
                           WOLIVE_E2E_TIMEOUT_MS=str(SCRIPT_TIMEOUT_S * 1000))


@pytest.mark.e2e
def test_pusher_js_visitor_and_agent_chat(running_server: RunningServer) -> None:
    summary = run_script(running_server)

    # what the clients saw (the script asserts these too; the report says what ran)
    assert summary["ok"] is True
    assert summary["service_id"] == 1
    assert summary["to_agent"] == {"channel": "kefu1", "event": "cu-event",
                                   "cid": summary["to_agent"]["cid"], "content": VISITOR_TEXT}
    assert summary["to_visitor"]["channel"] == "cu" + summary["channel"]
    assert summary["to_visitor"]["event"] == "my-event"
    assert summary["to_visitor"]["content"] == AGENT_TEXT
    assert summary["stranger_refusal"]["status"] == 403
    assert summary["handshakes"]["stranger"][0]["cookies"] == []
    assert "wolive_agent" in summary["handshakes"]["agent"][0]["cookies"]

    # what is really stored
    url = running_server.db_url
    chats = db_rows(url, "SELECT cid, visiter_id, service_id, business_id, content, direction "
                         "FROM wolive_chats ORDER BY cid")
    assert chats == [
        {"cid": summary["to_agent"]["cid"], "visiter_id": VISITER_ID, "service_id": 1,
         "business_id": BUSINESS, "content": VISITOR_TEXT, "direction": "to_service"},
        {"cid": summary["to_visitor"]["cid"], "visiter_id": VISITER_ID, "service_id": 1,
         "business_id": BUSINESS, "content": AGENT_TEXT, "direction": "to_visiter"},
    ]
    visitors = db_rows(url, "SELECT visiter_name, channel FROM wolive_visiter "
                            "WHERE visiter_id = %s AND business_id = %s", (VISITER_ID, BUSINESS))
    assert visitors == [{"visiter_name": VISITER_NAME, "channel": summary["channel"]}]
    queue = db_rows(url, "SELECT service_id FROM wolive_queue WHERE visiter_id = %s "
                         "AND business_id = %s", (VISITER_ID, BUSINESS))
    assert queue == [{"service_id": 1}]
