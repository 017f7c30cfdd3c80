"""Fixtures: a real server on a free port, on SQLite and on real MariaDB.

- `db_url` runs a test once on SQLite and once on MariaDB. MariaDB comes from
  $WOLIVE_TEST_MYSQL_URL (default mysql://root:@127.0.0.1:3306/); each test gets a fresh
  database, dropped afterwards. When MariaDB is unreachable its runs are skipped, unless
  $WOLIVE_REQUIRE_MARIADB=1 (CI), when they fail.
- `wolive` / `app`: the application built by `wolive.make_app`, served by pytest-tornado's
  `http_server` on a free port (`base_url`, `http_port`).
- `running_server`: `python wolive.py --config ...` as a real process, for end-to-end tests.
- Any ERROR logged by wolive or Tornado fails the test (Tornado's fail-if-logs idea).
- tests/wolive_fixtures.py (a plugin, below): the worlds composed on `wolive_server` — an installed
  `shop`, its logged-in `boss`, a second `agent`, `anon`, a `visitor`, `pusher` sockets.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import wolive  # noqa: E402
from helpers import BIZ, PASSWORD  # noqa: E402,F401 (the credentials, defined once there)

pytest_plugins = ["wolive_fixtures"]

MYSQL_URL = os.environ.get("WOLIVE_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306/")
REQUIRE_MARIADB = os.environ.get("WOLIVE_REQUIRE_MARIADB") == "1"
ARTIFACTS = ROOT / "tests" / "artifacts"
ADMIN_USER = "boss"
ADMIN_PASSWORD = "correct horse 42"
BUSINESS = BIZ


# ---- databases ---------------------------------------------------------------------------

def _mysql_connect(database: str | None = None) -> Any:
    import pymysql
    u = urlsplit(MYSQL_URL)
    return pymysql.connect(host=u.hostname or "127.0.0.1", port=u.port or 3306,
                           user=u.username or "root", password=u.password or "",
                           database=database, charset="utf8mb4", autocommit=True,
                           connect_timeout=5)


@pytest.fixture(scope="session")
def mariadb() -> None:
    try:
        _mysql_connect().close()
    except Exception as exc:  # unreachable server: skip here, fail in CI
        if REQUIRE_MARIADB:
            pytest.fail(f"MariaDB required (WOLIVE_REQUIRE_MARIADB=1) but unreachable: {exc}")
        pytest.skip(f"MariaDB unreachable at {MYSQL_URL}: {exc}")


def _mysql_db_url(name: str) -> str:
    u = urlsplit(MYSQL_URL)
    return f"mysql://{u.netloc}/{name}"


@pytest.fixture
def fresh_mysql_db(mariadb: None) -> Iterator[str]:
    name = "wolive_t_" + secrets.token_hex(6)
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        yield _mysql_db_url(name)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/wolive.db"
    return request.getfixturevalue("fresh_mysql_db")


# ---- config and the in-process server ----------------------------------------------------

def write_config(tmp_path: Path, db_url: str, row_cache_s: float | None = None,
                 log_level: str = "warning", extra: dict[str, Any] | None = None,
                 **server: Any) -> Path:
    """A config file for a test server; `extra`: more top-level keys (sections)."""
    data = {
        "server": {"host": "127.0.0.1", "port": 0, "demo_port": None, "data_dir": "data",
                   **server},
        # The row cache (store/rowcache.py) is off by default here: many tests change a
        # business or an agent straight in the database (helpers.db_rows), behind the
        # server's back, as another node would; tests/test_row_cache.py turns it on.
        # WOLIVE_TEST_ROW_CACHE_S=3600 runs a file with it on (stale rows never expire).
        "database": {"url": db_url,
                     "row_cache_s": float(os.environ.get("WOLIVE_TEST_ROW_CACHE_S", "0"))
                     if row_cache_s is None else row_cache_s},
        "security": {"bcrypt_rounds": 4},
        "log_level": log_level,
        **(extra or {}),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def server_options() -> dict[str, Any]:
    """`write_config`'s keywords for the in-process server (a module overrides this)."""
    return {}


@pytest.fixture
def config_overrides() -> dict[str, Any]:
    """Dotted-key overrides for the in-process server's config, as `load_config` takes
    them (a module overrides this)."""
    return {}


@pytest.fixture
def cfg(tmp_path: Path, db_url: str, server_options: dict[str, Any],
        config_overrides: dict[str, Any]) -> wolive.Config:
    return wolive.load_config(str(write_config(tmp_path, db_url, **server_options)),
                              config_overrides or None)


