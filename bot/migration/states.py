"""A migration's states, in order. `evaluating` is entered when the new job succeeded and an
evaluation is plugged in (bot/migration/progress.py, EVALUATE); until then a success is `done`."""

COPYING = "copying"
CHECKING = "checking"
READY = "ready"  # the preview: waiting for Confirm / Cancel
STARTING = "starting"  # confirmed (or waiting for budget approval), the job not seen yet
TRAINING = "training"
EVALUATING = "evaluating"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

ACTIVE = (COPYING, CHECKING, READY, STARTING, TRAINING, EVALUATING)
FINAL = (DONE, FAILED, CANCELLED)
