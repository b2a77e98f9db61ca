"""Global Bolt middleware: shared services for every listener, and the one permission check."""

from __future__ import annotations

import json
from typing import Any

from slack_bolt import App, BoltResponse

from bot.commands.parse import OPERATOR_VERBS, verb_of
from bot.permissions import Operators
from bot.services import Services

# Buttons and forms that change something at the provider.
OPERATOR_ACTIONS = frozenset({"job_cancel", "job_pause", "job_resume", "open_start_modal", "dataset_upload_anyway"})
OPERATOR_VIEWS = frozenset({"start_job", "upload_dataset"})
DENIED = ":lock: Only operators may do that here. Ask someone listed in FTBOT_OPERATORS."


def needs_operator(body: dict[str, Any]) -> bool:
    if body.get("command") == "/ft":
        return verb_of(body.get("text", "")) in OPERATOR_VERBS
    if body.get("type") == "block_actions":
        return any(a.get("action_id") in OPERATOR_ACTIONS for a in body.get("actions") or [])
    if body.get("type") == "view_submission":
        return (body.get("view") or {}).get("callback_id") in OPERATOR_VIEWS
    return False


def acting_user(body: dict[str, Any]) -> str | None:
    if "user_id" in body:
        return body["user_id"]
    user = body.get("user")
    return user.get("id") if isinstance(user, dict) else None


def _json(body: dict[str, Any]) -> BoltResponse:
    return BoltResponse(status=200, body=json.dumps(body), headers={"content-type": "application/json;charset=utf-8"})


def register_middleware(app: App, services: Services) -> None:
    operators = Operators(services.settings.operators, services.slack)
    services.extras["operators"] = operators

    @app.middleware
    def inject_services(context, next):  # noqa: ANN001, A002 - Bolt passes by these names
        context["services"] = services
        next()

    @app.middleware
    def require_operator(body, respond, next):  # noqa: ANN001, A002
        if not needs_operator(body) or operators.allows(acting_user(body)):
            return next()
        # A middleware that stops the chain answers the HTTP request itself.
        if body.get("type") == "view_submission":
            return _json({"response_action": "errors", "errors": {"file": DENIED}})
        if body.get("command"):
            return _json({"response_type": "ephemeral", "text": DENIED})
        respond(text=DENIED, response_type="ephemeral", replace_original=False)
        return BoltResponse(status=200, body="")
