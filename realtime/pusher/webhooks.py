"""Pusher webhooks: POST what happens on channels to the URLs each app configures.

Wire format (Pusher Channels "Webhooks", and what the official server libraries accept)::

    POST <url>
    Content-Type: application/json        exactly: the Node library rejects "; charset=..."
    X-Pusher-Key: <app key>
    X-Pusher-Signature: hex HMAC-SHA256(app secret, raw body)

    {"time_ms": <int, ms since the epoch>, "events": [<event>, ...]}

Events are the hub's (`Hub.add_listener`, see `realtime.pusher.hub.HubListener`) and pass through
unchanged: ``{"name": "channel_occupied" | "channel_vacated", "channel"}``,
``{"name": "member_added" | "member_removed", "channel", "user_id"}``,
``{"name": "client_event", "channel", "event", "data", "socket_id", "user_id"?}``,
``{"name": "cache_miss", "channel"}``,
``{"name": "subscription_count", "channel", "subscription_count"}``.

The path of an event:

1. `Webhooks.on_event` runs on the socket's own path, so it only touches dicts and timers
   (with several nodes the hold is the cluster's: `release_check` asks, when the time is
   up, whether a comeback on another node took the event back, and a comeback event marked
   `"comeback": true` — one whose held event was on another node — is dropped here):
   `channel_vacated` / `member_removed` are held `grace_s` (3 s); a `channel_occupied` /
   `member_added` for the same channel / member inside that time cancels the held event and
   is itself dropped, so a page reload sends nothing (Pusher support, "Why is my server not
   receiving webhooks": "If a user disconnects and then reconnects within 3 seconds,
   neither event will be delivered").
2. Everything else, and held events when their time is up, go to a bounded queue per
   webhook URL (`QUEUE_MAX_EVENTS`; the oldest are dropped first, with a warning).
3. One worker task per URL, started on the first event, waits `batch_window_s` so events
   due together share a POST (at most `BATCH_MAX_EVENTS`), then POSTs with its own
   `AsyncHTTPClient`. A non-2xx answer, a timeout or a connection failure is retried with
   exponential backoff (`retry_base_s`, doubling, capped at `RETRY_MAX_DELAY_S`) for
   `retry_window_s` (5 minutes), then the batch is dropped with a warning (Pusher support,
   "Channels webhook timeouts and retries"). Order per URL is kept: later events wait.

Each attempt is stamped and signed afresh: `time_ms` is the time of the attempt, because
the official Python validator refuses a body more than 300 s from its clock and retries
run for up to 300 s.

Legacy mode (`WebhookTarget.legacy_names`): WoLive's own pusher sent `channel_added` /
`channel_removed` for occupied / vacated and `time_ms` in float seconds to `/admin/event`,
whose handler checks only the signature (docs/api.md, "Presence webhooks"). Such a target gets
those names and that `time_ms`; every other detail is the same.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from collections.abc import Awaitable, Callable
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .hub import App
from .signing import hmac_sha256_hex

log = logging.getLogger("wolive.webhooks")

#: How long `channel_vacated` / `member_removed` are held, cancelled by a comeback within
#: it: a page reload is not an offline/online flap (Pusher's documented 3 s debounce).
VACATE_GRACE_S = 3.0
#: Events arriving within this time of the first share one POST (Pusher batches ≤ 250 ms).
BATCH_WINDOW_S = 0.25
#: Most events in one POST (Pusher's batch size: 20 events).
BATCH_MAX_EVENTS = 20
#: A failing batch is retried for this long, then dropped with a warning (Pusher: 5 min).
RETRY_WINDOW_S = 300.0
#: Wait before the first retry (seconds); it doubles with every failed attempt.
RETRY_BASE_S = 1.0
#: Longest wait between two attempts (seconds), so a receiver back up is reached soon.
RETRY_MAX_DELAY_S = 60.0
#: Waits are stretched by a random 0-25 % so many servers do not retry in lock step.
RETRY_JITTER = 0.25
#: Longest one POST may take, connect included (seconds): Pusher asks receivers to answer
#: within 4 s; a slower answer counts as a failure and is retried.
REQUEST_TIMEOUT_S = 4.0
#: Undelivered events kept per webhook URL; beyond it the oldest go, so a receiver that is
#: down cannot grow the server's memory without bound (~10k small dicts, a few MB).
QUEUE_MAX_EVENTS = 10_000
#: At most one "queue full" warning per URL in this many seconds, so overflow cannot flood
#: the log; the warning carries the count dropped since the last one.
DROP_WARN_INTERVAL_S = 60.0
#: How long shutdown (`Webhooks.close`, from `Wolive.stop`) lets queued POSTs finish.
SHUTDOWN_DRAIN_S = 2.0

#: Pusher's webhook event names (Pusher Channels "Webhooks").
EVENT_NAMES = ("channel_occupied", "channel_vacated", "member_added", "member_removed",
               "client_event", "cache_miss", "subscription_count")
#: WoLive's names for the same events (its pusher and its `/admin/event` handler).
LEGACY_NAMES = {"channel_occupied": "channel_added", "channel_vacated": "channel_removed"}
#: Held events and the comeback events that cancel them.
_HELD = {"channel_vacated": "channel", "member_removed": "member"}
_COMEBACK = {"channel_occupied": "channel", "member_added": "member"}
_TARGET_KEYS = ("url", "events", "legacy_names")
USER_AGENT = "wolive-webhooks"


class WebhookConfigError(ValueError):
    """A bad `webhooks` entry; the message starts with the key, e.g.
    ``webhooks[0].url: must be an http:// or https:// URL``."""


