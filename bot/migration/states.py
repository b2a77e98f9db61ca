"""A migration's states, in order. `evaluating` is entered when the new job succeeded: the parity
report (bot/migration/parity.py, plugged in as bot/migration/progress.py's EVALUATE) runs, then `done`."""

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
