"""tools/phone_env: pip without the machine's configuration, the Pythons, the lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import missing_service
from tests.phone.conftest import ROOT
from tools import phone_env


def test_pip_ignores_the_machines_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "/nowhere")
    listed = phone_env.pip(["config", "list"]).stdout  # e.g. the machine's /etc/pip.conf
    assert "index-url" not in listed and "find-links" not in listed
    assert "constraint" not in listed


def test_an_unreachable_index_is_unavailable_not_missing(tmp_path: Path) -> None:
    with pytest.raises(phone_env.Unavailable, match="not reachable"):
        phone_env.pip(
            [
                "install",
                "--dry-run",
                "--retries",
                "1",
                "--timeout",
                "1",
                "--index-url",
                "http://127.0.0.1:9/simple",
                "nothing-here",
            ]
        )


def test_pip_errors_keep_pips_reason(tmp_path: Path) -> None:
    (tmp_path / "simple").mkdir()
    with pytest.raises(phone_env.PipError, match="No matching distribution found for nothing"):
        phone_env.pip(
            ["install", "--dry-run", "--index-url", (tmp_path / "simple").as_uri(), "nothing-here"]
        )


@pytest.mark.parametrize("line", ["3.12", "3.13"])
def test_the_phone_pythons_are_found(line: str) -> None:
    try:
        python = phone_env.find_python(line)
    except phone_env.Unavailable as exc:
        missing_service(str(exc))
    assert phone_env.python_version(python).startswith(line + ".")


def test_a_missing_python_line_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYENV_ROOT", "/nowhere")
    monkeypatch.setenv("PATH", "/nowhere")
    with pytest.raises(phone_env.Unavailable, match="no CPython 3.99"):
        phone_env.find_python("3.99")


def test_the_lock_reader_sees_every_pin() -> None:
    pins = phone_env.read_lock(ROOT / "requirements" / "dev.lock")
    assert pins["cryptography"] == ["50.0.2"] and pins["pytest"] == ["9.2.0"]
    assert "psycopg" in pins and "flet-secure-storage" in pins
