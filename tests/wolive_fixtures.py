"""Composed fixtures (a pytest plugin, registered by conftest.py), in the manner of Jupyter
Server's `jp_serverapp` / `jp_fetch`: each builds on the one before, so a test asks for the
world it needs by name instead of building it.

- `config_overrides` / `server_options` -> `cfg` -> `wolive_server` (conftest.py): the
  in-process server on a fresh database (SQLite, and MariaDB through `db_url`), with its
  store, hub and chat. A module overrides `config_overrides` ({dotted key: value}, as
  `load_config` takes) or `server_options` (`write_config`'s keywords, e.g. `row_cache_s`).
- `shop`: business `shop1` installed through `/install`; its super_manager `boss` (service_id
  1) logged in. More people, named by the test (their names and ids are in its assertions):
  `shop.agent(user, level, business_id)` a second (third...) agent logged in with its own
  `Client`, `shop.staff(...)` several in order, `shop.visitor(vid)` a visitor with its
  window open and its socket on `cu{channel}`, `shop.online(agent)` an agent's socket.
- `boss`: the boss's `Client` (a fetch helper carrying its cookie and `_xsrf`).
- `boss_online`: a Pusher socket of the boss holding `kefu1`, once the boss is online.
- `anon`: a `Client` logged in as nobody, holding an `_xsrf` token.
- `pusher`: connects Pusher sockets (closed by `wolive_server` afterwards).
- `workbench`: the workbench's world: agents anna and bert online, visitor v1 with anna.

The credentials (`PASSWORD`, `BIZ`, `BOSS`, `OTHER_BIZ`) live in helpers.py.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import pytest
from helpers import Client, PusherSocket, db_rows, wait_for
from shop import SUBSCRIBED, Agent, Shop, Visitor


@pytest.fixture
def shop(io_loop: Any, wolive_server: Any, base_url: str, ws_base: str, cfg: Any) -> Shop:
    return io_loop.run_sync(
        lambda: Shop.open(wolive_server, base_url, ws_base, cfg.database.url))


@pytest.fixture
def boss(shop: Shop) -> Client:
    return shop.boss.client


@pytest.fixture
def anon(io_loop: Any, base_url: str) -> Client:
    client = Client(base_url)
    io_loop.run_sync(client.get_xsrf)
    return client


Connect = Callable[..., Awaitable[PusherSocket]]


@pytest.fixture
def pusher(ws_base: str) -> Connect:
    """`await pusher(client=None, *channels)`: a socket (with `client`'s cookie, if any)
    subscribed to `channels`, each answered `subscription_succeeded`."""
    async def connect(client: Client | None = None, *channels: str) -> PusherSocket:
        sock = await PusherSocket.connect(ws_base,
                                          cookie=client.cookie_header() if client else "")
        for channel in channels:
            answer = await sock.subscribe(channel)
            assert answer["event"] == SUBSCRIBED, answer
        return sock
    return connect


@pytest.fixture
def boss_online(io_loop: Any, shop: Shop, pusher: Connect) -> PusherSocket:
    async def online() -> PusherSocket:
        sock = await pusher(shop.boss.client, "kefu1")
        await wait_for(lambda: db_rows(shop.db, "SELECT state FROM wolive_service WHERE "
                                       "service_id = 1")[0]["state"] == "online")
        return sock
    return io_loop.run_sync(online)


@pytest.fixture
def workbench(io_loop: Any, shop: Shop) -> tuple[Shop, dict[str, Agent], Visitor]:
    """shop1: anna and bert (service, online); v1 talks to anna."""
    async def build() -> tuple[Shop, dict[str, Agent], Visitor]:
        ag = {name: await shop.agent(name) for name in ("anna", "bert")}
        for a in ag.values():
            await shop.online(a)
        v1 = await shop.visitor("v1")
        assert (await shop.notice(v1, special=str(ag["anna"].sid)))["data"]["service_id"] \
            == ag["anna"].sid
        assert v1.sock is not None
        await v1.sock.expect("cu_notice")
        return shop, ag, v1
    return io_loop.run_sync(build)
