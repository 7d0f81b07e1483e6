"""`make phone-check`: `flet build apk/ipa`'s Python packaging, reproduced without Flutter.

Steps (each fails with its reason; README, "Phones", says what this proves and what not):

1. packaging: flet-cli's own code computes what `flet build apk` and `flet build ipa` hand to
   serious_python (tools/flet_build): the bundled Python, the entry module, the dependency
   list, the excludes, the icon. The bundled Python must be one this check tests.
2. dependencies: none of them is a server or dev package (the `server` and `dev` extras).
3. staging: the app folder copied with flet's excludes (tools/serious_python) holds exactly
   app/, sync/, assets/ (with the icon), the entry and current package metadata; no server.
4. resolution: pip resolves the dependencies for Android arm64 and iOS arm64 on Python 3.12,
   3.13 and 3.14 against PyPI plus a stand-in of Flet's mobile index (tools/resolution).
   Nothing server-side comes in, and on the tested lines every version is one a test run
   covers (the phone environment below, or requirements/dev.lock).
5. imports: on each tested line, in an environment holding only what Android resolved
   (tools/phone_env), the byte-compiled staged app: the entry imports without starting the
   app and as __main__ calls flet.run(main); every staged module imports; the version comes
   from the packaged metadata (tools/phone_probe).
6. device tests: tests/app and tests/sync minus what needs the server or a browser, on the
   staged app in that environment (tools/device_tests).

A missing Python line, mobile index listing or PyPI skips what needs it, with the reason;
with LIAISON_REQUIRE_ALL=1 (CI) that is a failure. Environments, the index, learnt metadata
and passing test runs are cached under .venv/phone-check/ by a hash of their inputs.
Steps 5 and 6 run for the tested Python lines side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tools import device_tests, flet_build, phone_env, resolution, serious_python
from tools.phone_env import PipError, Unavailable
from tools.resolution import TARGETS, Resolution, Target

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".venv" / "phone-check"
# The listing of Flet's mobile index, kept in the project (a clean clone has nothing beside it);
# tests/phone/test_mobile_index.py checks it against ../shared/mobile-index.tsv when that exists.
MOBILE_INDEX_TSV = ROOT / "tools" / "mobile-index.tsv"
SHARED_MOBILE_INDEX_TSV = ROOT.parent / "shared" / "mobile-index.tsv"
RESOLVED_PYTHONS = ("3.12", "3.13", "3.14")
TESTED_PYTHONS = ("3.12", "3.13")  # phone environments, imports and device tests
TEST_TOOLS = ("pytest", "pytest-timeout", "hypothesis")
# All the packaged app may hold at its top level, besides the entry module.
STAGED_TOP = {"app", "sync", "assets", "liaison.egg-info"}
STAGED_REQUIRED = (
    "app/__init__.py",
    "sync/__init__.py",
    "assets/icon.png",
    "liaison.egg-info/PKG-INFO",
)
SERVER_MODULES = {"server"}
SHOWN = ("cffi", "cryptography", "msgpack", "pillow")  # the binary packages, in step 5's line


class CheckFailed(Exception):
    """The packaged app would not build, install or start, for the reason given."""


@dataclass
class Options:
    root: Path = ROOT
    cache: Path = CACHE
    tsv: Path = field(
        default_factory=lambda: Path(os.environ.get("LIAISON_MOBILE_INDEX_TSV") or MOBILE_INDEX_TSV)
    )
    resolve_pythons: Sequence[str] = RESOLVED_PYTHONS
    tested_pythons: Sequence[str] = TESTED_PYTHONS
    targets: Sequence[Target] = TARGETS
    tests: bool = True
    resolved: Sequence[Resolution] | None = None  # step 4's result given (tests reuse one)
    require_all: bool = field(default_factory=lambda: os.environ.get("LIAISON_REQUIRE_ALL") == "1")
    say: Callable[[str], None] = print


@dataclass
class Report:
    packages: dict[str, flet_build.Package] = field(default_factory=dict)
    resolutions: list[Resolution] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    modules: dict[str, int] = field(default_factory=dict)  # Python line -> modules imported
    tests: dict[str, str] = field(default_factory=dict)  # Python line -> pytest's summary


def check(options: Options) -> Report:
    """Run every step; raises CheckFailed at the first that fails."""
    report = Report()
    pyproject = tomllib.loads((options.root / "pyproject.toml").read_text())
    packaging_step(options, report, pyproject)
    off_phone = dependencies_step(options, report, pyproject)
    options.cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="work-", dir=options.cache))
    try:
        stage = staging_step(options, report, pyproject, work)
        try:
            report.resolutions = list(
                options.resolved
                or resolution.resolve_all(
                    report.packages,
                    options.targets,
                    options.resolve_pythons,
                    options.tsv,
                    options.cache,
                )
            )
        except Unavailable as exc:
            _skip(options, report, f"resolution: {exc}")
        if report.resolutions:
            check_resolutions(report.resolutions, off_phone, options)
        android = {r.python: r for r in report.resolutions if r.target.name == "android"}
        # One thread per Python line: each waits on its own pip, probe and pytest processes,
        # so two lines take the time of one on a machine with two cores.
        with ThreadPoolExecutor(max_workers=len(options.tested_pythons) or 1) as pool:
            runs = [
                pool.submit(
                    phone_python_steps,
                    line,
                    android.get(line),
                    stage,
                    work,
                    report,
                    options,
                    pyproject,
                )
                for line in options.tested_pythons
            ]
            for run in runs:
                run.result()  # the first line's failure first
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if report.skipped:
        options.say("phone-check: SKIPPED " + "; ".join(report.skipped))
    return report


def packaging_step(options: Options, report: Report, pyproject: dict[str, Any]) -> None:
    """1. What flet-cli hands to serious_python, per target; the bundled Python; the icon."""
    for target in options.targets:
        try:
            report.packages[target.name] = flet_build.package(options.root, target.flet_target)
        except flet_build.PackagingError as exc:
            raise CheckFailed(f"flet build {target.flet_target} stops: {exc}") from exc
    first = next(iter(report.packages.values()))
    requires_python = pyproject["project"].get("requires-python")
    if first.python not in options.tested_pythons:
        raise CheckFailed(
            f"flet build bundles Python {first.python} (requires-python = "
            f"{requires_python!r}), which phone-check does not test "
            f"({', '.join(options.tested_pythons)})"
        )
    for target in options.targets:
        found = flet_build.icon(options.root, target.flet_target)
        if found is None or found.suffix != ".png":
            raise CheckFailed(
                f"flet build {target.flet_target} finds no icon.png in "
                f"{first.app_path / 'assets'}: it would ship Flet's own icon"
            )
    options.say(
        f"[1/6] packaging (flet-cli): bundles Python {first.python} (requires-python "
        f"{requires_python!r}), runs {first.module}.py from "
        f"{_relative(first.app_path, options.root)}, icon assets/icon.png; "
        f"dependencies: {', '.join(first.requirements)}"
    )


def dependencies_step(
    options: Options, report: Report, pyproject: dict[str, Any]
) -> dict[str, str]:
    """2. No server or dev package among the phone's dependencies; returns those packages."""
    extras = pyproject["project"].get("optional-dependencies", {})
    off_phone = {
        str(canonicalize_name(Requirement(r).name)): extra
        for extra in ("server", "dev")
        for r in extras.get(extra, [])
    }
    for target, package in report.packages.items():
        bad = [
            f"{r} (the {off_phone[n]} extra)"
            for r in package.requirements
            if (n := canonicalize_name(Requirement(r).name)) in off_phone
        ]
        if bad:
            raise CheckFailed(
                f"the phone's dependencies ({target}) include what only the "
                f"server or development use: {', '.join(bad)}; keep it in "
                f"[project.optional-dependencies] only"
            )
    options.say(
        f"[2/6] dependencies: none from the server or dev extras ({', '.join(sorted(off_phone))})"
    )
    return off_phone


