"""Global Bolt middleware: hand every listener the shared services."""

from __future__ import annotations

from slack_bolt import App

from bot.services import Services


def register_middleware(app: App, services: Services) -> None:
    @app.middleware
    def inject_services(context, next):  # noqa: ANN001, A002 - Bolt passes by these names
        context["services"] = services
        next()
