"""Issue 9, item 10: the phone console and the polish items, in Debian's Chromium against
`python wolive.py` (SQLite: these are page fixes; the APIs they call have their own tests on
both databases), the server's log level for a typing 429 is in tests/test_typing_log.py.

Layout is checked by element boxes, never by pixels. Screenshots:
tests/artifacts/polish-*-sqlite.png (listed in docs/screenshots.md).
"""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import RunningServer
from helpers import db_rows
from test_e2e_browser import (PC, PHONE, PageProblems, agent_login, browser,  # noqa: F401
                              new_context, problems, shot)
from test_ui_workbench import console_post, conv, visitor_page

VID = "v-polish-8688f2"          # no name given: the server calls it 访客8688f2
GENERATED = "访客8688f2"
PHONE_CTX = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


def in_view(box: dict[str, float] | None, width: int) -> bool:
    return bool(box) and box["x"] >= -0.5 and box["x"] + box["width"] <= width + 0.5 \
        and box["width"] > 0  # type: ignore[index]


def assert_name_shown(page: Any, text: str) -> None:
    """The open conversation's header shows the visitor's whole name on one line."""
    from playwright.sync_api import expect
    who = page.locator("#pane-title .who")
    expect(who).to_have_text(text)
    box = who.bounding_box()
    assert in_view(box, PHONE["width"]), box
    full, shown = who.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert shown >= full and shown > 40, f"name cut: {shown}px shown of {full}px"


def assert_nav_reachable(page: Any) -> None:
    """Every top-bar link can be brought into the 360 px window and sits inside it; while
    links are hidden on a side, the bar says so (more-start / more-end)."""
    nav = page.locator("#topnav")
    links = nav.locator("a")
    n = links.count()
    assert n >= 6
    width = PHONE["width"]
    links.first.scroll_into_view_if_needed()
    overflow = nav.evaluate("e => e.scrollWidth > e.clientWidth + 1")
    if overflow:
        page.wait_for_function("document.getElementById('topnav').classList.contains('more-end')")
    for i in range(n):
        link = links.nth(i)
        link.scroll_into_view_if_needed()
        box = link.bounding_box()
        assert in_view(box, width), (link.inner_text(), box)
        nav_box = nav.bounding_box()
        assert nav_box and box and box["x"] >= nav_box["x"] - 0.5 and \
            box["x"] + box["width"] <= nav_box["x"] + nav_box["width"] + 0.5, (box, nav_box)
    if overflow:
        page.wait_for_function(
            "(() => { const c = document.getElementById('topnav').classList;"
            " return c.contains('more-start') && !c.contains('more-end'); })()")


