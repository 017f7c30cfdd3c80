"""The database pool is a bounded queue: with every connection busy past `pool_timeout_s`, a
request is answered 503 with `Retry-After` and the documented `{code, msg}` (the error page
for the chat window), not a 500 with a traceback, and the next request once a connection is
free is served as usual."""
from __future__ import annotations

import logging
from typing import Any

import pytest

from helpers import BIZ, Client, open_visitor_window

import wolive



@pytest.fixture
def config_overrides() -> dict[str, Any]:
    return {"database.pool_size": 1, "database.max_overflow": 0,
            "database.pool_timeout_s": 0.2}


@pytest.mark.gen_test(timeout=60)
async def test_exhausted_pool_answers_503_with_retry_after(
        boss: Client, base_url: str, wolive_server: wolive.Wolive,
        caplog: pytest.LogCaptureFixture) -> None:
    visitor, boot = await open_visitor_window(base_url, BIZ, "v1")
    held = await wolive_server.store.engine.connect()   # the pool's only connection
    try:
        with caplog.at_level(logging.WARNING, "wolive.store"):
            page = await visitor.fetch("/index/index/home",
                                       form={"business_id": BIZ, "visiter_id": "v1"})
            notice = await visitor.fetch("/admin/event/notice", "POST", form={
                "business_id": BIZ, "visiter_id": "v1", "channel": boot["channel"]})
        assert page.code == 503, page.body[:300]
        assert page.headers.get("Retry-After") == "5"
        assert notice.code == 503 and notice.headers.get("Retry-After") == "5"
        import json
        body = json.loads(notice.body)
        assert body["code"] == 1 and "unavailable" in body["msg"]
        assert "database pool exhausted" in caplog.text
        assert "Traceback" not in caplog.text
    finally:
        await held.close()
    page = await visitor.fetch("/index/index/home", form={"business_id": BIZ,
                                                          "visiter_id": "v1"})
    assert page.code == 200
