"""The app's version: `[project].version` of pyproject.toml, read from the package metadata.

In development that is the editable install's metadata; on a phone it is `liaison.egg-info`,
which `make install` writes at the repo root and `flet build` packages beside `app/` (the
packaged folder is on `sys.path`). `make phone-check` proves the packaged copy is current.
"""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "liaison"


def app_version() -> str:
    """The installed version of the app, or "unknown" when no metadata can be found."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"
