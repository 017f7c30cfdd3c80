"""The channel registry and fan-out, behind an interface.

`LocalAdapter` keeps everything in this process. An adapter for several nodes answers
membership, presence, cache and channel queries for the whole cluster, so those methods are
coroutines: a session awaits them and handles its frames in order (`realtime.pusher.hub.Session`).
`publish` stays a plain call: it delivers to this node's sockets at once and hands the frame
on to the other nodes without waiting.

`LocalAdapter`'s coroutines finish without ever suspending (`Adapter.inline`), so a caller
may run them to the end in its own stack with `run_inline`: one socket's frames are then
handled as they arrive, with no task per frame.
"""
from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

log = logging.getLogger("wolive.realtime")

_UNSET = object()
T = TypeVar("T")


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (an `inline` adapter's, or one awaiting only
    those) to its end in the caller's stack and return its result; its exceptions
    propagate. Raises RuntimeError (and closes the coroutine) if it does suspend: that
    coroutine needs the event loop, and awaiting it is the caller's job."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("run_inline: the coroutine suspended; await it instead")


class Connection(Protocol):
    """What the realtime layer needs of a socket; the WebSocket handler provides it.

    Optional fast path for fan-out (docs/performance.md): a connection class may also
    define `prepare_frame(frame: str) -> object` as a static method, giving the frame in
    the form its sockets put on the wire (for a WebSocket: header + UTF-8 payload, the same
    bytes for every subscriber, since server frames are unmasked), and
    `send_prepared(prepared: object) -> bool`, with `send`'s meaning. `publish` then
    prepares a frame once per connection class instead of once per socket. A class without
    them is sent to with `send` as before.
    """

    socket_id: str

    def send(self, frame: str) -> bool:
        """Queue one text frame; False when the socket is already closed."""

    def close(self, code: int, reason: str) -> None:
        """Close with a Pusher close code."""


OccupancyListener = Callable[[str, str, bool], None]
"""Called as listener(app_id, channel, occupied) when a channel gains its first subscriber
(True) or loses its last one (False)."""

MemberGoneListener = Callable[[str, str, str], None]
"""Called as listener(app_id, channel, user_id) when the adapter itself removed a user's last
socket from a presence channel (the sockets of a node that died), so that the others are
told (`pusher_internal:member_removed`, the webhook)."""


@dataclass(frozen=True)
class CachedEvent:
    """The last event of a cache channel: the frame as sent, and when it stops counting
    (`time.monotonic()` seconds)."""

    event: str
    frame: str
    expires_at: float


#: Cache channels remembered per app at most; past it the oldest entry is forgotten, so an
#: API caller cannot grow memory without bound by publishing to ever new names.
MAX_CACHED_CHANNELS_PER_APP = 10_000


