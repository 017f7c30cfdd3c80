"""Print the pinned versions of everything `pip install -e .[test]` installs, as installed in
this virtualenv: `pip freeze --exclude-editable` kept to the dependency closure of wolive's
`install_requires` and `test` extra (setup.cfg), markers evaluated for this Python.

    .venv/bin/python scripts/constraints.py > constraints.txt

scripts/setup.sh installs with `-c constraints.txt`; regenerate it after changing setup.cfg
or upgrading a package, and check it installs in a fresh virtualenv (README, "Production").
"""
from __future__ import annotations

import configparser
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def top_requirements() -> list[Requirement]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    lines = cfg["options"]["install_requires"].splitlines()
    lines += cfg["options.extras_require"]["test"].splitlines()
    return [Requirement(line) for line in lines if line.strip()]


def closure() -> set[str]:
    seen: set[str] = set()
    todo = [(req, frozenset(req.extras)) for req in top_requirements()]
    while todo:
        req, extras = todo.pop()
        name = canonical(req.name)
        if name in seen and not extras:
            continue
        seen.add(name)
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            sys.exit(f"constraints: {req.name} is not installed; run scripts/setup.sh --test")
        for raw in dist.requires or []:
            sub = Requirement(raw)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                todo.append((sub, frozenset(sub.extras)))
    return seen


def main() -> None:
    wanted = closure()
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout.splitlines()
    print("# Pinned versions of everything `pip install -e .[test]` installs (Python "
          f"{sys.version_info.major}.{sys.version_info.minor}).")
    print("# Made by scripts/constraints.py from a working .venv; used by scripts/setup.sh.")
    for line in frozen:
        name = line.split("==", 1)[0]
        if "==" in line and canonical(name) in wanted:
            print(line)


if __name__ == "__main__":
    main()
