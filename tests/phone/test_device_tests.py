"""tools/device_tests: which tests run on the phone's Python, and in what workspace."""

from __future__ import annotations

from pathlib import Path

from tests.phone.conftest import ROOT
from tools import device_tests

FORBIDDEN = {"server", "playwright", "starlette", "uvicorn", "sqlalchemy", "psycopg"}


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)


def test_the_projects_device_tests_leave_out_only_what_needs_the_server() -> None:
    selection = device_tests.select(ROOT, FORBIDDEN)
    assert Path("tests/app/test_vault.py") in selection.tests
    assert Path("tests/sync/test_merge.py") in selection.tests
    assert selection.left_out[Path("tests/app/test_sign_in_again.py")].startswith("imports server")
    assert "server" in selection.left_out[Path("tests/sync/conftest.py")]
    assert Path("benchmarks/store.py") in selection.support  # test_store runs the benchmark
    assert not any(p.parts[0] == "server" for p in selection.support)


def test_an_import_chain_through_helpers_is_followed(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tests/__init__.py": "",
            "tests/app/__init__.py": "",
            "tests/app/helper.py": "def f():\n    from server.db import Database\n",
            "tests/app/test_a.py": "from tests.app.helper import f\n",
            "tests/app/test_b.py": "from . import other\nimport app.store\n",
            "tests/app/other.py": "import json\n",
            "tests/app/test_c.py": "import playwright.sync_api\n",
        },
    )
    selection = device_tests.select(tmp_path, FORBIDDEN)
    assert selection.tests == [Path("tests/app/test_b.py")]
    assert selection.left_out == {
        Path("tests/app/test_a.py"): "imports tests.app.helper, which imports server.db",
        Path("tests/app/test_c.py"): "imports playwright.sync_api",
    }
    assert Path("tests/app/other.py") in selection.support


def test_the_workspace_is_the_staged_app_with_the_tests_beside_it(tmp_path: Path) -> None:
    repo, stage = tmp_path / "repo", tmp_path / "stage"
    write(
        repo,
        {
            "pyproject.toml": '[project]\nname = "x"\n\n[tool.pytest.ini_options]\n'
            'addopts = "-ra"\nmarkers = [\n    "browser: x",\n]\n\n[tool.ruff]\n',
            "tests/__init__.py": "",
            "tests/app/__init__.py": "",
            "tests/app/test_a.py": "",
            "tests/app/data/v1/vault.json": "{}",
        },
    )
    write(stage, {"app/__init__.pyc": ""})
    selection = device_tests.select(repo, FORBIDDEN)
    ws = device_tests.workspace(repo, stage, tmp_path / "ws", selection)
    assert {str(p.relative_to(ws)) for p in ws.rglob("*") if p.is_file()} == {
        "app/__init__.pyc",
        "tests/__init__.py",
        "tests/app/__init__.py",
        "tests/app/test_a.py",
        "tests/app/data/v1/vault.json",
        "pyproject.toml",
    }
    settings = (ws / "pyproject.toml").read_text()
    assert settings.startswith("[tool.pytest.ini_options]") and "browser: x" in settings
    assert "tool.ruff" not in settings
