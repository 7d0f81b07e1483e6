"""`make run`: the demo server on SQLite (seeded when empty) plus the app in web mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER_PORT = int(os.environ.get("LIAISON_SERVER_PORT", "8000"))
APP_PORT = int(os.environ.get("FLET_SERVER_PORT", "8550"))


def main() -> None:
    """Start the server (when it exists) and the app; Ctrl-C stops both."""
    server = None
    if (ROOT / "server" / "__main__.py").exists():
        subprocess.run([sys.executable, "-m", "server", "seed-demo", "--if-empty"], check=True)
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(SERVER_PORT),
            ]
        )
    print(f"Liaison app: http://127.0.0.1:{APP_PORT}", flush=True)
    os.environ.setdefault("LIAISON_DATA_DIR", str(ROOT / "var" / "device"))
    os.environ.setdefault("LIAISON_SERVER_URL", f"http://127.0.0.1:{SERVER_PORT}")
    try:
        from app.main import run_web

        run_web(port=APP_PORT)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