def test_phone_console_in_chinese_and_english(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    agent = new_context("agent", **PHONE_CTX).new_page()
    agent_login(agent, server)
    visitor = visitor_page(new_context("visitor", viewport=PC), server, VID)
    expect(visitor.locator("#input")).to_be_enabled()
    visitor.locator("#input").fill("你好，我的快递到哪了？")
    visitor.locator("#send").click()
    row = conv(agent, VID)
    expect(row.locator(".name")).to_have_text(GENERATED)
    assert db_rows(server.db_url, "SELECT visiter_name FROM wolive_visiter WHERE visiter_id = %s",
                   (VID,)) == [{"visiter_name": GENERATED}]

    # The notification question: one short line with a way to dismiss it.
    banner = agent.locator("#notify-banner")
    expect(banner).to_be_visible()
    box = banner.bounding_box()
    assert box and box["height"] <= 44, f"banner {box} on a {PHONE} screen"
    close = agent.locator("#notify-x")
    expect(close).to_be_visible()
    assert in_view(close.bounding_box(), PHONE["width"])
    assert in_view(agent.locator("#notify-yes").bounding_box(), PHONE["width"])
    shot(agent, "polish-phone-list-zh")
    assert_nav_reachable(agent)

    agent.reload()  # as a fresh page, for the screenshot
    row.tap()
    assert_name_shown(agent, GENERATED)
    for act in ("act-transfer", "act-close", "act-black", "act-info"):
        btn = agent.locator(f"#{act}")
        btn.scroll_into_view_if_needed()
        assert in_view(btn.bounding_box(), PHONE["width"]), act
    assert agent.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(agent, "polish-phone-conversation-zh")

    # English: the generated name in the page's language; the stored one is unchanged.
    agent.locator("#lang-switch").click()
    expect(agent.locator("#pane-title small")).to_have_text("Online")
    assert_name_shown(agent, "Visitor 8688f2")
    box = banner.bounding_box()
    assert box and box["height"] <= 44, f"banner {box} in English"
    shot(agent, "polish-phone-conversation-en")
    agent.locator("#back").tap()
    expect(row.locator(".name")).to_have_text("Visitor 8688f2")
    assert "Visitor 8688f2" in (row.get_attribute("aria-label") or "")
    agent.reload()
    expect(row.locator(".name")).to_have_text("Visitor 8688f2")
    shot(agent, "polish-phone-list-en")
    assert_nav_reachable(agent)
    close.tap()
    expect(banner).to_be_hidden()
    assert db_rows(server.db_url, "SELECT visiter_name FROM wolive_visiter WHERE visiter_id = %s",
                   (VID,)) == [{"visiter_name": GENERATED}]

    # The other console pages at 360 px: nothing sideways, every link reachable, the current
    # one in view.
    for name in ("history", "messages", "agents", "settings", "businesses", "embed"):
        agent.goto(f"{server.base_url}/admin/page/{name}")
        cur = agent.locator(f".topnav a[href='/admin/page/{name}']")
        expect(cur).to_have_attribute("aria-current", "page")
        agent.wait_for_load_state("networkidle")
        assert in_view(cur.bounding_box(), PHONE["width"]), name
        assert agent.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], name
        assert_nav_reachable(agent)
    agent.goto(f"{server.base_url}/admin/page/settings")
    agent.wait_for_load_state("networkidle")
    shot(agent, "polish-phone-settings-en")
    # History names the visitor in the page's language too.
    agent.goto(f"{server.base_url}/admin/page/history")
    expect(agent.locator(f"#visitors .vrow[data-visiter='{VID}'] .name")).to_have_text(
        "Visitor 8688f2")
    expect(agent.locator(f"#visitors .vrow[data-visiter='{VID}']")).to_contain_text("1 message")
    expect(agent.locator(f"#visitors .vrow[data-visiter='{VID}']")).not_to_contain_text(
        "1 messages")
    problems.check()


