"""Buttons on job cards, lists and the App Home tab: Cancel / Pause / Resume, and list paging."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.errors import guarded
from bot.jobs.lifecycle import steer_job
from bot.jobs.listing import home_jobs, list_page, models_at_risk
from bot.messages.answers import home_view, job_list, steered_answer
from bot.replies import reply_for
from bot.services import Services
from storage.types import utcnow

ACTIONS = {"job_cancel": "cancel", "job_pause": "pause", "job_resume": "resume"}


def _ack(ack: Ack) -> None:
    ack()


def _team(body: dict[str, Any]) -> str:
    return (body.get("team") or {}).get("id") or body["user"]["team_id"]


@guarded
def _steer(body: dict[str, Any], action: dict[str, Any], respond: Respond | None, client: Any, context: Any) -> None:
    services: Services = context["services"]
    verb = ACTIONS[action["action_id"]]
    user, team = body["user"]["id"], _team(body)
    view = steer_job(services, team_id=team, user=user, ref=action.get("value", ""), action=verb)
    answer = steered_answer(view, verb, by=user)
    if (body.get("view") or {}).get("type") == "home":
        # No response_url in the Home tab: show the answer there, with the jobs as they are now.
        client.views_publish(user_id=user, view=home_view(home_jobs(services, team), utcnow(), notice=answer["text"], at_risk=models_at_risk(services, team)))
        return
    if respond is not None:
        respond(response_type="ephemeral", replace_original=False, **answer)
        return
    reply = reply_for(body, client, respond)
    if reply is not None:
        reply(answer["text"])


@guarded
def _page(body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any) -> None:
    services: Services = context["services"]
    try:
        offset = max(0, int(action.get("value", "0")))
    except ValueError:
        offset = 0
    page = list_page(services, _team(body), offset=offset)
    respond(replace_original=True, **job_list(page.jobs, offset=page.offset, total=page.total, page=page.page))


def register(app: App) -> None:
    for action_id in ACTIONS:
        app.action(action_id)(ack=_ack, lazy=[_steer])
    app.action("list_page")(ack=_ack, lazy=[_page])
