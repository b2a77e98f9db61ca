"""An evaluation's every example as CSV, drawn from the store when it is sent (registered with the
outbox by bot/wiring.py under the rows' kind, `eval_csv`)."""

from __future__ import annotations

from bot.evals.csv_export import filename, run_csv
from bot.outbox import renderers
from bot.outbox.renderers import File, Row

KIND = "eval_csv"


def csv_name(row: Row) -> str:
    return filename(int(row.payload["run_id"]))


def render_csv(row: Row) -> File:
    run_id = int(row.payload["run_id"])
    return File(run_csv(row.db, run_id), filename(run_id), f"Evaluation {run_id}: every example")


def register() -> None:
    renderers.register(KIND, render_csv, file_name=csv_name)
