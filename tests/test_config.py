"""Config: every key has a default; a bad config exits non-zero with one line naming the key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import wolive
from conftest import ROOT


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
        assert shipped[section] == defaults[section], section
    assert {k: v for k, v in shipped["server"].items() if k not in ("demo_port", "data_dir")} \
        == {k: v for k, v in defaults["server"].items() if k not in ("demo_port", "data_dir")}
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    for section, keys in wolive.SCHEMA.items():
        for key in (keys if isinstance(keys, dict) else {section: None}):
            assert f"{key}:" in text, f"config.yaml does not document {section}.{key}"


def test_secrets_generated_once_and_kept(tmp_path: Path) -> None:
    cfg = wolive.load_config(None, {"server.data_dir": str(tmp_path / "d")})
    wolive.fill_secrets(cfg)
    again = wolive.load_config(None, {"server.data_dir": str(tmp_path / "d")})
    wolive.fill_secrets(again)
    assert cfg["server"]["cookie_secret"] == again["server"]["cookie_secret"]
    assert cfg["pusher"]["apps"][0]["secret"] == again["pusher"]["apps"][0]["secret"]
    assert len(cfg["pusher"]["apps"][0]["secret"]) == 64
    assert (tmp_path / "d" / "secrets.json").stat().st_mode & 0o077 == 0
    other = wolive.load_config(None, {"server.data_dir": str(tmp_path / "e")})
    wolive.fill_secrets(other)
    assert other["server"]["cookie_secret"] != cfg["server"]["cookie_secret"]


def test_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    result = run("database:\n  url: mysql://root:@127.0.0.1:1/nothing\n", tmp_path)
    assert result.returncode == 2
    assert "database.url: cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr
