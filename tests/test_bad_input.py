"""Bad input never gets a traceback: every documented URL, called by a logged-in
super_manager and by a stranger with missing, malformed, oversized and oddly typed
parameters, answers a 4xx (or 2xx) with a readable body — never a 5xx, never an error log
(the autouse fail_on_error_logs fixture)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import Client
from test_api_docs import documented

PASSWORD = "s3cret-enough"
#: Values that have broken parsers elsewhere: empty, not a number, negative, huge, odd
#: characters, a path, markup.
ODD = ["", "abc", "-1", "9" * 30, "9" * 20, "x" * 70_000, "💥\x00\u202e", "../../etc/passwd",
       "<script>alert(1)</script>", "1.5", " "]
PARAMS = ["visiter_id", "business_id", "channel", "service_id", "content", "qid", "tid",
          "before", "after", "limit", "page", "start", "end", "puttime", "state",
          "user_name", "password", "special", "cid", "typing", "open_id", "level"]


def urls() -> list[tuple[str, str]]:
    out = []
    for methods, sample in documented():
        if sample.startswith(("/app/", "/apps/", "/users/", "/assets/")) or sample == "/":
            continue  # the Pusher API answers its own JSON errors (tests/test_pusher_*.py)
        for method in sorted(methods & {"GET", "POST"}):
            out.append((method, sample))
    return out


@pytest.mark.gen_test(timeout=300)
async def test_no_url_answers_5xx_to_bad_input(base_url: str) -> None:
    boss = Client(base_url)
    assert (await boss.install("shop1", "boss", PASSWORD)).code == 302
    stranger = Client(base_url)
    await stranger.get_xsrf()
    problems = []
    for method, path in urls():
        for who, client in (("boss", boss), ("stranger", stranger)):
            for value in ODD:
                if method == "GET":  # a URL's size is capped by the HTTP server (64 KB)
                    value = value[:1000]
                form = {name: value for name in PARAMS}
                resp = await client.fetch(path, method, form=form)
                if resp.code >= 500:
                    problems.append(f"{who} {method} {path} {value[:20]!r}: {resp.code}")
            # A JSON body of the wrong shapes.
            for body in (b"[1,2]", b'{"visiter_id": {"a": 1}, "content": [1]}', b"{bad"):
                if method != "POST":
                    continue
                headers = {"Content-Type": "application/json"}
                if "_xsrf" in client.cookies:
                    headers["X-XSRFToken"] = client.cookies["_xsrf"]
                resp = await client.fetch(path, "POST", body=body, headers=headers)
                if resp.code >= 500:
                    problems.append(f"{who} POST {path} {body!r}: {resp.code}")
                elif path.startswith("/admin/") and resp.headers.get(
                        "Content-Type", "").startswith("application/json"):
                    parsed: Any = json.loads(resp.body)
                    assert isinstance(parsed, dict) and "code" in parsed, (path, parsed)
    assert problems == [], "\n".join(problems)


@pytest.mark.gen_test(timeout=60)
async def test_numbers_too_big_for_the_database_are_a_400(base_url: str) -> None:
    """A whole number past what a database integer holds is refused with {code, msg}, not
    handed to SQL (where it was an OverflowError and a 500)."""
    boss = Client(base_url)
    assert (await boss.install("shop1", "boss", PASSWORD)).code == 302
    huge = "9" * 20
    for method, path, form in [
            ("POST", "/admin/manager/delquestion", {"business_id": "shop1", "qid": huge}),
            ("POST", "/admin/set/deltab", {"business_id": "shop1", "tid": huge}),
            ("GET", "/admin/set/messages", {"business_id": "shop1", "page": huge})]:
        resp = await boss.fetch(path, method, form=form)
        body = json.loads(resp.body)
        assert resp.code == 400 and body["code"] == 1 and "out of range" in body["msg"], \
            (path, resp.code, body)


@pytest.mark.allow_error_logs
@pytest.mark.gen_test(timeout=60)
async def test_an_unexpected_error_is_a_500_with_an_id_logged_once(
        base_url: str, wolive_server: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Anything unexpected: a JSON 500 whose msg carries an id, and one log line (with the
    traceback) carrying the same id, so a user's report finds the log."""
    boss = Client(base_url)
    assert (await boss.install("shop1", "boss", PASSWORD)).code == 302

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("boom")
    monkeypatch.setattr(wolive_server.chat, "conversations", broken)
    resp = await boss.fetch("/admin/set/getchats")
    code, body = resp.code, json.loads(resp.body)
    assert code == 500 and body["code"] == 1, body
    # The id is the request's (X-Request-Id), also in the body's request_id.
    error_id = body["msg"].rsplit("(id ", 1)[1].rstrip(")")
    assert error_id == body["request_id"] == resp.headers["X-Request-Id"], body
    assert len(error_id) >= 16, body
    traced = [r for r in caplog.records if r.exc_info]  # besides the access log's line
    assert len(traced) == 1 and error_id in traced[0].getMessage(), caplog.records
