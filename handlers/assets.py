"""Assets with WoLive's addresses: `pusher.min.js` (pusher-js 8 + the snippet shim) and
everything under `/assets/` from `static/assets/`."""
from __future__ import annotations

import hashlib
import os
from typing import Any

import tornado.web

from .base import BaseHandler

STATIC_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "static")
PUSH_DIR = os.path.join(STATIC_ROOT, "assets", "libs", "push")
PUSHER_JS_PARTS = ("pusher-js-8.6.0.min.js", "wolive-compat.js")


class PusherJsHandler(BaseHandler):
    """`/assets/libs/push/pusher.min.js`: the document's client snippet works as written."""

    _body: bytes = b""
    _etag: str = ""

    @classmethod
    def body(cls) -> bytes:
        if not cls._body:
            parts = []
            for name in PUSHER_JS_PARTS:
                with open(os.path.join(PUSH_DIR, name), "rb") as f:
                    parts.append(f.read())
            cls._body = b"\n;\n".join(parts)
            cls._etag = '"' + hashlib.sha256(cls._body).hexdigest()[:32] + '"'
        return cls._body

    def get(self) -> None:
        body = self.body()
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=3600")
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("Etag", self._etag)
        if self.check_etag_header():
            self.set_status(304)
            return
        self.finish(body)

    def compute_etag(self) -> Any:
        return self._etag or None


class AssetHandler(tornado.web.StaticFileHandler):
    """Static files; scripts and images may be used from any site (the embed snippet)."""

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Access-Control-Allow-Origin", "*")
        self.set_header("X-Content-Type-Options", "nosniff")


def routes() -> list[tuple[str, type, dict[str, Any]] | tuple[str, type]]:
    return [
        (r"/assets/libs/push/pusher\.min\.js", PusherJsHandler),
        (r"/assets/(.*)", AssetHandler, {"path": os.path.join(STATIC_ROOT, "assets")}),
    ]
