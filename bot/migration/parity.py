"""The parity report: when a migration's new job succeeds, the new model is asked the prompts the old
model answered before it was moved (`/ft keep`, the KeptAnswer rows) and compared with the old one's
saved answers (agreement: exact and ROUGE-L) and with the references (both models' scores).

It is an ordinary evaluation run (bot/evals): its "baseline" answers are the saved answers, written
as done when the run is created, so the old model is never asked again (it may have stopped
serving); only the "model" slot is asked, by the worker that drives every evaluation. The run's end
(EvaluationFinished, to which bot/wiring.py subscribes `on_evaluation_finished`) adds the agreement, posts the report into the new
job's card thread and the channel that asked, and ends the migration `done` with the headline,
all in the transaction that ends the run."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.evals import costs, scorers
from bot.evals.examples import _reference
from bot.evals.publish import FILE_KIND
from bot.evals.store import answer_text
from bot.events import Context, EvaluationFinished
from bot.messages.eval_report import parity_message, parity_nothing_to_compare, report_message
from bot.migration.states import DONE, EVALUATING
from bot.mrkdwn import code
from bot.outbox.queue import enqueue
from bot.provider.base import provider_label
from storage.models import EvalAnswer, EvalExample, EvalRun, Job, KeptAnswer, Migration, Subscription
from storage.types import utcnow

PREFIX = "migration:"
SCORES = ("exact", "similarity", "json", "tools")
REFERENCE_SCORE = "similarity"  # the headline's figure on the references
NOTHING = "no saved answers to compare"


def request_key(mig_id: int) -> str:
    return f"{PREFIX}{mig_id}"


def _target_job(session: Session, mig: Migration) -> Job | None:
    if not mig.job_key:
        return None
    return session.scalar(select(Job).where(Job.idempotency_key == mig.job_key))


def _card(session: Session, job: Job | None) -> Subscription | None:
    """The new job's card: in the channel that started it, else the first that follows it."""
    if job is None:
        return None
    subs = list(session.scalars(select(Subscription).where(Subscription.job_id == job.id, Subscription.ended_at.is_(None)).order_by(Subscription.id)))
    return next((x for x in subs if x.channel_id == job.origin_channel), subs[0] if subs else None)


