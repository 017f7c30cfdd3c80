"""Found walking issue 9 as its users would, in Chromium against `python wolive.py`: an
agent's unread counts follow it across its console tabs; the console's top bar stays one
row on a 1280 px screen, in Chinese and in English."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import RunningServer
from test_e2e_browser import (PC, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)
from test_ui_workbench import conv, visitor_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e,
              pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def test_reading_in_one_tab_clears_the_unread_badge_in_the_other(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    ctx = new_context("boss", viewport=PC)
    tab1 = ctx.new_page()
    agent_login(tab1, server)
    tab2 = ctx.new_page()
    tab2.goto(f"{server.base_url}/admin/index/index")
    expect(tab2.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    visitor = visitor_page(new_context("visitor"), server, "v-tabs", "小红")
    expect(visitor.locator("#agent-name")).to_have_text("boss")
    for text in ("在吗？", "想问个问题"):
        visitor.locator("#input").fill(text)
        visitor.locator("#input").press("Enter")
    for tab in (tab1, tab2):
        expect(conv(tab, "v-tabs").locator(".badge")).to_have_text("2")
    conv(tab1, "v-tabs").click()  # read in the first tab
    expect(conv(tab1, "v-tabs").locator(".badge")).to_be_hidden()
    expect(conv(tab2, "v-tabs").locator(".badge")).to_be_hidden()
    # Written while the first tab shows it: read there at once, so unread in neither.
    visitor.locator("#input").fill("还在吗")
    visitor.locator("#input").press("Enter")
    expect(tab2.locator("#convs .conv[data-visiter='v-tabs'] .last")).to_have_text("还在吗")
    expect(conv(tab2, "v-tabs").locator(".badge")).to_be_hidden()
    shot(tab2, "walk-unread-other-tab")
    problems.check()


ONE_ROW = """() => {
    const bar = document.querySelector('#topbar');
    const kids = [...bar.children].filter(e => e.offsetParent && e.tagName !== 'SCRIPT');
    const mid = e => { const r = e.getBoundingClientRect(); return r.top + r.height / 2; };
    const tops = kids.map(e => Math.round(mid(e)));
    const out = kids.filter(e => e.getBoundingClientRect().right > innerWidth + 0.5)
                    .map(e => e.id || e.className);
    return {rows: new Set(tops).size, height: bar.getBoundingClientRect().height, out};
}"""


@pytest.mark.parametrize("width", [1280, 1024])
def test_the_console_top_bar_is_one_row_on_a_laptop(
        running_server: RunningServer, width: int,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """Every page of a super_manager (the most links) with a long name, in Chinese and in
    English: the top bar keeps one row, nothing past the right edge (the links scroll
    sideways, the name is cut with an ellipsis)."""
    from playwright.sync_api import expect
    from test_ui_workbench import console_post
    server = running_server
    page = new_context("boss", viewport={"width": width, "height": 800}).new_page()
    agent_login(page, server)
    console_post(page, "/admin/manager/update", nick_name="Customer Service Lead Alexandra")
    for lang in ("zh", "en"):
        for path in ("/admin/index/index", "/admin/page/history", "/admin/page/settings"):
            page.goto(server.base_url + path)
            expect(page.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
            if lang == "en" and page.evaluate("document.documentElement.lang") != "en":
                page.locator("#lang-switch").click()
                expect(page.locator("#lang-switch")).to_have_text("中文")
            got = page.evaluate(ONE_ROW)
            assert got["rows"] == 1 and got["out"] == [], (lang, path, got)
            assert got["height"] < 70, (lang, path, got)
        shot(page, f"walk-topbar-{width}-{lang}")
    problems.check()


def test_the_workbench_history_button_opens_that_visitors_history(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """The conversation's "History" button opens the history page on that visitor's
    conversation, not on the list of everyone's."""
    from playwright.sync_api import expect
    server = running_server
    ctx = new_context("boss", viewport=PC)
    boss = ctx.new_page()
    agent_login(boss, server)
    for vid, text in (("v-old", "上周的问题"), ("v-now", "现在的问题")):
        visitor = visitor_page(new_context(vid), server, vid, "客人" + vid[-3:])
        expect(visitor.locator("#agent-name")).to_have_text("boss")
        visitor.locator("#input").fill(text)
        visitor.locator("#input").press("Enter")
        expect(conv(boss, vid)).to_be_visible()
    conv(boss, "v-old").click()
    with ctx.expect_page() as opened:
        boss.locator("#act-history").click()
    history = opened.value
    expect(history.locator("#conv-title")).to_contain_text("客人old")
    # All of the visitor's past up to today: said in words, not as an empty start date.
    expect(history.locator("#conv-title")).to_have_text(
        re.compile(r"客人old · 截至 \d{4}-\d\d-\d\d$"))
    expect(history.locator("#messages")).to_contain_text("上周的问题")
    expect(history.locator("#messages")).not_to_contain_text("现在的问题")
    expect(history.locator("#visitors .vrow.active")).to_have_count(1)
    shot(history, "walk-history-from-workbench")
    problems.check()


