"""The reports page in a real browser (issue 13, item 7): Debian's Chromium through
Playwright against `python wolive.py` (SQLite: the page only calls /admin/report/data and
/admin/report/csv, which test_reports.py checks on both databases). The charts are drawn
(canvas pixels), a range change loads again, the CSV downloads with its BOM, the page
switches to English. Screenshots: tests/artifacts/page-reports[-en]-sqlite.png."""
from __future__ import annotations

import csv
import io
import random
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest

from conftest import ADMIN_PASSWORD, ADMIN_USER, BUSINESS, RunningServer
from helpers import db_rows
from test_e2e_browser import (PC, PHONE, PageProblems, browser,  # noqa: F401
                              new_context, problems, shot)
from test_ui_pages import login, sqlite_only  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

AGENTS = [("rp_wang", "王小红"), ("rp_li", "李明"), ("rp_sam", "Sam")]


def seed(server: RunningServer) -> dict[str, int]:
    """Three agents and 40 days of conversations (a fixed pseudo-random set): the last 30 days
    busier than the 10 before; ratings for some."""
    ids: dict[str, int] = {}
    for user, nick in AGENTS:
        db_rows(server.db_url, "INSERT INTO wolive_service (user_name, nick_name, password, "
                "business_id, level) VALUES (%s, %s, 'x', %s, 'service')", (user, nick, BUSINESS))
        ids[user] = db_rows(server.db_url, "SELECT service_id FROM wolive_service WHERE "
                            "user_name = %s", (user,))[0]["service_id"]
    rnd = random.Random(7)
    today = date.today()
    rows: list[tuple[Any, ...]] = []
    for back in range(40):
        day = today - timedelta(days=back)
        midnight = int(datetime(day.year, day.month, day.day).timestamp())
        for n in range(rnd.randint(3, 9) if back < 30 else rnd.randint(1, 3)):
            start = midnight + rnd.randint(8 * 3600, 20 * 3600)
            if start > time.time():
                start = int(time.time()) - rnd.randint(60, 3600)
            if rnd.random() < 0.15:
                rows.append((f"rv{back}_{n}", 0, start, None, None, start + 120,
                             1 if rnd.random() < 0.6 else 0, 1, 0))
                continue
            sid = ids[rnd.choice(AGENTS)[0]]
            wait = rnd.randint(0, 90)
            reply = wait + rnd.randint(5, 240)
            end = reply + rnd.randint(120, 1800)
            rows.append((f"rv{back}_{n}", sid, start, start + wait, start + reply, start + end, 0,
                         rnd.randint(1, 8), rnd.randint(1, 8)))
            if rnd.random() < 0.4:
                db_rows(server.db_url, "INSERT INTO wolive_rating (visiter_id, business_id, "
                        "service_id, score, comment, ended_cid, timestamp) VALUES "
                        "(%s, %s, %s, %s, '', %s, %s)",
                        (f"rv{back}_{n}", BUSINESS, sid, rnd.randint(3, 5), back * 100 + n,
                         start + end))
    for r in rows:
        db_rows(server.db_url, "INSERT INTO wolive_conversation (visiter_id, business_id, "
                "service_id, started_at, assigned_at, first_reply_at, ended_at, missed, "
                "visitor_messages, agent_messages) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                "%s)", (r[0], BUSINESS, *r[1:]))
    return ids


def painted(page: Any, canvas_id: str) -> int:
    """How many pixels of the canvas are not transparent."""
    return int(page.evaluate("""(id) => {
        const c = document.getElementById(id);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i]) { n++; } }
        return n;
    }""", canvas_id))


def tall(page: Any, take: Callable[[], Any]) -> None:
    """A screenshot of the whole page (its main part scrolls inside a 1280×800 window)."""
    page.set_viewport_size({"width": PC["width"], "height": 1360})
    page.wait_for_timeout(200)  # the charts follow the new size
    take()
    page.set_viewport_size(PC)