def test_plurals_and_in_use_follow_the_language(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    page = new_context("boss", viewport=PC).new_page()
    agent_login(page, server)
    page.locator("#lang-switch").click()
    expect(page.locator("#queue .empty")).to_have_text("Nobody is waiting.")
    visitor = visitor_page(new_context("visitor", viewport=PC), server, "v-one", "Olga")
    expect(visitor.locator("#input")).to_be_enabled()
    visitor.locator("#input").fill("one")
    visitor.locator("#send").click()
    # The workbench's unread count in words (the row's accessible name).
    expect(conv(page, "v-one")).to_have_attribute("aria-label", re.compile(r"· 1 unread message$"))
    console_post(page, "/admin/manager/cmtalk", content="您好！")

    # Settings opened in English, then switched to Chinese: every state follows.
    page.goto(f"{server.base_url}/admin/page/settings")
    pill = page.locator("#greet-rows .pill")
    expect(pill).to_have_text("In use")
    page.locator("#lang-switch").click()
    expect(page.locator("#greeting h1")).to_have_text("问候语")
    expect(pill).to_have_text("启用中")
    page.locator("#lang-switch").click()
    expect(pill).to_have_text("In use")

    # History in English: "1 message", "2 messages".
    page.goto(f"{server.base_url}/admin/page/history")
    vrow = page.locator("#visitors .vrow[data-visiter='v-one']")
    expect(vrow).to_contain_text("1 message")
    expect(vrow).not_to_contain_text("1 messages")
    visitor.locator("#input").fill("two")
    visitor.locator("#send").click()
    expect(visitor.locator(".msg.mine")).to_have_count(2)
    page.reload()
    expect(vrow).to_contain_text("2 messages")
    page.locator("#lang-switch").click()
    expect(vrow).to_contain_text("2 条消息")

    problems.check()


def test_blocked_visitor_sees_the_blocked_state(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    for lang, state, line in (("zh", "无法咨询", "您暂时无法发起咨询。"),
                              ("en", "Unavailable", "You cannot start a chat right now.")):
        vid = f"v-blocked-{lang}"
        ctx = new_context("visitor", viewport={"width": 440, "height": 680},
                          locale="zh-CN" if lang == "zh" else "en-US")
        visitor = visitor_page(ctx, server, vid, "Bob")
        expect(visitor.locator("#input")).to_be_enabled()
        visitor.locator("#input").fill("hello")
        visitor.locator("#send").click()
        expect(conv(boss, vid)).to_be_visible()
        console_post(boss, "/admin/set/blacklist", visiter_id=vid)
        visitor.locator("#input").fill("are you there?")
        visitor.locator("#send").click()
        expect(visitor.locator("#agent-state")).to_have_text(state)
        expect(visitor.locator(".msg.system .bubble").last).to_have_text(line)
        expect(visitor.locator("#input")).to_be_disabled()
        expect(visitor.locator("#send")).to_be_disabled()
        expect(visitor.locator("#messages")).not_to_contain_text("blocked by this site")
        expect(visitor.locator("#messages")).not_to_contain_text("发送失败")
        shot(visitor, f"polish-visitor-blocked-{lang}")
        assert db_rows(server.db_url, "SELECT COUNT(*) AS n FROM wolive_chats WHERE "
                       "visiter_id = %s", (vid,)) == [{"n": 1}]
    problems.check(allow=r"403.*/admin/event/chats")


def test_fast_typing_never_meets_a_429(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems) -> None:  # noqa: F811
    """Both sides type fast (25 ms a key) and send short lines back to back, and the agent
    switches between two conversations while typing: no typing call is refused, no two
    typing calls of a page are closer than half a second, and the other side still sees
    the typing."""
    from playwright.sync_api import expect
    server = running_server
    agent = new_context("agent", viewport=PC).new_page()
    agent_login(agent, server)
    visitors = []
    for vid in ("v-fast-1", "v-fast-2"):
        v = visitor_page(new_context(vid, viewport=PC), server, vid, vid)
        expect(v.locator("#input")).to_be_enabled()
        v.locator("#input").fill("hi")
        v.locator("#send").click()
        expect(conv(agent, vid)).to_be_visible()
        visitors.append(v)
    calls: dict[str, list[float]] = {"agent": [], "visitor": []}
    statuses: list[int] = []

    def watch(who: str, page: Any) -> None:
        page.on("request", lambda r: "/typing" in r.url and calls[who].append(time.monotonic()))
        page.on("response", lambda r: "/typing" in r.url and statuses.append(r.status))
    watch("agent", agent)
    watch("visitor", visitors[0])

    v = visitors[0]
    v.locator("#input").press_sequentially("where is my parcel", delay=25)
    expect(conv(agent, "v-fast-1")).to_have_class(re.compile(r"\bis-typing\b"))
    for line in ("ok", "thanks", "one more", "and another", "bye"):
        v.locator("#input").press_sequentially(line, delay=25)
        v.locator("#input").press("Enter")
        expect(v.locator("#input")).to_have_value("")  # sent
    expect(v.locator(".msg.mine")).to_have_count(6)

    for _ in range(3):
        for vid in ("v-fast-1", "v-fast-2"):
            conv(agent, vid).click()
            agent.locator("#input").press_sequentially("checking", delay=25)
            agent.locator("#input").press("Enter")
            expect(agent.locator("#input")).to_have_value("")  # sent
    expect(v.locator(".msg.theirs")).to_have_count(3)
    expect(v.locator("#typing")).to_be_hidden()
    for who, got in calls.items():
        assert len(got) >= 2, f"{who} sent {got}"
        gaps = [b - a for a, b in zip(got, got[1:])]
        assert all(g > 0.5 for g in gaps), (who, gaps)
    assert statuses and set(statuses) == {200}, statuses
    problems.check()


@pytest.fixture
def sqlite_only(db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("page fixes: the APIs they call are tested on both databases elsewhere")



def test_visitor_placeholders_fit_a_phone(
        sqlite_only: None, running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """Every placeholder the composer can show, in both languages, fits the input at 360 px
    (measured with the input's own font against its content box), and the one shown with
    nobody online is the short one."""
    from playwright.sync_api import expect
    server = running_server
    page = visitor_page(new_context("phone", **PHONE_CTX), server, "v-place")
    expect(page.locator("#agent-state")).to_have_text("客服不在线")
    expect(page.locator("#input")).to_have_attribute("placeholder", "请在上方留言")
    too_wide = page.evaluate("""() => {
        const input = document.getElementById('input'), cs = getComputedStyle(input);
        const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = cs.font;
        const T = window.Wolive.i18n, before = T.lang, out = [];
        for (const lang of ['zh', 'en']) {
          T.set(lang);
          for (const key of ['placeholder', 'placeholder_wait', 'placeholder_nobody']) {
            const text = T.t(key), w = ctx.measureText(text).width;
            if (w > room) { out.push([lang, key, text, Math.round(w), Math.round(room)]); }
          }
        }
        T.set(before);
        return out; }""")
    assert too_wide == [], too_wide
    shot(page, "polish-visitor-nobody-phone")
    problems.check()