def staging_step(options: Options, report: Report, pyproject: dict[str, Any], work: Path) -> Path:
    """3. The app folder as serious_python copies it, for each target; returns Android's."""
    stages = {}
    for target, package in report.packages.items():
        stage = work / f"staged-{target}"
        serious_python.copy_app(package.app_path, stage, package.excludes)
        check_stage(stage, package.module, pyproject["project"]["version"])
        stages[target] = stage
    names = ", ".join(sorted(p.name for p in stages["android"].iterdir()))
    excluded = ", ".join(report.packages["android"].excludes)
    options.say(f"[3/6] staged app: {names} (excluded: {excluded})")
    return stages["android"]


def check_stage(stage: Path, module: str, version: str) -> None:
    """Exactly the app's folders, the entry and current metadata; nothing of the server."""
    entry = f"{module}.py"
    extra = sorted(p.name for p in stage.iterdir() if p.name not in STAGED_TOP | {entry})
    if extra:
        raise CheckFailed(
            f"flet build would also package {', '.join(extra)}: add it to "
            f"[tool.flet.app].exclude in pyproject.toml (or, if the phone needs "
            f"it, to STAGED_TOP in tools/phone_check.py)"
        )
    missing = [p for p in (entry, *STAGED_REQUIRED) if not (stage / p).is_file()]
    if missing:
        hint = (
            " (`make install` writes liaison.egg-info)"
            if any("egg-info" in m for m in missing)
            else ""
        )
        raise CheckFailed(f"the packaged app lacks {', '.join(missing)}{hint}")
    if f"\nVersion: {version}\n" not in (stage / "liaison.egg-info" / "PKG-INFO").read_text():
        raise CheckFailed(
            f"liaison.egg-info is stale (pyproject.toml says version {version}): "
            "run `make install`, which rewrites it"
        )
    for path in sorted(stage.rglob("*")):
        relative = path.relative_to(stage)
        if relative.parts[0].split(".")[0] in SERVER_MODULES:
            raise CheckFailed(f"server code would be packaged: {relative}")
        if path.suffix == ".py":
            try:
                names = device_tests.imports(stage, relative)
            except SyntaxError as exc:
                raise CheckFailed(
                    f"{relative} does not compile (serious_python's compileall "
                    f"would stop the build): {exc}"
                ) from exc
            for name in names:
                if name.split(".")[0] in SERVER_MODULES:
                    raise CheckFailed(f"{relative} imports {name}: the server is not on the phone")


