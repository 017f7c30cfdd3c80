"""Import an existing WoLive database: `python wolive.py import-wolive
--from mysql://user:pass@host/wolive_old --config config.yaml [--dry-run] [--uploads-from DIR]`.

The source is a WoLive MySQL/MariaDB database with WoLive's ten tables (MyISAM,
utf8); the target is the config's database (SQLite or MySQL/MariaDB), made and migrated by
`Store.open`. Two modes:

- **into a new database** (the target is another database): every row of the ten tables is
  copied with its id; the target must hold none of their rows yet.
- **in place** (the target is the source database itself): the tables are converted to
  InnoDB / utf8mb4, migrated, and the rows the import changes are updated where they are.

Before writing anything the source is read whole and checked; the report (`Report.text`)
gives the rows per table, the problems found and what the import changes, and a dry run
stops there. What the import does with each kind of row:

- **text** is read as raw bytes; bytes that are not UTF-8 are *bad UTF-8*. The common case
  is an emoji stored as two UTF-16 surrogates (CESU-8, which MySQL's 3-byte `utf8` takes):
  it is repaired into the real character; anything else is decoded with U+FFFD in place of
  the bad bytes. Each such value is listed.
- **messages** (`wolive_chats.content`) were HTML in WoLive. A message that is an `<img>` of
  an `/upload/...` path becomes `msg_type` image, one with a link to an `/upload/...` path a
  file (`"<URL>\\n<name>"`), anything else text: tags dropped (`<br>` a new line, an emoji
  picture its `alt` or `[表情]`), entities decoded. wolive never renders it as HTML.
- **uploads**: with `--uploads-from` (the old site's `public` folder, or its `upload`
  folder), each `/upload/...` file a message, an avatar or a business's `voice_address` names
  is copied into wolive's upload store through the same content checks as a new upload
  (the `copy_upload` callback), the row is rewritten to the new `/upload/<name>` URL, and
  the old path stays an alias of it (`realtime.chat.legacy_uploads`), so old links keep working.
  A file that is missing is a problem; its message keeps the old path.
- **orphans** (a message, queue row, greeting or WeChat link of an agent or visitor that is
  not there; an agent of a business that is not there) are listed and not imported into a
  new database (in place they stay). A waiting queue row (`service_id` 0) is no orphan.
- **duplicates**: two agents with one user name (wolive's user names are unique, whatever
  the case) — the later ones are renamed `<name>-<service_id>` and listed (their md5 hash
  keeps the old name it was salted with, so the old password still works once); two greetings of
  one agent — the later ones are skipped.
- **visitor channels**: WoLive's were the hex of the ids, so anyone could compute one and
  listen to a visitor's replies; each visitor gets the channel this server derives with its
  secret (`channel_for`), the one its chat window will use.
- **passwords** are copied as they are: WoLive's `md5(user_name + "hjkj" + password)` is
  accepted once at the agent's first login and replaced with bcrypt then
  (`realtime.passwords.check_password`).
"""
from __future__ import annotations

import html
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Awaitable, Callable
from urllib.parse import unquote, urlsplit

from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from . import schema
from .errors import ConfigError
from . import Store
from .database import normalise_url

Row = dict[str, Any]
#: `copy_upload(old URL path)` → the new URL path, or None when the file is missing or
#: refused (the reason is the second item).
CopyUpload = Callable[[str], Awaitable[tuple[str | None, str]]]

