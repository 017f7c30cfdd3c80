"""wolive: a live customer-service chat server. Run: ``python wolive.py --config config.yaml``.

This is the composition root: it loads and checks the config (failing fast with the bad key
named), builds the store, the Pusher hub, the presence tracker and the Tornado applications,
wires signals, and shuts down in order (refuse new sockets, close open ones with 4200 so
clients reconnect, drain, close the pool). Nothing imports it but tests.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import logging
import os
import signal
import ssl
import sys
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web
from redis.exceptions import RedisError

import handlers
from config import Config, ConfigProblem, fill_secrets, load_config
from handlers import demo, pusher
from handlers.base import access_log_level
from handlers.logs import setup_logging
from handlers.ops import MetricsAccess
from handlers.services import SETTINGS_KEY, Services
from handlers.http_server import MAX_BODY_BYTES, HTTPServer
from realtime import passwords
from realtime.pusher import transport
from realtime.pusher.adapter import Adapter, LocalAdapter
from realtime.pusher.redis_adapter import RedisAdapter
from realtime.chat import channels
from realtime.chat.facade import Chat
from realtime.chat.content import Content
from realtime.chat.history import History
from realtime.chat.ratings import Ratings
from realtime.chat.reports import Reports
from realtime.pusher.hub import App, Hub
from realtime.metrics import UNMATCHED_ROUTE, Metrics
from realtime.chat.agent_status import AgentStatus
from realtime.chat.agents import Agents
from realtime.chat.presence import PresenceTracker
from realtime.chat.quick_replies import QuickReplies
from realtime.chat.signals import Signals
from realtime.chat.uploads import Uploads
from realtime.chat.video import Video
from realtime.chat.visitor_cards import VisitorCards
from realtime.pusher.webhooks import SHUTDOWN_DRAIN_S as WEBHOOK_DRAIN_S
from realtime.pusher.webhooks import Webhooks
from realtime.chat.wechat import WechatNotifier
from store import ConfigError as StoreConfigError
from store import SCHEMA_VERSION, NotFound, Store

ROOT = os.path.dirname(os.path.abspath(__file__))
log = logging.getLogger("wolive")

#: How often dead sockets are looked for (seconds).
SWEEP_INTERVAL_S = 15

#: Allocations (minus deallocations) between young-generation collections, for a serving
#: process (`setup_gc`); CPython's default is 700.
GC_GEN0_THRESHOLD = 50_000
#: Pending connections the kernel queues per listener: after a restart every client is told
#: 4200 "reconnect at once"; Tornado's 128 overflowed in the benchmark, 1,024 did not
#: (docs/performance.md, "Next steps" 3). net.core.somaxconn caps it.
LISTEN_BACKLOG = 1024
#: Longest a clean shutdown waits for writes in flight (seconds).
SHUTDOWN_DRAIN_S = 5
#: After a start, how long the windows of visitors who were waiting, and the consoles of
#: agents who were online, have to reconnect (seconds) before they count as gone (the
#: visitors leave the line, the agents' visitors are handed over): pusher-js retries
#: within this after a restart. Also how long a visitor put in the line has for its
#: window to hold its channel.
WAITING_RECONNECT_S = 60


_access_log = logging.getLogger("tornado.access")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Per answered request: the metrics' HTTP histogram (when metrics are on), and the
    access log at `handlers.base.access_log_level` of the status (DEBUG for a handler with
    `access_log_debug`), with its fields for the JSON log format (handlers/logs.py)."""
    status = handler.get_status()
    request = handler.request
    seconds = request.request_time()
    route = getattr(request, "wolive_route", UNMATCHED_ROUTE)
    services = handler.application.settings.get(SETTINGS_KEY)
    metrics = services.metrics if services is not None else None
    if metrics is not None:
        metrics.observe_http(route, request.method or "", status, seconds)
    if getattr(handler, "access_log_debug", False):
        level = logging.DEBUG
    else:
        level = access_log_level(status, getattr(handler, "quiet_statuses", frozenset()))
    if _access_log.isEnabledFor(level):
        fields: dict[str, Any] = {
            "request_id": getattr(request, "request_id", None), "method": request.method,
            "route": route, "path": request.path, "status": status,
            "latency_ms": round(1000.0 * seconds, 3), "remote_ip": request.remote_ip}
        log_app = getattr(handler, "log_app", None)
        if log_app is not None:
            fields["app"] = log_app()
        _access_log.log(level, "%d %s %.2fms", status, handler._request_summary(),
                        1000.0 * seconds, extra=fields)


# ---- the server --------------------------------------------------------------------------