def start(session: Session, mig: Migration) -> None:
    """In the poll that saw the new job succeed (the migration is `evaluating`): the run, created once."""
    key = request_key(mig.id)
    if session.scalar(select(EvalRun.id).where(EvalRun.request_key == key)) is not None:
        return
    job = _target_job(session, mig)
    sub = _card(session, job)
    kept = list(
        session.scalars(
            select(KeptAnswer)
            .where(KeptAnswer.team_id == mig.team_id, KeptAnswer.provider == mig.source_provider, KeptAnswer.model == mig.source_model)
            .order_by(KeptAnswer.line, KeptAnswer.id)
        )
    )
    # Only prompts with a saved answer: a row still claimed (a keep asking it, or one that died
    # before its answer came) has nothing of the old model to compare with.
    saved = [k for k in kept if k.claimed_until is None]
    usable = [k for k in saved if _reference(k.reference or {}) is not None or k.answer is not None or k.tool_calls]
    unanswered = len(kept) - len(saved)
    wanted = max(mig.keep_n or 0, 0)
    # mrkdwn, as every run's source note (the model name is escaped by code()).
    note = f"the {len(usable)} prompts whose answers {code(mig.source_model, 200)} gave while it served (saved by `/ft keep`)"
    if wanted and len(usable) < wanted:
        note += f"; {wanted} were asked for, {len(usable)} could be saved (the held-out prompts ran out or the old model did not answer)"
    if unanswered:
        note += f"; {unanswered} prompt{'s' if unanswered != 1 else ''} a `/ft keep` started but never saved an answer for {'are' if unanswered != 1 else 'is'} left out"
    # Through the same budget gate as every evaluation (bot/evals/gate.py, when the worker takes
    # the `preparing` run): the new model is asked every prompt at the target's prices; the old
    # model's answers are saved, not paid for again.
    prompts = [costs.prompt_tokens(mig.target_model or "", (k.prompt or {}).get("messages") or [], (k.prompt or {}).get("tools")) for k in usable]
    expected = sum(costs.answer_tokens(mig.target_model or "", _reference(k.reference or {}) or {"content": k.answer or ""}) for k in usable)
    asked = [
        costs.Asked("model", mig.target_provider, mig.target_model or "", mig.target_base_model),
        costs.Asked("baseline", mig.source_provider, mig.source_model, mig.source_base_model, billing="saved"),
    ]
    estimate = costs.estimate(asked, sum(prompts), expected, len(usable))
    for part, a in zip(estimate["parts"], asked, strict=True):
        part["base"] = a.base
    run = EvalRun(
        request_key=key, team_id=mig.team_id, channel_id=mig.channel_id, requested_by=mig.requested_by, job_id=job.id if job else None,
        subscription_id=sub.id if sub else None, model=mig.target_model or "", provider=mig.target_provider, baseline=mig.source_model,
        baseline_provider=mig.source_provider, scores=list(SCORES), source_note=note, status="preparing" if usable else "pending", examples=len(usable), skipped={},
        estimate=estimate, progress_shown=0,
    )
    session.add(run)
    session.flush()
    if not usable:
        summary = {"examples": 0, "scored": 0, "parity": {"headline": NOTHING}}
        run.status, run.summary, run.finished_at, run.source_note = "done", summary, utcnow(), "no answers of the old model were saved"
        _say(session, run, mig, sub, parity_nothing_to_compare(mig.source_model, provider_label(mig.source_provider)))
        _end_migration(mig, DONE)
        return
    for pos, k in enumerate(usable):
        row = EvalExample(run_id=run.id, position=pos, line=k.line or pos + 1, prompt=dict(k.prompt or {}), reference=_reference(k.reference or {}) or {"content": None, "tool_calls": []}, prompt_tokens=prompts[pos])
        session.add(row)
        session.flush()
        session.add(EvalAnswer(run_id=run.id, example_id=row.id, slot="model"))
        # The old model's saved answer, as it answered (never asked again).
        session.add(
            EvalAnswer(
                run_id=run.id, example_id=row.id, slot="baseline", status="done", content=k.answer, tool_calls=list(k.tool_calls or []),
                answered_at=k.created_at, attempts=0,
            )
        )
    session.flush()


def agreement(session: Session, run_id: int) -> dict[str, Any]:
    """How often the new model gives the old one's answer: exact (after the exact scorer's
    normalisation, tool calls included) and the mean ROUGE-L F1 between the two answers."""
    answers = list(session.scalars(select(EvalAnswer).where(EvalAnswer.run_id == run_id, EvalAnswer.slot.in_(["model", "baseline"]))))
    by_example: dict[int, dict[str, EvalAnswer]] = {}
    for a in answers:
        by_example.setdefault(a.example_id, {})[a.slot] = a
    same = n = 0
    sims: list[float] = []
    for pair in by_example.values():
        new, old = pair.get("model"), pair.get("baseline")
        if new is None or old is None or new.status != "done" or old.status != "done":
            continue
        n += 1
        a, b = answer_text(new), answer_text(old)
        same += int(scorers.exact(a, b) == 1.0)
        sims.append(scorers.similarity(a, b) or 0.0)
    return {"n": n, "exact": same, "exact_rate": same / n if n else None, "similarity": sum(sims) / n if n else None}


