"""`/ft migrate`: prepare (find the source, copy and check its files, translate its recipe, price it),
then Confirm starts the target job once, or Cancel drops it; the poll of the target job moves the
migration on (bot/migration/progress.py)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.approvals.requests import needs_job_approval, request_job_approval
from bot.datasets.estimate import estimate_job_cost
from bot.datasets.register import remember
from bot.datasets.validate import Report, validate_file
from bot.errors import UserError
from bot.events import Context, StartNotMade
from bot.jobs.lifecycle import Started, start_job
from bot.migration.copying import Downloaded, download, place, temp_dir
from bot.migration.progress import plan_links
from bot.migration.recipes import TOKEN_LIMITS, Recipe, translate
from bot.migration.states import (
    ACTIVE,
    CANCELLED,
    CHECKING,
    COPYING,
    EVALUATING,
    FAILED,
    FINAL,
    READY,
    STARTING,
    TRAINING,
)
from bot.mrkdwn import code
from bot.outbox.deliver import deliver_now
from bot.provider.base import JobSpec, ProviderError, StartUnconfirmed, provider_label
from bot.retirements.table import base_model_of
from bot.services import Services
from storage.models import Dataset, Job, Migration
from storage.types import utcnow

log = logging.getLogger(__name__)

DEFAULT_TARGET = "together"
DEFAULT_KEEP = 100
SCAN_PAGES = 10  # provider job pages searched for the job that made a model we have no row for


@dataclass(frozen=True)
class MigrationView:
    id: int
    state: str
    error: str | None
    source_provider: str
    source_model: str
    source_job_id: str | None
    target_provider: str
    target_base_model: str | None
    recipe: dict[str, Any]
    files: dict[str, Any]
    estimate_usd: float | None
    estimate_note: str | None
    target_job_id: str | None
    target_model: str | None
    requested_by: str
    created_at: datetime | None
    keep_n: int
    parity: str | None = None  # the parity report's headline, once it has one


def view_of(m: Migration, parity: str | None = None) -> MigrationView:
    return MigrationView(
        m.id, m.state, m.error, m.source_provider, m.source_model, m.source_job_id, m.target_provider, m.target_base_model, dict(m.recipe or {}),
        dict(m.files or {}), m.estimate_usd, m.estimate_note, m.target_job_id, m.target_model, m.requested_by, m.created_at, m.keep_n, parity,
    )


@dataclass(frozen=True)
class Source:
    provider: str
    job_id: str | None
    base_model: str
    method: str
    hyperparameters: dict[str, Any]
    training_file: str | None
    validation_file: str | None


class AlreadyMigrating(UserError):
    def __init__(self, running: MigrationView) -> None:
        super().__init__(
            f"{code(running.source_model)} is being migrated already (migration #{running.id}, {running.state}, to {provider_label(running.target_provider)}): "
            "nothing new was started. `/ft migrations` shows it."
        )
        self.running = running


def find_source(services: Services, team_id: str, model: str, target: str) -> Source:
    """The job that made `model`: our row, else each other provider's job list."""
    with services.db.session() as s:
        rows = s.scalars(select(Job).where(Job.fine_tuned_model == model).order_by(Job.created_at.desc())).all()
        ours = [j for j in rows if j.team_id in (None, team_id)]
        if rows and not ours:
            raise UserError(f"{code(model)} was made by another workspace's job: ftbot moves only this workspace's models.")
        for j in ours:
            if j.provider in services.providers:
                return Source(j.provider, j.provider_job_id, j.base_model, j.method or "supervised", dict(j.hyperparameters or {}), j.training_file, j.validation_file)
    for name, at in services.providers.items():
        if name == target:
            continue
        after = None
        try:
            for _ in range(SCAN_PAGES):
                page = at.list_jobs(limit=100, after=after)
                for pj in page.jobs:
                    if pj.fine_tuned_model == model:
                        return Source(name, pj.id, pj.model, pj.method or "supervised", dict(pj.hyperparameters or {}), pj.training_file, pj.validation_file)
                if not page.has_more or not page.jobs:
                    break
                after = page.jobs[-1].id
        except ProviderError as exc:
            log.warning("searching %s's jobs for %s failed: %s", name, model, exc.reason)
    raise UserError(
        f"I found no job that made {code(model)} at {', '.join(provider_label(p) for p in services.providers if p != target) or 'any other provider'}. "
        "Check the name with `/ft models`, or tell me its training data: `/ft migrate MODEL data=DATASET` (a dataset name or file id at its provider)."
    )


