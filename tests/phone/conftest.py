"""Fixtures of the phone-check tests: a copy of what `flet build` packages, to break."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tools import phone_env
from tools.phone_check import Options, Report
from tools.resolution import TARGETS, Resolution

ROOT = Path(__file__).resolve().parents[2]
# What `flet build` reads or packages, and the lock the check compares versions with.
COPIED = (
    "pyproject.toml",
    "main.py",
    "app",
    "sync",
    "assets",
    "liaison.egg-info",
    "requirements/dev.lock",
)
ANDROID = TARGETS[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project as `flet build` sees it (no tests, no server) to break."""
    dest = tmp_path / "project"
    for name in COPIED:
        source = ROOT / name
        if not source.exists():
            missing_service(f"{name} is missing: run `make install`")
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="session")
def android_313() -> list[Resolution]:
    """The real resolution of the project's dependencies for Android on Python 3.13."""
    options = Options(
        resolve_pythons=("3.13",),
        tested_pythons=("3.13",),
        targets=(ANDROID,),
        tests=False,
        say=lambda line: None,
    )
    from tools import flet_build, resolution

    packages = {"android": flet_build.package(ROOT, "apk")}
    try:
        return resolution.resolve_all(
            packages, options.targets, options.resolve_pythons, options.tsv, options.cache
        )
    except phone_env.Unavailable as exc:
        missing_service(str(exc))
        raise


@pytest.fixture
def options(project: Path) -> Iterator[Options]:
    """Android on Python 3.13 only, without the device tests (make phone-check runs those)."""
    yield Options(
        root=project,
        resolve_pythons=("3.13",),
        tested_pythons=("3.13",),
        targets=(ANDROID,),
        tests=False,
        require_all=False,
        say=lambda line: None,
    )


def edit(path: Path, old: str, new: str) -> None:
    """Replace one occurrence of `old` (a regular expression) in a file."""
    text = path.read_text()
    changed, count = re.subn(old, new, text, count=1)
    assert count == 1, f"{old!r} not in {path}"
    path.write_text(changed)


def ran(report: Report, step: str) -> None:
    """Skip (or fail under LIAISON_REQUIRE_ALL=1) when the check skipped what a test needs."""
    for reason in report.skipped:
        if step in reason:
            missing_service(reason)