@dataclass(frozen=True)
class WebhookTarget:
    """One URL to POST an app's webhooks to.

    `events`: the Pusher event names it wants (None: all); `legacy_names`: WoLive's names
    and float-seconds `time_ms` (module docstring)."""

    url: str
    events: Optional[frozenset[str]] = None
    legacy_names: bool = False

    def wants(self, name: str) -> bool:
        return self.events is None or name in self.events

    def to_config(self) -> dict[str, Any]:
        """The config mapping this target was read from, defaults filled in."""
        return {"url": self.url,
                "events": None if self.events is None else sorted(self.events),
                "legacy_names": self.legacy_names}


def parse_webhooks(raw: Any) -> list[WebhookTarget]:
    """Check an app's `webhooks` config: a list of ``{url, events?, legacy_names?}``.

    `url` must be http(s) with a host; `events`, when given, a non-empty list of
    `EVENT_NAMES` (WoLive's `channel_added` / `channel_removed` are accepted for
    occupied / vacated); `legacy_names` a bool (default false). Raises
    `WebhookConfigError` naming the key, e.g. ``webhooks[1].events: unknown event 'x'``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise WebhookConfigError("webhooks: must be a list")
    aliases = {v: k for k, v in LEGACY_NAMES.items()}
    out = []
    for i, entry in enumerate(raw):
        where = f"webhooks[{i}]"
        if not isinstance(entry, Mapping):
            raise WebhookConfigError(f"{where}: must be a mapping with a url")
        for k in entry:
            if k not in _TARGET_KEYS:
                raise WebhookConfigError(f"{where}.{k}: unknown key")
        url = entry.get("url")
        if not isinstance(url, str) or not _is_http_url(url):
            raise WebhookConfigError(f"{where}.url: must be an http:// or https:// URL")
        events = entry.get("events")
        wanted: Optional[frozenset[str]] = None
        if events is not None:
            if not isinstance(events, list) or not events:
                raise WebhookConfigError(f"{where}.events: must be a non-empty list of event "
                                         "names (leave it out for all)")
            names = set()
            for name in events:
                name = aliases.get(name, name) if isinstance(name, str) else name
                if name not in EVENT_NAMES:
                    raise WebhookConfigError(f"{where}.events: unknown event {name!r} (one of "
                                             f"{', '.join(EVENT_NAMES)})")
                names.add(name)
            wanted = frozenset(names)
        legacy = entry.get("legacy_names", False)
        if not isinstance(legacy, bool):
            raise WebhookConfigError(f"{where}.legacy_names: must be true or false")
        out.append(WebhookTarget(url=url, events=wanted, legacy_names=legacy))
    return out


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError when the port is not a number 0-65535
    except ValueError:  # e.g. "http://[::1" or a port that is not a number
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def encode_body(events: Sequence[Mapping[str, Any]], legacy_names: bool = False,
                now: Optional[float] = None) -> bytes:
    """The POST body: compact UTF-8 JSON ``{"time_ms", "events"}``. `now` is epoch seconds
    (default: the clock); `time_ms` is int milliseconds, or float seconds in legacy mode."""
    now = time.time() if now is None else now
    if legacy_names:
        events = [{**e, "name": LEGACY_NAMES.get(e["name"], e["name"])} for e in events]
        stamp: float = now
    else:
        stamp = int(now * 1000)
    return json.dumps({"time_ms": stamp, "events": list(events)}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def signed_headers(app: App, body: bytes) -> dict[str, str]:
    """`Content-Type` (exact), `X-Pusher-Key`, `X-Pusher-Signature` for `body`."""
    return {"Content-Type": "application/json", "X-Pusher-Key": app.key,
            "X-Pusher-Signature": hmac_sha256_hex(app.secret, body)}


def _shown(url: str) -> str:
    """The URL for logs, without any user:password."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


