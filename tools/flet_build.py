"""What `flet build apk|aab|ipa` does with the Python app, computed by flet-cli itself.

flet-cli 1.0.5 (`flet_cli/commands/build_base.py`) turns pyproject.toml into one command,
`dart run serious_python:main package <app folder> -p Android|iOS --python-version X.Y
-r <dependency> ... --exclude <path> ... --compile-app --compile-packages --cleanup-packages`,
and serious_python then copies the app and pip-installs the dependencies. This module runs
flet-cli's own code up to that command and captures it instead of running Dart:

- `initialize_command` -> `resolve_python_version(--python-version, requires-python)`: the
  bundled Python (python-build's manifest lists the supported lines; see `MANIFEST`),
- `validate_entry_point`: the app folder `[tool.flet.app].path` and its `<module>.py`,
- `package_python_app`: the `-r` list (`get_project_dependencies` of `[project].dependencies`
  plus `[tool.flet.<platform>].dependencies`), the `--exclude` list ("build", `app.exclude`,
  `find_default_excludes`) and the compile/cleanup flags,
- `find_platform_image`: the icon `customize_icons` would take from `<app folder>/assets`.

It drives flet-cli's internals, which is why flet-cli is pinned: an upgrade that changes them
fails here loudly, and `make phone-check` has to be looked at again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# The python-build manifest that flet-cli downloads from GitHub on first use (cached under
# ~/.flet/cache); when no copy is cached, this stand-in (serious_python 4.3's lines) is used.
MANIFEST = Path(__file__).with_name("python-build-manifest.json")
TARGETS = ("apk", "aab", "ipa")


class PackagingError(Exception):
    """`flet build` would stop before packaging, with this message."""


@dataclass(frozen=True)
class Package:
    """The serious_python `package` invocation flet-cli builds for one target."""

    target: str  # apk, aab, ipa
    platform: str  # serious_python's -p: Android or iOS
    python: str  # the bundled Python line, e.g. "3.13"
    app_path: Path  # the folder serious_python copies
    module: str  # run as __main__ on the phone
    archs: tuple[str, ...]  # serious_python's --arch; empty: all of the platform's
    requirements: tuple[str, ...]  # each passed to pip as is
    excludes: tuple[str, ...]  # relative paths that are not copied
    compile_app: bool
    compile_packages: bool
    cleanup_app: bool
    cleanup_packages: bool
    argv: tuple[str, ...]  # the whole command, for the record
    log: str  # what flet-cli printed meanwhile


def package(root: Path, target: str = "apk", python_version: str | None = None) -> Package:
    """The packaging step of `flet build <target>` run in `root`, without Flutter or Dart."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    from flet_cli.commands.build import Command
    from flet_cli.commands.flutter_base import console
    from flet_cli.utils.pyproject_toml import load_pyproject_toml
    from flet_cli.utils.python_versions import (
        UnsupportedPythonVersionError,
        resolve_python_version,
    )

    parser = argparse.ArgumentParser()
    command: Any = Command(parser)
    args = [target, str(root)] + (["--python-version", python_version] if python_version else [])
    command.options = parser.parse_args(args)
    captured: dict[str, Any] = {}

    def cleanup(exit_code: int, message: Any = None, no_border: bool = False) -> None:
        raise PackagingError(str(message or f"flet build stopped with exit code {exit_code}"))

    def run(
        argv: Sequence[str],
        cwd: str,
        env: dict[str, str] | None = None,
        capture_output: bool = True,
    ) -> SimpleNamespace:
        captured["argv"] = [str(a) for a in argv]
        (command.build_dir / "python-app").mkdir(exist_ok=True)
        return SimpleNamespace(returncode=0, stdout="", stderr="")

    with tempfile.TemporaryDirectory(prefix="flet-build-") as tmp, console.capture() as log:
        # What initialize_command sets, minus the Flutter SDK (build_dir lives in tmp).
        command.cleanup, command.run = cleanup, run
        command.update_status = lambda status: None
        command.no_rich_output, command.verbose = True, 0
        command.emojis = {"checkmark": "ok"}
        command.dart_exe = "dart"
        command.target_platform = target
        command.package_platform = command.platforms[target]["package_platform"]
        command.config_platform = command.platforms[target]["config_platform"]
        command.python_app_path = root.resolve()
        command.get_pyproject = load_pyproject_toml(command.python_app_path)
        with _manifest():
            try:
                command.python_release = resolve_python_version(
                    command.options.python_version, command.get_pyproject
                )
            except UnsupportedPythonVersionError as exc:
                raise PackagingError(str(exc)) from exc
        command.build_dir = Path(tmp) / "build"
        command.build_dir.mkdir()
        command.flutter_dir = command.build_dir / "flutter"
        command.flutter_packages_dir = command.build_dir / "flutter-packages"
        command.flutter_packages_temp_dir = command.build_dir / "flutter-packages-temp"
        command.validate_entry_point()
        # setup_template_data's target_arch: on Android, every ABI the bundled Python has.
        arch = command.options.target_arch or command.get_platform_setting("target_arch")
        arch = arch if isinstance(arch, list) else [arch] if isinstance(arch, str) else []
        if command.package_platform == "Android" and not arch:
            arch = list(command.python_release.android_abis)
        command.template_data = {
            "options": {"target_arch": arch},
            "bundle_id": "org.example.phone-check",
        }
        command.package_python_app()
    return _parse(target, captured["argv"], command.python_module_name, log.get())


