"""Uploads: the WoLive document's `/admin/event/upload` (field `upload`, images),
`/admin/event/uploadfile` (field `folder`, any file) and `/admin/manager/uploadpic` (field
`img_head`, an agent's avatar), the console's `/admin/set/upload` and
`/admin/set/uploadfile` (an agent sends an image or a file to a visitor), and
`/upload/<name>`, which serves what was stored.

Thin glue: checking, naming and storing live in `realtime.chat.uploads`; a visitor's or an
agent's upload becomes a chat message through `Chat.visitor_send` / `Chat.agent_send`
(`msg_type` "image" / "file"), stored in `wolive_chats` and pushed like text.

The request body is streamed (`stream_request_body`) so a declared size over the limit is
refused with a JSON 413 before anything is read, and nothing over `uploads.max_bytes` plus
the multipart envelope is ever buffered.
"""
from __future__ import annotations

import asyncio
import os
import re
from typing import Any

import tornado.httputil
import tornado.web

from realtime.chat.errors import ChatError
from realtime.chat.legacy_uploads import LegacyUploads
from realtime.chat.uploads import (
    STORED_NAME_RE,
    URL_PREFIX,
    StoredUpload,
    UploadError,
    content_disposition,
)

from .base import AgentApiHandler, ApiError, BaseHandler, VisitorApiHandler
from .content import ContentApiHandler
from .visitor import VisitorMixin

#: The chime served at the document's default `voice_address`.
DEFAULT_VOICE_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                  "static", "assets", "sounds", "notify.wav")

#: Bytes read from disk per write when serving a stored file.
SERVE_CHUNK_BYTES = 64 * 1024
#: Served files never change (random names): browsers may keep them a year.
SERVE_MAX_AGE_S = 365 * 24 * 3600
#: Locks a served file down: no scripts, no plugins, no same-origin powers, even when a
#: browser is tricked into rendering it as a document.
SERVE_CSP = "default-src 'none'; sandbox"
#: Header names pusher-js-style clients use for the XSRF token outside the body.
_XSRF_HEADERS = ("X-Xsrftoken", "X-Csrftoken")


@tornado.web.stream_request_body
class UploadForm(BaseHandler):
    """Reads a `multipart/form-data` body of at most `Uploads.max_request_bytes`.

    A `Content-Length` over it gets a JSON 413 at once; a body that grows over it while
    streaming is dropped and answered 413 once read. The `_xsrf` token of console
    uploads may travel in the body: then it is checked once the body is parsed."""

    _form_parsed = False

    async def prepare(self) -> None:
        await super().prepare()
        self._chunks: list[bytes] = []
        self._received = 0
        limit = self.uploads.max_request_bytes
        declared = self.request.headers.get("Content-Length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                raise ApiError(400, 1, "Content-Length is not a number") from None
            if too_big:
                raise UploadError(413, f"the upload is over "
                                       f"{self.uploads.max_bytes // (1024 * 1024)} MB / 文件太大")
        self.request.connection.set_max_body_size(limit)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._received += len(chunk)
        if self._received <= self.uploads.max_request_bytes:
            self._chunks.append(chunk)
        else:
            self._chunks.clear()

    def check_xsrf_cookie(self) -> None:
        in_header = any(self.request.headers.get(h) for h in _XSRF_HEADERS)
        if not self._form_parsed and not in_header and \
                self.get_query_argument("_xsrf", None) is None:
            return  # the token is in the multipart body: checked in read_form
        super().check_xsrf_cookie()

    def read_form(self, field: str) -> tornado.httputil.HTTPFile:
        """Parse the body; returns the file sent in `field`. Raises `ApiError` 400
        (not multipart, malformed, no such file), `UploadError` 413 (too big), 403 (a
        console upload without its `_xsrf`)."""
        if self._received > self.uploads.max_request_bytes:
            raise UploadError(413, f"the upload is over "
                                   f"{self.uploads.max_bytes // (1024 * 1024)} MB / 文件太大")
        ctype = self.request.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, 1, f"send multipart/form-data with the file in field {field!r}")
        body, self._chunks = b"".join(self._chunks), []
        try:
            tornado.httputil.parse_body_arguments(ctype, body, self.request.body_arguments,
                                                  self.request.files, self.request.headers)
        except tornado.httputil.HTTPInputError as exc:
            raise ApiError(400, 1, f"malformed upload: {exc}") from None
        for name, values in self.request.body_arguments.items():
            self.request.arguments.setdefault(name, []).extend(values)
        self._form_parsed = True
        if self.settings.get("xsrf_cookies"):
            self.check_xsrf_cookie()
        files = self.request.files.get(field)
        if not files:
            raise ApiError(400, 1, f"missing file field {field!r}")
        files[0].filename = form_filename(files[0].filename)
        return files[0]

    async def store_upload(self, field: str, image_only: bool) -> StoredUpload:
        upload = self.read_form(field)
        return await self.uploads.save(upload.body, upload.filename, image_only)


