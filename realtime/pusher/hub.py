"""The Pusher hub: apps, live sessions, the protocol state machine of one socket.

The WebSocket handler is thin (handlers/pusher.py): it hands each text frame to
`Session.on_frame` and calls `Session.on_close`; everything the protocol says lives here:
channel types (public, private, private-encrypted, presence, cache, server-to-user),
`pusher:signin`, client events and their rate limit, presence membership events, the cache
replay, and the webhook-worthy happenings told to `Hub` listeners.

Sources: the Pusher Channels protocol 7 and what the real clients (pusher-js 8, the official
Node and Python server libraries) enforce; tests/test_pusher_protocol.py and
tests/node/conformance.js check them.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from .. import inputs
from . import protocol as p
from .adapter import Adapter, Connection, LocalAdapter, run_inline
from .signing import channel_auth, derive_master_key, same, shared_secret, user_auth

log = logging.getLogger("wolive.realtime")


@dataclass(frozen=True)
class App:
    """One Pusher app: `id` (numeric string for the Python library), `key`, `secret`.

    `encryption_master_key` (32 bytes) keys `private-encrypted-` channels when wolive signs
    them itself (`/pusher/auth`); None means one derived from the secret
    (`signing.derive_master_key`)."""

    id: str
    key: str
    secret: str = field(repr=False)
    enabled: bool = True
    encryption_master_key: bytes | None = field(default=None, repr=False)

    def master_key(self) -> bytes:
        """The app's encryption master key (32 bytes)."""
        return self.encryption_master_key or derive_master_key(self.secret)


@dataclass(slots=True)
class Caller:
    """Who holds a socket, as far as the server knows: a logged-in agent or nobody."""

    service_id: int | None = None
    business_id: str | None = None


@dataclass(frozen=True)
class SignedInUser:
    """A socket's user after `pusher:signin`: `id` from the signed user_data, `user_data` the
    exact JSON string signed, `user_info` its optional `user_info` member."""

    id: str
    user_data: str
    user_info: Any = None


@dataclass(frozen=True)
class ChannelCounts:
    """What the HTTP API reports of one channel: sockets subscribed, and for a presence
    channel the distinct users (None for other channels)."""

    subscription_count: int
    user_count: int | None


ChannelPolicy = Callable[["Session", str], str | None]
"""policy(session, channel) → None to allow a public channel, or the reason to refuse."""

HubListener = Callable[["App", dict[str, Any]], None]
"""listener(app, event): told of every webhook-worthy happening, as a Pusher webhook event
dict (Pusher webhook docs), called synchronously on the socket's path: never block.

- {"name": "channel_occupied" | "channel_vacated", "channel"}
- {"name": "member_added" | "member_removed", "channel", "user_id"}: a user's first socket
  joined / last socket left a presence channel
- {"name": "client_event", "channel", "event", "data" (the JSON string sent on),
  "socket_id", "user_id" (presence channels only)}
- {"name": "cache_miss", "channel"}: a socket subscribed to a cache channel with nothing
  cached
"""


class _Joining:
    """A socket while it subscribes to one channel, as the adapter's list of the channel's
    sockets holds it: what is published to the channel meanwhile is kept in order (`held`)
    and sent after subscription_succeeded (and a cache channel's last event), not before
    (Pusher: a channel's events follow its subscription_succeeded)."""

    __slots__ = ("conn", "socket_id", "held")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.socket_id = conn.socket_id
        self.held: list[str] = []

    def send(self, frame: str) -> bool:
        self.held.append(frame)
        return True

    def close(self, code: int, reason: str) -> None:
        self.conn.close(code, reason)


class _Refused(Exception):
    """A subscription refused: sent as `pusher:subscription_error` {type, error, status}."""

    def __init__(self, reason: str, status: int, kind: str = "AuthError") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.kind = kind


