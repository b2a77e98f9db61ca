"""Evaluation messages, pure: the progress message (edited in place, with Cancel), the report (a
table of scores, latency, tokens, cost, the examples that differ most), and the headline added to
a job's final alert. Model and provider text is trimmed then escaped, in blocks and fallback text."""

from __future__ import annotations

from typing import Any

from bot.mrkdwn import clip, code, escape, truncate

CANCEL_ACTION = "eval_cancel"
LABELS = {"exact": "exact match", "similarity": "ROUGE-L F1", "json": "JSON equal", "tools": "tool calls", "judge": "judge preference"}
MAX_SECTION = 3000
EXAMPLE_CHARS = 280


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.0f} %"


def _pts(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:+.0f} pts"


def _usd(x: float | None) -> str:
    if x is None:
        return "unknown (no price for a model)"
    return f"${x:,.4f}" if x < 1 else f"${x:,.2f}"


def progress_message(*, run_id: int, model: str, baseline: str, done: int, total: int, source_note: str, estimate_usd: float | None, state: str = "running", by: str | None = None, error: str | None = None) -> dict[str, Any]:
    """`state`: running (with Cancel) | done | cancelled | failed."""
    title = f"Evaluating {code(model, 150)} against {code(baseline, 150)}"
    bar_n = 20
    filled = bar_n * done // total if total else 0
    bar = "█" * filled + "░" * (bar_n - filled)
    status = {
        "running": f"{bar} {done} / {total} examples",
        "done": f"Done: {done} / {total} examples. The report follows.",
        "cancelled": f":no_entry_sign: Cancelled{f' by <@{by}>' if by else ''} at {done} / {total} examples; nothing more is asked.",
        "failed": f":x: Stopped at {done} / {total}: {clip(error or 'failed', 500)}",
    }.get(state, escape(state))
    lines = [title, status, f"Examples: {truncate(source_note, 1200)}", f"Estimated cost: {_usd(estimate_usd)}"]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), MAX_SECTION)}}]
    if state == "running":
        blocks.append({"type": "actions", "elements": [{"type": "button", "action_id": CANCEL_ACTION, "text": {"type": "plain_text", "text": "Cancel"}, "style": "danger", "value": str(run_id)}]})
    text = f"Evaluating {clip(model, 150)} vs {clip(baseline, 150)}: {done} / {total}" if state == "running" else f"Evaluation of {clip(model, 150)}: {state} at {done} / {total}"
    return {"text": text, "blocks": blocks}


def _cell(text: str) -> dict[str, Any]:
    return {"type": "raw_text", "text": text[:200]}