def form_filename(parsed: str) -> str:
    """The file name a browser meant, from Tornado's parse of a part's Content-Disposition
    (RFC 7578): `\\"` and `\\\\` are quoted-string escapes (Tornado hands back RFC 5987
    `filename*=` values re-quoted that way), and browsers write `"`, CR and LF in `filename=`
    as `%22`, `%0D`, `%0A` (the HTML standard's multipart/form-data encoding); any other `%`
    is the name's own. Other backslashes stay (old browsers send `C:\\...\\a.txt`)."""
    name = re.sub(r'\\(["\\])', r"\1", parsed or "")
    return name.replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


class VisitorUploadHandler(UploadForm, VisitorApiHandler, VisitorMixin):
    """`/admin/event/upload` (field `upload`, an image) and `/admin/event/uploadfile`
    (field `folder`, any file): the visitor's file becomes a message to its agent.
    Params `visiter_id`, `business_id`, `channel` (or the window's cookie).
    Answer `{code: 0, msg: "", data: <URL path>}` (WoLive document, "上传图片" / "上传文件")."""

    def initialize(self, field: str, image_only: bool) -> None:
        self.field = field
        self.image_only = image_only

    async def post(self) -> None:
        upload = self.read_form(self.field)
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        business_id = self.arg("business_id", required=True, max_len=100)
        channel = self.visitor_channel_arg(business_id, visiter_id)
        self.chat.check_ids(visiter_id, business_id)
        self.chat.check_visitor(business_id, visiter_id, channel)
        stored = await self.uploads.save(upload.body, upload.filename, self.image_only)
        try:
            await self.chat.visitor_send(visiter_id, business_id, channel,
                                         stored.message_content(), msg_type=stored.kind)
        except ChatError:
            self.uploads.remove(stored.name)
            raise
        self.answer(0, "", stored.url)


class AgentUploadHandler(UploadForm, AgentApiHandler):
    """`/admin/set/upload` (field `upload`, an image) and `/admin/set/uploadfile` (field
    `folder`, any file) with `visiter_id`: the agent's file becomes a message to that
    visitor (pushed `cu{channel}` `my-event`). Answer `{code: 0, msg: "success", data:
    <message>}` as `/admin/set/chats`; the message's `content` is the URL path."""

    def initialize(self, field: str, image_only: bool) -> None:
        self.field = field
        self.image_only = image_only

    async def post(self) -> None:
        upload = self.read_form(self.field)
        visiter_id = self.arg("visiter_id", required=True, max_len=200)
        stored = await self.uploads.save(upload.body, upload.filename, self.image_only)
        try:
            message = await self.chat.agent_send(self.agent, visiter_id,
                                                  stored.message_content(),
                                                  msg_type=stored.kind)
        except ChatError:
            self.uploads.remove(stored.name)
            raise
        self.answer(0, "success", message)


class AvatarUploadHandler(UploadForm, AgentApiHandler):
    """`/admin/manager/uploadpic` (field `img_head`, an image): any logged-in agent stores
    an avatar picture; `/admin/manager/update` or `registForService` then use the path.
    Answer `{code: 0, msg: "", data: <URL path>}`; failures code 1 (WoLive document,
    "头像上传")."""

    async def post(self) -> None:
        stored = await self.store_upload("img_head", image_only=True)
        self.answer(0, "", stored.url)