#: A renamed agent's WoLive md5 hash, kept with its old user name (the hash's salt); the
#: login accepts it once (realtime/passwords.py `check_password`, which has the same prefix).
RENAMED_MD5_PREFIX = "wolive-md5:"
#: The ten tables in the order they are written, with their primary key.
TABLES: tuple[tuple[str, str], ...] = (
    ("wolive_business", "wid"), ("wolive_service", "service_id"),
    ("wolive_visiter", "vid"), ("wolive_queue", "qid"), ("wolive_chats", "cid"),
    ("wolive_message", "mid"), ("wolive_question", "qid"), ("wolive_sentence", "sid"),
    ("wolive_tablist", "tid"), ("wolive_weixin", "wid"),
)
_TABLE = {t.name: t for t in schema.metadata.tables.values()}
#: Rows per INSERT.
BATCH = 500
#: A WoLive upload path inside a message, an avatar or a voice address.
UPLOAD_URL_RE = re.compile(r"""(?:https?://[^/\s"'<>]+)?(/upload/[^\s"'<>?#]+)""")
_IMG_RE = re.compile(r"""<img\b[^>]*?\bsrc\s*=\s*["']?([^"'\s>]+)[^>]*>""", re.I)
_A_RE = re.compile(r"""<a\b([^>]*?)\bhref\s*=\s*["']?([^"'\s>]+)([^>]*)>(.*?)</a\s*>""",
                   re.I | re.S)
_DOWNLOAD_RE = re.compile(r"""\bdownload\s*=\s*["']([^"']*)["']""", re.I)
_ALT_RE = re.compile(r"""\b(?:alt|title)\s*=\s*["']([^"']*)["']""", re.I)
_BR_RE = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>", re.I)
_TAG_RE = re.compile(r"<[/!]?[A-Za-z][^>]*>")


class ImportProblem(Exception):
    """The import cannot run; the message says why in one line."""


@dataclass
class Report:
    """What a (dry) run found and does."""

    counts: dict[str, int] = field(default_factory=dict)
    imported: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    changes: Counter[str] = field(default_factory=Counter)
    mode: str = "new database"

    def problem(self, kind: str, where: str, detail: str) -> None:
        self.problems.append(f"{kind}: {where}: {detail}")

    def problem_counts(self) -> Counter[str]:
        return Counter(p.split(":", 1)[0] for p in self.problems)

    def text(self, dry_run: bool) -> str:
        lines = [f"WoLive import ({self.mode}){' — dry run, nothing written' if dry_run else ''}",
                 f"rows per table (source → {'to import' if dry_run else 'imported'}):"]
        for name, _pk in TABLES:
            lines.append(f"  {name:<16} {self.counts.get(name, 0):>7} → "
                         f"{self.imported.get(name, 0):>7}")
        counts = self.problem_counts()
        lines.append(f"problems: {len(self.problems)}"
                     + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + ")"
                        if counts else ""))
        lines.extend(f"  {p}" for p in self.problems)
        lines.append("changes:" if self.changes else "changes: none")
        lines.extend(f"  {what}: {n}" for what, n in sorted(self.changes.items()))
        return "\n".join(lines)


# ---- reading the source ------------------------------------------------------------------

def _mysql_params(url: str) -> dict[str, Any]:
    u = urlsplit(url)
    if u.scheme.lower() not in ("mysql", "mariadb") or not u.path.strip("/"):
        raise ImportProblem(f"--from: a MySQL/MariaDB URL with a database is needed, "
                            f"mysql://user:password@host:3306/wolive_old, not {url!r}")
    return {"host": u.hostname or "127.0.0.1", "port": u.port or 3306,
            "user": unquote(u.username or "root"), "password": unquote(u.password or ""),
            "database": unquote(u.path.strip("/"))}


def same_database(source_url: str, target_url: str) -> bool:
    """Whether the target URL names the source database (import in place)."""
    if urlsplit(target_url).scheme.lower() not in ("mysql", "mariadb"):
        return False
    a, b = _mysql_params(source_url), _mysql_params(target_url)
    host = {"localhost": "127.0.0.1"}
    return (host.get(a["host"], a["host"]), a["port"], a["database"]) == \
        (host.get(b["host"], b["host"]), b["port"], b["database"])