class _Delivery:
    """The queue and worker of one webhook URL of one app."""

    def __init__(self, owner: "Webhooks", app: App, target: WebhookTarget) -> None:
        self.owner = owner
        self.app = app
        self.target = target
        self.queue: deque[dict[str, Any]] = deque()
        self.in_flight = 0
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.task: Optional[asyncio.Task[None]] = None
        # subscription_count events not yet taken into a POST, by channel: a newer count
        # replaces the queued one instead of queueing behind it (only the latest matters).
        self._counts: dict[str, dict[str, Any]] = {}
        self._dropped = 0
        self._last_drop_warning = -math.inf
        # Journal tokens (`Webhooks.journal`) of queued items, by the item's id().
        self._tokens: dict[int, str] = {}

    def put(self, event: Mapping[str, Any], token: str | None = None) -> None:
        if event["name"] == "subscription_count":
            queued = self._counts.get(event.get("channel", ""))
            if queued is not None:
                queued.update(event)
                return
        if len(self.queue) >= self.owner.queue_max_events:
            self._forget(self.queue.popleft(), dropped=True)
            self._dropped += 1
            now = time.monotonic()
            if now - self._last_drop_warning >= DROP_WARN_INTERVAL_S:
                log.warning("webhook %s: queue full (%d events), dropping the oldest: %d "
                            "dropped since the last such warning", _shown(self.target.url),
                            self.owner.queue_max_events, self._dropped,
                            extra={"app": self.app.id})
                self._dropped = 0
                self._last_drop_warning = now
        item = dict(event)
        self.queue.append(item)
        if token is not None:
            self._tokens[id(item)] = token
        if item["name"] == "subscription_count":
            self._counts[item.get("channel", "")] = item
        self.idle.clear()
        self.wake.set()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())

    def _forget(self, item: dict[str, Any], dropped: bool = False) -> str | None:
        """`item` leaves the queue (into a batch, or `dropped`); returns its journal
        token (a dropped item's is settled here)."""
        if item["name"] == "subscription_count" and \
                self._counts.get(item.get("channel", "")) is item:
            del self._counts[item.get("channel", "")]
        token = self._tokens.pop(id(item), None)
        if dropped and token is not None:
            self.owner.settled(token)
            return None
        return token

    async def _run(self) -> None:
        while True:
            if not self.queue:
                self.idle.set()
                self.wake.clear()
                await self.wake.wait()
                continue
            window = self.owner.batch_window_s
            if window > 0 and not self.owner.closing and len(self.queue) < BATCH_MAX_EVENTS:
                await asyncio.sleep(window)
            batch: list[dict[str, Any]] = []
            tokens: list[str] = []
            while self.queue and len(batch) < BATCH_MAX_EVENTS:
                item = self.queue.popleft()
                token = self._forget(item)
                if token is not None:
                    tokens.append(token)
                batch.append(item)
            self.in_flight = len(batch)
            try:
                await self._deliver(batch)
            except Exception:  # a bug here must not stop this URL's deliveries for good
                log.exception("webhook %s: delivery failed; %d event(s) dropped",
                              _shown(self.target.url), len(batch), extra={"app": self.app.id})
                self.owner.count(self.app.id, "failed")
            finally:
                self.in_flight = 0
            # Delivered or given up on (not when cancelled: a node stopped in the middle
            # leaves them journaled).
            for token in tokens:
                self.owner.settled(token)

    async def _deliver(self, batch: list[dict[str, Any]]) -> None:
        """POST `batch` until a 2xx or `retry_window_s` has passed since the first try."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            attempt += 1
            problem = await self._post(batch)
            if problem is None:
                self.owner.count(self.app.id, "delivered")
                return
            delay = min(self.owner.retry_base_s * 2 ** (attempt - 1), RETRY_MAX_DELAY_S)
            delay *= 1 + random.random() * RETRY_JITTER
            if loop.time() + delay - started > self.owner.retry_window_s:
                log.warning("webhook %s: dropped %d event(s) after %d attempt(s) over %.1f s;"
                            " last failure: %s", _shown(self.target.url), len(batch), attempt,
                            loop.time() - started, problem, extra={"app": self.app.id})
                self.owner.count(self.app.id, "failed")
                return
            self.owner.count(self.app.id, "retried")
            log.info("webhook %s: attempt %d failed (%s); retrying in %.2f s",
                     _shown(self.target.url), attempt, problem, delay,
                     extra={"app": self.app.id})
            await asyncio.sleep(delay)

    async def _post(self, batch: list[dict[str, Any]]) -> Optional[str]:
        """One attempt; None when the receiver answered 2xx, else what went wrong."""
        body = encode_body(batch, self.target.legacy_names)
        timeout = self.owner.request_timeout_s
        request = HTTPRequest(self.target.url, method="POST", body=body,
                              headers=signed_headers(self.app, body), connect_timeout=timeout,
                              request_timeout=timeout, follow_redirects=False,
                              user_agent=USER_AGENT)
        try:
            response = await self.owner.http().fetch(request, raise_error=False)
        except HTTPClientError as exc:  # timeouts (599) and the like
            return str(exc)
        except OSError as exc:  # refused, unreachable, reset, TLS
            return f"{type(exc).__name__}: {exc}"
        if 200 <= response.code < 300:
            return None
        return f"HTTP {response.code}" if response.code != 599 else str(response.error)


class Webhooks:
    """Every app's webhook targets, their held events, queues and workers.

    Build with ``{app: [WebhookTarget, ...]}`` and register `on_event` with
    `Hub.add_listener`; `close` on shutdown. The timing attributes (`grace_s`,
    `batch_window_s`, `retry_base_s`, `retry_window_s`, `request_timeout_s`,
    `queue_max_events`) default to the module constants and are read when used, so tests
    may shorten them on a built object."""

    def __init__(self, targets: Mapping[App, Sequence[WebhookTarget]], *,
                 grace_s: float = VACATE_GRACE_S, batch_window_s: float = BATCH_WINDOW_S,
                 retry_base_s: float = RETRY_BASE_S, retry_window_s: float = RETRY_WINDOW_S,
                 request_timeout_s: float = REQUEST_TIMEOUT_S,
                 queue_max_events: int = QUEUE_MAX_EVENTS) -> None:
        self.grace_s = grace_s
        self.batch_window_s = batch_window_s
        self.retry_base_s = retry_base_s
        self.retry_window_s = retry_window_s
        self.request_timeout_s = request_timeout_s
        self.queue_max_events = queue_max_events
        self.closing = False
        #: With several nodes (`RedisAdapter.release_hold`): release_check(app id, event) →
        #: whether it still stands when its time is up (False: a comeback on another node
        #: took it back). None: this node's own hold is the whole truth.
        self.release_check: Optional[
            Callable[[str, Mapping[str, Any]], Awaitable[bool]]] = None
        #: With several nodes: the adapter (`Adapter.journal_add` / `journal_remove`), so
        #: that what this node has not delivered when it dies is delivered by the node that
        #: removes it (which hands it to `adopt`). None: alone.
        self.journal: Optional[Any] = None
        # Journal token → deliveries still to settle it.
        self._journal_refs: dict[str, int] = {}
        self._checks: set[asyncio.Task[None]] = set()
        self._deliveries: dict[str, list[_Delivery]] = {
            app.id: [_Delivery(self, app, t) for t in ts] for app, ts in targets.items() if ts}
        # (app id, "channel", channel) or (app id, "member", channel, user_id) →
        # (timer, the held event, its journal token)
        self._held: dict[tuple[str, ...],
                         tuple[asyncio.TimerHandle, dict[str, Any], str | None]] = {}
        self._http: Optional[AsyncHTTPClient] = None
        #: Per app id: POSTs accepted ("delivered"), failed and tried again ("retried"),
        #: batches dropped after the retry window ("failed"); read by `realtime.metrics`.
        self.stats: dict[str, dict[str, int]] = {}

    def count(self, app_id: str, outcome: str) -> None:
        """Add one to `stats[app_id][outcome]`."""
        per_app = self.stats.setdefault(app_id, {})
        per_app[outcome] = per_app.get(outcome, 0) + 1

    def http(self) -> AsyncHTTPClient:
        """Our own client, not the shared per-loop one, so a hanging receiver can never
        take the slots other parts of the process fetch with."""
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True,
                                         max_clients=max(10, self.target_count()))
        return self._http

    def target_count(self) -> int:
        return sum(len(d) for d in self._deliveries.values())

    def pending(self) -> int:
        """Events held, queued or being POSTed right now."""
        return len(self._held) + sum(len(d.queue) + d.in_flight
                                     for ds in self._deliveries.values() for d in ds)

    # ---- the hub's side: no I/O, no waiting ----------------------------------------------

    def on_event(self, app: App, event: Mapping[str, Any]) -> None:
        """`HubListener`: hold, cancel or queue one event (module docstring). Never blocks."""
        if self.closing or app.id not in self._deliveries:
            return
        name = event.get("name")
        if name in _HELD:
            key = self._hold_key(app.id, _HELD[name], event)
            earlier = self._held.pop(key, None)
            if earlier is not None:  # two vacated in a row: the newer one stands
                earlier[0].cancel()
                self._unjournal(earlier[2])
            timer = asyncio.get_running_loop().call_later(self.grace_s, self._release, key)
            copy = dict(event)
            self._held[key] = (timer, copy, self._journal_add(app.id, {**copy, "_held": 1}))
            return
        if name in _COMEBACK:
            taken = self._held.pop(self._hold_key(app.id, _COMEBACK[name], event), None)
            if taken is not None:  # back within the grace: neither event is sent
                taken[0].cancel()
                self._unjournal(taken[2])
                return
            if event.get("comeback"):  # held on another node, which drops it there
                return
        self._queue(app.id, event)

    @staticmethod
    def _hold_key(app_id: str, kind: str, event: Mapping[str, Any]) -> tuple[str, ...]:
        if kind == "member":
            return (app_id, kind, str(event.get("channel")), str(event.get("user_id")))
        return (app_id, kind, str(event.get("channel")))

    def _release(self, key: tuple[str, ...]) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        if self.release_check is None:
            self._unjournal(held[2])
            self._queue(key[0], held[1])
            return
        check = self.release_check

        async def release(event: dict[str, Any], token: str | None) -> None:
            try:
                stands = await check(key[0], event)
            except Exception:
                log.exception("webhooks: could not ask whether %s still stands; sending it",
                              event.get("name"))
                stands = True
            if stands:  # journaled again as due (its hold in Redis is gone now)
                self._queue(key[0], event)
            self._unjournal(token)
        task = asyncio.get_running_loop().create_task(release(held[1], held[2]))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _queue(self, app_id: str, event: Mapping[str, Any]) -> None:
        wanting = [d for d in self._deliveries.get(app_id, ())
                   if d.target.wants(str(event.get("name")))]
        # A subscription_count is not journaled: a newer one replaces it anyway.
        token = (self._journal_add(app_id, dict(event))
                 if wanting and event.get("name") != "subscription_count" else None)
        if token is not None:
            self._journal_refs[token] = len(wanting)
        for delivery in wanting:
            delivery.put(event, token)

    # ---- the journal (several nodes) ----------------------------------------------------

    def _journal_add(self, app_id: str, event: dict[str, Any]) -> str | None:
        if self.journal is None:
            return None
        token: str | None = self.journal.journal_add(app_id, event)
        return token

    def _unjournal(self, token: str | None) -> None:
        if token is not None and self.journal is not None:
            self.journal.journal_remove(token)

    def settled(self, token: str) -> None:
        """One delivery is done with the event journaled under `token` (delivered or
        given up on); the entry goes when every delivery is."""
        left = self._journal_refs.get(token, 1) - 1
        if left > 0:
            self._journal_refs[token] = left
            return
        self._journal_refs.pop(token, None)
        self._unjournal(token)

    def adopt(self, app_id: str, event: dict[str, Any]) -> None:
        """`Adapter.journal_listeners`: an event a dead node journaled and did not deliver.
        A held one is held here again (its hold in Redis still decides whether it stands);
        any other is queued."""
        if self.closing or app_id not in self._deliveries:
            return
        app = self._deliveries[app_id][0].app
        if event.pop("_held", None):
            self.on_event(app, event)
        else:
            self._queue(app_id, event)

    # ---- shutdown ------------------------------------------------------------------------

    async def close(self, drain_s: float = SHUTDOWN_DRAIN_S) -> None:
        """Stop taking events, send the held ones now (the channels really are vacated on
        this server), give queued POSTs up to `drain_s` seconds, then cancel the rest with
        a warning saying how many events were lost. Safe to call twice."""
        if self.closing and self._http is None:
            return
        self.closing = True
        for key in list(self._held):
            timer, event, token = self._held.pop(key)
            timer.cancel()
            self._unjournal(token)
            self._queue(key[0], event)
        running = [d for ds in self._deliveries.values() for d in ds if d.task is not None]
        if running:
            waits = [asyncio.ensure_future(d.idle.wait()) for d in running]
            _, late = await asyncio.wait(waits, timeout=drain_s)
            for w in late:
                w.cancel()
            lost = sum(len(d.queue) + d.in_flight for d in running)
            tasks = [d.task for d in running if d.task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for d in running:
                d.task = None
            if lost:
                log.warning("webhooks: %d event(s) not delivered within the %.1f s shutdown "
                            "drain; dropped", lost, drain_s)
        for d in (d for ds in self._deliveries.values() for d in ds if d._dropped):
            log.warning("webhook %s: %d more event(s) were dropped from the full queue",
                        _shown(d.target.url), d._dropped)
            d._dropped = 0
        if self._http is not None:
            self._http.close()
            self._http = None