def make_ssl_context(cfg: Config) -> ssl.SSLContext | None:
    """The listeners' TLS context from `server.tls_cert` and `tls_key` (None: plain).
    Raises `ConfigProblem` when they do not load."""
    srv = cfg.server
    if not srv.tls_cert:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(srv.tls_cert, srv.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigProblem(f"server.tls_cert: cannot load the certificate and key: {exc}"
                            ) from None
    return ctx


@dataclass
class Wolive:
    """Everything one running server holds; `make_app` builds it, `stop` takes it down."""

    config: Config
    store: Store
    hub: Hub
    presence: PresenceTracker
    chat: Chat
    app: tornado.web.Application
    legacy_ws_app: tornado.web.Application
    legacy_api_app: tornado.web.Application
    #: What the handlers reach (`BaseHandler`'s properties); every listener's settings
    #: hold this one under `handlers.services.SETTINGS_KEY`.
    services: Services
    #: The one ping timer of every plain-TCP Pusher socket (the engine's `wolive_pinger`).
    pinger: transport.Pinger
    servers: list[tornado.httpserver.HTTPServer] = field(default_factory=list)
    sweeper: tornado.ioloop.PeriodicCallback | None = None
    webhooks: Webhooks | None = None

    def listen(self) -> dict[str, int]:
        """Bind every configured port; returns {name: port} (a port 0 gets a free one)."""
        srv = self.config.server
        bound: dict[str, int] = {}
        plan: list[tuple[str, int | None, tornado.web.Application]] = [
            ("main", srv.port, self.app),
            ("legacy_ws", srv.legacy_ws_port, self.legacy_ws_app),
            ("legacy_api", srv.legacy_api_port, self.legacy_api_app),
        ]
        if srv.demo_port is not None:
            plan.append(("demo", srv.demo_port, demo.make_demo_app(self)))
        for name, port, app in plan:
            if port is None:
                continue
            sockets = tornado.netutil.bind_sockets(port, srv.host, backlog=LISTEN_BACKLOG)
            server = HTTPServer(app, xheaders=srv.xheaders, ssl_options=self.ssl_context(),
                                max_body_size=MAX_BODY_BYTES)
            server.add_sockets(sockets)
            self.servers.append(server)
            bound[name] = sockets[0].getsockname()[1]
        # One dict shared by every listener (the socket port's origin check, the demo page).
        self.services.ports.update(bound)
        self.sweeper = tornado.ioloop.PeriodicCallback(self._sweep, SWEEP_INTERVAL_S * 1000)
        self.sweeper.start()
        return bound

    def _sweep(self) -> None:
        self.hub.sweep()

    def ssl_context(self) -> ssl.SSLContext | None:
        """With `server.tls_cert` and `tls_key`, every listener speaks https/wss."""
        return make_ssl_context(self.config)

    async def stop(self) -> None:
        """Refuse new sockets, close open ones with 4200, drain, close the pool."""
        self.hub.closing = True  # /readyz says "shutting down" from now on
        for server in self.servers:
            server.stop()
        if self.sweeper:
            self.sweeper.stop()
        self.hub.shutdown()
        try:  # every channel left (with several nodes: its events decided and sent on)
            await asyncio.wait_for(self.hub.settled(), SHUTDOWN_DRAIN_S)
        except TimeoutError:
            log.warning("sockets still leaving their channels after %s s", SHUTDOWN_DRAIN_S)
        self.pinger.stop()
        await self.presence.drain(SHUTDOWN_DRAIN_S)
        await self.services.wechat.close()
        if self.webhooks:
            await self.webhooks.close(WEBHOOK_DRAIN_S)
        for server in self.servers:
            try:
                await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_DRAIN_S)
            except TimeoutError:
                log.warning("connections still open after %s s; closing anyway",
                            SHUTDOWN_DRAIN_S)
        await self.store.close()
        close_adapter = getattr(self.hub.adapter, "close", None)
        if close_adapter is not None:
            await close_adapter()


async def make_adapter(cfg: Config) -> Adapter:
    """The in-process adapter, or with `cluster.redis_url` a started `RedisAdapter` (this
    node's number taken from Redis). Raises `ConfigProblem` when Redis does not answer."""
    url = cfg.cluster.redis_url
    if not url:
        return LocalAdapter()
    adapter = RedisAdapter(url, cfg.cluster.prefix)
    try:
        await adapter.start()
    except (OSError, RedisError) as exc:
        raise ConfigProblem(f"cluster.redis_url: Redis does not answer: {exc}") from None
    log.info("cluster: node %s on %s (prefix %s)", adapter.node, shown_url(url),
             cfg.cluster.prefix)
    return adapter


