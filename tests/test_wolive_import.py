"""`wolive.py import-wolive` (issue 13, item 6): a WoLive database built from the document's
own CREATE TABLEs, with realistic rows, imported into SQLite and into MariaDB; the dry run;
then an old agent logs in with its old password and reads its old conversations, and old
`/upload/...` URLs answer with their files. Also `/admin/event/chat`, deployed WoLive's
spelling of `/admin/event/chats`."""
from __future__ import annotations

import hashlib
import re
import secrets
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import ROOT, _mysql_connect, _mysql_db_url, write_config
from helpers import Client, PusherSocket, db_rows, open_visitor_window
from test_chat import BIZ, notice

OLD_PASSWORD = "wolive-old-pass"
CAT_PATH = "/upload/images/20180102/cat.png"
AVATAR_PATH = "/upload/images/20171201/alice.png"
REPORT_PATH = "/upload/files/20180102/5a4b3c2d1e.pdf"
T0 = 1514851200  # 2018-01-02 00:00 UTC


def md5_password(user: str, password: str) -> str:
    return hashlib.md5((user + "hjkj" + password).encode()).hexdigest()


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


CAT = png(3, 2)
AVATAR = png(2, 2)
REPORT = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"

#: Rows of a WoLive site with two businesses. Bad UTF-8: chat 4 holds an emoji written as
#: two UTF-16 surrogates (CESU-8, which MySQL's utf8 accepts). Orphans: chat 8 (visitor
#: "ghost" unknown), chat 9 (agent 99 unknown), weixin 2 (agent 77). Duplicate: agent 5's
#: user name is agent 2's in another case.
ROWS = [
    "INSERT INTO wolive_business (wid, business_id, distribution_rule, state) VALUES "
    "(1, 'shopA', 'auto', 'open'), (2, 'shopB', 'claim', 'open')",
    "INSERT INTO wolive_service (service_id, user_name, nick_name, password, business_id, "
    "avatar, level, parent_id, state) VALUES "
    f"(1, 'alice', '小爱', '{md5_password('alice', OLD_PASSWORD)}', 'shopA', "
    f"'{AVATAR_PATH}', 'super_manager', 0, 'online'), "
    f"(2, 'bob', 'Bob', '{md5_password('bob', 'bob-password')}', 'shopA', "
    "'/assets/images/admin/avatar-admin2.png', 'service', 1, 'offline'), "
    f"(3, 'carol', 'Carol', '{md5_password('carol', 'carol-pass')}', 'shopB', "
    "'/assets/images/admin/avatar-admin2.png', 'manager', 0, 'offline'), "
    f"(5, 'Bob', 'Bob B', '{md5_password('Bob', 'other-bob')}', 'shopB', "
    "'/assets/images/admin/avatar-admin2.png', 'service', 3, 'offline')",
    "INSERT INTO wolive_visiter (vid, visiter_id, visiter_name, channel, avatar, ip, from_url, "
    "timestamp, business_id, state) VALUES "
    "(1, 'v1', '访客1', '76312f73686f7041', '/assets/images/index/avatar-red2.png', "
    "'10.0.0.1', 'http://a.example/item/1', '2018-01-02 10:00:00', 'shopA', 'online'), "
    "(2, 'v2', '访客2', '76322f73686f7041', '/assets/images/index/avatar-red2.png', "
    "'10.0.0.2', 'http://a.example/', '2018-01-03 10:00:00', 'shopA', 'offline'), "
    "(3, 'v3', 'Guest', '76332f73686f7042', '/assets/images/index/avatar-red2.png', "
    "'10.0.0.3', 'http://b.example/', '2018-01-04 10:00:00', 'shopB', 'offline')",
    "INSERT INTO wolive_queue (qid, visiter_id, service_id, business_id, state) VALUES "
    "(1, 'v1', 1, 'shopA', 'normal'), (2, 'v2', 0, 'shopA', 'normal'), "
    "(3, 'v3', 3, 'shopB', 'complete')",
    "INSERT INTO wolive_chats (cid, visiter_id, service_id, business_id, content, timestamp, "
    "state, direction) VALUES "
    f"(1, 'v1', 1, 'shopA', '你好，请问 &lt;b&gt; 有货吗？', {T0 + 36000}, 'readed', "
    "'to_service'), "
    f"(2, 'v1', 1, 'shopA', '有的<br>欢迎 <img src=\"/assets/images/face/1.gif\" alt=\"[微笑]\">',"
    f" {T0 + 36060}, 'readed', 'to_visiter'), "
    f"(3, 'v1', 1, 'shopA', '<img src=\"{CAT_PATH}\">', {T0 + 36120}, 'readed', "
    "'to_service'), "
    f"(5, 'v1', 1, 'shopA', \"<div style='height:80px'><a href='http://old.example{REPORT_PATH}'"
    " download='报价单.pdf'><i class='layui-icon'>&#xe61e;</i><br>报价单.pdf</a></div>\", "
    f"{T0 + 36240}, 'unread', 'to_visiter'), "
    f"(6, 'v3', 3, 'shopB', 'hello', {T0 + 40000}, 'readed', 'to_service'), "
    f"(7, 'v1', 1, 'shopA', '<img src=\"/upload/images/20180102/gone.jpg\">', {T0 + 36300}, "
    "'readed', 'to_service'), "
    f"(8, 'ghost', 1, 'shopA', 'who am I', {T0 + 36400}, 'unread', 'to_service'), "
    f"(9, 'v1', 99, 'shopA', 'from a deleted agent', {T0 + 36500}, 'readed', 'to_visiter')",
    "INSERT INTO wolive_message (mid, content, name, moblie, email, business_id, timestamp) "
    "VALUES (1, '请回电', '王先生', '13800000000', '', 'shopA', '2018-01-05 09:00:00'), "
    "(2, 'call me', 'Ann', '', 'ann@example.com', 'shopB', '2018-01-06 09:00:00')",
    "INSERT INTO wolive_question (qid, business_id, question, answer, answer_read) VALUES "
    "(1, 'shopA', '运费多少？', '<p>包邮</p>', '包邮')",
    "INSERT INTO wolive_sentence (sid, content, service_id, state) VALUES "
    "(1, '您好，有什么可以帮您？', 1, 'using')",
    "INSERT INTO wolive_tablist (tid, title, content, content_read, business_id) VALUES "
    "(1, '关于我们', '<p>老店</p>', '老店', 'shopA')",
    "INSERT INTO wolive_weixin (wid, service_id, open_id) VALUES (1, 1, 'oABC'), "
    "(2, 77, 'oXYZ')",
]
#: 😀 as CESU-8 (U+D83D U+DE00, each in three bytes).
CESU_EMOJI = "eda0bdedb880"


