"""A tester's defect, in Chromium against `python wolive.py`: a deleted agent's console tabs
go to the sign-in page at once (its visitor is told and waits for the next agent)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import pytest
from conftest import RunningServer
from test_e2e_browser import (PC, POPUP, PageProblems, agent_login,  # noqa: F401
                              browser, new_context, problems, shot)
from test_ui_workbench import conv, console_post, login_as, visitor_page

pytestmark = [pytest.mark.browser, pytest.mark.e2e,
              pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

ANNA_PASSWORD = "anna-pass-123"


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

