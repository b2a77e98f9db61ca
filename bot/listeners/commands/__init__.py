from __future__ import annotations

from slack_bolt import App

from bot.listeners.commands import ft


def register(app: App) -> None:
    ft.register(app)