def source_from_data(services: Services, team_id: str, model: str, target: str, data: str) -> Source:
    """A model whose job cannot be found, rebuilt from the training data the user names: a dataset
    of this team at a provider other than the target, or a file id there."""
    with services.db.session() as s:
        names = [data] if data.lower().endswith(".jsonl") else [data, data + ".jsonl"]
        found = s.scalars(
            select(Dataset).where(Dataset.team_id == team_id, Dataset.name.in_(names), Dataset.provider != target).order_by(Dataset.created_at.desc())
        ).first()
        if found is not None:
            return Source(found.provider, None, base_model_of(model), "supervised", {}, found.provider_file_id, None)
    for name, at in services.providers.items():
        if name == target:
            continue
        try:
            f = at.get_file(data)
        except ProviderError:
            continue
        return Source(name, None, base_model_of(model), "supervised", {}, f.id, None)
    raise UserError(f"I found no dataset or file {code(data[:60])} outside {provider_label(target)}: `/ft files` lists yours.")


def _set(services: Services, mid: int, **values: Any) -> bool:
    """Move a migration that is not final yet (one cancelled meanwhile stays cancelled)."""
    with services.db.session() as s:
        return bool(s.execute(update(Migration).where(Migration.id == mid, Migration.state.not_in(FINAL)).values(updated_at=utcnow(), **values)).rowcount)


def _fail(services: Services, mid: int, why: str) -> None:
    _set(services, mid, state=FAILED, error=why[:2000], active_key=None)


def _active_key(team_id: str, provider: str, model: str) -> str:
    return f"{team_id}|{provider}|{model}"[:255]


def _open(services: Services, *, team_id: str, user: str, channel: str, source: Source, model: str, target: str, recipe: Recipe, keep: int, request_key: str) -> tuple[MigrationView, bool]:
    row = Migration(
        team_id=team_id, request_key=request_key, active_key=_active_key(team_id, source.provider, model), state=COPYING, source_provider=source.provider,
        source_model=model, source_job_id=source.job_id, source_base_model=source.base_model, target_provider=target, target_base_model=recipe.model,
        recipe=recipe.to_dict(), files={}, keep_n=keep, requested_by=user, channel_id=channel,
    )
    try:
        with services.db.session() as s:
            s.add(row)
            s.flush()
            return view_of(row), True
    except IntegrityError:
        pass
    # Expected constraints: request_key (the same Slack delivery again) or active_key (the model is
    # being migrated already). Anything else is not a race and surfaces.
    with services.db.session() as s:
        same = s.scalar(select(Migration).where(Migration.request_key == request_key))
        if same is not None:
            return view_of(same), False
        running = s.scalar(select(Migration).where(Migration.active_key == _active_key(team_id, source.provider, model)))
        if running is not None:
            raise AlreadyMigrating(view_of(running))
    raise RuntimeError("migration row refused by an unexpected constraint")


def running_migration(services: Services, team_id: str, model: str) -> MigrationView | None:
    with services.db.session() as s:
        row = s.scalar(select(Migration).where(Migration.team_id == team_id, Migration.source_model == model, Migration.state.in_(ACTIVE)))
        return view_of(row) if row else None


