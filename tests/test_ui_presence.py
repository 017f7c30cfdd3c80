"""Presence per agent, not per page (issue 9), in a real browser: Debian's Chromium through
Playwright against `python wolive.py`, on SQLite and MariaDB.

The agent moves between the workbench, History and Settings, in one tab and in two: the
visitor's window never says "offline" and `wolive_service.state` stays `online` throughout;
closing the last tab goes offline. The top bar's available / away toggle: the visitor sees
"away", the agent's other tab follows live, a new visitor waits instead of being given to
the away agent, and "available" gives it to the agent at once.
Screenshots: tests/artifacts/presence-*-<db>.png.
"""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ADMIN_USER, BUSINESS, RunningServer
from helpers import db_rows
from test_e2e_browser import (PHONE, PageProblems, agent_login, browser,  # noqa: F401
                              new_context, problems, shot, wait_assigned)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

POPUP = {"width": 420, "height": 640}
#: realtime.chat.presence.VACATE_GRACE_S: a page left for less than this is not an offline flap.
GRACE_S = 3.0
#: Records every text and class the visitor window's header takes.
WATCH_HEADER = """() => {
  window.__head = [];
  const note = () => window.__head.push([document.getElementById('agent-state').textContent,
                                         document.getElementById('head').className]);
  new MutationObserver(note).observe(document.getElementById('head'),
    {subtree: true, childList: true, characterData: true, attributes: true});
  note();
}"""


class StateLog:
    """Reads `wolive_service.state` of one agent over and over in a thread, keeping every
    value seen: what was really stored while the test ran."""

    def __init__(self, server: RunningServer, service_id: int) -> None:
        self.server, self.sid = server, service_id
        self.seen: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def now(self) -> str:
        return str(db_rows(self.server.db_url, "SELECT state FROM wolive_service WHERE "
                           "service_id = %s", (self.sid,))[0]["state"])

    def _run(self) -> None:
        while self.running:
            self.seen.append(self.now())
            time.sleep(0.05)

    def stop(self) -> list[str]:
        self.running = False
        self.thread.join()
        return self.seen


def wait_state(log: StateLog, state: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while log.now() != state:
        assert time.monotonic() < deadline, f"agent never became {state}"
        time.sleep(0.05)


def on_page(page: Any, url: str) -> None:
    """Open a console page and wait until its socket holds the agent online."""
    from playwright.sync_api import expect
    page.goto(url)
    expect(page.locator("#me-state")).to_have_text("在线")
    expect(page.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))


def hold_past_grace(page: Any, log: StateLog) -> None:
    """Stay on the page longer than the presence grace (the condition under test: without
    the page's own connection the agent went offline `GRACE_S` after leaving the
    workbench), checking the stored state all along."""
    deadline = time.monotonic() + GRACE_S + 1.0
    while time.monotonic() < deadline:
        assert log.now() == "online"
        page.wait_for_function("() => document.readyState === 'complete'")
        time.sleep(0.1)


