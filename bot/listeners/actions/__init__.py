from __future__ import annotations

from slack_bolt import App

from bot.listeners.actions import (
    approval_buttons,
    dataset_buttons,
    eval_buttons,
    job_buttons,
    migration_buttons,
)


def register(app: App) -> None:
    job_buttons.register(app)
    dataset_buttons.register(app)
    approval_buttons.register(app)
    migration_buttons.register(app)
    eval_buttons.register(app)
