"""Cancel on an evaluation's progress message: the worker stops before its next request."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, Respond

from bot.errors import guarded
from bot.evals import store
from bot.messages.eval_report import CANCEL_ACTION
from bot.services import Services


def _ack(ack: Ack) -> None:
    ack()


@guarded
def _cancel(body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any) -> None:
    services: Services = context["services"]
    user = body["user"]["id"]
    team = (body.get("team") or {}).get("id") or body["user"].get("team_id")
    try:
        run_id = int(action.get("value") or "")
    except ValueError:
        return
    run = store.get_run(services.db, run_id)
    if run is None or (run.team_id and run.team_id != team):
        respond(response_type="ephemeral", replace_original=False, text="That evaluation is not known here.")
        return
    if store.request_cancel(services.db, run_id, user):
        text = f"Cancelling the evaluation at {run.progress_shown} / {run.examples}: nothing more is asked."
    else:
        text = f"That evaluation is already {run.status}." if run.status not in {"pending", "running"} else "Already cancelling."
    respond(response_type="ephemeral", replace_original=False, text=text)


def register(app: App) -> None:
    app.action(CANCEL_ACTION)(ack=_ack, lazy=[_cancel])