class VoiceUploadHandler(UploadForm, ContentApiHandler):
    """`/admin/manager/uploadvoice` (field `voice`: an MP3, WAV, OGG or M4A file, checked by
    content): the business's new-message sound. Stores it and sets `voice_address` to it.
    Manager (its business) or super_manager (`business_id`). Answer `{code: 0, msg: "成功",
    data: <the switches, as /admin/manager/switches>}`; 415 not a sound file."""

    async def post(self) -> None:
        upload = self.read_form("voice")
        business_id = self.scoped_business("manager")
        _ext, mime, _kind = self.uploads.detect(upload.body, image_only=False)
        if not mime.startswith("audio/"):
            raise UploadError(415, "only MP3, WAV, OGG or M4A sound files / 只能上传声音文件")
        stored = await self.uploads.save(upload.body, upload.filename, image_only=False)
        self.answer(0, "成功", await self.content.set_switches(
            self.agent, business_id, {"voice_address": stored.url}))


class DefaultVoiceHandler(BaseHandler):
    """`/upload/voice/default.mp3`, the document's default `voice_address`: a short chime
    shipped in static/assets/sounds (WAV bytes; browsers play by content). HEAD as GET."""

    head_like_get = True

    def get(self) -> None:
        with open(DEFAULT_VOICE_FILE, "rb") as f:
            body = f.read()
        self.set_header("Content-Type", "audio/wav")
        self.set_header("Cache-Control", "public, max-age=86400")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(body)


class StoredFileHandler(BaseHandler):
    """`GET /upload/<32 hex>.<ext>`: a stored upload, with the type detected when it was
    stored (never text/html), `nosniff`, a sandboxing CSP, and for files
    `Content-Disposition: attachment` with the original name. `GET /upload/<old path>`
    (e.g. `/upload/images/20171129/abc.jpg`): the copy of an imported WoLive file, by its
    alias (`realtime.chat.legacy_uploads`). Anything else is 404."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", SERVE_CSP)

    def compute_etag(self) -> str | None:
        return None

    async def get(self, name: str, include_body: bool = True) -> None:
        if not STORED_NAME_RE.match(name):  # an old WoLive path, aliased by an import
            name = LegacyUploads(self.uploads).lookup(URL_PREFIX + name) or ""
        found = self.uploads.find(name) if name else None
        if found is None:
            raise ApiError(404, 1, "no such file / 文件不存在")
        path, stored = found
        self.set_header("Content-Type", stored.mime)
        self.set_header("Cache-Control", f"private, max-age={SERVE_MAX_AGE_S}, immutable")
        self.set_header("Etag", f'"{stored.name}"')
        if stored.kind == "file":
            self.set_header("Content-Disposition", content_disposition(stored.original_name))
        if self.check_etag_header():
            self.set_status(304)
            return
        self.set_header("Content-Length", str(stored.size))
        if not include_body:
            return
        loop = asyncio.get_running_loop()
        f = await loop.run_in_executor(None, open, path, "rb")
        try:
            while True:
                chunk = await loop.run_in_executor(None, f.read, SERVE_CHUNK_BYTES)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            f.close()

    async def head(self, name: str) -> None:
        await self.get(name, include_body=False)


def routes() -> list[Any]:
    return [
        (r"/admin/event/upload", VisitorUploadHandler, {"field": "upload", "image_only": True}),
        (r"/admin/event/uploadfile", VisitorUploadHandler,
         {"field": "folder", "image_only": False}),
        (r"/admin/set/upload", AgentUploadHandler, {"field": "upload", "image_only": True}),
        (r"/admin/set/uploadfile", AgentUploadHandler, {"field": "folder", "image_only": False}),
        (r"/admin/manager/uploadpic", AvatarUploadHandler),
        (r"/admin/manager/uploadvoice", VoiceUploadHandler),
        (r"/upload/voice/default\.mp3", DefaultVoiceHandler),
        (r"/upload/(.+)", StoredFileHandler),
    ]

