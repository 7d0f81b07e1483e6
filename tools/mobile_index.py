"""A local stand-in for Flet's mobile package index, built from tools/mobile-index.tsv.

`flet build apk/ipa` installs the phone's packages with pip from PyPI plus Flet's index of
Android and iOS builds of binary packages (serious_python adds `--extra-index-url` for it).
That index cannot be reached from here, so `make phone-check` builds a PEP 503 "simple"
folder with one placeholder wheel per row of the TSV, named as the index names its wheels:
`cffi-2.0.0-cp313-cp313-android_24_arm64_v8a.whl`, `...-ios_13_0_arm64_iphoneos.whl`.
A placeholder holds only metadata, enough for `pip install --dry-run` to resolve against it.
Its Requires-Dist is PyPI's for the same release once known (`requires`, filled by
`fetch_requires`), so the index's cryptography pulls in the index's cffi as the real one does.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import json
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

GENERATOR = "liaison-phone-check"
_EPOCH = (2020, 1, 1, 0, 0, 0)  # fixed zip timestamps: the same rows give the same bytes


@dataclass(frozen=True)
class Row:
    """One binary package on the mobile index: a target (android, ios), a Python line, a pin."""

    target: str
    python: str
    name: str
    version: str


def read_tsv(path: Path) -> list[Row]:
    """The rows of mobile-index.tsv (comment lines start with '#')."""
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    rows = [Row(*(cell.strip() for cell in cells)) for cells in csv.reader(lines, delimiter="\t")]
    for row in rows:
        if row.target not in {"android", "ios"} or not row.python.startswith("3."):
            raise ValueError(f"{path}: unexpected row {row}")
    return rows


def versions(rows: Iterable[Row], target: str, python: str) -> dict[str, str]:
    """Canonical package name -> the index's version, for one target and Python line."""
    return {
        canonicalize_name(r.name): r.version
        for r in rows
        if r.target == target and r.python == python
    }


def wheel_filename(name: str, version: str, python: str, platform: str) -> str:
    """The file name the index gives a CPython wheel of `name` for one platform tag."""
    dist = canonicalize_name(name).replace("-", "_")
    cp = "cp" + python.replace(".", "")
    return f"{dist}-{version}-{cp}-{cp}-{platform}.whl"


def placeholder_wheel(name: str, version: str, tag: str, requires: Sequence[str]) -> bytes:
    """A valid wheel with METADATA, WHEEL and RECORD only."""
    dist_info = f"{canonicalize_name(name).replace('-', '_')}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {name}\n",
            f"Version: {version}\n",
            "Summary: placeholder for Flet's mobile index (make phone-check)\n",
            *(f"Requires-Dist: {req}\n" for req in requires),
        ]
    )
    wheel = f"Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: false\nTag: {tag}\n"
    files = {f"{dist_info}/METADATA": metadata.encode(), f"{dist_info}/WHEEL": wheel.encode()}
    record = "".join(
        f"{path},sha256={_b64_digest(data)},{len(data)}\n" for path, data in files.items()
    )
    files[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(zipfile.ZipInfo(path, _EPOCH), data)
    return out.getvalue()


def build(
    rows: Sequence[Row],
    dest: Path,
    platforms: Mapping[str, Sequence[str]],
    requires: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write the simple index under `dest` and return its `simple/` folder.

    `platforms` maps a TSV target to the wheel platform tags to write for it; `requires` maps
    `requires_key(name, version)` to that release's Requires-Dist.
    """
    requires = requires or {}
    files = dest / "files"
    files.mkdir(parents=True, exist_ok=True)
    links: dict[str, list[str]] = {}
    for row in rows:
        for platform in platforms.get(row.target, ()):
            filename = wheel_filename(row.name, row.version, row.python, platform)
            tag = filename.removesuffix(".whl").split("-", 2)[2]
            data = placeholder_wheel(
                row.name, row.version, tag, requires.get(requires_key(row.name, row.version), ())
            )
            (files / filename).write_bytes(data)
            sha = hashlib.sha256(data).hexdigest()
            href = html.escape(f"../../files/{filename}#sha256={sha}")
            link = f'<a href="{href}">{html.escape(filename)}</a><br>'
            links.setdefault(canonicalize_name(row.name), []).append(link)
    simple = dest / "simple"
    for project, anchors in links.items():
        (simple / project).mkdir(parents=True, exist_ok=True)
        (simple / project / "index.html").write_text(_page(anchors))
    simple.mkdir(parents=True, exist_ok=True)
    (simple / "index.html").write_text(_page(f'<a href="{p}/">{p}</a><br>' for p in sorted(links)))
    return simple


def requires_key(name: str, version: str) -> str:
    """The key of one release in a `requires` mapping (JSON-friendly)."""
    return f"{canonicalize_name(name)}=={version}"


def load_requires(path: Path) -> dict[str, list[str]]:
    """Requires-Dist learnt so far (a release's metadata never changes, so it is kept)."""
    return json.loads(path.read_text()) if path.exists() else {}


def save_requires(path: Path, requires: Mapping[str, Sequence[str]]) -> None:
    """Write the learnt Requires-Dist (sorted, so the file only changes when it grows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({k: list(v) for k, v in sorted(requires.items())}, indent=1))


def _page(anchors: Iterable[str]) -> str:
    body = "\n".join(anchors)
    return f"<!DOCTYPE html>\n<html><body>\n{body}\n</body></html>\n"


def _b64_digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
