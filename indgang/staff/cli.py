"""`indgang staff ...`: add (or with --replace, change), disable, enable and remove staff
accounts, and turn an account's TOTP off (a lost phone). Every change ends the account's
sessions (and so its open live streams) at once, and is written to the audit log."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from indgang.records import db as records
from indgang.records import migrate
from indgang.records.db import Database
from indgang.redis_store import connect
from indgang.settings import get_settings
from indgang.staff import audit
from indgang.staff.accounts import (
    AccountError,
    Role,
    add_account,
    remove_account,
    reset_totp,
    set_disabled,
)

ACTOR = "cli"  # who made a change, in the audit log: someone with access to the server


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    staff = subparsers.add_parser("staff", help="staff accounts for the console")
    commands = staff.add_subparsers(dest="staff_command", required=True)
    add = commands.add_parser("add", help="add a staff account (the password is asked for)")
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.STAFF.value)
    add.add_argument("--name", required=True, help="the name citizens and colleagues see on replies")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.add_argument("--replace", action="store_true", help="change an existing account (ends its sessions)")
    add.set_defaults(func=add_command)
    for name, func, text in (
        ("disable", disable_command, "stop an account from logging in; ends its sessions and streams now"),
        ("enable", enable_command, "let a disabled account log in again"),
        ("remove", remove_command, "delete an account; ends its sessions and streams now"),
        ("reset-totp", reset_totp_command, "turn an account's two-step verification off (a lost phone)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("username")
        command.set_defaults(func=func)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        sys.exit("the passwords differ")
    return first


def _run(change: Callable[[Database, aioredis.Redis], Awaitable[str]]) -> None:
    async def run() -> str:
        settings = get_settings()
        migrate.on_start(settings)
        db, redis = records.connect(settings), connect(settings)
        try:
            return await change(db, redis)
        finally:
            await redis.aclose()
            await db.aclose()

    try:
        print(asyncio.run(run()))
    except AccountError as exc:
        sys.exit(str(exc))


def add_command(args: argparse.Namespace) -> None:
    password = _password(args.password_stdin)

    async def add(db: Database, redis: aioredis.Redis) -> str:
        member = await add_account(
            db, redis, args.username, password, Role(args.role), args.name, replace=args.replace
        )
        await audit.record(
            db, ACTOR, "account_changed" if args.replace else "account_added", detail=member.username
        )
        return f"{member.username} ({member.role.value}) can log in at /staff"

    _run(add)


def _ending(
    action: str, end: Callable[[Database, aioredis.Redis, str], Awaitable[int]], done: str
) -> Callable:
    def command(args: argparse.Namespace) -> None:
        username = args.username.strip().lower()

        async def change(db: Database, redis: aioredis.Redis) -> str:
            ended = await end(db, redis, username)
            await audit.record(db, ACTOR, action, detail=username)
            return f"{username} {done}; {ended} session(s) ended"

        _run(change)

    return command


disable_command = _ending("account_disabled", lambda d, r, u: set_disabled(d, r, u, True), "is disabled")
enable_command = _ending("account_enabled", lambda d, r, u: set_disabled(d, r, u, False), "can log in again")
remove_command = _ending("account_removed", remove_account, "is removed")
reset_totp_command = _ending("totp_reset", reset_totp, "logs in without a code again")
