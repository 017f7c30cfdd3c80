"""End, rating, reopening and the greeting as a message, in Debian's Chromium (issue 9, items
4 and 6): an agent and visitors (a PC popup and a phone) against `python wolive.py`.

The greeting shows once in the window (also after a reload) and in the console; the agent
ends the conversation; the window shows the closing line and a rating card, rated with the
keyboard; the console is told live and shows the rating in the visitor details after the
visitor writes again (a `reopened` line on both sides); the history page shows it. On a phone
the card fits 360 px, works by touch and in English, and "Not now" puts it away.

SQLite only (the API tests cover MariaDB). Screenshots: tests/artifacts/rating-*.png, the new
states copied to docs/screenshots/.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ROOT, RunningServer
from helpers import db_rows
from test_e2e_browser import PHONE, POPUP, PageProblems, agent_login
import test_e2e_browser as e2e
from test_ui_workbench import conv, console_post, visitor_page

browser, new_context, problems, shot = e2e.browser, e2e.new_context, e2e.problems, e2e.shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

GREETING = "您好，我是店长，有什么可以帮您？"
DOCS = ROOT / "docs" / "screenshots"


def keep(path: Path, name: str) -> None:
    """A screenshot of a new state, kept in docs/screenshots/."""
    shutil.copyfile(path, DOCS / name)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_end_rating_reopen_and_greeting_in_the_browser(
        running_server: RunningServer, new_context: Callable[..., Any],
        problems: PageProblems, shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("agent").new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/switches", business_id="shop1", distribution_rule="auto")
    console_post(boss, "/admin/manager/cmtalk", content=GREETING)
    boss.on("dialog", lambda d: d.accept())  # "结束与…的对话？"

    # The greeting: once, as the agent's message (not a system line), also after a reload.
    vctx = new_context("visitor", viewport=POPUP)
    v = visitor_page(vctx, server, "v-rate", "小红")
    expect(v.locator("#agent-name")).to_have_text("boss")
    expect(v.locator(".msg.theirs .bubble")).to_have_text([GREETING])
    expect(v.locator(".msg.system", has_text=GREETING)).to_have_count(0)
    v.locator("#input").fill("订单已经收到了，谢谢")
    v.locator("#input").press("Enter")
    expect(v.locator(".msg.mine .bubble")).to_have_text(["订单已经收到了，谢谢"])
    v.reload()
    expect(v.locator("#agent-name")).to_have_text("boss")
    expect(v.locator(".msg.mine .bubble")).to_have_text(["订单已经收到了，谢谢"])
    expect(v.locator(".msg.theirs .bubble")).to_have_text([GREETING])
    assert db_rows(server.db_url, "SELECT service_id, content FROM wolive_chats WHERE "
                   "direction = 'to_visiter' AND msg_type = 'text'") == [
        {"service_id": 1, "content": GREETING}]
    row = conv(boss, "v-rate")
    row.click()
    expect(boss.locator("#messages .msg.mine .bubble")).to_have_text([GREETING])
    expect(boss.locator("#messages .msg.theirs .bubble")).to_have_text(["订单已经收到了，谢谢"])

    # The agent ends it: the visitor sees the closing line, then the rating card.
    boss.locator("#act-close").click()
    expect(row).to_have_count(0)
    ended = v.locator(".msg.system[data-sys='ended'] .bubble")
    expect(ended).to_have_text("boss 结束了本次对话")
    card = v.locator("#rate")
    expect(card).to_be_visible()
    expect(card.locator("h2")).to_have_text("请为本次服务评分")
    assert v.evaluate("document.querySelector('#rate').previousElementSibling.dataset.sys") \
        == "ended"
    # Sending without stars: told, nothing sent.
    card.get_by_role("button", name="提交评价").click()
    expect(card.locator(".error")).to_have_text("请选择 1–5 星")
    keep(shot(v, "rating-visitor-pc"), "rating-visitor-pc.png")
    # By keyboard: the stars are radio buttons (arrows), then the comment and Enter.
    v.locator("#rate-1").focus()
    v.keyboard.press("Space")
    for _ in range(3):
        v.keyboard.press("ArrowRight")
    expect(v.locator("#rate-4")).to_be_checked()
    expect(card.locator("label.star.on")).to_have_count(4)
    v.keyboard.press("Tab")
    v.keyboard.type("很快就解决了 <b>赞</b>")
    v.keyboard.press("Tab")
    v.keyboard.press("Enter")
    rated = v.locator(".msg.system[data-sys='rated'] .bubble")
    expect(rated).to_have_text("您的评价：★★★★☆ “很快就解决了 <b>赞</b>”，谢谢！")
    expect(card).to_have_count(0)
    assert db_rows(server.db_url, "SELECT visiter_id, service_id, score, comment FROM "
                   "wolive_rating") == [{"visiter_id": "v-rate", "service_id": 1, "score": 4,
                                         "comment": "很快就解决了 <b>赞</b>"}]
    # The console is told live, though the conversation has left its list.
    expect(boss.locator("#wb-toast")).to_contain_text("小红：访客评价：★★★★☆（4/5）")
    # Writing after the end starts a new conversation, visibly on both sides.
    v.locator("#input").fill("还有一个问题")
    v.locator("#input").press("Enter")
    expect(v.locator(".msg.system[data-sys='reopened'] .bubble")).to_have_text("新的对话开始了")
    expect(row).to_be_visible()
    # A reload shows the same transcript: no second rating card, line or greeting.
    v.reload()
    expect(v.locator(".msg.mine .bubble")).to_have_text(["订单已经收到了，谢谢", "还有一个问题"])
    expect(v.locator("#agent-name")).to_have_text("boss")
    expect(v.locator(".msg.system .bubble")).to_have_text([
        "boss 结束了本次对话", re.compile("^您的评价"), "新的对话开始了"])
    expect(v.locator(".msg.theirs .bubble")).to_have_text([GREETING])
    expect(v.locator("#rate")).to_have_count(0)
    row.click()
    lines = boss.locator("#messages .msg.system .bubble")
    expect(lines).to_have_text(["boss 结束了本次对话", re.compile(r"^访客评价：★★★★☆（4/5）"),
                                "新的对话开始了"])
    expect(boss.locator("#messages .msg.system .tick")).to_have_count(0)  # no read ticks
    expect(boss.locator("#info-body dd.rating")).to_contain_text(
        "★★★★☆ 4/5 “很快就解决了 <b>赞</b>”")
    keep(shot(boss, "rating-console"), "rating-console.png")
    boss.locator("#lang-switch").click()  # the lines follow the language
    expect(lines).to_have_text(["boss ended the conversation",
                                re.compile(r"^Visitor rated ★★★★☆ \(4/5\)"),
                                "A new conversation started"])
    expect(boss.locator("#info-body dt", has_text="Latest rating")).to_be_visible()
    boss.locator("#lang-switch").click()

    # History: the ratings above the transcript, and the lines in it.
    hist = boss.context.new_page()
    hist.goto(f"{server.base_url}/admin/page/history")
    hist.locator(".vrow[data-visiter='v-rate']").click()
    expect(hist.locator(".hist-ratings")).to_contain_text("★★★★☆ 4/5 “很快就解决了 <b>赞</b>”")
    expect(hist.locator("#messages .msg.system .bubble")).to_have_count(3)
    keep(shot(hist, "rating-history"), "rating-history.png")

    # A phone: the card fits, works by touch, speaks English; "Not now" puts it away.
    pctx = new_context("phone", viewport=PHONE, is_mobile=True, has_touch=True)
    p = visitor_page(pctx, server, "v-phone", "Ann")
    expect(p.locator("#agent-name")).to_have_text("boss")
    p.locator("#lang-btn").click()
    console_post(boss, "/admin/set/close", visiter_id="v-phone")
    pcard = p.locator("#rate")
    expect(pcard.locator("h2")).to_have_text("How was our service?")
    expect(p.locator(".msg.system[data-sys='ended'] .bubble")).to_have_text(
        "boss ended the conversation")
    p.locator("label.star[data-n='5']").tap()
    expect(p.locator("#rate-5")).to_be_checked()
    expect(pcard.locator("label.star.on")).to_have_count(5)
    for star in pcard.locator("label.star").all():
        box = star.bounding_box()
        assert box and box["width"] >= 44 and box["height"] >= 44, box
    assert p.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    keep(shot(p, "rating-visitor-phone"), "rating-visitor-phone.png")
    # Back to Chinese and again English: the card and the closing line follow.
    p.locator("#lang-btn").click()
    expect(pcard.locator("h2")).to_have_text("请为本次服务评分")
    expect(p.locator(".msg.system[data-sys='ended'] .bubble")).to_have_text("boss 结束了本次对话")
    expect(p.locator("label.star[data-n='2']")).to_have_attribute("aria-label", "2 星")
    p.locator("#lang-btn").click()
    expect(pcard.locator("h2")).to_have_text("How was our service?")
    expect(p.locator("label.star[data-n='2']")).to_have_attribute("aria-label", "2 of 5 stars")
    pcard.get_by_role("button", name="Not now").tap()
    expect(pcard).to_have_count(0)
    p.reload()
    expect(p.locator(".msg.system[data-sys='ended']")).to_have_count(1)
    expect(p.locator("#rate")).to_have_count(0)
    assert db_rows(server.db_url, "SELECT COUNT(*) AS n FROM wolive_rating")[0]["n"] == 1
    problems.check()
