"""Evaluation runs in the database. A run's examples and one answer row per (run, example, model)
are written when the run is created; from then on the rows drive everything: a worker claims a
run with a lease (as the poller leases jobs), claims answer rows with conditional updates before
asking, and records each answer at once. A killed worker's claims run out and another worker
takes over where it stopped; an answer already stored is never asked again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.evals.examples import Example
from storage.db import Database
from storage.models import EvalAnswer, EvalExample, EvalRun
from storage.types import utcnow

SLOTS = ("model", "baseline")
FINAL = frozenset({"done", "cancelled", "failed"})


@dataclass(frozen=True)
class RunSpec:
    request_key: str
    model: str
    provider: str
    baseline: str
    baseline_provider: str
    scores: tuple[str, ...]
    source_file: str | None
    source_note: str
    team_id: str | None = None
    channel_id: str | None = None
    requested_by: str | None = None
    job_id: int | None = None
    subscription_id: int | None = None
    judge: str | None = None
    judge_provider: str | None = None
    progress_key: str | None = None


def find_run(db: Database, request_key: str) -> EvalRun | None:
    with db.session() as s:
        run = s.scalar(select(EvalRun).where(EvalRun.request_key == request_key))
        if run is not None:
            s.expunge(run)
        return run


def find_latest_run(db: Database, request_key: str) -> EvalRun | None:
    """The newest run of one request: the request's first run, or one asked again under
    `{request_key}:{trigger}` after it was cancelled or failed."""
    with db.session() as s:
        run = s.scalar(
            select(EvalRun).where(or_(EvalRun.request_key == request_key, EvalRun.request_key.startswith(f"{request_key}:", autoescape=True))).order_by(EvalRun.id.desc()).limit(1)
        )
        if run is not None:
            s.expunge(run)
        return run


def get_run(db: Database, run_id: int) -> EvalRun | None:
    with db.session() as s:
        run = s.get(EvalRun, run_id)
        if run is not None:
            s.expunge(run)
        return run


def create_run(
    db: Database,
    spec: RunSpec,
    examples: Sequence[Example],
    prompt_tokens: Sequence[int],
    *,
    skipped: dict[str, int],
    estimate: dict[str, Any],
    status: str = "pending",
) -> tuple[EvalRun, bool]:
    """(the run, created now). The same request key finds the run made the first time, so a
    redelivered command or a second worker seeing the same finished job asks nothing twice."""
    existing = find_run(db, spec.request_key)
    if existing is not None:
        return existing, False
    try:
        with db.session() as s:
            run = EvalRun(
                request_key=spec.request_key, team_id=spec.team_id, channel_id=spec.channel_id, requested_by=spec.requested_by,
                job_id=spec.job_id, subscription_id=spec.subscription_id, model=spec.model, provider=spec.provider,
                baseline=spec.baseline, baseline_provider=spec.baseline_provider, judge=spec.judge, judge_provider=spec.judge_provider,
                scores=list(spec.scores), source_file=spec.source_file, source_note=spec.source_note, status=status,
                examples=len(examples), skipped=dict(skipped), estimate=estimate, progress_key=spec.progress_key,
            )
            s.add(run)
            s.flush()
            slots = SLOTS + (("judge",) if spec.judge else ())
            for pos, (ex, tokens) in enumerate(zip(examples, prompt_tokens, strict=True)):
                row = EvalExample(run_id=run.id, position=pos, line=ex.line, prompt=ex.prompt, reference=ex.reference, prompt_tokens=tokens)
                s.add(row)
                s.flush()
                for slot in slots:
                    s.add(EvalAnswer(run_id=run.id, example_id=row.id, slot=slot))
            s.flush()
            s.expunge(run)
            return run, True
    except IntegrityError:
        # uq on eval_runs.request_key: the same request created it a moment ago elsewhere.
        found = find_run(db, spec.request_key)
        if found is None:
            raise
        return found, False


def set_status(db: Database, run_id: int, status: str, *, frm: Sequence[str], error: str | None = None, owner: str | None = None) -> bool:
    """Move the run from one of `frm` to `status`; False when another process moved it first.
    `owner`: only the holder of the run's lease may (and it lets the lease go)."""
    values: dict[str, Any] = {"status": status}
    if status in FINAL or owner is not None:
        values.update(lease_owner=None, lease_until=None)
    if status in FINAL:
        values["finished_at"] = utcnow()
    if error is not None:
        values["error"] = error[:2000]
    cond = [EvalRun.id == run_id, EvalRun.status.in_(list(frm))]
    if owner is not None:
        cond.append(EvalRun.lease_owner == owner)
    with db.session() as s:
        return bool(s.execute(update(EvalRun).where(*cond).values(**values)).rowcount)


