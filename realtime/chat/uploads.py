"""Uploaded images and files: checked by content, stored under random names, never run.

The WoLive document's upload URLs (`/admin/event/upload` field `upload`,
`/admin/event/uploadfile` field `folder`, `/admin/manager/uploadpic` field `img_head`) store
a file and answer its URL path. The original WoLive stored them in the web root under names
built from user input, checked only by an extension blacklist. Here:

- the type is read from the bytes (the `filetype` package), never from the name or the
  client's Content-Type; an image must be PNG, JPEG, GIF or WebP and its header must give
  sane dimensions;
- the stored name is `secrets.token_hex(16)` plus an extension derived from the detected
  type (files: a small allowlist, else `.bin`); user input never reaches a path;
- files live in `uploads.dir` (default `data_dir/uploads`), outside `static/` and every
  web root, written 0640 (never executable), and are served only by `handlers/uploads.py`
  with a Content-Type from the detected type, `nosniff`, a sandboxing CSP, and, for files,
  `Content-Disposition: attachment` with the original name;
- the size limit is the document's nginx `client_max_body_size 18M` (`uploads.max_bytes`).

A sidecar `<name>.meta.json` keeps the original name, the type and the kind; it is never
served (the name pattern only matches the stored file).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import struct
import time
import unicodedata
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import filetype

from config import Config, UploadsConfig
from .errors import ChatError

#: Largest upload's default (`uploads.max_bytes`): the WoLive document's nginx
#: `client_max_body_size 18M`.
_DEFAULTS = UploadsConfig()
#: Extra request bytes allowed beyond `max_bytes` for the multipart envelope (boundaries,
#: part headers, a few small form fields such as `visiter_id`, `channel`, `_xsrf`).
MULTIPART_SLACK_BYTES = 64 * 1024
#: Longest side of an accepted image (pixels) and most pixels in all: a decompression bomb
#: (a tiny file claiming a 100k x 100k canvas) would freeze the browsers that show it.
MAX_IMAGE_SIDE_PX = 20_000
MAX_IMAGE_PIXELS = 50_000_000
#: Longest original file name kept (characters), for the download's Content-Disposition.
MAX_ORIGINAL_NAME = 200
#: Images accepted by the image URLs, detected type → (extension, Content-Type).
IMAGE_TYPES: dict[str, tuple[str, str]] = {
    "image/png": ("png", "image/png"),
    "image/jpeg": ("jpg", "image/jpeg"),
    "image/gif": ("gif", "image/gif"),
    "image/webp": ("webp", "image/webp"),
}
#: Files kept with their own extension and Content-Type (served as attachments anyway);
#: anything else, text and HTML included (no magic number), becomes `.bin`,
#: application/octet-stream. Never SVG, HTML, scripts or executables.
FILE_TYPES: dict[str, tuple[str, str]] = {
    **IMAGE_TYPES,
    "image/bmp": ("bmp", "image/bmp"),
    "application/pdf": ("pdf", "application/pdf"),
    "application/zip": ("zip", "application/zip"),
    "application/gzip": ("gz", "application/gzip"),
    "application/x-7z-compressed": ("7z", "application/x-7z-compressed"),
    "application/x-rar-compressed": ("rar", "application/vnd.rar"),
    "application/msword": ("doc", "application/msword"),
    "application/vnd.ms-excel": ("xls", "application/vnd.ms-excel"),
    "application/vnd.ms-powerpoint": ("ppt", "application/vnd.ms-powerpoint"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    "application/vnd.oasis.opendocument.text": ("odt", "application/vnd.oasis.opendocument.text"),
    "application/vnd.oasis.opendocument.spreadsheet": (
        "ods", "application/vnd.oasis.opendocument.spreadsheet"),
    "audio/mpeg": ("mp3", "audio/mpeg"),
    "audio/mp4": ("m4a", "audio/mp4"),
    "audio/ogg": ("ogg", "audio/ogg"),
    "audio/x-wav": ("wav", "audio/wav"),
    "audio/amr": ("amr", "audio/amr"),
    "video/mp4": ("mp4", "video/mp4"),
    "video/webm": ("webm", "video/webm"),
    "video/quicktime": ("mov", "video/quicktime"),
}
UNKNOWN_TYPE = ("bin", "application/octet-stream")
#: What a stored name looks like: 32 hex digits, a dot, a short lower-case extension.
#: The only names ever opened, so `..`, slashes and the `.json` sidecars are unreachable.
STORED_NAME_RE = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]{1,5}$")
#: The sidecar of `<name>` is `<name>.meta.json`: its two extra dots keep it from ever
#: matching `STORED_NAME_RE`, so it is never served.
META_SUFFIX = ".meta.json"
#: URL path prefix the stored files are served under (handlers/uploads.py).
URL_PREFIX = "/upload/"
#: Modes: the folder is the server's own; files are read/write for the owner, never run.
DIR_MODE = 0o750
FILE_MODE = 0o640


class UploadError(ChatError):
    """An upload refused: `status` 400 (no file), 413 (too big), 415 (wrong type)."""

    def __init__(self, status: int, msg: str) -> None:
        super().__init__(1, msg, status)


@dataclass(frozen=True)
class StoredUpload:
    """A stored upload. `name` is the stored file name (`STORED_NAME_RE`), `url` its URL
    path (`/upload/<name>`), `mime` the Content-Type it is served with, `kind` "image"
    (served inline) or "file" (served as an attachment named `original_name`), `size`
    bytes."""

    name: str
    url: str
    mime: str
    kind: str
    original_name: str
    size: int

    def message_content(self) -> str:
        """A chat message's content for this upload (store.add_chat, msg_type image/file):
        the URL path, and for a file its original name after a newline."""
        return self.url if self.kind == "image" else f"{self.url}\n{self.original_name}"


def image_size(data: bytes, ext: str) -> tuple[int, int] | None:
    """(width, height) read from a PNG, JPEG, GIF or WebP header, or None when the header
    is missing or malformed (a file that only starts with the magic number). Sources: PNG
    IHDR (RFC 2083), GIF89a logical screen descriptor, JPEG SOFn markers (ITU T.81 B.2.2),
    WebP VP8/VP8L/VP8X chunks (RFC 9649)."""
    try:
        if ext == "png":
            if data[12:16] != b"IHDR":
                return None
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if ext == "gif":
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if ext == "webp":
            chunk = data[12:16]
            if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            if chunk == b"VP8L" and data[20] == 0x2F:
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return (int.from_bytes(data[24:27], "little") + 1,
                        int.from_bytes(data[27:30], "little") + 1)
            return None
        if ext == "jpg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    return None
                marker = data[i + 1]
                if marker == 0xFF:  # fill byte
                    i += 1
                    continue
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
                    i += 2
                    continue
                (length,) = struct.unpack(">H", data[i + 2:i + 4])
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return w, h
                if length < 2:
                    return None
                i += 2 + length
            return None
    except (struct.error, IndexError):
        return None
    return None


def clean_original_name(raw: str) -> str:
    """The name shown and offered for download: the last path component of what the
    browser sent (old browsers send `C:\\...\\a.txt`), control and format characters
    dropped, at most `MAX_ORIGINAL_NAME` characters, "file" when nothing is left. Never
    used in a path; rendered by the pages as text, never as HTML."""
    name = re.split(r"[\\/]", raw or "")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if set(name) <= {"."}:  # "", "." and ".." name nothing
        name = ""
    return name[:MAX_ORIGINAL_NAME] or "file"


def content_disposition(original_name: str) -> str:
    """`attachment` with an ASCII fallback `filename` (anything else → `_`) and the exact
    name as RFC 6266 / RFC 5987 `filename*=UTF-8''<percent-encoded>`, so no character of the
    name can break out of the header or be read as markup."""
    fallback = re.sub(r"[^A-Za-z0-9._\- ()]", "_", original_name) or "file"
    return (f"attachment; filename=\"{fallback}\"; "
            f"filename*=UTF-8''{quote(original_name, safe='')}")


class Uploads:
    """The upload store of one server: `directory` (absolute), `max_bytes` per file."""

    def __init__(self, directory: str, max_bytes: int = _DEFAULTS.max_bytes) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

    @classmethod
    def from_config(cls, cfg: Config) -> Uploads:
        """From the checked config: `uploads.dir` (empty: `server.data_dir/uploads`;
        relative: from the config file's folder) and `uploads.max_bytes`."""
        directory = cfg.uploads.dir or os.path.join(cfg.server.data_dir, "uploads")
        if not os.path.isabs(directory):
            directory = os.path.join(cfg.base_dir or os.getcwd(), directory)
        return cls(directory, cfg.uploads.max_bytes)

    @property
    def max_request_bytes(self) -> int:
        """Largest request body an upload URL reads before refusing with 413."""
        return self.max_bytes + MULTIPART_SLACK_BYTES

    def check_size(self, size: int) -> None:
        """Raises `UploadError` 400 for an empty file, 413 for one over `max_bytes`."""
        if size <= 0:
            raise UploadError(400, "the file is empty / 文件为空")
        if size > self.max_bytes:
            raise UploadError(413, f"the file is over {self.max_bytes // (1024 * 1024)} MB "
                                   f"({self.max_bytes} bytes) / 文件太大")

    def detect(self, data: bytes, image_only: bool) -> tuple[str, str, str]:
        """(extension, Content-Type, kind) from the bytes. `image_only`: anything but a
        well-formed PNG, JPEG, GIF or WebP of sane dimensions raises `UploadError` 415."""
        guess = filetype.guess(data)
        mime = guess.mime if guess is not None else ""
        if image_only:
            if mime not in IMAGE_TYPES:
                raise UploadError(415, "only PNG, JPEG, GIF or WebP images are accepted / "
                                       "只能上传图片")
            ext, ctype = IMAGE_TYPES[mime]
            size = image_size(data, ext)
            if size is None or min(size) < 1:
                raise UploadError(415, "the image is damaged or not really an image / 图片无效")
            if max(size) > MAX_IMAGE_SIDE_PX or size[0] * size[1] > MAX_IMAGE_PIXELS:
                raise UploadError(415, f"the image is {size[0]}x{size[1]} pixels: too large")
            return ext, ctype, "image"
        ext, ctype = FILE_TYPES.get(mime, UNKNOWN_TYPE)
        return ext, ctype, "file"

    async def save(self, data: bytes, original_name: str, image_only: bool) -> StoredUpload:
        """Check and store one upload; returns where it is. Raises `UploadError`
        (400 empty, 413 too big, 415 wrong type). The disk write runs off the IOLoop."""
        self.check_size(len(data))
        ext, ctype, kind = self.detect(data, image_only)
        name = f"{secrets.token_hex(16)}.{ext}"
        stored = StoredUpload(name=name, url=URL_PREFIX + name, mime=ctype, kind=kind,
                              original_name=clean_original_name(original_name),
                              size=len(data))
        meta = {"name": stored.original_name, "mime": ctype, "kind": kind,
                "size": len(data), "at": int(time.time())}
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._write, name, data, meta)
        return stored

    def _write(self, name: str, data: bytes, meta: dict[str, Any]) -> None:
        os.makedirs(self.directory, mode=DIR_MODE, exist_ok=True)
        for target, payload in ((name + META_SUFFIX, json.dumps(meta, ensure_ascii=False)
                                 .encode("utf-8")), (name, data)):
            tmp = os.path.join(self.directory, f".{target}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
            os.replace(tmp, os.path.join(self.directory, target))

    def find(self, name: str) -> tuple[str, StoredUpload] | None:
        """(file path, what it is) for a stored name, or None for a name that does not
        match `STORED_NAME_RE` or is not there."""
        if not STORED_NAME_RE.match(name):
            return None
        path = os.path.join(self.directory, name)
        try:
            with open(path + META_SUFFIX, encoding="utf-8") as f:
                meta = json.load(f)
            size = os.path.getsize(path)
        except (OSError, ValueError):
            return None
        return path, StoredUpload(name=name, url=URL_PREFIX + name,
                                  mime=str(meta.get("mime") or UNKNOWN_TYPE[1]),
                                  kind="image" if meta.get("kind") == "image" else "file",
                                  original_name=str(meta.get("name") or "file"), size=size)

    def stale(self, keep: set[str], cutoff: float) -> tuple[list[str], dict[str, int]]:
        """The cleanup command's plan (`python wolive.py cleanup-uploads`): names of the
        files in `directory` to delete, those last modified before `cutoff` (epoch seconds)
        and not in `keep`: stored uploads (`STORED_NAME_RE`), sidecars whose upload is gone
        and half-written `.<name>.tmp` files. Anything else in the folder is never touched.
        Also returns how many were kept, by reason (referenced, recent, other)."""
        kept = {"referenced": 0, "recent": 0, "other": 0}
        doomed: list[str] = []
        try:
            entries = sorted(os.scandir(self.directory), key=lambda e: e.name)
        except FileNotFoundError:
            return doomed, kept
        present = {e.name for e in entries}
        for entry in entries:
            name = entry.name
            if STORED_NAME_RE.match(name):
                owner = name
            elif name.endswith(META_SUFFIX) and STORED_NAME_RE.match(name[:-len(META_SUFFIX)]):
                if name[:-len(META_SUFFIX)] in present:
                    continue  # goes with its upload
                owner = name[:-len(META_SUFFIX)]
            elif name.startswith(".") and name.endswith(".tmp") and entry.is_file():
                owner = ""
            else:
                kept["other"] += 1
                continue
            if not entry.is_file(follow_symlinks=False):
                kept["other"] += 1
            elif owner in keep:
                kept["referenced"] += 1
            elif entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                kept["recent"] += 1
            else:
                doomed.append(name)
        return doomed, kept

    def remove(self, name: str) -> None:
        """Delete a stored upload and its sidecar (an upload whose message was refused)."""
        if not STORED_NAME_RE.match(name):
            return
        for target in (name, name + META_SUFFIX):
            try:
                os.unlink(os.path.join(self.directory, target))
            except FileNotFoundError:
                pass