def shown_url(url: str) -> str:
    """`url` as it may be logged: a password in it replaced by `***`."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


async def make_app(cfg: Config) -> Wolive:
    """Build the server from a checked config (see `load_config`). Raises `ConfigProblem`."""
    cfg = fill_secrets(cfg)
    try:
        store = await Store.open(cfg.database.url, base_dir=cfg.base_dir,
                                 pool_size=cfg.database.pool_size,
                                 max_overflow=cfg.database.max_overflow,
                                 pool_timeout=cfg.database.pool_timeout_s,
                                 row_cache_s=cfg.database.row_cache_s)
    except StoreConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    adapter = await make_adapter(cfg)
    # Agents and visitors marked online by a server that stopped are reset, unless other
    # nodes of the cluster are alive: their sockets are theirs (a dead node's are removed
    # by the survivors, with the offline writes that follow).
    others = [n for n in await adapter.live_nodes() if n != adapter.node] \
        if isinstance(adapter, RedisAdapter) else []
    were_online = await store.reset_presence() if not others else []
    apps = [App(id=a.id, key=a.key, secret=a.secret, enabled=a.enabled)
            for a in cfg.pusher.apps]
    hub = Hub(apps, adapter=adapter)
    chat = Chat(store, hub, cfg.server.channel_secret,
                max_message_chars=cfg.chat.max_message_chars,
                max_conversations_per_agent=cfg.chat.max_conversations_per_agent)
    hub.policy = chat.policy
    presence = PresenceTracker(store, hub)
    presence.shared = not hub.adapter.inline
    # An agent coming online serves the waiting; one going offline: its visitors are told and
    # their conversations moved; a closed window stops waiting.
    presence.agent_online_listeners.append(chat.agent_available)
    presence.agent_offline_listeners.append(chat.agent_left)
    presence.visitor_offline_listeners.append(
        lambda visiter_id, business_id: chat.leave_waiting(visiter_id, business_id, "left"))
    # A conversation is stranded (given to another agent when one can take it) only once
    # the tracker has settled its agent's state.
    chat.agent_settling = lambda service_id: presence.settling(channels.agent(service_id))
    # Windows of visitors waiting when the server stopped reconnect by themselves; those
    # closed meanwhile never will, and must not be given to an agent. Consoles of agents
    # online then reconnect too: their conversations stay theirs meanwhile, and those who
    # never come back are handled as agents who left (`Chat.agent_left`). A visitor who
    # joins the line now is held the same way: without a window holding its channel (an
    # API call alone) it would wait, in every agent's Waiting list, for ever.
    presence.expect_back([channels.visitor(c) for c in await store.waiting_visitor_channels()]
                         + [channels.agent(sid) for sid in were_online], WAITING_RECONNECT_S)
    chat.waiting_listeners.append(
        lambda channel: presence.expect_back([channel], WAITING_RECONNECT_S))
    wechat = WechatNotifier.from_config(store, cfg)
    wechat.attach(chat)
    webhooks = Webhooks({app: list(raw.webhooks)
                         for app, raw in zip(apps, cfg.pusher.apps)})
    hub.add_listener(webhooks.on_event)
    if not hub.adapter.inline:  # several nodes: a hold is taken back anywhere, and what
        webhooks.release_check = hub.adapter.release_hold  # a dead node left is sent
        webhooks.journal = hub.adapter
        hub.adapter.journal_listeners.append(webhooks.adopt)
    metrics = Metrics(hub, chat, store, webhooks) if cfg.metrics.enabled else None
    content = Content(store, hub, assign_waiting=chat.assign_waiting)
    video = Video(store, hub, chat, list(cfg.video.ice_servers))
    signals = Signals(chat)
    ratings = Ratings(chat)
    if isinstance(adapter, RedisAdapter):  # rate limits, calls, the WeChat token: shared
        video.shared = adapter
        wechat.client.shared = adapter
        board, typing_ = content.board_limiter, signals.limit
        content.board_limiter = adapter.rate_limiter("board", board.limit, board.window_s)
        signals.limit = adapter.rate_limiter("typing", typing_.limit, typing_.window_s)
    rounds = cfg.security.bcrypt_rounds

    async def hasher(password: str) -> str:
        return await passwords.hash_password(password, rounds)

    services = Services(
        config=cfg, store=store, hub=hub, chat=chat, presence=presence,
        agents=Agents(store, hub, hasher, passwords.check_password, chat=chat),
        agent_status=AgentStatus(store, hub, chat),
        content=content, history=History(store), quick_replies=QuickReplies(store),
        ratings=ratings, reports=Reports(store), signals=signals,
        uploads=Uploads.from_config(cfg), visitor_cards=VisitorCards(chat, ratings),
        video=video, wechat=wechat,
        pusher_client={"key": apps[0].key, "ws_port": cfg.server.legacy_ws_port},
        metrics=metrics,
        metrics_access=MetricsAccess.from_config(cfg) if metrics else None)
    # One ping timer for every plain-TCP socket (TLS ones keep Tornado's pings).
    pinger = transport.Pinger(hub, cfg.pusher.ping_interval_s, cfg.pusher.ping_timeout_s)
    from realtime.pusher.protocol import MAX_FRAME_BYTES
    settings: dict[str, Any] = dict(
        template_path=os.path.join(ROOT, "templates"),
        cookie_secret=cfg.server.cookie_secret,
        xsrf_cookies=True,
        log_function=log_request,
        xsrf_cookie_kwargs={"samesite": "Lax"},
        websocket_max_message_size=MAX_FRAME_BYTES,
        # WebSocket pings (RFC 6455 §5.5.2): a socket whose network silently died answers
        # no pong and is closed, so its agent goes offline (config.yaml, pusher.ping_*).
        websocket_ping_interval=cfg.pusher.ping_interval_s,
        websocket_ping_timeout=cfg.pusher.ping_timeout_s,
        compress_response=True,
        # The handlers' services, one object shared by every listener.
        **{SETTINGS_KEY: services},
        # The Pusher engine's own keys (realtime/pusher/transport.py): the hub, one outbox
        # (and write window) for every listener's Pusher sockets, and the one ping timer.
        wolive_hub=hub,
        wolive_outbox=transport.Outbox(cfg.pusher.write_window_ms / 1000),
        wolive_pinger=pinger,
    )
    # handlers.pusher.Application: the HTTP API's publish endpoints skip RequestHandler.
    app = pusher.Application(handlers.default_handlers(), **settings)
    legacy_ws = pusher.Application(handlers.legacy_ws_handlers(), **settings)
    legacy_api = pusher.Application(handlers.legacy_api_handlers(), **settings)
    return Wolive(config=cfg, store=store, hub=hub, presence=presence, chat=chat, app=app,
                  legacy_ws_app=legacy_ws, legacy_api_app=legacy_api, services=services,
                  pinger=pinger, webhooks=webhooks)


# ---- command line ------------------------------------------------------------------------

async def create_admin(cfg: Config, business_id: str, user_name: str,
                       password: str) -> None:
    """The installer, scripted: creates the business and its super_manager once."""
    from realtime.chat.agents import USER_NAME_RE
    from realtime.chat.values import BUSINESS_ID_RE
    from store import Conflict
    if not BUSINESS_ID_RE.match(business_id):
        raise ConfigProblem("--business-id: 1-100 letters, digits, _ - .")
    if not USER_NAME_RE.match(user_name):
        raise ConfigProblem("--create-admin: 2-64 letters, digits, _ - . @")
    try:
        passwords.check_new_password(password)
    except passwords.PasswordRefused as exc:
        raise ConfigProblem(f"password: {exc.msg}") from None
    fill_secrets(cfg)
    store = await Store.open(cfg.database.url, base_dir=cfg.base_dir)
    try:
        hashed = await passwords.hash_password(password, cfg.security.bcrypt_rounds)
        await store.install(business_id, user_name, user_name, hashed)
    except Conflict:
        raise ConfigProblem("--create-admin: a super_manager exists already") from None
    finally:
        await store.close()


class CommandFailed(Exception):
    """An admin command that cannot do what it was asked (exit 1, one line)."""


#: `python wolive.py <command> --config ...`: the admin commands (README, "Production").
COMMANDS = ("check-config", "migrate", "create-admin", "reset-password", "cleanup-uploads",
            "purge-conversations", "import-wolive")


def read_password(prompt: str = "password: ") -> str:
    """A password from $WOLIVE_ADMIN_PASSWORD, else a prompt (a terminal) or the first line
    of standard input; never from the command line, where `ps` shows it."""
    return os.environ.get("WOLIVE_ADMIN_PASSWORD") or (
        getpass.getpass(prompt) if sys.stdin.isatty() else sys.stdin.readline().strip())


def sqlite_file(cfg: Config) -> str | None:
    """The SQLite database's file for a sqlite:/// URL, else None."""
    from store import normalise_url
    url = normalise_url(cfg.database.url, cfg.base_dir)
    return url.split(":///", 1)[1] if url.startswith("sqlite") else None


