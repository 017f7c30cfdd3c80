"""Pusher Channels protocol 7: frames, error codes, channel names, limits.

Source: the Pusher protocol documentation and what the real clients enforce (pusher-js 8,
the official server libraries). Close codes 4000-4099 make pusher-js give up, 4100-4199
reconnect with backoff, 4200-4299 reconnect at once, 4300+ give up.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .. import inputs

#: Seconds of silence after which pusher-js sends `pusher:ping` (it requires a non-zero value).
ACTIVITY_TIMEOUT_S = 120
#: A socket silent this long past `activity_timeout` is dead; pusher-js pings well before it.
DEAD_SOCKET_GRACE_S = 30
#: Largest WebSocket message the transport accepts (bytes): Tornado closes the socket with
#: 1009 above it, before any JSON is parsed, so a peer cannot make us buffer megabytes.
#: wolive.make_app passes it as `websocket_max_message_size`.
MAX_FRAME_BYTES = 128 * 1024
#: Largest frame the protocol handles (bytes): a bigger one (up to MAX_FRAME_BYTES) gets a
#: non-fatal `pusher:error` and the socket stays open. A 10 KB client event, even with every
#: character JSON-escaped, and a presence subscribe with 1 KB of user_info fit well inside.
MAX_PROTOCOL_FRAME_BYTES = 32 * 1024
#: Pusher's limit on event data published through the HTTP API or a client event (bytes).
MAX_EVENT_DATA_BYTES = 10 * 1024
#: Longest event name (characters): Pusher REST API and the server libraries' check.
MAX_EVENT_NAME = 200
#: Channel names: Pusher's documented character set and length.
MAX_CHANNEL_NAME = 200
CHANNEL_NAME_RE = re.compile(r"\A[A-Za-z0-9_\-=@,.;]+\Z")
#: The one channel family whose name has a `#`: events for one signed-in user (Pusher
#: "User authentication"); pusher-js subscribes to it after `pusher:signin_success`.
SERVER_TO_USER_PREFIX = "#server-to-user-"
#: Longest user id (characters) and its characters: what the official libraries accept.
MAX_USER_ID = 200
#: Protocol versions the server speaks (pusher-js 8 uses 7).
PROTOCOLS = (5, 6, 7)
#: Distinct users one presence channel may hold (Pusher "Presence channels" limit).
MAX_PRESENCE_MEMBERS = 100
#: Largest `user_info` of a presence member, JSON-encoded (bytes; Pusher's 1 KB limit).
MAX_USER_INFO_BYTES = 1024
#: Client events one connection may send per CLIENT_EVENT_WINDOW_S (Pusher "Client events":
#: 10 per second per client); the excess is refused with 4301 and the socket kept.
MAX_CLIENT_EVENTS_PER_WINDOW = 10
CLIENT_EVENT_WINDOW_S = 1.0
#: How long a cache channel remembers its last event (seconds; Pusher "Cache channels").
CACHE_TTL_S = 30 * 60
#: Events one `POST /apps/{id}/batch_events` may carry (Pusher REST API).
MAX_BATCH_EVENTS = 10
#: Channels one `POST /apps/{id}/events` may name (Pusher REST API).
MAX_CHANNELS_PER_PUBLISH = 100


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
    #: `POST .../users/{id}/terminate_connections`: 4000-4099, so pusher-js does not
    #: reconnect the terminated user (Pusher "Terminating user connections").
    TERMINATED = ErrorCode(4009, "Connection terminated by the app", True)
    #: wolive: the agent whose session the socket was opened with is gone (deleted), so
    #: its console must sign in again; 4000-4099, so pusher-js does not reconnect, and the
    #: console pages go to the sign-in page on it (static/assets/js/pages/presence.js).
    SESSION_ENDED = ErrorCode(4009, "Session ended: sign in again", True)
    #: A `pusher:signin` with a bad signature or user_data. Sent without closing: the
    #: socket's public subscriptions (a visitor window, say) stay useful.
    SIGNIN_FAILED = ErrorCode(4009, "Sign-in refused", False)
    OVER_CAPACITY = ErrorCode(4100, "Over capacity", True)
    #: wolive: the socket needed the database (an agent's session) while it was down.
    STORE_UNAVAILABLE = ErrorCode(4100, "Service briefly unavailable; reconnect later", True)
    #: wolive: handling a frame failed inside the server; the client reconnects at once
    #: (4200-4299) and catches up as after any reconnect.
    SERVER_ERROR = ErrorCode(4200, "Server error; please reconnect", True)
    SERVER_SHUTDOWN = ErrorCode(4200, "Server is shutting down; please reconnect", True)
    PONG_NOT_RECEIVED = ErrorCode(4201, "Pong reply not received", True)
    CLOSED_AFTER_INACTIVITY = ErrorCode(4202, "Closed after inactivity", True)
    # 4300+: errors sent as pusher:error only; the socket stays open.
    CLIENT_EVENT_RATE_LIMIT = ErrorCode(4301, "Client event rejected due to rate limit", False)
    # Pusher sends subscription and frame problems with code null or 4xxx as non-fatal.
    GENERIC = ErrorCode(4000, "Bad request", False)
    #: A frame between MAX_PROTOCOL_FRAME_BYTES and MAX_FRAME_BYTES: refused, socket kept.
    FRAME_TOO_LARGE = ErrorCode(4000, "Frame too large", False)
    #: A client event that breaks a rule (not client-*, wrong channel type, not subscribed,
    #: data over 10 KB): refused and not delivered; the socket stays open.
    CLIENT_EVENT_REJECTED = ErrorCode(4000, "Client event rejected", False)


class ProtocolError(Exception):
    """A client broke the protocol; `error` says what to send, `message` why."""

    def __init__(self, error: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or error.message)
        self.error = error
        self.message = message or error.message


def encode(event: str, data: Any = None, channel: str | None = None,
           user_id: str | None = None, raw_data: bool = False) -> str:
    """One server→client frame. `data` is JSON-encoded into a string unless it already is one
    (`raw_data`): server→client `data` is always a JSON-encoded string, as the Pusher
    protocol specifies and the real clients expect."""
    frame: dict[str, Any] = {"event": event}
    if channel is not None:
        frame["channel"] = channel
    if data is not None:
        frame["data"] = data if (raw_data or isinstance(data, str)) else json.dumps(
            data, ensure_ascii=False, separators=(",", ":"))
    if user_id is not None:
        frame["user_id"] = user_id
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(code: int | None, message: str) -> str:
    return encode("pusher:error", {"code": code, "message": message})


def valid_channel_name(name: Any) -> bool:
    """Pusher's rule: 1-200 of `[A-Za-z0-9_-=@,.;]`; `#server-to-user-` is the one `#` name."""
    if not isinstance(name, str) or not name or len(name) > MAX_CHANNEL_NAME:
        return False
    if name.startswith(SERVER_TO_USER_PREFIX):
        return bool(CHANNEL_NAME_RE.match(name[len(SERVER_TO_USER_PREFIX):]))
    return bool(CHANNEL_NAME_RE.match(name))


