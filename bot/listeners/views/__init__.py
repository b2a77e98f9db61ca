from __future__ import annotations

from slack_bolt import App

from bot.listeners.views import start_job, upload_dataset


def register(app: App) -> None:
    start_job.register(app)
    upload_dataset.register(app)
