"""What serious_python's `package` command (run by `flet build`) does, redone in Python.

serious_python (bin/package_command.dart) takes the arguments flet-cli builds (tools/flet_build):

1. copies the app folder to a staging folder, skipping every entry whose path relative to the
   app folder is exactly one of the `--exclude` paths (at any depth, symlinks followed);
2. with `--compile-app`, runs `python -m compileall -b` on it with the bundled Python's build
   interpreter and deletes every `*.py`, then removes folders left empty;
3. for each architecture, runs that interpreter's `pip install --upgrade --only-binary :all:
   --extra-index-url https://pypi.flet.dev --target site-packages/<arch> <requirements>` with a
   `sitecustomize.py` that makes pip see the phone (`sysconfig.get_platform()` returns the tag
   below, `platform.system()` "Android" or "iOS");
4. with `--compile-packages` compiles site-packages the same way, and with `--cleanup-packages`
   deletes the junk globs below from it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

MOBILE_INDEX_URL = "https://pypi.flet.dev"
# serious_python's `platforms` table: architecture -> the platform tag its sitecustomize fakes.
ARCHS: dict[str, dict[str, str]] = {
    "Android": {
        "arm64-v8a": "android-24-arm64_v8a",
        "armeabi-v7a": "android-24-armeabi_v7a",
        "x86_64": "android-24-x86_64",
    },
    "iOS": {
        "iphoneos.arm64": "ios-13.0-arm64-iphoneos",
        "iphonesimulator.arm64": "ios-13.0-arm64-iphonesimulator",
        "iphonesimulator.x86_64": "ios-13.0-x86_64-iphonesimulator",
    },
}
_JUNK_SUFFIXES = (".c", ".h", ".cpp", ".hpp", ".typed", ".pyi", ".pxd", ".pyx", ".a", ".pdb")
JUNK_SUFFIXES_MOBILE = (*_JUNK_SUFFIXES, ".exe", ".dll")
JUNK_DIRS_MOBILE = ("__pycache__", "bin")


def wheel_platform(platform: str, arch: str) -> str:
    """The wheel platform tag pip derives from the faked sysconfig platform."""
    return ARCHS[platform][arch].replace("-", "_").replace(".", "_")


def copy_app(source: Path, dest: Path, excludes: Iterable[str]) -> None:
    """Step 1: copy `source` into `dest` (created) minus the excluded relative paths."""
    skip = {os.path.normpath(e.strip()) for e in excludes}

    def copy(directory: Path, target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if os.path.relpath(entry.path, source) in skip:
                    continue
                if entry.is_dir():  # follows symlinks, as Dart's Directory.list() does
                    copy(Path(entry.path), target / entry.name)
                elif entry.is_file():
                    shutil.copy2(entry.path, target / entry.name)

    copy(source, dest)


def compile_tree(python: Path, directory: Path) -> None:
    """Steps 2 and 4: byte-compile next to the sources, then delete the sources."""
    result = subprocess.run(
        [str(python), "-m", "compileall", "-b", "-q", str(directory)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise CompileError(f"compileall failed in {directory}:\n{result.stdout}{result.stderr}")
    cleanup(directory, suffixes=(".py",), names=())


def cleanup(directory: Path, suffixes: Sequence[str], names: Sequence[str]) -> None:
    """Delete files by suffix and files or folders by name, then folders left empty."""

    def walk(folder: Path) -> bool:
        empty = True
        for entry in sorted(folder.iterdir()):
            if entry.name in names or entry.name.endswith(tuple(suffixes)):
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
            elif entry.is_dir() and not entry.is_symlink():
                if walk(entry):
                    entry.rmdir()
                else:
                    empty = False
            else:
                empty = False
        return empty

    walk(directory)


def cleanup_packages(directory: Path) -> None:
    """Step 4's `--cleanup-packages` for Android and iOS."""
    cleanup(directory, JUNK_SUFFIXES_MOBILE, JUNK_DIRS_MOBILE)


def sitecustomize(platform: str, arch: str, python_full_version: str) -> str:
    """A sitecustomize.py that makes pip see the phone as serious_python's does.

    serious_python runs pip with the bundled Python's own build interpreter; pip here runs on
    the dev interpreter instead, so this one also reports the bundled Python's version, which
    is what `python_version` markers are evaluated against.
    """
    tag = ARCHS[platform][arch]
    parts = tag.split("-")
    lines = [
        "# Written by make phone-check (tools/serious_python.py), after serious_python's.",
        "import collections, platform, sys, sysconfig",
        f"platform.system = lambda: {platform!r}",
        f"sysconfig.get_platform = lambda: {tag!r}",
        "_version = platform.version()",
        "platform.version = lambda: _version + ';embedded'",
        f"platform.python_version = lambda: {python_full_version!r}",
        f"platform.python_version_tuple = lambda: tuple({python_full_version!r}.split('.'))",
    ]
    if platform == "Android":  # pip's tag code asks for the API level
        lines += [
            "AndroidVer = collections.namedtuple('AndroidVer', ['release', 'api_level', "
            "'manufacturer', 'model', 'device', 'is_emulator'])",
            f"platform.android_ver = lambda: AndroidVer('', {int(parts[1])}, '', '', '', False)",
        ]
    else:
        lines += [
            "IOSVersionInfo = collections.namedtuple('IOSVersionInfo', ['system', 'release', "
            "'model', 'is_simulator'])",
            f"platform.ios_ver = lambda *a, **k: IOSVersionInfo('iOS', {parts[1]!r}, 'iPhone', "
            f"{'simulator' in parts[3]})",
            # serious_python also sets sys.implementation._multiarch, which works on the macOS
            # hosts that build for iOS; on Linux it breaks sysconfig, and `--platform` (which
            # the check passes) makes pip take the tags from the command line anyway.
        ]
    return "\n".join(lines) + "\n"


class CompileError(Exception):
    """compileall reported a file it could not compile (serious_python stops there too)."""
