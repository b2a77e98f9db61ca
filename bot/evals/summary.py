"""The report's numbers, from the stored answers: per score both models' means, the difference with
its paired-bootstrap 95 % interval and win / tie / loss; how many examples were scored and how many
failed; latency p50, tokens and cost per model; the examples where the two differ most. Plain
JSON-able data: it is stored on the run, so a report survives restarts and is shown again as is."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bot.evals import costs, scorers, stats
from bot.evals.judging import judge_order
from bot.evals.store import Row, answer_text
from storage.models import EvalRun

MOST_DIFFERENT = 3


def _answer(a: Any) -> dict[str, Any]:
    return {"content": a.content, "tool_calls": a.tool_calls or []}


def example_scores(run: EvalRun, row: Row) -> dict[str, dict[str, float | None]]:
    """{"model": {score: value}, "baseline": {...}} for one example (None: not applicable or not answered)."""
    names = [n for n in run.scores if n != "judge"]
    out: dict[str, dict[str, float | None]] = {}
    for slot in ("model", "baseline"):
        a = row.answers.get(slot)
        out[slot] = scorers.score_answer(names, _answer(a), row.reference) if a is not None and a.status == "done" else dict.fromkeys(names)
    if "judge" in run.scores:
        j = row.answers.get("judge")
        verdict = scorers.parse_verdict(j.content) if j is not None and j.status == "done" else None
        s = scorers.judge_score(verdict, judge_order(run.id, _example_id(row))) if verdict else None
        out["model"]["judge"] = s
        out["baseline"]["judge"] = None if s is None else 1.0 - s
    return out


def _example_id(row: Row) -> int:
    a = next(iter(row.answers.values()))
    return a.example_id


def _last_user(prompt: dict[str, Any]) -> str:
    for m in reversed(prompt.get("messages") or []):
        if m.get("role") == "user":
            c = m.get("content")
            return c if isinstance(c, str) else str(c)
    return ""


def _reference_text(ref: dict[str, Any]) -> str:
    text = ref.get("content") or ""
    for c in ref.get("tool_calls") or []:
        text += f"\n[tool call] {c.get('name')}({c.get('arguments')})"
    return text.strip()


def summarise(run: EvalRun, rows: list[Row]) -> dict[str, Any]:
    per = [example_scores(run, r) for r in rows]
    comparisons: dict[str, Any] = {}
    for name in run.scores:
        if name == "judge":
            c = stats.judge_comparison([p["model"].get("judge") for p in per], seed=run.id)
        else:
            c = stats.compare([(p["model"].get(name), p["baseline"].get(name)) for p in per], seed=run.id)
        comparisons[name] = asdict(c)
    slots: dict[str, Any] = {}
    parts = {p["role"]: p for p in (run.estimate or {}).get("parts", [])}
    total_cost: float | None = 0.0
    for slot, provider, model in (("model", run.provider, run.model), ("baseline", run.baseline_provider, run.baseline), ("judge", run.judge_provider, run.judge)):
        answers = [r.answers[slot] for r in rows if slot in r.answers]
        if not answers or model is None:
            continue
        done = [a for a in answers if a.status == "done"]
        tin = sum(a.prompt_tokens or 0 for a in done)
        tout = sum(a.completion_tokens or 0 for a in done)
        part = parts.get(slot) or {}
        usd = costs.spent(provider or "", model, part.get("base"), tin, tout, part.get("billing", "per_token"))
        total_cost = None if usd is None or total_cost is None else total_cost + usd
        slots[slot] = {
            "model": model, "provider": provider, "answered": len(done), "failed": sum(1 for a in answers if a.status == "failed"),
            "refused": sum(1 for a in answers if a.status == "refused"),
            "latency_p50_ms": stats.median([a.latency_ms for a in done if a.latency_ms is not None]),
            "prompt_tokens": tin, "completion_tokens": tout, "usd": usd,
            "errors": sorted({a.error for a in answers if a.status in ("failed", "refused") and a.error})[:3],
        }
    both = sum(1 for r in rows if all(r.answers.get(s) is not None and r.answers[s].status == "done" for s in ("model", "baseline")))
    judge_unparsed = 0
    if "judge" in run.scores:
        judge_unparsed = sum(1 for r, p in zip(rows, per, strict=True) if r.answers.get("judge") is not None and r.answers["judge"].status == "done" and p["model"].get("judge") is None)
    # The examples where the two differ most, on the first score that has a difference to show.
    key = next((n for n in run.scores if comparisons[n]["n"]), None)
    ranked = []
    if key is not None:
        diffs = [(abs(p["model"][key] - p["baseline"][key]), i) for i, p in enumerate(per) if p["model"].get(key) is not None and p["baseline"].get(key) is not None]
        ranked = [i for d, i in sorted(diffs, key=lambda t: (-t[0], t[1])) if d > 0][:MOST_DIFFERENT]
    different = [
        {
            "line": rows[i].line,
            "prompt": _last_user(rows[i].prompt),
            "reference": _reference_text(rows[i].reference),
            "model": answer_text(rows[i].answers["model"]),
            "baseline": answer_text(rows[i].answers["baseline"]),
            "score": key,
            "model_score": per[i]["model"][key],
            "baseline_score": per[i]["baseline"][key],
        }
        for i in ranked
    ]
    return {
        "examples": len(rows),
        "scored": both,
        "skipped": dict(run.skipped or {}),
        "comparisons": comparisons,
        "slots": slots,
        "usd": total_cost,
        # Where the prices come from (the shipped table, dated), and why a cost is unknown.
        "price_source": (run.estimate or {}).get("source") or costs.price_source(),
        "cost_note": (run.estimate or {}).get("note"),
        "judge_unparsed": judge_unparsed,
        "most_different": different,
        "headline": headline(run.scores, comparisons),
    }


def headline(names: list[str], comparisons: dict[str, Any]) -> str | None:
    """"exact match 31 % → 78 %": the first score with numbers, baseline first."""
    for n in names:
        c = comparisons.get(n) or {}
        if c.get("n"):
            return f"{scorers.LABELS[n]} {c['baseline']:.0%} → {c['model']:.0%}".replace("%", " %")
    return None


def first_comparison(summary: dict[str, Any], names: list[str]) -> dict[str, Any] | None:
    for n in names:
        c = (summary.get("comparisons") or {}).get(n) or {}
        if c.get("n"):
            return {"score": n, **c}
    return None
