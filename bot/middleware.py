"""Global Bolt middleware: shared services for every listener, and the one permission check."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse

from bot.commands.parse import OPERATOR_VERBS, parse, parse_channel, verb_of
from bot.errors import UserError
from bot.permissions import ChannelMembers, Operators, Verdict
from bot.replies import reply_for
from bot.services import Services

# Buttons and forms that change something at the provider.
OPERATOR_ACTIONS = frozenset({"job_cancel", "job_pause", "job_resume", "open_start_modal", "dataset_upload_anyway", "migration_confirm", "migration_cancel", "eval_cancel"})
OPERATOR_VIEWS = frozenset({"start_job", "upload_dataset"})
DENIED = ":lock: Only operators may do that here. Ask someone listed in FTBOT_OPERATORS."
REFUSALS = {
    Verdict.DENIED: DENIED,
    Verdict.CHECKING: ":hourglass_flowing_sand: Checking with Slack who the operators are. Try again in a few seconds.",
    Verdict.UNAVAILABLE: ":warning: Slack could not tell me who the operators are right now, so I can't let you do that. Try again in a minute.",
}


def watch_target(body: dict[str, Any]) -> str | None:
    """The channel a `/ft watch JOB #channel` points a job at, when it is not the one the command
    runs in (where the person evidently is). None when there is nothing to check; a malformed
    command is left to the verb's own usage answer."""
    if body.get("command") != "/ft" or verb_of(body.get("text", "")) != "watch":
        return None
    try:
        args = parse(body.get("text", "")).args
        channel = parse_channel(args[1]) if len(args) == 2 else None
    except UserError:
        return None
    return channel if channel and channel != body.get("channel_id") else None


def member_refusal(verdict: Verdict, channel: str, error: str | None) -> str:
    if verdict is Verdict.DENIED:
        return f":lock: You can only point a job at a channel you are in. Join <#{channel}> first, or run the command there."
    if verdict is Verdict.CHECKING:
        return f":hourglass_flowing_sand: Checking with Slack who is in <#{channel}>. Try again in a few seconds."
    if error == "channel_not_found":
        return f":warning: I can't see <#{channel}>. If it is private, invite me there first (`/invite @ftbot`)."
    if error == "missing_scope":
        return f":warning: I can't check who is in <#{channel}>: the app needs the `channels:read` and `groups:read` scopes (reinstall it)."
    return f":warning: Slack could not tell me who is in <#{channel}> right now, so I did not change anything. Try again in a minute."


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


log = logging.getLogger(__name__)


def _tell(reply: Any, text: str) -> None:
    try:
        reply(text)
    except Exception:  # noqa: BLE001 - the refusal stands even if Slack did not show it
        log.exception("could not tell a user their click was refused")


def register_middleware(app: App, services: Services) -> None:
    operators = Operators(services.settings.operators, services.slack)
    services.extras["operators"] = operators
    members = ChannelMembers(services.slack)
    services.extras["channel_members"] = members
    # Refusals of clicks are told through Slack's API; that must not delay the HTTP answer.
    notices = ThreadPoolExecutor(max_workers=2, thread_name_prefix="refusals")

    @app.middleware
    def inject_services(context, next):  # noqa: ANN001, A002 - Bolt passes by these names
        context["services"] = services
        next()

    @app.middleware
    def require_operator(body, client, respond, next):  # noqa: ANN001, A002
        if not needs_operator(body):
            return next()
        verdict = operators.check(acting_user(body))
        if verdict is Verdict.ALLOWED:
            return next()
        text = REFUSALS[verdict]
        # A middleware that stops the chain answers the HTTP request itself.
        if body.get("type") == "view_submission":
            return _json({"response_action": "errors", "errors": {"file": text.split(" ", 1)[1][:150]}})
        if body.get("command"):
            return _json({"response_type": "ephemeral", "text": text})
        reply = reply_for(body, client, respond)
        if reply is not None:
            notices.submit(_tell, reply, text)
        return BoltResponse(status=200, body="")

    @app.middleware
    def require_channel_member(body, next):  # noqa: ANN001, A002
        channel = watch_target(body)
        if channel is None:
            return next()
        verdict = members.check(channel, acting_user(body))
        if verdict is Verdict.ALLOWED:
            return next()
        return _json({"response_type": "ephemeral", "text": member_refusal(verdict, channel, members.failure(channel))})
