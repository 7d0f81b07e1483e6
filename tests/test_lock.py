"""The lock files in requirements/ agree with pyproject.toml (offline: it reads both files).

`make install` installs only what requirements/dev.lock pins, with hashes; a dependency changed
in pyproject.toml without `make lock` would silently not be installed. Each test says which
file is stale and that `make lock` rewrites it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
# Each lock file and the extras it holds besides [project].dependencies (the phone's packages,
# some as ranges: the lock pins one version inside each). A new lock file (the Makefile's LOCKS
# and `lock` target) gets a line here.
LOCKS: dict[str, tuple[str, ...]] = {"dev.lock": ("server", "dev")}
# The lock that .venv is installed from: it must also hold the build backend, since
# `make install` builds the editable install without build isolation.
INSTALLED_LOCK = "dev.lock"

_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")
_VIA_PROJECT = "liaison (pyproject.toml)"


@dataclass
class Pin:
    version: Version
    extras: frozenset[str] = frozenset()
    hashes: int = 0
    via: set[str] = field(default_factory=set)


def read_lock(path: Path) -> dict[str, list[Pin]]:
    """Pins of a uv/pip-compile lock file by name (a universal lock may pin a name twice)."""
    pins: dict[str, list[Pin]] = {}
    current: Pin | None = None
    in_via = False
    for line in path.read_text().splitlines():
        entry = _ENTRY.match(line)
        if entry:
            extras = (entry.group(2) or "[]")[1:-1].split(",")
            current = Pin(
                Version(entry.group(3)), frozenset(e.strip() for e in extras if e.strip())
            )
            pins.setdefault(canonicalize_name(entry.group(1)), []).append(current)
            in_via = False
            current.hashes += len(_HASH.findall(line))
            continue
        if current is None:
            continue
        stripped = line.strip()
        current.hashes += len(_HASH.findall(stripped))
        if stripped.startswith("# via"):
            rest = stripped.removeprefix("# via").strip()
            in_via = not rest
            if rest:
                current.via.add(rest)
        elif in_via and stripped.startswith("#   "):
            current.via.add(stripped.removeprefix("#").strip())
        elif not stripped.startswith("--hash"):
            in_via = False
    return pins


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def direct_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = pyproject()["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def test_every_lock_file_is_checked() -> None:
    found = {path.name for path in REQUIREMENTS.glob("*.lock")}
    assert found == set(LOCKS), (
        f"requirements/ holds {sorted(found)} but tests/test_lock.py checks {sorted(LOCKS)}"
    )


def test_the_extras_exist() -> None:
    declared = set(pyproject()["project"]["optional-dependencies"])
    for lock, extras in LOCKS.items():
        assert set(extras) <= declared, f"{lock}: no extra {set(extras) - declared}"


def lock_problems(pins: dict[str, list[Pin]], wanted: list[Requirement]) -> list[str]:
    """How a lock's pins disagree with the requirements it was written from."""
    problems: list[str] = []
    for req in wanted:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in the lock")
            continue
        for pin in pins[name]:  # a range holds when every pin of the name is inside it
            if not req.specifier.contains(pin.version, prereleases=True):
                problems.append(f"{req} but the lock pins {name}=={pin.version}")
        if not any(req.extras <= pin.extras for pin in pins[name]):
            problems.append(f"{req} but the lock pins {name} without {sorted(req.extras)}")
    # A dependency removed from pyproject.toml is still attributed to the project by the lock.
    by_project = {
        name for name, entries in pins.items() if any(_VIA_PROJECT in pin.via for pin in entries)
    }
    for extra in sorted(by_project - {canonicalize_name(req.name) for req in wanted}):
        problems.append(f"the lock pins {extra} for pyproject.toml, which no longer asks for it")
    return problems


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_pins_what_pyproject_asks_for(lock: str) -> None:
    problems = lock_problems(read_lock(REQUIREMENTS / lock), direct_requirements(LOCKS[lock]))
    stale = f"requirements/{lock} is out of date with pyproject.toml: run `make lock`"
    assert not problems, stale + "\n" + "\n".join(problems)


def _pin(version: str, extras: tuple[str, ...] = (), via: str = _VIA_PROJECT) -> Pin:
    return Pin(Version(version), frozenset(extras), 1, {via})


@pytest.mark.parametrize(
    ("requirement", "pins", "problem"),
    [
        ("cryptography>=43.0.1", [_pin("50.0.2")], None),
        ("cryptography>=43.0.1", [_pin("42.0.8")], "the lock pins cryptography==42.0.8"),
        ("pillow>=12.2.0,<14", [_pin("13.0.0"), _pin("12.2.0")], None),
        ("pillow>=12.2.0,<14", [_pin("13.0.0"), _pin("14.1.0")], "pins pillow==14.1.0"),
        ("tinydb==4.9.0", [_pin("4.9.0")], None),
        ("tinydb==4.9.0", [_pin("4.8.2")], "the lock pins tinydb==4.8.2"),
        ("psycopg[binary]==3.3.9", [_pin("3.3.9", ("binary",))], None),
        ("psycopg[binary]==3.3.9", [_pin("3.3.9")], "without ['binary']"),
        ("psycopg[binary]==3.3.9", [], "is not in the lock"),
    ],
)
def test_lock_problems_understand_ranges_and_extras(
    requirement: str, pins: list[Pin], problem: str | None
) -> None:
    req = Requirement(requirement)
    found = lock_problems({canonicalize_name(req.name): pins} if pins else {}, [req])
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and problem in found[0], found


def test_lock_problems_find_a_dependency_pyproject_dropped() -> None:
    pins = {"starlette": [_pin("1.10.0")], "anyio": [_pin("4.16.0", via="starlette")]}
    assert lock_problems(pins, []) == [
        "the lock pins starlette for pyproject.toml, which no longer asks for it"
    ]


def test_the_installed_lock_holds_the_server_and_dev_extras() -> None:
    """.venv runs the server and the tools too, not only the phone's packages."""
    assert {"server", "dev"} <= set(LOCKS[INSTALLED_LOCK])


def test_installed_lock_holds_the_build_backend() -> None:
    pins = read_lock(REQUIREMENTS / INSTALLED_LOCK)
    for line in pyproject()["build-system"]["requires"]:
        req = Requirement(line)
        entries = pins.get(canonicalize_name(req.name), [])
        assert entries and all(req.specifier.contains(p.version) for p in entries), (
            f"build-system requires {req}: pin it in the dev extra and run `make lock`"
        )


def test_read_lock_follows_uv_annotations(tmp_path: Path) -> None:
    sample = tmp_path / "sample.lock"
    sample.write_text(
        "# This file was autogenerated by uv via the following command:\n"
        "#    make lock\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        f"    --hash=sha256:{'a' * 64} \\\n"
        f"    --hash=sha256:{'b' * 64}\n"
        "    # via\n"
        "    #   pytest\n"
        f"    #   {_VIA_PROJECT}\n"
        "psycopg[binary]==3.3.9 \\\n"
        f"    --hash=sha256:{'c' * 64}\n"
        f"    # via {_VIA_PROJECT}\n"
        "six==1.17.0\n"
    )
    pins = read_lock(sample)
    assert pins["colorama"] == [Pin(Version("0.4.6"), hashes=2, via={"pytest", _VIA_PROJECT})]
    assert pins["psycopg"] == [Pin(Version("3.3.9"), frozenset({"binary"}), 1, {_VIA_PROJECT})]
    assert pins["six"] == [Pin(Version("1.17.0"))]
