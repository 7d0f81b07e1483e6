"""tools/flet_build: what flet-cli 1.0.5 itself hands to serious_python for this project."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.phone.conftest import ROOT
from tools import flet_build

PHONE = {
    "flet",
    "flet-camera",
    "flet-secure-storage",
    "flet-permission-handler",
    "httpx",
    "tinydb",
    "cryptography",
    "pillow",
}


@pytest.fixture(autouse=True)
def stand_in_manifest(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The same python-build manifest on every machine, whatever ~/.flet/cache holds."""
    from flet_cli.utils import python_versions

    monkeypatch.setenv(python_versions.MANIFEST_PATH_ENV, str(flet_build.MANIFEST))
    python_versions._load_data.cache_clear()
    yield
    python_versions._load_data.cache_clear()


def small_app(tmp_path: Path, requires_python: str = ">=3.11,<3.14", extra: str = "") -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "1"\nrequires-python = "{requires_python}"\n'
        'dependencies = ["flet==1.0.5"]\n\n'
        f'[tool.flet.app]\npath = "."\nmodule = "main"\n{extra}'
    )
    (tmp_path / "main.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("target", ["apk", "ipa"])
def test_the_project_packages_the_repo_root_with_the_phone_dependencies(target: str) -> None:
    package = flet_build.package(ROOT, target)
    assert package.app_path == ROOT and package.module == "main" and package.python == "3.13"
    assert package.platform == ("Android" if target == "apk" else "iOS")
    assert {Requirement(r).name for r in package.requirements} == PHONE
    excluded = {
        "build",
        "server",
        "tests",
        "benchmarks",
        "docs",
        "var",
        "requirements",
        "tools",
        ".venv",
        ".git",
    }
    assert excluded <= set(package.excludes)
    assert "app" not in package.excludes and "sync" not in package.excludes
    assert package.compile_app and package.compile_packages and package.cleanup_packages
    if target == "apk":  # every ABI the bundled Python has
        assert package.archs == ("arm64-v8a", "armeabi-v7a", "x86_64")


@pytest.mark.parametrize(
    ("requires_python", "bundled"),
    [(">=3.11,<3.14", "3.13"), (">=3.11,<3.13", "3.12"), (">=3.11", "3.14"), ("==3.12.*", "3.12")],
)
def test_flet_bundles_the_highest_python_requires_python_allows(
    tmp_path: Path, requires_python: str, bundled: str
) -> None:
    assert flet_build.package(small_app(tmp_path, requires_python)).python == bundled


def test_a_requires_python_flet_cannot_bundle_stops_the_build(tmp_path: Path) -> None:
    with pytest.raises(flet_build.PackagingError, match="does not match any supported"):
        flet_build.package(small_app(tmp_path, ">=3.15"))


def test_python_version_overrides_requires_python(tmp_path: Path) -> None:
    assert flet_build.package(small_app(tmp_path), python_version="3.12").python == "3.12"


def test_a_missing_entry_stops_the_build(tmp_path: Path) -> None:
    (small_app(tmp_path) / "main.py").unlink()
    with pytest.raises(flet_build.PackagingError, match="main.py not found"):
        flet_build.package(tmp_path)


def test_platform_dependencies_go_to_their_platform_only(tmp_path: Path) -> None:
    small_app(tmp_path, extra='\n[tool.flet.ios]\ndependencies = ["pyobjus"]\n')
    assert "pyobjus" in flet_build.package(tmp_path, "ipa").requirements
    assert "pyobjus" not in flet_build.package(tmp_path, "apk").requirements


def test_hidden_files_caches_and_venvs_are_left_out_by_flet(tmp_path: Path) -> None:
    small_app(tmp_path)
    (tmp_path / ".env").write_text("SECRET=1")
    (tmp_path / "lib" / "__pycache__").mkdir(parents=True)
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "pyvenv.cfg").write_text("")
    excludes = flet_build.package(tmp_path).excludes
    assert {".env", "lib/__pycache__", "venv", "build"} <= set(excludes)


@pytest.mark.parametrize("target", ["apk", "ipa"])
def test_the_icon_is_assets_icon_png(target: str) -> None:
    assert flet_build.icon(ROOT, target) == ROOT / "assets" / "icon.png"


def test_an_icon_for_one_platform_wins_for_that_platform(tmp_path: Path) -> None:
    (small_app(tmp_path) / "assets").mkdir()
    for name in ("icon.png", "icon_android.png"):
        (tmp_path / "assets" / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    assert flet_build.icon(tmp_path, "apk") == tmp_path / "assets" / "icon_android.png"
    assert flet_build.icon(tmp_path, "ipa") == tmp_path / "assets" / "icon.png"
