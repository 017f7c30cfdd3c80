"""The code is ruff-clean at 100 columns (pyproject.toml [tool.ruff])."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_ruff_clean() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_clean() -> None:
    """handlers, realtime, store and wolive.py type-check (setup.cfg [mypy])."""
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_pusher_engine_imports_nothing_of_the_chat() -> None:
    """realtime/pusher/ imports only itself, `realtime.inputs` (input checks) and libraries:
    not the chat use cases, the store or the handlers."""
    import ast
    from pathlib import Path

    engine = Path(ROOT) / "realtime" / "pusher"
    found = []
    for path in sorted(engine.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    continue  # the package itself
                name = ("realtime." * (node.level == 2)) + (node.module or "")
                if node.level == 2 and not node.module:
                    name = "realtime." + ",".join(a.name for a in node.names)
                names = [name]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in ("store", "handlers", "wolive") or (
                        top == "realtime" and not name.startswith(("realtime.pusher",
                                                                   "realtime.inputs"))):
                    found.append(f"{path.name}: {name}")
    assert found == []
    assert len(list(engine.glob("*.py"))) >= 9