class Hub:
    """Every app and socket of this process. Build once per server (wolive.make_app)."""

    def __init__(self, apps: list[App], adapter: Adapter | None = None,
                 policy: ChannelPolicy | None = None) -> None:
        self.apps_by_key = {a.key: a for a in apps}
        self.apps_by_id = {a.id: a for a in apps}
        self.default_app = apps[0]
        self.adapter = adapter or LocalAdapter()
        self.policy = policy
        self.sessions: dict[str, Session] = {}
        #: Sockets started (`Session.start`) per app id, for `realtime.metrics`.
        self.connections_opened: dict[str, int] = {}
        # (app id, user id) → the sessions signed in as that user (`pusher:signin`).
        self.users: dict[tuple[str, str], set[Session]] = {}
        self._listeners: list[HubListener] = []
        self.adapter.add_occupancy_listener(self._on_occupancy)
        self.adapter.add_member_gone_listener(self._on_member_gone)
        self.adapter.lost_listeners.append(self._on_lost)
        self.adapter.notice_listeners["terminate_user"] = self._terminate_here
        self.adapter.notice_listeners["close_caller"] = self._close_caller_here
        self.closing = False
        # Sessions' steps still running (an adapter that is not inline), for `settled`.
        self._steps: set[asyncio.Task[None]] = set()
        # socket_id = "<node>.<counter>": matches ^\d+\.\d+$ and never repeats within a
        # process. An adapter for several nodes gives the node a number unique among them
        # (`node`); alone, a random one keeps ids of two processes apart.
        node = getattr(self.adapter, "node", None)
        self._node = int(node) if node is not None else random.randint(1, 2**31 - 1)
        self._counter = itertools.count(random.randint(1, 1000))

    # ---- listeners (webhooks and the like) ----------------------------------------------

    def add_listener(self, listener: HubListener) -> None:
        """Register `listener` for every event listed in `HubListener`."""
        self._listeners.append(listener)

    def emit(self, app: App, event: dict[str, Any]) -> None:
        """Tell every listener; a failing listener is logged and never stops the others."""
        for listener in self._listeners:
            try:
                listener(app, event)
            except Exception:
                log.exception("hub listener failed on %s", event.get("name"),
                              extra={"app": app.id, "channel": event.get("channel")})

    def _on_occupancy(self, app_id: str, channel: str, occupied: bool) -> None:
        app = self.apps_by_id.get(app_id)
        if app is not None:
            event: dict[str, Any] = {"name": "channel_occupied" if occupied else "channel_vacated",
                     "channel": channel}
            if self.adapter.emitting_comeback:
                event["comeback"] = True
            self.emit(app, event)

    def _on_member_gone(self, app_id: str, channel: str, user_id: str) -> None:
        app = self.apps_by_id.get(app_id)
        if app is None:
            return
        self.adapter.publish(app_id, channel, p.encode(
            "pusher_internal:member_removed", {"user_id": user_id}, channel=channel))
        self.emit(app, {"name": "member_removed", "channel": channel, "user_id": user_id})

    def _on_lost(self) -> None:
        """The adapter cannot answer for the cluster: every socket is closed with 4200, so
        its client reconnects at once (to a healthy node) and catches up."""
        for s in list(self.sessions.values()):
            s.fail(p.Errors.SERVER_ERROR, "Node lost the cluster; please reconnect")

    def next_socket_id(self) -> str:
        """A fresh socket id, `^\\d+\\.\\d+$` as every server library checks."""
        # An adapter for several nodes may renumber its node (Redis lost its data and
        # another node took the number), so its number is read each time.
        return f"{getattr(self.adapter, 'node', None) or self._node}.{next(self._counter)}"

    # ---- server-side pushes -------------------------------------------------------------

    def trigger(self, channel: str, event: str, data: Any, app: App | None = None,
                except_socket_id: str | None = None) -> int:
        """Publish `event` with `data` (a JSON string, or anything JSON-encodable) on
        `channel`; returns the sockets reached on this node. On a cache channel the event
        is also kept for `CACHE_TTL_S` and replayed to later subscribers."""
        app = app or self.default_app
        frame = p.encode(event, data, channel=channel)
        if p.is_cache_channel(channel):
            self.adapter.cache_put(app.id, channel, event, frame, p.CACHE_TTL_S)
        return self.adapter.publish(app.id, channel, frame, except_socket_id)

    async def occupied(self, channel: str, app: App | None = None) -> bool:
        """True while at least one socket holds `channel`."""
        return await self.adapter.subscription_count((app or self.default_app).id,
                                                     channel) > 0

    # ---- queries (the HTTP API's answers) -----------------------------------------------

    async def counts(self, app: App, channel: str) -> ChannelCounts:
        """Sockets on `channel`, and distinct users when it is a presence channel."""
        users = (len(await self.adapter.members(app.id, channel))
                 if p.channel_kind(channel) == "presence" else None)
        return ChannelCounts(await self.adapter.subscription_count(app.id, channel), users)

    async def occupied_channels(self, app: App, prefix: str = "") -> dict[str, ChannelCounts]:
        """Occupied channels whose name starts with `prefix` (never the per-user
        `#server-to-user-` ones), with their counts."""
        out = {}
        for name in sorted(await self.adapter.channels(app.id, prefix)):
            if not name.startswith(p.SERVER_TO_USER_PREFIX):
                out[name] = await self.counts(app, name)
        return out

    async def members(self, app: App, channel: str) -> dict[str, Any]:
        """A presence channel's members, user_id → user_info, in joining order."""
        return await self.adapter.members(app.id, channel)

    # ---- signing for wolive's own auth endpoints ----------------------------------------

    @staticmethod
    def authorize_channel(app: App, socket_id: str, channel: str,
                          member: dict[str, Any] | None = None) -> dict[str, str]:
        """The answer of a channel authorization endpoint (Pusher "Authorizing users"):
        {"auth"} for a private channel, plus "channel_data" (the JSON string signed) for a
        presence channel (`member` = {"user_id", "user_info"}), plus "shared_secret"
        (base64) for a private-encrypted one."""
        channel_data = None
        if p.channel_kind(channel) == "presence":
            channel_data = json.dumps(member or {}, ensure_ascii=False,
                                      separators=(",", ":"))
        answer = {"auth": channel_auth(app.key, app.secret, socket_id, channel, channel_data)}
        if channel_data is not None:
            answer["channel_data"] = channel_data
        if p.channel_kind(channel) == "private-encrypted":
            answer["shared_secret"] = base64.b64encode(
                shared_secret(channel, app.master_key())).decode("ascii")
        return answer

    @staticmethod
    def authenticate_user(app: App, socket_id: str, user: dict[str, Any]) -> dict[str, str]:
        """The answer of a user authentication endpoint: {"auth", "user_data"} where
        user_data is the JSON string of `user` ({"id", "user_info"?, ...}) that was signed."""
        user_data = json.dumps(user, ensure_ascii=False, separators=(",", ":"))
        return {"auth": user_auth(app.key, app.secret, socket_id, user_data),
                "user_data": user_data}

    # ---- users --------------------------------------------------------------------------

    def terminate_user(self, app: App, user_id: str) -> int:
        """Close every socket of `app` signed in as `user_id` with 4009 (pusher-js does not
        reconnect), on every node; returns how many were closed on this node."""
        self.adapter.broadcast("terminate_user", [app.id, user_id])
        return self._terminate_here([app.id, user_id])

    def _terminate_here(self, payload: Any) -> int:
        app_id, user_id = payload
        sessions = list(self.users.get((app_id, user_id), ()))
        for s in sessions:
            s.fail(p.Errors.TERMINATED)
        return len(sessions)

    def close_caller(self, service_id: int, error: p.ErrorCode) -> int:
        """Close every socket opened with agent `service_id`'s session (its `Caller`), on
        every node, sending `error` (fatal: `pusher:error`, then the close with its code);
        the channels it held are left as on any close. Returns how many were closed on
        this node."""
        self.adapter.broadcast("close_caller", [service_id, error.code, error.message])
        return self._close_caller_here([service_id, error.code, error.message])

    def _close_caller_here(self, payload: Any) -> int:
        service_id, code, message = payload
        error = p.ErrorCode(int(code), str(message), True)
        sessions = [s for s in self.sessions.values() if s.caller.service_id == service_id]
        for s in sessions:
            s.fail(error)
        return len(sessions)

    def _signed_in(self, session: Session, old: SignedInUser | None) -> None:
        if old is not None:
            self._signed_out(session, old)
        if session.user is not None:
            self.users.setdefault((session.app.id, session.user.id), set()).add(session)

    def _signed_out(self, session: Session, user: SignedInUser) -> None:
        key = (session.app.id, user.id)
        held = self.users.get(key)
        if held is not None:
            held.discard(session)
            if not held:
                del self.users[key]

    # ---- life ---------------------------------------------------------------------------

    def sweep(self, now: float | None = None) -> int:
        """Close sockets silent for longer than activity_timeout + grace with 4201.
        `now` is `time.monotonic()` seconds (tests pass a later one)."""
        now = now if now is not None else time.monotonic()
        limit = p.ACTIVITY_TIMEOUT_S + p.DEAD_SOCKET_GRACE_S
        dead = [s for s in self.sessions.values() if now - s.last_seen > limit]
        for s in dead:
            s.fail(p.Errors.PONG_NOT_RECEIVED)
        return len(dead)

    async def settled(self) -> None:
        """Wait until every socket's received frames and closes have been handled (with an
        adapter that is not inline they run as tasks): after `shutdown`, every channel
        has been left and its events decided."""
        while self._steps:
            await asyncio.wait(list(self._steps))

    def shutdown(self) -> None:
        """Refuse new sockets and close open ones with 4200 so clients reconnect at once."""
        self.closing = True
        for s in list(self.sessions.values()):
            s.fail(p.Errors.SERVER_SHUTDOWN)