def read_source(url: str) -> dict[str, list[Row]]:
    """Every row of the ten tables, text as raw bytes (`SET NAMES binary`: what is stored,
    unconverted). Raises `ImportProblem` when the database cannot be read."""
    import pymysql
    import pymysql.cursors
    try:
        conn = pymysql.connect(**_mysql_params(url), charset="utf8mb4", use_unicode=False,
                               cursorclass=pymysql.cursors.DictCursor, connect_timeout=10)
    except pymysql.MySQLError as exc:
        raise ImportProblem(f"--from: cannot connect: {exc.args[-1]}") from None
    out: dict[str, list[Row]] = {}
    try:
        with conn.cursor() as cur:
            cur.execute("SET NAMES binary")
            cur.execute("SHOW TABLES")
            present = {_s(next(iter(r.values()))) for r in cur.fetchall()}
            missing = [name for name, _pk in TABLES if name not in present]
            if missing:
                raise ImportProblem(f"--from: not a WoLive database: no table "
                                    f"{', '.join(missing)}")
            for name, pk in TABLES:
                cur.execute(f"SELECT * FROM `{name}` ORDER BY `{pk}`")
                out[name] = [{_s(k): v for k, v in r.items()} for r in cur.fetchall()]
    except pymysql.MySQLError as exc:
        raise ImportProblem(f"--from: cannot read: {exc.args[-1]}") from None
    finally:
        conn.close()
    return out


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def decode_text(raw: bytes) -> tuple[str, str]:
    """(text, "" when it was good UTF-8, else how it was mended)."""
    try:
        return raw.decode("utf-8"), ""
    except UnicodeDecodeError:
        pass
    try:  # CESU-8: each UTF-16 surrogate of an emoji encoded on its own
        return (raw.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")
                .decode("utf-16-le"), "surrogate pairs joined into their characters")
    except UnicodeError:
        return raw.decode("utf-8", "replace"), "bad bytes replaced with U+FFFD"


# ---- converting --------------------------------------------------------------------------

def _timestamp(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, date):
        return v.strftime("%Y-%m-%d 00:00:00")
    return None  # "0000-00-00 00:00:00" comes as a string or None: let the default stand


def upload_path(url: str) -> str | None:
    """The `/upload/...` path a WoLive URL (relative, or absolute on the old site) names."""
    m = UPLOAD_URL_RE.fullmatch(url.strip())
    return m.group(1) if m else None


def classify_message(content: str) -> tuple[str, str, str | None]:
    """WoLive message HTML → (msg_type, content, old upload path or None)."""
    stripped = content.strip()
    m = _A_RE.search(stripped)
    if m:
        path = upload_path(html.unescape(m.group(2)))
        if path:
            attrs = m.group(1) + m.group(3)
            d = _DOWNLOAD_RE.search(attrs)
            name = d.group(1) if d and d.group(1) else _plain(m.group(4)).strip()
            name = html.unescape(name) or path.rsplit("/", 1)[-1]
            return "file", f"{path}\n{name}", path
    m = _IMG_RE.search(stripped)
    if m:
        path = upload_path(html.unescape(m.group(1)))
        rest = _plain(stripped[:m.start()] + stripped[m.end():]).strip()
        if path and not rest:
            return "image", path, path
    path = upload_path(stripped)  # a bare upload path (an API client's message)
    if path and "<" not in stripped:
        is_image = path.rsplit(".", 1)[-1].lower() in ("png", "jpg", "jpeg", "gif", "webp")
        return ("image", path, path) if is_image else \
            ("file", f"{path}\n{path.rsplit('/', 1)[-1]}", path)
    plain = _plain(content)
    return "text", plain.strip() if plain != content else plain, None


def _plain(fragment: str) -> str:
    """HTML fragment → the text it shows."""
    def emoji(m: re.Match[str]) -> str:
        alt = _ALT_RE.search(m.group(0))
        if alt and alt.group(1):
            return alt.group(1)
        src = _IMG_RE.match(m.group(0))
        return "[图片]" if src and upload_path(html.unescape(src.group(1))) else "[表情]"
    out = _BR_RE.sub("\n", fragment)
    out = re.sub(r"<img\b[^>]*>", emoji, out, flags=re.I)
    out = _TAG_RE.sub("", out)
    return html.unescape(out).replace("\xa0", " ")


@dataclass
class Plan:
    """The rows to write per table (converted), and per table the ids of rows changed."""

    rows: dict[str, list[Row]]
    changed: dict[str, set[int]]
    report: Report