def build_wolive_database(url: str) -> None:
    doc = (ROOT.parent / "shared" / "seed" / "wolive-doc.md").read_text(encoding="utf-8")
    statements = [m.group(1) for m in
                  re.finditer(r"(CREATE TABLE `\w+` \(.*?\n\)[^;]*;)", doc, re.S)]
    assert len(statements) == 10
    for sql in statements + ROWS:
        db_rows(url, sql)
    db_rows(url, "INSERT INTO wolive_chats (cid, visiter_id, service_id, business_id, content, "
            f"timestamp, state, direction) VALUES (4, 'v1', 1, 'shopA', "
            f"CONCAT('好的', x'{CESU_EMOJI}'), {T0 + 36180}, 'readed', 'to_visiter')")


@pytest.fixture
def wolive_source(mariadb: None) -> Iterator[str]:
    """The old WoLive database (a MariaDB database of its own, utf8 as WoLive made it)."""
    name = "wolive_old_" + secrets.token_hex(6)
    conn = _mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8")
    try:
        url = _mysql_db_url(name)
        build_wolive_database(url)
        yield url
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def old_site(tmp_path: Path) -> Path:
    """The old site's `public` folder with its uploads (one is missing: gone.jpg)."""
    public = tmp_path / "old-site" / "public"
    for path, data in ((CAT_PATH, CAT), (AVATAR_PATH, AVATAR), (REPORT_PATH, REPORT)):
        f = public / path.lstrip("/")
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    (public / "upload" / "images" / "20180102" / "shell.php").write_bytes(b"<?php echo 1;")
    return public


def import_wolive(source: str, config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "wolive.py"), "import-wolive",
                           "--from", source, "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=120)


def source_snapshot(url: str) -> list[Any]:
    return [db_rows(url, f"CHECKSUM TABLE {t}") for t in (
        "wolive_service", "wolive_visiter", "wolive_chats", "wolive_queue", "wolive_message")]