def request_cancel(db: Database, run_id: int, user: str) -> bool:
    with db.session() as s:
        return bool(
            s.execute(
                update(EvalRun).where(EvalRun.id == run_id, EvalRun.status.in_(["pending", "running"]), EvalRun.cancel_requested_by.is_(None)).values(cancel_requested_by=user)
            ).rowcount
        )


# ---- leases ---------------------------------------------------------------------------------


def runs_to_drive(db: Database, limit: int = 5) -> list[int]:
    now = utcnow()
    with db.session() as s:
        return list(
            s.scalars(
                select(EvalRun.id)
                .where(EvalRun.status.in_(["pending", "running"]), or_(EvalRun.lease_until.is_(None), EvalRun.lease_until < now))
                .order_by(EvalRun.id)
                .limit(limit)
            )
        )


def take_run(db: Database, run_id: int, owner: str, ttl: timedelta) -> bool:
    """Take (or renew) the run's lease: one worker drives a run at a time."""
    now = utcnow()
    with db.session() as s:
        return bool(
            s.execute(
                update(EvalRun)
                .where(
                    EvalRun.id == run_id,
                    EvalRun.status.in_(["pending", "running"]),
                    or_(EvalRun.lease_owner == owner, EvalRun.lease_until.is_(None), EvalRun.lease_until < now),
                )
                .values(lease_owner=owner, lease_until=now + ttl)
            ).rowcount
        )


def release_run(db: Database, run_id: int, owner: str) -> None:
    with db.session() as s:
        s.execute(update(EvalRun).where(EvalRun.id == run_id, EvalRun.lease_owner == owner).values(lease_owner=None, lease_until=None))


# ---- answers --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    answer_id: int
    example_id: int
    slot: str
    attempts: int
    prompt: dict[str, Any]
    reference: dict[str, Any]


