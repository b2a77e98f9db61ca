"""`/ft migrate | migrations`: move a model to another provider, and see how the moves are going."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.commands.parse import USAGE, Command, parse_keep, parse_migrate
from bot.errors import UserError
from bot.jobs.launch import idempotency_key
from bot.listeners.commands.registry import handles
from bot.messages.migration import kept_answer, migration_line, migration_preview, migrations_answer
from bot.migration.flow import cancel_model, list_migrations, prepare
from bot.migration.keep import keep_answers
from bot.mrkdwn import code, truncate
from bot.provider.base import ProviderError
from bot.services import Services


@handles("migrate")
def migrate(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args and cmd.args[0].lower() == "cancel":
        if len(cmd.args) != 2 or "=" in cmd.args[1]:
            raise UserError("`migrate cancel` needs the model whose migration to stop.", USAGE["migrate"])
        done = cancel_model(services, team_id=body["team_id"], model=cmd.args[1], user=body["user_id"])
        respond(response_type="ephemeral", text=done.text)
        return
    req = parse_migrate(cmd.args)
    team, user, channel = body["team_id"], body["user_id"], body["channel_id"]
    respond(response_type="ephemeral", text=f":truck: Looking for the job that made {code(req.model)}, then copying and checking its data. The preview follows.")
    key = idempotency_key("migrate", team, user, channel, body.get("trigger_id", ""), cmd.rest)
    mig, _report = prepare(services, team_id=team, user=user, channel=channel, model=req.model, target=req.target, base=req.base, keep=req.keep, request_key=key, data=req.data)
    if mig.state == "ready":
        respond(response_type="ephemeral", replace_original=False, **migration_preview(mig))
    else:
        respond(response_type="ephemeral", replace_original=False, text=migration_line(mig))
        return
    if req.keep:
        # While the old model still answers: its answers to held-out prompts, for the comparison later.
        try:
            kept = keep_answers(services, team_id=team, model=req.model, data=req.data if mig.source_job_id is None else None, n=req.keep)
        except (UserError, ProviderError) as exc:
            reason = exc.message if isinstance(exc, UserError) else exc.reason
            respond(response_type="ephemeral", replace_original=False, text=f":warning: No answers of {code(req.model)} were saved: {truncate(reason, 500)}")
            return
        respond(response_type="ephemeral", replace_original=False, text=kept_answer(kept))


@handles("keep")
def keep(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    model, data, n = parse_keep(cmd.args)
    kept = keep_answers(services, team_id=body["team_id"], model=model, data=data, n=n)
    respond(response_type="ephemeral", text=kept_answer(kept))


@handles("migrations")
def migrations(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`migrations` takes no arguments.", USAGE["migrations"])
    respond(response_type="ephemeral", **migrations_answer(list_migrations(services, body["team_id"])))
