"""Which packages the phone would get: serious_python's pip install, as a dry run.

For each target (Android arm64-v8a, iOS iphoneos arm64) and Python line, the dev environment's
pip runs `install --dry-run --only-binary :all: --platform <tag> --python-version X.Y` on the
dependency list flet-cli computed, against PyPI plus the local stand-in of Flet's mobile index
(tools/mobile_index), with serious_python's sitecustomize so that markers see the phone.

The stand-in's placeholder wheels carry PyPI's Requires-Dist of the same release once it is
known; releases the index served without one are looked up (pip's report, `--no-deps`) and the
resolution runs again until nothing new turns up. What was learnt is kept in the cache.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from tools import flet_build, mobile_index, phone_env, serious_python
from tools.phone_env import PipError, Unavailable


@dataclass(frozen=True)
class Target:
    """One phone platform: its TSV target, its `flet build` target and one architecture."""

    name: str
    flet_target: str
    arch: str


TARGETS = (Target("android", "apk", "arm64-v8a"), Target("ios", "ipa", "iphoneos.arm64"))


@dataclass
class Resolution:
    """What pip would install for one target and Python line, or why it cannot."""

    target: Target
    python: str
    pins: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (version, source)
    error: str | None = None


def resolve_all(
    packages: Mapping[str, flet_build.Package],
    targets: Sequence[Target],
    pythons: Sequence[str],
    tsv: Path,
    cache: Path,
) -> list[Resolution]:
    """Every target on every Python line, with the index's Requires-Dist learnt until stable."""
    if not tsv.is_file():
        raise Unavailable(
            f"no listing of Flet's mobile index at {tsv} "
            "(tools/mobile-index.tsv; or set LIAISON_MOBILE_INDEX_TSV)"
        )
    rows = mobile_index.read_tsv(tsv)
    requires_file = cache / "mobile-index-requires.json"
    requires = mobile_index.load_requires(requires_file)
    platforms = {
        t.name: [serious_python.wheel_platform(packages[t.name].platform, t.arch)] for t in targets
    }
    jobs = [(t, line) for t in targets for line in pythons]
    for _ in range(6):
        index = build_index(rows, platforms, requires, cache)

        def one(job: tuple[Target, str], index: Path = index) -> Resolution:
            return resolve(packages[job[0].name], job[0], job[1], index, cache)

        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(one, jobs))
        unknown = {
            mobile_index.requires_key(name, version): (name, version, r.python)
            for r in results
            for name, (version, source) in r.pins.items()
            if source == "index" and mobile_index.requires_key(name, version) not in requires
        }
        if not unknown:
            return results
        requires.update(fetch_requires(unknown.values()))
        mobile_index.save_requires(requires_file, requires)
    raise RuntimeError("the mobile index's Requires-Dist did not settle after 6 rounds")


def resolve(
    package: flet_build.Package, target: Target, line: str, index: Path, cache: Path
) -> Resolution:
    """`pip install --dry-run` of the dependency list as serious_python's pip would see it."""
    result = Resolution(target, line)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        shim = Path(tmp)
        (shim / "sitecustomize.py").write_text(
            serious_python.sitecustomize(package.platform, target.arch, full_version(line))
        )
        report = shim / "report.json"
        args = [
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--only-binary",
            ":all:",
            "--platform",
            serious_python.wheel_platform(package.platform, target.arch),
            "--python-version",
            line,
            "--implementation",
            "cp",
            "--index-url",
            phone_env.PYPI,
            "--extra-index-url",
            index.as_uri(),
            "--report",
            str(report),
            *package.requirements,
        ]
        try:
            phone_env.pip(args, env={"PYTHONPATH": str(shim)})
        except PipError as exc:
            result.error = str(exc)
            return result
        for item in json.loads(report.read_text())["install"]:
            url = item["download_info"]["url"]
            source = (
                "index"
                if url.startswith("file:")
                else "PyPI"
                if url.endswith("-none-any.whl")
                else "PyPI binary"
            )
            meta = item["metadata"]
            result.pins[canonicalize_name(meta["name"])] = (meta["version"], source)
    return result


def fetch_requires(releases: Iterable[tuple[str, str, str]]) -> dict[str, list[str]]:
    """PyPI's Requires-Dist of (name, version, Python line) releases, from pip's report."""
    learnt: dict[str, list[str]] = {}
    for name, version, line in sorted(releases):
        key = mobile_index.requires_key(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "report.json"
            try:
                phone_env.pip(
                    [
                        "install",
                        "--dry-run",
                        "--ignore-installed",
                        "--no-deps",
                        "--quiet",
                        "--only-binary",
                        ":all:",
                        "--python-version",
                        line,
                        "--index-url",
                        phone_env.PYPI,
                        "--report",
                        str(report),
                        f"{name}=={version}",
                    ]
                )
            except PipError:  # not on PyPI (a build only the index has): taken as needing nothing
                learnt[key] = []
                continue
            learnt[key] = json.loads(report.read_text())["install"][0]["metadata"].get(
                "requires_dist", []
            )
    return learnt


def build_index(
    rows: Sequence[mobile_index.Row],
    platforms: Mapping[str, Sequence[str]],
    requires: Mapping[str, Sequence[str]],
    cache: Path,
) -> Path:
    """The stand-in index's `simple/` folder, cached by a hash of what goes in."""
    recipe = json.dumps(
        [[r.target, r.python, r.name, r.version] for r in rows]
        + [sorted(platforms.items()), sorted(requires.items())],
        sort_keys=True,
    )
    dest = cache / f"index-{phone_env.digest(recipe)}"
    if not (dest / "simple" / "index.html").exists():
        for old in cache.glob("index-*"):
            shutil.rmtree(old)
        building = cache / "building-index"
        shutil.rmtree(building, ignore_errors=True)
        mobile_index.build(rows, building, platforms, requires)
        building.rename(dest)
    return dest / "simple"


def full_version(line: str) -> str:
    """The full version python-build bundles for a line (for `python_full_version` markers)."""
    manifest = json.loads(flet_build.MANIFEST.read_text())
    return str(manifest["pythons"].get(line, {}).get("full_version", f"{line}.0"))
