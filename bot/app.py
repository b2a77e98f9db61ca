"""Build the Bolt app: middleware, the error hook and every feature's listeners."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from slack_bolt import App

from bot import listeners
from bot.errors import answer_error
from bot.middleware import register_middleware
from bot.replies import reply_for
from bot.services import Services
from bot.wiring import wire

log = logging.getLogger(__name__)


def build_app(services: Services, *, socket_mode: bool = False) -> App:
    wire()  # the features' subscribers and renderers: the web process delivers and announces too
    s = services.settings
    app = App(
        signing_secret=s.slack_signing_secret or "",
        client=services.slack,
        # Ack first, then run the slow part (provider calls, uploads) on the pool: no path risks
        # Slack's 3-second limit.
        process_before_response=False,
        request_verification_enabled=not socket_mode,
        token_verification_enabled=True,
        listener_executor=ThreadPoolExecutor(max_workers=16, thread_name_prefix="bolt"),
        logger=logging.getLogger("ftbot.bolt"),
    )

    @app.error
    def _on_error(error: Exception, body, client, respond) -> None:  # noqa: ANN001
        answer_error(error, reply_for(body or {}, client, respond))

    register_middleware(app, services)
    listeners.register(app)
    return app