class Adapter(ABC):
    """Channel membership and delivery for every app on this server (or cluster)."""

    #: True when every coroutine of this adapter finishes without suspending, so callers
    #: may use `run_inline` instead of a task (the in-process adapter).
    inline: bool = False
    #: Exceptions meaning the adapter's shared store cannot be reached (an outage, not a
    #: bug): a socket whose step meets one is closed with a reconnect code and a warning.
    unavailable_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._listeners: list[OccupancyListener] = []
        self._member_gone: list[MemberGoneListener] = []
        #: Called with no argument when this node can no longer give cluster-wide answers
        #: (lost its shared store, or was taken for dead): the hub closes its sockets with a
        #: reconnect code so clients reconnect, to a healthy node, and catch up.
        self.lost_listeners: list[Callable[[], None]] = []
        #: True while occupancy listeners hear of an "occupied" that took back a
        #: "vacated" held on another node (`Hub` marks its webhook event a comeback).
        self.emitting_comeback = False
        #: Per kind, what to do when another node `broadcast`s a notice of that kind:
        #: listener(payload).
        self.notice_listeners: dict[str, Callable[[Any], object]] = {}
        #: Per app id: publishes (`publish` calls, to an empty channel too) and the frames
        #: they handed to sockets; plain integers, read by `realtime.metrics` when scraped
        #: (one addition per publish, nothing per delivered frame).
        self.published: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        #: With several nodes: told, on the node that removed a dead node, of each webhook
        #: event the dead node had journaled and not delivered: listener(app_id, event).
        self.journal_listeners: list[Callable[[str, dict[str, Any]], None]] = []

    def add_occupancy_listener(self, listener: OccupancyListener) -> None:
        self._listeners.append(listener)

    def member_comeback(self, app_id: str, channel: str, user_id: str) -> bool:
        """Whether the `add_member` that just made `user_id` a member again took back a
        `member_removed` held on another node (asked once, right after `add_member`)."""
        return False

    async def release_hold(self, app_id: str, event: Any) -> bool:
        """Whether a held `channel_vacated` / `member_removed` still stands when its hold
        is up (no comeback anywhere took it back). Alone: this node's hold says it all."""
        return True

    def journal_add(self, app_id: str, event: dict[str, Any]) -> str | None:
        """Note a webhook event this node has yet to deliver, so that if the node dies the
        node that removes it delivers it (`journal_listeners`); returns the entry's token
        for `journal_remove`. Alone: None (a process that dies takes its queue along)."""
        return None

    def journal_remove(self, token: str) -> None:
        """The event noted under `token` was delivered or given up on."""

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Hold `key`'s turn across the cluster while writing something and publishing it,
        so that publishes made in turns of one key reach every socket in the order the
        turns were taken (a conversation's messages in cid order, `realtime.ordering`).
        Alone, the caller's own per-process lock is enough: this yields at once."""
        yield

    def sent_mark(self) -> int:
        """A mark for `flushed(since=...)`: how many publishes were handed on so far."""
        return 0

    def problem(self) -> str | None:
        """Why this node cannot serve its part of the cluster now (it hears no other
        node's publishes, or cannot reach the shared store), for `/readyz`; None when it
        can. Alone, nothing stands in the way."""
        return None

    async def flushed(self, since: int | None = None) -> None:
        """Return once the publishes made so far have reached every node. With `since` (a
        `sent_mark()`), raises one of `unavailable_errors` when one made after the mark
        could not be sent. Alone, a publish is delivered when made: returns at once."""

    def broadcast(self, kind: str, payload: Any) -> None:
        """Tell every other node (its `notice_listeners[kind]`) of something only each
        node can act on for its own sockets (closing a user's sockets, say); `payload`
        is JSON-encodable. Alone, there is nobody else to tell."""

    def _notice(self, kind: str, payload: Any) -> None:
        listener = self.notice_listeners.get(kind)
        if listener is None:
            log.warning("a notice of unknown kind %r from another node", kind)
            return
        try:
            listener(payload)
        except Exception:
            log.exception("notice listener failed for %s", kind)

    def add_member_gone_listener(self, listener: MemberGoneListener) -> None:
        self._member_gone.append(listener)

    def _emit_member_gone(self, app_id: str, channel: str, user_id: str) -> None:
        for listener in self._member_gone:
            try:
                listener(app_id, channel, user_id)
            except Exception:
                log.exception("member listener failed for %s", channel,
                              extra={"app": app_id, "channel": channel})

    def _emit_lost(self) -> None:
        for listener in self.lost_listeners:
            try:
                listener()
            except Exception:
                log.exception("lost listener failed")

    def _emit(self, app_id: str, channel: str, occupied: bool) -> None:
        for listener in self._listeners:
            try:
                listener(app_id, channel, occupied)
            except Exception:  # a broken listener must not break subscribing
                log.exception("occupancy listener failed for %s", channel,
                              extra={"app": app_id, "channel": channel})

    @abstractmethod
    async def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        """Add `conn` to `channel`; True when it was not subscribed before."""

    @abstractmethod
    def joined(self, app_id: str, channel: str, conn: Connection) -> None:
        """`conn` was subscribed through a stand-in of the same socket_id (one that keeps
        what is published meanwhile, so nothing reaches the socket before its
        subscription_succeeded); publishes go to `conn` itself from now on. Nothing when
        the socket is no longer subscribed."""

    @abstractmethod
    async def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        """Remove `conn` from `channel`; True when it was subscribed."""

    @abstractmethod
    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: str | None = None) -> int:
        """Send an encoded frame to every subscriber but `except_socket_id`; returns how many
        sockets took it. A closed socket is dropped and delivery goes on."""

    @abstractmethod
    async def subscription_count(self, app_id: str, channel: str) -> int:
        """Sockets subscribed to `channel`."""

    @abstractmethod
    async def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        """Occupied channels of the app whose name starts with `prefix`, with socket counts."""

    @abstractmethod
    def local_channels(self, app_id: str) -> dict[str, int]:
        """This node's occupied channels of the app with its own socket counts (what
        `realtime.metrics` reports per node); answered at once."""

    # ---- presence membership (Pusher "Presence channels") -------------------------------

    @abstractmethod
    async def add_member(self, app_id: str, channel: str, socket_id: str, user_id: str,
                   user_info: Any) -> bool:
        """Record `socket_id` as `user_id` on a presence channel; True when the user was not
        a member before (the moment `member_added` is due). A user's first `user_info`
        stays until it leaves."""

    @abstractmethod
    async def remove_member(self, app_id: str, channel: str, socket_id: str) -> str | None:
        """Forget `socket_id` on a presence channel; returns the user id when that was its
        last socket (the moment `member_removed` is due), else None."""

    @abstractmethod
    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        """The members of a presence channel, user_id → user_info, in joining order."""

    # ---- cache channels (Pusher "Cache channels") ---------------------------------------

    @abstractmethod
    def cache_put(self, app_id: str, channel: str, event: str, frame: str,
                  ttl_s: float) -> None:
        """Remember `frame` (event `event`) as the channel's last event for `ttl_s` seconds."""

    @abstractmethod
    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        """The channel's unexpired last event, or None."""


