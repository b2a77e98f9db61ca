"""The composition: which feature reacts to which event, which renderers the outbox has, which
approval kinds other features run. Called at start-up by each process's composition root
(bot/app.py for the web process, bot/worker/runner.py for the worker); wiring twice is harmless.

The one module that imports every feature to connect them: nothing below it imports it.

Per subscriber, when it runs (bot/events/bus.py):
- in the announcer's transaction: what must happen once, together with the change — a migration
  moving on with its target job (JobChanged), the job's automatic evaluation created when it
  succeeds (JobEnded), a held migration failed when its budget approval closes unapproved or its
  approved start fails (ApprovalClosed), or when its lost start was never made (StartNotMade), the
  parity report and the migration's end when its evaluation ends (EvaluationFinished);
- after the commit: what may ask a provider or fail alone — the retirement warnings of a model that
  just appeared (ModelAppeared; the hourly check covers a failure).
"""

from __future__ import annotations

from bot.approvals.actions import register_executor
from bot.evals import gate, on_completion, publish
from bot.evals import renderers as eval_renderers
from bot.events import (
    AFTER_COMMIT,
    IN_TRANSACTION,
    ApprovalClosed,
    EvaluationFinished,
    JobChanged,
    JobEnded,
    ModelAppeared,
    StartNotMade,
    subscribe,
)
from bot.jobs import alert_notes
from bot.jobs import renderers as job_renderers
from bot.migration import approval_closed, flow, parity, progress
from bot.retirements import alert_note


def wire() -> None:
    # The outbox's renderers: the job card, the loss chart, the digest of endings, an evaluation's CSV.
    job_renderers.register()
    eval_renderers.register()
    # Announced by bot/jobs/notify.py in the poll's transaction.
    subscribe(JobChanged, progress.on_job_changed, phase=IN_TRANSACTION)
    subscribe(JobEnded, on_completion.on_job_ended, phase=IN_TRANSACTION)
    subscribe(ModelAppeared, alert_note.cover_new_models, phase=AFTER_COMMIT)
    # Announced by bot/approvals (votes.py, expiry.py: rejected, expired; execution.py: failed once
    # approved) in the transaction that closes the request.
    subscribe(ApprovalClosed, approval_closed.on_closed, phase=IN_TRANSACTION)
    # Announced by bot/jobs/lost_starts.py in the transaction that closes a lost start never made.
    subscribe(StartNotMade, flow.on_start_not_made, phase=IN_TRANSACTION)
    # Announced by bot/evals/publish.py in the transaction that ends the run; the parity report is
    # the migration's to write, so evaluations say nothing more of those runs.
    subscribe(EvaluationFinished, parity.on_evaluation_finished, phase=IN_TRANSACTION)
    publish.report_elsewhere(parity.PREFIX)
    # What approvals run once approved, for other features: an evaluation held over the budget.
    register_executor("eval_budget", gate.StartEvaluation())
    # The final alert's note on a new model's end of serving (looked up before the poll's write).
    alert_notes.set_serving_lookup(alert_note.serving_note)