async def plan_import(source: dict[str, list[Row]],
                      copy_upload: CopyUpload | None, dry_run: bool,
                      keep_orphans: bool = False,
                      channel_for: Callable[[str, str], str] | None = None) -> Plan:
    """Check and convert the source's rows. With `dry_run` no upload is copied (only
    whether each file is there is checked, through `copy_upload` with `dry_run` known to the
    caller)."""
    report = Report(counts={name: len(source.get(name, [])) for name, _pk in TABLES})
    rows: dict[str, list[Row]] = {}
    changed: dict[str, set[int]] = {name: set() for name, _pk in TABLES}
    copied: dict[str, str | None] = {}

    async def new_url(old: str, where: str) -> str | None:
        if old not in copied:
            if copy_upload is None:
                copied[old] = None
                report.problem("missing upload", where, f"{old} (no --uploads-from given)")
            else:
                url, why = await copy_upload(old)
                copied[old] = url
                if url is None:
                    report.problem("missing upload", where, f"{old}: {why}")
                else:
                    report.changes["upload files copied" if not dry_run
                                   else "upload files to copy"] += 1
        return copied[old]

    for name, pk in TABLES:
        table = _TABLE[name]
        columns = {c.name for c in table.columns}
        out: list[Row] = []
        for raw in source.get(name, []):
            row: Row = {}
            for k, v in raw.items():
                if k not in columns:
                    continue
                if isinstance(v, (bytes, bytearray)):
                    v, how = decode_text(bytes(v))
                    if how:
                        report.problem("bad UTF-8", f"{name} {pk}={raw[pk]} {k}", how)
                        changed[name].add(int(raw[pk]))
                if k == "timestamp" and name != "wolive_chats":
                    v = _timestamp(v)
                    if v is None:
                        continue
                row[k] = v
            out.append(row)
        rows[name] = out

    businesses = {r["business_id"] for r in rows["wolive_business"]}
    agents = {int(r["service_id"]) for r in rows["wolive_service"]}
    visitors = {(r["visiter_id"], r["business_id"]) for r in rows["wolive_visiter"]}

    def keep(name: str, pk: str, row: Row, why: str | None) -> bool:
        if why is None:
            return True
        report.problem("orphan", f"{name} {pk}={row[pk]}", why
                       + ("" if keep_orphans else "; not imported"))
        return keep_orphans

    rows["wolive_service"] = [r for r in rows["wolive_service"] if keep(
        "wolive_service", "service_id", r, None if r["business_id"] in businesses else
        f"business {r['business_id']!r} does not exist")]
    seen: dict[str, int] = {}
    for r in rows["wolive_service"]:
        key = r["user_name"].casefold()
        if key in seen:
            new = f"{r['user_name']}-{r['service_id']}"
            report.problem("duplicate", f"wolive_service service_id={r['service_id']}",
                           f"user name {r['user_name']!r} is also agent {seen[key]}'s; "
                           f"renamed {new!r}")
            if re.fullmatch(r"[0-9a-fA-F]{32}", str(r["password"])):
                # WoLive's md5 is salted with the user name: keep the old one beside it.
                r["password"] = f"{RENAMED_MD5_PREFIX}{r['password']}:{r['user_name']}"
            r["user_name"] = new
            changed["wolive_service"].add(int(r["service_id"]))
            report.changes["agents renamed (duplicate user name)"] += 1
        else:
            seen[key] = int(r["service_id"])
        if not str(r["password"]).startswith("$2"):
            report.changes["md5 passwords kept, upgraded to bcrypt at first login"] += 1
    agents = {int(r["service_id"]) for r in rows["wolive_service"]}

    def agent_why(sid: Any, allow_zero: bool = False) -> str | None:
        if allow_zero and int(sid) == 0:
            return None
        return None if int(sid) in agents else f"agent {sid} does not exist"

    rows["wolive_visiter"] = [r for r in rows["wolive_visiter"] if keep(
        "wolive_visiter", "vid", r, None if r["business_id"] in businesses else
        f"business {r['business_id']!r} does not exist")]
    visitors = {(r["visiter_id"], r["business_id"]) for r in rows["wolive_visiter"]}

    def visitor_why(r: Row) -> str | None:
        if (r["visiter_id"], r["business_id"]) not in visitors:
            return f"visitor {r['visiter_id']!r} of {r['business_id']!r} does not exist"
        return None

    rows["wolive_queue"] = [r for r in rows["wolive_queue"] if keep(
        "wolive_queue", "qid", r,
        visitor_why(r) or agent_why(r["service_id"], allow_zero=True))]
    rows["wolive_chats"] = [r for r in rows["wolive_chats"] if keep(
        "wolive_chats", "cid", r, visitor_why(r) or agent_why(r["service_id"]))]
    greeted: set[int] = set()
    sentences = []
    for r in rows["wolive_sentence"]:
        if not keep("wolive_sentence", "sid", r, agent_why(r["service_id"])):
            continue
        if int(r["service_id"]) in greeted:
            report.problem("duplicate", f"wolive_sentence sid={r['sid']}",
                           f"agent {r['service_id']} has a greeting already; not imported")
            continue
        greeted.add(int(r["service_id"]))
        sentences.append(r)
    rows["wolive_sentence"] = sentences
    rows["wolive_weixin"] = [r for r in rows["wolive_weixin"] if keep(
        "wolive_weixin", "wid", r, agent_why(r["service_id"]))]

    if channel_for is not None:
        for r in rows["wolive_visiter"]:
            r["channel"] = channel_for(r["business_id"], r["visiter_id"])
            changed["wolive_visiter"].add(int(r["vid"]))
        if rows["wolive_visiter"]:
            report.changes["visitor channels derived with this server's secret (WoLive's "
                           "could be computed from the ids)"] = len(rows["wolive_visiter"])
    for r in rows["wolive_chats"]:
        msg_type, content, old = classify_message(r["content"])
        if old is not None:
            url = await new_url(old, f"wolive_chats cid={r['cid']}")
            if url is not None:
                content = content.replace(old, url, 1)
        if (msg_type, content) != ("text", r["content"]):
            changed["wolive_chats"].add(int(r["cid"]))
            report.changes[f"messages read as {msg_type}"
                           + (" (HTML dropped)" if msg_type == "text" else "")] += 1
        r["msg_type"], r["content"] = msg_type, content
    for name, pk, col in (("wolive_service", "service_id", "avatar"),
                          ("wolive_visiter", "vid", "avatar"),
                          ("wolive_business", "wid", "voice_address")):
        for r in rows[name]:
            old = upload_path(str(r.get(col) or ""))
            if old is None or old == "/upload/voice/default.mp3":
                continue
            url = await new_url(old, f"{name} {pk}={r[pk]} {col}")
            if url is not None:
                r[col] = url
                changed[name].add(int(r[pk]))
                report.changes[f"{name}.{col} pointed at the copied file"] += 1
    report.imported = {name: len(rows[name]) for name, _pk in TABLES}
    return Plan(rows=rows, changed=changed, report=report)


