"""The action server: rasa-sdk's app with Indgang's actions, plus the NLG endpoint for Rasa."""

from __future__ import annotations

import argparse
import logging

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request

from actions import context, nlg
from indgang import offer_questions
from indgang.logging_setup import configure_logging
from indgang.need_gate import need_gate
from indgang.search import get_offer_search
from indgang.settings import get_settings_or_exit

log = logging.getLogger(__name__)


def build_app() -> Sanic:
    executor = ActionExecutor()
    executor.register_package("actions.actions")
    executor.register_package("actions.booking")
    app = create_app(executor)

    @app.post("/nlg")
    async def render(request: Request) -> response.HTTPResponse:
        try:
            return response.json(nlg.render(request.json or {}))
        except KeyError as exc:
            log.error("nlg: %s", exc)
            return response.json({"error": str(exc)}, status=404)

    @app.before_server_start
    async def warm(_app: Sanic) -> None:
        # Every model an action uses is loaded before the server listens, so `/health` answering
        # means ready: a restarted action server's first turn no longer pays for the loading.
        get_offer_search(context.settings()).warm()
        need_gate()
        offer_questions.classifier()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Indgang action server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    configure_logging(get_settings_or_exit().log_level)
    app = build_app()
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
