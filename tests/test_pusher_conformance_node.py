"""Pusher conformance with the real clients against `python wolive.py`: `tests/node/
conformance.js` drives pusher-js 8 and the official Node `pusher` library (presence and its
member events, client events and their rate limit, signin + sendToUser, private-encrypted
end to end, cache channels, batch/info, channels/users/terminate, refusals of wolive's own
auth endpoints). The script checks each rule as it goes; this test runs it on SQLite and
MariaDB and checks its summary again.

Needs Node and `npm ci --prefix tests/node`; missing either fails the test (it never skips).
"""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from conftest import BUSINESS, RunningServer
from test_e2e_node import NODE_DIR, run_node_script

from realtime.pusher.signing import derive_master_key

SCRIPT = NODE_DIR / "conformance.js"
#: The script gives up after this long; the subprocess gets a little more.
SCRIPT_TIMEOUT_S = 40


def app_secret(server: RunningServer) -> str:
    """The default app's secret: generated at first start into data_dir/secrets.json."""
    kept = json.loads((server.config_path.parent / "data" / "secrets.json").read_text())
    return str(kept["app_secret_1"])


def run_conformance(server: RunningServer) -> dict[str, Any]:
    secret = app_secret(server)
    return run_node_script(
        server, SCRIPT, SCRIPT_TIMEOUT_S, WOLIVE_APP_ID="1", WOLIVE_APP_SECRET=secret,
        WOLIVE_MASTER_KEY_B64=base64.b64encode(derive_master_key(secret)).decode(),
        WOLIVE_TIMEOUT_MS=str(SCRIPT_TIMEOUT_S * 1000))


@pytest.mark.e2e
def test_real_pusher_clients_conform(running_server: RunningServer) -> None:
    s = run_conformance(running_server)
    assert s["ok"] is True
    assert s["pusher_js"] == "8.6.0" and s["pusher_node"].startswith("5.")
    presence = f"presence-business-{BUSINESS}"

    # Presence, as pusher-js saw it.
    assert s["agent_member"] == {"id": "1", "info": {
        "nick_name": s["agent_member"]["info"]["nick_name"],
        "avatar": s["agent_member"]["info"]["avatar"]}}
    assert s["presence"]["visitor_sees"] == ["1", "visitor-7"]
    assert s["presence"]["added"] == {"id": "visitor-7", "info": {"name": "小明 🎉"}}
    assert s["presence"]["removed"] == {"id": "visitor-7", "info": {"name": "小明 🎉"}}

    # The HTTP API through the Node library (GET without body_md5).
    http = s["http"]
    assert http["users"] == {"users": [{"id": "1"}, {"id": "visitor-7"}]}
    assert http["channels"] == {"channels": {presence: {"user_count": 2}}}
    assert http["channel"] == {"occupied": True, "user_count": 2, "subscription_count": 3}
    assert presence in http["all"]["channels"]
    assert not any(c.startswith("#") for c in http["all"]["channels"])
    assert http["users_of_public_status"] == 400
    assert http["user_count_without_prefix_status"] == 400

    # Client events.
    assert s["client_event"] == {"data": {"typing": True}, "user_id": "visitor-7"}
    assert s["private_client_event"] == {"n": 1}
    assert s["rate_limit"] == {"sent": 15, "delivered": 10, "errors_4301": 5,
                               "state_after": "connected"}

    # Sign-in and sendToUser.
    assert s["signin"]["user_data"]["id"] == "agent-1"
    assert s["signin"]["send_answer"] == {}
    assert s["signin"]["received"] == {"text": "你好"}

    # private-encrypted: decrypted by pusher-js with the shared secret from /pusher/auth.
    assert s["encrypted"] == {"pin": "1234", "note": "加密 🔒"}

    # Cache channels: only the last event replayed; a miss on an empty one.
    assert s["cache"] == {"replayed": [{"v": 2}], "miss": 1}

    # Batch and info.
    assert s["batch"]["answer"] == {"batch": [{}, {}, {"user_count": 1,
                                                      "subscription_count": 1}]}
    assert s["batch"]["info_answer"] == {"channels": {presence: {
        "user_count": 1, "subscription_count": 1}}}
    assert s["batch"]["eleven_status"] == 400
    assert s["batch"]["too_big_status"] == 413

    # Refusals of wolive's own auth endpoints.
    assert set(s["refusals"].values()) == {403}

    # terminateUserConnections: 4009, no reconnect, others untouched, presence emptied.
    assert s["terminate"]["answer"] == {}
    assert s["terminate"]["errors"][0] == 4009
    assert "connected" not in s["terminate"]["states"]
    assert s["terminate"]["stranger_state"] == "connected"
    assert s["terminate"]["channels_after"] == {"channels": {}}
