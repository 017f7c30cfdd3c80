"""First run (install page once, then 404 for good) and agent login / logout."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, write_config
from helpers import PASSWORD, Client, db_rows
from shop import Shop



@pytest.mark.gen_test
async def test_install_once_then_gone(base_url: str, cfg: dict) -> None:
    c = Client(base_url)
    assert (await c.fetch("/")).headers["Location"] == "/install"
    assert (await c.fetch("/admin/login/index")).headers["Location"] == "/install"
    resp = await c.install("shop1", "boss", PASSWORD)
    assert resp.code == 302 and resp.headers["Location"] == "/admin/index/index"
    assert "wolive_agent" in c.cookies  # the installer is logged in
    console = await c.fetch("/admin/index/index")
    assert console.code == 200 and "Boss".encode() in console.body

    db = cfg.database.url
    rows = db_rows(db, "SELECT * FROM wolive_service")
    assert len(rows) == 1
    assert rows[0]["level"] == "super_manager" and rows[0]["business_id"] == "shop1"
    assert rows[0]["password"].startswith("$2b$")  # bcrypt, never the password
    assert db_rows(db, "SELECT business_id FROM wolive_business") == [{"business_id": "shop1"}]

    # Gone for good: GET and POST, with or without a session.
    stranger = Client(base_url)
    assert (await stranger.fetch("/install")).code == 404
    assert (await stranger.fetch("/install.php")).code == 404
    resp = await c.fetch("/install", "POST", form={
        "business_id": "evil", "user_name": "evil", "password": PASSWORD * 2,
        "password2": PASSWORD * 2})
    assert resp.code == 404
    assert len(db_rows(db, "SELECT * FROM wolive_service")) == 1


@pytest.mark.gen_test
@pytest.mark.parametrize("field, value, message", [
    ("business_id", "bad id!", b"business id"),
    ("user_name", "x", b"user name"),
    ("password", "short", b"at least 8"),
    ("password2", "different-one", b"differ"),
])
async def test_install_rejects_bad_input_and_writes_nothing(
        base_url: str, cfg: dict, field: str, value: str, message: bytes) -> None:
    c = Client(base_url)
    await c.get_xsrf("/install")
    form = {"business_id": "shop1", "user_name": "boss", "password": PASSWORD,
            "password2": PASSWORD, field: value}
    if field == "password":
        form["password2"] = value
    resp = await c.fetch("/install", "POST", form=form)
    assert resp.code == 400 and message in resp.body
    assert db_rows(cfg.database.url, "SELECT * FROM wolive_service") == []


@pytest.mark.gen_test
async def test_install_needs_xsrf(base_url: str, cfg: dict) -> None:
    c = Client(base_url)
    resp = await c.fetch("/install", "POST", xsrf=False, form={
        "business_id": "shop1", "user_name": "boss", "password": PASSWORD,
        "password2": PASSWORD})
    assert resp.code == 403
    assert db_rows(cfg.database.url, "SELECT * FROM wolive_service") == []


@pytest.mark.gen_test
async def test_login_and_logout(base_url: str) -> None:
    await Client(base_url).install("shop1", "boss", PASSWORD)
    c = Client(base_url)
    assert (await c.fetch("/admin/index/index")).headers["Location"] == "/admin/login/index"
    code, body = await c.json("/admin/set/getchats")
    assert code == 401 and body["code"] == 1

    bad = await c.login("boss", "wrong-password")
    assert bad.code == 401 and "wolive_agent" not in c.cookies
    unknown = await c.login("nobody", PASSWORD)
    assert unknown.code == 401

    ok = await c.login("boss", PASSWORD)
    assert ok.code == 302 and ok.headers["Location"] == "/admin/index/index"
    assert (await c.fetch("/admin/index/index")).code == 200
    code, body = await c.json("/admin/set/getchats")
    assert code == 200 and body == {"code": 0, "msg": "", "data": []}

    # Logout is a POST with the xsrf token; without it nothing happens.
    assert (await c.fetch("/admin/login/logout", "POST", form={}, xsrf=False)).code == 403
    assert (await c.fetch("/admin/index/index")).code == 200
    out = await c.fetch("/admin/login/logout", "POST", form={})
    assert out.code == 302
    assert (await c.fetch("/admin/index/index")).headers["Location"] == "/admin/login/index"


@pytest.mark.gen_test
async def test_console_post_needs_xsrf(base_url: str) -> None:
    c = Client(base_url)
    await c.install("shop1", "boss", PASSWORD)
    code, body = await c.json("/admin/set/chats", "POST", form={
        "visiter_id": "v1", "content": "hi"}, xsrf=False)
    assert code == 403 and body["code"] == 1 and "_xsrf" in body["msg"]


@pytest.mark.gen_test
async def test_forged_or_stale_cookie_is_nobody(base_url: str, cfg: dict) -> None:
    c = Client(base_url)
    await c.install("shop1", "boss", PASSWORD)
    forged = Client(base_url)
    forged.cookies["wolive_agent"] = "1:0000000000000000"
    assert (await forged.fetch("/admin/index/index")).code == 302
    # A password change ends existing sessions.
    db_rows(cfg.database.url, "UPDATE wolive_service SET password = 'x' WHERE service_id = 1")
    assert (await c.fetch("/admin/index/index")).code == 302


@pytest.mark.gen_test
async def test_legacy_md5_password_logs_in_once_then_is_bcrypt(base_url: str, cfg: dict) -> None:
    await Client(base_url).install("shop1", "boss", PASSWORD)
    legacy = hashlib.md5(("boss" + "hjkj" + "old-wolive-pw").encode()).hexdigest()
    db = cfg.database.url
    db_rows(db, "UPDATE wolive_service SET password = %s WHERE user_name = 'boss'", (legacy,))
    c = Client(base_url)
    assert (await c.login("boss", "old-wolive-pw")).code == 302
    stored = db_rows(db, "SELECT password FROM wolive_service WHERE user_name = 'boss'")[0]
    assert stored["password"].startswith("$2b$")
    assert (await Client(base_url).login("boss", "old-wolive-pw")).code == 302


def test_create_admin_flag(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/w.db")
    cmd = [sys.executable, str(ROOT / "wolive.py"), "--config", str(config),
           "--create-admin", "ops", "--business-id", "acme"]
    env = dict(os.environ, WOLIVE_ADMIN_PASSWORD=PASSWORD)
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    rows = db_rows(f"sqlite:///{tmp_path}/w.db", "SELECT user_name, level, business_id "
                   "FROM wolive_service")
    assert rows == [{"user_name": "ops", "level": "super_manager", "business_id": "acme"}]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "exists already" in again.stderr
    weak = subprocess.run(cmd[:-4] + ["--create-admin", "x2"], capture_output=True, text=True,
                          env=dict(os.environ, WOLIVE_ADMIN_PASSWORD="short"), timeout=60)
    assert weak.returncode == 2 and "at least 8" in weak.stderr


@pytest.mark.gen_test
async def test_head_on_pages_is_answered_like_get(shop: Shop) -> None:
    """A monitor or link checker sends HEAD: a page answers it as GET without a body
    (RFC 9110 9.3.2), not 405."""
    stranger = Client(shop.base_url)
    for client, path, status in [
            (stranger, "/admin/login/index", 200), (stranger, "/", 302),
            (shop.boss.client, "/admin/index/index", 200),
            (shop.boss.client, "/admin/page/history", 200),
            (shop.boss.client, "/admin/page/settings", 200),
            (stranger, "/admin/page/history", 302),
            (stranger, "/index/index/message?business_id=shop1", 200),
            (stranger, "/index/index/home?business_id=shop1", 200)]:
        got = await client.fetch(path)
        head = await client.fetch(path, "HEAD")
        assert (head.code, got.code) == (status, status), (path, head.code, got.code)
        assert head.body == b"", path
        assert head.headers.get("Content-Type") == got.headers.get("Content-Type"), path
    # An API stays what it was: HEAD is not one of its methods.
    assert (await shop.boss.client.fetch("/admin/set/getchats", "HEAD")).code == 405
