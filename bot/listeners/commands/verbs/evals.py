"""`/ft eval MODEL [vs=MODEL] [data=FILE] [n=N] [score=…] [judge=MODEL]`: check the request, choose
and sample the examples, show the estimate, and leave the asking to the worker (the store drives it;
the progress message is edited in place, the report follows)."""

from __future__ import annotations

import hashlib
from typing import Any

from slack_bolt import Respond

from bot.commands.parse import Command
from bot.evals import gate, publish, sampling, store
from bot.evals.prepare import parse_request, prepare
from bot.listeners.commands.registry import handles
from bot.mrkdwn import clip, code
from bot.outbox.deliver import deliver_now
from bot.services import Services


def _key(team: str, req: Any, n: int) -> str:
    parts: tuple[Any, ...] = (team, req.model, req.vs, req.data, n, ",".join(req.scores), req.judge)
    raw = "|".join(map(str, parts + ((req.endpoint,) if req.endpoint else ())))
    return "cmd:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


@handles("eval")
def evaluate(cmd: Command, *, respond: Respond, body: dict[str, Any], services: Services, **_: Any) -> None:
    req = parse_request(cmd.args, max_n=sampling.MAX_N)
    team, channel, user = body.get("team_id"), body.get("channel_id"), body.get("user_id")
    n = req.n or services.settings.eval_examples
    key = _key(team or "", req, n)
    # The newest run of this request: after a cancel or failure, the run asked again is the one to answer from.
    existing = store.find_latest_run(services.db, key)
    if existing is not None:
        if existing.status == "held" and not gate.approval_closed(services, existing.request_key, existing.id):
            respond(response_type="ephemeral", text=f"This evaluation of {code(req.model)} is waiting for approvals (it is over the budget).")
            return
        if existing.status in {"pending", "running"}:
            respond(response_type="ephemeral", text=f"This evaluation of {code(req.model)} is already running ({existing.progress_shown} / {existing.examples}): its progress message is in <#{existing.channel_id}>.")
            return
        if existing.status == "done":
            # The same question asked again: answered from the store, nothing asked twice.
            with services.db.session() as s:
                from storage.models import EvalRun

                run = s.get(EvalRun, existing.id)
                again = f"{key}:again:{body.get('trigger_id') or ''}"
                publish.queue_report_again(s, run, channel or run.channel_id, again)
            deliver_now(services, channels=[channel])
            respond(response_type="ephemeral", text=f"Answered from the stored evaluation of {code(req.model)} (nothing was asked again).")
            return
    got = prepare(services, team, req, default_n=n, seed_key=key)
    spec = store.RunSpec(
        request_key=key, model=got.model, provider=got.provider, baseline=got.baseline, baseline_provider=got.baseline_provider,
        scores=req.scores, source_file=got.source_file, source_note=got.source_note, team_id=team, channel_id=channel, requested_by=user,
        job_id=got.job_id, judge=got.judge, judge_provider=got.judge_provider, progress_key=publish.progress_key(key),
    )
    if existing is not None:
        # Cancelled or failed before: a fresh run under a new key.
        spec = store.RunSpec(**{**spec.__dict__, "request_key": f"{key}:{body.get('trigger_id') or 'again'}", "progress_key": publish.progress_key(f"{key}:{body.get('trigger_id') or 'again'}")})
    held = gate.needs_approval(services, got.estimate.get("usd"))
    run, created = store.create_run(
        services.db, spec, got.sample.examples, got.sample.prompt_tokens, skipped=got.sample.skipped, estimate=got.estimate, status="held" if held else "pending"
    )
    skipped = sum(got.sample.skipped.values())
    note = f" ({skipped} left out: see the report)" if skipped else ""
    if run.status == "held":
        opened = gate.hold(services, run, user=user, channel=channel, request_key=run.request_key)
        usd = got.estimate.get("usd")
        cost = f"${usd:,.2f}" if usd is not None else f"unknown ({clip(got.estimate.get('note') or 'a model has no price', 400)})"
        respond(
            response_type="ephemeral",
            text=f"Evaluating {len(got.sample.examples)} examples{note} of {code(req.model)} is estimated at {cost}, over the budget of ${services.settings.job_budget_usd:,.2f}: "
            f"approval request #{opened.view.id} is in <#{opened.channel}>; it runs once approved.",
        )
        return
    if created:
        with services.db.session() as s:
            publish.queue_progress_post(s, run)
        deliver_now(services, channels=[channel])
    respond(response_type="ephemeral", text=f"Evaluating {len(got.sample.examples)} examples{note} of {code(req.model)} against {code(got.baseline)}: progress in the channel.")
