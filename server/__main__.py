"""Command line of DESIGN §2: ``python -m server COMMAND [--database-url URL] ...``."""

from __future__ import annotations

import argparse
import gc
import socket
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from server import account_cli, audit, auth, migrations, records, seed, serving, workers
from server.db import Database
from server.errors import ServerError
from server.service import Service
from server.settings import Settings, database_url
from sync import hlc


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--database-url",
        default=database_url(),
        help="SQLAlchemy URL (default: $LIAISON_DATABASE_URL or sqlite:///var/liaison.db)",
    )
    parser = argparse.ArgumentParser(prog="python -m server", description="Liaison server")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", parents=[common], help="run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on the one port (PostgreSQL only; default 1)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (off by default: it costs as much as a /healthz answer)",
    )
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="IP",
        help="a reverse proxy whose X-Forwarded-For is believed (repeatable; default: none, "
        "or $LIAISON_TRUSTED_PROXIES, comma-separated)",
    )
    team = commands.add_parser("create-team", parents=[common], help="add a team")
    team.add_argument("name")
    account_cli.add_parsers(commands, common)
    assign = commands.add_parser("assign", parents=[common], help="move a patient to a team")
    assign.add_argument("patient_id")
    assign.add_argument("--team", required=True)
    revoke = commands.add_parser("revoke-device", parents=[common], help="revoke a device")
    revoke.add_argument("device_id")
    verify = commands.add_parser(
        "verify-audit", parents=[common], help="check the audit log's keyed hash chain"
    )
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a head printed by audit-head earlier (repeatable)",
    )
    verify.add_argument(
        "--anchors-file",
        metavar="FILE",
        help="a file of such heads, one per line (kept off this server)",
    )
    commands.add_parser(
        "audit-head",
        parents=[common],
        help="print the audit log's head (SEQ:HASH) to keep elsewhere",
    )
    commands.add_parser(
        "housekeeping",
        parents=[common],
        help="delete unreferenced attachments past their grace period "
        "(a running server does it every hour)",
    )
    demo = commands.add_parser("seed-demo", parents=[common], help="create demo data")
    demo.add_argument("--if-empty", action="store_true", help="only on a fresh database")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    settings = Settings.from_environ()
    try:
        key = audit.load_key()
    except ServerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    database = Database(
        args.database_url,
        synchronous=settings.sqlite_synchronous,
        audit_key=key,
        timeout=settings.db_timeout_seconds,
    )
    try:
        migrations.migrate(database)
        if args.command != "verify-audit":  # which reports a foreign key as its finding
            with database.write() as conn:
                audit.bind_key(conn, key)
        return _run(args, settings, database)
    except ServerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        database.dispose()


def _run(args: argparse.Namespace, settings: Settings, database: Database) -> int:
    now = time.time()
    if args.command in account_cli.COMMANDS:
        return account_cli.run(args, settings, database, now)
    return _COMMANDS[args.command](args, settings, database, now)


def _serve(args: argparse.Namespace, settings: Settings, database: Database, now: float) -> int:
    import uvicorn

    from server import clock
    from server.app import create_app

    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and database.is_sqlite:
        print(
            "error: --workers above 1 needs PostgreSQL: SQLite has one writer at a time, "
            "which one process keeps busy (set --database-url postgresql://...)",
            file=sys.stderr,
        )
        return 2

    def options() -> dict[str, Any]:
        return serving.uvicorn_options(
            create_app(settings, database, clock=clock.from_environ()),
            host=args.host,
            port=args.port,
            proxies=serving.trusted_proxies(args.trusted_proxy),
            header_timeout=settings.header_timeout_seconds,
            access_log=args.access_log,
        )

    _tune_gc()
    if args.workers == 1:
        uvicorn.run(**options())
        return 0
    sock = workers.listening_socket(args.host, args.port)
    database.dispose()  # no database connection may cross a fork: each worker opens its own

    def serve(shared: socket.socket) -> None:
        uvicorn.Server(uvicorn.Config(**options())).run(sockets=[shared])

    return workers.run(args.workers, sock, serve)


def _create_team(
    args: argparse.Namespace, settings: Settings, database: Database, now: float
) -> int:
    with database.write() as conn:
        team_id = auth.create_team(conn, args.name, now)
        audit.append(conn, at=now, actor="cli", action="team.create", targets=[team_id])
    print(team_id)
    return 0


def _assign(args: argparse.Namespace, settings: Settings, database: Database, now: float) -> int:
    with database.write() as conn:
        team_id = auth.team_id_by_name(conn, args.team)
        stamp = hlc.Clock("server", wall=lambda: int(now * 1000)).now()
        try:
            moved = records.move_patient(conn, args.patient_id, team_id, stamp, now)
        except LookupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        audit.append(
            conn,
            at=now,
            actor="cli",
            action="patient.assign",
            targets=[args.patient_id, team_id],
        )
    print(f"moved {len(moved)} records to {args.team}")
    return 0


def _revoke_device(
    args: argparse.Namespace, settings: Settings, database: Database, now: float
) -> int:
    with database.write() as conn:
        auth.revoke_device(conn, args.device_id, None, now)
    print(f"revoked {args.device_id}")
    return 0


def _audit_head(
    args: argparse.Namespace, settings: Settings, database: Database, now: float
) -> int:
    with database.read() as conn:
        print(audit.head(conn))
    return 0


def _housekeeping(
    args: argparse.Namespace, settings: Settings, database: Database, now: float
) -> int:
    removed = Service(settings, database).housekeeping()
    print(f"deleted {removed} unreferenced attachments")
    return 0


def _seed_demo(args: argparse.Namespace, settings: Settings, database: Database, now: float) -> int:
    if args.if_empty and not seed.is_empty(database):
        print("database already has users; not seeding")
        return 0
    for username, password, role in seed.seed_demo(database, settings, now):
        print(f"demo {role}: username {username!r} password {password!r}")
    return 0


def _verify_audit(
    args: argparse.Namespace, settings: Settings, database: Database, now: float
) -> int:
    lines = list(args.anchor)
    if args.anchors_file:
        with open(args.anchors_file, encoding="utf-8") as kept:
            lines += [line for line in kept if line.strip() and not line.startswith("#")]
    try:
        anchors = [audit.parse_anchor(line) for line in lines]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    assert database.audit_key is not None
    with database.read() as conn:
        verdict = audit.verify(conn, database.audit_key, anchors)
    if verdict.ok:
        checked = f", {len(anchors)} anchors held" if anchors else ""
        print(f"audit log ok: {verdict.rows} rows{checked}; head {verdict.head}")
        return 0
    print(f"audit log BROKEN at row {verdict.bad_seq}: {verdict.reason}", file=sys.stderr)
    return 2


_Command = Callable[[argparse.Namespace, Settings, Database, float], int]
_COMMANDS: dict[str, _Command] = {
    "serve": _serve,
    "create-team": _create_team,
    "assign": _assign,
    "revoke-device": _revoke_device,
    "verify-audit": _verify_audit,
    "audit-head": _audit_head,
    "housekeeping": _housekeeping,
    "seed-demo": _seed_demo,
}


def _tune_gc() -> None:
    """Collect cycles less often in the server process.

    A push allocates thousands of small dicts and lists, so the default threshold (700)
    runs a young collection every few mutations: about 5% of a push's CPU time in
    ``benchmarks.server``. Objects made at start-up are moved out of the collector's
    sight for good (``gc.freeze``). Cycles are still collected, a bit later.
    """
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


if __name__ == "__main__":
    sys.exit(main())
