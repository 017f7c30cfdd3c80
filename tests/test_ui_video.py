"""Video calls in a real browser (issue 5): Debian's Chromium with a fake camera and
microphone, an agent console and a visitor window against `python wolive.py`.

The visitor calls, the agent accepts: both sides' remote <video> plays the other's fake
camera (readyState ≥ 2, videoWidth > 0) over an RTCPeerConnection that is "connected", the
signalling having gone through the private call channel's client events. Then the visitor
hangs up, and the server no longer signs that call channel. The agent calls, the visitor
refuses. Screenshots: tests/artifacts/video-*-sqlite.png.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import ADMIN_USER, BUSINESS, RunningServer
from test_e2e_browser import (PageProblems, agent_login, chromium, problems,  # noqa: F401 (fixture)
                              wait_assigned)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MEDIA_ARGS = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream")
TIMEOUT_MS = 20_000
WIDE = {"width": 1920, "height": 1080}
PHONE = {"width": 360, "height": 740}
VISITOR = "video-visitor-1"
VISITOR_NAME = "王小明"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium as in test_e2e_browser.py, plus a fake camera/microphone that needs no click."""
    yield from chromium(MEDIA_ARGS)


@pytest.fixture
def new_context(browser: Any, problems: PageProblems) -> Iterator[Callable[..., Any]]:  # noqa: F811
    contexts: list[Any] = []

    def make(who: str, **options: Any) -> Any:
        options.setdefault("locale", "zh-CN")
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        problems.watch_context(context, who)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}-sqlite.png"), animations="disabled")


def xsrf(page: Any) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "_xsrf")


def post_as_agent(page: Any, url: str, form: dict[str, str]) -> Any:
    return page.request.post(url, form=form, headers={"X-XSRFToken": xsrf(page)})


def remote_playing(page: Any) -> None:
    """The remote <video> shows the other side's camera, over a connected peer connection."""
    page.wait_for_function("""() => {
        const v = document.getElementById('video-remote');
        const c = window.woliveVideo.call;
        return v && v.readyState >= 2 && v.videoWidth > 0 && c && c.pc &&
               c.pc.connectionState === 'connected';
    }""", timeout=TIMEOUT_MS)


