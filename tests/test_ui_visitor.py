"""The visitor window (templates/chat.html, static/assets/js/visitor.js) and the floating button
(static/assets/index/kefu_online.js) in Debian's Chromium, against `python wolive.py`.

Flows: nobody online → leave a message → the agent finds it on the message board; PC popup
with FAQ (script inert), emoji, image and file upload, the agent's reply, typing, read ticks,
sound, the zh/en switch and a reconnect that fetches missed messages once; phone full page
with a way back; the queue; the floating button on hostile host pages.

SQLite only: the database does not matter here (test_e2e_browser.py covers MariaDB).
Screenshots: tests/artifacts/visitor-*.png.
"""
from __future__ import annotations

import http.server
import re
import struct
import threading
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import BUSINESS, RunningServer, start_server, stop_server
from helpers import db_rows
import test_e2e_browser as e2e
from test_e2e_browser import PHONE, POPUP, PageProblems, agent_login, fills_window

# The shared browser fixtures (Chromium, contexts watched for problems, screenshots).
browser, new_context, problems, shot = e2e.browser, e2e.new_context, e2e.problems, e2e.shot

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

#: The console's own pages are the workbench tests' business; here only the visitor's side,
#: the host pages and the button must be spotless.
AGENT_PAGES = r"^agent: "


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The real server on SQLite (the `running_server` fixture without the MariaDB run)."""
    srv = start_server(tmp_path, f"sqlite:///{tmp_path}/data/wolive.db")
    yield srv
    code = stop_server(srv)
    assert code == 0, srv.logs()
    assert "Traceback" not in srv.logs(), srv.logs()


# ---- helpers -----------------------------------------------------------------------------

def api(page: Any, server: RunningServer, method: str, path: str,
        **params: Any) -> dict[str, Any]:
    """A console API call with the page's agent cookie (and its _xsrf on POST)."""
    url = server.base_url + path
    if method == "GET":
        resp = page.request.get(url, params=params)
    else:
        xsrf = next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")
        resp = page.request.post(url, form=params, headers={"X-XSRFToken": xsrf})
    body = resp.json()
    assert resp.status == 200 and body["code"] == 0, (path, resp.status, body)
    return body


def png(width: int = 48, height: int = 32) -> bytes:
    """A small striped orange PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + (bytes((249, 115, 22)) if y % 8 < 4 else bytes((254, 215, 170)))
                    * width for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def visitor_url(server: RunningServer, visiter_id: str, **extra: str) -> str:
    q = "&".join(f"{k}={v}" for k, v in extra.items())
    return (f"{server.base_url}/index/index/home?business_id={BUSINESS}&visiter_id={visiter_id}"
            + (("&" + q) if q else ""))


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or
                a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def wait_agent(page: Any, name: str = "boss") -> None:
    from playwright.sync_api import expect
    expect(page.locator("#agent-name")).to_have_text(name)
    expect(page.locator("#head")).not_to_have_class(re.compile(r"\boffline\b"))
    expect(page.locator("#input")).to_be_enabled()


class HostSite:
    """A site owner's web server on a free port, serving pages by path."""

    def __init__(self, pages: dict[str, str]) -> None:
        bodies = {k: v.encode() for k, v in pages.items()}

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = bodies.get(self.path.split("?")[0])
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- tests -------------------------------------------------------------------------------