def check_resolutions(
    resolutions: Sequence[Resolution], off_phone: Mapping[str, str], options: Options
) -> None:
    """4. Every resolution succeeds, stays off the server and installs only tested versions."""
    failed = [r for r in resolutions if r.error]
    if failed:
        raise CheckFailed(
            "pip cannot install the phone's dependencies from PyPI and Flet's "
            "mobile index (tools/mobile-index.tsv) for:\n"
            + "\n".join(
                f"  {r.target.name} Python {r.python}: " + (r.error or "").replace("\n", "\n    ")
                for r in failed
            )
        )
    for r in resolutions:
        server = sorted(set(r.pins) & (set(off_phone) | SERVER_MODULES))
        if server:
            raise CheckFailed(
                f"{r.target.name} Python {r.python} would install "
                f"{', '.join(server)}, which only the server or development use"
            )
    locked = phone_env.read_lock(options.root / "requirements" / "dev.lock")
    android = {r.python: r.pins for r in resolutions if r.target.name == "android"}
    untested = []
    for r in resolutions:
        if r.python not in options.tested_pythons:
            continue
        for name, (version, source) in sorted(r.pins.items()):
            tested = set(locked.get(name, []))
            if name in android.get(r.python, {}):
                tested.add(android[r.python][name][0])
            if version not in tested:
                untested.append(
                    f"  {r.target.name} Python {r.python}: {name}=={version} "
                    f"({source}); tested: {', '.join(sorted(tested)) or 'none'}"
                )
    if untested:
        raise CheckFailed(
            "the phone would get versions that no test run covers (neither the "
            "phone environment nor requirements/dev.lock has them): `make lock` "
            "or narrow pyproject.toml's range:\n" + "\n".join(untested)
        )
    options.say(
        f"[4/6] resolution (pip {phone_env.pip_version()}; PyPI + mobile index "
        f"stand-in; * = from the index, the rest from PyPI):"
    )
    for r in resolutions:
        binary = [
            f"{n} {v}" + ("*" if s == "index" else "")
            for n, (v, s) in sorted(r.pins.items())
            if s != "PyPI"
        ]
        options.say(
            f"      {r.target.name:7} {r.python}: {len(r.pins)} packages, "
            f"binary: {', '.join(binary)}"
        )


def phone_python_steps(
    line: str,
    android: Resolution | None,
    stage: Path,
    work: Path,
    report: Report,
    options: Options,
    pyproject: dict[str, Any],
) -> None:
    """5 and 6 on one Python line, in the environment of what Android resolved for it."""
    try:
        base = phone_env.find_python(line)
    except Unavailable as exc:
        _skip(options, report, f"Python {line}: {exc}")
        return
    if android is None:
        _skip(options, report, f"Python {line}: no resolution to build its environment from")
        return
    package = report.packages["android"]
    locked = phone_env.read_lock(options.root / "requirements" / "dev.lock")
    tools = {name: locked[name][0] for name in TEST_TOOLS}
    pins = {name: version for name, (version, _) in android.pins.items()}
    started = time.monotonic()
    try:
        env = phone_env.phone_env(
            options.cache,
            base,
            pins,
            tools,
            compile_packages=package.compile_packages,
            cleanup_packages=package.cleanup_packages,
            constraints={
                name: found[0]
                for name, found in locked.items()
                if len(found) == 1 and name not in pins
            },
        )
    except Unavailable as exc:
        _skip(options, report, f"Python {line}: {exc}")
        return
    except PipError as exc:
        raise CheckFailed(
            f"Python {line}: PyPI has no x86_64 wheels of the phone's versions to test with: {exc}"
        ) from exc
    built = time.monotonic() - started
    staged = work / f"compiled-{line}"
    shutil.copytree(stage, staged)
    if package.compile_app:
        try:
            serious_python.compile_tree(env.python, staged)
        except serious_python.CompileError as exc:
            raise CheckFailed(str(exc)) from exc

    version = pyproject["project"]["version"]
    result = probe(env, staged, package.module, version, work / f"data-{line}")
    if result["errors"]:
        raise CheckFailed(
            f"Python {env.version} with the phone's packages cannot run the "
            "packaged app:\n" + "\n".join(result["errors"])
        )
    report.modules[line] = result["modules"]
    shown = ", ".join(f"{n} {pins[n]}" for n in SHOWN if n in pins)
    how = f"built in {built:.0f} s" if built >= 1 else "cached"
    options.say(
        f"[5/6] Python {env.version} ({shown}; environment {how}): {package.module} "
        "imports without starting the app, as __main__ calls flet.run(main); "
        f"{result['modules']} staged modules import; version {version} from the metadata"
    )
    if options.tests:
        device_tests_step(line, env, stage, staged, work, report, options, pyproject)


