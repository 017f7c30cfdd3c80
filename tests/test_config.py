"""Config: every key has a default; a bad config exits non-zero with one line naming the key."""
from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

import config
import wolive
from conftest import ROOT, write_config
from helpers import Client, PusherSocket, db_rows, open_visitor_window


def run(config_text: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "c.yaml"
    if config_text is not None:
        path.write_text(config_text, encoding="utf-8")
    return subprocess.run([sys.executable, str(ROOT / "wolive.py"), "--config", str(path)],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)


@pytest.mark.parametrize("text, key", [
    ("server:\n  prot: 8000\n", "server.prot: unknown key"),
    ("server:\n  port: eighty\n", "server.port: must be int"),
    ("server:\n  port: true\n", "server.port: must be a whole number"),
    ("server:\n  port: 70000\n", "server.port: 70000 is not a port number"),
    ("databse:\n  url: x\n", "databse: unknown key"),
    ("database:\n  url: postgres://x/y\n", "database.url: unknown scheme 'postgres'"),
    ("pusher:\n  apps: []\n", "pusher.apps: at least one app"),
    ("pusher:\n  apps:\n    - {id: '1', key: k, colour: red}\n",
     "pusher.apps[0].colour: unknown key"),
    ("security:\n  bcrypt_rounds: 40\n", "security.bcrypt_rounds: must be 4-16"),
    ("chat:\n  max_conversations_per_agent: -1\n", "chat.max_conversations_per_agent: must be 0"),
    ("pusher:\n  write_window_ms: -1\n", "pusher.write_window_ms: must be 0-100"),
    ("pusher:\n  write_window_ms: 500\n", "pusher.write_window_ms: must be 0-100"),
    ("pusher:\n  write_window_ms: soon\n", "pusher.write_window_ms: must be int or float"),
    ("pusher:\n  write_window_ms: true\n", "pusher.write_window_ms: must be a number, not True"),
    ("log_level: loud\n", "log_level: must be"),
    ("server: [1, 2\n", "not valid YAML"),
    ("- just a list\n", "config: must be a mapping"),
])
def test_bad_config_exits_with_one_line_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    result = run(text, tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert key in lines[0]
    assert "Traceback" not in result.stderr


def test_unreadable_config_file(tmp_path: Path) -> None:
    result = run(None, tmp_path)
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "c.yaml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_shipped_config_yaml_is_the_defaults() -> None:
    """config.yaml documents every key with its default (demo_port aside, on for newcomers)."""
    shipped = wolive.load_config(str(ROOT / "config.yaml"))
    defaults = wolive.load_config(None)
    for section in ("database", "pusher", "chat", "security"):
        assert getattr(shipped, section) == getattr(defaults, section), section
    assert dataclasses.replace(shipped.server, demo_port=None, data_dir="") \
        == dataclasses.replace(defaults.server, demo_port=None, data_dir="")
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    for f in dataclasses.fields(config.Config):
        if not f.metadata.get("key", True):
            continue
        keys = config.SECTIONS.get(f.name)
        for key in ([k.name for k in dataclasses.fields(keys)] if keys else [f.name]):
            assert f"{key}:" in text, f"config.yaml does not document {f.name}.{key}"


def test_secrets_generated_once_and_kept(tmp_path: Path) -> None:
    cfg = wolive.load_config(None, {"server.data_dir": str(tmp_path / "d")})
    assert cfg.server.cookie_secret == ""
    cfg = wolive.fill_secrets(cfg)
    again = wolive.fill_secrets(wolive.load_config(None, {"server.data_dir": str(tmp_path / "d")}))
    assert cfg.server.cookie_secret == again.server.cookie_secret
    assert cfg.pusher.apps[0].secret == again.pusher.apps[0].secret
    assert len(cfg.pusher.apps[0].secret) == 64
    assert (tmp_path / "d" / "secrets.json").stat().st_mode & 0o077 == 0
    other = wolive.fill_secrets(wolive.load_config(None, {"server.data_dir": str(tmp_path / "e")}))
    assert other.server.cookie_secret != cfg.server.cookie_secret


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = run("database:\n  url: mysql://root:@127.0.0.1:1/nothing\n", tmp_path)
    assert result.returncode == 2
    assert "database.url: cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr


# ---- typed, frozen, defaults once ---------------------------------------------------------

def test_config_is_frozen_and_typed() -> None:
    cfg = wolive.load_config(None)
    assert isinstance(cfg, config.Config) and isinstance(cfg.chat, config.ChatConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.chat.max_message_chars = 1  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.server = config.ServerConfig()  # type: ignore[misc]
    assert isinstance(cfg.pusher.apps, tuple) and isinstance(cfg.metrics.allow_ips, tuple)
    with pytest.raises(AttributeError):  # slots: no stray attributes either
        object.__setattr__(cfg.chat, "colour", "red")


#: Constants that equal a config default by coincidence (other units, other meanings).
UNRELATED = {"TURN_MS", "SQLITE_BUSY_TIMEOUT_MS"}


def test_defaults_come_from_the_dataclasses_only() -> None:
    """`load_config(None)` is the dataclasses' defaults (paths made absolute), and no module
    keeps its own copy of a distinctive default (a constant or a parameter default)."""
    loaded = wolive.load_config(None)
    assert dataclasses.replace(loaded, base_dir="", server=dataclasses.replace(
        loaded.server, data_dir="data")) == config.Config()
    distinctive = set()
    for section in config.SECTIONS.values():
        for f in dataclasses.fields(section):
            value = getattr(section(), f.name) if f.name != "apps" else None
            if isinstance(value, int) and not isinstance(value, bool) and value >= 1000:
                distinctive.add(value)
            if isinstance(value, str) and len(value) >= 12:
                distinctive.add(value)
    assert {5000, 8000, 18 * 1024 * 1024, "sqlite:///data/wolive.db"} <= distinctive

    def constant(node: ast.AST) -> object:
        try:  # a literal, or arithmetic on literals (18 * 1024 * 1024)
            return eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})
        except Exception:
            return None

    found = []
    sources = [ROOT / "wolive.py"] + [p for d in ("handlers", "realtime", "store")
                                      for p in sorted((ROOT / d).rglob("*.py"))]
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            values: list[ast.AST] = []
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id in UNRELATED for t in targets):
                    continue
                values = [node.value]
            elif isinstance(node, ast.arguments):
                values = [*node.defaults, *(d for d in node.kw_defaults if d is not None)]
            for v in values:
                value = constant(v)
                if isinstance(value, (int, str)) and not isinstance(value, bool) \
                        and value in distinctive:
                    found.append(f"{path.relative_to(ROOT)}:{v.lineno}: {value!r}")
    assert not found, found