class LocalAdapter(Adapter):
    """In-process registry: one dict per app, channel → {socket_id: connection}."""

    inline = True

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._apps: dict[str, dict[str, dict[str, Connection]]] = {}
        # (app_id, channel) → user_id → (user_info, socket ids); insertion-ordered.
        self._members: dict[tuple[str, str], dict[str, tuple[Any, set[str]]]] = {}
        # (app_id, channel, socket_id) → user_id
        self._member_of: dict[tuple[str, str, str], str] = {}
        self._cache: dict[str, OrderedDict[str, CachedEvent]] = {}
        #: Seconds, monotonic: when cached events expire (tests move it forward).
        self.clock = clock

    async def subscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        chans = self._apps.setdefault(app_id, {})
        members = chans.get(channel)
        if members is None:
            members = chans[channel] = {}
        if conn.socket_id in members:
            return False
        members[conn.socket_id] = conn
        if len(members) == 1:
            self._emit(app_id, channel, True)
        return True

    def joined(self, app_id: str, channel: str, conn: Connection) -> None:
        members = self._apps.get(app_id, {}).get(channel)
        if members is not None and conn.socket_id in members:
            members[conn.socket_id] = conn

    async def unsubscribe(self, app_id: str, channel: str, conn: Connection) -> bool:
        left = self._forget_local(app_id, channel, conn)
        if left is None:
            return False
        if left:
            self._emit(app_id, channel, False)
        return True

    def _forget_local(self, app_id: str, channel: str, conn: Connection) -> bool | None:
        """Take `conn` off this node's list of `channel`: None when it was not on it, else
        whether the list is now empty (and dropped)."""
        chans = self._apps.get(app_id, {})
        members = chans.get(channel)
        if not members or members.pop(conn.socket_id, None) is None:
            return None
        if members:
            return False
        del chans[channel]
        return True

    def publish(self, app_id: str, channel: str, frame: str,
                except_socket_id: str | None = None) -> int:
        members = self._apps.get(app_id, {}).get(channel)
        published = self.published
        published[app_id] = published.get(app_id, 0) + 1
        if not members:
            return 0
        sent = 0
        # Wire form of the frame per connection class (None: that class has no fast path);
        # the last class seen is kept apart, since a channel's sockets are nearly always of
        # one class and an `is` test is cheaper than a dict lookup (~30 ns a socket, bench/).
        prepared: dict[type, Any] = {}
        last_cls: type | None = None
        wire: Any = None
        # A copy: a send may close a socket, and closing unsubscribes it from `members`.
        for socket_id, conn in list(members.items()):
            if socket_id == except_socket_id:
                continue
            cls = conn.__class__
            if cls is not last_cls:
                wire = prepared.get(cls, _UNSET)
                if wire is _UNSET:
                    prepare = getattr(cls, "prepare_frame", None)
                    wire = prepared[cls] = prepare(frame) if prepare is not None else None
                last_cls = cls
            if conn.send(frame) if wire is None else \
                    conn.send_prepared(wire):  # type: ignore[attr-defined]
                sent += 1
        delivered = self.delivered
        delivered[app_id] = delivered.get(app_id, 0) + sent
        return sent

    async def subscription_count(self, app_id: str, channel: str) -> int:
        return len(self._apps.get(app_id, {}).get(channel, ()))

    async def channels(self, app_id: str, prefix: str = "") -> dict[str, int]:
        return {name: len(members) for name, members in self._apps.get(app_id, {}).items()
                if name.startswith(prefix)}

    def local_channels(self, app_id: str) -> dict[str, int]:
        return {name: len(members) for name, members in self._apps.get(app_id, {}).items()}

    async def add_member(self, app_id: str, channel: str, socket_id: str, user_id: str,
                   user_info: Any) -> bool:
        key = (app_id, channel, socket_id)
        if key in self._member_of:
            return False
        self._member_of[key] = user_id
        users = self._members.setdefault((app_id, channel), {})
        entry = users.get(user_id)
        if entry is None:
            users[user_id] = (user_info, {socket_id})
            return True
        entry[1].add(socket_id)
        return False

    async def remove_member(self, app_id: str, channel: str, socket_id: str) -> str | None:
        user_id = self._member_of.pop((app_id, channel, socket_id), None)
        if user_id is None:
            return None
        users = self._members.get((app_id, channel), {})
        entry = users.get(user_id)
        if entry is None:
            return None
        entry[1].discard(socket_id)
        if entry[1]:
            return None
        del users[user_id]
        if not users:
            self._members.pop((app_id, channel), None)
        return user_id

    async def members(self, app_id: str, channel: str) -> dict[str, Any]:
        return {uid: info for uid, (info, _) in self._members.get((app_id, channel), {}).items()}

    def cache_put(self, app_id: str, channel: str, event: str, frame: str,
                  ttl_s: float) -> None:
        entries = self._cache.setdefault(app_id, OrderedDict())
        entries.pop(channel, None)
        now = self.clock()
        entries[channel] = CachedEvent(event, frame, now + ttl_s)
        # Oldest first: drop expired entries, then the oldest while over the bound.
        while entries:
            first = next(iter(entries.values()))
            if first.expires_at > now and len(entries) <= MAX_CACHED_CHANNELS_PER_APP:
                break
            entries.popitem(last=False)

    async def cache_get(self, app_id: str, channel: str) -> CachedEvent | None:
        entries = self._cache.get(app_id)
        entry = entries.get(channel) if entries is not None else None
        if entries is None or entry is None:
            return None
        if entry.expires_at <= self.clock():
            del entries[channel]
            return None
        return entry
