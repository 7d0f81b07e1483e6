"""tools/mobile_index: the stand-in for Flet's mobile index, resolved against by real pip."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tools import mobile_index, phone_env
from tools.mobile_index import Row
from tools.phone_check import MOBILE_INDEX_TSV, SHARED_MOBILE_INDEX_TSV, Options

ROWS = [
    Row("android", "3.13", "cryptography", "43.0.1"),
    Row("android", "3.13", "cffi", "2.0.0"),
    Row("android", "3.14", "cryptography", "48.0.0"),
    Row("ios", "3.13", "Pillow", "12.2.0"),
    Row("android", "3.13", "zope.interface", "8.5"),
]
PLATFORMS = {"android": ["android_24_arm64_v8a"], "ios": ["ios_13_0_arm64_iphoneos"]}
REQUIRES = {"cryptography==43.0.1": ["cffi>=1.12; platform_python_implementation != 'PyPy'"]}


def test_the_projects_copy_of_the_listing_is_the_shared_one() -> None:
    # The project carries its own copy (a clean clone has nothing beside it); where the
    # shared listing is at hand (a development machine), they must not have drifted apart.
    if SHARED_MOBILE_INDEX_TSV.is_file():
        assert MOBILE_INDEX_TSV.read_bytes() == SHARED_MOBILE_INDEX_TSV.read_bytes(), (
            "tools/mobile-index.tsv differs from ../shared/mobile-index.tsv: copy it over"
        )
    assert MOBILE_INDEX_TSV.is_file()


def test_the_listing_has_the_versions_the_phone_gets() -> None:
    tsv = Options().tsv
    if not tsv.is_file():
        missing_service(f"no {tsv}")
    rows = mobile_index.read_tsv(tsv)
    for line in ("3.12", "3.13"):
        for target in ("android", "ios"):
            found = mobile_index.versions(rows, target, line)
            assert found["cryptography"] == "43.0.1" and found["pillow"] == "12.2.0"
    assert mobile_index.versions(rows, "android", "3.14")["cryptography"] == "48.0.0"


@pytest.mark.parametrize(
    ("row", "platform", "name"),
    [
        (ROWS[1], "android_24_arm64_v8a", "cffi-2.0.0-cp313-cp313-android_24_arm64_v8a"),
        (ROWS[3], "ios_13_0_arm64_iphoneos", "pillow-12.2.0-cp313-cp313-ios_13_0_arm64_iphoneos"),
        (ROWS[4], "android_24_arm64_v8a", "zope_interface-8.5-cp313-cp313-android_24_arm64_v8a"),
    ],
)
def test_wheels_are_named_as_the_index_names_them(row: Row, platform: str, name: str) -> None:
    assert mobile_index.wheel_filename(row.name, row.version, row.python, platform) == name + ".whl"


def test_a_placeholder_carries_the_releases_requires_dist(tmp_path: Path) -> None:
    simple = mobile_index.build(ROWS, tmp_path, PLATFORMS, REQUIRES)
    page = (simple / "cryptography" / "index.html").read_text()
    assert "cryptography-43.0.1-cp313-cp313-android_24_arm64_v8a.whl" in page
    assert "sha256=" in page and (simple / "zope-interface" / "index.html").exists()
    wheel = tmp_path / "files" / "cryptography-43.0.1-cp313-cp313-android_24_arm64_v8a.whl"
    metadata = zipfile.ZipFile(wheel).read("cryptography-43.0.1.dist-info/METADATA").decode()
    assert "Requires-Dist: cffi>=1.12" in metadata and "Version: 43.0.1" in metadata


def resolve(simple: Path, platform: str, python: str, *requirements: str) -> dict[str, str]:
    """What pip would install from the stand-in alone (no PyPI: offline)."""
    report = simple.parent / "report.json"
    phone_env.pip(
        [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--only-binary",
            ":all:",
            "--platform",
            platform,
            "--python-version",
            python,
            "--implementation",
            "cp",
            "--index-url",
            simple.as_uri(),
            "--report",
            str(report),
            *requirements,
        ]
    )
    items = json.loads(report.read_text())["install"]
    return {i["metadata"]["name"]: i["metadata"]["version"] for i in items}


def test_pip_resolves_a_phone_release_and_its_requirements_from_the_stand_in(
    tmp_path: Path,
) -> None:
    simple = mobile_index.build(ROWS, tmp_path, PLATFORMS, REQUIRES)
    assert resolve(simple, "android_24_arm64_v8a", "3.13", "cryptography>=43") == {
        "cryptography": "43.0.1",
        "cffi": "2.0.0",
    }
    assert resolve(simple, "android_24_arm64_v8a", "3.14", "cryptography>=43") == {
        "cryptography": "48.0.0"
    }


@pytest.mark.parametrize(
    ("platform", "python", "requirement"),
    [
        ("android_24_arm64_v8a", "3.13", "cryptography==50.0.2"),  # not on the index
        ("android_24_arm64_v8a", "3.12", "cryptography>=43"),  # not for that Python
        ("ios_13_0_arm64_iphoneos", "3.13", "cryptography>=43"),  # not for that platform
        ("android_24_arm64_v8a", "3.13", "pillow"),
    ],
)
def test_pip_finds_nothing_the_index_lacks(
    tmp_path: Path, platform: str, python: str, requirement: str
) -> None:
    simple = mobile_index.build(ROWS, tmp_path, PLATFORMS, REQUIRES)
    with pytest.raises(phone_env.PipError, match="No matching distribution"):
        resolve(simple, platform, python, requirement)


def test_learnt_requires_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "requires.json"
    mobile_index.save_requires(path, REQUIRES)
    assert mobile_index.load_requires(path) == REQUIRES
    assert mobile_index.requires_key("Pillow", "12.2.0") == "pillow==12.2.0"