# ---- environment overrides ----------------------------------------------------------------

SECRET = "s" * 64


def test_environment_overrides_secrets_and_urls(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("database:\n  url: sqlite:///file.db\nserver:\n  public_url: http://a\n",
                    encoding="utf-8")
    env = {"WOLIVE_DATABASE_URL": "mysql://u:p@db:3306/wolive",
           "WOLIVE_REDIS_URL": "redis://redis:6379/0", "WOLIVE_COOKIE_SECRET": SECRET,
           "WOLIVE_CHANNEL_SECRET": SECRET + "c", "WOLIVE_PUBLIC_URL": "https://kefu.example",
           "WOLIVE_APP_SECRET_1": SECRET + "a", "WOLIVE_METRICS_TOKEN": "t0k",
           "WOLIVE_WECHAT_SECRET": "wx-secret"}
    cfg = wolive.load_config(str(path), {"uploads.shared": True}, environ=env)
    assert cfg.database.url == "mysql://u:p@db:3306/wolive"
    assert cfg.cluster.redis_url == "redis://redis:6379/0"
    assert (cfg.server.cookie_secret, cfg.server.channel_secret) == (SECRET, SECRET + "c")
    assert cfg.server.public_url == "https://kefu.example"
    assert cfg.pusher.apps[0].secret == SECRET + "a"
    assert (cfg.metrics.token, cfg.wechat.secret) == ("t0k", "wx-secret")
    # Unset or empty: the file's value.
    plain = wolive.load_config(str(path), environ={"WOLIVE_PUBLIC_URL": ""})
    assert (plain.server.public_url, plain.database.url) == ("http://a", "sqlite:///file.db")
    assert wolive.fill_secrets(dataclasses.replace(cfg, server=dataclasses.replace(
        cfg.server, data_dir=str(tmp_path / "d")))).server.cookie_secret == SECRET
    assert config.app_secret_env("shop-2") == "WOLIVE_APP_SECRET_SHOP_2"


@pytest.mark.parametrize("env, message", [
    ({"WOLIVE_DATABASE_URL": "postgres://x/y"},
     "database.url (from WOLIVE_DATABASE_URL): unknown scheme 'postgres'"),
    ({"WOLIVE_REDIS_URL": "http://redis:6379"},
     "cluster.redis_url (from WOLIVE_REDIS_URL): must start with redis://"),
    ({"WOLIVE_REDIS_URL": "redis://r", "WOLIVE_DATABASE_URL": "mysql://u@db/w",
      "WOLIVE_COOKIE_SECRET": "short"},
     "server.cookie_secret (from WOLIVE_COOKIE_SECRET): set it to 32 or more"),
    ({"WOLIVE_REDIS_URL": "redis://r", "WOLIVE_DATABASE_URL": "mysql://u@db/w",
      "WOLIVE_COOKIE_SECRET": SECRET, "WOLIVE_CHANNEL_SECRET": SECRET,
      "WOLIVE_APP_SECRET_1": "short"},
     "pusher.apps[0].secret (from WOLIVE_APP_SECRET_1): set it to 32 or more"),
])
def test_bad_environment_value_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(wolive.ConfigProblem) as info:
        wolive.load_config(None, environ=env)
    assert str(info.value).startswith(message), str(info.value)


def test_bad_environment_value_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "wolive.py"), "check-config"],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path,
                            env={**os.environ, "WOLIVE_DATABASE_URL": "postgres://x/y"})
    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [
        "wolive: config error: database.url (from WOLIVE_DATABASE_URL): unknown scheme "
        "'postgres'; use sqlite:/// or mysql://"]