# ---- writing -----------------------------------------------------------------------------

async def target_rows(store: Store) -> dict[str, int]:
    """Rows of the ten tables in the target (a table not made yet: 0)."""
    out: dict[str, int] = {}
    async with store.engine.connect() as conn:
        present = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        for name, _pk in TABLES:
            out[name] = int((await conn.execute(select(func.count()).select_from(
                _TABLE[name]))).scalar() or 0) if name in present else 0
    return out


async def write_new(store: Store, plan: Plan) -> None:
    """Copy every planned row into an empty target, ids kept, in one transaction."""
    async with store.engine.begin() as conn:
        for name, _pk in TABLES:
            rows = plan.rows[name]
            for i in range(0, len(rows), BATCH):
                await conn.execute(insert(_TABLE[name]), rows[i:i + BATCH])
        if store.dialect == "sqlite":
            for name in ("wolive_service", "wolive_business"):
                pk = dict(TABLES)[name]
                top = max((int(r[pk]) for r in plan.rows[name]), default=0)
                if name == "wolive_service":  # ids named in old rows are never given again
                    for other in ("wolive_chats", "wolive_queue", "wolive_sentence",
                                  "wolive_weixin"):
                        top = max([top] + [int(r["service_id"]) for r in plan.rows[other]])
                await conn.execute(text("UPDATE sqlite_sequence SET seq = MAX(seq, :v) "
                                        "WHERE name = :n"), {"v": top, "n": name})
                await conn.execute(text("INSERT INTO sqlite_sequence (name, seq) SELECT :n, :v "
                                        "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence "
                                        "WHERE name = :n)"), {"v": top, "n": name})


