"""`make run`: the demo server on SQLite (seeded when empty) plus the app in web mode.

Under tools/ (never packaged for a phone), because it starts the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.main import run_web
from server import launch
from server.settings import database_url

ROOT = Path(__file__).resolve().parent.parent
SERVER_PORT = int(os.environ.get("LIAISON_SERVER_PORT", "8000"))
APP_PORT = int(os.environ.get("FLET_SERVER_PORT", "8550"))


def main() -> None:
    """Start the server and the app; Ctrl-C or SIGTERM stops both."""
    url = database_url()
    print(launch.seed_demo(url, if_empty=True, cwd=Path.cwd()), end="", flush=True)
    server = launch.ServerProcess(url, port=SERVER_PORT, cwd=Path.cwd())
    server.start()
    print(f"Liaison app: http://127.0.0.1:{APP_PORT}", flush=True)
    os.environ.setdefault("LIAISON_DATA_DIR", str(ROOT / "var" / "device"))
    os.environ.setdefault("LIAISON_SERVER_URL", f"http://127.0.0.1:{SERVER_PORT}")

    try:
        run_web(port=APP_PORT)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop(timeout=10)


if __name__ == "__main__":
    main()