# ---- chat.max_message_chars end to end ----------------------------------------------------

@pytest.fixture
def cfg(tmp_path: Path, db_url: str) -> wolive.Config:
    """This file's server (`wolive_server`): messages up to 30,000 characters."""
    return wolive.load_config(str(write_config(
        tmp_path, db_url, extra={"chat": {"max_message_chars": 30000}})))


@pytest.mark.gen_test(timeout=60)
async def test_max_message_chars_is_honoured_by_both_message_urls(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: wolive.Config) -> None:
    """Set to 30,000, a 25,000-character message goes both ways (the handlers used to cap
    the parameter at 4 x the default, 20,000) and 30,001 is refused: code 1, HTTP 413."""
    from test_chat import BIZ, notice
    agent, agent_sock = boss, boss_online
    assert agent_sock is not None
    visitor, boot = await open_visitor_window(base_url, BIZ, "long-1", visiter_name="Ann")
    assert (await notice(visitor, boot))[1]["code"] == 0
    long, too_long = "长" * 25_000, "x" * 30_001
    ids = {"visiter_id": "long-1", "business_id": BIZ, "channel": boot["channel"]}
    code, body = await visitor.json("/admin/event/chats", "POST", form={**ids, "content": long})
    assert (code, body["code"]) == (200, 0), body
    frame = await agent_sock.expect("cu-event", "kefu1")
    assert frame["data"]["message"]["content"] == long
    code, body = await agent.json("/admin/set/chats", "POST",
                                  form={"visiter_id": "long-1", "content": long})
    assert (code, body["code"]) == (200, 0), body
    stored = db_rows(cfg.database.url, "SELECT content FROM wolive_chats ORDER BY cid")
    assert [len(r["content"]) for r in stored if len(r["content"]) > 1000] == [25_000, 25_000]
    for url, form in (("/admin/event/chats", ids), ("/admin/set/chats", {"visiter_id": "long-1"})):
        client = visitor if "event" in url else agent
        code, body = await client.json(url, "POST", form={**form, "content": too_long})
        assert (code, body["code"], body["msg"]) == \
            (413, 1, "content is over 30000 characters"), (url, body)
    # The chat window and the console let one type as much.
    page = await agent.fetch("/admin/index/index")
    assert 'maxlength="30000"' in page.body.decode()
