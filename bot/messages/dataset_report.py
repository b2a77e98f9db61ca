"""Block Kit for datasets: the validation report, a problem taking a file in, the `/ft files` list.

Pure functions, within Slack's limits however many errors a file has: a few kinds of problem are
listed with their first lines, the rest counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.messages.table import code_cell, emoji_cell, table_blocks, user_cell
from bot.mrkdwn import code, escape

MAX_KINDS = 8  # kinds of error / warning listed; the others are counted
SECTION = 2900  # under the 3,000-character section limit
FORCE_ACTION = "dataset_upload_anyway"
ICON = {"clean": ":white_check_mark:", "warnings": ":warning:", "errors": ":x:"}


@dataclass
class ReportContext:
    name: str
    user_id: str
    slack_file_id: str
    model: str
    channel_id: str | None = None
    thread_ts: str | None = None
    provider_file_id: str | None = None
    provider: str | None = None  # the provider asked for (None: the default)
    reused: bool = False
    # Training on `model` has ended at this provider: (when, where the date comes from) and where it
    # still trains ((provider, label, base) of another enabled provider, or None).
    training_ended: tuple[date, str] | None = None
    train_instead: tuple[str, str, str] | None = None


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _issue_line(issue: Any) -> str:
    where = f" — {_clip(issue.where(), 600)}" if issue.where() else ""
    detail = f" ({_clip(issue.file_detail(), 120)})" if issue.file_detail() else ""
    return f"• {escape(_clip(issue.message, 200))}{escape(where)}{escape(detail)}"


def _issues_text(title: str, issues: list[Any]) -> str:
    total = sum(i.count for i in issues)
    lines = [f"*{title}* ({total:,})"]
    for issue in issues[:MAX_KINDS]:
        candidate = _issue_line(issue)
        if sum(len(x) + 1 for x in lines) + len(candidate) > SECTION - 80:
            break
        lines.append(candidate)
    shown = len(lines) - 1
    if shown < len(issues):
        lines.append(f"…and {len(issues) - shown} more kind{'s' if len(issues) - shown > 1 else ''}: run `ftbot validate` on the file for all of them")
    return "\n".join(lines)


def _all(report: Any) -> tuple[list[Any], list[Any]]:
    errors, warnings = list(report.errors), list(report.warnings)
    v = getattr(report, "validation", None)
    if v is not None:
        for i in v.errors:
            errors.append(_relabel(i))
        for i in v.warnings:
            warnings.append(_relabel(i))
    return errors, warnings


def _relabel(issue: Any) -> Any:
    from dataclasses import replace

    return replace(issue, message=f"validation file: {issue.message}")


def _train_instead(ctx: ReportContext, start: str) -> str:
    """Training on the checked base has ended: where the team can train instead, not a start that
    would be refused."""
    assert ctx.training_ended is not None
    when, source = ctx.training_ended
    name = escape(start.split(" provider=")[0]).replace("`", "")
    here = f"No new jobs train on {code(_clip(ctx.model, 80))} here since {when:%Y-%m-%d} ({escape(source)}), so a start on it would be refused."
    if ctx.train_instead is None:
        return f"{here} Enable a provider where training is open (Together AI, a Ray cluster) to train on this data; `/ft migrate` moves a trained model's data and recipe."
    provider, label, base = ctx.train_instead
    return (
        f"{here} Train at {escape(label)} instead: `/ft upload provider={provider}` with this file, then "
        f"`/ft start {name} provider={provider}` (base {code(_clip(base, 80))}); "
        f"a model trained here moves with `/ft migrate MODEL to={provider}`."
    )


def dataset_report(report: Any, ctx: ReportContext) -> dict[str, Any]:
    """`report` is a bot.datasets.validate.Report (plain data)."""
    verdict = report.verdict
    name = _clip(ctx.name, 120)
    errors, warnings = _all(report)
    head = f"{ICON[verdict]} <@{ctx.user_id}> {code(name)}: " + {
        "clean": "clean",
        "warnings": "no errors, some warnings",
        "errors": f"{sum(i.count for i in errors):,} error{'s' if sum(i.count for i in errors) != 1 else ''}",
    }[verdict]
    facts = f"{escape(report.format or 'unknown format')} · {report.examples:,} examples · {report.bytes:,} bytes · checked for {code(_clip(ctx.model, 60))}"
    if report.stopped_early:
        facts += f" · {escape(_clip(report.stopped_early, 120))}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(facts, 2900)}]},
    ]
    if report.model_notice:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f":hourglass_flowing_sand: {escape(_clip(report.model_notice, 500))}"}]})
    if errors:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _issues_text("Errors", errors)}})
    if warnings:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _issues_text("Warnings", warnings)}})
    t = report.tokens
    cost = "unknown (no price for this model: set FTBOT_PRICE_TABLE)"
    if t is not None:
        if t.estimated_usd is not None:
            cost = f"${t.estimated_usd:,.2f} at ${t.usd_per_million:g}/1M"
        elif t.price_note:
            cost = t.price_note
        sample = "" if t.exact_percentiles else " (sampled)"
        fields = [
            f"*Tokens per example* ({t.encoding}{', approximate' if t.approximate else ''})\nmin {t.min:,} · mean {t.mean:,} · max {t.max:,}",
            f"*Median / p90*{sample}\n{t.median:,} / {t.p90:,}",
            f"*Over the {t.limit:,} limit*\n" + (f"{t.over_limit:,} (truncated)" if t.over_limit else "none"),
            f"*Billed tokens*\n{t.epochs} epoch{'' if t.epochs == 1 else 's'} × {t.billed_per_epoch:,} = {t.billed_total:,}",
            f"*Estimated cost*\n{escape(cost)}",
        ]
        blocks.append({"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(f, 1900)} for f in fields]})
    if ctx.provider_file_id:
        again = "identical bytes were already uploaded, reusing " if ctx.reused else "uploaded as "
        start = _clip(ctx.name[:-6] if ctx.name.lower().endswith(".jsonl") else ctx.name, 100)
        if ctx.provider:
            start += f" provider={ctx.provider}"
        nxt = f"Start a job on it: `/ft start {escape(start).replace('`', '')}`"
        if ctx.training_ended is not None:
            nxt = _train_instead(ctx, start)
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _clip(f"{again.capitalize()}{code(ctx.provider_file_id)}. {nxt}", 2990)},
            }
        )
    elif verdict == "errors":
        value = json.dumps({"f": ctx.slack_file_id, "c": ctx.channel_id, "t": ctx.thread_ts, "m": ctx.model, "p": ctx.provider})[:2000]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "Not uploaded: a job on it would fail or train on bad data."}})
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": FORCE_ACTION,
                        "text": {"type": "plain_text", "text": "Upload anyway"},
                        "style": "danger",
                        "value": value,
                        "confirm": {
                            "title": {"type": "plain_text", "text": "Upload with errors?"},
                            "text": {"type": "mrkdwn", "text": "The provider may reject the file or train on broken examples."},
                            "confirm": {"type": "plain_text", "text": "Upload anyway"},
                            "deny": {"type": "plain_text", "text": "Cancel"},
                        },
                    }
                ],
            }
        )
    text = f"{name}: {verdict}, {report.examples:,} examples"
    if t is not None:
        text += f", {t.billed_total:,} billed tokens, estimated cost {cost}"
    if ctx.provider_file_id:
        text += f", file {ctx.provider_file_id}"
    return {"text": escape(_clip(text, 2900)), "blocks": blocks}


def intake_problem(user_id: str, name: str, reason: str) -> dict[str, Any]:
    text = f":x: <@{user_id}> {code(_clip(name, 120))}: {escape(_clip(reason, 600))}"
    return {"text": f"{escape(_clip(name, 120))}: {escape(_clip(reason, 600))}", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


@dataclass(frozen=True)
class DatasetRow:
    name: str
    provider_file_id: str
    bytes: int
    examples: int | None
    verdict: str | None
    tokens: int | None
    uploaded_by: str | None
    created_at: datetime | None
    provider: str | None = None  # shown when several providers are enabled


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)


def datasets_list(rows: list[DatasetRow]) -> dict[str, Any]:
    if not rows:
        return {"text": "No datasets yet: `/ft upload`, or share a .jsonl file with the bot.", "blocks": []}
    several = any(r.provider for r in rows)
    header = ["Name", "File"] + (["Provider"] if several else []) + ["Size", "Examples", "Check", "Tokens", "Uploaded by", "When (UTC)"]
    table = []
    for r in rows:
        row: list[Any] = [_clip(r.name, 80), code_cell(r.provider_file_id)]
        if several:
            row.append(r.provider or "")
        row += [
            _size(r.bytes),
            f"{r.examples:,}" if r.examples is not None else "?",
            emoji_cell(ICON[r.verdict], r.verdict) if r.verdict in ICON else (r.verdict or "not checked"),
            f"{r.tokens:,}" if r.tokens is not None else "?",
            user_cell(r.uploaded_by, otherwise="outside Slack"),
            r.created_at.strftime("%Y-%m-%d %H:%M") if r.created_at else "?",
        ]
        table.append(row)
    right = ["left", "left"] + ([None] if several else []) + ["right", "right", None, "right"]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*Datasets* ({len(rows):,})"}}]
    blocks += table_blocks(header, table, more="…and {n} older ones not shown", align=right)
    text = f"{len(rows)} datasets: " + ", ".join(escape(_clip(r.name, 40)) for r in rows[:20])
    return {"text": _clip(text, 2900), "blocks": blocks}
