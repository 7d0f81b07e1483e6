"""The server's use cases, each in short transactions; plain values in and out, no HTTP.

The HTTP layer (``server.api``) calls these from a worker thread. The clock is injected
so tests can move time (token expiry, throttling, clock skew).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection

from server import (
    attachments,
    audit,
    auth,
    optimistic,
    passwords,
    pull,
    push,
    records,
    throttle,
)
from server.bodies import parse_json
from server.db import Database
from server.errors import Forbidden, Invalid, Throttled, Unauthorized, Unavailable
from server.scope import Caller
from server.settings import Settings

Clock = Callable[[], float]
T = TypeVar("T")


class Service:
    """Enrolment, identity, revocation, push, pull and attachments over one database."""

    def __init__(self, settings: Settings, database: Database, clock: Clock = time.time):
        self.settings = settings
        self.database = database
        self.clock = clock
        self.pushes = None if database.is_sqlite else optimistic.Writer(database)

    def check_address(self, address: str) -> None:
        """Raise Throttled when the client address is over its sign-in limit (before any
        body is read: a flood from one address costs a read, not a parse and a hash)."""
        limits = auth.address_limit(address, self.settings)
        with self.database.read() as conn:
            wait = throttle.retry_after(
                conn, limits, self.settings.throttle_window_seconds, self.clock()
            )
        if wait is not None:
            raise Throttled("too many failed sign-ins; try again later", wait)

    def enrol(
        self,
        username: str,
        password: str,
        device_name: str,
        address: str,
        device_token: str | None = None,
    ) -> dict[str, Any]:
        """Sign in and register a device; raises Unauthorized, Throttled or Unavailable.

        The attempt is reserved against its throttle keys before the password is checked
        (so concurrent guesses cannot exceed the limit) and given back when it succeeds.
        ``device_token`` is the phone's earlier token, if any (see ``auth.sign_in_limits``).
        """
        if not 1 <= len(device_name) <= 100:
            raise Invalid("must be 1 to 100 characters", field="device_name")
        username = username.strip().lower()[:64]
        window = self.settings.throttle_window_seconds
        with self.database.write() as conn:
            cookie = auth.device_cookie(conn, device_token, username)
            limits = auth.sign_in_limits(username, address, cookie, self.settings)
            throttle.reserve(conn, limits, window, self.clock())
            account = auth.account_of(conn, username)
        try:
            # The slow hash runs outside any transaction; unknown users cost the same time.
            ok = len(password) <= passwords.MAX_LENGTH and passwords.verify_password(
                password, account.password_hash if account else passwords.dummy_hash(self.settings)
            )
        except Unavailable:
            with self.database.write() as conn:
                throttle.release(conn, list(limits))  # not an attempt: nothing was checked
            raise
        verified = account if ok else None
        with self.database.write() as conn:
            now = self.clock()
            if verified is None:
                audit.append(conn, at=now, actor=f"user:{username}", action="login.failed")
                result = None
            elif verified.disabled:
                audit.append(conn, at=now, actor=f"user:{username}", action="login.disabled")
                result = None
            else:
                subject, address_key = list(limits)
                throttle.clear(conn, subject)
                throttle.release(conn, [address_key])
                audit.append(conn, at=now, actor=f"user:{username}", action="login.ok")
                device_id, token = auth.enrol_device(conn, verified.user_id, device_name, now)
                audit.append(
                    conn,
                    at=now,
                    actor=f"user:{username} device:{device_id}",
                    action="device.enrol",
                    targets=[device_id],
                )
                result = {
                    "device_id": device_id,
                    "token": token,
                    "user": auth.user_json(conn, verified.user_id),
                }
        if result is None:
            if verified is not None:  # the right password: the user may know why
                raise Unauthorized(
                    "this account is disabled; ask an administrator", code="account_disabled"
                )
            raise Unauthorized("wrong username or password", code="invalid_credentials")
        return result

    def require_admin(self, token: str | None) -> None:
        """Raise unless the token is an admin's (before costly work on an admin request)."""
        with self.database.read() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
        if not caller.is_admin:
            raise Forbidden("only an administrator manages accounts", code="forbidden")

    def admin(self, token: str | None, change: Callable[[Connection, str, float], T]) -> T:
        """Run ``change(conn, actor, now)`` for an admin caller in one write transaction
        (``server.accounts`` writes the audit row)."""
        with self.database.write() as conn:
            if not self.database.is_sqlite:
                # The order in which a push takes its locks (server.optimistic): the rev
                # counter, device rows, the audit head. Touching the admin's device row
                # first and then taking the counter (a membership change) could deadlock
                # with a push from that device; admin actions are rare, so all take it.
                records.LOCK.run(conn)
            now = self.clock()
            caller = auth.authenticate(conn, token, self.settings, now)
            if not caller.is_admin:
                raise Forbidden("only an administrator manages accounts", code="forbidden")
            return change(conn, caller.actor, now)

    def check_database(self) -> None:
        """Raise Unavailable unless the database answers a query."""
        with self.database.read() as conn:
            conn.exec_driver_sql("SELECT 1")

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
        # In the order of the checks: the token first (no work on a stranger's body), then
        # the body's own checks, then the records.
        if self.pushes is not None:
            # PostgreSQL: read and merge before the rev lock that pushes queue on, then
            # write with others merged meanwhile, holding it for two round trips
            # (server.optimistic).
            with self.database.lookup() as conn:
                caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
                batch = push.prepare(body(), self.settings, self.clock())
                merged = optimistic.merge(conn, caller, batch, self.clock())
            if merged is None:
                return self.pushes.under_lock(caller, batch, self.clock())
            return self.pushes.write(merged)
        # SQLite runs one writer at a time from BEGIN: nothing to gain by merging before
        # the rev lock, so one transaction takes it first.
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
        span = page.audit
        if span is not None and span.targets:
            self._after_read(
                caller,
                "sync.pull",
                [f"revs:{span.start}-{span.end}", *span.targets],
                (lambda conn: pull.record_audited(conn, caller, span)) if span.remember else None,
            )
        else:
            self._after_read(caller)
        return page.body(caller.last_mutation_id)

    def put_attachment(self, token: str | None, sha256: str, data: bytes) -> bool:
        """Store an attachment; True when it was new."""
        with self.database.write() as conn:
            now = self.clock()
            caller = auth.authenticate(conn, token, self.settings, now)
            return attachments.put(conn, caller, sha256, data, now, self.settings)

    def housekeeping(self) -> int:
        """Delete the blobs no record has referred to for the grace period, and throttle
        counts whose window ended; returns how many blobs went."""
        with self.database.write() as conn:
            now = self.clock()
            throttle.forget_before(conn, now - attachments.DAY)
            return attachments.collect(conn, now, self.settings.attachment_grace_hours * 3600.0)

    def get_attachment(self, token: str | None, sha256: str) -> tuple[str, bytes]:
        """An attachment's content type and bytes, if the caller may see it."""
        with self.database.read() as conn:
            caller = auth.authenticate(conn, token, self.settings, self.clock(), touch=False)
            found = attachments.get(conn, caller, sha256)
        self._after_read(caller, "attachment.get", [sha256])
        return found

    def _after_read(
        self,
        caller: Caller,
        action: str = "",
        targets: Sequence[str] = (),
        also: Callable[[Connection], None] | None = None,
    ) -> None:
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
            if also is not None:
                also(conn)
