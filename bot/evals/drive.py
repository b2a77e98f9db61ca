"""The worker's part: prepare the evaluations created by jobs that succeeded, then drive every run
that waits (pending, or running with a lease that ran out: its worker died). Everything it needs is
in the store, so any worker, after any restart, picks up where the last one stopped."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from bot.errors import UserError
from bot.evals import gate, publish, store
from bot.evals.prepare import EvalRequest, prepare
from bot.evals.runner import EvalRunner
from bot.provider.base import ProviderError
from bot.services import Services
from storage.models import EvalRun, Job

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between progress edits (Slack allows about one update a second per message)


class EvalDriver:
    def __init__(self, services: Services, owner: str, *, lease_seconds: float = 120.0) -> None:
        self.s = services
        self.owner = owner
        self.lease = lease_seconds
        self.stop = threading.Event()
        self._last_edit: dict[int, float] = {}

    def tick(self) -> None:
        for run_id in store.runs_to_prepare(self.s.db):
            if self.stop.is_set():
                return
            self.prepare(run_id)
        for run_id in store.runs_to_drive(self.s.db):
            if self.stop.is_set():
                return
            self.drive(run_id)

    # ---- a job's automatic evaluation -------------------------------------------------------

    def prepare(self, run_id: int) -> None:
        db = self.s.db
        if not store.take_preparing(db, run_id, self.owner, timedelta(seconds=self.lease)):
            return
        run = store.get_run(db, run_id)
        assert run is not None
        if run.examples:
            # Its examples were written when it was made (a parity report): only the gate is left.
            gate.gate_prefilled(self.s, run_id, self.owner)
            return
        with db.session() as s:
            job = s.get(Job, run.job_id) if run.job_id else None
            if job is not None:
                s.expunge(job)
        try:
            if job is None:
                raise UserError("the job that made the model is no longer known")
            got = prepare(self.s, run.team_id, EvalRequest(run.model, scores=tuple(run.scores)), default_n=self.s.settings.eval_examples, job=job, seed_key=run.request_key)
        except (UserError, ProviderError) as exc:
            reason = exc.message if isinstance(exc, UserError) else exc.reason
            with db.session() as s:
                row = s.get(EvalRun, run_id)
                row.summary = {"error": reason, "examples": 0, "scored": 0}
            if store.set_status(db, run_id, "failed", frm=["preparing"], error=reason):
                self._said_failed(run_id)
            return
        # The same budget gate as `/ft eval`: over FTBOT_JOB_BUDGET_USD (or not estimable while a
        # budget is set), the run waits for approval and nothing is asked before.
        held = gate.needs_approval(self.s, got.estimate.get("usd"))
        filled = store.fill_run(
            db, run_id, self.owner, got.sample.examples, got.sample.prompt_tokens, skipped=got.sample.skipped, estimate=got.estimate,
            source_file=got.source_file, source_note=got.source_note, status="held" if held else "pending",
        )
        if filled and held:
            run = store.get_run(db, run_id)
            assert run is not None
            gate.hold(self.s, run, user=job.started_by or "", channel=run.channel_id or "", request_key=run.request_key)

    def _said_failed(self, run_id: int) -> None:
        with self.s.db.session() as s:
            run = s.get(EvalRun, run_id)
            publish.queue_end(s, run, "failed")

    # ---- asking ---------------------------------------------------------------------------

    def drive(self, run_id: int) -> str:
        runner = EvalRunner(
            self.s.db, self.s.providers, self.owner, concurrency=self.s.settings.eval_concurrency, lease_seconds=self.lease,
            on_progress=self._progress, on_end=publish.queue_end, stop=self.stop,
        )
        try:
            return runner.drive(run_id).status
        except Exception:  # noqa: BLE001 - the run stays in the store; its lease runs out and it is driven again
            log.exception("evaluation %s stopped by an error; it resumes when its lease runs out", run_id)
            return "error"

    def _progress(self, run: EvalRun, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total:
            store.set_progress_shown(self.s.db, run.id, done)
            return  # the run's end edits the message to its last state
        if now - self._last_edit.get(run.id, 0.0) < PROGRESS_EVERY:
            return
        if not store.set_progress_shown(self.s.db, run.id, done):
            return
        self._last_edit[run.id] = now
        with self.s.db.session() as s:
            publish.queue_progress_edit(s, run, done)