def claim_answers(db: Database, run_id: int, owner: str, ttl: timedelta, *, slots: Sequence[str], limit: int) -> list[Claimed]:
    """Pending rows (or rows whose claim ran out: their worker died) claimed for `owner` by one
    conditional update: the condition is checked again per row as it is written, so of two workers
    reaching for the same rows each row goes to one of them."""
    now = utcnow()
    until = now + ttl
    free = or_(EvalAnswer.status == "pending", and_(EvalAnswer.status == "claimed", EvalAnswer.claimed_until < now))
    with db.session() as s:
        ids = list(
            s.scalars(
                select(EvalAnswer.id).where(EvalAnswer.run_id == run_id, EvalAnswer.slot.in_(list(slots)), free).order_by(EvalAnswer.example_id, EvalAnswer.slot).limit(limit)
            )
        )
    if not ids:
        return []
    with db.session() as s:
        s.execute(
            update(EvalAnswer)
            .where(EvalAnswer.id.in_(ids), free)
            .values(status="claimed", claimed_by=owner, claimed_until=until, attempts=EvalAnswer.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    with db.session() as s:
        got = s.execute(
            select(EvalAnswer.id, EvalAnswer.example_id, EvalAnswer.slot, EvalAnswer.attempts, EvalExample.prompt, EvalExample.reference)
            .join(EvalExample, EvalExample.id == EvalAnswer.example_id)
            .where(EvalAnswer.id.in_(ids), EvalAnswer.status == "claimed", EvalAnswer.claimed_by == owner, EvalAnswer.claimed_until == until)
            .order_by(EvalAnswer.example_id, EvalAnswer.slot)
        ).all()
    return [Claimed(r.id, r.example_id, r.slot, r.attempts, r.prompt, r.reference) for r in got]


def extend_claim(db: Database, c: Claimed, owner: str, ttl: timedelta, *, run_id: int) -> bool:
    """Renew `owner`'s claim on one answer row (and its lease on the run) just before the row is
    asked: a batch may outlast the claim, and a row whose claim another worker has taken since must
    not be asked again. False: the row is not ours any more."""
    until = utcnow() + ttl
    with db.session() as s:
        held = s.execute(
            update(EvalAnswer)
            .where(EvalAnswer.id == c.answer_id, EvalAnswer.status == "claimed", EvalAnswer.claimed_by == owner)
            .values(claimed_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        if held:
            s.execute(update(EvalRun).where(EvalRun.id == run_id, EvalRun.lease_owner == owner).values(lease_until=until))
    return bool(held)


def record_answer(db: Database, c: Claimed, owner: str, *, content: str | None, tool_calls: list[dict[str, Any]], prompt_tokens: int | None, completion_tokens: int | None, latency_ms: int) -> bool:
    with db.session() as s:
        return bool(
            s.execute(
                update(EvalAnswer)
                .where(EvalAnswer.id == c.answer_id, EvalAnswer.status == "claimed", EvalAnswer.claimed_by == owner)
                .values(
                    status="done", content=content, tool_calls=tool_calls, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                    latency_ms=latency_ms, answered_at=utcnow(), claimed_by=None, claimed_until=None, error=None,
                )
            ).rowcount
        )


def record_failure(db: Database, c: Claimed, owner: str, error: str, *, final: bool, refused: bool = False) -> None:
    """A failed request: back to pending to be tried again later, or failed for good (counted);
    `refused`: the provider refused this example (a content filter, a prompt over the context), counted apart."""
    with db.session() as s:
        s.execute(
            update(EvalAnswer)
            .where(EvalAnswer.id == c.answer_id, EvalAnswer.status == "claimed", EvalAnswer.claimed_by == owner)
            .values(status=("refused" if refused else "failed") if final else "pending", error=error[:500], claimed_by=None, claimed_until=None)
        )


def counts(db: Database, run_id: int) -> dict[str, dict[str, int]]:
    """{slot: {status: n}}."""
    out: dict[str, dict[str, int]] = {}
    with db.session() as s:
        for slot, status, n in s.execute(
            select(EvalAnswer.slot, EvalAnswer.status, func.count()).where(EvalAnswer.run_id == run_id).group_by(EvalAnswer.slot, EvalAnswer.status)
        ):
            out.setdefault(slot, {})[status] = int(n)
    return out


def examples_settled(db: Database, run_id: int, slots: Sequence[str]) -> int:
    """Examples whose every answer in `slots` is done or failed: the k of "k / N"."""
    with db.session() as s:
        open_examples = select(EvalAnswer.example_id).where(EvalAnswer.run_id == run_id, EvalAnswer.slot.in_(list(slots)), EvalAnswer.status.in_(["pending", "claimed"]))
        return int(s.scalar(select(func.count()).select_from(EvalExample).where(EvalExample.run_id == run_id, EvalExample.id.not_in(open_examples))) or 0)


def examples_scored(db: Database, run_id: int) -> int:
    """Examples whose model and baseline answers are both done."""
    with db.session() as s:
        done = select(EvalAnswer.example_id).where(EvalAnswer.run_id == run_id, EvalAnswer.slot.in_(list(SLOTS)), EvalAnswer.status == "done")
        return int(s.scalar(select(func.count()).select_from(done.group_by(EvalAnswer.example_id).having(func.count() == len(SLOTS)).subquery())) or 0)


def first_error(db: Database, run_id: int, slot: str) -> str | None:
    """The provider's reason for the first example of `slot` refused or failed."""
    with db.session() as s:
        return s.scalar(
            select(EvalAnswer.error).where(EvalAnswer.run_id == run_id, EvalAnswer.slot == slot, EvalAnswer.status.in_(["refused", "failed"])).order_by(EvalAnswer.example_id).limit(1)
        )


def set_progress_shown(db: Database, run_id: int, k: int) -> bool:
    """Only a larger k moves the progress message (two workers never send it backwards)."""
    with db.session() as s:
        return bool(s.execute(update(EvalRun).where(EvalRun.id == run_id, EvalRun.progress_shown < k).values(progress_shown=k)).rowcount)


@dataclass(frozen=True)
class Row:
    """One example with every answer, for the summary and the CSV."""

    position: int
    line: int
    prompt: dict[str, Any]
    reference: dict[str, Any]
    answers: dict[str, EvalAnswer]


def rows(db: Database, run_id: int) -> list[Row]:
    with db.session() as s:
        examples = list(s.scalars(select(EvalExample).where(EvalExample.run_id == run_id).order_by(EvalExample.position)))
        answers = list(s.scalars(select(EvalAnswer).where(EvalAnswer.run_id == run_id)))
        s.expunge_all()
    by_example: dict[int, dict[str, EvalAnswer]] = {}
    for a in answers:
        by_example.setdefault(a.example_id, {})[a.slot] = a
    return [Row(e.position, e.line, e.prompt, e.reference, by_example.get(e.id, {})) for e in examples]


def finish(db: Database, run_id: int, owner: str, summary: dict[str, Any], status: str = "done", plan: Any = None) -> bool:
    """Store the summary and end the run, once: only the lease holder of a running run can. `plan`
    (session, run) queues the messages the end causes in the same transaction, so a crash never
    leaves a finished run without its report nor a report sent twice."""
    with db.session() as s:
        ended = bool(
            s.execute(
                update(EvalRun)
                .where(EvalRun.id == run_id, EvalRun.status.in_(["pending", "running"]), EvalRun.lease_owner == owner)
                .values(status=status, summary=summary, finished_at=utcnow(), lease_owner=None, lease_until=None)
            ).rowcount
        )
        if ended and plan is not None:
            plan(s, s.get(EvalRun, run_id, populate_existing=True))
        return ended


def pair_of(db: Database, run_id: int, example_id: int) -> tuple[str, str] | None:
    """(model's answer, baseline's answer) as text for the judge; None unless both were answered."""
    with db.session() as s:
        got = {
            a.slot: a
            for a in s.scalars(select(EvalAnswer).where(EvalAnswer.run_id == run_id, EvalAnswer.example_id == example_id, EvalAnswer.slot.in_(["model", "baseline"])))
        }
        if any(got.get(k) is None or got[k].status != "done" for k in ("model", "baseline")):
            return None
        return answer_text(got["model"]), answer_text(got["baseline"])


def answer_text(a: EvalAnswer) -> str:
    text = a.content or ""
    for c in a.tool_calls or []:
        text += f"\n[tool call] {c.get('name')}({c.get('arguments')})"
    return text.strip()


def now() -> datetime:
    return utcnow()


def runs_to_prepare(db: Database, limit: int = 5) -> list[int]:
    now = utcnow()
    with db.session() as s:
        return list(
            s.scalars(
                select(EvalRun.id)
                .where(EvalRun.status == "preparing", or_(EvalRun.lease_until.is_(None), EvalRun.lease_until < now))
                .order_by(EvalRun.id)
                .limit(limit)
            )
        )


def take_preparing(db: Database, run_id: int, owner: str, ttl: timedelta) -> bool:
    now = utcnow()
    with db.session() as s:
        return bool(
            s.execute(
                update(EvalRun)
                .where(EvalRun.id == run_id, EvalRun.status == "preparing", or_(EvalRun.lease_owner == owner, EvalRun.lease_until.is_(None), EvalRun.lease_until < now))
                .values(lease_owner=owner, lease_until=now + ttl)
            ).rowcount
        )


def fill_run(db: Database, run_id: int, owner: str, examples: Sequence[Example], prompt_tokens: Sequence[int], *, skipped: dict[str, int], estimate: dict[str, Any], source_file: str, source_note: str, plan: Any = None, status: str = "pending") -> bool:
    """A run created before its examples were chosen (a job's automatic evaluation, created in the
    poll that saw the job succeed) gets them, once: preparing -> pending (or held: over the budget)
    by its lease holder."""
    with db.session() as s:
        moved = s.execute(
            update(EvalRun)
            .where(EvalRun.id == run_id, EvalRun.status == "preparing", EvalRun.lease_owner == owner)
            # The preparing lease is let go: the run is driven at the next tick, not when the lease runs out.
            .values(
                status=status, examples=len(examples), skipped=dict(skipped), estimate=estimate, source_file=source_file, source_note=source_note,
                lease_owner=None, lease_until=None,
            )
        ).rowcount
        if not moved:
            return False
        run = s.get(EvalRun, run_id, populate_existing=True)
        slots = SLOTS + (("judge",) if run.judge else ())
        for pos, (ex, tokens) in enumerate(zip(examples, prompt_tokens, strict=True)):
            row = EvalExample(run_id=run_id, position=pos, line=ex.line, prompt=ex.prompt, reference=ex.reference, prompt_tokens=tokens)
            s.add(row)
            s.flush()
            for slot in slots:
                s.add(EvalAnswer(run_id=run_id, example_id=row.id, slot=slot))
        if plan is not None:
            plan(s, run)
        return True
