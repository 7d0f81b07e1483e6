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


def main() -> None:
    stage, site_packages, module, version = sys.argv[1:5]
    sys.path[:0] = [stage, site_packages]
    errors: list[str] = []
    calls: list[str] = []

    def fail(what: str) -> None:
        errors.append(f"{what}:\n{traceback.format_exc(limit=-4)}")

    # What flet's build template runs before the app: certifi for TLS, then the entry module.
    try:
        import certifi

        if not os.path.isfile(certifi.where()):
            errors.append(f"certifi's CA bundle is missing: {certifi.where()}")
    except Exception:
        fail("import certifi (flet's template imports it to set SSL_CERT_FILE)")
    try:
        import flet
    except Exception:
        fail("import flet")
        print(json.dumps({"errors": errors, "modules": 0, "calls": calls}))
        return

    def record(name: str):  # type: ignore[no-untyped-def]
        def fake(target=None, *args, **kwargs):  # type: ignore[no-untyped-def]
            where = getattr(target, "__module__", "?") + "." + getattr(target, "__name__", "?")
            calls.append(f"flet.{name}({where}, view={kwargs.get('view', 'default')})")

        return fake

    flet.run, flet.app, flet.run_async = record("run"), record("app"), record("run_async")

    try:
        importlib.import_module(module)
        if calls:
            errors.append(f"importing {module} started the app: {calls}")
    except Exception:
        fail(f"import {module}")
    else:
        del sys.modules[module]
        calls.clear()
        try:
            runpy.run_module(module, run_name="__main__")  # as the template does
        except Exception:
            fail(f"runpy.run_module({module!r}, run_name='__main__')")
        if calls != ["flet.run(app.main.main, view=default)"]:
            errors.append(f"as __main__, {module} should call flet.run(main) once: {calls}")

    count = 0
    for name in staged_modules(stage, module):
        count += 1
        try:
            importlib.import_module(name)
        except Exception:
            fail(f"import {name}")

    allowed = [stage, site_packages, sysconfig.get_paths()["stdlib"]]
    allowed = [os.path.realpath(p) + os.sep for p in allowed]
    for name, loaded in sorted(sys.modules.items()):
        path = getattr(loaded, "__file__", None)
        if name == "server" or name.startswith("server."):
            errors.append(f"the server package was imported: {name}")
        elif name != "__main__" and path and not os.path.realpath(path).startswith(tuple(allowed)):
            errors.append(f"{name} was imported from outside the phone's paths: {path}")

    try:
        from importlib import metadata

        found = metadata.version("liaison")
        if found != version:
            errors.append(f"package metadata says version {found}, pyproject.toml {version}")
        from app.version import app_version

        if app_version() != version:
            errors.append(f"app_version() is {app_version()!r}, pyproject.toml says {version}")
    except Exception:
        fail("the app's version from package metadata")

    print(json.dumps({"errors": errors, "modules": count, "calls": calls}))


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