def test_nobody_online_leave_a_message_and_the_agent_reads_it(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    page = new_context("visitor", viewport=POPUP).new_page()
    page.goto(visitor_url(server, "vleave1", visiter_name="王小明"))
    expect(page.locator("#agent-state")).to_have_text("客服不在线")
    expect(page.locator(".msg.system .bubble")).to_contain_text("客服暂时不在线")
    expect(page.locator("#input")).to_be_disabled()
    form = page.locator("#leave")
    expect(form).to_be_visible()
    expect(form.locator("input[name=name]")).to_have_value("王小明")
    fills_window(page, POPUP)
    shot(page, "visitor-nobody-online")

    # Without a phone or an email the form says so and sends nothing.
    form.locator("textarea[name=content]").fill("请问周末发货吗？<b>急</b>")
    form.get_by_role("button", name="提交留言").click()
    expect(form.locator(".error")).to_have_text("请填写电话或邮箱")
    form.locator("input[name=moblie]").fill("13800138000")
    form.get_by_role("button", name="提交留言").click()
    done = page.locator("#leave-done")
    expect(done).to_contain_text("留言成功")
    expect(done).to_contain_text("谢谢 王小明")
    expect(page.locator("#leave")).to_have_count(0)
    shot(page, "visitor-message-sent")

    # A browser in English gets the window in English.
    en = new_context("visitor-en", viewport=POPUP, locale="en-US").new_page()
    en.goto(visitor_url(server, "vleave2"))
    expect(en.locator("#agent-state")).to_have_text("Nobody online")
    expect(en.locator("#leave h2")).to_have_text("Leave a message")
    expect(en.locator("#send")).to_have_text("Send")

    # The agent signs in and finds it on the message board. The visitor who left a message
    # is not pulled back into a chat; the one still on the form is connected (issue 9).
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    wait_agent(en)
    expect(en.locator("#leave")).to_have_count(0)
    expect(page.locator("#agent-state")).to_have_text("客服不在线")
    expect(page.locator("#leave-done")).to_be_visible()
    assert db_rows(server.db_url, "SELECT service_id FROM wolive_queue WHERE visiter_id = %s",
                   ("vleave1",)) == []
    board = agent.goto(f"{server.base_url}/admin/page/messages")
    if board is not None and board.status == 200:
        card = agent.locator(".msg-card", has_text="请问周末发货吗？<b>急</b>")
        expect(card).to_be_visible()
        expect(card).to_contain_text("13800138000")
        expect(card).to_contain_text("王小明")
        shot(agent, "visitor-message-board")
    rows = api(agent, server, "GET", "/admin/set/messages")["data"]["rows"]
    assert [(r["name"], r["moblie"], r["content"]) for r in rows] == [
        ("王小明", "13800138000", "请问周末发货吗？<b>急</b>")]
    # The visitor who left a message may still ask for a chat: an agent is online now.
    page.locator("#chat-now").click()
    wait_agent(page)
    expect(page.locator("#input")).to_be_enabled()
    expect(page.locator("#leave-done")).to_be_visible()     # its thanks stay in the window
    problems.check(allow=AGENT_PAGES)


def test_pc_window_faq_emoji_uploads_language_and_reconnect(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path], tmp_path: Path) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="auto")
    api(agent, server, "POST", "/admin/manager/cmtalk", content="您好，我是店长，有什么可以帮您？")
    api(agent, server, "POST", "/admin/manager/addquestion", question="<i>运费</i>怎么算？",
        answer='<p>满 <b>99 元</b>包邮。</p><script>window.__pwned = 1</script>'
               '<img src="/nope.png" onerror="window.__pwned = 2">'
               '<img src="/assets/images/index/im.png" width="40">'
               '<a href="javascript:window.__pwned = 3">点我</a>'
               '<a href="https://example.com/ship">运费说明</a>')
    api(agent, server, "POST", "/admin/set/gettab", title="关于我们",
        content="<h3>示例商城</h3><p>营业时间 9:00–21:00</p>")

    # The floating button on the demo page opens a popup.
    demo = new_context("visitor").new_page()
    demo.goto(f"{server.demo_url}/?business_id={BUSINESS}&mode=popup")
    with demo.expect_popup() as info:
        demo.locator(".kefu_box").click()
    chat = info.value
    chat.set_viewport_size(POPUP)
    wait_agent(chat)
    # The greeting is the agent's first message (issue 9), not a system line.
    greeting = chat.locator(".msg.theirs .bubble").first
    expect(greeting).to_have_text("您好，我是店长，有什么可以帮您？")
    expect(chat.locator("#close-btn")).to_be_visible()   # a popup closes; no "back"
    expect(chat.locator("#back")).to_be_hidden()
    expect(chat.locator("#video-btn")).to_be_hidden()    # video_state is close

    # FAQ: the question as text, the answer's safe HTML, nothing of its script runs.
    expect(chat.locator("#views")).to_be_visible()
    chat.locator(".view-tab", has_text="常见问题").click()
    faq = chat.locator("#faq-view")
    expect(faq).to_be_visible()
    expect(chat.locator("#messages")).to_be_hidden()
    summary = faq.locator("summary")
    stored = api(agent, server, "GET", "/admin/event/questions", business_id=BUSINESS)["data"]
    expect(summary).to_have_text(stored[0]["question"])   # plain text, shown as text
    summary.click()
    expect(faq.locator(".rich b")).to_have_text("99 元")
    logo = faq.locator("img[src='/assets/images/index/im.png']")
    expect(logo).to_be_visible()
    assert logo.evaluate("i => i.naturalWidth") > 0
    expect(faq.get_by_role("link", name="运费说明")).to_have_attribute("target", "_blank")
    assert faq.locator("script, [onerror], img[src='/nope.png'], [href^=javascript]").count() == 0
    faq.get_by_text("点我").click()
    assert chat.evaluate("window.__pwned") is None
    shot(chat, "visitor-faq")
    chat.locator(".view-tab", has_text="关于我们").click()
    expect(chat.locator("#tab-view h3")).to_have_text("示例商城")
    chat.locator(".view-tab", has_text="对话").click()
    expect(chat.locator("#messages")).to_be_visible()

    # Emoji from the picker, then sent.
    chat.locator("#emoji-btn").click()
    expect(chat.locator("#emoji-pop")).to_be_visible()
    chat.locator("#emoji-pop .emo", has_text="👍").click()
    expect(chat.locator("#emoji-pop")).to_be_hidden()
    chat.locator("#input").press_sequentially(" 好的")
    expect(chat.locator("#input")).to_have_value("👍 好的")
    chat.locator("#input").press("Enter")
    expect(chat.locator(".msg.mine .bubble").last).to_have_text("👍 好的")

    # An image inline, a file as a download link.
    image = tmp_path / "photo.png"
    image.write_bytes(png())
    chat.locator("#image-file").set_input_files(str(image))
    img = chat.locator(".msg.mine .bubble.image img")
    expect(img).to_be_visible()
    assert re.fullmatch(r"/upload/[0-9a-f]{32}\.png", img.get_attribute("src") or "")
    chat.wait_for_function("document.querySelector('.bubble.image img').naturalWidth === 48")
    doc = tmp_path / "订单.txt"
    doc.write_text("order 42", encoding="utf-8")
    chat.locator("#file-file").set_input_files(str(doc))
    link = chat.locator(".msg.mine .bubble.file a")
    expect(link).to_have_text("订单.txt")
    assert re.fullmatch(r"/upload/[0-9a-f]{32}\.[a-z0-9]+", link.get_attribute("href") or "")
    assert link.get_attribute("download") is not None

    # The agent types and answers; the visitor sees both, and its messages get read ticks.
    visiter_id = chat.evaluate("window.woliveVisitor.boot.visiter_id")
    api(agent, server, "POST", "/admin/set/typing", visiter_id=visiter_id, typing="1")
    expect(chat.locator("#typing")).to_be_visible()
    expect(chat.locator("#typing")).to_contain_text("客服正在输入")
    api(agent, server, "POST", "/admin/set/chats", visiter_id=visiter_id,
        content="收到图片了 <script>alert(1)</script>")
    reply = "收到图片了 <script>alert(1)</script>"
    hello = "您好，我是店长，有什么可以帮您？"  # the greeting: the agent's first message
    expect(chat.locator(".msg.theirs .bubble")).to_have_text([hello, reply])
    expect(chat.locator("#typing")).to_be_hidden()
    api(agent, server, "POST", "/admin/set/getwatch", visiter_id=visiter_id)
    expect(chat.locator(".msg.mine.read")).to_have_count(3)

    # Sound: off, and still off after a reload.
    sound = chat.locator("#sound-btn")
    expect(sound).to_have_attribute("aria-pressed", "true")
    sound.click()
    expect(sound).to_have_attribute("aria-pressed", "false")
    fills_window(chat, POPUP)
    shot(chat, "visitor-window")

    # Reconnect: what the agent sent meanwhile shows once, in order.
    chat.evaluate("window.woliveVisitor.pusher.disconnect()")
    expect(chat.locator("#conn")).to_be_visible()
    for text in ("第一条 1", "第二条 2", "第三条 3"):
        api(agent, server, "POST", "/admin/set/chats", visiter_id=visiter_id, content=text)
    expect(chat.locator(".msg.theirs")).to_have_count(2)
    chat.evaluate("window.woliveVisitor.pusher.connect()")
    expect(chat.locator("#conn")).to_be_hidden()
    theirs = [hello, "收到图片了 <script>alert(1)</script>", "第一条 1", "第二条 2", "第三条 3"]
    expect(chat.locator(".msg.theirs .bubble")).to_have_text(theirs)
    chat.evaluate("window.woliveVisitor.fetchMissed()")   # asking again adds nothing
    chat.wait_for_timeout(300)
    expect(chat.locator(".msg.theirs .bubble")).to_have_text(theirs)
    cids = chat.eval_on_selector_all(".msg[data-cid]", "rs => rs.map(r => +r.dataset.cid)")
    assert cids == sorted(set(cids)) and len(cids) == 8, cids

    # English, by the switch; every string of the window follows, and the choice is kept.
    chat.locator("#lang-btn").click()
    expect(chat.locator("#send")).to_have_text("Send")
    expect(chat.locator("#agent-state")).to_have_text("Online")
    expect(chat.locator("#input")).to_have_attribute("placeholder", "Message…")
    expect(chat.locator(".view-tab", has_text="FAQ")).to_be_visible()
    expect(chat.locator("#lang-btn")).to_have_text("中文")
    assert chat.evaluate("document.documentElement.lang") == "en"
    shot(chat, "visitor-english")
    chat.reload()
    wait_agent(chat)
    expect(chat.locator("#send")).to_have_text("Send")
    expect(chat.locator("#sound-btn")).to_have_attribute("aria-pressed", "false")
    expect(chat.locator(".msg:not(.system) .bubble")).to_have_count(8)  # history, once each
    chat.locator("#lang-btn").click()
    expect(chat.locator("#send")).to_have_text("发送")
    expect(chat.locator("#agent-state")).to_have_text("在线")

    # The agent leaves: the header greys.
    agent.close()
    expect(chat.locator("#head")).to_have_class(re.compile(r"\boffline\b"), timeout=15_000)
    expect(chat.locator("#agent-state")).to_have_text("已离线，可留言")
    problems.check(allow=AGENT_PAGES)