def icon(root: Path, target: str = "apk") -> Path | None:
    """The icon `flet build <target>` would generate the launcher icons from, if any."""
    from flet_cli.commands.build import Command
    from flet_cli.commands.build_base import ICON_PLATFORMS
    from flet_cli.utils.hash_stamp import HashStamp
    from flet_cli.utils.pyproject_toml import load_pyproject_toml

    get_pyproject = load_pyproject_toml(root.resolve())
    assets = root.resolve().joinpath(str(get_pyproject("tool.flet.app.path") or "."), "assets")
    if not assets.exists():
        return None
    this = SimpleNamespace(target_platform=target, verbose=0)
    stamp = HashStamp(Path(tempfile.gettempdir()) / "phone-check-icon-stamp")
    name = None
    for image in (f"icon_{ICON_PLATFORMS[target]}", "icon"):  # customize_icons' order
        name = name or Command.find_platform_image(this, assets, image, stamp)
    return assets / name if name else None


def _parse(target: str, argv: list[str], module: str, log: str) -> Package:
    """Read serious_python's `package` arguments back (its -r and --exclude repeat)."""
    rest = argv[argv.index("package") + 1 :]
    app_path, platform, python, archs = Path(rest[0]), "", "", ""
    requirements: list[str] = []
    excludes: list[str] = []
    flags: set[str] = set()
    i = 1
    while i < len(rest):
        option = rest[i]
        if option in {"-p", "--platform", "--python-version", "-r", "--exclude", "--arch"}:
            value = rest[i + 1]
            if option in {"-p", "--platform"}:
                platform = value
            elif option == "--python-version":
                python = value
            elif option == "-r":
                requirements.append(value)
            elif option == "--exclude":
                excludes.append(value)
            elif option == "--arch":
                archs = value
            i += 2
        else:
            flags.add(option)
            i += 1
    return Package(
        target=target,
        platform=platform,
        python=python,
        app_path=app_path,
        module=module,
        archs=tuple(a for a in archs.split(",") if a),
        requirements=tuple(requirements),
        excludes=tuple(excludes),
        compile_app="--compile-app" in flags,
        compile_packages="--compile-packages" in flags,
        cleanup_app="--cleanup-app" in flags,
        cleanup_packages="--cleanup-packages" in flags,
        argv=tuple(argv),
        log=log,
    )


@contextlib.contextmanager
def _manifest() -> Iterator[None]:
    """Point flet-cli at the stand-in manifest unless it has one (env or cache)."""
    from flet_cli.utils import python_versions

    cached = (
        Path(os.environ.get("FLET_CACHE_DIR") or Path.home() / ".flet" / "cache")
        / "python-build"
        / f"manifest-{python_versions._resolve_release_date()}.json"
    )
    variable = python_versions.MANIFEST_PATH_ENV
    if os.environ.get(variable) or cached.exists():
        yield
        return
    os.environ[variable] = str(MANIFEST)
    python_versions._load_data.cache_clear()
    try:
        yield
    finally:
        del os.environ[variable]
        python_versions._load_data.cache_clear()
