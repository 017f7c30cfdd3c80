"""Quick replies on the server in Chromium (issue 9, item 9): a manager adds a shared one on
the settings page; a second agent, in another browser context, sees it in the workbench's
quick-reply menu (grouped with its own) and inserts it; the quick replies an older console
kept in the browser's localStorage are offered for import once."""
from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import BUSINESS, RunningServer
from helpers import db_rows
from test_e2e_browser import (PC, PHONE, POPUP, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)
from test_ui_workbench import console_post, conv, login_as

ANNA_PASSWORD = "anna-pass-123"
SHARED_TEXT = "您好，订单今天下午发货 🚚 <b>不是粗体</b>"
OLD = ["旧的回复：请稍等", "Old one: thanks!"]
OWN = "SELECT service_id, title, content FROM wolive_quick_reply ORDER BY id"


def legacy(page: Any, sid: int) -> Any:
    """The old console's localStorage entry (and the offered mark) for agent `sid`."""
    return page.evaluate("""sid => [localStorage.getItem('wolive_quick_' + sid),
                                     localStorage.getItem('wolive_quick_' + sid + '_offered')]""",
                         sid)


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_shared_quick_replies_reach_a_second_agent_and_old_ones_are_imported_once(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/registForService", user_name="anna", nick_name="Anna",
                 password=ANNA_PASSWORD, password2=ANNA_PASSWORD)

    # The manager adds a shared quick reply (and one of its own) on the settings page.
    boss.goto(f"{server.base_url}/admin/page/settings#quick")
    shared = boss.locator("#quick-manager .qr-section[data-list='shared']")
    mine = boss.locator("#quick-manager .qr-section[data-list='mine']")
    expect(shared.locator(".qr-list")).to_contain_text("还没有共享的快捷回复。")
    shared.get_by_label("标题（可选）").fill("发货")
    shared.get_by_label("内容").fill(SHARED_TEXT)
    shared.get_by_role("button", name="添加共享的快捷回复").click()
    expect(shared.locator(".qr-row .content")).to_have_text([SHARED_TEXT])
    mine.get_by_label("内容").fill("Boss's own, nobody else sees it")
    mine.get_by_role("button", name="添加我的快捷回复").click()
    expect(mine.locator(".qr-row .content")).to_have_text(["Boss's own, nobody else sees it"])
    assert db_rows(server.db_url, OWN) == [
        {"service_id": 0, "title": "发货", "content": SHARED_TEXT},
        {"service_id": 1, "title": "", "content": "Boss's own, nobody else sees it"}]

    # Anna signs in, in another browser, where an older console kept quick replies.
    actx = new_context("anna", viewport=PC)
    anna = actx.new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    anna.evaluate("old => localStorage.setItem('wolive_quick_2', JSON.stringify(old))", OLD)
    anna.reload()
    expect(anna.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    q = urllib.parse.urlencode({"business_id": BUSINESS, "visiter_id": "v-qr",
                                "visiter_name": "小红", "special": "2"})
    visitor = new_context("visitor", viewport=POPUP).new_page()
    visitor.goto(f"{server.base_url}/index/index/home?{q}")
    expect(visitor.locator("#agent-name")).to_have_text("Anna")
    visitor.locator("#input").fill("什么时候发货？")
    visitor.locator("#input").press("Enter")
    conv(anna, "v-qr").click()
    expect(anna.locator("#messages .msg.theirs .bubble")).to_have_text("什么时候发货？")

    # The menu: the offer to import, the shared group; not the boss's own.
    anna.locator("#tool-quick").click()
    panel = anna.locator("#quick-panel")
    offer = panel.locator(".quick-import")
    expect(offer).to_contain_text("这个浏览器里保存着 2 条旧的快捷回复")
    expect(panel.locator(".quick-group.shared")).to_have_text("团队共享")
    expect(panel.locator(".quick-use")).to_have_text(["发货 " + SHARED_TEXT])
    expect(panel).not_to_contain_text("Boss's own")
    shot(anna, "quick-replies-import-offer")
    offer.get_by_role("button", name="导入").click()
    expect(offer).to_have_count(0)
    expect(panel.locator(".quick-group.mine")).to_have_text("我的")
    expect(panel.locator(".quick-use")).to_have_text(["发货 " + SHARED_TEXT] + OLD)
    assert legacy(anna, 2) == [None, "1"]
    assert [r["content"] for r in db_rows(server.db_url, OWN) if r["service_id"] == 2] == OLD
    # Her own ones can be deleted there, the shared one cannot; she adds one.
    expect(panel.locator(".quick-item").nth(0).locator(".quick-del")).to_have_count(0)
    panel.locator("#quick-text").fill("Anna's new one")
    panel.get_by_role("button", name="保存").click()
    expect(panel.locator(".quick-use")).to_have_text(["发货 " + SHARED_TEXT] + OLD +
                                                     ["Anna's new one"])
    shot(anna, "quick-replies-menu")

    # She inserts the shared one and sends it: the visitor gets it as text.
    panel.locator(".quick-use", has_text="发货").click()
    expect(panel).to_be_hidden()
    expect(anna.locator("#input")).to_have_value(SHARED_TEXT)
    anna.locator("#input").press("Enter")
    expect(visitor.locator(".msg.theirs .bubble").last).to_have_text(SHARED_TEXT)
    # On a phone the menu fits the screen.
    anna.set_viewport_size(PHONE)
    anna.locator("#tool-quick").click()
    expect(panel.locator(".quick-use")).to_have_count(4)
    assert anna.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = panel.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(anna, "quick-replies-menu-phone")
    anna.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    anna.set_viewport_size(PC)

    # After a reload (and in a new tab) the import is not offered again; the list stays.
    anna.reload()
    conv(anna, "v-qr").click()
    anna.locator("#tool-quick").click()
    expect(panel.locator(".quick-use")).to_have_count(4)
    expect(panel.locator(".quick-import")).to_have_count(0)
    panel.locator(".quick-item", has_text="Old one").locator(".quick-del").click()
    expect(panel.locator(".quick-use")).to_have_count(3)
    assert [r["content"] for r in db_rows(server.db_url, OWN) if r["service_id"] == 2] == [
        OLD[0], "Anna's new one"]

    # "No thanks" also ends the offer, keeping the browser's copy (the boss, with a visitor).
    boss.goto(f"{server.base_url}/admin/index/index")
    boss.evaluate("() => localStorage.setItem('wolive_quick_1', JSON.stringify(['b1']))")
    boss.reload()
    q = urllib.parse.urlencode({"business_id": BUSINESS, "visiter_id": "v-boss",
                                "special": "1"})
    visitor2 = new_context("visitor2", viewport=POPUP).new_page()
    visitor2.goto(f"{server.base_url}/index/index/home?{q}")
    expect(visitor2.locator("#agent-name")).to_have_text("boss")
    conv(boss, "v-boss").click()
    boss.locator("#tool-quick").click()
    offer = boss.locator("#quick-panel .quick-import")
    expect(offer).to_contain_text("1 条旧的快捷回复")
    offer.get_by_role("button", name="不用了").click()
    expect(offer).to_have_count(0)
    assert legacy(boss, 1) == ['["b1"]', "1"]
    boss.reload()
    conv(boss, "v-boss").click()
    boss.locator("#tool-quick").click()
    expect(boss.locator("#quick-panel .quick-use")).to_have_count(2)
    expect(offer).to_have_count(0)
    assert len(db_rows(server.db_url, "SELECT id FROM wolive_quick_reply WHERE "
                                      "service_id = 1")) == 1

    # Anna (service) on the settings page: the shared list is read-only, hers editable.
    anna.goto(f"{server.base_url}/admin/page/settings#quick")
    shared = anna.locator("#quick-manager .qr-section[data-list='shared']")
    mine = anna.locator("#quick-manager .qr-section[data-list='mine']")
    expect(shared.locator(".qr-row .content")).to_have_text([SHARED_TEXT])
    expect(shared.locator("button")).to_have_count(0)
    expect(shared.locator("form")).to_have_count(0)
    expect(mine.locator(".qr-row .content")).to_have_text([OLD[0], "Anna's new one"])
    mine.locator(".qr-row").nth(1).get_by_role("button", name="上移").click()
    expect(mine.locator(".qr-row .content")).to_have_text(["Anna's new one", OLD[0]])
    mine.locator(".qr-row").nth(0).get_by_role("button", name="编辑").click()
    mine.get_by_label("内容").fill("Anna's edited one")
    mine.get_by_role("button", name="保存修改").click()
    expect(mine.locator(".qr-row .content")).to_have_text(["Anna's edited one", OLD[0]])
    shot(anna, "quick-replies-settings-service")
    anna.locator("#lang-switch").click()
    expect(shared.locator("h3")).to_have_text("Shared with the team")
    expect(mine.get_by_role("button", name="Add a quick reply of mine")).to_be_visible()
    assert json.loads(json.dumps(db_rows(server.db_url, OWN)))[-2:] == [
        {"service_id": 2, "title": "", "content": OLD[0]},
        {"service_id": 2, "title": "", "content": "Anna's edited one"}]
    # The workbench menu in English.
    anna.goto(f"{server.base_url}/admin/index/index")
    conv(anna, "v-qr").click()
    anna.locator("#tool-quick").click()
    expect(panel.locator(".quick-group")).to_have_text(["Shared with the team", "Mine"])
    expect(panel.locator(".quick-use")).to_have_text(["发货 " + SHARED_TEXT, "Anna's edited one",
                                                     OLD[0]])
    shot(anna, "quick-replies-menu-en")
    boss.goto(f"{server.base_url}/admin/page/settings#quick")
    expect(boss.locator("#quick-manager .qr-section[data-list='shared'] .qr-row")).to_have_count(1)
    shot(boss, "quick-replies-settings-manager")
    # Leaving the workbench may cancel its channel authorisation still in flight.
    problems.check(allow=r"pusher/auth net::ERR_ABORTED")