def test_phone_full_page_with_a_way_back(server: RunningServer,
                                         new_context: Callable[..., Any],
                                         problems: PageProblems,
                                         shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="auto")
    phone = new_context("phone", viewport=PHONE, is_mobile=True, has_touch=True,
                        device_scale_factor=2)
    page = phone.new_page()
    demo = f"{server.demo_url}/?business_id={BUSINESS}&mode=popup"
    page.goto(demo)
    button = page.locator(".kefu_box")
    box = button.bounding_box()
    assert box and box["x"] + box["width"] <= PHONE["width"] - 8, box
    assert box["y"] + box["height"] <= PHONE["height"] - 8, box
    button.tap()
    page.wait_for_url(re.compile(re.escape(server.base_url) + r"/index/index/home\?"))
    assert len(phone.pages) == 1, "a phone opens the chat as the page, not a popup"
    wait_agent(page)
    expect(page.locator("#back")).to_be_visible()
    expect(page.locator("#close-btn")).to_be_hidden()

    # One hand: 16 px inputs (no zoom on focus), tap targets of 38 px and more.
    assert page.locator("#input").evaluate("e => getComputedStyle(e).fontSize") == "16px"
    for sel in ("#emoji-btn", "#image-btn", "#file-btn", "#send", "#back", "#sound-btn",
                "#lang-btn"):
        b = page.locator(sel).bounding_box()
        assert b and b["width"] >= 38 and b["height"] >= 30, (sel, b)
    page.locator("#input").fill("手机上发的消息")
    page.locator("#send").tap()
    expect(page.locator(".msg.mine .bubble")).to_have_text("手机上发的消息")
    page.locator("#emoji-btn").tap()
    pop = page.locator("#emoji-pop").bounding_box()
    assert pop and pop["x"] >= 0 and pop["x"] + pop["width"] <= PHONE["width"], pop
    page.locator("#emoji-btn").tap()
    fills_window(page, PHONE)
    shot(page, "visitor-phone")

    page.locator("#back").tap()
    page.wait_for_url(demo)
    expect(page.locator(".kefu_box")).to_be_visible()
    problems.check(allow=AGENT_PAGES)


