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


def report_message(*, model: str, baseline: str, summary: dict[str, Any], scores: list[str], source_note: str, judge: str | None = None) -> dict[str, Any]:
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
    head = f":bar_chart: *Evaluation of {code(model, 150)}* against {code(baseline, 150)}"
    if summary.get("headline"):
        head += f"\n*{escape(summary['headline'])}*"
    counts = f"{summary.get('scored', 0)} of {summary.get('examples', 0)} examples scored"
    failed = {s: v.get("failed", 0) for s, v in slots.items() if v.get("failed")}
    if failed:
        reasons = "; ".join(clip(e, 160) for v in slots.values() for e in v.get("errors", []))
        counts += ", failed: " + ", ".join(f"{k} {v}" for k, v in failed.items()) + (f" ({reasons})" if reasons else "")
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
