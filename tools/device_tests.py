"""The device-side tests, run against the staged app on the phone's Python.

The tests are those of tests/app and tests/sync whose imports (followed through tests/ and
benchmarks/) never reach the server or a browser: the rest cannot run where the server is
not, and `make test` runs them on the dev Python. A conftest.py that reaches the server is
left out too (its fixtures serve the server tests); every module left out is listed. The
workspace is the staged app (byte-compiled, sources deleted, as on the phone) with the
selected tests and their helpers beside it, so `import app` finds the staged copy.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TEST_ROOTS = ("tests/app", "tests/sync")
# Top-level modules found in the repo, not in the staged app: followed, copied when needed.
SUPPORT = ("tests", "benchmarks")
STAGED = ("app", "sync")


@dataclass
class Selection:
    """Which test files run, which were left out and why, and the helpers they need."""

    tests: list[Path] = field(default_factory=list)  # relative to the repo
    left_out: dict[Path, str] = field(default_factory=dict)
    support: set[Path] = field(default_factory=set)


def select(repo: Path, forbidden: Iterable[str]) -> Selection:
    """Test modules of TEST_ROOTS whose imports never reach a `forbidden` top-level module."""
    forbidden = set(forbidden)
    selection = Selection()
    memo: dict[Path, tuple[set[Path], str | None]] = {}
    for root in TEST_ROOTS:
        for path in sorted((repo / root).rglob("*.py")):
            relative = path.relative_to(repo)
            if relative.name.startswith("test_") or relative.name == "conftest.py":
                closure, reason = _closure(repo, relative, forbidden, memo)
                if reason:
                    selection.left_out[relative] = reason
                else:
                    if relative.name != "conftest.py":
                        selection.tests.append(relative)
                    selection.support |= closure
    selection.support |= {p for p in _packages(repo) if p not in selection.left_out}
    return selection


def workspace(repo: Path, stage: Path, dest: Path, selection: Selection) -> Path:
    """The staged app plus the selected tests, their helpers and data, and pytest's settings."""
    shutil.copytree(stage, dest, symlinks=True)
    for root in TEST_ROOTS:  # data files (fixtures on disk) go along with the tests
        for path in (repo / root).rglob("*"):
            relative = path.relative_to(repo)
            if (
                path.is_file()
                and path.suffix not in {".py", ".pyc"}
                and "__pycache__" not in relative.parts
            ):
                _copy(repo, relative, dest)
    for relative in selection.support | set(selection.tests):
        _copy(repo, relative, dest)
    (dest / "pyproject.toml").write_text(pytest_settings(repo / "pyproject.toml"))
    return dest


def run(
    python: Path, ws: Path, selection: Selection, extra: Iterable[str] = ()
) -> tuple[bool, str]:
    """Run the selected tests with the phone environment's interpreter; (passed, summary)."""
    command = [
        str(python),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(ws),
        "-m",
        "not browser",
        *extra,
        *(str(t) for t in selection.tests),
    ]
    result = subprocess.run(command, cwd=ws, capture_output=True, text=True)
    output = result.stdout + result.stderr
    summary = next(
        (
            line.strip("= ")
            for line in reversed(output.splitlines())
            if re.search(r"\d+ (passed|failed|error)", line)
        ),
        output[-2000:],
    )
    return result.returncode == 0, summary if result.returncode == 0 else output[-12000:]


def pytest_settings(pyproject: Path) -> str:
    """The `[tool.pytest.ini_options]` table of pyproject.toml, verbatim."""
    text = pyproject.read_text()
    start = text.index("[tool.pytest.ini_options]")
    end = re.search(r"^\[", text[start + 1 :], re.MULTILINE)
    return text[start : start + 1 + end.start()] if end else text[start:]


def _closure(
    repo: Path, module: Path, forbidden: set[str], memo: dict[Path, tuple[set[Path], str | None]]
) -> tuple[set[Path], str | None]:
    """Repo files a module needs (tests/, benchmarks/ only) and why it cannot run, if so."""
    if module in memo:
        return memo[module]
    memo[module] = (set(), None)  # an import cycle adds nothing new
    needed, reason = {module}, None
    for name in sorted(imports(repo, module)):
        top = name.split(".")[0]
        if top in forbidden:
            reason = f"imports {name}"
            break
        if top not in SUPPORT:
            continue
        target = _module_file(repo, name)
        if target is None:
            continue
        sub, sub_reason = _closure(repo, target, forbidden, memo)
        if sub_reason:
            reason = f"imports {name}, which {sub_reason}"
            break
        needed |= sub
    memo[module] = (needed, reason)
    return memo[module]


def imports(repo: Path, module: Path) -> set[str]:
    """Dotted names a module imports (for `from a import b`, both a and a.b)."""
    tree = ast.parse((repo / module).read_text(), str(module))
    package = list(module.parent.parts)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            if prefix:
                names.add(prefix)
            names.update(f"{prefix}.{alias.name}".lstrip(".") for alias in node.names)
    return names


def _module_file(repo: Path, name: str) -> Path | None:
    parts = name.split(".")
    for candidate in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")):
        if (repo / candidate).is_file():
            return candidate
    return None


def _packages(repo: Path) -> set[Path]:
    """The __init__.py files of the test packages and of the support packages used."""
    found = {Path("tests", "__init__.py"), Path("tests", "conftest.py")}
    for root in TEST_ROOTS:
        found |= {p.relative_to(repo) for p in (repo / root).rglob("__init__.py")}
    found |= {Path("benchmarks", "__init__.py")}
    return {p for p in found if (repo / p).is_file()}


def _copy(repo: Path, relative: Path, dest: Path) -> None:
    (dest / relative).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(repo / relative, dest / relative)
