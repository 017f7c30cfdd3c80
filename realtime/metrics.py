"""Prometheus metrics (`/metrics`, handlers/ops.py), through the official `prometheus_client`.

Cheap on the hot paths, by design (docs/performance.md, "The cost of metrics"):

- The Pusher fan-out pays nothing per delivered frame: `LocalAdapter.publish` adds to two
  plain integers per *publish* (`Adapter.published` / `delivered`, per app), and sockets,
  channels and subscriptions are counted from the hub when Prometheus scrapes
  (`_LiveCollector`, a custom collector), not kept up to date on every connect.
- Webhook outcomes (`Webhooks.stats`), notice outcomes (`Chat.notice_counts`) and sockets
  opened (`Hub.connections_opened`) are plain integers too, read at scrape time.
- What needs buckets uses the client's `Histogram`, with the children for a label set
  bound once and kept (`observe_http`, `observe_query`): no `labels()` lookup per request
  or statement.
- Visitors waiting and agents online are two COUNT queries run by `/metrics` itself before
  it renders (`refresh_database_gauges`): values for the whole cluster, the same on every
  node sharing the database.

Each server has its own `CollectorRegistry` (tests build several servers in one process),
with the client's process, platform and GC collectors added.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (CollectorRegistry, Counter, GCCollector, Histogram,
                               PlatformCollector, ProcessCollector)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from store import Store

    from .chat.facade import Chat
    from .pusher.hub import Hub
    from .pusher.webhooks import Webhooks

#: Methods kept as a label value; any other is counted as "other" (bounded labels).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
#: Route label of a request no route matched (Tornado's 404).
UNMATCHED_ROUTE = "(unmatched)"
#: HTTP latency buckets (seconds), from 0.5 ms to 10 s: wide enough for a publish (well under
#: a millisecond), a page (milliseconds) and a bcrypt login (hundreds of milliseconds).
HTTP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0)
#: Database statement latency buckets (seconds).
DB_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
              0.5, 1.0, 5.0)
#: Statement label values: the first word of the SQL, when it is one of these, else other.
DB_OPERATIONS = ("select", "insert", "update", "delete", "other")
#: `/admin/event/notice` answer codes (docs/api.md): assigned, closed, queued, nobody
#: online, blacklisted.
NOTICE_CODES = (0, 1, 2, 3, 4)
#: Longest `/metrics` waits for the two COUNT queries before answering without them
#: (seconds): a scrape never hangs on a database outage.
DATABASE_GAUGES_TIMEOUT_S = 2.0


class Metrics:
    """The registry and what feeds it. Build once per server (`wolive.make_app`) when
    `metrics.enabled`; the hub, chat and webhooks keep their plain counters either way."""

    def __init__(self, hub: Hub, chat: Chat, store: Store, webhooks: Webhooks | None) -> None:
        self.hub, self.chat, self.store, self.webhooks = hub, chat, store, webhooks
        self.started = time.time()
        self.registry = CollectorRegistry(auto_describe=True)
        self.http = Histogram(
            "wolive_http_request_duration_seconds",
            "HTTP requests by route pattern, method and status, and how long they took "
            "(the _count is the number of requests)",
            ["route", "method", "status"], buckets=HTTP_BUCKETS, registry=self.registry)
        self.db = Histogram(
            "wolive_db_query_duration_seconds",
            "SQL statements sent to the database by their first word, and how long each took",
            ["operation"], buckets=DB_BUCKETS, registry=self.registry)
        self.db_errors = Counter(
            "wolive_db_errors",
            "Database errors: unavailable (unreachable, lost, locked: answered 503) or "
            "error (a statement that failed)", ["kind"], registry=self.registry)
        self._http_children: dict[tuple[str, str, int], Any] = {}
        self._db_children = {op: self.db.labels(op) for op in DB_OPERATIONS}
        self._db_error_children = {k: self.db_errors.labels(k)
                                   for k in ("unavailable", "error")}
        #: (visitors waiting, agents online) as last read by `refresh_database_gauges`;
        #: None when the database did not answer.
        self.database_gauges: tuple[int, int] | None = None
        self._counting: asyncio.Future[tuple[int, int]] | None = None
        self.registry.register(_LiveCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        store.observe_queries(self.observe_query, self.observe_query_error)

    # ---- the hot paths -------------------------------------------------------------------

    def observe_http(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered HTTP request: `route` the route's pattern (never the raw path),
        `status` the HTTP status, `seconds` from the start of the request to its answer."""
        if method not in HTTP_METHODS:  # any token is a method to HTTP: keep labels bounded
            method = "other"
        key = (route, method, status)
        child = self._http_children.get(key)
        if child is None:
            child = self._http_children[key] = self.http.labels(route, method, str(status))
        child.observe(seconds)

    def observe_query(self, statement: str, seconds: float) -> None:
        """One statement the database answered (`Store.observe_queries`)."""
        head = statement.lstrip()[:6].lower()
        child = self._db_children.get(head) or self._db_children["other"]
        child.observe(seconds)

    def observe_query_error(self, unavailable: bool) -> None:
        """One statement that failed (`Store.observe_queries`)."""
        self._db_error_children["unavailable" if unavailable else "error"].inc()

    # ---- scrape time ---------------------------------------------------------------------

    async def refresh_database_gauges(self) -> None:
        """Read visitors waiting and agents online (two COUNTs); on a database that does
        not answer within `DATABASE_GAUGES_TIMEOUT_S`, leave them out of this scrape. A
        slow read is not cancelled (that would cost its pooled connection) but left to
        finish, and later scrapes wait for it rather than start another."""
        if self._counting is None or self._counting.done():
            self._counting = background(self.store.live_counts())
        try:
            self.database_gauges = await asyncio.wait_for(asyncio.shield(self._counting),
                                                          DATABASE_GAUGES_TIMEOUT_S)
        except Exception:  # an outage: the scrape goes on without them (the store logs it)
            self.database_gauges = None


