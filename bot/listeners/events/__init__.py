from __future__ import annotations

from slack_bolt import App

from bot.listeners.events import app_home, files


def register(app: App) -> None:
    app_home.register(app)
    files.register(app)