def no_sideways_overflow(page: Any) -> None:
    width = page.evaluate("document.documentElement.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for sel in ("#video-hangup", "#video-mute", "#video-camera"):
        box = page.locator(sel).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (sel, box, width)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_video_call_accept_hang_up_and_refuse(running_server: RunningServer,
                                              new_context: Callable[..., Any],
                                              problems: PageProblems,  # noqa: F811 (the fixture)
                                              artifacts: Path) -> None:
    from playwright.sync_api import expect
    server = running_server

    # The agent signs in; video is off, so there is no video button.
    agent = new_context("agent", viewport=WIDE).new_page()
    agent_login(agent, server)
    expect(agent.locator("#video-btn")).to_have_attribute("hidden", "")

    # The boss turns video on for shop1; the console (reloaded) shows the button.
    r = post_as_agent(agent, f"{server.base_url}/admin/manager/switches",
                      {"business_id": BUSINESS, "video_state": "open"})
    assert r.status == 200 and r.json()["data"]["video_state"] == "open", r.text()
    agent.reload()
    expect(agent.locator("#me-state")).to_have_text(re.compile("在线"))
    expect(agent.locator("#video-btn")).not_to_have_attribute("hidden", "")
    expect(agent.locator("#video-btn")).to_be_disabled()   # no conversation picked yet

    # A visitor on a phone-sized window comes and is assigned to the agent.
    visitor = new_context("visitor", viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    visitor.goto(f"{server.base_url}/index/index/home?business_id={BUSINESS}"
                 f"&visiter_id={VISITOR}&visiter_name={VISITOR_NAME}")
    wait_assigned(visitor)
    expect(visitor.locator("#video-btn")).to_be_visible()
    expect(visitor.locator("#video-btn")).to_have_attribute("title", "视频通话")

    # ---- the visitor calls, the agent accepts ------------------------------------------
    visitor.locator("#video-btn").click()
    expect(visitor.locator("#video-call")).to_be_visible()
    expect(visitor.locator("#video-status")).to_have_text(re.compile(f"正在呼叫 {ADMIN_USER}"))
    expect(visitor.locator("#video-btn")).to_be_disabled()
    dialog = agent.locator("#video-incoming")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(VISITOR_NAME)
    expect(dialog).to_contain_text("邀请您进行视频通话")
    shot(agent, artifacts, "video-incoming-agent")
    agent.locator("#video-accept").click()
    expect(dialog).to_be_hidden()

    remote_playing(agent)
    remote_playing(visitor)
    call = agent.evaluate("window.woliveVideo.call.name")
    assert re.fullmatch(r"private-call-[0-9a-f]{32}", call)
    assert visitor.evaluate("window.woliveVideo.call.name") == call
    for page in (agent, visitor):
        assert page.evaluate("document.getElementById('video-local').videoWidth") > 0
        expect(page.locator("#video-status")).to_have_text(re.compile(r"通话中 \d+:\d\d"))
    # Signalling went through the paced queue: nothing was refused for the rate limit.
    assert "4301" not in server.logs()

    # Mute and camera off switch the local tracks and say so.
    visitor.locator("#video-mute").click()
    expect(visitor.locator("#video-mute")).to_have_attribute("aria-pressed", "true")
    expect(visitor.locator("#video-mute")).to_contain_text("取消静音")
    assert visitor.evaluate(
        "window.woliveVideo.call.stream.getAudioTracks().every(t => !t.enabled)")
    visitor.locator("#video-camera").click()
    expect(visitor.locator("#video-camera")).to_have_attribute("aria-pressed", "true")
    expect(visitor.locator(".wv-localoff")).to_be_visible()
    assert visitor.evaluate(
        "window.woliveVideo.call.stream.getVideoTracks().every(t => !t.enabled)")
    visitor.locator("#video-camera").click()
    visitor.locator("#video-mute").click()
    expect(visitor.locator("#video-local")).to_be_visible()
    visitor.wait_for_timeout(600)   # a few fresh frames for the screenshots
    no_sideways_overflow(visitor)
    no_sideways_overflow(agent)
    shot(agent, artifacts, "video-call-agent")
    shot(visitor, artifacts, "video-call-visitor")

    # English on the visitor's side: the call view follows the switch.
    visitor.evaluate("Wolive.i18n.set('en')")
    expect(visitor.locator("#video-hangup")).to_contain_text("Hang up")
    expect(visitor.locator("#video-status")).to_have_text(re.compile(r"In call \d+:\d\d"))
    visitor.evaluate("Wolive.i18n.set('zh')")

    # The visitor hangs up: both views close, the agent is told, the call channel is gone.
    visitor.locator("#video-hangup").click()
    expect(visitor.locator("#video-call")).to_be_hidden()
    expect(agent.locator("#video-call")).to_be_hidden()
    expect(agent.locator("#video-notice")).to_have_text("视频通话已结束")
    assert agent.evaluate("window.woliveVideo.last.connectionState") == "connected"
    assert agent.evaluate("window.woliveVideo.call") is None
    socket_id = agent.evaluate("window.woliveConsole.pusher.connection.socket_id")
    r = post_as_agent(agent, f"{server.base_url}/admin/set/videoauth",
                      {"socket_id": socket_id, "channel_name": call})
    assert r.status == 403, r.text()
    expect(visitor.locator("#video-btn")).to_be_enabled()

    # ---- the agent calls, the visitor refuses ------------------------------------------
    agent.locator(f'#convs .conv[data-visiter="{VISITOR}"]').click()
    expect(agent.locator("#video-btn")).to_be_enabled()
    agent.locator("#video-btn").click()
    expect(agent.locator("#video-status")).to_have_text(re.compile(f"正在呼叫 {VISITOR_NAME}"))
    vdialog = visitor.locator("#video-incoming")
    expect(vdialog).to_be_visible()
    expect(vdialog).to_contain_text(ADMIN_USER)
    no_overflow = visitor.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert no_overflow
    shot(visitor, artifacts, "video-incoming-visitor")
    visitor.locator("#video-refuse").click()
    expect(vdialog).to_be_hidden()
    expect(agent.locator("#video-call")).to_be_hidden()
    expect(agent.locator("#video-notice")).to_have_text(f"{VISITOR_NAME} 拒绝了视频通话")
    expect(agent.locator("#video-btn")).to_be_enabled()
    assert visitor.evaluate("window.woliveVideo.call") is None

    problems.check()
