"""Listeners, registered per feature (the bolt-python starter template's layout)."""

from __future__ import annotations

from slack_bolt import App

from bot.listeners import actions, commands, events, views


def register(app: App) -> None:
    commands.register(app)
    actions.register(app)
    views.register(app)
    events.register(app)