def convert_in_place(url: str) -> None:
    """The ten tables become InnoDB / utf8mb4 (before the migrations run)."""
    import pymysql
    conn = pymysql.connect(**_mysql_params(url), charset="utf8mb4", autocommit=True)
    try:
        with conn.cursor() as cur:
            for name, _pk in TABLES:
                cur.execute(f"ALTER TABLE `{name}` ENGINE=InnoDB, CONVERT TO CHARACTER SET "
                            "utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        conn.close()


async def write_in_place(store: Store, plan: Plan) -> None:
    """Update the rows the plan changed (the others are already right)."""
    async with store.engine.begin() as conn:
        for name, pk in TABLES:
            table = _TABLE[name]
            for row in plan.rows[name]:
                if int(row[pk]) in plan.changed[name]:
                    values = {k: v for k, v in row.items() if k != pk}
                    await conn.execute(update(table).where(table.c[pk] == row[pk])
                                       .values(**values))


async def run(source_url: str, target_url: str, base_dir: str, dry_run: bool,
              copy_upload: CopyUpload | None,
              channel_for: Callable[[str, str], str] | None = None) -> Report:
    """Read, check, and (unless `dry_run`) import. Raises `ImportProblem` with one line."""
    source = read_source(source_url)
    in_place = same_database(source_url, target_url)
    store: Store | None = None
    if not in_place:  # refuse a target holding rows before copying any file
        store = await _check_target(target_url, base_dir, create=not dry_run)
    try:
        plan = await plan_import(source, copy_upload, dry_run, keep_orphans=in_place,
                                 channel_for=channel_for)
        plan.report.mode = "in place" if in_place else "into " + _describe(target_url)
        if in_place:
            plan.report.changes["tables converted to InnoDB / utf8mb4"] = len(TABLES)
        if dry_run:
            return plan.report
        try:
            if store is not None:
                await write_new(store, plan)
                return plan.report
            # In place: convert, migrate, then rewrite every changed row whole (a value
            # with bad bytes is written again, mended, whatever the conversion made of it).
            convert_in_place(source_url)
            store = await _open(target_url, base_dir)
            await write_in_place(store, plan)
        except SQLAlchemyError as exc:
            raise ImportProblem(f"writing failed, rolled back: "
                                f"{getattr(exc, 'orig', None) or exc}") from None
        return plan.report
    finally:
        if store is not None:
            await store.close()


def _describe(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme} database {u.path.strip('/') or url}"


async def _open(url: str, base_dir: str, migrate: bool = True) -> Store:
    try:
        return await Store.open(url, base_dir=base_dir, migrate=migrate, row_cache_s=0)
    except ConfigError as exc:
        raise ImportProblem(str(exc)) from None


async def _check_target(url: str, base_dir: str, create: bool) -> Store | None:
    """The target exists (or, for a dry run of a SQLite file not made yet, would) and holds
    no rows of the ten tables. Returns it open when `create`."""
    if not create and normalise_url(url, base_dir).startswith("sqlite"):
        import os
        path = normalise_url(url, base_dir).split(":///", 1)[1]
        if not os.path.exists(path):
            return None  # made empty by the import
    store = await _open(url, base_dir, migrate=create)
    try:
        held = {k: v for k, v in (await target_rows(store)).items() if v}
    except BaseException:
        await store.close()
        raise
    if held:
        await store.close()
        raise ImportProblem("the target database already holds rows (" + ", ".join(
            f"{k} {v}" for k, v in held.items()) + "): import into a new, empty database, "
            "or in place (--from the config's own database)")
    if not create:
        await store.close()
        return None
    return store