def probe(
    env: phone_env.PhoneEnv, staged: Path, module: str, version: str, data: Path
) -> dict[str, Any]:
    """Run tools/phone_probe.py on the phone's Python, in an empty data folder as its cwd."""
    data.mkdir(parents=True)
    done = subprocess.run(
        [
            str(env.python),
            "-S",
            "-s",
            "-E",
            str(Path(__file__).with_name("phone_probe.py")),
            str(staged),
            str(env.site_packages),
            module,
            version,
        ],
        cwd=data,
        capture_output=True,
        text=True,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(data),
            "FLET_PLATFORM": "android",
            "FLET_APP_STORAGE_DATA": str(data),
            "FLET_APP_STORAGE_TEMP": str(data / "tmp"),
        },
    )
    try:
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed(f"the import probe crashed:\n{done.stderr[-4000:]}") from None
    return result


def device_tests_step(
    line: str,
    env: phone_env.PhoneEnv,
    stage: Path,
    staged: Path,
    work: Path,
    report: Report,
    options: Options,
    pyproject: dict[str, Any],
) -> None:
    """6. The device-side tests on the staged app; a pass is remembered by its inputs' hash."""
    server_extra = pyproject["project"].get("optional-dependencies", {}).get("server", [])
    forbidden = (
        SERVER_MODULES
        | {"playwright"}
        | {canonicalize_name(Requirement(r).name).replace("-", "_") for r in server_extra}
    )
    selection = device_tests.select(options.root, forbidden)
    ws = device_tests.workspace(options.root, staged, work / f"tests-{line}", selection)
    # The sources, not the .pyc files: those hold the path they were compiled at.
    sources = phone_env.tree_digest([p for p in stage.rglob("*") if p.is_file()], stage)
    tests = phone_env.tree_digest(
        [p for p in ws.rglob("*") if p.is_file() and p.suffix != ".pyc"], ws
    )
    passed = options.cache / "passed" / f"{line}-{sources}-{tests}-{env.key}"
    if passed.exists():
        summary = passed.read_text() + " (cached: same app, tests and environment)"
    else:
        started = time.monotonic()
        ok, summary = device_tests.run(env.python, ws, selection)
        if not ok:
            raise CheckFailed(
                f"device tests fail on Python {env.version} with the phone's packages:\n{summary}"
            )
        summary = f"{summary} ({time.monotonic() - started:.0f} s)"
        passed.parent.mkdir(parents=True, exist_ok=True)
        for old in passed.parent.glob(f"{line}-*"):
            old.unlink()
        passed.write_text(summary)
    report.tests[line] = summary
    left_out = ", ".join(f"{p} ({why})" for p, why in sorted(selection.left_out.items()))
    options.say(f"[6/6] device tests on Python {env.version}: {summary}; left out: {left_out}")


def _skip(options: Options, report: Report, reason: str) -> None:
    if options.require_all:
        raise CheckFailed(f"LIAISON_REQUIRE_ALL=1 but {reason}")
    report.skipped.append(reason)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve())) + "/"
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: `python -m tools.phone_check [--python 3.13] [--no-tests]`."""
    parser = argparse.ArgumentParser(description="flet build's Python packaging, checked.")
    parser.add_argument(
        "--python",
        action="append",
        dest="pythons",
        help=f"a tested Python line (default: {', '.join(TESTED_PYTHONS)})",
    )
    parser.add_argument("--no-tests", action="store_true", help="skip the device tests")
    args = parser.parse_args(argv)
    options = Options(tests=not args.no_tests)
    if args.pythons:
        options.tested_pythons = args.pythons
    started = time.monotonic()
    try:
        check(options)
    except CheckFailed as exc:
        print(f"phone-check: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"phone-check: OK in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
