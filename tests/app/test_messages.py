"""Each sentence about the server and sign-in is written once (app/messages.py)."""

from __future__ import annotations

from app import messages
from app.messages import plain_error
from sync import errors as sync_errors
from tests.app.views_support import FakeServer, enrolled, make_app, run


def test_plain_error_says_the_shared_sentences() -> None:
    assert plain_error(sync_errors.ServerUnavailable("x")) == messages.OFFLINE
    assert plain_error(sync_errors.AuthExpired(401, "expired", "x")) == messages.SIGN_IN_EXPIRED
    assert plain_error(sync_errors.ServerRefused(429, "throttled", "x")) == messages.TOO_MANY_TRIES
    assert plain_error(sync_errors.InsecureServerURL("x")) == messages.INSECURE_URL
    assert plain_error(RuntimeError("Ada")) == messages.something_went_wrong("RuntimeError")


def test_the_sync_status_says_what_plain_error_says(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)
    run(enrolled(app))
    app.add_patient("Eli Example")
    server.offline = True
    run(app.syncing.sync_now())
    assert app.sync.error == plain_error(sync_errors.ServerUnavailable("x"))


def test_wording_the_tests_and_screens_rely_on() -> None:
    assert messages.OFFLINE.startswith("Can't reach the server")
    assert messages.SIGN_IN_EXPIRED.startswith("Your sign-in has expired")
    assert messages.sign_in_expired_as("demo").startswith("Your sign-in as demo has expired")
    assert "Ada" not in messages.something_went_wrong("ValueError")
