"""The `indgang` command: run the stack, train the model, and the admin tasks."""

from __future__ import annotations

import argparse
import os

from indgang import conversation_cli
from indgang.catalogue import cli as catalogue_cli
from indgang.records import cli as records_cli
from indgang.settings import get_settings, get_settings_or_exit
from indgang.staff import cli as staff_cli


def _run(_args: argparse.Namespace) -> None:
    from indgang import devstack

    devstack.run(devstack.launcher_settings())


def _train(args: argparse.Namespace) -> None:
    from indgang import devstack

    # The project's own small models first (seconds), then Rasa (minutes, only when it changed).
    devstack.ensure_learned(get_settings())
    print(devstack.ensure_model(force=args.force))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="indgang", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="start Redis, Rasa, the action server and the gateway").set_defaults(
        func=_run
    )
    train = commands.add_parser(
        "train", help="train the safety and need classifiers, and Rasa when bot/ or nlu_data/ changed"
    )
    train.add_argument("--force", action="store_true", help="train even when nothing changed")
    train.set_defaults(func=_train)
    catalogue_cli.add_commands(commands)
    staff_cli.add_commands(commands)
    records_cli.add_commands(commands)
    conversation_cli.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    if args.func is not _run:  # the launcher checks its own settings, local secrets included
        get_settings_or_exit()
    args.func(args)


if __name__ == "__main__":
    main()
