"""pip, the Pythons and the cached phone environments that `make phone-check` runs on.

pip is the dev environment's (pinned in requirements/dev.lock; 26.3 knows Android and iOS
wheel tags: `--platform android_24_arm64_v8a` also accepts API levels 23 down to 16, and
`ios_13_0_arm64_iphoneos` iOS 12.9 down to 12.0), run with no pip configuration of the machine
(`PIP_CONFIG_FILE=/dev/null`): only PyPI and the indexes named on its command line count.

A phone environment is a virtual environment of one CPython line (pyenv's, on these
machines) holding exactly the packages the phone gets, from PyPI's x86_64 wheels of the same
versions, byte-compiled and cleaned as serious_python does; the test tools live beside it in
a folder that a `.pth` file adds, so `python -S` sees the phone's packages alone. It is cached
under `.venv/phone-check/` by a hash of what it holds, and built only when that changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools import serious_python

PYPI = "https://pypi.org/simple"
# Kept from the caller's environment: how to reach PyPI, not where to look for packages.
_PIP_KEEP = {
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_RETRIES",
    "PIP_PROXY",
    "PIP_CACHE_DIR",
    "PIP_NO_CACHE_DIR",
    "PIP_TRUSTED_HOST",
}
_OFFLINE = re.compile(
    r"NewConnectionError|Max retries exceeded|Network is unreachable|Temporary failure in name "
    r"resolution|Name or service not known|ConnectTimeout|ReadTimeout|SSLError"
)
_LOCK_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


class Unavailable(Exception):
    """Something the check needs is not on this machine (a Python line, or PyPI)."""


class PipError(Exception):
    """pip failed; the message holds its error lines."""


def pip(
    args: Sequence[str], *, python: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the dev environment's pip (`--python` another interpreter), isolated from config."""
    command = [sys.executable, "-m", "pip"]
    if python is not None:
        command += ["--python", str(python)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in _PIP_KEEP}
    clean.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_REQUIRE_VIRTUALENV="false",
        PYTHONNOUSERSITE="1",
        **(env or {}),
    )
    result = subprocess.run(command + list(args), capture_output=True, text=True, env=clean)
    if result.returncode != 0:
        if _OFFLINE.search(result.stderr):  # pip ends with "no matching distribution" then too
            raise Unavailable(f"PyPI is not reachable: {last_lines(result.stderr, 2)}")
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        raise PipError("\n".join(errors) or last_lines(result.stderr, 8))
    return result


def pip_version() -> str:
    """The version of the pip that runs the check."""
    from pip import __version__

    return __version__


def find_python(line: str) -> Path:
    """A CPython interpreter of one line ("3.12"): $LIAISON_PYTHON_3_12, pyenv's, or PATH's."""
    override = os.environ.get("LIAISON_PYTHON_" + line.replace(".", "_"))
    candidates = [Path(override)] if override else []
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    pyenv = sorted(root.glob(f"{line}.*/bin/python{line}"), key=_patch_level, reverse=True)
    candidates += pyenv
    if found := shutil.which(f"python{line}"):
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.exists() and python_version(candidate).startswith(line + "."):
            return candidate
    raise Unavailable(
        f"no CPython {line} (pyenv install {line}, or set LIAISON_PYTHON_{line.replace('.', '_')})"
    )


def python_version(python: Path) -> str:
    """The full version of an interpreter, e.g. "3.12.1"."""
    out = subprocess.run(
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@dataclass(frozen=True)
class PhoneEnv:
    """A cached phone environment of one Python line."""

    python: Path  # the environment's interpreter
    site_packages: Path  # the phone's packages only
    version: str  # full Python version
    key: str


def phone_env(
    cache: Path,
    base: Path,
    pins: Mapping[str, str],
    tools: Mapping[str, str],
    *,
    compile_packages: bool,
    cleanup_packages: bool,
    constraints: Mapping[str, str] | None = None,
) -> PhoneEnv:
    """The environment with `pins` (name -> version) as the phone has them, plus test `tools`
    (their own dependencies held to `constraints`, e.g. the dev lock's versions)."""
    version = python_version(base)
    line = ".".join(version.split(".")[:2])
    recipe = {
        "python": str(base.resolve()),
        "version": version,
        "pins": sorted(pins.items()),
        "tools": sorted(tools.items()),
        "constraints": sorted((constraints or {}).items()),
        "pip": pip_version(),
        "compile": compile_packages,
        "cleanup": cleanup_packages,
        "schema": 1,
    }
    key = digest(json.dumps(recipe, sort_keys=True))
    home = cache / f"env-{line}-{key}"
    env = PhoneEnv(
        home / "bin" / "python", home / "lib" / f"python{line}" / "site-packages", version, key
    )
    if (home / "recipe.json").exists():
        return env
    for old in cache.glob(f"env-{line}-*"):
        shutil.rmtree(old, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"building-{line}-", dir=cache))
    try:
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(building)], check=True)
        python = building / "bin" / "python"
        site = building / "lib" / f"python{line}" / "site-packages"
        specs = [f"{name}=={v}" for name, v in sorted(pins.items())]
        pip(
            ["install", "--no-deps", "--only-binary", ":all:", "--index-url", PYPI, *specs],
            python=python,
        )
        shutil.rmtree(site / "flutter", ignore_errors=True)  # serious_python moves it out
        if compile_packages:
            serious_python.compile_tree(python, site)
        if cleanup_packages:
            serious_python.cleanup_packages(site)
        held = building / "constraints.txt"
        held.write_text("".join(f"{n}=={v}\n" for n, v in sorted((constraints or {}).items())))
        pip(
            [
                "install",
                "--only-binary",
                ":all:",
                "--index-url",
                PYPI,
                "--constraint",
                str(held),
                "--target",
                str(building / "test-tools"),
                *(f"{name}=={v}" for name, v in sorted(tools.items())),
            ],
            python=python,
        )
        # Only for the test run: `python -S` (the probe) does not read .pth files.
        (site / "phone-check-test-tools.pth").write_text(str(home / "test-tools") + "\n")
        (building / "recipe.json").write_text(json.dumps(recipe, indent=1))
        # A venv's interpreter link and pyvenv.cfg do not name its folder: a rename is safe.
        building.rename(home)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        if (home / "recipe.json").exists():  # another run built the same environment meanwhile
            return env
        raise
    return env


def read_lock(path: Path) -> dict[str, list[str]]:
    """Canonical name -> the versions a uv lock file pins (a universal lock may pin several)."""
    from packaging.utils import canonicalize_name

    pins: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if entry := _LOCK_ENTRY.match(line):
            pins.setdefault(canonicalize_name(entry.group(1)), []).append(entry.group(2))
    return pins


def digest(*parts: str | bytes, length: int = 16) -> str:
    """A short sha256 of the parts."""
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()[:length]


def tree_digest(paths: Iterable[Path], root: Path) -> str:
    """A digest of files' relative paths and contents."""
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()[:16]


def last_lines(text: str, count: int) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def _patch_level(path: Path) -> tuple[int, ...]:
    version = path.parent.parent.name
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))
