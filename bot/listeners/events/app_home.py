"""The App Home tab: the team's jobs, running ones first."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.jobs.listing import home_jobs, models_at_risk
from bot.messages.answers import home_view
from storage.types import utcnow


def _opened(event: dict[str, Any], body: dict[str, Any], client: Any, context: Any) -> None:
    if event.get("tab") not in (None, "home"):
        return  # the Messages tab: nothing to draw
    team = body.get("team_id") or context.team_id
    client.views_publish(user_id=event["user"], view=home_view(home_jobs(context["services"], team), utcnow(), at_risk=models_at_risk(context["services"], team)))


def register(app: App) -> None:
    app.event("app_home_opened")(_opened)