def test_logging_out_in_one_tab_takes_the_other_tabs_out_and_the_agent_offline(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """"Log out" in one tab: the browser's other console tabs (same cookie, now gone) go to
    the sign-in page instead of holding the agent online with a console that can no longer
    answer (401); the agent goes offline and its visitor is told."""
    from playwright.sync_api import expect
    from helpers import db_rows
    server = running_server
    ctx = new_context("boss", viewport=PC)
    tab1 = ctx.new_page()
    agent_login(tab1, server)
    tab2 = ctx.new_page()
    tab2.goto(f"{server.base_url}/admin/page/settings")
    expect(tab2.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    visitor = visitor_page(new_context("visitor"), server, "v-out", "小刚")
    expect(visitor.locator("#agent-name")).to_have_text("boss")
    tab1.locator("form[action='/admin/login/logout'] button").click()
    tab1.wait_for_url(re.compile("/admin/login/index"))
    tab2.wait_for_url(re.compile("/admin/login/index"))
    expect(visitor.locator(".msg.system[data-sys='agent_left']")).to_be_visible(timeout=20000)
    assert db_rows(server.db_url, "SELECT state FROM wolive_service WHERE service_id = 1") == \
        [{"state": "offline"}]
    shot(visitor, "walk-logout-visitor-told")
    problems.check()


def test_read_ticks_missed_while_reconnecting_are_brought_up_to_date(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems) -> None:  # noqa: F811
    """The visitor reads the agent's message while the console's socket is away (its
    `read` event never reaches that tab): once the console is subscribed again, the open
    conversation's ticks say "已读" without a reload."""
    from helpers import db_rows
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    visitor = visitor_page(new_context("visitor"), server, "v-ticks", "小蓝")
    expect(visitor.locator("#agent-name")).to_have_text("boss")
    visitor.locator("#input").fill("你好")
    visitor.locator("#input").press("Enter")
    conv(boss, "v-ticks").click()
    expect(boss.locator("#messages .msg.theirs").last).to_contain_text("你好")
    # The window closes before the reply: nothing reads it there (an open, visible window
    # would mark it read as it arrives, and "已送达" would be gone before it is looked at).
    visitor.close()
    boss.locator("#input").fill("您好，请讲")
    boss.locator("#input").press("Enter")
    tick = boss.locator("#messages .msg.mine .tick").last
    expect(tick).to_have_text("已送达")
    boss.evaluate("() => window.woliveConsole.pusher.disconnect()")
    boss.wait_for_function("() => window.woliveConsole.pusher.connection.state "
                           "=== 'disconnected'")
    # Read meanwhile (as a visitor's window would, while this tab heard nothing).
    db_rows(server.db_url, "UPDATE wolive_chats SET state = 'readed' WHERE visiter_id = "
            "'v-ticks' AND direction = 'to_visiter'")
    expect(tick).to_have_text("已送达")
    boss.evaluate("() => window.woliveConsole.pusher.connect()")
    expect(tick).to_have_text("已读")
    problems.check()