def background(coro: Any) -> asyncio.Future[Any]:
    """`coro` as a task whose failure, if nobody awaits it, is dropped rather than logged
    as "never retrieved" (its awaiters see it; the store logs outages itself)."""
    task = asyncio.ensure_future(coro)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


class _LiveCollector(Collector):
    """Reads the plain counters and the hub's sockets and channels when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list[Any]:
        return []  # generated at scrape time (names are fixed; see collect)

    def collect(self) -> Iterator[Any]:
        m = self.m
        hub = m.hub
        apps = list(hub.apps_by_id)
        sockets = dict.fromkeys(apps, 0)
        for session in list(hub.sessions.values()):
            sockets[session.app.id] = sockets.get(session.app.id, 0) + 1
        g = GaugeMetricFamily("wolive_pusher_sockets", "Open Pusher WebSockets, by app",
                              labels=["app"])
        for app, n in sockets.items():
            g.add_metric([app], n)
        yield g
        c = CounterMetricFamily("wolive_pusher_connections",
                                "Pusher WebSockets opened (connection_established sent), by app",
                                labels=["app"])
        for app in apps:
            c.add_metric([app], hub.connections_opened.get(app, 0))
        yield c
        adapter = hub.adapter
        channels = GaugeMetricFamily("wolive_pusher_channels",
                                     "Occupied channels (at least one subscriber on this "
                                     "node), by app",
                                     labels=["app"])
        subs = GaugeMetricFamily("wolive_pusher_subscriptions",
                                 "Channel subscriptions (a socket of this node on a "
                                 "channel), by app",
                                 labels=["app"])
        for app in apps:
            occupied = adapter.local_channels(app)
            channels.add_metric([app], len(occupied))
            subs.add_metric([app], sum(occupied.values()))
        yield channels
        yield subs
        published = CounterMetricFamily(
            "wolive_pusher_messages_published",
            "Events published to a channel (HTTP API, chat pushes, client and presence "
            "events), by app", labels=["app"])
        delivered = CounterMetricFamily(
            "wolive_pusher_messages_delivered",
            "Frames handed to subscribers' sockets by those publishes, by app",
            labels=["app"])
        for app in apps:
            published.add_metric([app], adapter.published.get(app, 0))
            delivered.add_metric([app], adapter.delivered.get(app, 0))
        yield published
        yield delivered
        hooks = m.webhooks.stats if m.webhooks is not None else {}
        for name, key, text in (
                ("wolive_webhook_deliveries", "delivered",
                 "Webhook POSTs the receiver accepted (2xx), by app"),
                ("wolive_webhook_retries", "retried",
                 "Webhook POSTs that failed and were tried again later, by app"),
                ("wolive_webhook_failures", "failed",
                 "Webhook batches dropped after the retry window (5 min), by app")):
            fam = CounterMetricFamily(name, text, labels=["app"])
            for app in apps:
                fam.add_metric([app], hooks.get(app, {}).get(key, 0))
            yield fam
        notices = CounterMetricFamily(
            "wolive_assignments",
            "Answers of /admin/event/notice by code: 0 assigned, 1 business closed, "
            "2 queued, 3 nobody online, 4 blacklisted", labels=["code"])
        counts = m.chat.notice_counts
        for code in NOTICE_CODES:
            notices.add_metric([str(code)], counts.get(code, 0))
        yield notices
        if m.database_gauges is not None:
            waiting, online = m.database_gauges
            yield GaugeMetricFamily("wolive_visitors_waiting",
                                    "Visitors waiting in the queue for an agent (all "
                                    "businesses; read from the database)", value=waiting)
            yield GaugeMetricFamily("wolive_agents_online",
                                    "Agents online (all businesses; read from the database)",
                                    value=online)
        yield GaugeMetricFamily("wolive_cluster_ready",
                                "1 while this node hears the other nodes and reaches Redis "
                                "(always 1 alone), else 0: /readyz says why",
                                value=0 if adapter.problem() is not None else 1)
        yield GaugeMetricFamily("wolive_start_time_seconds",
                                "When this server was built (unix seconds)", value=m.started)
