"""Waiting visitors switch live (issue 9, item 2), in Debian's Chromium against
`python wolive.py`: a visitor on "Nobody online" is connected when an agent logs in, without
a reload (auto), or shown its place in the queue (claim); with the cap full, three queued
visitors, a second agent logs in: two are assigned at once, the third's place moves up live.

SQLite only: the database does not matter here (tests/test_waiting.py covers both).
Screenshots: tests/artifacts/waiting-*.png.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

import conftest
from conftest import RunningServer, start_server, stop_server
from helpers import db_rows
import test_e2e_browser as e2e
from test_e2e_browser import POPUP, PageProblems, agent_login
from test_ui_visitor import AGENT_PAGES, api, visitor_url, wait_agent

browser, new_context, problems, shot = e2e.browser, e2e.new_context, e2e.problems, e2e.shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

ANNA_PASSWORD = "anna's password 7"


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cap: int = 0) -> RunningServer:
    """The real server on SQLite, with `chat.max_conversations_per_agent` = `cap`."""
    plain = conftest.write_config

    def with_cap(path: Path, db_url: str, **server: Any) -> Path:
        config = plain(path, db_url, **server)
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["chat"] = {"max_conversations_per_agent": cap}
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        return config

    monkeypatch.setattr(conftest, "write_config", with_cap)
    return start_server(tmp_path, f"sqlite:///{tmp_path}/data/wolive.db")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    srv = serve(tmp_path, monkeypatch)
    yield srv
    assert stop_server(srv) == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


@pytest.fixture
def capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    srv = serve(tmp_path, monkeypatch, cap=2)
    yield srv
    assert stop_server(srv) == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


def open_visitor(new_context: Callable[..., Any], server: RunningServer, vid: str) -> Any:
    page = new_context(vid, viewport=POPUP).new_page()
    page.goto(visitor_url(server, vid))
    # Marks this page: still there at the end means the window never reloaded.
    page.evaluate("window.__sameWindow = true")
    return page


def same_window(page: Any) -> bool:
    return bool(page.evaluate("window.__sameWindow === true"))


def login_as(page: Any, server: RunningServer, user: str, password: str) -> None:
    from playwright.sync_api import expect
    page.goto(f"{server.base_url}/admin/login/index")
    page.get_by_label(re.compile("用户名")).fill(user)
    page.get_by_label(re.compile("密码")).fill(password)
    page.get_by_role("button", name=re.compile("登录")).click()
    page.wait_for_url(f"{server.base_url}/admin/index/index")
    expect(page.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))


def test_nobody_online_visitor_is_connected_when_an_agent_logs_in(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    visitor = open_visitor(new_context, server, "vlate1")
    expect(visitor.locator("#agent-state")).to_have_text("客服不在线")
    expect(visitor.locator("#input")).to_be_disabled()
    expect(visitor.locator("#leave")).to_be_visible()
    nobody_line = visitor.locator(".msg.system[data-key='nobody_msg']")
    expect(nobody_line).to_have_count(1)
    shot(visitor, "waiting-nobody-before")

    agent = new_context("agent").new_page()
    agent_login(agent, server)
    # No reload: the window is told (cu_notice) and switches to the agent.
    wait_agent(visitor)
    expect(visitor.locator("#leave")).to_have_count(0)
    expect(visitor.locator(".msg.system .bubble").last).to_have_text("boss 为您服务")
    # "Nobody online, leave a message" is not true any more: it goes with the form.
    expect(nobody_line).to_have_count(0)
    assert same_window(visitor)
    shot(visitor, "waiting-nobody-then-connected")
    # The agent has the visitor in its list, and they talk.
    expect(agent.locator(".conv[data-visiter='vlate1']")).to_be_visible()
    visitor.locator("#input").fill("终于有人了")
    visitor.locator("#input").press("Enter")
    expect(visitor.locator(".msg.mine .bubble")).to_have_text("终于有人了")
    problems.check(allow=AGENT_PAGES)


def test_claim_rule_nobody_online_turns_into_a_place_in_the_queue(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    db_rows(server.db_url, "UPDATE wolive_business SET distribution_rule = 'claim'")
    first = open_visitor(new_context, server, "vclaim1")
    expect(first.locator("#agent-state")).to_have_text("客服不在线")
    second = open_visitor(new_context, server, "vclaim2")
    expect(second.locator("#agent-state")).to_have_text("客服不在线")

    agent = new_context("agent").new_page()
    agent_login(agent, server)
    expect(first.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    expect(second.locator("#queue")).to_have_text("正在排队，您前面还有 1 人，请稍候…")
    expect(second.locator("#agent-state")).to_have_text("排队中")
    expect(second.locator("#input")).to_be_enabled()
    expect(second.locator("#leave")).to_have_count(0)
    expect(second.locator(".msg.system[data-key='nobody_msg']")).to_have_count(0)
    shot(second, "waiting-nobody-then-queued")
    # The console's waiting list shows both, oldest first; a claim moves the second up live.
    expect(agent.locator("#queue .wait")).to_have_count(2)
    agent.locator("#queue .wait[data-visiter='vclaim1'] .claim").click()
    wait_agent(first)
    expect(second.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    expect(agent.locator("#queue .wait")).to_have_count(1)
    assert same_window(first) and same_window(second)
    problems.check(allow=AGENT_PAGES)


def test_cap_full_three_queued_a_second_agent_takes_two_the_third_moves_up(
        capped: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    server = capped
    boss = new_context("agent").new_page()
    agent_login(boss, server)
    api(boss, server, "POST", "/admin/manager/registForService", user_name="anna",
        nick_name="Anna", password=ANNA_PASSWORD, password2=ANNA_PASSWORD)
    for vid in ("vbusy1", "vbusy2"):  # boss at the cap (2)
        wait_agent(open_visitor(new_context, server, vid))
    waiting = []
    for n, text in enumerate(("马上就轮到您了，请稍候…", "正在排队，您前面还有 1 人，请稍候…",
                              "正在排队，您前面还有 2 人，请稍候…")):
        page = open_visitor(new_context, server, f"vwait{n + 1}")
        expect(page.locator("#queue")).to_have_text(text)
        waiting.append(page)
    expect(boss.locator("#queue .wait")).to_have_count(3)
    shot(waiting[2], "waiting-queue-third-before")
    shot(boss, "waiting-console-queue-before")

    anna = new_context("anna").new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)
    for page in waiting[:2]:
        wait_agent(page, "Anna")
        expect(page.locator("#queue")).to_be_hidden()
    expect(waiting[2].locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    expect(waiting[2].locator("#agent-state")).to_have_text("排队中")
    assert all(same_window(p) for p in waiting)
    expect(anna.locator(".conv")).to_have_count(2)
    # Every console's waiting list follows at once: only the third still waits.
    expect(anna.locator("#queue .wait")).to_have_count(1)
    expect(boss.locator("#queue .wait")).to_have_count(1)
    expect(boss.locator("#queue .wait[data-visiter='vwait3']")).to_be_visible()
    shot(waiting[2], "waiting-queue-third-after")
    shot(waiting[0], "waiting-queue-first-assigned")
    shot(anna, "waiting-second-agent-console")
    problems.check(allow=AGENT_PAGES)


@pytest.fixture
def capped1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningServer]:
    srv = serve(tmp_path, monkeypatch, cap=1)
    yield srv
    assert stop_server(srv) == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


def test_the_last_agent_leaves_a_queued_visitor_sees_nobody_online(
        capped1: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    """Queued under the cap, then the only agent closes the console: the waiting window
    drops its place and shows "nobody online" with the leave-a-message form, live."""
    from playwright.sync_api import expect
    server = capped1
    bctx = new_context("agent")
    boss = bctx.new_page()
    agent_login(boss, server)
    wait_agent(open_visitor(new_context, server, "vbusy1"))
    page = open_visitor(new_context, server, "vwait1")
    expect(page.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    bctx.close()  # the last console tab: offline after the grace
    expect(page.locator("#agent-state")).to_have_text("客服不在线", timeout=20000)
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#leave")).to_be_visible()
    assert same_window(page)
    shot(page, "waiting-last-agent-left")
    problems.check(allow=AGENT_PAGES)


def test_waiting_list_shows_a_system_line_as_text_never_its_json(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    """Under `claim`, Anna's visitor goes back to the queue when she closes her console;
    its last message is then the `agent_left` system line (stored as JSON). The boss's
    Waiting list shows it as the line's text (W.systemText), live and after a reload,
    never the JSON."""
    from playwright.sync_api import expect
    db_rows(server.db_url, "UPDATE wolive_business SET distribution_rule = 'claim'")
    boss = new_context("agent").new_page()
    agent_login(boss, server)
    api(boss, server, "POST", "/admin/manager/registForService", user_name="anna",
        nick_name="Anna", password=ANNA_PASSWORD, password2=ANNA_PASSWORD)
    actx = new_context("anna")
    anna = actx.new_page()
    login_as(anna, server, "anna", ANNA_PASSWORD)

    visitor = open_visitor(new_context, server, "vsys1")
    expect(visitor.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    visitor.locator("#input").fill("在吗")
    visitor.locator("#input").press("Enter")
    row = boss.locator("#queue .wait[data-visiter='vsys1']")
    expect(row.locator(".last")).to_have_text("在吗")
    anna.locator("#queue .wait[data-visiter='vsys1'] .claim").click()
    wait_agent(visitor, "Anna")
    expect(row).to_have_count(0)

    actx.close()  # Anna's last console: after the grace she has left, the visitor waits again
    expect(row.locator(".last")).to_have_text("Anna 已离开对话", timeout=20000)
    assert db_rows(server.db_url, "SELECT msg_type FROM wolive_chats WHERE visiter_id = "
                   "'vsys1' ORDER BY cid DESC LIMIT 1") == [{"msg_type": "system"}]
    queue = boss.locator("#queue")
    assert '"key"' not in queue.inner_text()
    shot(boss, "waiting-system-line-preview")
    boss.reload()
    expect(row.locator(".last")).to_have_text("Anna 已离开对话")
    assert '"key"' not in queue.inner_text()
    # In English too (the line is put in the page's language).
    boss.evaluate("Wolive.i18n.set('en')")
    expect(row.locator(".last")).to_have_text("Anna has left the chat")
    assert '"key"' not in queue.inner_text()
    problems.check(allow=AGENT_PAGES)
