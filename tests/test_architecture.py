"""docs/architecture.md is the map of the code: it must match the tree and the route table.

The map has one `### <feature>` section per feature, each with bullet lines
`- URLs: ...`, `- handlers: ...`, `- use cases: ...`, `- SQL: ...` naming routes (as their
patterns, in backticks) and modules (as paths, in backticks); a "Modules" part lists the rest.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT

MAP = Path(ROOT) / "docs" / "architecture.md"
#: The packages whose every module the map must name.
PACKAGES = ("handlers", "realtime", "store")
PATH_RE = re.compile(r"`((?:handlers|realtime|store)/[A-Za-z0-9_/]+\.py)`")


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """`{feature: {field: [backticked items]}}` of the map's `### ` sections."""
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for line in text.splitlines():
        if line.startswith("### "):
            current = out.setdefault(line[4:].strip(), {})
        elif line.startswith("## "):
            current = None
        elif current is not None and (m := re.match(r"- ([a-zA-Z ]+): (.*)", line)):
            current[m.group(1).strip()] = re.findall(r"`([^`]+)`", m.group(2))
    return out


def modules_in_tree() -> set[str]:
    root = Path(ROOT)
    return {str(p.relative_to(root)) for package in PACKAGES
            for p in (root / package).rglob("*.py") if p.name != "__init__.py"}


def test_every_module_the_map_names_exists_and_every_module_is_named() -> None:
    named = set(PATH_RE.findall(MAP.read_text(encoding="utf-8")))
    tree = modules_in_tree()
    assert sorted(named - tree) == [], "the map names modules that do not exist"
    assert sorted(tree - named) == [], "modules missing from docs/architecture.md"
    assert len(tree) > 60  # the walk does see the code


def test_every_route_is_in_the_map_with_the_module_that_serves_it() -> None:
    """Each route pattern of the main port appears in exactly one feature, whose
    `handlers` line names the module its handler class is defined in; no feature lists a
    URL the server does not route."""
    import handlers
    routes = {r[0]: r[1] for r in handlers.default_handlers()}
    where: dict[str, list[str]] = {}
    for feature, fields in sections(MAP.read_text(encoding="utf-8")).items():
        for url in fields.get("URLs", []):
            where.setdefault(url, []).append(feature)
    feature_of = sections(MAP.read_text(encoding="utf-8"))
    problems = []
    for pattern, cls in routes.items():
        found = where.get(pattern, [])
        if len(found) != 1:
            problems.append(f"{pattern}: in {len(found)} features")
            continue
        module = cls.__module__.replace(".", "/") + ".py"
        if module not in feature_of[found[0]].get("handlers", []):
            problems.append(f"{pattern}: served by {module}, not named by {found[0]!r}")
    problems += [f"{url}: listed but not routed" for url in where if url not in routes]
    assert problems == [], "docs/architecture.md and the routes disagree:\n" + "\n".join(problems)


@pytest.mark.parametrize("broken, expected", [
    ("- handlers: `handlers/nowhere.py`", "do not exist"),
    ("", "missing from"),
])
def test_the_module_check_fails_on_a_map_that_does_not_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, broken: str, expected: str) -> None:
    """The check itself: a map naming a module that is not there, or leaving one out, fails."""
    text = MAP.read_text(encoding="utf-8")
    if broken:
        text += "\n### Broken\n" + broken + "\n"
    else:
        text = text.replace("`store/schema.py`", "`schema`")
    fake = tmp_path / "architecture.md"
    fake.write_text(text, encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "MAP", fake)
    with pytest.raises(AssertionError, match=expected):
        test_every_module_the_map_names_exists_and_every_module_is_named()


def test_the_route_check_fails_on_a_map_that_does_not_match(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: a route renamed in the map is both unlisted and not routed."""
    text = MAP.read_text(encoding="utf-8")
    assert "`/admin/set/close`" in text
    fake = tmp_path / "architecture.md"
    fake.write_text(text.replace("`/admin/set/close`", "`/admin/set/closed`"), encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "MAP", fake)
    with pytest.raises(AssertionError) as failed:
        test_every_route_is_in_the_map_with_the_module_that_serves_it()
    assert "/admin/set/close: in 0 features" in str(failed.value)
    assert "/admin/set/closed: listed but not routed" in str(failed.value)


def test_no_two_handler_classes_share_a_name() -> None:
    """A handler's class name finds it in one guess (three `ConsoleHandler`s did not)."""
    seen: dict[str, list[str]] = {}
    for path in sorted((Path(ROOT) / "handlers").glob("*.py")):
        for name in re.findall(r"^class (\w+)", path.read_text(encoding="utf-8"), re.M):
            seen.setdefault(name, []).append(path.name)
    assert {n: where for n, where in seen.items() if len(where) > 1} == {}
    assert len(seen) > 50
