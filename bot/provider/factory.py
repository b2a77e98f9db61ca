"""Build the configured provider. With FTBOT_SANDBOX=1 that is OpenAI's client against a local sandbox."""

from __future__ import annotations

import logging

from bot.provider.base import Provider
from bot.settings import Settings

log = logging.getLogger(__name__)


def make_provider(settings: Settings) -> tuple[Provider, object | None]:
    """The provider, and the in-process sandbox server when one was started (to stop it later)."""
    from bot.provider.openai_adapter import OpenAIProvider

    if settings.sandbox and not settings.openai_base_url:
        from bot.sandbox.server import SandboxServer
        from bot.sandbox.state import Timing

        server = SandboxServer(timing=Timing(validating_seconds=5, queued_seconds=5, step_seconds=2)).start()
        log.info("FTBOT_SANDBOX=1: simulated provider at %s", server.url)
        return OpenAIProvider(api_key=settings.openai_api_key or "sandbox", base_url=server.url), server
    return OpenAIProvider(api_key=settings.openai_api_key or "", base_url=settings.openai_base_url), None