async def open_store(cfg: Config, need_schema: bool = True) -> Store:
    """The database without migrating it. A SQLite file that is not there is not made:
    raises `CommandFailed`; so does a database without wolive's tables when `need_schema`
    (run `migrate` first)."""
    path = sqlite_file(cfg)
    if path is not None and not os.path.exists(path):
        raise CommandFailed(f"database.url: {path} does not exist (start the server or run "
                            "migrate first)")
    store = await Store.open(cfg.database.url, base_dir=cfg.base_dir, migrate=False)
    if need_schema:
        from store.maintenance import migration_plan
        plan = await migration_plan(store)
        if plan.version == 0:
            await store.close()
            raise CommandFailed("the database has no wolive tables: run migrate first")
    return store


def _db_name(cfg: Config) -> str:
    path = sqlite_file(cfg)
    if path is not None:
        return f"sqlite {path}"
    from sqlalchemy.engine import make_url
    u = make_url(cfg.database.url)
    return f"mysql {u.host}:{u.port or 3306}/{u.database}"


async def cmd_check_config(cfg: Config, args: argparse.Namespace) -> int:
    """The config is read and checked before this runs; here what it points at."""
    from store.maintenance import migration_plan
    print(f"config {args.config or '(defaults)'}: ok")
    srv = cfg.server
    if srv.tls_cert:
        make_ssl_context(cfg)
        print(f"tls: {srv.tls_cert} and its key load")
    print(f"listen: {srv.host}:{srv.port}" + "".join(
        f", {k} {getattr(srv, k)}" for k in ("legacy_ws_port", "legacy_api_port", "demo_port")
        if getattr(srv, k) is not None))
    path = sqlite_file(cfg)
    if path is not None and not os.path.exists(path):
        folder = os.path.dirname(path)
        while folder and not os.path.exists(folder):
            folder = os.path.dirname(folder)
        if not os.access(folder or ".", os.W_OK):
            raise CommandFailed(f"database.url: {path} does not exist and {folder} is not "
                                "writable")
        print(f"database: {path} does not exist yet; the server makes it at start-up")
    else:
        store = await Store.open(cfg.database.url, base_dir=cfg.base_dir,
                                 migrate=False)
        try:
            plan = await migration_plan(store)
        finally:
            await store.close()
        state = (f"schema version {plan.version} of {SCHEMA_VERSION}" if not plan.pending
                 else f"schema version {plan.version} of {SCHEMA_VERSION}: migrations "
                      f"{_ranges(plan.pending)} pending (migrate, or start the server)")
        print(f"database: {_db_name(cfg)} answers; {state}")
    uploads = Uploads.from_config(cfg).directory
    there = os.path.isdir(uploads)
    print(f"uploads: {uploads}" + ("" if there else " (made at the first upload)"))
    print(f"metrics: {'on' if cfg.metrics.enabled else 'off'}; log: "
          f"{cfg.log_format} at {cfg.log_level}")
    return 0