@pytest.mark.parametrize("html, expected", [
    ('<img src="/upload/images/1/a.JPG">', ("image", "/upload/images/1/a.JPG")),
    (" <img class='chat_img' src='http://old.example/upload/images/1/a.png' > ",
     ("image", "/upload/images/1/a.png")),
    ('<a href="/upload/files/1/x.zip">x&amp;y.zip</a>', ("file", "/upload/files/1/x.zip\nx&y.zip")),
    ("/upload/files/1/plain.doc", ("file", "/upload/files/1/plain.doc\nplain.doc")),
    ('看 <img src="/upload/images/1/a.png"> 这个', ("text", "看 [图片] 这个")),
    ("<p>a</p><p>b &gt; c</p>", ("text", "a\nb > c")),
    ("<script>alert(1)</script>hi", ("text", "alert(1)hi")),
    ("1 < 2 and 3 > 2", ("text", "1 < 2 and 3 > 2")),
])
def test_wolive_message_html_becomes_typed_content(html: str, expected: tuple[str, str]) -> None:
    from store.wolive_import import classify_message
    assert classify_message(html)[:2] == expected


def test_bad_utf8_is_mended_or_replaced() -> None:
    from store.wolive_import import decode_text
    assert decode_text("好".encode()) == ("好", "")
    assert decode_text(bytes.fromhex("61" + CESU_EMOJI))[0] == "a😀"
    assert decode_text(b"a\xff") == ("a\ufffd", "bad bytes replaced with U+FFFD")
    assert decode_text(bytes.fromhex("eda0bd"))[0] == "\ufffd" * 3  # a lone half


# ---- the dry run -------------------------------------------------------------------------

