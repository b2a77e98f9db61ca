"""`/ft migrate | migrations`: move a model to another provider, and see how the moves are going."""

from __future__ import annotations

from typing import Any

from slack_bolt import Respond

from bot.commands.parse import USAGE, Command, parse_migrate
from bot.errors import UserError
from bot.jobs.launch import idempotency_key
from bot.listeners.commands.registry import handles
from bot.messages.migration import migration_line, migration_preview, migrations_answer
from bot.migration.flow import list_migrations, prepare
from bot.services import Services


@handles("migrate")
def migrate(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    req = parse_migrate(cmd.args)
    team, user, channel = body["team_id"], body["user_id"], body["channel_id"]
    respond(response_type="ephemeral", text=f":truck: Looking for the job that made `{req.model[:200]}`, then copying and checking its data. The preview follows.")
    key = idempotency_key("migrate", team, user, channel, body.get("trigger_id", ""), cmd.rest)
    mig, _report = prepare(services, team_id=team, user=user, channel=channel, model=req.model, target=req.target, base=req.base, keep=req.keep, request_key=key)
    if mig.state == "ready":
        respond(response_type="ephemeral", replace_original=False, **migration_preview(mig))
    else:
        respond(response_type="ephemeral", replace_original=False, text=migration_line(mig))


@handles("migrations")
def migrations(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    if cmd.args:
        raise UserError("`migrations` takes no arguments.", USAGE["migrations"])
    respond(response_type="ephemeral", **migrations_answer(list_migrations(services, body["team_id"])))
