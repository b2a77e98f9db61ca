"""Approve / Reject on approval requests.

Who clicked is the signed payload's user (body.user.id), never anything carried in the button, whose
value is only the request id. Whether that user may approve at all (FTBOT_APPROVERS) is this
listener's middleware; the domain rules of a vote (not your own request, once per person, only while
pending) are bot.approvals.votes.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App, BoltResponse, Respond

from bot.approvals.votes import cast_vote, record_refusal
from bot.errors import guarded
from bot.messages.approval import APPROVE, REJECT
from bot.permissions import Operators, Verdict
from bot.services import Services

DECISIONS = {APPROVE: "approve", REJECT: "reject"}
NOT_APPROVER = ":lock: Only approvers may vote on this. Ask someone listed in FTBOT_APPROVERS."
# Slack has not said (yet) who is in an approver group: nothing is recorded, the click may be repeated.
UNSURE = {
    Verdict.CHECKING: ":hourglass_flowing_sand: Checking with Slack who the approvers are. Click again in a few seconds.",
    Verdict.UNAVAILABLE: ":warning: Slack could not tell me who the approvers are right now, so your vote was not counted. Try again in a minute.",
}


def _team(body: dict[str, Any]) -> str:
    return (body.get("team") or {}).get("id") or body["user"]["team_id"]


def _request_id(body: dict[str, Any]) -> int | None:
    try:
        return int(((body.get("actions") or [{}])[0]).get("value", ""))
    except (TypeError, ValueError):
        return None


def approvers(services: Services) -> Operators:
    found = services.extras.get("approvers")
    if found is None:
        # The same user / user-group resolution as operators (bot.permissions), over FTBOT_APPROVERS.
        found = services.extras["approvers"] = Operators(services.settings.approvers, services.slack)
    return found


def require_approver(body: dict[str, Any], context: Any, respond: Respond, next: Any) -> Any:  # noqa: A002 - Bolt passes it by this name
    services: Services = context["services"]
    user = (body.get("user") or {}).get("id")
    verdict = approvers(services).check(user)
    if verdict is Verdict.ALLOWED:
        return next()
    if verdict in UNSURE:
        respond(text=UNSURE[verdict], response_type="ephemeral", replace_original=False)
        return BoltResponse(status=200, body="")
    rid = _request_id(body)
    action = ((body.get("actions") or [{}])[0]).get("action_id")
    if rid is not None and user:
        record_refusal(services, request_id=rid, team_id=_team(body), user=user, decision=DECISIONS.get(action, "?"), why="not an approver")
    respond(text=NOT_APPROVER, response_type="ephemeral", replace_original=False)
    return BoltResponse(status=200, body="")


def _ack(ack: Ack) -> None:
    ack()


@guarded
def _vote(body: dict[str, Any], action: dict[str, Any], respond: Respond, context: Any) -> None:
    services: Services = context["services"]
    rid = _request_id(body)
    if rid is None:
        respond(text=":warning: That button does not belong to an approval request I know.", response_type="ephemeral", replace_original=False)
        return
    result = cast_vote(
        services,
        request_id=rid,
        team_id=_team(body),
        user=body["user"]["id"],
        decision=DECISIONS[action["action_id"]],
        message_ts=(body.get("container") or {}).get("message_ts"),
    )
    respond(text=result.text, response_type="ephemeral", replace_original=False)


def register(app: App) -> None:
    for action_id in DECISIONS:
        app.action(action_id, middleware=[require_approver])(ack=_ack, lazy=[_vote])
