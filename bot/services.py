"""What listeners, the poller and the sender share: settings, database, provider, Slack client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.provider.base import Provider
from bot.settings import Settings
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    provider: Provider
    slack: WebClient
    extras: dict[str, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict[int, Any]) -> Services:
        # Bolt deep-copies the request context for lazy listeners; the services are shared, not copied.
        return self

    def close(self) -> None:
        self.db.dispose()
        sandbox = self.extras.get("sandbox")
        if sandbox is not None:
            sandbox.stop()


def build_services(settings: Settings, *, provider: Provider | None = None, slack: WebClient | None = None) -> Services:
    from bot.provider.factory import make_provider
    from bot.slack_client import make_web_client

    extras: dict[str, Any] = {}
    if provider is None:
        provider, sandbox = make_provider(settings)
        if sandbox is not None:
            extras["sandbox"] = sandbox
    return Services(
        settings=settings,
        db=Database(settings.database_url),
        provider=provider,
        slack=slack or make_web_client(settings.slack_bot_token, settings.slack_api_url),
        extras=extras,
    )