def prepare(
    services: Services, *, team_id: str, user: str, channel: str, model: str, target: str | None, base: str | None, keep: int, request_key: str,
    data: str | None = None,
) -> tuple[MigrationView, Report | None]:
    """Everything before Confirm. Returns the migration (ready, or as a redelivery found it) and the
    target's dataset report. Bad input raises UserError before anything is stored or copied."""
    target = target or DEFAULT_TARGET
    if target not in services.providers:
        raise UserError(f"{provider_label(target)} is not enabled here (enabled: {', '.join(services.providers)}): set its key to migrate there.")
    running = running_migration(services, team_id, model)
    if running is not None:
        raise AlreadyMigrating(running)
    try:
        source = find_source(services, team_id, model, target)
    except UserError:
        if not data:
            raise
        source = source_from_data(services, team_id, model, target, data)
    if source.provider == target:
        raise UserError(f"{code(model)} is at {provider_label(target)} already: name another provider with `to=`.")
    if not source.training_file:
        raise UserError(f"The job that made {code(model)} names no training file at {provider_label(source.provider)}: nothing to copy.")
    recipe = translate(source_model=model, source_base=source.base_model, method=source.method, hyperparameters=source.hyperparameters, target=target, base=base)
    mig, created = _open(services, team_id=team_id, user=user, channel=channel, source=source, model=model, target=target, recipe=recipe, keep=keep, request_key=request_key)
    if not created:
        return mig, None
    try:
        report = _copy_and_check(services, mig, source, recipe, team_id=team_id, user=user)
    except UserError as exc:
        _fail(services, mig.id, exc.message)
        raise
    except ProviderError as exc:
        why = f"{provider_label(target)} or {provider_label(source.provider)} failed while copying: {exc.reason}. Run `/ft migrate` again: what arrived is reused."
        _fail(services, mig.id, why)
        raise UserError(why) from None
    except Exception:
        _fail(services, mig.id, "an unexpected error while copying (logged)")
        raise
    with services.db.session() as s:
        return view_of(s.get(Migration, mig.id)), report


def _copy_and_check(services: Services, mig: MigrationView, source: Source, recipe: Recipe, *, team_id: str, user: str) -> Report:
    files: dict[str, Any] = {}
    with temp_dir() as tmp:
        got: dict[str, Downloaded] = {}
        for what, fid in (("training", source.training_file), ("validation", source.validation_file)):
            if fid:
                got[what] = download(services, source.provider, fid, Path(tmp), what)
        _set(services, mig.id, state=CHECKING)
        report = validate_file(
            got["training"].path, model=recipe.model, validation=got["validation"].path if "validation" in got else None,
            token_limit=TOKEN_LIMITS.get(recipe.model), price_overrides=dict(services.settings.price_table),
        )
        if not report.ok:
            raise UserError(
                f"The data of {code(mig.source_model)} does not pass the checks for {code(recipe.model)} ({report.error_count()} errors): "
                "nothing was copied or started. Fix it and `/ft upload` it to the target."
            )
        _set(services, mig.id, state=COPYING)
        reports = {"training": report, "validation": report.validation}
        for what, d in got.items():
            placed = place(services, team_id=team_id, target=mig.target_provider, got=d, what=what)
            sub_report = reports[what] or report
            remember(
                services, team_id=team_id, name=placed.name, provider_file_id=placed.file_id, size=d.bytes, sha256=d.sha256, report=sub_report,
                user_id=user, provider=mig.target_provider,
            )
            files[what] = {"source": source.training_file if what == "training" else source.validation_file, "target": placed.file_id, "bytes": d.bytes, "sha256": d.sha256, "reused": placed.reused, "examples": sub_report.examples}
    spec = _spec(mig, recipe.to_dict(), files)
    estimate = estimate_job_cost(services, team_id, spec, mig.target_provider)
    _set(services, mig.id, state=READY, files=files, estimate_usd=estimate.usd, estimate_note=estimate.note)
    return report


def _spec(mig: MigrationView, recipe: dict[str, Any], files: dict[str, Any]) -> JobSpec:
    return JobSpec(
        model=recipe["model"],
        training_file=files["training"]["target"],
        validation_file=(files.get("validation") or {}).get("target"),
        method=recipe["method"],
        hyperparameters=dict(recipe["hyperparameters"]),
        suffix=f"migrated-{mig.id}",
    )


@dataclass(frozen=True)
class Confirmed:
    migration: MigrationView
    started: Started | None  # None: held for budget approval, or a repeat click
    held_request: int | None = None
    repeat: bool = False


