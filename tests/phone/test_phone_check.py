"""`make phone-check` fails on each way the phone package can break (a broken copy each)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.phone.conftest import ANDROID, edit, ran
from tools import phone_check
from tools.phone_check import CheckFailed, Options, check, check_resolutions
from tools.resolution import TARGETS, Resolution

IOS = TARGETS[1]


def fails(options: Options, *patterns: str) -> str:
    """Run the check, expecting it to fail with a message holding every pattern.

    When it passes only because it skipped a step (no PyPI, no Python 3.13), the test skips,
    or fails under LIAISON_REQUIRE_ALL=1.
    """
    try:
        report = check(options)
    except CheckFailed as failure:
        message = str(failure)
        for pattern in patterns:
            assert pattern in message, message
        return message
    for reason in report.skipped:
        missing_service(reason)
    pytest.fail("the check passed")


# Step 1 and 2: flet-cli's view of pyproject.toml


@pytest.mark.parametrize(
    ("package", "extra"), [("starlette==1.10.0", "server"), ("flet-web==1.0.5", "dev")]
)
def test_a_server_or_dev_package_in_the_phone_dependencies_fails(
    project: Path, options: Options, package: str, extra: str
) -> None:
    pyproject = project / "pyproject.toml"
    edit(pyproject, r"dependencies = \[\n", f'dependencies = [\n    "{package}",\n')
    fails(options, f"{package} (the {extra} extra)", "only the server or development use")


def test_requires_python_that_bundles_an_untested_python_fails(
    project: Path, options: Options
) -> None:
    edit(project / "pyproject.toml", r"requires-python = .*\n", 'requires-python = ">=3.11"\n')
    fails(options, "flet build bundles Python 3.14", "does not test")


def test_a_missing_entry_module_fails(project: Path, options: Options) -> None:
    (project / "main.py").unlink()
    fails(options, "flet build apk stops", "main.py not found")


def test_a_missing_icon_fails(project: Path, options: Options) -> None:
    (project / "assets" / "icon.png").unlink()
    fails(options, "finds no icon.png")


# Step 3: what would be packaged


def test_server_code_left_in_the_package_fails(project: Path, options: Options) -> None:
    edit(project / "pyproject.toml", r'    "server",\n', "")
    (project / "server").mkdir()
    (project / "server" / "__init__.py").write_text("")
    fails(options, "flet build would also package server", "[tool.flet.app].exclude")


def test_a_stray_file_at_the_root_fails(project: Path, options: Options) -> None:
    (project / "notes.txt").write_text("patient list, do not ship")
    fails(options, "flet build would also package notes.txt")


def test_an_app_module_importing_the_server_fails(project: Path, options: Options) -> None:
    (project / "app" / "export.py").write_text(
        "def export():\n    from server.db import Database\n    return Database\n"
    )
    fails(options, "app/export.py imports server.db")


def test_stale_package_metadata_fails(project: Path, options: Options) -> None:
    edit(project / "pyproject.toml", r'version = "0.1.0"', 'version = "0.2.0"')
    fails(options, "liaison.egg-info is stale", "make install")


# Step 4: resolution against PyPI and the mobile index


@pytest.mark.parametrize(
    ("pin", "line"),
    [
        ("cryptography==50.0.2", "cryptography==50.0.2"),  # PyPI's newest: no Android build
        ("pillow==13.0.0", "pillow==13.0.0"),  # PyPI has iOS wheels of it, not Android ones
    ],
)
def test_a_version_missing_from_the_mobile_index_fails(
    project: Path, options: Options, pin: str, line: str
) -> None:
    name = pin.split("==")[0]
    edit(project / "pyproject.toml", rf'"{name}>=[^"]*"', f'"{pin}"')
    message = fails(options, "android Python 3.13", line)
    assert "No matching distribution" in message or "Could not find a version" in message


def test_a_server_package_pulled_in_by_a_dependency_fails() -> None:
    resolution = Resolution(
        ANDROID, "3.13", {"flet": ("1.0.5", "PyPI"), "sqlalchemy": ("2.0.50", "index")}
    )
    with pytest.raises(CheckFailed, match="would install sqlalchemy"):
        check_resolutions([resolution], {"sqlalchemy": "server"}, Options(say=lambda _: None))


def test_a_version_no_test_run_covers_fails() -> None:
    android = Resolution(ANDROID, "3.13", {"pillow": ("12.2.0", "index")})
    ios = Resolution(IOS, "3.13", {"pillow": ("13.1.0", "PyPI binary")})
    with pytest.raises(CheckFailed) as failure:
        check_resolutions([android, ios], {}, Options(say=lambda _: None))
    assert "ios Python 3.13: pillow==13.1.0" in str(failure.value)
    assert "tested: 12.2.0, 13.0.0" in str(failure.value)  # the phone's and dev.lock's


def test_an_untested_line_may_get_other_versions() -> None:
    """3.14 is resolved to see what moving to it means, but it is not bundled nor tested."""
    ios = Resolution(IOS, "3.14", {"cryptography": ("48.0.0", "index")})
    check_resolutions([ios], {}, Options(say=lambda _: None))


# Step 5: the packaged app on the phone's Python


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("import app.no_such_module\n", "import main"),
        (
            "import flet as ft\nfrom app.main import main\nft.run(main)\n",
            "importing main started the app",
        ),
        (
            "from app.main import run_web\nif __name__ == '__main__':\n    run_web()\n",
            "should call flet.run(main) once",
        ),
    ],
    ids=["cannot import", "starts on import", "serves a browser"],
)
def test_an_entry_that_does_not_start_the_phone_app_fails(
    project: Path, options: Options, android_313: list[Resolution], entry: str, problem: str
) -> None:
    (project / "main.py").write_text(entry)
    options.resolved = android_313
    message = fails(options, problem)
    assert "cannot run the packaged app" in message


@pytest.mark.parametrize(
    ("module", "problem"),
    [
        ("import sqlalchemy\n", "import app.report_export"),  # a server package
        ("import playwright\n", "import app.report_export"),  # a dev tool
        ("from app import no_such_module\n", "import app.report_export"),
    ],
)
def test_a_module_that_cannot_import_on_the_phone_fails(
    project: Path, options: Options, android_313: list[Resolution], module: str, problem: str
) -> None:
    (project / "app" / "report_export.py").write_text(module)
    options.resolved = android_313
    fails(options, problem)


def test_a_module_that_does_not_compile_fails(project: Path, options: Options) -> None:
    (project / "sync" / "broken.py").write_text("def f(:\n")
    fails(options, "sync/broken.py does not compile")


def test_the_project_as_it_is_passes(options: Options, android_313: list[Resolution]) -> None:
    """The same copy, unbroken, passes: each failure above is the breakage's doing."""
    options.resolved = android_313
    report = check(options)
    ran(report, "Python 3.13")
    assert report.modules["3.13"] > 40


def test_the_tested_lines_run_side_by_side_and_either_can_fail(
    options: Options, android_313: list[Resolution], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steps 5 and 6 of the two lines overlap (each would wait for ever on the other if they
    ran one after the other), and one line's failure fails the whole check."""
    both_running = threading.Barrier(2, timeout=30)
    ran_lines: list[str] = []

    def steps(line: str, *args: object) -> None:
        both_running.wait()  # BrokenBarrierError after 30 s if the lines ran in turn
        ran_lines.append(line)
        if line == "3.12":
            raise CheckFailed("3.12 broke")

    monkeypatch.setattr(phone_check, "phone_python_steps", steps)
    options.resolved = android_313
    options.tested_pythons = ("3.12", "3.13")
    with pytest.raises(CheckFailed, match="3.12 broke"):
        check(options)
    assert sorted(ran_lines) == ["3.12", "3.13"]
