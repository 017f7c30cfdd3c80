"""Request ids and the log formats (config `log_format`: text, the default, or json).

Every HTTP request gets an id (`request_id_for`): the caller's own `X-Request-Id` when it
is sane (1-128 characters of `[A-Za-z0-9._:@+=/-]`, as nginx's `$request_id`, UUIDs and
most tracing ids are), else a new one, 16 hex characters (8 random per process, then a
counter: unique, and cheap enough for the publish fast path). It is sent back as
`X-Request-Id` (`RequestIdTransform`, on every answer of every listener, error pages and
the WebSocket handshake included), is in the JSON error answers (`handlers.base`) and in
the access log line, and is `current_request_id()` for any log line written while the
request's handler runs (`REQUEST_ID`, a context variable set around its execution).

`JsonFormatter` writes one JSON object per line: `time` (UTC, ISO 8601 with milliseconds),
`level`, `logger`, `message`, then whichever of `LOG_FIELDS` the record carries (the
access log passes them as `extra`), the current request id when the record has none, and
`exc_info` (the traceback as text) for an exception.
"""
from __future__ import annotations

import contextvars
import itertools
import json
import logging
import re
import secrets
import time
from typing import Any

import tornado.httputil
import tornado.web

#: An incoming `X-Request-Id` taken as it is; anything else gets a new id.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:@+=/\-]{1,128}")
#: The request id of the request whose handler is running (None outside one).
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wolive_request_id", default=None)

_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh id: this process's 8 random hex characters, then a counter (8+ hex)."""
    return f"{_PREFIX}{next(_COUNTER):08x}"


def request_id_for(headers: tornado.httputil.HTTPHeaders) -> str:
    """The request's id: its one sane `X-Request-Id`, else a new one."""
    given = headers.get_list("X-Request-Id") if "X-Request-Id" in headers else ()
    if len(given) == 1 and SANE_REQUEST_ID.fullmatch(given[0]):
        return given[0]
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being handled in this task, if any."""
    return REQUEST_ID.get()


class RequestIdTransform(tornado.web.OutputTransform):
    """Adds `X-Request-Id` to every answer (a Tornado output transform, so error pages,
    static files and the WebSocket handshake get it too). The id is the request's
    `request_id` attribute, set by `handlers.pusher.Application`."""

    def __init__(self, request: tornado.httputil.HTTPServerRequest) -> None:
        self.request_id: str | None = getattr(request, "request_id", None)

    def transform_first_chunk(self, status_code: int, headers: tornado.httputil.HTTPHeaders,
                              chunk: bytes, finishing: bool
                              ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
        if self.request_id is not None:
            headers["X-Request-Id"] = self.request_id
        return status_code, headers, chunk


class WithRequestId(tornado.httputil.HTTPMessageDelegate):
    """Runs a request's delegate (Tornado's `_HandlerDelegate`) with `REQUEST_ID` set, so
    the handler's task (started inside it, with a copy of the context) carries the id, and
    resets it after each call, so the connection's own task does not keep it."""

    __slots__ = ("inner", "request_id")

    def __init__(self, inner: tornado.httputil.HTTPMessageDelegate, request_id: str) -> None:
        self.inner, self.request_id = inner, request_id

    def headers_received(self, start_line: tornado.httputil.RequestStartLine |
                         tornado.httputil.ResponseStartLine,
                         headers: tornado.httputil.HTTPHeaders) -> Any:
        token = REQUEST_ID.set(self.request_id)
        try:
            return self.inner.headers_received(start_line, headers)
        finally:
            REQUEST_ID.reset(token)

    def data_received(self, chunk: bytes) -> Any:
        token = REQUEST_ID.set(self.request_id)
        try:
            return self.inner.data_received(chunk)
        finally:
            REQUEST_ID.reset(token)

    def finish(self) -> None:
        token = REQUEST_ID.set(self.request_id)
        try:
            self.inner.finish()
        finally:
            REQUEST_ID.reset(token)

    def on_connection_close(self) -> None:
        self.inner.on_connection_close()

    def execute(self) -> Any:
        """`Application.__call__`'s way in (not used by the listeners)."""
        token = REQUEST_ID.set(self.request_id)
        try:
            return self.inner.execute()  # type: ignore[attr-defined]
        finally:
            REQUEST_ID.reset(token)


#: Record attributes `JsonFormatter` writes when present (the access log's `extra`, and
#: `app` / `channel` where a line is about one).
LOG_FIELDS = ("request_id", "method", "route", "path", "status", "latency_ms", "remote_ip",
              "app", "channel")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        attrs = record.__dict__
        for name in LOG_FIELDS:
            value = attrs.get(name)
            if value is not None:
                out[name] = value
        if "request_id" not in out:
            rid = REQUEST_ID.get()
            if rid is not None:
                out["request_id"] = rid
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str, fmt: str = "text") -> None:
    """Configure the root logger once: `level` (debug, info, warning, error) and `fmt`
    ("text": today's lines; "json": `JsonFormatter`), to standard error."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