def test_queue_position_then_claimed(server: RunningServer, new_context: Callable[..., Any],
                                     problems: PageProblems,
                                     shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    agent = new_context("agent").new_page()
    agent_login(agent, server)
    api(agent, server, "POST", "/admin/manager/switches", distribution_rule="claim")
    first = new_context("v1", viewport=POPUP).new_page()
    first.goto(visitor_url(server, "vqueue1"))
    expect(first.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    second = new_context("v2", viewport=POPUP).new_page()
    second.goto(visitor_url(server, "vqueue2"))
    expect(second.locator("#queue")).to_have_text("正在排队，您前面还有 1 人，请稍候…")
    expect(second.locator("#agent-state")).to_have_text("排队中")
    # A waiting visitor may already write; every agent of the business sees it.
    expect(second.locator("#input")).to_be_enabled()
    second.locator("#input").fill("我在排队")
    second.locator("#input").press("Enter")
    expect(second.locator(".msg.mine .bubble")).to_have_text("我在排队")
    fills_window(second, POPUP)
    shot(second, "visitor-queue")

    # The agent claims the first; the second moves up at once (`queue` on its channel).
    api(agent, server, "POST", "/admin/set/get", visiter_id="vqueue1")
    expect(first.locator("#queue")).to_be_hidden()
    wait_agent(first)
    expect(first.locator(".msg.system .bubble")).to_have_text(["boss 为您服务"])
    expect(second.locator("#queue")).to_have_text("马上就轮到您了，请稍候…")
    second.locator("#lang-btn").click()
    expect(second.locator("#queue")).to_have_text("You are next. Please wait…")
    api(agent, server, "POST", "/admin/set/get", visiter_id="vqueue2")
    wait_agent(second)
    expect(second.locator("#queue")).to_be_hidden()
    expect(second.locator(".msg.system .bubble")).to_have_text(["boss is here to help"])
    problems.check(allow=AGENT_PAGES)


HOSTILE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>host</title>
<link rel="icon" href="data:,">
<style>
 * { box-sizing: content-box !important; }
 div { display: none !important; width: 900px !important; height: 900px !important;
       background: red !important; position: static !important; }
 button { width: 300px !important; height: 200px !important; background: yellow !important; }
 body { margin: 0; font: 16px sans-serif; }
 nav { position: absolute; right: 0; top: 0; width: 220px; }
 nav a { display: block; padding: 14px 16px; border-bottom: 1px solid #ddd; }
 main { margin-right: 240px; padding: 16px; }
 .corner { position: fixed; left: 8px; bottom: 8px; }
</style></head><body>
<main><h1>Host page</h1><button class="own" type="button">own button</button>
<p>Some text.</p></main>
<nav>%(links)s</nav>
<a class="corner" href="#corner" id="corner">corner link</a>
<a href='%(base)s' visiter_id='' visiter_name='' avatar='' business_id='%(business)s'
   id='workerman-kefu'></a>
<script src='%(base)s/assets/index/kefu_online.js'></script>
<script src='%(base)s/assets/index/kefu_online.js'></script>
</body></html>"""

NO_ANCHOR = """<!doctype html><html><head><meta charset="utf-8"><title>bare</title>
<link rel="icon" href="data:,"></head>
<body><p>No anchor here.</p><script src='%(base)s/assets/index/kefu_online.js'></script>
</body></html>"""


def test_floating_button_never_covers_or_breaks_the_host_page(
        server: RunningServer, new_context: Callable[..., Any], problems: PageProblems,
        shot: Callable[..., Path]) -> None:
    from playwright.sync_api import expect
    links = "".join(f'<a href="#l{i}" id="l{i}">link {i}</a>' for i in range(40))
    site = HostSite({
        "/": HOSTILE % {"links": links, "base": server.base_url, "business": BUSINESS},
        "/bare": NO_ANCHOR % {"base": server.base_url}})
    try:
        ctx = new_context("host")
        page = ctx.new_page()
        page.goto(site.url + "/")
        button = page.locator(".kefu_box")
        expect(button).to_be_visible()
        # Included twice: one button. The page's CSS does not reach it, nor it the page.
        assert page.locator("#wolive-kefu").count() == 1
        box = button.bounding_box()
        host = page.locator("#wolive-kefu").bounding_box()
        assert box and host and box["width"] == 60 and box["height"] == 60, box
        assert host == box, (host, box)
        own = page.locator("button.own").evaluate(
            "b => [getComputedStyle(b).width, getComputedStyle(b).backgroundColor]")
        assert own == ["300px", "rgb(255, 255, 0)"], own   # the page's own rules still apply
        assert page.evaluate("document.querySelectorAll('style, link[rel=stylesheet]').length") == 1
        # Nothing but the 60x60 box takes clicks: just outside it is the page.
        outside = page.evaluate("""([x, y]) => {
            const e = document.elementFromPoint(x, y); return e && e.id; }""",
                                [box["x"] - 3, box["y"] + 30])
        assert outside != "wolive-kefu", outside
        # Every link of the page can be clicked (Playwright checks it gets the click).
        for i in range(40):
            page.locator(f"#l{i}").click(trial=True, timeout=3000)
        page.locator("#corner").click()
        assert page.url.endswith("#corner")
        shot(page, "visitor-host-page")

        # Keyboard: Tab reaches the button and Enter opens the chat (the in-page panel; the
        # page's `div {display: none !important}` and `iframe` rules do not reach it).
        button.focus()
        assert page.evaluate("document.activeElement.id") == "wolive-kefu"
        page.keyboard.press("Enter")
        expect(button).to_have_attribute("aria-expanded", "true")
        chat = page.frame_locator("#wolive-kefu-panel iframe")
        expect(chat.locator("#close-btn")).to_be_visible()
        panel = page.locator("#wolive-kefu-panel").bounding_box()
        assert panel and panel["width"] >= 300 and panel["height"] >= 400, panel
        chat.locator("#close-btn").click()
        expect(button).to_have_attribute("aria-expanded", "false")

        # A page without the anchor: no button, no error.
        bare = ctx.new_page()
        bare.goto(site.url + "/bare")
        bare.wait_for_load_state("load")
        assert bare.locator("#wolive-kefu").count() == 0

        # The demo page: the button sits clear of the page's text, on a PC and a phone.
        demo = ctx.new_page()
        demo.goto(f"{server.demo_url}/?business_id={BUSINESS}")
        b = demo.locator(".kefu_box").bounding_box()
        for sel in ("header", "main h2", "main p", "main pre"):
            for i in range(demo.locator(sel).count()):
                assert not boxes_overlap(b, demo.locator(sel).nth(i).bounding_box()), sel
        phone = new_context("host-phone", viewport=PHONE, is_mobile=True, has_touch=True)
        p = phone.new_page()
        p.goto(f"{server.demo_url}/?business_id={BUSINESS}")
        p.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
        p.wait_for_timeout(100)
        b = p.locator(".kefu_box").bounding_box()
        assert b and b["x"] + 60 <= PHONE["width"] and b["y"] + 60 <= PHONE["height"], b
        last = p.locator("main pre").bounding_box()
        assert not boxes_overlap(b, last), (b, last)
        shot(p, "visitor-demo-phone")
    finally:
        site.close()
    problems.check(allow=AGENT_PAGES)
