"""Imports the staged app the way the phone does; run by `make phone-check` on the phone's Python.

    python -S -s -E tools/phone_probe.py STAGED_APP SITE_PACKAGES MODULE VERSION

Run without `site`, so `sys.path` holds only the standard library, then the staged app and
the phone's site-packages, in that order, as serious_python sets them up. Prints one JSON
object: `{"errors": [...], "modules": N, "calls": [...]}`. Stdlib only: it must not depend on
anything the phone lacks.
"""

import importlib
import json
import os
import runpy
import sys
import sysconfig
import traceback


class Probe:
    """What the probe found: errors (with tracebacks) and the app-start calls it saw."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.calls: list[str] = []

    def fail(self, what: str) -> None:
        """Record the exception being handled as an error about ``what``."""
        self.errors.append(f"{what}:\n{traceback.format_exc(limit=-4)}")

    def report(self, modules: int) -> None:
        """Print the one JSON object the caller reads."""
        print(json.dumps({"errors": self.errors, "modules": modules, "calls": self.calls}))


def main() -> None:
    stage, site_packages, module, version = sys.argv[1:5]
    sys.path[:0] = [stage, site_packages]
    probe = Probe()
    # What flet's build template runs before the app: certifi for TLS, then the entry module.
    check_certifi(probe)
    try:
        import flet
    except Exception:
        probe.fail("import flet")
        probe.report(0)
        return
    flet.run, flet.app, flet.run_async = (
        _recorder(probe, "run"),
        _recorder(probe, "app"),
        _recorder(probe, "run_async"),
    )
    check_entry(probe, module)
    count = 0
    for name in staged_modules(stage, module):
        count += 1
        try:
            importlib.import_module(name)
        except Exception:
            probe.fail(f"import {name}")
    check_paths(probe, [stage, site_packages, sysconfig.get_paths()["stdlib"]])
    check_version(probe, version)
    probe.report(count)


def check_certifi(probe: Probe) -> None:
    """certifi imports and has its CA bundle (flet's template sets SSL_CERT_FILE from it)."""
    try:
        import certifi

        if not os.path.isfile(certifi.where()):
            probe.errors.append(f"certifi's CA bundle is missing: {certifi.where()}")
    except Exception:
        probe.fail("import certifi (flet's template imports it to set SSL_CERT_FILE)")


def _recorder(probe: Probe, name: str):  # type: ignore[no-untyped-def]
    """A stand-in for ``flet.<name>`` that records the call instead of starting an app."""

    def fake(target=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        where = getattr(target, "__module__", "?") + "." + getattr(target, "__name__", "?")
        probe.calls.append(f"flet.{name}({where}, view={kwargs.get('view', 'default')})")

    return fake


def check_entry(probe: Probe, module: str) -> None:
    """Importing the entry module starts nothing; running it as __main__ calls flet.run once."""
    try:
        importlib.import_module(module)
        if probe.calls:
            probe.errors.append(f"importing {module} started the app: {probe.calls}")
    except Exception:
        probe.fail(f"import {module}")
        return
    del sys.modules[module]
    probe.calls.clear()
    try:
        runpy.run_module(module, run_name="__main__")  # as the template does
    except Exception:
        probe.fail(f"runpy.run_module({module!r}, run_name='__main__')")
    if probe.calls != ["flet.run(app.main.main, view=default)"]:
        probe.errors.append(f"as __main__, {module} should call flet.run(main) once: {probe.calls}")


def check_paths(probe: Probe, paths: list[str]) -> None:
    """No server module was imported, and every module came from one of ``paths``."""
    allowed = tuple(os.path.realpath(p) + os.sep for p in paths)
    for name, loaded in sorted(sys.modules.items()):
        path = getattr(loaded, "__file__", None)
        if name == "server" or name.startswith("server."):
            probe.errors.append(f"the server package was imported: {name}")
        elif name != "__main__" and path and not os.path.realpath(path).startswith(allowed):
            probe.errors.append(f"{name} was imported from outside the phone's paths: {path}")


def check_version(probe: Probe, version: str) -> None:
    """The package metadata and ``app_version()`` both say ``version``."""
    try:
        from importlib import metadata

        found = metadata.version("liaison")
        if found != version:
            probe.errors.append(f"package metadata says version {found}, pyproject.toml {version}")
        from app.version import app_version

        if app_version() != version:
            probe.errors.append(
                f"app_version() is {app_version()!r}, pyproject.toml says {version}"
            )
    except Exception:
        probe.fail("the app's version from package metadata")


def staged_modules(stage: str, entry: str) -> list[str]:
    """Dotted names of every module in the staged packages (sources or sourceless .pyc)."""
    names = []
    for folder, dirs, files in os.walk(stage):
        dirs.sort()
        relative = os.path.relpath(folder, stage)
        if relative == "." or not any(f in files for f in ("__init__.py", "__init__.pyc")):
            continue
        package = relative.replace(os.sep, ".")
        for file in sorted(files):
            stem, ext = os.path.splitext(file)
            if ext in (".py", ".pyc"):
                names.append(package if stem == "__init__" else f"{package}.{stem}")
    return sorted(set(names) - {entry})


if __name__ == "__main__":
    main()
