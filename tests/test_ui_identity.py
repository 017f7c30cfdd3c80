"""Visitor identity in two browsers (issue 10, item 3), Debian's Chromium against
`python wolive.py`: browser B, knowing browser A's `visiter_id`, can neither read nor
subscribe to A's conversation; a host-signed id (`visiter_sign`) reattaches across browsers;
an unsigned one does not. Through the chat window directly and through the real snippet on a
host page of another site (the in-page panel, where the window's cookie is not sent: the
site's localStorage keeps the token).

SQLite only (the API tests run both databases: tests/test_identity.py).
Screenshots: tests/artifacts/identity-*.png.
"""
from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import test_e2e_browser as e2e
from conftest import BUSINESS, RunningServer, start_server, stop_server
from test_e2e_browser import POPUP, PageProblems, agent_login
from test_ui_visitor import api, visitor_url, wait_agent
from test_ui_widget import HOST_PAGE, StrictHost, panel_frame

browser, new_context, problems, shot = e2e.browser, e2e.new_context, e2e.problems, e2e.shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
AGENT_PAGES = r"^agent: "
#: The refusals these tests ask for on purpose (B reading A's history; a wrong signature).
REFUSALS = (AGENT_PAGES + r"|^visitor-b: (HTTP 403 for \S*/admin/event/history\?visiter_id="
            r"member-[15]&|HTTP 403 for \S*visiter_sign=|HTTP 403 for \S*visiter_id=member-7$"
            r"|console error: Failed to load resource"
            r": the server responded with a status of 403)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(tmp_path, f"sqlite:///{tmp_path}/data/wolive.db")
    yield srv
    code = stop_server(srv)
    assert code == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


def boot(frame: Any) -> dict[str, Any]:
    return dict(frame.locator("body").evaluate("() => window.woliveVisitor.boot"))


def history_status(frame: Any, visiter_id: str, channel: str) -> int:
    """What `/admin/event/history` answers this browser for `visiter_id` with `channel`."""
    return int(frame.locator("body").evaluate(
        """(el, [v, b, c]) => fetch('/admin/event/history?' + new URLSearchParams(
            {visiter_id: v, business_id: b, channel: c})).then(r => r.status)""",
        [visiter_id, BUSINESS, channel]))


def send(chat: Any, text: str) -> None:
    from playwright.sync_api import expect
    chat.locator("#input").fill(text)
    chat.locator("#input").press("Enter")
    expect(chat.locator(".msg.mine .bubble").last).to_have_text(text)


def agent_reply(agent: Any, server: RunningServer, visiter_id: str, text: str) -> None:
    api(agent, server, "POST", "/admin/set/chats", visiter_id=visiter_id, content=text)


def signer(agent: Any, server: RunningServer) -> Callable[[str], str]:
    secret = api(agent, server, "GET", "/admin/manager/identity")["data"]["secret"]
    return lambda vid: hmac.new(secret.encode(), vid.encode(), hashlib.sha256).hexdigest()


def b_hears_only_its_own(agent: Any, server: RunningServer, a_chat: Any, b_chat: Any,
                         a_id: str, b_id: str) -> None:
    """The agent answers A, then B: B shows its own answer and never A's (which, pushed
    first, would have arrived before it)."""
    from playwright.sync_api import expect
    agent_reply(agent, server, a_id, "只给 A 的回复")
    expect(a_chat.locator(".msg.theirs .bubble").last).to_have_text("只给 A 的回复")
    agent_reply(agent, server, b_id, "给 B 的回复")
    expect(b_chat.locator(".msg.theirs .bubble").last).to_have_text("给 B 的回复")
    expect(b_chat.locator("#messages")).not_to_contain_text("只给 A 的回复")


def test_chat_window_two_browsers(server: RunningServer, new_context: Callable[..., Any],
                                  problems: PageProblems, shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="auto")

    # A: a site's user id, unsigned. A writes about its order.
    a = new_context("visitor-a", viewport=POPUP).new_page()
    a.goto(visitor_url(server, "member-1", visiter_name="Alice"))
    wait_agent(a)
    send(a, "我的订单号是 A-1001")
    a_boot = boot(a)
    assert a_boot["visiter_id"] == "member-1"

    # B knows the id: it gets a conversation of its own, empty, with its own channel.
    b = new_context("visitor-b", viewport=POPUP).new_page()
    b.goto(visitor_url(server, "member-1", visiter_name="Alice"))
    wait_agent(b)
    b_boot = boot(b)
    assert b_boot["visiter_id"].startswith("member-1:") and b_boot["channel"] != a_boot["channel"]
    expect(b.locator("#messages")).not_to_contain_text("A-1001")
    assert history_status(b, "member-1", b_boot["channel"]) == 403
    b_hears_only_its_own(agent, server, a, b, "member-1", b_boot["visiter_id"])
    shot(b, "identity-unsigned-other-browser")
    # The agent has two conversations, told apart: B's name carries its id's end.
    agent.goto(f"{server.base_url}/admin/index/index")
    b_name = "Alice #" + b_boot["visiter_id"][-4:]
    assert b_boot["visiter_name"] == b_name
    expect(agent.locator("button.conv[data-visiter='member-1']")).to_contain_text("Alice")
    expect(agent.locator(f"button.conv[data-visiter='{b_boot['visiter_id']}']")
           ).to_contain_text(b_name)
    agent.locator(f"button.conv[data-visiter='{b_boot['visiter_id']}']").click()
    shot(agent, "identity-agent-two-visitors")
    # A, back again, is still in its conversation (its cookie).
    a.reload()
    wait_agent(a)
    expect(a.locator("#messages")).to_contain_text("A-1001")
    assert boot(a)["channel"] == a_boot["channel"]

    # A signed id is the same visitor in both browsers.
    sign = signer(agent, server)
    a.goto(visitor_url(server, "member-2", visiter_name="Bob", visiter_sign=sign("member-2")))
    wait_agent(a)
    send(a, "签名用户在电脑上写的")
    b.goto(visitor_url(server, "member-2", visiter_name="Bob", visiter_sign=sign("member-2")))
    wait_agent(b)
    assert boot(b)["visiter_id"] == "member-2"
    expect(b.locator("#messages")).to_contain_text("签名用户在电脑上写的")
    shot(b, "identity-signed-other-browser")
    # A wrong signature: refused with a page that says why.
    b.goto(visitor_url(server, "member-2", visiter_sign=sign("member-3")))
    expect(b.locator("body")).to_contain_text("visiter_sign")
    shot(b, "identity-wrong-signature")
    problems.check(allow=REFUSALS)


def test_widget_two_browsers(server: RunningServer, new_context: Callable[..., Any],
                             problems: PageProblems, shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="auto")

    def page_with(vid: str, extra: str = "") -> str:
        return (HOST_PAGE % {"base": server.base_url, "business": BUSINESS, "extra": extra}
                ).replace("visiter_id=''", f"visiter_id='{vid}'")

    host = StrictHost(server.base_url, {"/": page_with("member-5")})
    hosts = [host]
    try:
        def open_panel(page: Any, path: str, site: StrictHost = host) -> Any:
            page.goto(site.url + path)
            page.locator(".kefu_box").click()
            chat = panel_frame(page)
            wait_agent(chat)
            return chat

        # Each page view in a tab of its own (a navigation would cancel the panel's reads).
        ctx_a, ctx_b = new_context("visitor-a"), new_context("visitor-b")
        a = ctx_a.new_page()
        a_chat = open_panel(a, "/")
        send(a_chat, "面板里 A 的订单 A-2002")
        assert boot(a_chat)["visiter_id"] == "member-5"
        b = ctx_b.new_page()
        b_chat = open_panel(b, "/")
        b_boot = boot(b_chat)
        assert b_boot["visiter_id"].startswith("member-5:")
        expect(b_chat.locator("#messages")).not_to_contain_text("A-2002")
        assert history_status(b_chat, "member-5", b_boot["channel"]) == 403
        b_hears_only_its_own(agent, server, a_chat, b_chat, "member-5", b_boot["visiter_id"])
        shot(b, "identity-widget-unsigned-other-browser")

        # A's next page view: the frame gets no cookie (another site, plain http); the
        # token kept in the site's storage proves A, and the fragment left the URL.
        a = ctx_a.new_page()
        a_chat = open_panel(a, "/")
        expect(a_chat.locator("#messages")).to_contain_text("A-2002")
        assert boot(a_chat)["visiter_id"] == "member-5"
        frame_url = a.locator("#wolive-kefu-panel iframe").element_handle().content_frame().url
        assert "vt=" not in frame_url and "#" not in frame_url, frame_url

        # Signed on the site: the same visitor in both browsers.
        sign = signer(agent, server)
        signed = StrictHost(server.base_url, {
            "/signed": page_with("member-6", f" visiter_sign='{sign('member-6')}'")})
        hosts.append(signed)
        a_chat = open_panel(ctx_a.new_page(), "/signed", signed)
        send(a_chat, "签名的网站用户 A-3003")
        b = ctx_b.new_page()
        b_chat = open_panel(b, "/signed", signed)
        assert boot(b_chat)["visiter_id"] == "member-6"
        expect(b_chat.locator("#messages")).to_contain_text("A-3003")
        shot(b, "identity-widget-signed-other-browser")
        problems.check(allow=REFUSALS)
    finally:
        for site in hosts:
            site.close()


def test_embed_page_identity_secret_and_switch(server: RunningServer,
                                               new_context: Callable[..., Any],
                                               problems: PageProblems,
                                               shot: Callable[..., Path]) -> None:
    """The manager's side: the secret with signing examples, a new secret, the switch."""
    from playwright.sync_api import expect
    page = new_context("manager").new_page()  # its problems are checked (not "agent")
    agent_login(page, server)
    page.goto(f"{server.base_url}/admin/page/embed")
    section = page.locator("#identity")
    expect(section).to_be_visible()
    secret = api(page, server, "GET", "/admin/manager/identity")["data"]["secret"]
    expect(page.locator("#id-secret")).to_have_text(secret)
    for lang in ("hash_hmac('sha256', $visiter_id, '", "hashlib.sha256).hexdigest()",
                 "createHmac('sha256', '"):
        expect(page.locator("#id-examples")).to_contain_text(lang)
    expect(section).to_contain_text("签过名的 ID 在任何浏览器里都是同一位访客")
    # Require signed ids: saved, and an unsigned id is refused from then on.
    page.locator("#id-require").check()
    expect(page.locator("#id-status")).to_have_text("已保存")
    assert api(page, server, "GET", "/admin/manager/identity")["data"]["require_signed"]
    shot(page, "identity-embed-page")
    visitor = new_context("visitor-b", viewport=POPUP).new_page()
    visitor.goto(visitor_url(server, "member-7"))
    expect(visitor.locator("body")).to_contain_text("该网站要求访客身份签名")
    # A new secret (after a confirmation), shown at once.
    page.once("dialog", lambda d: d.accept())
    page.locator("#id-regen").click()
    expect(page.locator("#id-status")).to_have_text("已生成新密钥")
    expect(page.locator("#id-secret")).not_to_have_text(secret)
    page.locator("#lang-switch").click()
    expect(section.locator("h2")).to_have_text("Visitor identity")
    expect(page.locator("#id-regen")).to_have_text("Regenerate secret")
    shot(page, "identity-embed-page-en")
    problems.check(allow=REFUSALS)