def headline(target_provider: str, agree: dict[str, Any], summary: dict[str, Any]) -> str:
    """"the Together AI model agrees with the old one on 46 of 50 (92 %); on the references it
    scores 0.81 against 0.83 (ROUGE-L F1)"."""
    if not agree["n"]:
        return f"the {provider_label(target_provider)} model answered none of the saved prompts"
    text = f"the {provider_label(target_provider)} model agrees with the old one on {agree['exact']} of {agree['n']} ({agree['exact_rate'] * 100:.0f} %)"
    c = (summary.get("comparisons") or {}).get(REFERENCE_SCORE) or {}
    if c.get("n"):
        text += f"; on the references it scores {c['model']:.2f} against {c['baseline']:.2f} ({scorers.LABELS[REFERENCE_SCORE]})"
    return text


def on_evaluation_finished(ctx: Context, event: EvaluationFinished) -> None:
    """In the transaction that ends the run: a parity run's report, and its migration done."""
    if not event.request_key.startswith(PREFIX):
        return
    run = ctx.session.get(EvalRun, event.run_id)
    if run is not None:
        queue_end(ctx.session, run, event.status)


def queue_end(session: Session, run: EvalRun, status: str) -> None:
    """The run's end, in its transaction: the agreement added to the summary, the report posted,
    the migration ended with the headline."""
    mig = session.get(Migration, int(run.request_key[len(PREFIX):]))
    summary = dict(run.summary or {})
    agree = agreement(session, run.id)
    if status == "done":
        line = headline(run.provider, agree, summary)
    elif status == "cancelled":
        line = "the parity report was cancelled" + (f" ({run.error})" if run.error else "")
    else:
        line = f"the parity report stopped: {summary.get('error') or run.error or 'failed'}"
    summary["parity"] = {**agree, "headline": line}
    if "baseline" in (summary.get("slots") or {}):
        summary["slots"]["baseline"]["saved"] = True
    run.summary = summary
    sub = session.get(Subscription, run.subscription_id) if run.subscription_id else None
    if sub is not None and sub.ended_at is not None:
        sub = None
    report = report_message(model=run.model, baseline=run.baseline, summary=summary, scores=list(run.scores), source_note=run.source_note, agreement=summary["parity"])
    _say(session, run, mig, sub, report, csv=status == "done")
    if mig is not None:
        # The new model exists whatever the report found: the migration is done, its headline says
        # why there are no figures when the run stopped (e.g. a model that needs an endpoint first).
        _end_migration(mig, DONE)


def _say(session: Session, run: EvalRun, mig: Migration | None, sub: Subscription | None, report: dict[str, Any], *, csv: bool = False) -> None:
    """The report in the new job's card thread; in the channel that asked, the report itself when no
    card is there, else a line pointing at it."""
    key = f"eval:{run.request_key}:report"
    asked_in = run.channel_id
    if sub is not None:
        enqueue(session, key, kind="reply", channel=sub.channel_id, sub=sub, payload=report)
        if csv:
            enqueue(session, f"{key}:csv", kind=FILE_KIND, channel=sub.channel_id, sub=sub, payload={"run_id": run.id})
    if asked_in:
        what = parity_message(mig.id if mig else 0, (run.summary or {}).get("parity", {}).get("headline", ""), in_thread=sub is not None)
        payload = what if sub is not None else report
        enqueue(session, f"{key}:channel", kind="post", channel=asked_in, team_id=run.team_id, payload=payload)
        if csv and sub is None:
            enqueue(session, f"{key}:channel:csv", kind=FILE_KIND, channel=asked_in, team_id=run.team_id, payload={"run_id": run.id, "thread_of": f"{key}:channel"})


def _end_migration(mig: Migration, state: str) -> None:
    if mig.state != EVALUATING:
        return
    mig.state, mig.active_key, mig.updated_at = state, None, utcnow()


def headlines(session: Session, mig_ids: list[int]) -> dict[int, str]:
    """Each migration's parity headline, for `/ft migrations`."""
    if not mig_ids:
        return {}
    out = {}
    for key, summary in session.execute(select(EvalRun.request_key, EvalRun.summary).where(EvalRun.request_key.in_([request_key(i) for i in mig_ids]))):
        h = ((summary or {}).get("parity") or {}).get("headline")
        if h:
            out[int(key[len(PREFIX):])] = h
    return out
