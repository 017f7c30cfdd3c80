"""End to end in a real browser: Debian's Chromium, driven by Playwright's sync API, against
`python wolive.py` on SQLite and on MariaDB.

An agent signs in and waits in the console; a visitor on a site owner's page (the demo site,
another origin) clicks the floating 客服 button, chats in the popup window, and the agent
answers. What both sides see is checked in the pages, what is stored is checked in the
database. Screenshots of every page go to tests/artifacts/ (`<page>-<db>.png`).

Chromium is /usr/bin/chromium (never downloaded). Without it these tests are skipped, unless
$WOLIVE_REQUIRE_BROWSER=1, when they fail.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import (ADMIN_PASSWORD, ADMIN_USER, BUSINESS, RunningServer, start_server,
                      stop_server)
from helpers import db_rows

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
REQUIRE_BROWSER = os.environ.get("WOLIVE_REQUIRE_BROWSER") == "1"
TIMEOUT_MS = 15_000
PC = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
#: The size kefu_online.js asks for when it opens the chat window.
POPUP = {"width": 440, "height": 680}

VISITOR_TEXT = "你好，我想问一下这个订单什么时候发货？🚚📦"
AGENT_TEXT = "您好！今天下午就发货 😊 Shipping this afternoon."

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


# ---- the browser -------------------------------------------------------------------------

def chromium(extra_args: tuple[str, ...] = ()) -> Iterator[Any]:
    """Debian's Chromium through Playwright (never a downloaded browser); skipped when it is
    missing, unless $WOLIVE_REQUIRE_BROWSER=1, when the test fails."""
    if not os.path.exists(CHROMIUM):
        msg = f"{CHROMIUM} not found (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(msg + " but WOLIVE_REQUIRE_BROWSER=1")
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args))
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from chromium()


class PageProblems:
    """Uncaught script errors and failed loads on any page of a context: none expected."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def watch_context(self, context: Any, who: str) -> None:
        context.on("page", lambda page: self.watch(page, who))

    def watch(self, page: Any, who: str) -> None:
        page.on("pageerror", lambda exc: self.problems.append(f"{who}: script error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(
            f"{who}: console error: {msg.text} ({msg.location.get('url')}) on {page.url}"))
        page.on("response", lambda resp: resp.status >= 400 and self.problems.append(
            f"{who}: HTTP {resp.status} for {resp.url}"))
        # A page that navigates (reload, goto) cancels its own requests still in flight: those
        # ERR_ABORTED are the browser's doing, not a failure. Every other failed request is.
        # The old document may still start requests (a timer, a poll) after the navigation
        # request, until the new one commits: a request that fails meanwhile is one of them.
        in_flight: set[Any] = set()
        orphaned: set[Any] = set()
        navigating = [False]

        def on_request(req: Any) -> None:
            if req.is_navigation_request() and req.frame == page.main_frame:
                orphaned.update(in_flight)
                in_flight.clear()
                navigating[0] = True
            else:
                in_flight.add(req)

        def on_committed(frame: Any) -> None:
            if frame == page.main_frame:
                orphaned.update(in_flight)
                in_flight.clear()
                navigating[0] = False

        def on_failed(req: Any) -> None:
            in_flight.discard(req)
            if "ERR_ABORTED" in (req.failure or "") and (req in orphaned or navigating[0]):
                orphaned.discard(req)
                return
            self.problems.append(f"{who}: request failed: {req.url} {req.failure}")

        def on_done(req: Any) -> None:
            in_flight.discard(req)
            orphaned.discard(req)

        page.on("request", on_request)
        page.on("framenavigated", on_committed)
        page.on("requestfinished", on_done)
        page.on("requestfailed", on_failed)

    def check(self, allow: str = "") -> None:
        left = [p for p in self.problems if not (allow and re.search(allow, p))]
        assert not left, "\n".join(left)


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


@pytest.fixture
def new_context(browser: Any, problems: PageProblems) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def make(who: str, **options: Any) -> Any:
        options.setdefault("viewport", PC)
        options.setdefault("locale", "zh-CN")
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        problems.watch_context(context, who)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest, artifacts: Path) -> Callable[[Any, str], Path]:
    """`shot(page, "visitor-window")` saves tests/artifacts/visitor-window-<db>.png."""
    param = request.node.callspec.id if hasattr(request.node, "callspec") else "nodb"

    def take(page: Any, name: str, **kw: Any) -> Path:
        path = artifacts / f"{name}-{param}.png"
        page.screenshot(path=str(path), **kw)
        return path

    return take


# ---- steps -------------------------------------------------------------------------------

