"""`indgang conversation erase ID --reason ...`: erasure on a citizen's request from the command
line (the same erasure as SLET, the web chat's button and the console's), written to the audit
log with the operator's login name and the reason."""

from __future__ import annotations

import argparse
import asyncio
import getpass

from indgang.erasure import erase_conversation
from indgang.records import db as records
from indgang.records import migrate
from indgang.redis_store import connect
from indgang.settings import get_settings
from indgang.staff import audit

MIN_REASON_CHARS = 3


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("conversation", help="a citizen's conversation")
    commands = group.add_subparsers(dest="conversation_command", required=True)
    erase = commands.add_parser("erase", help="erase everything stored about a conversation (audited)")
    erase.add_argument("conversation_id")
    erase.add_argument(
        "--reason", required=True, help="why (kept in the audit log: never the citizen's name)"
    )
    erase.set_defaults(func=erase_command)


def erase_command(args: argparse.Namespace) -> None:
    reason = args.reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise SystemExit("give the reason for the erasure (--reason)")

    async def erase() -> int:
        settings = get_settings()
        migrate.on_start(settings)
        db, redis = records.connect(settings), connect(settings)
        try:
            deleted = await erase_conversation(
                db, redis, settings, args.conversation_id, requested_by="staff"
            )
            await audit.record(db, f"cli:{getpass.getuser()}", "erase", args.conversation_id, reason)
        finally:
            await redis.aclose()
            await db.aclose()
        return deleted

    print(f"erased: {asyncio.run(erase())} keys deleted")
