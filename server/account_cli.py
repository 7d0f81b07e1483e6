"""The account commands of ``python -m server``: users' whole life from the command line.

Passwords are read from a prompt (twice) or, with ``--password-stdin``, from the first line
of standard input, so they never show in ``ps`` or the shell's history; ``--password`` is
kept for scripts and warns. Each change is audited with the actor ``cli``.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from server import accounts, auth
from server.db import Database
from server.errors import Invalid
from server.passwords import hash_password, password_problem
from server.scope import ROLES
from server.settings import Settings

ACTOR = "cli"


def _password_options(parser: argparse.ArgumentParser) -> None:
    given = parser.add_mutually_exclusive_group()
    given.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    given.add_argument(
        "--password",
        help="the password itself (visible to other users in "
        "`ps` and kept in shell history: for throwaway scripts only)",
    )


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the account subcommands to ``commands``."""
    user = commands.add_parser("create-user", parents=[common], help="add a user")
    user.add_argument("username")
    _password_options(user)
    user.add_argument("--role", required=True, choices=list(ROLES))
    user.add_argument("--team", action="append", default=[], help="team name (repeatable)")
    commands.add_parser("list-users", parents=[common], help="users, roles, teams, devices")
    for name, what in (
        ("disable-user", "stop a user signing in and revoke their devices (they erase their data)"),
        ("enable-user", "let a disabled user sign in again"),
        ("list-devices", "a user's devices, revoked ones too"),
    ):
        commands.add_parser(name, parents=[common], help=what).add_argument("username")
    reset = commands.add_parser("reset-password", parents=[common], help="set a new password")
    reset.add_argument("username")
    _password_options(reset)
    reset.add_argument(
        "--revoke-devices",
        action="store_true",
        help="also revoke every device (a compromised account; unsynced edits on them are lost)",
    )
    role = commands.add_parser("set-role", parents=[common], help="change a user's role")
    role.add_argument("username")
    role.add_argument("--role", required=True, choices=list(ROLES))
    for name, what in (
        ("add-to-team", "make a user a member of a team"),
        ("remove-from-team", "end a membership (their devices purge the team's patients)"),
    ):
        member = commands.add_parser(name, parents=[common], help=what)
        member.add_argument("username")
        member.add_argument("--team", required=True)


COMMANDS = {
    "create-user",
    "list-users",
    "disable-user",
    "enable-user",
    "list-devices",
    "reset-password",
    "set-role",
    "add-to-team",
    "remove-from-team",
}


def read_password(args: argparse.Namespace) -> str:
    """The new password from --password (with a warning), stdin or a prompt."""
    if args.password is not None:
        print(
            "warning: --password is visible to other users of this machine; prefer the "
            "prompt or --password-stdin",
            file=sys.stderr,
        )
        password: str = args.password
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise Invalid("the two passwords differ", field="password")
    problem = password_problem(password)
    if problem:
        raise Invalid(f"password {problem}", field="password")
    return password


def run(args: argparse.Namespace, settings: Settings, database: Database, now: float) -> int:
    """Run one account command; returns the exit code."""
    command = args.command
    encoded = None
    if command in ("create-user", "reset-password"):
        encoded = hash_password(read_password(args), settings)
    with database.write() as conn:
        if command == "create-user":
            assert encoded is not None
            team_ids = [auth.team_id_by_name(conn, name) for name in args.team]
            user_id = auth.create_user(conn, args.username, encoded, args.role, team_ids, now)
            accounts.audit_create(conn, user_id, ACTOR, now)
            print(user_id)
            return 0
        if command == "list-users":
            for user in accounts.list_users(conn):
                teams = ",".join(t["name"] for t in user["teams"]) or "-"
                state = "DISABLED" if user["disabled"] else "active"
                print(
                    f"{user['username']}\t{user['role']}\t{teams}\t{state}\t"
                    f"{user['active_devices']} active devices\t{user['id']}"
                )
            return 0
        user_id = accounts.user_id_by_name(conn, args.username)
        if command == "list-devices":
            for device in accounts.devices_of(conn, user_id):
                print(json.dumps(device))
        elif command == "disable-user":
            revoked = accounts.disable(conn, user_id, ACTOR, now)
            print(f"disabled {args.username}; revoked {len(revoked)} devices")
        elif command == "enable-user":
            accounts.enable(conn, user_id, ACTOR, now)
            print(f"enabled {args.username}")
        elif command == "reset-password":
            assert encoded is not None
            revoked = accounts.set_password(
                conn, user_id, encoded, ACTOR, now, revoke_devices=args.revoke_devices
            )
            print(f"new password set for {args.username}; revoked {len(revoked)} devices")
        elif command == "set-role":
            accounts.set_role(conn, user_id, args.role, ACTOR, now)
            print(f"{args.username} is now {args.role}")
        elif command == "add-to-team":
            team_id = auth.team_id_by_name(conn, args.team)
            accounts.add_to_team(conn, user_id, team_id, ACTOR, now)
            print(f"{args.username} joined {args.team}")
        else:  # remove-from-team
            team_id = auth.team_id_by_name(conn, args.team)
            accounts.remove_from_team(conn, user_id, team_id, ACTOR, now)
            print(f"{args.username} left {args.team}")
    return 0
