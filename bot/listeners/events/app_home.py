"""The App Home tab: the team's jobs, running ones first."""

from __future__ import annotations

from typing import Any

from slack_bolt import App

from bot.jobs.store import recent_jobs
from bot.jobs.view import view_of
from bot.messages.answers import home_view
from bot.services import Services
from storage.types import utcnow


def publish_home(services: Services, client: Any, team_id: str, user: str) -> None:
    with services.db.session() as s:
        views = [view_of(j) for j in recent_jobs(s, team_id, 40)]
    client.views_publish(user_id=user, view=home_view(views, utcnow()))


def _opened(event: dict[str, Any], body: dict[str, Any], client: Any, context: Any, logger: Any) -> None:
    if event.get("tab") not in (None, "home"):
        return
    publish_home(context["services"], client, body.get("team_id") or context.team_id, event["user"])


def register(app: App) -> None:
    app.event("app_home_opened")(_opened)