def confirm(services: Services, *, team_id: str, migration_id: int, user: str) -> Confirmed:
    """Start the target job once: only the click that moves ready -> starting goes on."""
    with services.db.session() as s:
        moved = s.execute(
            update(Migration).where(Migration.id == migration_id, Migration.team_id == team_id, Migration.state == READY)
            .values(state=STARTING, confirmed_by=user, job_key=f"migrate-{migration_id}", updated_at=utcnow())
        ).rowcount
        row = s.scalar(select(Migration).where(Migration.id == migration_id, Migration.team_id == team_id))
        if row is None:
            raise UserError(f"There is no migration #{migration_id} in this workspace.")
        mig = view_of(row)
        channel = row.channel_id or user
    if not moved:
        return Confirmed(mig, None, repeat=True)
    spec = _spec(mig, mig.recipe, mig.files)
    key = f"migrate-{migration_id}"
    try:
        if needs_job_approval(services, mig.estimate_usd):
            opened = request_job_approval(
                services, team_id=team_id, user=user, channel=channel, spec=asdict(spec), estimate_usd=mig.estimate_usd,
                estimate_note=mig.estimate_note, request_key=key, provider=mig.target_provider,
            )
            # The approved job is made under the request's key: that is how the poll finds this migration.
            _set(services, migration_id, job_key=f"approval-{opened.view.id}")
            return Confirmed(_reload(services, migration_id), None, held_request=opened.view.id)
        started = start_job(services, spec, team_id=team_id, user=user, channel=channel, idempotency_key=key, provider=mig.target_provider)
    except UserError as exc:
        _fail(services, migration_id, exc.message)
        raise
    except StartUnconfirmed:
        # The target may have made the job (its answer was lost): the migration stays starting
        # under its key; the job is taken up when it shows (progress.on_job_polled), or the
        # migration fails on StartNotMade once the worker gives up looking.
        raise
    except ProviderError as exc:
        _fail(services, migration_id, f"{provider_label(mig.target_provider)} did not start the job: {exc.reason}")
        raise
    except Exception:
        # Never left in `starting` with the model locked: a new /ft migrate can try again.
        _fail(services, migration_id, "an unexpected error while starting the job (logged)")
        raise
    _set(services, migration_id, state=TRAINING, target_job_id=started.job.id)
    link_cards(services, migration_id)
    deliver_now(services, started.subscription_ids)
    return Confirmed(_reload(services, migration_id), started)