def test_reports_page(sqlite_only: None, running_server: RunningServer,  # noqa: F811
                      new_context: Callable[..., Any],  # noqa: F811
                      problems: PageProblems, shot: Callable[..., Path],  # noqa: F811
                      tmp_path: Path) -> None:
    from playwright.sync_api import expect
    server = running_server
    ids = seed(server)
    ctx = new_context("boss", accept_downloads=True)
    page = ctx.new_page()
    login(page, server, ADMIN_USER, ADMIN_PASSWORD)

    # The top bar links to the page.
    page.locator(".topnav a[href='/admin/page/reports']").click()
    page.wait_for_url(f"{server.base_url}/admin/page/reports")
    expect(page.locator("body")).to_have_attribute("data-report-loads", "1")
    expect(page.locator(".topnav a[href='/admin/page/reports']")).to_have_attribute(
        "aria-current", "page")
    today = date.today()
    week = f"{(today - timedelta(days=6)).isoformat()}..{today.isoformat()}"
    expect(page.locator("body")).to_have_attribute("data-report-range", week)
    assert painted(page, "chart-conv") > 500 and painted(page, "chart-first") > 500
    expect(page.locator("#agents tbody tr")).to_have_count(5)  # boss, three agents, nobody
    expect(page.locator("#agents")).to_contain_text("王小红")
    first_total = page.locator("#totals .rp-value").first.inner_text()
    assert int(first_total) > 0

    # Last 30 days: loads again, more conversations.
    page.get_by_role("button", name="最近 30 天").click()
    expect(page.locator("body")).to_have_attribute("data-report-loads", "2")
    month = f"{(today - timedelta(days=29)).isoformat()}..{today.isoformat()}"
    expect(page.locator("body")).to_have_attribute("data-report-range", month)
    assert int(page.locator("#totals .rp-value").first.inner_text()) > int(first_total)
    assert painted(page, "chart-conv") > 500
    tall(page, lambda: shot(page, "page-reports"))

    # A custom range and one agent.
    page.locator("#range input[name=from]").fill((today - timedelta(days=39)).isoformat())
    page.locator("#range select[name=service_id]").select_option(str(ids["rp_li"]))
    expect(page.locator("body")).to_have_attribute("data-report-loads", "3")
    expect(page.locator("#agents tbody tr")).to_have_count(1)
    expect(page.locator("#agents tbody tr")).to_contain_text("李明")
    page.locator("#range select[name=service_id]").select_option("")
    expect(page.locator("body")).to_have_attribute("data-report-loads", "4")

    # CSV with the page's range.
    with page.expect_download() as info:
        page.locator("#csv").click()
    download = info.value
    body = Path(download.path()).read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][0] == "scope" and rows[-1][0] == "total"
    assert sum(1 for r in rows if r[0] == "day") == 40
    assert any(r[3] == "王小红" for r in rows)
    assert download.suggested_filename.startswith(f"wolive-report-{BUSINESS}-")

    # A bad range is said on the page, nothing breaks.
    page.locator("#range input[name=from]").fill((today + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="查看").click()
    expect(page.locator("#error")).to_be_visible()
    page.get_by_role("button", name="最近 30 天").click()
    expect(page.locator("#error")).to_be_hidden()

    # English.
    page.locator("#lang-switch").click()
    expect(page.locator("h1")).to_have_text("Reports")
    expect(page.locator(".topnav a[href='/admin/page/reports']")).to_have_text("Reports")
    expect(page.locator("#agents thead")).to_contain_text("First response")
    assert painted(page, "chart-first") > 500
    tall(page, lambda: shot(page, "page-reports-en"))
    assert page.evaluate("document.documentElement.scrollWidth") <= PC["width"]

    # On a phone: nothing wider than the screen (the agents' table scrolls by itself).
    phone = new_context("boss-phone", viewport=PHONE, is_mobile=True, has_touch=True,
                        device_scale_factor=2).new_page()
    login(phone, server, ADMIN_USER, ADMIN_PASSWORD)
    phone.goto(f"{server.base_url}/admin/page/reports")
    expect(phone.locator("body")).to_have_attribute("data-report-loads", "1")
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert phone.evaluate("(() => { const m = document.getElementById('main');"
                          " return m.scrollWidth <= m.clientWidth; })()")
    assert painted(phone, "chart-conv") > 500
    shot(phone, "page-reports-phone")
    problems.check()
