"""tools/serious_python: the copy, compile, cleanup and pip set-up serious_python does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools import serious_python


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def write(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x = 1\n")


def test_copy_skips_exactly_the_excluded_relative_paths(tmp_path: Path) -> None:
    source = tmp_path / "app-folder"
    write(
        source,
        "main.py",
        "server/db.py",
        "app/server/ok.py",
        "app/notes.md",
        "build/x.py",
        "docs/a.md",
    )
    serious_python.copy_app(source, tmp_path / "out", ["server", "build", "app/notes.md", "docs"])
    # an exclude names one path from the app folder's root, not a name anywhere
    assert tree(tmp_path / "out") == {"main.py", "app/server/ok.py"}


def test_copy_follows_symlinked_folders(tmp_path: Path) -> None:
    write(tmp_path / "elsewhere", "mod.py")
    (tmp_path / "app-folder").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "app-folder" / "linked")
    serious_python.copy_app(tmp_path / "app-folder", tmp_path / "out", [])
    assert tree(tmp_path / "out") == {"linked/mod.py"}


def test_compile_leaves_bytecode_only_and_drops_emptied_folders(tmp_path: Path) -> None:
    write(tmp_path, "main.py", "app/__init__.py", "app/views/__init__.py", "assets/icon.png")
    (tmp_path / "empty").mkdir()
    serious_python.compile_tree(Path(sys.executable), tmp_path)
    assert tree(tmp_path) == {
        "main.pyc",
        "app/__init__.pyc",
        "app/views/__init__.pyc",
        "assets/icon.png",
    }
    assert not (tmp_path / "empty").exists()
    done = subprocess.run(
        [sys.executable, "-c", "import main; print(main.x)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == "1\n"  # sourceless, as on the phone


def test_a_file_that_does_not_compile_stops_packaging(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def f(:\n")
    with pytest.raises(serious_python.CompileError, match="bad.py"):
        serious_python.compile_tree(Path(sys.executable), tmp_path)


def test_package_cleanup_removes_the_mobile_junk(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pkg/mod.pyc",
        "pkg/mod.pyi",
        "pkg/py.typed",
        "pkg/ext.c",
        "pkg/bin/tool",
        "pkg/__pycache__/mod.cpython-313.pyc",
        "pkg/_ext.so",
        "certifi/cacert.pem",
        "pkg-1.0.dist-info/METADATA",
        "tool.exe",
    )
    serious_python.cleanup_packages(tmp_path)
    assert tree(tmp_path) == {
        "pkg/mod.pyc",
        "pkg/_ext.so",
        "certifi/cacert.pem",
        "pkg-1.0.dist-info/METADATA",
    }


@pytest.mark.parametrize(
    ("platform", "arch", "tag", "wheel"),
    [
        ("Android", "arm64-v8a", "android-24-arm64_v8a", "android_24_arm64_v8a"),
        ("iOS", "iphoneos.arm64", "ios-13.0-arm64-iphoneos", "ios_13_0_arm64_iphoneos"),
    ],
)
def test_sitecustomize_makes_pip_see_the_phone(
    tmp_path: Path, platform: str, arch: str, tag: str, wheel: str
) -> None:
    assert serious_python.wheel_platform(platform, arch) == wheel
    (tmp_path / "sitecustomize.py").write_text(
        serious_python.sitecustomize(platform, arch, "3.13.14")
    )
    script = (
        "import json, platform, sysconfig\n"
        "from pip._vendor.packaging.markers import default_environment\n"
        "env = default_environment()\n"
        "print(json.dumps([sysconfig.get_platform(), env['platform_system'],"
        " env['python_version'], env['python_full_version'], env['platform_version']]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    got, system, version, full, platform_version = json.loads(done.stdout)
    assert (got, system, version, full) == (tag, platform, "3.13", "3.13.14")
    assert platform_version.endswith(";embedded")
