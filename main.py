"""The phone's entry point: `flet build` runs this module as __main__ (`[tool.flet.app]`).

It sits at the repo root because flet packages one folder and runs a module at its top:
the root is the only folder that holds `app/`, `sync/` and `assets/` side by side, as they are
in development. In a browser, use `make run` (or `python -m app.main`) instead.
"""

import flet as ft

from app.main import main

if __name__ == "__main__":
    ft.run(main)