def test_dry_run_reports_counts_and_problems_and_writes_nothing(
        wolive_source: str, old_site: Path, tmp_path: Path, fresh_mysql_db: str) -> None:
    target = tmp_path / "target"
    target.mkdir()
    config = write_config(target, "sqlite:///data/wolive.db")
    before = source_snapshot(wolive_source)
    result = import_wolive(wolive_source, config, "--dry-run", "--uploads-from", str(old_site))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "dry run, nothing written" in out
    counts = dict(re.findall(r"^\s+(wolive_\w+)\s+(\d+ →\s+\d+)$", out, re.M))
    assert {k: re.sub(r"\s+", " ", v) for k, v in counts.items()} == {
        "wolive_business": "2 → 2", "wolive_service": "4 → 4", "wolive_visiter": "3 → 3",
        "wolive_queue": "3 → 3", "wolive_chats": "9 → 7", "wolive_message": "2 → 2",
        "wolive_question": "1 → 1", "wolive_sentence": "1 → 1", "wolive_tablist": "1 → 1",
        "wolive_weixin": "2 → 1"}
    assert "problems: 6 (bad UTF-8 1, duplicate 1, missing upload 1, orphan 3)" in out
    assert "bad UTF-8: wolive_chats cid=4 content: surrogate pairs joined" in out
    assert "orphan: wolive_chats cid=8: visitor 'ghost' of 'shopA' does not exist" in out
    assert "orphan: wolive_chats cid=9: agent 99 does not exist" in out
    assert "orphan: wolive_weixin wid=2: agent 77 does not exist" in out
    assert "duplicate: wolive_service service_id=5: user name 'Bob'" in out
    assert "missing upload: wolive_chats cid=7: /upload/images/20180102/gone.jpg" in out
    assert "upload files to copy: 3" in out
    assert "messages read as image: 2" in out and "messages read as file: 1" in out
    assert "md5 passwords kept, upgraded to bcrypt at first login: 4" in out
    assert "visitor channels derived with this server's secret" in out
    # Nothing written: no target database, no upload copied, the source as it was.
    assert not (target / "data").exists()
    assert source_snapshot(wolive_source) == before
    # A MariaDB target that exists: still untouched by a dry run (no table made).
    config = write_config(target, fresh_mysql_db)
    result = import_wolive(wolive_source, config, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert db_rows(fresh_mysql_db, "SHOW TABLES") == []
    assert "missing upload: wolive_chats cid=3: /upload/images/20180102/cat.png (no " \
           "--uploads-from given)" in result.stdout


def test_refuses_a_target_with_rows_and_a_source_that_is_not_wolive(
        wolive_source: str, tmp_path: Path, fresh_mysql_db: str) -> None:
    config = write_config(tmp_path, fresh_mysql_db)
    result = import_wolive(wolive_source, config, "--uploads-from", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "is not a folder" in result.stderr
    result = import_wolive(fresh_mysql_db + "_nope", config)
    assert result.returncode == 1 and "cannot connect" in result.stderr
    db_rows(fresh_mysql_db, "CREATE TABLE wolive_other (x int)")
    result = import_wolive(fresh_mysql_db, config)
    assert result.returncode == 1 and "not a WoLive database" in result.stderr
    assert import_wolive(wolive_source, config).returncode == 0
    result = import_wolive(wolive_source, config)
    assert result.returncode == 1 and "already holds rows" in result.stderr


# ---- the import, then the old agent in the console ---------------------------------------

@pytest.fixture
def imported(wolive_source: str, old_site: Path, tmp_path: Path, db_url: str
             ) -> Iterator[str]:
    """The source imported into the test's database (SQLite or MariaDB) with its uploads,
    before the server starts (config at tmp_path, as the `cfg` fixture writes it)."""
    config = write_config(tmp_path, db_url)
    result = import_wolive(wolive_source, config, "--uploads-from", str(old_site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "upload files copied: 3" in result.stdout
    yield result.stdout


@pytest.mark.gen_test(timeout=60)
async def test_imported_agent_logs_in_with_old_password_and_reads_old_chats(
        imported: str, base_url: str, cfg: dict[str, Any], wolive_server: Any) -> None:
    db = cfg.database.url
    rows = db_rows(db, "SELECT cid, content, msg_type FROM wolive_chats ORDER BY cid")
    by_cid = {r["cid"]: r for r in rows}
    assert sorted(by_cid) == [1, 2, 3, 4, 5, 6, 7]
    assert by_cid[1]["content"] == "你好，请问 <b> 有货吗？" and by_cid[1]["msg_type"] == "text"
    assert by_cid[2]["content"] == "有的\n欢迎 [微笑]"
    assert by_cid[4]["content"] == "好的😀"
    assert by_cid[3]["msg_type"] == "image" and \
        re.fullmatch(r"/upload/[0-9a-f]{32}\.png", by_cid[3]["content"])
    new_file, name = by_cid[5]["content"].split("\n")
    assert by_cid[5]["msg_type"] == "file" and name == "报价单.pdf"
    assert re.fullmatch(r"/upload/[0-9a-f]{32}\.pdf", new_file)
    # The missing file's message keeps its old path (shown as text by the pages).
    assert by_cid[7]["content"] == "/upload/images/20180102/gone.jpg"
    assert [(r["name"], r["content"], r["business_id"]) for r in db_rows(
        db, "SELECT * FROM wolive_message ORDER BY mid")] == [
        ("王先生", "请回电", "shopA"), ("Ann", "call me", "shopB")]
    assert [(r["visiter_id"], r["service_id"], r["state"]) for r in db_rows(
        db, "SELECT * FROM wolive_queue ORDER BY qid")] == [
        ("v1", 1, "normal"), ("v2", 0, "normal"), ("v3", 3, "complete")]
    assert db_rows(db, "SELECT open_id FROM wolive_weixin") == [{"open_id": "oABC"}]
    agents = {r["user_name"]: r for r in db_rows(db, "SELECT * FROM wolive_service")}
    assert set(agents) == {"alice", "bob", "carol", "Bob-5"}
    assert re.fullmatch(r"/upload/[0-9a-f]{32}\.png", agents["alice"]["avatar"])

    # The real login URL, the old password: in, and the hash is bcrypt now.
    alice = Client(base_url)
    resp = await alice.login("alice", OLD_PASSWORD)
    assert resp.code == 302 and resp.headers["Location"] == "/admin/index/index", resp.body[:300]
    stored = db_rows(db, "SELECT password FROM wolive_service WHERE user_name = 'alice'")
    assert stored[0]["password"].startswith("$2b$")
    assert (await Client(base_url).login("alice", "wrong password")).code == 401
    assert (await Client(base_url).login("alice", OLD_PASSWORD)).code == 302  # bcrypt now
    # The agent renamed for a duplicate user name: new name, old password.
    assert (await Client(base_url).login("Bob-5", "other-bob")).code == 302
    assert db_rows(db, "SELECT password FROM wolive_service WHERE service_id = 5"
                   )[0]["password"].startswith("$2b$")

    # Its old conversations through the console's history API.
    code, body = await alice.json("/admin/set/getvisiters", form={"business_id": "shopA"})
    assert code == 200 and body["code"] == 0, body
    visitors = {r["visiter_id"]: r for r in body["data"]["rows"]}
    assert "v1" in visitors and visitors["v1"]["visiter_name"] == "访客1"
    # WoLive's channel (hex of "v1/shopA") is gone: this server's, derived with its secret.
    assert visitors["v1"]["channel"] == wolive_server.chat.channel_for("shopA", "v1")
    code, body = await alice.json("/admin/set/getdesignForViews", form={
        "channel": visitors["v1"]["channel"], "start": "2018-01-01", "end": "2018-01-31",
        "business_id": "shopA"})
    assert code == 200 and body["code"] == 0, body
    history = {r["cid"]: r for r in body["data"]["rows"]}
    assert {1, 2, 3, 4, 5} <= set(history)
    assert history[3]["msg_type"] == "image" and history[3]["content"] == by_cid[3]["content"]

    # The stored URLs and the old ones answer with the files.
    anon = Client(base_url)
    for url in (by_cid[3]["content"], CAT_PATH, "/upload/images/20180102/cat%2Epng"):
        resp = await anon.fetch(url)
        assert resp.code == 200 and resp.body == CAT, url
        assert resp.headers["Content-Type"] == "image/png"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for url in (new_file, REPORT_PATH):
        resp = await anon.fetch(url)
        assert resp.code == 200 and resp.body == REPORT, url
        assert resp.headers["Content-Disposition"].startswith("attachment")
    resp = await anon.fetch(AVATAR_PATH)
    assert resp.code == 200 and resp.body == AVATAR
    for url in ("/upload/images/20180102/gone.jpg", "/upload/images/20180102/shell.php",
                "/upload/../config.yaml"):
        assert (await anon.fetch(url)).code == 404, url


@pytest.mark.mariadb
def test_import_in_place(wolive_source: str, old_site: Path, tmp_path: Path) -> None:
    """The config points at the WoLive database itself: converted, migrated, mended."""
    config = write_config(tmp_path, wolive_source)
    result = import_wolive(wolive_source, config, "--uploads-from", str(old_site))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(in place)" in result.stdout and "orphan: wolive_chats cid=8" in result.stdout
    engines = db_rows(wolive_source, "SELECT table_name AS t, engine AS e, table_collation AS c "
                      "FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                      "table_name IN ('wolive_chats', 'wolive_service')")
    assert {(r["e"], r["c"]) for r in engines} == {("InnoDB", "utf8mb4_unicode_ci")}
    rows = {r["cid"]: r for r in db_rows(wolive_source, "SELECT * FROM wolive_chats")}
    assert len(rows) == 9  # orphans stay where they are
    assert rows[4]["content"] == "好的😀" and rows[3]["msg_type"] == "image"
    assert rows[1]["content"] == "你好，请问 <b> 有货吗？"
    assert db_rows(wolive_source, "SELECT user_name FROM wolive_service WHERE service_id = 5"
                   ) == [{"user_name": "Bob-5"}]


# ---- deployed WoLive's URL spelling ------------------------------------------------------

@pytest.mark.gen_test
async def test_event_chat_singular_is_event_chats(
        boss: Client, boss_online: PusherSocket, base_url: str, cfg: dict[str, Any]) -> None:
    db = cfg.database.url
    agent_sock = boss_online
    assert agent_sock is not None
    visitor, boot = await open_visitor_window(base_url, BIZ, "old-site-visitor")
    assert (await notice(visitor, boot))[1]["code"] == 0
    for url in ("/admin/event/chat", "/admin/event/chats"):
        code, body = await visitor.json(url, "POST", form={
            "visiter_id": "old-site-visitor", "business_id": BIZ, "service_id": 1,
            "channel": boot["channel"], "content": f"via {url}", "avatar": "", "record": ""})
        assert (code, body["code"], body["msg"]) == (200, 0, "success"), body
        frame = await agent_sock.expect("cu-event", "kefu1")
        assert frame["data"]["message"]["content"] == f"via {url}"
    stranger = Client(base_url)
    code, body = await stranger.json("/admin/event/chat", "POST", form={
        "visiter_id": "old-site-visitor", "business_id": BIZ, "channel": "cu-guess",
        "content": "spoof"})
    assert code == 403 and body["code"] == 3
    assert [r["content"] for r in db_rows(db, "SELECT content FROM wolive_chats WHERE "
                                          "visiter_id = 'old-site-visitor' AND msg_type = "
                                          "'text' ORDER BY cid")] == \
        ["via /admin/event/chat", "via /admin/event/chats"]