def report_message(
    *, model: str, baseline: str, summary: dict[str, Any], scores: list[str], source_note: str, judge: str | None = None, agreement: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`agreement` (a parity report): how often the model gives the baseline's saved answers."""
    comps = summary.get("comparisons") or {}
    slots = summary.get("slots") or {}
    rows = [[_cell("score"), _cell("model"), _cell("baseline"), _cell("difference [95 % CI]"), _cell("win / tie / loss"), _cell("n")]]
    fallback_lines = []
    for name in scores:
        c = comps.get(name) or {}
        label = LABELS.get(name, name)
        if not c.get("n"):
            why = "not scored (the run stopped)" if summary.get("error") else "no example this score applies to"
            rows.append([_cell(label), _cell("n/a"), _cell("n/a"), _cell(why), _cell("–"), _cell("0")])
            fallback_lines.append(f"{label}: n/a")
            continue
        ci = f"{_pts(c['diff'])} [{_pts(c['ci_low'])}, {_pts(c['ci_high'])}]"
        wtl = f"{c['wins']} / {c['ties']} / {c['losses']}"
        rows.append([_cell(label), _cell(_pct(c["model"])), _cell(_pct(c["baseline"])), _cell(ci), _cell(wtl), _cell(str(c["n"]))])
        fallback_lines.append(f"{label}: {_pct(c['baseline'])} → {_pct(c['model'])} ({ci}; W/T/L {wtl}; n={c['n']})")
    if agreement is not None:
        head = f":scales: *Parity report: {code(model, 150)}* against the saved answers of {code(baseline, 150)}"
        head += f"\n*{clip(agreement.get('headline') or '', 600)}*\n{agreement_line(agreement)}"
    else:
        head = f":bar_chart: *Evaluation of {code(model, 150)}* against {code(baseline, 150)}"
        if summary.get("headline"):
            head += f"\n*{escape(summary['headline'])}*"
    counts = f"{summary.get('scored', 0)} of {summary.get('examples', 0)} examples scored"
    failed = {s: v.get("failed", 0) for s, v in slots.items() if v.get("failed")}
    refused = {s: v.get("refused", 0) for s, v in slots.items() if v.get("refused")}
    if refused:
        counts += ", refused by the provider: " + ", ".join(f"{k} {v}" for k, v in refused.items())
    if failed:
        counts += ", failed: " + ", ".join(f"{k} {v}" for k, v in failed.items())
    if failed or refused:
        reasons = "; ".join(clip(e, 200) for e in dict.fromkeys(e for v in slots.values() for e in v.get("errors", [])))
        counts += f" ({reasons})" if reasons else ""
    skipped = summary.get("skipped") or {}
    if skipped:
        counts += ". Left out of the sample: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(skipped.items()))
    if summary.get("judge_unparsed"):
        counts += f". The judge's answer could not be read for {summary['judge_unparsed']} examples (unscored)"
    if summary.get("error"):
        counts += f". Stopped: {clip(summary['error'].rstrip('.'), 400)}"
    perf = []
    for slot in ("model", "baseline", "judge"):
        v = slots.get(slot)
        if not v:
            continue
        p50 = v.get("latency_p50_ms")
        if v.get("saved"):
            perf.append(f"{slot} {code(v['model'], 100)}: {v.get('answered', 0)} answers saved while it served (not asked again)")
            continue
        perf.append(f"{slot} {code(v['model'], 100)}: p50 {p50:.0f} ms, {v['prompt_tokens']:,} prompt + {v['completion_tokens']:,} answer tokens, {_usd(v.get('usd'))}" if p50 is not None else f"{slot} {code(v['model'], 100)}: no answer")
    perf.append(f"Total cost: {_usd(summary.get('usd'))} (tokens as the provider counted them × the shipped price table)")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(head, MAX_SECTION)}},
        {"type": "table", "rows": rows[:100], "column_settings": [{"is_wrapped": True}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(counts + f".\nExamples: {source_note}", MAX_SECTION)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(perf), MAX_SECTION)}},
    ]
    different = summary.get("most_different") or []
    if different:
        parts = ["*Where the two differ most*"]
        for d in different:
            parts.append(
                f"line {d['line']} ({LABELS.get(d['score'], d['score'])} {_pct(d['model_score'])} vs {_pct(d['baseline_score'])})\n"
                f"> prompt: {clip(d['prompt'], EXAMPLE_CHARS)}\n> reference: {clip(d['reference'], EXAMPLE_CHARS)}\n"
                f"> model: {clip(d['model'], EXAMPLE_CHARS)}\n> baseline: {clip(d['baseline'], EXAMPLE_CHARS)}"
            )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(parts), MAX_SECTION)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Every example with both answers and scores: the CSV in this thread. Difference: model − baseline, 95 % paired bootstrap interval."}]})
    text = f"Evaluation of {clip(model, 150)} vs {clip(baseline, 150)}: " + "; ".join(fallback_lines)
    if agreement is not None:
        text = f"Parity report of {clip(model, 150)} vs the saved answers of {clip(baseline, 150)}: {clip(agreement.get('headline') or '', 600)}. On the references: " + "; ".join(fallback_lines)
    return {"text": truncate(text, 3900), "blocks": blocks}


def headline_line(headline: str | None, scored: int, examples: int) -> str:
    if not headline:
        return f":bar_chart: Evaluation: no score to show ({scored} of {examples} examples scored). Report in the thread."
    return f":bar_chart: Evaluation vs base: *{escape(headline)}* ({scored} of {examples} examples). Report in the thread."


def with_headline(alert: dict[str, Any], line: str) -> dict[str, Any]:
    """The final alert with the evaluation's headline added (an edit of the posted alert)."""
    blocks = list(alert.get("blocks") or [])
    blocks.insert(1 if blocks else 0, {"type": "section", "text": {"type": "mrkdwn", "text": truncate(line, MAX_SECTION)}})
    return {"text": truncate(f"{alert.get('text', '')} · {line.replace('*', '')}", 3900), "blocks": blocks}


def agreement_line(a: dict[str, Any]) -> str:
    """Agreement with the old model's saved answers: exact and ROUGE-L F1 between the two answers."""
    if not a.get("n"):
        return "Agreement with the old model: no example where both answered."
    return (
        f"Agreement with the old model: the same answer on {a['exact']} of {a['n']} ({_pct(a['exact_rate'])}); "
        f"ROUGE-L F1 between the two answers {a['similarity']:.2f} on average. Scores below are against the dataset's references (model: new, baseline: old)."
    )


def parity_message(migration_id: int, headline: str, *, in_thread: bool) -> dict[str, Any]:
    """The channel-level line of a parity report whose full report is in the new job's thread."""
    where = " The parity report is in the new job's thread." if in_thread else ""
    text = f"Migration #{migration_id}: {clip(headline, 1000)}.{where}"
    block = f":scales: Migration #{migration_id}: *{clip(headline, 1000)}*.{where}"
    return {"text": truncate(text, 3900), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(block, MAX_SECTION)}}]}


def parity_nothing_to_compare(model: str, provider: str) -> dict[str, Any]:
    text = (
        f"Parity report: no saved answers to compare. No answers of {clip(model, 200)} ({clip(provider, 60)}) were kept, so the new model "
        "cannot be compared with the old one. While the old model still serves, `/ft keep MODEL` saves its answers; `/ft eval` compares the new model with its references."
    )
    return {"text": truncate(text, 3900), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(":scales: " + text, MAX_SECTION)}}]}
