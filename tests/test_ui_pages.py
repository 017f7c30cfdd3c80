"""The console's other pages in a real browser (issue 5): history, agents, settings, message
board, businesses, embed code, the shared top bar. Debian's Chromium through Playwright's sync
API against `python wolive.py` (SQLite: these pages only call the JSON APIs, which have their
own tests on both databases). Screenshots: tests/artifacts/page-<name>-sqlite.png.
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, BUSINESS, RunningServer
from helpers import db_rows
# The browser fixtures of the end-to-end test, shared (pytest finds them by name here).
from test_e2e_browser import (PC, PHONE, PageProblems, browser,  # noqa: F401
                              new_context, problems, shot)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

PAGES = ["history", "agents", "settings", "messages", "businesses", "embed", "reports"]
MGR_USER, MGR_PASSWORD = "mgr_li", "manager pass 77"
FAQ_QUESTION = "<script>window.__pwned = 1</script>怎么退货？"
FAQ_ANSWER_HTML = ('<b>七天内</b>可以退货 <script>window.__pwned = 2</script>'
                   '<img alt="" onerror="window.__pwned = 3"><a href="javascript:alert(1)">x</a>')


@pytest.fixture
def sqlite_only(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the pages only call the JSON APIs: one database is enough")


def login(page: Any, server: RunningServer, user: str, password: str) -> None:
    page.goto(f"{server.base_url}/admin/login/index")
    page.get_by_label(re.compile("用户名")).fill(user)
    page.get_by_label(re.compile("密码")).fill(password)
    page.get_by_role("button", name=re.compile("登录")).click()
    page.wait_for_url(f"{server.base_url}/admin/index/index")


def seed_history(server: RunningServer) -> None:
    """Two visitors who talked with boss: one today, one 40 days ago."""
    sid = db_rows(server.db_url, "SELECT service_id FROM wolive_service WHERE user_name = %s",
                  (ADMIN_USER,))[0]["service_id"]
    now = int(time.time())
    people = (("v_hist_1", "王小明", "chanhist1"), ("v_hist_2", "Alice", "chanhist2"))
    for vid, name, chan in people:
        db_rows(server.db_url, "INSERT INTO wolive_visiter (visiter_id, visiter_name, channel, "
                "avatar, ip, from_url, business_id, state) VALUES (%s, %s, %s, '', '127.0.0.1', "
                "'https://shop.example/', %s, 'offline')", (vid, name, chan, BUSINESS))
    chats = [("v_hist_1", now - 3600, "to_service", "我的订单什么时候发货？"),
             ("v_hist_1", now - 3500, "to_visiter", "您好，今天下午发货，快递单号稍后发您。"),
             ("v_hist_2", now - 40 * 86400, "to_service", "Do you ship to Canada?"),
             ("v_hist_2", now - 40 * 86400 + 60, "to_visiter", "Yes, shipping takes a week.")]
    for vid, ts, direction, content in chats:
        db_rows(server.db_url, "INSERT INTO wolive_chats (visiter_id, service_id, business_id, "
                "content, timestamp, direction) VALUES (%s, %s, %s, %s, %s, %s)",
                (vid, sid, BUSINESS, content, ts, direction))


def test_console_pages_as_super_manager_and_manager(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    seed_history(server)
    ctx = new_context("boss", permissions=["clipboard-read", "clipboard-write"])
    page = ctx.new_page()
    dialogs: list[str] = []

    def on_dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.accept()
    page.on("dialog", on_dialog)

    # Not logged in: every page sends you to the login form.
    page.goto(f"{server.base_url}/admin/page/history")
    page.wait_for_url(f"{server.base_url}/admin/login/index")
    login(page, server, ADMIN_USER, ADMIN_PASSWORD)

    # Every page loads for boss, with its link in the top bar marked.
    for name in PAGES:
        page.goto(f"{server.base_url}/admin/page/{name}")
        expect(page.locator(f".topnav a[href='/admin/page/{name}']")).to_have_attribute(
            "aria-current", "page")
        expect(page.locator("#me-name")).to_have_text(ADMIN_USER)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= PC["width"]

    # History: the last 30 days hold one visitor; the text search marks the words found.
    page.goto(f"{server.base_url}/admin/page/history")
    rows = page.locator("#visitors .vrow")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("王小明")
    page.locator("#filters input[name=start]").fill("2000-01-01")
    page.locator("#filters input[name=q]").fill("ship")
    page.get_by_role("button", name="搜索").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Alice")
    expect(rows.first).to_contain_text("2 条匹配")
    rows.first.click()
    expect(page.locator("#messages .msg")).to_have_count(2)
    expect(page.locator("#messages mark").first).to_have_text("ship")
    expect(page.locator("#messages .msg.mine .bubble")).to_have_text("Yes, shipping takes a week.")
    page.locator("#filters input[name=q]").fill("没有这句话")
    page.get_by_role("button", name="搜索").click()
    expect(page.locator("#visitors .empty")).to_be_visible()
    page.locator("#filters input[name=q]").fill("")
    page.get_by_role("button", name="搜索").click()
    expect(rows).to_have_count(2)
    rows.first.click()
    expect(page.locator("#messages .msg")).to_have_count(2)
    shot(page, "page-history")

    # Agents: add a manager through the form.
    page.goto(f"{server.base_url}/admin/page/agents")
    page.get_by_role("button", name="添加客服").click()
    form = page.locator("#agent-form")
    form.locator("input[name=user_name]").fill(MGR_USER)
    form.locator("input[name=nick_name]").fill("李经理")
    form.locator("input[name=password]").fill(MGR_PASSWORD)
    form.locator("input[name=password2]").fill(MGR_PASSWORD + "x")
    form.locator("select[name=level]").select_option("manager")
    form.get_by_role("button", name="保存").click()
    expect(page.locator("#form-error")).to_contain_text("两次密码不一致")
    form.locator("input[name=password2]").fill(MGR_PASSWORD)
    form.get_by_role("button", name="保存").click()
    row = page.locator(f"#rows tr[data-user='{MGR_USER}']")
    expect(row).to_contain_text("李经理")
    expect(row).to_contain_text("管理员")
    stored = db_rows(server.db_url, "SELECT level, business_id FROM wolive_service "
                     "WHERE user_name = %s", (MGR_USER,))
    assert stored == [{"level": "manager", "business_id": BUSINESS}]
    shot(page, "page-agents")

    # Settings: a FAQ with markup that must not run.
    page.goto(f"{server.base_url}/admin/page/settings")
    page.locator("#faq-form input[name=question]").fill(FAQ_QUESTION)
    page.locator("#faq-editor .rte-area").evaluate("(el, html) => { el.innerHTML = html; }",
                                                    FAQ_ANSWER_HTML)
    page.locator("#faq-save").click()
    card = page.locator("#faq-list .card-row")
    expect(card).to_have_count(1)
    # The server keeps questions as plain text (it drops the tag); shown as text either way.
    expect(card.locator(".strong")).to_have_text(re.compile("怎么退货？$"))
    expect(card.locator(".rich b")).to_have_text("七天内")
    assert card.locator("script, img, [onerror]").count() == 0
    assert card.locator("a[href^='javascript']").count() == 0
    page.reload()
    expect(card).to_have_count(1)
    assert page.evaluate("window.__pwned") is None, "the FAQ's script ran"
    stored = db_rows(server.db_url, "SELECT answer FROM wolive_question")
    assert "<script" not in stored[0]["answer"] and "onerror" not in stored[0]["answer"]
    # The greeting and a switch save.
    page.locator("#greet-form textarea").fill("您好，欢迎光临！")
    page.locator("#greet-form").get_by_role("button", name="保存").click()
    expect(page.locator("#greet-rows")).to_contain_text("您好，欢迎光临！")
    page.locator("#sw-form input[name=distribution_rule][value=claim]").check()
    with page.expect_response(re.compile(r"/admin/manager/switches$")) as answer:
        page.locator("#sw-form").get_by_role("button", name="保存").click()
    assert answer.value.json()["data"]["distribution_rule"] == "claim"
    assert db_rows(server.db_url, "SELECT distribution_rule FROM wolive_business WHERE "
                   "business_id = %s", (BUSINESS,)) == [{"distribution_rule": "claim"}]
    page.locator("#faq").evaluate("el => el.scrollIntoView({block: 'start'})")
    shot(page, "page-settings")

    # Message board: a visitor's message appears live, then is marked read.
    page.goto(f"{server.base_url}/admin/page/messages")
    expect(page.locator("#list .empty")).to_be_visible()
    expect(page.locator("#live")).to_have_class(re.compile(r"\bon\b"))
    resp = page.request.post(f"{server.base_url}/admin/event/message", form={
        "business_id": BUSINESS, "name": "<b>张三</b>", "moblie": "13800000000",
        "content": "晚上能送货吗？<img src=x onerror=alert(1)>"})
    assert resp.ok, resp.text()
    msg = page.locator("#list .msg-card")
    expect(msg).to_have_count(1)
    expect(msg.locator(".name")).to_have_text("<b>张三</b>")
    expect(msg.locator(".content")).to_have_text("晚上能送货吗？<img src=x onerror=alert(1)>")
    expect(msg.locator(".row-head .small")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    expect(page.locator("#unread")).to_have_text("1 条未读")
    shot(page, "page-messages")
    msg.get_by_role("button", name="标为已读").click()
    expect(page.locator("#unread")).to_have_text("全部已读")

    # Businesses: add one with its first manager, then close it.
    page.goto(f"{server.base_url}/admin/page/businesses")
    page.get_by_role("button", name="添加商户").click()
    bf = page.locator("#add-form")
    bf.locator("input[name=business_id]").fill("shop2")
    bf.locator("input[name=user_name]").fill("shop2_boss")
    bf.locator("input[name=password]").fill("another pass 9")
    bf.locator("input[name=password2]").fill("another pass 9")
    bf.get_by_role("button", name="保存").click()
    biz = page.locator("#rows tr[data-business='shop2']")
    expect(biz).to_contain_text("营业中")
    biz.get_by_role("button", name="停用").click()
    expect(biz).to_contain_text("已停用")
    shot(page, "page-businesses")

    # Embed: the exact snippet, copied to the clipboard; the preview shows the button.
    page.goto(f"{server.base_url}/admin/page/embed")
    base = server.base_url
    snippet = (f"<a href='{base}' visiter_id='' visiter_name='' avatar='' "
               f"business_id='{BUSINESS}' id='workerman-kefu'></a>\n"
               f"<script src='{base}/assets/index/kefu_online.js'></script>")
    expect(page.locator("#snippet")).to_have_text(snippet)
    page.get_by_role("button", name="复制代码").click()
    expect(page.locator("#copied")).to_have_text("已复制到剪贴板")
    assert page.evaluate("navigator.clipboard.readText()") == snippet
    assert page.locator("#preview").get_attribute("sandbox") == "allow-scripts allow-popups"
    expect(page.frame_locator("#preview").locator(".kefu_box")).to_be_visible()
    expect(page.locator("#mode-help")).to_contain_text("打开对话面板")
    expect(page.locator("#csp-help")).to_contain_text(f"frame-src 和 img-src 中允许 {base}")
    shot(page, "page-embed")
    # WoLive's popup window: one attribute more in the snippet, and what it means.
    page.locator("#popup-mode").check()
    expect(page.locator("#snippet")).to_have_text(snippet.replace(
        f"business_id='{BUSINESS}'", f"business_id='{BUSINESS}' mode='popup'"))
    expect(page.locator("#mode-help")).to_contain_text("新窗口打开对话")
    page.locator("#popup-mode").uncheck()
    expect(page.locator("#snippet")).to_have_text(snippet)

    # The language switch: English, remembered on the next page, and back.
    page.locator("#lang-switch").click()
    expect(page.locator("h1")).to_have_text("Embed code")
    expect(page.locator("#copy")).to_have_text("Copy code")
    expect(page.locator(".topnav a[href='/admin/page/history']")).to_have_text("History")
    page.goto(f"{server.base_url}/admin/page/agents")
    expect(page.locator("h1")).to_have_text("Agents")
    expect(page.locator(f"#rows tr[data-user='{MGR_USER}']")).to_contain_text("Manager")
    shot(page, "page-agents-en")
    page.locator("#lang-switch").click()
    expect(page.locator("h1")).to_have_text("客服管理")

    # On a phone: the history page fits 360 px and shows list, then conversation.
    phone = new_context("boss-phone", viewport=PHONE, is_mobile=True, has_touch=True,
                        device_scale_factor=2).new_page()
    login(phone, server, ADMIN_USER, ADMIN_PASSWORD)
    phone.goto(f"{server.base_url}/admin/page/history")
    expect(phone.locator("#visitors .vrow")).to_have_count(1)
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "page-history-phone")
    phone.locator("#visitors .vrow").first.tap()
    expect(phone.locator("#messages .msg")).to_have_count(2)
    expect(phone.locator(".hist-list")).to_be_hidden()
    shot(phone, "page-history-phone-conversation")
    phone.goto(f"{server.base_url}/admin/page/settings")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(phone, "page-settings-phone")

    # The manager added above logs in: no businesses link, and a 403 page if it goes there.
    mgr = new_context("manager").new_page()
    login(mgr, server, MGR_USER, MGR_PASSWORD)
    mgr.goto(f"{server.base_url}/admin/page/agents")
    expect(mgr.locator("#me-name")).to_have_text("李经理")
    expect(mgr.locator(".topnav a[href='/admin/page/businesses']")).to_have_count(0)
    expect(mgr.locator(".topnav a[href='/admin/page/settings']")).to_have_count(1)
    resp = mgr.goto(f"{server.base_url}/admin/page/businesses")
    assert resp is not None and resp.status == 403
    expect(mgr.locator("h1")).to_have_text("403")
    expect(mgr.locator("#topbar")).to_be_visible()
    shot(mgr, "page-403")

    assert [d for d in dialogs if "pwned" in d or d == "1"] == []
    # Allowed: the 403 page itself, the form's deliberate 400, and fetches a navigation cut.
    problems.check(allow=r"request failed: .* net::ERR_ABORTED|"
                         r"manager: (HTTP 403 for|console error: Failed to load resource: "
                         r"the server responded with a status of 403).*|"
                         r"boss: (HTTP 400 for|console error: .*status of 400).*"
                         r"/admin/manager/registForService")