def agent_login(page: Any, server: RunningServer,
                shot: Callable[..., Path] | None = None) -> None:
    """Sign in through the form and wait until the console's socket is online."""
    from playwright.sync_api import expect
    page.goto(f"{server.base_url}/admin/login/index")
    expect(page.locator("h1")).to_have_text("wolive 客服登录")
    if shot:
        shot(page, "login")
    page.get_by_label(re.compile("用户名")).fill(ADMIN_USER)
    page.get_by_label(re.compile("密码")).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name=re.compile("登录")).click()
    page.wait_for_url(f"{server.base_url}/admin/index/index")
    expect(page.locator("#me-name")).to_have_text(ADMIN_USER)
    # Visitors are only assigned to agents whose console socket is connected.
    expect(page.locator("#me-state")).to_have_text(re.compile("在线"))
    expect(page.locator("#me-dot")).to_have_class(re.compile(r"\bon\b"))


def wait_assigned(page: Any) -> None:
    """The visitor window has an agent: its name in the header, the input enabled."""
    from playwright.sync_api import expect
    expect(page.locator("#agent-name")).to_have_text(ADMIN_USER)
    expect(page.locator("#agent-state")).to_have_text(re.compile("在线"))
    expect(page.locator("#input")).to_be_enabled()
    expect(page.locator("#send")).to_be_enabled()