def _first_sentence(doc: str) -> str:
    """A migration's docstring, its first sentence on one line."""
    text = " ".join(doc.strip().split("\n\n")[0].split())
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def _ranges(versions: list[int]) -> str:
    if not versions:
        return "none"
    return str(versions[0]) if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


async def cmd_migrate(cfg: Config, args: argparse.Namespace) -> int:
    from store.maintenance import migration_plan
    from store.migrations import MIGRATIONS
    path = sqlite_file(cfg)
    if path is not None and not os.path.exists(path):
        if args.dry_run:
            print(f"dry run: {path} does not exist; migrate would make it with every table "
                  f"and run migrations 1-{SCHEMA_VERSION}")
            return 0
    store = await Store.open(cfg.database.url, base_dir=cfg.base_dir, migrate=False)
    try:
        plan = await migration_plan(store)
        if args.dry_run:
            if plan.missing_tables:
                print(f"dry run: would create tables: {', '.join(plan.missing_tables)}")
            for version in plan.pending:
                doc = _first_sentence(MIGRATIONS[version - 1].__doc__ or "")
                print(f"dry run: would run migration {version}: {doc}")
            if not plan.pending and not plan.missing_tables:
                print(f"dry run: nothing to do; {_db_name(cfg)} is at schema version "
                      f"{plan.version}")
            return 0
        await store.migrate()
    finally:
        await store.close()
    if plan.pending or plan.missing_tables:
        made = f"; created {', '.join(plan.missing_tables)}" if plan.missing_tables else ""
        print(f"migrated {_db_name(cfg)} from schema version {plan.version} to "
              f"{SCHEMA_VERSION} (ran {_ranges(plan.pending)}){made}")
    else:
        print(f"nothing to do: {_db_name(cfg)} is at schema version {plan.version}")
    return 0