def on_start_not_made(ctx: Context, event: StartNotMade) -> None:
    """The worker gave up on a lost start: a migration waiting on that key fails, freeing the model.
    A subscriber of StartNotMade (bot/wiring.py), in the transaction that closes the lost start."""
    ctx.session.execute(
        update(Migration).where(Migration.job_key == event.idempotency_key, Migration.state == STARTING, Migration.target_job_id.is_(None))
        .values(state=FAILED, active_key=None, error=f"the target never made the job (its answer was lost: {event.reason})"[:2000], updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def cancel(services: Services, *, team_id: str, migration_id: int, user: str) -> MigrationView:
    """Drop a migration still waiting for Confirm (the copied files stay, reusable)."""
    with services.db.session() as s:
        s.execute(
            update(Migration).where(Migration.id == migration_id, Migration.team_id == team_id, Migration.state == READY)
            .values(state=CANCELLED, active_key=None, error=f"cancelled by <@{user}>"[:200], updated_at=utcnow())
        )
    return _reload(services, migration_id)


@dataclass(frozen=True)
class CancelOutcome:
    migration: MigrationView | None
    text: str


def cancel_model(services: Services, *, team_id: str, model: str, user: str) -> CancelOutcome:
    """`/ft migrate cancel MODEL`: the model's migration stops in whatever state it is, and what it
    started stops with it: the budget request (closed, so no approval starts a job), the target job
    (cancelled at the provider), the parity report (stopped). The copied files stay, reusable."""
    running = running_migration(services, team_id, model)
    if running is None:
        return CancelOutcome(None, f"No migration of {code(model)} is under way: nothing to cancel. `/ft migrations` lists them.")
    mid, state = running.id, running.state
    why = f"cancelled by <@{user}>"
    if state in (COPYING, CHECKING, READY):
        _cancel_row(services, mid, (COPYING, CHECKING, READY), why)
        return _cancelled(services, mid, "nothing was started; the files copied so far stay at the target, reused by the next `/ft migrate`.")
    if state == STARTING:
        with services.db.session() as s:
            key = s.scalar(select(Migration.job_key).where(Migration.id == mid)) or ""
        if not key.startswith("approval-") or not _close_request(services, int(key.split("-", 1)[1]), team_id, user, mid, why):
            # Its job is being created this moment (a Confirm, or an approval being carried out).
            return CancelOutcome(running, f"Migration #{mid} is starting its job this very moment: ask again in a few seconds to cancel it (its job is cancelled with it).")
        return _cancelled(services, mid, "its budget request is closed, so no approval starts a job.")
    if state == TRAINING:
        from bot.jobs.lifecycle import steer_job

        job_id = running.target_job_id or ""
        try:
            steer_job(services, team_id=team_id, user=user, ref=job_id, action="cancel")
        except ProviderError as exc:
            raise UserError(f"{provider_label(running.target_provider)} did not cancel {code(job_id)}: {exc.reason}. Migration #{mid} goes on; try again.") from None
        _cancel_row(services, mid, (TRAINING,), why)
        return _cancelled(services, mid, f"its job {code(job_id)} at {provider_label(running.target_provider)} is cancelled.")
    if state == EVALUATING:
        _stop_parity(services, mid, team_id, user)
        _cancel_row(services, mid, (EVALUATING,), f"{why} while its parity report ran; the new model {code(running.target_model or '?', 200)} exists")
        return _cancelled(services, mid, f"its parity report is stopped (nothing more is asked); the new model {code(running.target_model or '?', 200)} exists.")
    return CancelOutcome(running, f"Migration #{mid} is {state}: nothing to cancel.")


def _cancel_row(services: Services, mid: int, states: tuple[str, ...], why: str) -> bool:
    with services.db.session() as s:
        return bool(
            s.execute(
                update(Migration).where(Migration.id == mid, Migration.state.in_(states)).values(state=CANCELLED, active_key=None, error=why[:2000], updated_at=utcnow())
            ).rowcount
        )


def _cancelled(services: Services, mid: int, what: str) -> CancelOutcome:
    mig = _reload(services, mid)
    if mig.state != CANCELLED:
        return CancelOutcome(mig, f"Migration #{mid} moved on to *{mig.state}* meanwhile and was not cancelled: ask again to cancel it there.")
    return CancelOutcome(mig, f":no_entry_sign: Migration #{mid} is cancelled: {what}")


def _close_request(services: Services, request_id: int, team_id: str, user: str, mid: int, why: str) -> bool:
    """Under the request's row lock: a pending budget request is closed (rejected, by the person
    cancelling) and the migration cancelled in the same transaction. False when the request is not
    pending any more (approved and being carried out)."""
    from bot.approvals import audit
    from bot.approvals.messages import deliver, plan_edit
    from storage.models import ApprovalRequest

    with services.db.session() as s:
        req = s.get(ApprovalRequest, request_id, with_for_update=True, populate_existing=True)
        if req is None or req.team_id != team_id or req.status != "pending":
            return False
        moved = s.execute(
            update(Migration).where(Migration.id == mid, Migration.state == STARTING).values(state=CANCELLED, active_key=None, error=why[:2000], updated_at=utcnow())
        ).rowcount
        if not moved:
            return False
        req.status, req.decided_at, req.decided_by = "rejected", utcnow(), user
        audit.record(s, req, "reject", user, why=f"migration #{mid} cancelled")
        plan_edit(s, req)
        channel = req.channel_id
    deliver(services, channel)
    return True


def _stop_parity(services: Services, mid: int, team_id: str, user: str) -> None:
    from bot.evals import store
    from bot.migration.parity import request_key
    from storage.models import ApprovalRequest

    run = store.find_run(services.db, request_key(mid))
    if run is None:
        return
    if run.status == "held":
        store.set_status(services.db, run.id, "cancelled", frm=["held"], error=f"cancelled by {user}")
        with services.db.session() as s:
            req_id = s.scalar(select(ApprovalRequest.id).where(ApprovalRequest.request_key == run.request_key, ApprovalRequest.status == "pending"))
        if req_id is not None:
            from bot.approvals.votes import cast_vote

            cast_vote(services, request_id=req_id, team_id=team_id, user=user, decision="reject")
        return
    store.request_cancel(services.db, run.id, user)


def _reload(services: Services, migration_id: int) -> MigrationView:
    with services.db.session() as s:
        return view_of(s.get(Migration, migration_id))


def link_cards(services: Services, migration_id: int) -> None:
    with services.db.session() as s:
        ids = plan_links(s, s.get(Migration, migration_id))
    deliver_now(services, ids)


def list_migrations(services: Services, team_id: str, n: int = 20) -> list[MigrationView]:
    from bot.migration.parity import headlines

    with services.db.session() as s:
        ms = list(s.scalars(select(Migration).where(Migration.team_id == team_id).order_by(Migration.id.desc()).limit(n)))
        said = headlines(s, [m.id for m in ms])
        return [view_of(m, said.get(m.id)) for m in ms]
