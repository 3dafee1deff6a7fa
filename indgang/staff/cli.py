"""`indgang staff add USERNAME`: make (or with --replace, change) a staff account."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from indgang.redis_store import connect
from indgang.settings import get_settings
from indgang.staff.accounts import AccountError, Role, add_account


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    staff = subparsers.add_parser("staff", help="staff accounts for the console")
    commands = staff.add_subparsers(dest="staff_command", required=True)
    add = commands.add_parser("add", help="add a staff account (the password is asked for)")
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.STAFF.value)
    add.add_argument("--name", required=True, help="the name citizens and colleagues see on replies")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="change an existing account")
    add.set_defaults(func=add_command)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        sys.exit("the passwords differ")
    return first


def add_command(args: argparse.Namespace) -> None:
    password = _password(args.password_stdin)

    async def add() -> str:
        redis = connect(get_settings())
        try:
            member = await add_account(
                redis, args.username, password, Role(args.role), args.name, replace=args.replace
            )
        finally:
            await redis.aclose()
        return f"{member.username} ({member.role.value}) can log in at /staff"

    try:
        print(asyncio.run(add()))
    except AccountError as exc:
        sys.exit(str(exc))