async def cmd_reset_password(cfg: Config, args: argparse.Namespace) -> int:
    store = await open_store(cfg)
    try:
        row = await store.find_service_by_name(args.user_name)
        if row is None:
            raise CommandFailed(f"reset-password: no agent named {args.user_name!r}")
        password = read_password("new password: ")
        try:
            passwords.check_new_password(password)
        except passwords.PasswordRefused as exc:
            raise CommandFailed(f"reset-password: {exc.msg}") from None
        hashed = await passwords.hash_password(password, cfg.security.bcrypt_rounds)
        await store.set_service_password(row["service_id"], hashed)
    finally:
        await store.close()
    print(f"reset the password of {row['level']} {row['user_name']!r} (business "
          f"{row['business_id']!r}); its open sessions are logged out")
    return 0


async def cmd_cleanup_uploads(cfg: Config, args: argparse.Namespace) -> int:
    import time
    from realtime.chat.legacy_uploads import LegacyUploads
    from realtime.chat.uploads import META_SUFFIX, STORED_NAME_RE
    from store.maintenance import referenced_uploads
    uploads = Uploads.from_config(cfg)
    store = await open_store(cfg)
    try:
        cutoff = time.time() - args.older_than_days * 86400
        # Files are listed before the tables are read: an upload that gets its message
        # meanwhile is recent anyway.
        doomed, kept = uploads.stale(set(), cutoff)
        referenced = await referenced_uploads(store)
        # Old WoLive URLs of imported files (realtime/chat/legacy_uploads.py) keep theirs.
        referenced |= LegacyUploads(uploads).aliased_names()
    finally:
        await store.close()
    still = [n for n in doomed if n not in referenced and
             (n[:-len(META_SUFFIX)] if n.endswith(META_SUFFIX) else n) not in referenced]
    kept["referenced"] += len(doomed) - len(still)
    verb = "would delete" if args.dry_run else "deleted"
    freed = 0
    for name in still:
        path = os.path.join(uploads.directory, name)
        targets = [path, path + META_SUFFIX] if STORED_NAME_RE.match(name) else [path]
        for target in targets:
            try:
                freed += os.path.getsize(target)
                if not args.dry_run:
                    os.unlink(target)
            except FileNotFoundError:
                continue
        print(f"{'dry run: ' if args.dry_run else ''}{verb} {path}")
    print(f"{'dry run: ' if args.dry_run else ''}{verb} {len(still)} file(s), {freed} bytes, "
          f"from {uploads.directory}; kept {kept['referenced']} referenced, {kept['recent']} "
          f"newer than {args.older_than_days} day(s), {kept['other']} other")
    return 0


async def cmd_purge_conversations(cfg: Config, args: argparse.Namespace) -> int:
    import time
    from store.maintenance import purge_conversations
    store = await open_store(cfg)
    try:
        try:
            await store.get_business(args.business_id)
        except NotFound:
            raise CommandFailed(f"purge-conversations: no business {args.business_id!r}"
                                ) from None
        cutoff = int(time.time()) - args.older_than_days * 86400
        result = await purge_conversations(store, args.business_id, cutoff, args.dry_run)
    finally:
        await store.close()
    verb = "dry run: would delete" if args.dry_run else "deleted"
    rows = ", ".join(f"{n} {table}" for table, n in result.rows.items())
    print(f"{verb} {result.conversations} conversation(s) of business {args.business_id!r} "
          f"with no message in {args.older_than_days} day(s): {rows} rows; kept "
          f"{result.skipped_online} of visitors online now")
    return 0


async def cmd_create_admin(cfg: Config, args: argparse.Namespace) -> int:
    password = read_password()
    await create_admin(cfg, args.business_id, args.user_name, password)
    print(f"wolive: created business {args.business_id!r} and super_manager "
          f"{args.user_name!r}")
    return 0


def _positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if days < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return days


