"""A tester's two defects, in Chromium against `python wolive.py`: a deleted agent's console
tabs go to the sign-in page at once (its visitor is told and waits for the next agent), and
a visitor left with an agent who went offline is moved to the next agent who comes online
(the window learns it live, and that agent sees what the visitor wrote meanwhile)."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import RunningServer
from helpers import db_rows
from test_e2e_browser import (PC, POPUP, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)
from test_ui_workbench import conv, console_post, login_as, visitor_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e,
              pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

ANNA_PASSWORD = "anna-pass-123"


def agent_state(server: RunningServer, user: str) -> str:
    return str(db_rows(server.db_url, "SELECT state FROM wolive_service WHERE user_name = %s",
                       (user,))[0]["state"])


def until(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll `predicate` (a database read) until it holds; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_a_deleted_agents_console_tabs_go_to_the_sign_in_page(
        running_server: RunningServer,
        new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    boss = new_context("boss", viewport=PC).new_page()
    agent_login(boss, server)
    sid = console_post(boss, "/admin/manager/registForService", user_name="anna",
                       nick_name="Anna", password=ANNA_PASSWORD,
                       password2=ANNA_PASSWORD)["data"]["service_id"]
    console_post(boss, "/admin/set/status", status="away")  # the visitor goes to anna
    actx = new_context("anna", viewport=PC)
    anna = actx.new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    settings = actx.new_page()
    settings.goto(f"{server.base_url}/admin/page/settings")
    expect(settings.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    v1 = visitor_page(new_context("visitor", viewport=POPUP), server, "v-del", "小丽")
    expect(v1.locator("#agent-name")).to_have_text("Anna")

    console_post(boss, "/admin/manager/delete", service_id=sid)
    # Both of her tabs leave for the sign-in page, where her cookie opens nothing.
    for page in (anna, settings):
        page.wait_for_url(re.compile("/admin/login/index"), timeout=10000)
        expect(page.locator("h1")).to_have_text("wolive 客服登录")
    # Her visitor is told and waits; the boss becomes available and takes it.
    expect(v1.locator("#messages .msg.system[data-sys='agent_left']")).to_have_text(
        re.compile("Anna 已离开对话"))
    expect(v1.locator("#queue")).to_be_visible()
    console_post(boss, "/admin/set/status", status="available")
    expect(v1.locator("#agent-name")).to_have_text("boss")
    expect(conv(boss, "v-del")).to_be_visible()
    shot(anna, "agent-deleted-sign-in")
    problems.check()


def test_a_visitor_left_with_an_offline_agent_moves_to_the_next_agent_online(
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
    boss.close()
    until(lambda: agent_state(server, "boss") == "offline")
    anna = new_context("anna", viewport=PC).new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    v1 = visitor_page(new_context("visitor", viewport=POPUP), server, "v-st", "小强")
    expect(v1.locator("#agent-name")).to_have_text("Anna")

    # Anna closes her console and nobody else is online: the visitor is told, offered the
    # contact form, and writes anyway.
    anna.close()
    expect(v1.locator("#messages .msg.system[data-sys='agent_left']")).to_have_text(
        re.compile("Anna 已离开对话"), timeout=20000)
    expect(v1.locator("#contact")).to_be_visible()
    v1.locator("#input").fill("还有人吗？")
    v1.locator("#input").press("Enter")
    expect(v1.locator("#messages .msg.mine .bubble").last).to_have_text("还有人吗？")

    # The boss comes online (opens his console again): the visitor is his at once, and the
    # window says so.
    boss = bctx.new_page()
    boss.goto(f"{server.base_url}/admin/index/index")
    expect(boss.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))
    expect(v1.locator("#messages .msg.system[data-sys='taken_over']")).to_have_text(
        re.compile("boss 接替 Anna 继续为您服务"))
    expect(v1.locator("#agent-name")).to_have_text("boss")
    expect(v1.locator("#contact")).to_have_count(0)
    shot(v1, "stranded-visitor-moved")
    # The boss sees the conversation with what was written meanwhile, unread.
    expect(boss.locator("#handover")).to_contain_text("Anna 已离线，小强 已转接给你")
    expect(conv(boss, "v-st").locator(".badge")).to_have_text("1")
    conv(boss, "v-st").click()
    expect(boss.locator("#messages .msg.theirs .bubble").last).to_have_text("还有人吗？")
    shot(boss, "stranded-visitor-new-agent")
    assert db_rows(server.db_url, "SELECT service_id, state FROM wolive_queue WHERE "
                   "visiter_id = 'v-st'") == [{"service_id": 1, "state": "normal"}]
    problems.check()
