"""What listeners, the poller and the sender share: settings, database, providers, Slack client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient

from bot.clock import Clock, current
from bot.clock import use as use_clock
from bot.errors import UserError
from bot.provider.base import Provider
from bot.settings import Settings
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    # Every enabled provider by name ("openai", "azure", "together"); rows name theirs.
    providers: dict[str, Provider]
    slack: WebClient
    default_provider: str = "openai"
    extras: dict[str, Any] = field(default_factory=dict)

    def __deepcopy__(self, memo: dict[int, Any]) -> Services:
        # Bolt deep-copies the request context for lazy listeners; the services are shared, not copied.
        return self

    @property
    def provider(self) -> Provider:
        """The default provider: what `start` and `upload` use when none is named."""
        return self.providers[self.default_provider]

    @provider.setter
    def provider(self, value: Provider) -> None:
        # Replaces the default provider (tests swap in a client with other timeouts).
        self.providers[self.default_provider] = value

    @property
    def clock(self) -> Clock:
        """The one clock every "now" and "today" reads (bot/clock.py)."""
        return current()

    @property
    def several_providers(self) -> bool:
        """More than one provider enabled: rows, cards and answers then name each one's provider."""
        return len(self.providers) > 1

    def provider_for(self, name: str | None) -> Provider:
        """The provider a row belongs to (None: the default). A row of a provider no longer enabled
        gets a clear answer rather than being sent to another provider."""
        if name is None:
            return self.provider
        found = self.providers.get(name)
        if found is None:
            raise UserError(f"The provider `{name[:32]}` is not enabled here (enabled: {', '.join(self.providers)}).")
        return found

    def close(self) -> None:
        self.db.dispose()
        for server in self.extras.get("sandboxes", ()):
            server.stop()
        sandbox = self.extras.get("sandbox")
        if sandbox is not None:
            sandbox.stop()


def build_services(
    settings: Settings,
    *,
    provider: Provider | None = None,
    providers: dict[str, Provider] | None = None,
    slack: WebClient | None = None,
    clock: Clock | None = None,
) -> Services:
    """`provider` (one) or `providers` (by name) replace the ones the settings would make; `clock`
    becomes the process's clock (tests and the demo set a date; the default is the system's)."""
    if clock is not None:
        use_clock(clock)
    from bot.jobs.view import show_providers
    from bot.provider.factory import make_providers
    from bot.slack_client import make_web_client

    extras: dict[str, Any] = {}
    if providers is None and provider is not None:
        providers = {getattr(provider, "name", "openai"): provider}
    if providers is None:
        providers, servers = make_providers(settings)
        extras["sandboxes"] = servers
    default = settings.default_provider if settings.default_provider in providers else next(iter(providers))
    show_providers(len(providers) > 1)
    return Services(
        settings=settings,
        db=Database(settings.database_url),
        providers=dict(providers),
        slack=slack or make_web_client(settings.slack_bot_token, settings.slack_api_url),
        default_provider=default,
        extras=extras,
    )
