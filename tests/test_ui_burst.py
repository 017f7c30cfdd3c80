"""The visitor window waits out a busy server (issue 11): a 503 with `Retry-After` on the
notice or on a send is asked again after that many seconds, and the visitor sees no failure
(static/assets/js/wolive-common.js `Wolive.apiRetry`, used by visitor.js). In Debian's
Chromium against `python wolive.py`, the 503s injected by routing the first call.

SQLite only: the database does not matter to the window. Screenshots: tests/artifacts/.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import RunningServer, start_server, stop_server
from helpers import db_rows
import test_e2e_browser as e2e
from test_e2e_browser import POPUP, PageProblems, agent_login
from test_ui_visitor import api, visitor_url, wait_agent

browser, new_context, problems, shot = e2e.browser, e2e.new_context, e2e.problems, e2e.shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

BUSY = json.dumps({"code": 1,
                   "msg": "service briefly unavailable, retrying / 服务暂时不可用，正在重试"})


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path, f"sqlite:///{tmp_path}/data/wolive.db")
    yield srv
    code = stop_server(srv)
    assert code == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


class BusyOnce:
    """A route answering the first matching request 503 + `Retry-After: 1` (what the server
    says when its database pool is exhausted), passing the rest through; keeps the times."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, route: Any) -> None:
        self.times.append(time.monotonic())
        if len(self.times) == 1:
            route.fulfill(status=503, headers={"Retry-After": "1"},
                          content_type="application/json", body=BUSY)
        else:
            route.continue_()


def test_window_retries_a_busy_notice_and_send(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="auto")

    context = new_context("visitor", viewport=POPUP)
    notice, chats = BusyOnce(), BusyOnce()
    context.route(re.compile(r"/admin/event/notice$"), notice)
    context.route(re.compile(r"/admin/event/chats$"), chats)
    chat = context.new_page()
    chat.goto(visitor_url(server, "busy-1"))
    wait_agent(chat)                                  # assigned, after one retry
    assert len(notice.times) == 2
    assert notice.times[1] - notice.times[0] >= 1.0   # waited Retry-After
    expect(chat.locator(".msg.system")).to_have_count(0)   # no "unavailable" line

    chat.locator("#input").fill("人多的时候也能发出去")
    chat.locator("#input").press("Enter")
    mine = chat.locator(".msg.mine .bubble")
    expect(mine).to_have_text(["人多的时候也能发出去"])
    assert len(chats.times) == 2 and chats.times[1] - chats.times[0] >= 1.0
    expect(chat.locator(".msg.system")).to_have_count(0)   # no "not sent" line
    expect(chat.locator("#input")).to_be_enabled()
    expect(agent.locator("#convs")).to_contain_text("人多的时候也能发出去")
    stored = db_rows(server.db_url, "SELECT content FROM wolive_chats "
                                    "WHERE visiter_id='busy-1' AND direction='to_service'")
    assert [r["content"] for r in stored] == ["人多的时候也能发出去"]
    shot(chat, "visitor-busy-retried")
    problems.check(allow=r"HTTP 503|status of 503")
