"""Pusher Channels protocol 7: frames, error codes, channel names, limits.

Source: the Pusher protocol documentation and the facts the real clients enforce
(`shared/PUSHER-COMPAT.md`). Close codes 4000-4099 make pusher-js give up, 4100-4199
reconnect with backoff, 4200-4299 reconnect at once, 4300+ give up.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

#: Seconds of silence after which pusher-js sends `pusher:ping` (it requires a non-zero value).
ACTIVITY_TIMEOUT_S = 120
#: A socket silent this long past `activity_timeout` is dead; pusher-js pings well before it.
DEAD_SOCKET_GRACE_S = 30
#: Largest frame a client may send (bytes); a client event's data is capped at 10 KB by
#: Pusher, and a subscribe with presence channel_data is far smaller.
MAX_FRAME_BYTES = 32 * 1024
#: Pusher's limit on event data published through the HTTP API or a client event (bytes).
MAX_EVENT_DATA_BYTES = 10 * 1024
#: Channel names: Pusher's documented character set and length.
MAX_CHANNEL_NAME = 200
CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9_\-=@,.;]+$")
#: Protocol versions the server speaks (pusher-js 8 uses 7).
PROTOCOLS = (5, 6, 7)


@dataclass(frozen=True)
class ErrorCode:
    """A Pusher error: `fatal` ones are sent as `pusher:error` and then used as close code."""

    code: int
    message: str
    fatal: bool


class Errors:
    """The codes wolive uses, by name (Pusher protocol 7, "Error codes")."""

    APP_NOT_FOUND = ErrorCode(4001, "Application does not exist", True)
    APP_DISABLED = ErrorCode(4003, "Application disabled", True)
    OVER_CONNECTION_QUOTA = ErrorCode(4004, "Application is over connection quota", True)
    PATH_NOT_FOUND = ErrorCode(4005, "Path not found", True)
    BAD_PROTOCOL = ErrorCode(4007, "Unsupported protocol version", True)
    UNAUTHORIZED_CONNECTION = ErrorCode(4009, "Connection not authorized", True)
    OVER_CAPACITY = ErrorCode(4100, "Over capacity", True)
    SERVER_SHUTDOWN = ErrorCode(4200, "Server is shutting down; please reconnect", True)
    PONG_NOT_RECEIVED = ErrorCode(4201, "Pong reply not received", True)
    CLOSED_AFTER_INACTIVITY = ErrorCode(4202, "Closed after inactivity", True)
    # 4300+: errors sent as pusher:error only; the socket stays open.
    CLIENT_EVENT_RATE_LIMIT = ErrorCode(4301, "Client event rejected due to rate limit", False)
    # Pusher sends subscription and frame problems with code null or 4xxx as non-fatal.
    GENERIC = ErrorCode(4000, "Bad request", False)


class ProtocolError(Exception):
    """A client broke the protocol; `error` says what to send, `message` why."""

    def __init__(self, error: ErrorCode, message: Optional[str] = None) -> None:
        super().__init__(message or error.message)
        self.error = error
        self.message = message or error.message


def encode(event: str, data: Any = None, channel: Optional[str] = None,
           user_id: Optional[str] = None, raw_data: bool = False) -> str:
    """One server→client frame. `data` is JSON-encoded into a string unless it already is one
    (`raw_data`): server→client `data` is always a JSON string (PUSHER-COMPAT, "WebSocket")."""
    frame: dict[str, Any] = {"event": event}
    if channel is not None:
        frame["channel"] = channel
    if data is not None:
        frame["data"] = data if (raw_data or isinstance(data, str)) else json.dumps(
            data, ensure_ascii=False, separators=(",", ":"))
    if user_id is not None:
        frame["user_id"] = user_id
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(code: Optional[int], message: str) -> str:
    return encode("pusher:error", {"code": code, "message": message})


def valid_channel_name(name: Any) -> bool:
    """Pusher's rule: 1-200 of `[A-Za-z0-9_-=@,.;]`; `#server-to-user-` is the one `#` name."""
    if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_NAME:
        return False
    if name.startswith("#server-to-user-"):
        return bool(CHANNEL_NAME_RE.match(name[len("#server-to-user-"):]))
    return bool(CHANNEL_NAME_RE.match(name))


def channel_kind(name: str) -> str:
    """'private-encrypted', 'private', 'presence', 'server-to-user' or 'public'."""
    for prefix in ("private-encrypted-", "private-", "presence-"):
        if name.startswith(prefix):
            return prefix[:-1]
    if name.startswith("#server-to-user-"):
        return "server-to-user"
    return "public"


def decode(text: Any) -> dict[str, Any]:
    """Parse a client frame; raises `ProtocolError` (non-fatal) for anything malformed."""
    if isinstance(text, bytes):
        raise ProtocolError(Errors.GENERIC, "Binary frames are not supported")
    if len(text) > MAX_FRAME_BYTES:
        raise ProtocolError(Errors.GENERIC, f"Frame over {MAX_FRAME_BYTES} bytes")
    try:
        frame = json.loads(text)
    except ValueError:
        raise ProtocolError(Errors.GENERIC, "Frame is not JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        raise ProtocolError(Errors.GENERIC, "Frame needs an 'event' string")
    data = frame.get("data")
    if isinstance(data, str) and frame["event"].startswith("pusher:"):
        # Some clients double-encode client→server data; accept both shapes.
        try:
            frame["data"] = json.loads(data)
        except ValueError:
            pass
    return frame
