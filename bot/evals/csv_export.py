"""Every example of a run as CSV: where it came from, the prompt, the reference, both answers, each
score for both models, latency and errors. Built from the store when sent, so it is never stale."""

from __future__ import annotations

import csv
import io
import json

from bot.evals import store
from bot.evals.summary import example_scores
from storage.db import Database


def filename(run_id: int) -> str:
    return f"eval-{run_id}.csv"


def run_csv(db: Database, run_id: int) -> bytes:
    run = store.get_run(db, run_id)
    if run is None:
        raise LookupError(f"no evaluation run {run_id}")
    rows = store.rows(db, run_id)
    buf = io.StringIO()
    w = csv.writer(buf)
    names = list(run.scores)
    w.writerow(
        ["position", "line", "prompt", "reference", "model_answer", "baseline_answer"]
        + [f"{slot}_{n}" for n in names for slot in ("model", "baseline")]
        + ["model_latency_ms", "baseline_latency_ms", "model_error", "baseline_error", "judge_reply"]
    )
    for r in rows:
        sc = example_scores(run, r)
        m, b, j = r.answers.get("model"), r.answers.get("baseline"), r.answers.get("judge")
        w.writerow(
            [r.position, r.line, json.dumps(r.prompt["messages"], ensure_ascii=False), _ref(r.reference), store.answer_text(m) if m and m.status == "done" else "", store.answer_text(b) if b and b.status == "done" else ""]
            + ["" if sc[slot].get(n) is None else f"{sc[slot][n]:.4f}" for n in names for slot in ("model", "baseline")]
            + [m.latency_ms if m else "", b.latency_ms if b else "", _error(m), _error(b), (j.content or "") if j else ""]
        )
    return buf.getvalue().encode()


def _error(a: object) -> str:
    """Why an example has no answer from this model: the provider's words, refused or failed."""
    status = getattr(a, "status", None)
    if status not in ("failed", "refused"):
        return ""
    return f"{status}: {getattr(a, 'error', None) or 'no reason given'}"


def _ref(ref: dict) -> str:
    text = ref.get("content") or ""
    for c in ref.get("tool_calls") or []:
        text += f"\n[tool call] {c.get('name')}({c.get('arguments')})"
    return text.strip()
