"""`.jsonl` files shared with the bot (a DM, or a channel it is in).

Slack may announce one file twice (a `message` with subtype `file_share` and a `file_shared` event)
and retries deliveries; the domain claims each file once in the database, so both simply hand it on.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, App

from bot.datasets.intake import Arrival, refuse_once, take_in
from bot.permissions import Verdict
from bot.services import Services

REFUSALS = {
    Verdict.DENIED: ":lock: Only operators may upload datasets here. Ask someone listed in FTBOT_OPERATORS.",
    Verdict.CHECKING: ":hourglass_flowing_sand: Checking with Slack who the operators are. Share the file again in a few seconds.",
    Verdict.UNAVAILABLE: ":warning: Slack could not tell me who the operators are right now, so I did not take the file. Share it again in a minute.",
}


def _ack(ack: Ack) -> None:
    ack()


def _verdict(services: Services, user: str) -> Verdict:
    operators = services.extras.get("operators")
    return Verdict.ALLOWED if operators is None else operators.check(user)


def _hand_on(services: Services, context: Any, *, team: str, file_id: str, user: str, channel: str | None, thread_ts: str | None) -> None:
    if not file_id or not user or user == context.get("bot_user_id"):
        return  # the bot's own uploads (loss charts)
    arrival = Arrival(team_id=team, slack_file_id=file_id, user_id=user, channel_id=channel, thread_ts=thread_ts)
    verdict = _verdict(services, user)
    if verdict is Verdict.ALLOWED:
        take_in(services, arrival)
    elif _is_jsonl(services, arrival) and (verdict is not Verdict.DENIED or refuse_once(services, arrival)):
        # Told once per file however often Slack announces it (a refusal that may change is not claimed).
        services.slack.chat_postEphemeral(channel=channel or user, user=user, text=REFUSALS[verdict])


def _is_jsonl(services: Services, arrival: Arrival) -> bool:
    from bot.datasets.download import DownloadError, file_info

    try:
        return file_info(services.slack, arrival.slack_file_id).name.lower().endswith(".jsonl")
    except DownloadError:
        return False


def _file_shared(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
    services: Services = context["services"]
    team = body.get("team_id") or context.get("team_id")
    channel = event.get("channel_id")
    _hand_on(services, context, team=team, file_id=event.get("file_id") or (event.get("file") or {}).get("id"), user=event.get("user_id"), channel=channel, thread_ts=None)


def _message_file_share(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
    services: Services = context["services"]
    team = body.get("team_id") or context.get("team_id")
    for f in (event.get("files") or [])[:5]:
        _hand_on(services, context, team=team, file_id=f.get("id"), user=event.get("user"), channel=event.get("channel"), thread_ts=event.get("thread_ts") or event.get("ts"))


def register(app: App) -> None:
    app.event("file_shared")(ack=_ack, lazy=[_file_shared])
    app.event({"type": "message", "subtype": "file_share"})(ack=_ack, lazy=[_message_file_share])