@dataclass(eq=False, slots=True)
class Session:
    """The protocol state of one socket (Pusher protocol 7). One per open socket, so
    `__slots__` and nothing allocated before it is needed (the client-event window).

    A socket's frames, and its close, are handled one after the other in arrival order
    (a client event right after a subscribe sees the channel). With an `inline` adapter
    each runs to its end in the caller's stack; otherwise each is a task that starts when
    the one before it has finished."""

    hub: Hub
    app: App
    conn: Connection
    caller: Caller = field(default_factory=Caller)
    channels: set[str] = field(default_factory=set)
    last_seen: float = field(default_factory=time.monotonic)
    closed: bool = False
    #: Set by a valid `pusher:signin`.
    user: SignedInUser | None = None
    #: Presence channels held → the user id this socket holds them as.
    presence_ids: dict[str, str] = field(default_factory=dict)
    #: When the last accepted client events were sent (`time.monotonic()` seconds); made
    #: on the first client event (most sockets never send one).
    _client_events: deque[float] | None = None
    #: The last step (frame or close) still to finish when the adapter is not inline.
    _tail: asyncio.Task[None] | None = None

    @property
    def socket_id(self) -> str:
        return self.conn.socket_id

    def start(self) -> None:
        """Register the session and send `pusher:connection_established`."""
        hub = self.hub
        hub.sessions[self.socket_id] = self
        opened = hub.connections_opened
        opened[self.app.id] = opened.get(self.app.id, 0) + 1
        self.conn.send(p.encode("pusher:connection_established", {
            "socket_id": self.socket_id, "activity_timeout": p.ACTIVITY_TIMEOUT_S}))

    def fail(self, error: p.ErrorCode, message: str | None = None) -> None:
        """Send `pusher:error`; a fatal error then closes the socket with the same code."""
        self.conn.send(p.error_frame(error.code, message or error.message))
        if error.fatal:
            self.conn.close(error.code, (message or error.message)[:120])
            self.on_close()

    def on_close(self) -> None:
        """The socket is gone: forget the signed-in user and leave every channel (presence
        members and occupancy are announced to the others), after any frame still being
        handled."""
        if self.closed:
            return
        self.closed = True
        self.hub.sessions.pop(self.socket_id, None)
        if self.user is not None:
            self.hub._signed_out(self, self.user)
        self._run(self._leave_all())

    async def _leave_all(self) -> None:
        # Every channel is left even when the cluster's store fails on one: the adapter
        # forgets the socket here at once and settles the store once it answers again.
        failed: BaseException | None = None
        for channel in list(self.channels):
            try:
                await self._leave(channel)
            except self.hub.adapter.unavailable_errors as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    def _run(self, step: Coroutine[Any, Any, None]) -> None:
        """Handle `step` after every step before it (class docstring)."""
        if self._tail is None and self.hub.adapter.inline:
            run_inline(step)
            return
        self._tail = task = asyncio.get_running_loop().create_task(
            self._after(self._tail, step))
        steps = self.hub._steps
        steps.add(task)
        task.add_done_callback(steps.discard)

    async def _after(self, before: asyncio.Task[None] | None,
                     step: Coroutine[Any, Any, None]) -> None:
        try:
            if before is not None:
                await asyncio.wait([before])
            await step
        except self.hub.adapter.unavailable_errors as exc:
            log.warning("socket %s: the cluster store is unavailable (%s); closing it",
                        self.socket_id, exc)
            if not self.closed:
                self.fail(p.Errors.SERVER_ERROR)
        except Exception:  # as the transport does for an inline step: the socket goes
            log.exception("socket %s: handling a frame failed", self.socket_id)
            if not self.closed:
                self.fail(p.Errors.SERVER_ERROR)
        finally:
            if self._tail is asyncio.current_task():
                self._tail = None

    async def settled(self) -> None:
        """Wait until every frame received so far (and the close) has been handled."""
        while self._tail is not None:
            await asyncio.wait([self._tail])

    def touch(self) -> None:
        """The client showed it is alive without a frame of ours (a WebSocket ping or
        pong): `sweep` counts it as activity."""
        self.last_seen = time.monotonic()

    def on_frame(self, text: Any) -> None:
        """Handle one client frame, in order with the others (class docstring); a malformed
        one gets `pusher:error`, never a close."""
        self.last_seen = time.monotonic()
        self._run(self._frame(text))

    async def _frame(self, text: Any) -> None:
        if self.closed:
            return
        try:
            frame = p.decode(text)
            event = frame["event"]
            if event == "pusher:ping":
                self.conn.send(p.encode("pusher:pong", {}))
            elif event == "pusher:pong":
                pass
            elif event == "pusher:subscribe":
                await self._subscribe(frame.get("data"))
            elif event == "pusher:unsubscribe":
                await self._leave(self._channel_of(frame.get("data")))
            elif event == "pusher:signin":
                await self._signin(frame.get("data"))
            elif event.startswith("client-"):
                self._client_event(frame)
            else:
                raise p.ProtocolError(p.Errors.GENERIC, f"Unsupported event {event[:64]!r}")
        except p.ProtocolError as exc:
            self.fail(exc.error, exc.message)

    # ---- subscriptions ------------------------------------------------------------------

    def _channel_of(self, data: Any) -> str:
        if not isinstance(data, dict):
            raise p.ProtocolError(p.Errors.GENERIC, "data must be an object")
        channel = data.get("channel")
        if not p.valid_channel_name(channel):
            raise p.ProtocolError(p.Errors.GENERIC, "Invalid channel name")
        return str(channel)

    def _deny(self, channel: str, reason: str, status: int = 403,
              kind: str = "AuthError") -> None:
        self.conn.send(p.encode("pusher:subscription_error",
                                {"type": kind, "error": reason, "status": status},
                                channel=channel))

    def _signed(self, channel: str, auth: Any, channel_data: str | None = None) -> bool:
        expected = channel_auth(self.app.key, self.app.secret, self.socket_id, channel,
                                channel_data)
        return isinstance(auth, str) and same(auth, expected)

    async def _subscribe(self, data: Any) -> None:
        channel = self._channel_of(data)
        if channel in self.channels:  # pusher-js never does this; answer as before
            await self._send_succeeded(channel)
            return
        kind = p.channel_kind(channel)
        member: tuple[str, Any] | None = None
        try:
            if kind == "server-to-user":
                wanted = channel[len(p.SERVER_TO_USER_PREFIX):]
                if self.user is None or self.user.id != wanted:
                    raise _Refused("only a socket signed in as this user may subscribe", 403)
            elif kind == "presence":
                member = await self._presence_member(channel, data)
            elif kind in ("private", "private-encrypted"):
                if not self._signed(channel, data.get("auth")):
                    raise _Refused("Invalid signature", 401)
            else:
                reason = self.hub.policy(self, channel) if self.hub.policy else None
                if reason:
                    raise _Refused(reason, 403)
        except _Refused as refused:
            self._deny(channel, refused.reason, refused.status, refused.kind)
            return
        adapter, app_id = self.hub.adapter, self.app.id
        self.channels.add(channel)
        joining = _Joining(self.conn)
        await adapter.subscribe(app_id, channel, joining)
        first = False
        if member is not None:
            self.presence_ids[channel] = member[0]
            first = await adapter.add_member(app_id, channel, self.socket_id, member[0],
                                             member[1])
        await self._send_succeeded(channel)
        if member is not None and first:
            adapter.publish(app_id, channel, p.encode(
                "pusher_internal:member_added", {"user_id": member[0], "user_info": member[1]},
                channel=channel), except_socket_id=self.socket_id)
            happening: dict[str, Any] = {"name": "member_added", "channel": channel,
                                         "user_id": member[0]}
            if adapter.member_comeback(app_id, channel, member[0]):
                happening["comeback"] = True
            self.hub.emit(self.app, happening)
        cache = p.is_cache_channel(channel)
        cached = await adapter.cache_get(app_id, channel) if cache else None
        adapter.joined(app_id, channel, self.conn)
        if cached is not None:
            # Kept meanwhile: it comes in its place among the others, not twice.
            if cached.frame not in joining.held:
                self.conn.send(cached.frame)
        elif cache:
            self.conn.send(p.encode("pusher:cache_miss", channel=channel))
            self.hub.emit(self.app, {"name": "cache_miss", "channel": channel})
        for frame in joining.held:
            self.conn.send(frame)
        joining.held = []

    async def _presence_member(self, channel: str, data: dict[str, Any]) -> tuple[str, Any]:
        """Check a presence subscribe; returns (user_id, user_info). The signature covers
        the raw `channel_data` string the client sent (the Python library puts spaces in its
        JSON, so re-encoding would break it). Without channel_data, a signed-in socket joins
        as its user (pusher-js 8 does this when `pusher.signin()` ran). Raises `_Refused`."""
        auth, raw = data.get("auth"), data.get("channel_data")
        if raw is None:
            if self.user is None:
                raise _Refused("channel_data is required (or sign in first)", 400)
            if not self._signed(channel, auth):
                raise _Refused("Invalid signature", 401)
            user_id, info = self.user.id, self.user.user_info
        else:
            if not isinstance(raw, str):
                raise _Refused("channel_data must be a JSON string", 400)
            if not self._signed(channel, auth, raw):
                raise _Refused("Invalid signature", 401)
            try:
                parsed = inputs.loads(raw)
            except inputs.InputError as exc:
                raise _Refused(f"channel_data is not usable JSON: {exc}", 400) from None
            uid = parsed.get("user_id") if isinstance(parsed, dict) else None
            if isinstance(uid, int) and not isinstance(uid, bool):
                uid = str(uid)
            if not isinstance(uid, str) or not uid or len(uid) > p.MAX_USER_ID:
                raise _Refused("channel_data needs a user_id (a string of 1-200)", 400)
            user_id, info = uid, parsed.get("user_info")
        if p.json_size(info) > p.MAX_USER_INFO_BYTES:
            raise _Refused(f"user_info is over {p.MAX_USER_INFO_BYTES} bytes", 413,
                           "LimitReached")
        members = await self.hub.adapter.members(self.app.id, channel)
        if user_id not in members and len(members) >= p.MAX_PRESENCE_MEMBERS:
            raise _Refused(f"presence channel is full ({p.MAX_PRESENCE_MEMBERS} members)",
                           403, "LimitReached")
        return user_id, info

    async def _send_succeeded(self, channel: str) -> None:
        data: dict[str, Any] = {}
        if channel in self.presence_ids:
            members = await self.hub.adapter.members(self.app.id, channel)
            data = {"presence": {"ids": list(members), "hash": members,
                                 "count": len(members)}}
        self.conn.send(p.encode("pusher_internal:subscription_succeeded", data,
                                channel=channel))

    async def _leave(self, channel: str) -> None:
        """Unsubscribe; on a presence channel, `member_removed` goes to the others when this
        was the user's last socket there (before `channel_vacated`)."""
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        adapter, app_id = self.hub.adapter, self.app.id
        try:
            if self.presence_ids.pop(channel, None) is not None:
                gone = await adapter.remove_member(app_id, channel, self.socket_id)
                if gone is not None:
                    adapter.publish(app_id, channel, p.encode(
                        "pusher_internal:member_removed", {"user_id": gone},
                        channel=channel), except_socket_id=self.socket_id)
                    self.hub.emit(self.app, {"name": "member_removed", "channel": channel,
                                             "user_id": gone})
        finally:  # left here even when the member could not be removed from the store
            await adapter.unsubscribe(app_id, channel, self.conn)

    # ---- user sign-in -------------------------------------------------------------------

    async def _signin(self, data: Any) -> None:
        """`pusher:signin` {auth, user_data}: auth signs `socket_id::user::user_data`;
        user_data is a JSON object with a string `id`. Answers `pusher:signin_success`
        {user_data}; a bad one gets a non-fatal 4009 `pusher:error`."""
        if not isinstance(data, dict) or not isinstance(data.get("auth"), str) or \
                not isinstance(data.get("user_data"), str):
            raise p.ProtocolError(p.Errors.SIGNIN_FAILED,
                                  "pusher:signin needs auth and user_data strings")
        raw = data["user_data"]
        if not same(data["auth"], user_auth(self.app.key, self.app.secret, self.socket_id,
                                            raw)):
            raise p.ProtocolError(p.Errors.SIGNIN_FAILED, "Sign-in refused: invalid signature")
        try:
            parsed = inputs.loads(raw)
        except inputs.InputError:
            parsed = None
        if not isinstance(parsed, dict) or not p.valid_user_id(parsed.get("id")):
            raise p.ProtocolError(p.Errors.SIGNIN_FAILED,
                                  "Sign-in refused: user_data needs an id of 1-200 "
                                  "channel-name characters")
        old = self.user
        if old is not None and old.id != parsed["id"]:
            await self._leave(p.SERVER_TO_USER_PREFIX + old.id)
        self.user = SignedInUser(parsed["id"], raw, parsed.get("user_info"))
        self.hub._signed_in(self, old)
        self.conn.send(p.encode("pusher:signin_success", {"user_data": raw}))

    # ---- client events ------------------------------------------------------------------

    def _client_event(self, frame: dict[str, Any]) -> None:
        """A `client-*` event from this socket to the others on the channel (Pusher "Client
        events"): only on a private- or presence- channel this socket holds, never echoed,
        `user_id` added on presence, data ≤ 10 KB, at most 10 per second (4301 beyond)."""
        event, channel = frame["event"], frame.get("channel")
        if not isinstance(channel, str) or channel not in self.channels:
            raise p.ProtocolError(p.Errors.CLIENT_EVENT_REJECTED,
                                  "Client event rejected: subscribe to the channel first")
        if not p.accepts_client_events(channel):
            raise p.ProtocolError(p.Errors.CLIENT_EVENT_REJECTED,
                                  "Client event rejected: only private- and presence- "
                                  "channels take client events")
        if len(event) > p.MAX_EVENT_NAME:
            raise p.ProtocolError(p.Errors.CLIENT_EVENT_REJECTED,
                                  "Client event rejected: event name over 200 characters")
        data = frame.get("data")
        if data is not None and p.json_size(data) > p.MAX_EVENT_DATA_BYTES:
            raise p.ProtocolError(p.Errors.CLIENT_EVENT_REJECTED,
                                  "Client event rejected: data over 10 KB")
        now = time.monotonic()
        window = self._client_events
        if window is None:
            window = self._client_events = deque()
        while window and now - window[0] >= p.CLIENT_EVENT_WINDOW_S:
            window.popleft()
        if len(window) >= p.MAX_CLIENT_EVENTS_PER_WINDOW:
            raise p.ProtocolError(p.Errors.CLIENT_EVENT_RATE_LIMIT)
        window.append(now)
        user_id = self.presence_ids.get(channel)
        out = p.encode(event, data, channel=channel, user_id=user_id)
        # Relayed at once, not by a write window (the connection's `relaying()`, when it
        # has one).
        relaying = getattr(self.conn, "relaying", None)
        with relaying() if relaying is not None else contextlib.nullcontext():
            self.hub.adapter.publish(self.app.id, channel, out,
                                     except_socket_id=self.socket_id)
        happening: dict[str, Any] = {
            "name": "client_event", "channel": channel, "event": event,
            "data": data if isinstance(data, str) or data is None else dumps(data),
            "socket_id": self.socket_id}
        if user_id is not None:
            happening["user_id"] = user_id
        self.hub.emit(self.app, happening)


def dumps(data: Any) -> str:
    """Compact JSON, UTF-8 kept as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
