"""Old WoLive upload URLs (`/upload/images/20171129/abc.jpg`, `/upload/files/...`) after an
import (`store/wolive_import.py`).

The import copies each file an imported row names from the old site's folder into wolive's
upload store, through the same content checks as a new upload (`Uploads.save`: a random
name, a type read from the bytes, a sidecar), and rewrites the row to the new URL. The old
path stays an *alias* of the copy: a file `legacy/<sha256 of the old path>` in the upload
folder holds the stored name, so `GET <old path>` answers with the copied file (same
headers as any upload), on every node sharing the upload folder. The old site's folder is
not needed afterwards, and nothing from it is ever served as it was (no PHP, no HTML).
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from urllib.parse import unquote

from .uploads import STORED_NAME_RE, URL_PREFIX, UploadError, Uploads

#: Folder (inside the upload folder) holding the aliases.
ALIAS_DIR = "legacy"
#: Extensions whose files are imported as images (checked as images; served inline).
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "webp"})


def alias_key(old_path: str) -> str:
    """The alias file name of an old URL path (percent-decoded first, so both spellings
    of a name with spaces or Chinese find the same file)."""
    return hashlib.sha256(unquote(old_path).encode("utf-8", "surrogatepass")).hexdigest()


class LegacyUploads:
    """Aliases from old WoLive upload paths to stored uploads."""

    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.directory = os.path.join(uploads.directory, ALIAS_DIR)

    def lookup(self, old_path: str) -> str | None:
        """The stored name an old path is an alias of, or None."""
        try:
            with open(os.path.join(self.directory, alias_key(old_path)), encoding="utf-8") as f:
                name = f.read().strip()
        except OSError:
            return None
        return name if STORED_NAME_RE.match(name) else None

    def aliased_names(self) -> set[str]:
        """Every stored name an old path is an alias of (`cleanup-uploads` keeps them)."""
        names: set[str] = set()
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return names
        for entry in entries:
            if entry.name.endswith(".tmp") or not entry.is_file(follow_symlinks=False):
                continue
            try:
                with open(entry.path, encoding="utf-8") as f:
                    name = f.read().strip()
            except (OSError, UnicodeDecodeError):
                continue
            if STORED_NAME_RE.match(name):
                names.add(name)
        return names

    def _write_alias(self, old_path: str, name: str) -> None:
        os.makedirs(self.directory, mode=0o750, exist_ok=True)
        target = os.path.join(self.directory, alias_key(old_path))
        tmp = target + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(name)
        os.replace(tmp, target)

    @staticmethod
    def source_file(root: str, old_path: str) -> str | None:
        """Where an old `/upload/...` path is under `root`: the old site's `public` folder
        (holding `upload/`) or the `upload` folder itself. None when outside it or absent."""
        rel = unquote(old_path).lstrip("/")
        base = os.path.realpath(root)
        for candidate in (rel, rel.split("/", 1)[1] if "/" in rel else rel):
            path = os.path.realpath(os.path.join(base, candidate))
            if path.startswith(base + os.sep) and os.path.isfile(path):
                return path
        return None

    async def copy(self, root: str, old_path: str, dry_run: bool) -> tuple[str | None, str]:
        """Copy one old file into the store and alias its old path: (the new URL path, "")
        or (None, why not). A dry run only checks (and answers the old path)."""
        existing = self.lookup(old_path)
        if existing and self.uploads.find(existing):
            return URL_PREFIX + existing, ""  # imported before
        path = self.source_file(root, old_path)
        if path is None:
            return None, f"not found under {root}"
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, _read, path)
        name = os.path.basename(path)
        image = name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS
        try:
            self.uploads.check_size(len(data))
            if dry_run:
                self.uploads.detect(data, image_only=False)
                return old_path, ""
            try:
                stored = await self.uploads.save(data, name, image_only=image)
            except UploadError:
                if not image:
                    raise
                stored = await self.uploads.save(data, name, image_only=False)
        except UploadError as exc:
            return None, exc.msg
        await loop.run_in_executor(None, self._write_alias, old_path, stored.name)
        return stored.url, ""


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