def fills_window(page: Any, size: dict[str, int]) -> None:
    """Nothing sticks out sideways; the composer sits at the bottom, one line high."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], f"page is {width}px wide in a {size['width']}px window"
    composer = page.locator("#composer").bounding_box()
    assert composer, "no composer"
    assert abs(composer["y"] + composer["height"] - size["height"]) <= 1, \
        f"composer is not at the bottom of the window: {composer}, window {size}"
    assert composer["height"] < 90, f"composer is {composer['height']}px high"
    send = page.locator("#send").bounding_box()
    assert send and send["x"] + send["width"] <= size["width"] + 0.5, send


def chats(server: RunningServer) -> list[dict[str, Any]]:
    return db_rows(server.db_url, "SELECT cid, visiter_id, service_id, business_id, content, "
                   "direction FROM wolive_chats ORDER BY cid")


def wait_rows(server: RunningServer, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows = chats(server)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = chats(server)
    return rows


# ---- tests -------------------------------------------------------------------------------

def test_visitor_and_agent_chat_in_the_browser(
        running_server: RunningServer, new_context: Callable[..., Any],
        problems: PageProblems, shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    server = running_server
    assert server.demo_url, "the demo site is not running"

    # The agent signs in and waits in the console.
    agent = new_context("agent").new_page()
    agent_login(agent, server, shot)
    expect(agent.locator("#convs .empty")).to_be_visible()
    fills_window(agent, PC)
    shot(agent, "agent-console-empty")

    # A visitor on the site owner's page (another origin) sees the floating button.
    visitor_ctx = new_context("visitor")
    demo = visitor_ctx.new_page()
    # (WoLive's popup window, `mode='popup'`: the in-page panel is tests/test_ui_widget.py's.)
    demo.goto(f"{server.demo_url}/?business_id={BUSINESS}&mode=popup")
    button = demo.locator(".kefu_box")
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box and box["width"] >= 48 and box["height"] >= 48, box
    assert box["x"] + box["width"] <= PC["width"] and box["y"] + box["height"] <= PC["height"]
    shot(demo, "demo-page")

    # On a PC the button opens the chat in a popup window.
    with demo.expect_popup() as popup_info:
        button.click()
    chat = popup_info.value
    chat.set_viewport_size(POPUP)
    chat.wait_for_load_state()
    assert chat.url.startswith(f"{server.base_url}/index/index/home?"), chat.url
    assert f"business_id={BUSINESS}" in chat.url
    assert demo.url.startswith(server.demo_url), "the host page must stay where it was"
    wait_assigned(chat)
    visiter_id = chat.evaluate("window.woliveVisitor.boot.visiter_id")
    assert re.fullmatch(r"v[0-9a-f]{24}", visiter_id), visiter_id

    # Shift+Enter is a new line, not a send; the box grows with the text.
    box_input = chat.locator("#input")
    one_line = box_input.bounding_box()["height"]
    box_input.press_sequentially("第一行")
    box_input.press("Shift+Enter")
    box_input.press_sequentially("第二行")
    expect(box_input).to_have_value("第一行\n第二行")
    assert box_input.bounding_box()["height"] > one_line
    expect(chat.locator(".msg:not(.system)")).to_have_count(0)

    # The visitor writes (Chinese and emoji) and presses Enter.
    box_input.fill(VISITOR_TEXT)
    box_input.press("Enter")
    expect(chat.locator(".msg.mine .bubble")).to_have_text(VISITOR_TEXT)
    expect(box_input).to_have_value("")
    assert box_input.bounding_box()["height"] == one_line, "the box shrinks back once sent"

    # The conversation appears in the agent's list; the agent opens it and sees the message.
    conv = agent.locator(f"button.conv[data-visiter='{visiter_id}']")
    expect(conv).to_be_visible()
    expect(conv.locator(".last")).to_have_text(VISITOR_TEXT)
    conv.click()
    expect(conv).to_have_class(re.compile(r"\bactive\b"))
    expect(agent.locator("#pane-head")).to_contain_text(re.compile("在线"))
    expect(agent.locator("#messages .msg.theirs .bubble")).to_have_text(VISITOR_TEXT)

    # The agent answers; the visitor sees it.
    expect(agent.locator("#input")).to_be_enabled()
    agent.locator("#input").fill(AGENT_TEXT)
    agent.locator("#input").press("Enter")
    expect(agent.locator("#messages .msg.mine .bubble")).to_have_text(AGENT_TEXT)
    expect(agent.locator("#input")).to_have_value("")
    expect(chat.locator(".msg.theirs .bubble")).to_have_text(AGENT_TEXT)
    # Each message shows once, in order, on both sides.
    expect(chat.locator(".msg:not(.system) .bubble")).to_have_text([VISITOR_TEXT, AGENT_TEXT])
    expect(agent.locator("#messages .msg .bubble")).to_have_text([VISITOR_TEXT, AGENT_TEXT])
    expect(conv.locator(".last")).to_have_text(AGENT_TEXT)

    # Both rows are stored, byte for byte (utf8mb4 on MariaDB: the emoji survive).
    rows = wait_rows(server, 2)
    service_id = agent.evaluate("window.woliveConsole.boot.service_id")
    assert [(r["visiter_id"], r["service_id"], r["business_id"], r["content"], r["direction"])
            for r in rows] == [
        (visiter_id, service_id, BUSINESS, VISITOR_TEXT, "to_service"),
        (visiter_id, service_id, BUSINESS, AGENT_TEXT, "to_visiter"),
    ]

    fills_window(chat, POPUP)
    fills_window(agent, PC)
    expect(conv.locator(".meta")).to_be_in_viewport(ratio=1)
    shot(chat, "visitor-window")
    shot(agent, "agent-console")
    problems.check()


def test_phone_visitor_and_agent(running_server: RunningServer,
                                  new_context: Callable[..., Any], problems: PageProblems,
                                  shot: Callable[..., Path]) -> None:
    """On a phone the button opens the chat in the same tab, and both sides fit 360 px."""
    from playwright.sync_api import expect
    server = running_server
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
    agent = new_context("agent", **phone).new_page()
    agent_login(agent, server)

    phone_ctx = new_context("phone", **phone)
    page = phone_ctx.new_page()
    page.goto(f"{server.demo_url}/?business_id={BUSINESS}&mode=popup")
    page.locator(".kefu_box").tap()
    page.wait_for_url(re.compile(re.escape(server.base_url) + r"/index/index/home\?"))
    assert len(phone_ctx.pages) == 1, "a phone must not get a popup"
    wait_assigned(page)

    page.locator("#input").fill(VISITOR_TEXT)
    page.locator("#send").tap()
    expect(page.locator(".msg.mine .bubble")).to_have_text(VISITOR_TEXT)
    visiter_id = page.evaluate("window.woliveVisitor.boot.visiter_id")

    # The agent's phone shows the list, then the conversation alone, then the list again.
    conv = agent.locator(f"button.conv[data-visiter='{visiter_id}']")
    expect(agent.locator("#composer")).to_be_hidden()
    conv.tap()
    expect(agent.locator(".convlist")).to_be_hidden()
    expect(agent.locator("#messages .msg.theirs .bubble")).to_have_text(VISITOR_TEXT)
    agent.locator("#input").fill(AGENT_TEXT)
    agent.locator("#send").tap()
    expect(agent.locator("#messages .msg.mine .bubble")).to_have_text(AGENT_TEXT)
    expect(page.locator(".msg.theirs .bubble")).to_have_text(AGENT_TEXT)

    fills_window(page, PHONE)
    fills_window(agent, PHONE)
    rows = wait_rows(server, 2)
    assert [r["direction"] for r in rows] == ["to_service", "to_visiter"]
    shot(page, "visitor-phone")
    shot(agent, "agent-phone")

    agent.locator("#back").tap()
    expect(conv).to_be_visible()
    expect(agent.locator("#composer")).to_be_hidden()
    problems.check()


def test_visitor_when_nobody_is_online(running_server: RunningServer,
                                       new_context: Callable[..., Any],
                                       problems: PageProblems,
                                       shot: Callable[..., Path]) -> None:
    """No agent signed in: the window says so and does not let the visitor type."""
    from playwright.sync_api import expect
    server = running_server
    page = new_context("visitor", viewport=POPUP).new_page()
    page.goto(f"{server.base_url}/index/index/home?business_id={BUSINESS}&visiter_id=v42")
    expect(page.locator(".msg.system .bubble")).to_contain_text("客服暂时不在线")
    expect(page.locator("#agent-state")).to_contain_text("不在线")
    expect(page.locator("#input")).to_be_disabled()
    expect(page.locator("#send")).to_be_disabled()
    fills_window(page, POPUP)
    shot(page, "visitor-nobody-online")
    assert chats(server) == []
    problems.check()


def test_first_run_install_page(tmp_path: Path, db_url: str, new_context: Callable[..., Any],
                                problems: PageProblems, shot: Callable[..., Path]) -> None:
    """A fresh server sends everyone to the installer; installing signs you in."""
    from playwright.sync_api import expect
    server = start_server(tmp_path, db_url, create_admin=False)
    try:
        page = new_context("installer").new_page()
        page.goto(server.base_url + "/")
        page.wait_for_url(server.base_url + "/install")
        expect(page.locator("h1")).to_have_text("欢迎使用 wolive")
        shot(page, "install")

        page.get_by_label(re.compile("商户 ID")).fill(BUSINESS)
        page.get_by_label(re.compile("用户名")).fill(ADMIN_USER)
        page.get_by_label(re.compile("昵称")).fill("店长")
        page.get_by_label(re.compile("^密码")).fill(ADMIN_PASSWORD)
        page.get_by_label(re.compile("确认密码")).fill(ADMIN_PASSWORD + "x")
        page.get_by_role("button", name=re.compile("安装")).click()
        expect(page.locator(".error")).to_contain_text("两次密码不一致")
        shot(page, "install-error")

        page.get_by_label(re.compile("^密码")).fill(ADMIN_PASSWORD)
        page.get_by_label(re.compile("确认密码")).fill(ADMIN_PASSWORD)
        page.get_by_role("button", name=re.compile("安装")).click()
        page.wait_for_url(server.base_url + "/admin/index/index")
        expect(page.locator("#me-name")).to_have_text("店长")
        rows = db_rows(db_url, "SELECT user_name, nick_name, business_id, level "
                       "FROM wolive_service")
        assert rows == [{"user_name": ADMIN_USER, "nick_name": "店长", "business_id": BUSINESS,
                         "level": "super_manager"}]
    finally:
        code = stop_server(server)
    assert code == 0, server.logs()
    assert "Traceback" not in server.logs(), server.logs()
    # The form with differing passwords answers 400 (and Chromium logs it): expected.
    problems.check(allow=r"(HTTP 400 for|status of 400 .*\() ?" + re.escape(
        server.base_url + "/install"))


def test_page_problems_tells_a_failure_from_a_reload(
        new_context: Callable[..., Any], problems: PageProblems) -> None:
    """The watcher every browser test relies on: a request the page's own reload cancelled is
    not a problem; a request that failed, or was aborted with no navigation, is."""
    page = new_context("site").new_page()
    page.route("http://wolive.test/", lambda route: route.fulfill(
        content_type="text/html", body="<!doctype html><title>t</title>"))
    page.route("**/hang", lambda route: None)          # never answered while the page lives
    page.route("**/broken", lambda route: route.abort("failed"))
    page.route("**/cancelled", lambda route: route.abort("aborted"))

    page.goto("http://wolive.test/")
    page.evaluate("fetch('/hang').catch(() => {}); 0")
    page.wait_for_timeout(200)
    page.reload()
    page.wait_for_timeout(200)
    problems.check()                                    # the reload's own doing: nothing

    page.evaluate("fetch('/broken').catch(() => {}); fetch('/cancelled').catch(() => {}); 0")
    page.wait_for_timeout(500)
    failed = sorted(p for p in problems.problems if "request failed" in p)
    assert failed == ["site: request failed: http://wolive.test/broken net::ERR_FAILED",
                      "site: request failed: http://wolive.test/cancelled net::ERR_ABORTED"], \
        problems.problems
    problems.problems.clear()
