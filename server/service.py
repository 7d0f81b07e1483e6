"""The server's use cases, each in short transactions; plain values in and out, no HTTP.

The HTTP layer (``server.api``) calls these from a worker thread. The clock is injected
so tests can move time (token expiry, throttling, clock skew).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from server import attachments, audit, auth, passwords, pull, push, records
from server.bodies import parse_json
from server.db import Database
from server.errors import Invalid, Unauthorized
from server.scope import Caller
from server.settings import Settings

Clock = Callable[[], float]


class Service:
    """Enrolment, identity, revocation, push, pull and attachments over one database."""

    def __init__(self, settings: Settings, database: Database, clock: Clock = time.time):
        self.settings = settings
        self.database = database
        self.clock = clock

    def enrol(
        self, username: str, password: str, device_name: str, address: str
    ) -> dict[str, Any]:
        """Sign in and register a device; raises Unauthorized or Throttled."""
        if not 1 <= len(device_name) <= 100:
            raise Invalid("must be 1 to 100 characters", field="device_name")
        username = username.strip().lower()[:64]
        keys = auth.throttle_keys(username, address, self.settings)
        with self.database.read() as conn:
            auth.check_throttle(conn, keys, self.settings, self.clock())
            user_id, encoded = auth.password_hash_of(conn, username)
        # The slow hash runs outside any transaction; unknown users cost the same time.
        ok = len(password) <= passwords.MAX_LENGTH and passwords.verify_password(
            password, encoded or passwords.dummy_hash(self.settings)
        )
        verified = user_id if ok and encoded else None
        with self.database.write() as conn:
            now = self.clock()
            auth.record_login(
                conn, user_id=verified, username=username, keys=keys, settings=self.settings,
                now=now,
            )
            if verified is None:
                result = None
            else:
                device_id, token = auth.enrol_device(conn, verified, device_name, now)
                audit.append(conn, at=now, actor=f"user:{username} device:{device_id}",
                             action="device.enrol", targets=[device_id])
                result = {
                    "device_id": device_id,
                    "token": token,
                    "user": auth.user_json(conn, verified),
                }
        if result is None:
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        return result

    def check_token(self, token: str | None) -> None:
        """Raise as ``authenticate`` would, before a large body is read."""
        with self.database.read() as conn:
            auth.authenticate(conn, token, self.settings, self.clock(), touch=False)

    def me(self, token: str | None) -> dict[str, Any]:
        """The caller's user, role, teams and device."""
        with self.database.read() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
            found = {
                **auth.user_json(conn, caller.user_id),
                "device": auth.device_json(conn, caller.device_id),
            }
        self._after_read(caller)
        return found

    def revoke(self, token: str | None, device_id: str) -> None:
        """Revoke a device: one's own, or any as an admin."""
        with self.database.write() as conn:
            now = self.clock()
            caller = auth.authenticate(conn, token, self.settings, now)
            auth.revoke_device(conn, device_id, caller, now)

    def push(self, token: str | None, body: object) -> dict[str, Any]:
        """Apply a push request."""
        return self._push(token, lambda: body)

    def push_json(self, token: str | None, data: bytes, encoding: str) -> dict[str, Any]:
        """Apply a push request as received: JSON bytes, maybe gzipped."""
        return self._push(token, lambda: parse_json(data, encoding, self.settings.body_limit))

    def _push(self, token: str | None, body: Callable[[], object]) -> dict[str, Any]:
        # One transaction, in the order of the checks: the token first (no work on a
        # stranger's body), then the body's own checks, then the rev lock, which pushes
        # queue on in PostgreSQL (SQLite runs one writer at a time from BEGIN anyway).
        with self.database.write() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock())
            batch = push.prepare(body(), self.settings, self.clock())
            return push.push(conn, records.Revs(conn), caller, batch, self.clock())

    def pull(self, token: str | None, cursor: int, limit: int) -> dict[str, Any]:
        """One page of changes after the cursor."""
        parsed: dict[str, Any] = json.loads(self.pull_body(token, cursor, limit))
        return parsed

    def pull_body(self, token: str | None, cursor: int, limit: int) -> bytes:
        """One page of changes after the cursor, as the JSON response body."""
        limit = min(limit, self.settings.pull_limit)
        with self.database.read() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
            page = pull.read_page(conn, caller, cursor, limit)
        self._after_read(caller, "sync.pull", page.audit_targets)
        return page.body(caller.last_mutation_id)

    def put_attachment(self, token: str | None, sha256: str, data: bytes) -> bool:
        """Store an attachment; True when it was new."""
        with self.database.write() as conn:
            now = self.clock()
            caller = auth.authenticate(conn, token, self.settings, now)
            return attachments.put(conn, caller, sha256, data, now)

    def get_attachment(self, token: str | None, sha256: str) -> tuple[str, bytes]:
        """An attachment's content type and bytes, if the caller may see it."""
        with self.database.read() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
            found = attachments.get(conn, caller, sha256)
        self._after_read(caller, "attachment.get", [sha256])
        return found

    def _after_read(self, caller: Caller, action: str = "", targets: Sequence[str] = ()) -> None:
        """The writes a read owes, in one short write: its audit row and the device's use.

        Reads run in read-only transactions so they never queue behind writers; only a
        read that showed patient data (an audit row) or whose device's last use is older
        than ``auth.TOUCH_EVERY`` writes at all, and it does so before anything is sent.
        """
        now = self.clock()
        touch = auth.needs_touch(caller, now)
        if not targets and not touch:
            return
        with self.database.write() as conn:
            if touch:
                auth.record_use(conn, caller, now)
            if targets:
                audit.append(conn, at=now, actor=caller.actor, action=action, targets=targets)
