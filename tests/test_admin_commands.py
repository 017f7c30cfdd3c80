"""The admin commands (`python wolive.py <command> --config ...`, README "Production"), each
run as a real process on SQLite and on MariaDB: what they print, their exit codes and one-line
errors, dry runs that change nothing, and their effect seen from outside (a login through the
real form, files on disk, rows in the tables)."""
from __future__ import annotations

import http.cookiejar
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, BUSINESS, ROOT, start_server, stop_server
from conftest import write_config
from helpers import db_rows

DAY = 86400
NEW_PASSWORD = "a brand new secret 7"


def run(config: Path | None, *args: str, password: str | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("WOLIVE_ADMIN_PASSWORD", None)
    if password is not None:
        env["WOLIVE_ADMIN_PASSWORD"] = password
    cmd = [sys.executable, str(ROOT / "wolive.py"), *args]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120,
                          input=stdin if stdin is not None else "")


def one_line_error(result: subprocess.CompletedProcess[str], progress: bool = False) -> str:
    """The single line a failing command writes to standard error (`progress`: it may have
    reported what it checked before, on standard output, as check-config does)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert progress or result.stdout == "", result.stdout
    assert "Traceback" not in result.stderr
    return lines[0]


def tables(db_url: str) -> list[str]:
    if db_url.startswith("sqlite:///"):
        if not os.path.exists(db_url[len("sqlite:///"):]):
            return []
        return sorted(r["name"] for r in db_rows(
            db_url, "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%%'"))
    return sorted(next(iter(r.values())) for r in db_rows(db_url, "SHOW TABLES"))


def snapshot(db_url: str) -> dict[str, list[str]]:
    """Every row of every table, to compare before and after a dry run."""
    return {name: sorted(repr(sorted(r.items())) for r in db_rows(
        db_url, f"SELECT * FROM {name}")) for name in tables(db_url)}


def migrated(tmp_path: Path, db_url: str) -> Path:
    config = write_config(tmp_path, db_url)
    result = run(config, "create-admin", ADMIN_USER, "--business-id", BUSINESS,
                 password=ADMIN_PASSWORD)
    assert result.returncode == 0, result.stderr
    assert f"created business {BUSINESS!r} and super_manager {ADMIN_USER!r}" in result.stdout
    return config


# ---- help, config, migrate ---------------------------------------------------------------

COMMANDS = ["check-config", "migrate", "create-admin", "reset-password", "cleanup-uploads",
            "purge-conversations", "import-wolive"]


def test_every_command_has_help() -> None:
    top = run(None, "--help")
    assert top.returncode == 0
    for name in COMMANDS:
        assert name in top.stdout
        result = run(None, name, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: wolive.py {name}"), result.stdout
        assert "--config" in result.stdout
    assert "--dry-run" in run(None, "migrate", "--help").stdout
    assert "--dry-run" in run(None, "cleanup-uploads", "--help").stdout
    assert "--dry-run" in run(None, "purge-conversations", "--help").stdout


def test_bad_config_and_unreachable_database(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: {prot: 80}\n", encoding="utf-8")
    for name in ("check-config", "migrate", "cleanup-uploads"):
        result = run(bad, name)
        assert result.returncode == 2
        assert one_line_error(result) == "wolive: config error: server.prot: unknown key"
    gone = write_config(tmp_path, "mysql://root:@127.0.0.1:1/nothing_here")
    for args in (["check-config"], ["migrate"], ["migrate", "--dry-run"],
                 ["reset-password", "boss"], ["cleanup-uploads", "--dry-run"],
                 ["purge-conversations", "--older-than-days", "3", "--business-id", "x"]):
        result = run(gone, *args, password=NEW_PASSWORD)
        assert result.returncode == 2, (args, result.stderr)
        line = one_line_error(result, progress=args[0] == "check-config")
        assert line.startswith(f"wolive: {args[0]}: database.url: cannot use the database"), \
            line
    missing = write_config(tmp_path, f"sqlite:///{tmp_path}/none/wolive.db")
    result = run(missing, "cleanup-uploads")
    assert result.returncode == 1
    assert "does not exist" in one_line_error(result)
    assert not (tmp_path / "none" / "wolive.db").exists()


def test_check_config_and_migrate(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, db_url)
    before = snapshot(db_url)
    assert before == {}
    check = run(config, "check-config")
    assert check.returncode == 0, check.stderr
    assert f"config {config}: ok" in check.stdout
    if db_url.startswith("sqlite"):
        assert "does not exist yet" in check.stdout
    else:
        assert "answers; schema version 0 of 14: migrations 1-14 pending" in check.stdout

    dry = run(config, "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    if db_url.startswith("sqlite"):
        assert "migrate would make it with every table and run migrations 1-14" in dry.stdout
    else:
        assert "would create tables: wolive_service" in dry.stdout
        for version in range(1, 15):
            assert f"would run migration {version}: " in dry.stdout
    assert snapshot(db_url) == before  # nothing made, not even the SQLite file

    done = run(config, "migrate")
    assert done.returncode == 0, done.stderr
    assert "from schema version 0 to 14 (ran 1-14)" in done.stdout
    assert "wolive_chats" in tables(db_url)
    assert run(config, "migrate").stdout.startswith("nothing to do")
    assert "schema version 14 of 14" in run(config, "check-config").stdout

    # A database from before migrations 11 to 14: a dry run lists them and runs nothing.
    db_rows(db_url, "DELETE FROM wolive_schema WHERE version > 10")
    before = snapshot(db_url)
    dry = run(config, "migrate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line.split(":")[0] for line in dry.stdout.splitlines()] == ["dry run"] * 4
    for version in (11, 12, 13, 14):
        assert f"would run migration {version}: " in dry.stdout
    assert "migration 10" not in dry.stdout
    assert snapshot(db_url) == before
    assert "migrations 11-14 pending" in run(config, "check-config").stdout
    done = run(config, "migrate")
    assert "from schema version 10 to 14 (ran 11-14)" in done.stdout, done.stdout
    assert [r["version"] for r in db_rows(db_url, "SELECT version FROM wolive_schema "
                                          "ORDER BY version")] == list(range(1, 15))


# ---- create-admin and reset-password -----------------------------------------------------

def login(base_url: str, user: str, password: str) -> int:
    """POST the real login form (with its _xsrf cookie) and return the status: 302 to the
    console when the password is right, 401 when not."""
    jar = http.cookiejar.CookieJar()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    opener.open(base_url + "/admin/login/index", timeout=10).read()
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    body = urllib.parse.urlencode({"username": user, "password": password,
                                   "_xsrf": xsrf}).encode()
    try:
        with opener.open(base_url + "/admin/login/index", data=body, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_create_admin_command_and_reset_password(tmp_path: Path, db_url: str) -> None:
    config = migrated(tmp_path, db_url)
    again = run(config, "create-admin", "other", password=ADMIN_PASSWORD)
    assert again.returncode == 2 and "exists already" in one_line_error(again)
    # The old flag still works as documented (here: refused, one exists).
    flag = run(config, "--create-admin", "other", password=ADMIN_PASSWORD)
    assert flag.returncode == 2 and "exists already" in flag.stderr

    unknown = run(config, "reset-password", "nobody", password=NEW_PASSWORD)
    assert unknown.returncode == 1
    assert one_line_error(unknown) == "wolive: reset-password: no agent named 'nobody'"
    weak = run(config, "reset-password", ADMIN_USER, password="short")
    assert weak.returncode == 1 and "at least 8" in one_line_error(weak)

    server = start_server(tmp_path, db_url, create_admin=False)
    try:
        assert login(server.base_url, ADMIN_USER, ADMIN_PASSWORD) == 302
        # The password from standard input (no terminal, no variable), as for create-admin.
        reset = run(config, "reset-password", ADMIN_USER, stdin=NEW_PASSWORD + "\n")
        assert reset.returncode == 0, reset.stderr
        assert reset.stdout.strip() == (f"reset the password of super_manager {ADMIN_USER!r} "
                                        f"(business {BUSINESS!r}); its open sessions are "
                                        "logged out")
        assert NEW_PASSWORD not in reset.stdout + reset.stderr
        assert login(server.base_url, ADMIN_USER, ADMIN_PASSWORD) == 401
        assert login(server.base_url, ADMIN_USER, NEW_PASSWORD) == 302
        # From the variable, and user names ignore case as the login form does.
        assert run(config, "reset-password", ADMIN_USER.upper(),
                   password=ADMIN_PASSWORD).returncode == 0
        assert login(server.base_url, ADMIN_USER, NEW_PASSWORD) == 401
        assert login(server.base_url, ADMIN_USER, ADMIN_PASSWORD) == 302
    finally:
        assert stop_server(server) == 0


# ---- cleanup-uploads ---------------------------------------------------------------------

def _upload(folder: Path, name: str, age_days: float, sidecar: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(b"x" * 10)
    when = time.time() - age_days * DAY
    targets = [path]
    if sidecar:
        meta = folder / (name + ".meta.json")
        meta.write_text('{"name": "a.png"}', encoding="utf-8")
        targets.append(meta)
    for target in targets:
        os.utime(target, (when, when))
    return path


def _files(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in folder.iterdir()}


def test_cleanup_uploads(tmp_path: Path, db_url: str) -> None:
    config = migrated(tmp_path, db_url)
    uploads = tmp_path / "data" / "uploads"
    names = {key: f"{key * 32}.png" for key in "abcdef"}
    in_chat = _upload(uploads, names["a"], 90)          # an image message
    in_file = _upload(uploads, f"{'b' * 32}.pdf", 90)    # a file message (name after \n)
    avatar = _upload(uploads, names["c"], 90)           # an agent's avatar
    orphan = _upload(uploads, names["d"], 90)           # nothing refers to it
    recent = _upload(uploads, names["e"], 2)            # nothing refers to it, but new
    lone_meta = uploads / (names["f"] + ".meta.json")    # a sidecar without its file
    lone_meta.write_text("{}", encoding="utf-8")
    os.utime(lone_meta, (time.time() - 90 * DAY,) * 2)
    other = _upload(uploads, "README.txt", 90, sidecar=False)  # not ours: never touched
    # A file an old WoLive URL is an alias of (import-wolive, realtime/chat/legacy_uploads.py).
    aliased = _upload(uploads, f"{'9' * 32}.jpg", 90)
    from realtime.chat.legacy_uploads import ALIAS_DIR, alias_key
    (uploads / ALIAS_DIR).mkdir()
    (uploads / ALIAS_DIR / alias_key("/upload/images/20171129/a.jpg")).write_text(
        aliased.name, encoding="utf-8")
    db_rows(db_url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, content, "
            "timestamp, direction, msg_type) VALUES (%s, 1, %s, %s, %s, 'to_service', "
            "'image')", ("v1", BUSINESS, f"/upload/{in_chat.name}", int(time.time())))
    db_rows(db_url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, content, "
            "timestamp, direction, msg_type) VALUES (%s, 1, %s, %s, %s, 'to_visiter', "
            "'file')", ("v1", BUSINESS, f"/upload/{in_file.name}\nprice list.pdf",
                        int(time.time())))
    db_rows(db_url, "UPDATE wolive_service SET avatar = %s", (f"/upload/{avatar.name}",))

    before = _files(uploads)
    rows = snapshot(db_url)
    dry = run(config, "cleanup-uploads", "--older-than-days", "30", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert _files(uploads) == before and snapshot(db_url) == rows
    lines = dry.stdout.splitlines()
    assert lines[:-1] == [f"dry run: would delete {uploads / orphan.name}",
                          f"dry run: would delete {uploads / lone_meta.name}"]
    assert lines[-1] == (f"dry run: would delete 2 file(s), 29 bytes, from {uploads}; kept 4 "
                         "referenced, 1 newer than 30 day(s), 2 other")

    done = run(config, "cleanup-uploads", "--older-than-days", "30")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("deleted 2 file(s), 29 bytes")
    left = set(_files(uploads))
    assert left == set(before) - {orphan.name, orphan.name + ".meta.json", lone_meta.name}
    for kept in (in_chat, in_file, avatar, recent, other, aliased):
        assert kept.name in left
    # The recent one goes once it is old enough for the limit asked.
    again = run(config, "cleanup-uploads", "--older-than-days", "1")
    assert again.stdout.splitlines()[-1].startswith("deleted 1 file(s)"), again.stdout
    assert recent.name not in set(_files(uploads))

    bad = run(config, "cleanup-uploads", "--older-than-days", "0")
    assert bad.returncode == 2 and "must be 1 or more" in bad.stderr


# ---- purge-conversations -----------------------------------------------------------------

def _conversation(db_url: str, business: str, visitor: str, age_days: float,
                  state: str = "normal", online: bool = False) -> None:
    when = int(time.time() - age_days * DAY)
    db_rows(db_url, "INSERT INTO wolive_visiter (visiter_id, visiter_name, channel, avatar, "
            "ip, from_url, business_id, state) VALUES (%s, %s, %s, '', '1.2.3.4', '', %s, %s)",
            (visitor, visitor, "c" + visitor, business, "online" if online else "offline"))
    db_rows(db_url, "INSERT INTO wolive_queue (visiter_id, service_id, business_id, state) "
            "VALUES (%s, 1, %s, %s)", (visitor, business, state))
    for i in range(3):
        db_rows(db_url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, "
                "content, timestamp, direction) VALUES (%s, 1, %s, %s, %s, 'to_service')",
                (visitor, business, f"hello {i}", when - 60 * (3 - i)))
    db_rows(db_url, "INSERT INTO wolive_rating (visiter_id, business_id, service_id, score, "
            "comment, ended_cid, timestamp) VALUES (%s, %s, 1, 5, '', 1, %s)",
            (visitor, business, when))
    db_rows(db_url, "INSERT INTO wolive_conversation (business_id, visiter_id, service_id, "
            "started_at, assigned_at, ended_at, missed) VALUES (%s, %s, 1, %s, %s, %s, 0)",
            (business, visitor, when - 200, when - 190, when))


def _count(db_url: str, table: str, visitor: str, business: str = BUSINESS) -> int:
    return int(db_rows(db_url, f"SELECT COUNT(*) AS n FROM {table} WHERE visiter_id = %s "
                       "AND business_id = %s", (visitor, business))[0]["n"])


def test_purge_conversations(tmp_path: Path, db_url: str) -> None:
    config = migrated(tmp_path, db_url)
    db_rows(db_url, "INSERT INTO wolive_business (business_id) VALUES ('other')")
    _conversation(db_url, BUSINESS, "old", 100)
    _conversation(db_url, BUSINESS, "new", 3)
    _conversation(db_url, BUSINESS, "old-online", 100, online=True)
    _conversation(db_url, BUSINESS, "old-banned", 100, state="in_black_list")
    _conversation(db_url, "other", "old", 100)
    # A conversation with an old first message and a recent last one stays whole.
    _conversation(db_url, BUSINESS, "long", 100)
    db_rows(db_url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, content, "
            "timestamp, direction) VALUES ('long', 1, %s, 'still here', %s, 'to_visiter')",
            (BUSINESS, int(time.time())))

    before = snapshot(db_url)
    dry = run(config, "purge-conversations", "--older-than-days", "30", "--business-id",
              BUSINESS, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == (
        f"dry run: would delete 2 conversation(s) of business {BUSINESS!r} with no message "
        "in 30 day(s): 6 wolive_chats, 2 wolive_rating, 1 wolive_queue, 1 wolive_visiter, "
        "0 wolive_visiter_info, 2 wolive_conversation rows; kept 1 of visitors online now")
    assert snapshot(db_url) == before

    done = run(config, "purge-conversations", "--older-than-days", "30", "--business-id",
               BUSINESS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"deleted 2 conversation(s) of business {BUSINESS!r}")
    for table in ("wolive_chats", "wolive_rating", "wolive_queue", "wolive_visiter",
                  "wolive_conversation"):
        assert _count(db_url, table, "old") == 0, table
        assert _count(db_url, table, "new") > 0, table
        assert _count(db_url, table, "old-online") > 0, table
        assert _count(db_url, table, "old", "other") > 0, table
        assert _count(db_url, table, "long") > 0, table
    assert _count(db_url, "wolive_chats", "old-banned") == 0
    assert _count(db_url, "wolive_queue", "old-banned") == 1  # the blacklist stays
    assert _count(db_url, "wolive_visiter", "old-banned") == 1
    assert _count(db_url, "wolive_chats", "long") == 4

    unknown = run(config, "purge-conversations", "--older-than-days", "30", "--business-id",
                  "nope")
    assert unknown.returncode == 1
    assert one_line_error(unknown) == "wolive: purge-conversations: no business 'nope'"
    usage = run(config, "purge-conversations", "--business-id", BUSINESS)
    assert usage.returncode == 2 and "--older-than-days" in usage.stderr


@pytest.mark.parametrize("command", ["reset-password", "cleanup-uploads"])
def test_commands_refuse_a_database_without_tables(tmp_path: Path, command: str,
                                                   fresh_mysql_db: str) -> None:
    config = write_config(tmp_path, fresh_mysql_db)
    args = [command, ADMIN_USER] if command == "reset-password" else [command]
    result = run(config, *args, password=NEW_PASSWORD)
    assert result.returncode == 1
    assert one_line_error(result) == "wolive: the database has no wolive tables: run " \
                                     "migrate first"
    assert tables(fresh_mysql_db) == []