@pytest.fixture
def wolive_server(io_loop: Any, cfg: wolive.Config) -> Iterator[wolive.Wolive]:
    from helpers import OPEN_SOCKETS
    server = io_loop.run_sync(lambda: wolive.make_app(cfg))
    yield server

    async def close_all() -> None:
        while OPEN_SOCKETS:
            OPEN_SOCKETS.pop().close()
        await asyncio.sleep(0.01)
        await server.stop()
    io_loop.run_sync(close_all)


@pytest.fixture
def app(wolive_server: wolive.Wolive) -> Any:
    return wolive_server.app


@pytest.fixture
def http_server(io_loop: Any, app: Any) -> Iterator[Any]:
    """Overrides pytest-tornado's: requests `app` directly, so `db_url`'s params reach it,
    through wolive's own listener (`handlers.http_server.HTTPServer`) as `wolive.py` runs."""
    from tornado.testing import bind_unused_port

    from handlers.http_server import HTTPServer
    sock, port = bind_unused_port()
    server = HTTPServer(app)
    server.add_sockets([sock])
    server.port = port  # type: ignore[attr-defined]
    yield server
    server.stop()
    io_loop.run_sync(server.close_all_connections)


@pytest.fixture
def base_url(http_server: Any) -> str:
    return f"http://127.0.0.1:{http_server.port}"


@pytest.fixture
def ws_base(http_server: Any) -> str:
    return f"ws://127.0.0.1:{http_server.port}"


# ---- logs --------------------------------------------------------------------------------

class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    handler = _Collect()
    loggers = [logging.getLogger(n) for n in ("wolive", "tornado")]
    for lg in loggers:
        lg.addHandler(handler)
    yield
    for lg in loggers:
        lg.removeHandler(handler)
    if handler.records and not request.node.get_closest_marker("allow_error_logs"):
        pytest.fail("unexpected error logs:\n" + "\n".join(
            handler.format(r) for r in handler.records))


# ---- a real process ----------------------------------------------------------------------

@dataclass
class RunningServer:
    base_url: str
    demo_url: str
    ws_url: str
    db_url: str
    config_path: Path
    proc: subprocess.Popen[str]
    log_path: Path
    ports: dict[str, str] = field(default_factory=dict)  # legacy_ws, legacy_api, demo URLs
    app_key: str = "wolive"

    def logs(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def start_server(tmp_path: Path, db_url: str, create_admin: bool = True,
                 row_cache_s: float | None = None, log_level: str = "warning",
                 extra: dict[str, Any] | None = None, **server: Any) -> RunningServer:
    server.setdefault("demo_port", 0)
    config_path = write_config(tmp_path, db_url, row_cache_s=row_cache_s,
                               log_level=log_level, extra=extra, **server)
    env = dict(os.environ, WOLIVE_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1")
    if create_admin:
        subprocess.run([sys.executable, str(ROOT / "wolive.py"), "--config", str(config_path),
                        "--create-admin", ADMIN_USER, "--business-id", BUSINESS],
                       check=True, env=env, capture_output=True, text=True, timeout=60)
    log_path = tmp_path / "server.log"
    with open(log_path, "w", encoding="utf-8") as out:  # the child keeps its own copy
        proc = subprocess.Popen([sys.executable, str(ROOT / "wolive.py"), "--config",
                                 str(config_path)], stdout=out, stderr=subprocess.STDOUT,
                                env=env, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text(encoding="utf-8")
        m = re.search(r"wolive ready on (https?://\S+?)/(.*)$", text, re.M)
        if m:
            base = m.group(1)
            ports = {name: url for name, url in re.findall(r", (\w+) (https?://\S+?)/", m.group(2))}
            return RunningServer(base_url=base, demo_url=ports.get("demo", ""), ports=ports,
                                 ws_url=base.replace("http", "ws", 1), db_url=db_url,
                                 config_path=config_path, proc=proc, log_path=log_path)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("wolive did not start:\n" + log_path.read_text(encoding="utf-8"))


def stop_server(server: RunningServer) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
            raise AssertionError("wolive did not stop on SIGTERM within 20 s")
    return server.proc.returncode


@pytest.fixture
def running_server(tmp_path: Path, db_url: str) -> Iterator[RunningServer]:
    server = start_server(tmp_path, db_url)
    yield server
    code = stop_server(server)
    assert code == 0, f"wolive exited {code} on SIGTERM:\n{server.logs()}"
    assert "Traceback" not in server.logs(), server.logs()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
