"""Oversized requests get an answer, never a silent close (issue 10, item 2): a URL over
64 KB is a 414, header fields over 64 KB a 431, a declared body over 32 MB a 413 — each a
short JSON `{code, msg}` with `Connection: close` — read with raw sockets, as a client that
keeps sending its body would read it (handlers/http_server.py, `_Limits`)."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from handlers.http_server import MAX_BODY_BYTES, MAX_HEADERS_BYTES, MAX_TARGET_BYTES


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Overrides conftest's: the HTTP layer does not depend on the database."""
    return f"sqlite:///{tmp_path}/data/wolive.db"


async def exchange(port: int, head: bytes, body_len: int = 0,
                   reader_first: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (and `body_len` bytes of body, while reading); the answer's status,
    headers and body. Raises when the connection closes before a status line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send_body() -> None:
        try:
            writer.write(head)
            sent = 0
            while sent < body_len:
                n = min(256 * 1024, body_len - sent)
                writer.write(b"x" * n)
                sent += n
                await writer.drain()
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server stopped reading after its answer: expected

    sender = asyncio.ensure_future(send_body())
    try:
        status_line = await asyncio.wait_for(reader.readline(), 30)
        assert status_line, "connection closed without an HTTP status"
        headers = {}
        while True:
            line = await asyncio.wait_for(reader.readline(), 30)
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 30)
        return int(status_line.split()[1]), headers, body
    finally:
        await asyncio.wait_for(sender, 30)
        writer.close()


def refused(status: int, headers: dict[str, str], body: bytes, expected: int) -> Any:
    assert status == expected, (status, body)
    assert headers["connection"] == "close"
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["code"] == 1 and answer["msg"], answer
    assert answer["request_id"] == headers["x-request-id"], (answer, headers)
    return answer


@pytest.mark.gen_test(timeout=120)
async def test_a_1mb_query_value_is_a_414(http_server: Any) -> None:
    head = (b"GET /admin/event/position?business_id=" + b"a" * 1_000_000 +
            b" HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await exchange(http_server.port, head)
    assert "64 KB" in refused(status, headers, body, 414)["msg"]


@pytest.mark.gen_test(timeout=120)
async def test_huge_headers_are_a_431(http_server: Any) -> None:
    head = (b"GET /admin/event/position HTTP/1.1\r\nHost: x\r\nCookie: a=" + b"b" * 100_000 +
            b"\r\n\r\n")
    status, headers, body = await exchange(http_server.port, head)
    refused(status, headers, body, 431)


@pytest.mark.gen_test(timeout=120)
async def test_a_40mb_body_is_a_413_sent_or_not(http_server: Any) -> None:
    size = 40_000_000
    head = (b"POST /admin/event/chats HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % size)
    # A client that sends its whole body before reading (as most libraries do) ...
    status, headers, body = await exchange(http_server.port, head, body_len=size)
    assert "32 MB" in refused(status, headers, body, 413)["msg"]
    # ... and one that waits for an answer first (Expect: 100-continue style).
    status, headers, body = await exchange(http_server.port, head)
    refused(status, headers, body, 413)


@pytest.mark.gen_test(timeout=120)
async def test_an_oversized_request_on_a_kept_alive_connection_is_answered(
        http_server: Any) -> None:
    """The second request of a connection (read by Tornado, after the publish reader
    handed the connection over) is answered too."""
    reader, writer = await asyncio.open_connection("127.0.0.1", http_server.port)
    try:
        writer.write(b"GET /admin/event/position?business_id=x HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = int(next(line.split(b":")[1] for line in first.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        await reader.readexactly(length)
        writer.write(b"GET /?q=" + b"a" * (MAX_TARGET_BYTES + 10) + b" HTTP/1.1\r\n"
                     b"Host: x\r\n\r\n")
        second = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        assert second.startswith(b"HTTP/1.1 414 "), second
    finally:
        writer.close()


@pytest.mark.gen_test(timeout=120)
async def test_requests_within_the_limits_are_served_as_before(http_server: Any) -> None:
    port = http_server.port
    target = b"/admin/event/position?business_id=" + b"a" * (MAX_TARGET_BYTES - 200)
    head = (b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-Pad: " +
            b"p" * (MAX_HEADERS_BYTES - 200) + b"\r\nConnection: close\r\n\r\n")
    status, headers, body = await exchange(port, head)
    assert status == 400, (status, body)  # the handler's own answer: a malformed id
    assert MAX_BODY_BYTES > 18 * 1024 * 1024  # an 18 MB upload still fits