def valid_user_id(user_id: Any) -> bool:
    """A user id the official libraries accept: 1-200 channel-name characters."""
    return isinstance(user_id, str) and 0 < len(user_id) <= MAX_USER_ID and bool(
        CHANNEL_NAME_RE.match(user_id))


def channel_kind(name: str) -> str:
    """'private-encrypted', 'private', 'presence', 'server-to-user' or 'public'.

    Cache channels are of their base kind: `private-cache-x` is 'private',
    `private-encrypted-cache-x` 'private-encrypted', `cache-x` 'public'."""
    for prefix in ("private-encrypted-", "private-", "presence-"):
        if name.startswith(prefix):
            return prefix[:-1]
    if name.startswith(SERVER_TO_USER_PREFIX):
        return "server-to-user"
    return "public"


def is_cache_channel(name: str) -> bool:
    """`cache-`, `private-cache-`, `presence-cache-`, `private-encrypted-cache-` (Pusher
    "Cache channels"): the last event is kept CACHE_TTL_S and replayed to new subscribers."""
    return name.startswith(("cache-", "private-cache-", "presence-cache-",
                            "private-encrypted-cache-"))


def accepts_client_events(name: str) -> bool:
    """Client events go on `private-` and `presence-` channels only, never on
    `private-encrypted-` ones (the server cannot read them; Pusher "Client events")."""
    return channel_kind(name) in ("private", "presence")


def decode(text: Any) -> dict[str, Any]:
    """Parse a client frame; raises `ProtocolError` (non-fatal) for anything malformed or
    over MAX_PROTOCOL_FRAME_BYTES (UTF-8 bytes)."""
    if isinstance(text, bytes):
        raise ProtocolError(Errors.GENERIC, "Binary frames are not supported")
    # Cheap bound first (a character is at most 4 bytes), exact bytes only when close.
    if len(text) > MAX_PROTOCOL_FRAME_BYTES // 4 and \
            len(text.encode("utf-8", "surrogatepass")) > MAX_PROTOCOL_FRAME_BYTES:
        raise ProtocolError(Errors.FRAME_TOO_LARGE,
                            f"Frame over {MAX_PROTOCOL_FRAME_BYTES} bytes")
    try:
        frame = inputs.loads(text)
    except inputs.InputError as exc:
        raise ProtocolError(Errors.GENERIC, f"Frame is not usable JSON: {exc}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        raise ProtocolError(Errors.GENERIC, "Frame needs an 'event' string")
    data = frame.get("data")
    if isinstance(data, str) and frame["event"].startswith("pusher:"):
        # Some clients double-encode client→server data; accept both shapes.
        try:
            frame["data"] = inputs.loads(data)
        except inputs.InputError:
            pass
    return frame


def json_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON (a string counts as its own bytes: Pusher
    measures event data as the string it carries)."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogatepass"))