def import_wolive(argv: list[str]) -> int:
    """`wolive.py import-wolive --from mysql://.../wolive_old --config config.yaml
    [--uploads-from DIR] [--dry-run]`: store/wolive_import.py does the work; this reads the
    config and prints its report. Exit 0 done, 1 could not, 2 bad config or arguments."""
    from realtime.chat.legacy_uploads import LegacyUploads
    from store.wolive_import import ImportProblem, run
    parser = argparse.ArgumentParser(
        prog="wolive.py import-wolive",
        description="Import an existing WoLive MySQL database into the config's database "
                    "(a new one, or the same one in place); README, 'Moving from WoLive'.")
    parser.add_argument("--from", dest="source", required=True, metavar="URL",
                        help="the WoLive database: mysql://user:password@host:3306/wolive_old")
    parser.add_argument("--config", default=None, help="YAML config (its database is the "
                                                      "target)")
    parser.add_argument("--uploads-from", metavar="DIR", default="",
                        help="the old site's public folder (holding upload/): files the rows "
                             "name are copied into wolive's upload store")
    parser.add_argument("--dry-run", action="store_true",
                        help="report counts, problems and changes; write nothing")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
    except ConfigProblem as exc:
        print(f"wolive: config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, cfg.log_format)
    legacy = LegacyUploads(Uploads.from_config(cfg))
    root = args.uploads_from
    if root and not os.path.isdir(root):
        print(f"wolive: import-wolive: --uploads-from: {root} is not a folder", file=sys.stderr)
        return 2

    async def copy_upload(old: str) -> tuple[str | None, str]:
        return await legacy.copy(root, old, args.dry_run)

    if args.dry_run:
        def channel_for(business_id: str, visiter_id: str) -> str:
            return ""  # counted, never written (a dry run makes no secret)
    else:
        from realtime.pusher.signing import visitor_channel
        cfg = fill_secrets(cfg)
        secret = cfg.server.channel_secret

        def channel_for(business_id: str, visiter_id: str) -> str:
            return visitor_channel(secret, business_id, visiter_id)
    try:
        report = asyncio.run(run(args.source, cfg.database.url, cfg.base_dir,
                                 args.dry_run, copy_upload if root else None, channel_for))
    except ImportProblem as exc:
        print(f"wolive: import-wolive: {exc}", file=sys.stderr)
        return 1
    print(report.text(args.dry_run))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wolive.py", description=__doc__.splitlines()[0],
        epilog="Without a command, runs the server. `wolive.py COMMAND --help` for each "
               "command. Exit status: 0 done, 2 a bad config or an unusable database, "
               "1 the command could not do it (one line on standard error).")
    parser.add_argument("--config", default=None, help="YAML config (see config.yaml)")
    parser.add_argument("--port", type=int, default=None,
                        help="listen on this port instead of server.port (several nodes "
                             "from one config on one machine: README, 'Several nodes')")
    parser.add_argument("--create-admin", metavar="USER_NAME",
                        help="create the first business and its super_manager, then exit; "
                             "the password comes from $WOLIVE_ADMIN_PASSWORD or a prompt "
                             "(the same as the create-admin command)")
    parser.add_argument("--business-id", default="admin",
                        help="business id for --create-admin (default: admin)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_: str, description: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=description)
        # SUPPRESS: the top-level --config stays when the command's own is not given.
        p.add_argument("--config", default=argparse.SUPPRESS, help="YAML config")
        return p

    # import-wolive has its own parser (`import_wolive`, dispatched before this one): listed
    # here for the overview only.
    sub.add_parser("import-wolive", add_help=False,
                   help="import an existing WoLive MySQL database (README, \"Moving from "
                        "WoLive\"); put it first: wolive.py import-wolive --help")
    command("check-config", "check the config and what it points at",
            "Read and check the config (the server's own checks), load the TLS certificate, "
            "reach the database and report its schema version. Changes nothing.")
    p = command("migrate", "create or upgrade the database's tables",
                "Create missing tables and run the schema migrations not yet run (the "
                "server does the same at start-up).")
    p.add_argument("--dry-run", action="store_true",
                   help="list the migrations and tables it would make; change nothing")
    p = command("create-admin", "create the first business and its super_manager",
                "The installer, scripted: creates the business and its super_manager once. "
                "The password comes from $WOLIVE_ADMIN_PASSWORD, else a prompt (or the "
                "first line of standard input), never from the command line.")
    p.add_argument("user_name", metavar="USER_NAME")
    # SUPPRESS: the top-level --business-id (default admin) stays when this one is not given.
    p.add_argument("--business-id", default=argparse.SUPPRESS,
                   help="business id (default: admin)")
    p = command("reset-password", "set an agent's password",
                "Set the password of the agent USER_NAME (any level); its open sessions are "
                "logged out. The password comes from $WOLIVE_ADMIN_PASSWORD, else a prompt "
                "(or the first line of standard input), never from the command line.")
    p.add_argument("user_name", metavar="USER_NAME")
    p = command("cleanup-uploads", "delete uploads nothing refers to",
                "Delete files in the uploads folder that no message, avatar, FAQ or tab "
                "refers to and that are older than --older-than-days. Run with --dry-run "
                "first: it prints what it would delete.")
    p.add_argument("--older-than-days", type=_positive_days, default=30, metavar="N",
                   help="only files last modified more than N days ago (default 30)")
    p.add_argument("--dry-run", action="store_true", help="print what would go; delete nothing")
    p = command("purge-conversations", "delete a business's old conversations (retention)",
                "Chat retention, off unless run: delete the conversations of one business "
                "whose newest message is older than N days (their messages, ratings, queue "
                "and visitor rows; blacklist entries and visitors online now are kept). "
                "Uploaded files are left to cleanup-uploads.")
    p.add_argument("--older-than-days", type=_positive_days, required=True, metavar="N")
    p.add_argument("--business-id", required=True)
    p.add_argument("--dry-run", action="store_true",
                   help="count what would be deleted; delete nothing")
    return parser


_COMMAND_FUNCS = {
    "check-config": cmd_check_config, "migrate": cmd_migrate, "create-admin": cmd_create_admin,
    "reset-password": cmd_reset_password, "cleanup-uploads": cmd_cleanup_uploads,
    "purge-conversations": cmd_purge_conversations,
}


def run_command(cfg: Config, args: argparse.Namespace) -> int:
    """Run an admin command: 0 when done, 2 (config error, database unusable) or 1 (it
    cannot be done) with one line on standard error."""
    try:
        return asyncio.run(_COMMAND_FUNCS[args.command](cfg, args))
    except (ConfigProblem, StoreConfigError) as exc:
        print(f"wolive: {args.command}: {exc}", file=sys.stderr)
        return 2
    except CommandFailed as exc:
        print(f"wolive: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ["import-wolive"]:  # its own parser (store/wolive_import.py)
        return import_wolive(args_list[1:])
    args = make_parser().parse_args(args_list)
    try:
        cfg = load_config(args.config, {"server.port": args.port}
                          if getattr(args, "port", None) is not None else None)
    except ConfigProblem as exc:
        print(f"wolive: config error: {exc}", file=sys.stderr)
        return 2
    # A command's own lines are its output; the log says only what went wrong.
    quiet = (args.command or args.create_admin) and cfg.log_level != "debug"
    level = "error" if quiet else cfg.log_level
    setup_logging(level, cfg.log_format)
    if args.command == "create-admin":
        code = run_command(cfg, args)
        return 2 if code == 1 else code  # as --create-admin: 2 for every refusal
    if args.command:
        return run_command(cfg, args)
    if args.create_admin:
        password = read_password()
        try:
            asyncio.run(create_admin(cfg, args.business_id, args.create_admin, password))
        except (ConfigProblem, StoreConfigError) as exc:
            print(f"wolive: {exc}", file=sys.stderr)
            return 2
        print(f"wolive: created business {args.business_id!r} and super_manager "
              f"{args.create_admin!r}")
        return 0
    try:
        return asyncio.run(serve(cfg))
    except ConfigProblem as exc:
        print(f"wolive: config error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"wolive: cannot listen: {exc}", file=sys.stderr)
        return 1


def setup_gc() -> tuple[int, tuple[int, int, int]]:
    """Tune CPython's cyclic garbage collector for a long-running server, once start-up is
    done: what exists now (modules, classes, the configuration, the database engine) is
    moved to the permanent generation (`gc.freeze`), so full collections no longer walk it,
    and young collections run every `GC_GEN0_THRESHOLD` allocations rather than every 700,
    so that fan-out to many sockets (short-lived frames and futures by the thousand) does not
    trigger a full collection every few seconds, each one a pause for every socket. Nothing
    is left uncollected: later objects are collected as before. Returns (objects frozen,
    the new thresholds). Python's documentation of `gc.freeze` recommends this pattern for
    long-lived processes."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)
    frozen, thresholds = gc.get_freeze_count(), gc.get_threshold()
    log.info("garbage collector: %d start-up objects frozen, thresholds %s", frozen,
             thresholds)
    return frozen, thresholds


async def serve(cfg: Config) -> int:
    server = await make_app(cfg)
    try:
        bound = server.listen()
    except OSError:
        # Leaves the cluster too (a node that cannot listen is not left registered for
        # the others to reap).
        await server.stop()
        raise
    setup_gc()
    host = cfg.server.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    scheme = "https" if cfg.server.tls_cert else "http"
    log.info("wolive listening: %s", ", ".join(f"{k} {scheme}://{shown}:{v}" for k, v in
                                                  bound.items()))
    extra = "".join(f", {name} {scheme}://{shown}:{port}/" for name, port in bound.items()
                    if name != "main")
    # The signals are ours before anyone is told we are ready: a SIGTERM right after the
    # ready line shuts down cleanly instead of killing the process.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"wolive ready on {scheme}://{shown}:{bound['main']}/{extra}", flush=True)
    await stop.wait()
    log.info("shutting down")
    await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