def test_agent_stays_online_across_pages_and_tabs_and_away(
        running_server: RunningServer, new_context: Callable[..., Any],  # noqa: F811
        problems: PageProblems, shot: Callable[..., Path]) -> None:  # noqa: F811
    from playwright.sync_api import expect
    server = running_server
    base = server.base_url
    sid = db_rows(server.db_url, "SELECT service_id FROM wolive_service WHERE user_name = %s",
                  (ADMIN_USER,))[0]["service_id"]

    agent_ctx = new_context("agent")
    tab1 = agent_ctx.new_page()
    agent_login(tab1, server)

    visitor = new_context("visitor", viewport=POPUP).new_page()
    visitor.goto(f"{base}/index/index/home?business_id={BUSINESS}&visiter_id=v_presence_1")
    wait_assigned(visitor)
    visitor.evaluate(WATCH_HEADER)

    log = StateLog(server, sid)
    try:
        # One tab: workbench → History → Settings → workbench.
        for path in ("/admin/page/history", "/admin/page/settings"):
            on_page(tab1, base + path)
            expect(tab1.locator("#me-status")).to_have_text("可接待")
            hold_past_grace(tab1, log)
        shot(tab1, "presence-settings-available")
        on_page(tab1, f"{base}/admin/index/index")

        # Two tabs: History in a second one, the first one closes, the second moves on.
        tab2 = agent_ctx.new_page()
        on_page(tab2, f"{base}/admin/page/history")
        tab1.close()
        hold_past_grace(tab2, log)
        on_page(tab2, f"{base}/admin/page/settings")
        hold_past_grace(tab2, log)
        on_page(tab2, f"{base}/admin/index/index")
        hold_past_grace(tab2, log)
        seen = list(log.seen)
        assert seen and set(seen) == {"online"}, seen
        heads = visitor.evaluate("window.__head")
        assert not [h for h in heads if "离线" in h[0] or "offline" in h[1].split()], heads
        expect(visitor.locator("#agent-state")).to_have_text("在线")

        # Closing the last tab goes offline within the grace; the visitor is told.
        tab2.close()
        wait_state(log, "offline", GRACE_S + 5)
        expect(visitor.locator("#agent-state")).to_have_text("已离线，可留言")
    finally:
        log.stop()

    # Back, in two tabs: the status toggle is seen in both, changed live in the other.
    tab1 = agent_ctx.new_page()
    on_page(tab1, f"{base}/admin/index/index")
    tab2 = agent_ctx.new_page()
    on_page(tab2, f"{base}/admin/page/history")
    expect(visitor.locator("#agent-state")).to_have_text("在线")
    tab2.locator("#me-status").click()
    expect(tab2.locator("#me-status")).to_have_text("暂时离开")
    expect(tab2.locator("#me-status")).to_have_attribute("aria-pressed", "true")
    expect(tab1.locator("#me-status")).to_have_text("暂时离开")  # the other tab, live
    expect(tab1.locator("#me-dot")).to_have_class(re.compile(r"\baway\b"))
    assert db_rows(server.db_url, "SELECT status FROM wolive_service_status WHERE "
                   "service_id = %s", (sid,)) == [{"status": "away"}]
    assert db_rows(server.db_url, "SELECT state FROM wolive_service WHERE service_id = %s",
                   (sid,)) == [{"state": "online"}]
    # The visitor in conversation sees the agent away (not offline), and can still write.
    expect(visitor.locator("#agent-state")).to_have_text("暂时离开")
    expect(visitor.locator("#head")).to_have_class(re.compile(r"\baway\b"))
    expect(visitor.locator("#input")).to_be_enabled()
    shot(tab2, "presence-history-away")
    shot(visitor, "presence-visitor-agent-away")

    # A new visitor is not given to the away agent: it waits.
    newcomer = new_context("newcomer", viewport=POPUP).new_page()
    newcomer.goto(f"{base}/index/index/home?business_id={BUSINESS}&visiter_id=v_presence_2")
    expect(newcomer.locator("#agent-state")).to_have_text("排队中")
    assert db_rows(server.db_url, "SELECT service_id FROM wolive_queue WHERE visiter_id = %s",
                   ("v_presence_2",)) == [{"service_id": 0}]

    # English too.
    tab1.locator("#lang-switch").click()
    expect(tab1.locator("#me-status")).to_have_text("Away")
    expect(tab1.locator("#me-state")).to_have_text("Online")
    tab1.locator("#lang-switch").click()

    # Available again, from the workbench: the waiting visitor is given to the agent at once,
    # without a reload; the first visitor sees the agent online again.
    tab1.locator("#me-status").click()
    expect(tab1.locator("#me-status")).to_have_text("可接待")
    expect(tab2.locator("#me-status")).to_have_text("可接待")
    wait_assigned(newcomer)
    expect(visitor.locator("#agent-state")).to_have_text("在线")
    assert db_rows(server.db_url, "SELECT service_id FROM wolive_queue WHERE visiter_id = %s",
                   ("v_presence_2",)) == [{"service_id": sid}]
    shot(tab1, "presence-workbench-available")
    # On a phone the toggle stays in the top bar and nothing sticks out sideways.
    tab2.set_viewport_size(PHONE)
    tab2.locator("#me-status").click()
    expect(tab2.locator("#me-status")).to_have_attribute("aria-label", "暂时离开")
    top = tab2.locator("#topbar").bounding_box()
    assert tab2.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(tab2, "presence-phone-history")
    tab2.locator("#me-status").click()
    expect(tab2.locator("#me-status")).to_have_attribute("aria-label", "可接待")
    assert top and top["height"] <= 110, top  # one row of buttons over the nav
    problems.check()
