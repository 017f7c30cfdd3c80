"""docs/api.md is the API reference: every route the server has is documented there, and
every URL documented there is a route the server has, with the documented methods."""
from __future__ import annotations

import re

import tornado.web
import tornado.websocket

import handlers
from conftest import ROOT

DOC = ROOT / "docs" / "api.md"
ENTRY = re.compile(r"`((?:GET|POST|HEAD|PUT|DELETE)(?:, (?:GET|POST|HEAD|PUT|DELETE))*) "
                   r"(/[^`\s?]*)[^`]*`")


def documented() -> list[tuple[set[str], str]]:
    out = []
    for methods, path in ENTRY.findall(DOC.read_text(encoding="utf-8")):
        sample = re.sub(r"\{[^}]+\}|<[^>]+>", "x1", path)
        out.append(({m.strip() for m in methods.split(",")}, sample))
    return out


def routes() -> list[tuple[str, type]]:
    return [(spec[0], spec[1]) for spec in handlers.default_handlers()]


def implements(cls: type, method: str) -> bool:
    if issubclass(cls, tornado.web.StaticFileHandler) and method in ("GET", "HEAD"):
        return True
    if method == "GET" and issubclass(cls, tornado.websocket.WebSocketHandler):
        return True
    own = getattr(cls, method.lower(), None)
    base = getattr(tornado.web.RequestHandler, method.lower(), None)
    return own is not None and own is not base


def test_every_route_is_documented() -> None:
    docs = documented()
    missing = [pattern for pattern, _ in routes()
               if not any(re.fullmatch(pattern, sample) for _, sample in docs)]
    assert missing == [], f"routes missing from docs/api.md: {missing}"


def test_every_documented_url_exists_with_its_methods() -> None:
    table = routes()
    problems = []
    for methods, sample in documented():
        match = next((cls for pattern, cls in table if re.fullmatch(pattern, sample)), None)
        if match is None:
            problems.append(f"{sample}: no such route")
            continue
        for method in methods:
            if not implements(match, method):
                problems.append(f"{method} {sample}: {match.__name__} has no {method}")
    assert problems == [], problems

