"""Issue 9, items 3 and 5, in Chromium: a transfer with a note (lines in both transcripts,
the receiving agent's notice, badge and sound, the note never shown to the visitor); the
agent closes its console mid-chat (the visitor is told and moved to the other agent); the
last agent leaves (the visitor is told, offered the contact form, writes anyway, leaves its
details) and the agent finds them in the transcript and the details panel. A manager's reply
in an agent's conversation shows live in that agent's console."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import BUSINESS, RunningServer
from helpers import db_rows
from test_e2e_browser import (PC, POPUP, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)
from test_ui_workbench import conv, console_post, login_as, visitor_page

ANNA_PASSWORD = "anna-pass-123"
NOTE = "VIP：要退订单 Q7XK 的款"


def dings(page: Any) -> int:
    return int(page.evaluate("window.woliveConsole.dings || 0"))


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_transfer_and_the_agent_who_leaves(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    bctx = new_context("boss", viewport=PC)
    boss = bctx.new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/registForService", user_name="anna", nick_name="Anna",
                 password=ANNA_PASSWORD, password2=ANNA_PASSWORD)

    # A visitor talks to the boss.
    v1 = visitor_page(new_context("visitor", viewport=POPUP), server, "v-tea", "小明")
    expect(v1.locator("#agent-name")).to_have_text("boss")
    v1.locator("#input").fill("我想退款")
    v1.locator("#input").press("Enter")
    conv(boss, "v-tea").click()
    expect(boss.locator("#messages .msg.theirs .bubble")).to_have_text("我想退款")

    # Anna signs in; the boss transfers the visitor to her with a note.
    actx = new_context("anna", viewport=PC)
    anna = actx.new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    before = dings(anna)
    boss.locator("#act-transfer").click()
    boss.locator("#transfer-note").fill(NOTE)
    expect(boss.locator("#transfer-list .transfer-to", has_text="Anna")).to_be_visible()
    shot(boss, "handover-transfer-dialog")
    boss.locator("#transfer-list .transfer-to", has_text="Anna").click()
    expect(conv(boss, "v-tea")).to_have_count(0)
    # The receiving agent: a notice with the visitor and the note, a badge, the sound.
    notice = anna.locator("#handover")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("boss 把 小明 转接给了你")
    expect(notice).to_contain_text("备注：" + NOTE)
    row = conv(anna, "v-tea")
    expect(row.locator(".badge")).to_be_visible()
    expect(row.locator(".badge")).to_have_text("新")
    expect(row.locator(".last")).to_have_text("boss 转接备注（仅客服可见）：" + NOTE)
    assert dings(anna) > before
    shot(anna, "handover-notice")
    # The visitor: a line naming both agents, the new agent in the header, never the note.
    line = v1.locator("#messages .msg.system[data-sys='transferred']")
    expect(line).to_have_text(re.compile("boss 已将对话转接给 Anna"))
    expect(v1.locator("#agent-name")).to_have_text("Anna")
    assert "Q7XK" not in v1.locator("body").inner_text()
    shot(v1, "handover-transfer-visitor")
    # Anna opens it: the notice and the badge go; her transcript has the line too.
    notice.get_by_role("button", name="查看对话").click()
    expect(row).to_have_class(re.compile(r"\bactive\b"))
    expect(notice).to_be_hidden()
    expect(row.locator(".badge")).to_be_hidden()
    expect(anna.locator("#messages .msg.system[data-sys='transferred']")).to_have_text(
        re.compile("boss 已将对话转接给 Anna"))
    expect(anna.locator("#messages .msg.theirs .bubble")).to_have_text("我想退款")
    expect(anna.locator("#messages .msg.system .tick")).to_have_count(0)  # not a message
    shot(anna, "handover-transfer-agent")
    # The note is kept in her transcript, for the agents only: there after a reload; the
    # visitor's reloaded window still never shows it.
    note_line = anna.locator("#messages .msg.system.note[data-sys='transfer_note']")
    expect(note_line).to_have_text(re.compile(re.escape("boss 转接备注（仅客服可见）：" + NOTE)))
    anna.reload()
    conv(anna, "v-tea").click()
    expect(note_line).to_have_text(re.compile(re.escape("boss 转接备注（仅客服可见）：" + NOTE)))
    v1.reload()
    expect(v1.locator("#messages .msg.system[data-sys='transferred']")).to_have_count(1)
    assert "Q7XK" not in v1.locator("body").inner_text()

    # Anna closes her console mid-chat: the visitor is told and moved back to the boss.
    before = dings(boss)
    anna.close()
    left = v1.locator("#messages .msg.system[data-sys='agent_left']")
    expect(left).to_have_text(re.compile("Anna 已离开对话"), timeout=20000)
    expect(v1.locator("#messages .msg.system[data-sys='taken_over']")).to_have_text(
        re.compile("boss 接替 Anna 继续为您服务"))
    expect(v1.locator("#agent-name")).to_have_text("boss")
    expect(boss.locator("#handover")).to_contain_text("Anna 已离线，小明 已转接给你")
    expect(conv(boss, "v-tea").locator(".badge")).to_have_text("新")
    assert dings(boss) > before
    assert db_rows(server.db_url, "SELECT service_id, state FROM wolive_queue WHERE "
                   "visiter_id = 'v-tea'") == [{"service_id": 1, "state": "normal"}]
    shot(v1, "handover-agent-left-moved")

    # The boss leaves too: nobody is left, the visitor is offered the contact form.
    boss.close()
    expect(v1.locator("#messages .msg.system[data-sys='agent_left']").last).to_have_text(
        re.compile("boss 已离开对话"), timeout=20000)
    form = v1.locator("#contact")
    expect(form).to_be_visible()
    # Offline, not "away" (an agent's explicit status): said so, with what to do.
    expect(form).to_contain_text("客服已离线，留下联系方式")
    expect(v1.locator("#agent-state")).to_have_text("已离线，可留言")
    shot(v1, "handover-agent-left-contact")
    # Writing anyway: stored for the boss, and the window says the agent is offline.
    v1.locator("#input").fill("还有人吗？")
    v1.locator("#input").press("Enter")
    expect(v1.locator("#messages .msg.mine .bubble").last).to_have_text("还有人吗？")
    expect(v1.locator("#messages")).to_contain_text("客服已离线，您的消息已保存")
    assert db_rows(server.db_url, "SELECT service_id FROM wolive_chats WHERE content = "
                   "'还有人吗？'") == [{"service_id": 1}]
    shot(v1, "handover-contact-form")
    # Neither a phone nor an email: told, nothing sent.
    form.get_by_role("button", name="提交联系方式").click()
    expect(form.locator(".error")).to_have_text("请填写电话或邮箱")
    form.locator("input[name=name]").fill("王小明")
    form.locator("input[name=tel]").fill("138 0000 0000")
    form.locator("textarea[name=note]").fill("晚上六点后打给我")
    form.get_by_role("button", name="提交联系方式").click()
    expect(v1.locator("#contact-done")).to_contain_text("谢谢")
    expect(v1.locator("#messages .msg.system[data-sys='contact']")).to_contain_text(
        "王小明 · 138 0000 0000 · 晚上六点后打给我")
    shot(v1, "handover-contact-sent")

    # The boss comes back: the details are in the transcript and the details panel.
    boss = bctx.new_page()
    boss.goto(f"{server.base_url}/admin/index/index")
    expect(boss.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    conv(boss, "v-tea").click()
    expect(boss.locator("#messages .msg.system[data-sys='contact']")).to_contain_text(
        "访客留下了联系方式：王小明 · 138 0000 0000 · 晚上六点后打给我")
    expect(boss.locator("#f-name")).to_have_value("王小明")
    expect(boss.locator("#f-tel")).to_have_value("138 0000 0000")
    expect(boss.locator("#f-note")).to_have_value("晚上六点后打给我")
    shot(boss, "handover-contact-agent")
    problems.check()


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_under_claim_the_visitor_waits_again_when_its_agent_leaves(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/registForService", user_name="anna", nick_name="Anna",
                 password=ANNA_PASSWORD, password2=ANNA_PASSWORD)
    console_post(boss, "/admin/manager/switches", business_id=BUSINESS,
                 distribution_rule="claim")
    anna = new_context("anna", viewport=PC).new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    v1 = visitor_page(new_context("visitor", viewport=POPUP), server, "v-wait", "排队的人")
    expect(v1.locator("#queue")).to_be_visible()
    anna.locator("#queue .wait[data-visiter='v-wait'] .claim").click()
    expect(v1.locator("#agent-name")).to_have_text("Anna")
    expect(v1.locator("#queue")).to_be_hidden()

    # Anna closes her console: the visitor is told and waits again, first in line.
    anna.close()
    expect(v1.locator("#messages .msg.system[data-sys='agent_left']")).to_have_text(
        re.compile("Anna 已离开对话"), timeout=20000)
    expect(v1.locator("#queue")).to_be_visible()
    expect(v1.locator("#queue-text")).to_have_text("马上就轮到您了，请稍候…")
    expect(v1.locator("#agent-state")).to_have_text("排队中")
    expect(v1.locator("#agent-name")).to_have_text("在线客服")
    shot(v1, "handover-agent-left-queue")
    # The boss sees it waiting and claims it.
    wait = boss.locator("#queue .wait[data-visiter='v-wait']")
    expect(wait).to_be_visible()
    wait.locator(".claim").click()
    expect(v1.locator("#agent-name")).to_have_text("boss")
    expect(v1.locator("#queue")).to_be_hidden()
    assert db_rows(server.db_url, "SELECT service_id, state FROM wolive_queue WHERE "
                   "visiter_id = 'v-wait'") == [{"service_id": 1, "state": "normal"}]
    problems.check()


@pytest.mark.browser
@pytest.mark.e2e
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_managers_reply_shows_live_in_the_conversations_agents_console(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    """The boss (super_manager) replies to Anna's visitors through `/admin/set/chats`:
    Anna's console shows each reply at once, without a reload, in the conversation it
    belongs to (the open one's transcript, the other's row in the list), as her replies
    from another tab are shown; the visitor gets it from the boss."""
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    console_post(boss, "/admin/manager/registForService", user_name="anna", nick_name="Anna",
                 password=ANNA_PASSWORD, password2=ANNA_PASSWORD)
    console_post(boss, "/admin/set/status", status="away")  # new visitors go to Anna
    anna = new_context("anna", viewport=PC).new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    visitors = {}
    for vid, name, text in (("v-one", "小明", "订单到哪了？"), ("v-two", "小红", "能开发票吗？")):
        page = visitor_page(new_context(vid, viewport=POPUP), server, vid, name)
        expect(page.locator("#agent-name")).to_have_text("Anna")
        page.locator("#input").fill(text)
        page.locator("#input").press("Enter")
        expect(conv(anna, vid).locator(".last")).to_have_text(text)
        visitors[vid] = page
    conv(anna, "v-one").click()
    expect(anna.locator("#messages .msg.theirs .bubble")).to_have_text("订单到哪了？")
    expect(conv(anna, "v-two").locator(".badge")).to_have_text("1")

    console_post(boss, "/admin/set/chats", visiter_id="v-one", content="经理：已经发货了")
    expect(anna.locator("#messages .msg.mine .bubble")).to_have_text("经理：已经发货了")
    expect(conv(anna, "v-one").locator(".last")).to_have_text("经理：已经发货了")
    expect(visitors["v-one"].locator("#messages .msg.theirs .bubble").last).to_have_text(
        "经理：已经发货了")
    shot(anna, "manager-reply-live")

    console_post(boss, "/admin/set/chats", visiter_id="v-two", content="经理：可以开")
    expect(conv(anna, "v-two").locator(".last")).to_have_text("经理：可以开")
    expect(conv(anna, "v-two").locator(".badge")).to_have_text("1")  # not a new unread
    expect(anna.locator("#messages")).not_to_contain_text("经理：可以开")
    conv(anna, "v-two").click()
    expect(anna.locator("#messages .msg.mine .bubble")).to_have_text("经理：可以开")
    assert db_rows(server.db_url, "SELECT visiter_id, service_id FROM wolive_queue "
                   "ORDER BY visiter_id") == [{"visiter_id": "v-one", "service_id": 2},
                                              {"visiter_id": "v-two", "service_id": 2}]
    problems.check()
