"""Answers to `/ft` verbs: lists, one job, events, checkpoints, models, files, the home tab.

Pure: plain data in, a Slack message (or view) dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.jobs.view import JobView
from bot.messages.events import EventView, chunk_lines, event_line
from bot.messages.job_card import fmt_num, job_blocks, job_text, status_label
from bot.mrkdwn import code, escape

PAGE = 10


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:2990]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:2990]}]}


def job_line(j: JobView) -> str:
    progress = f" {j.progress:.0%}" if j.progress is not None and not j.final else ""
    model = f" → {code(j.fine_tuned_model)}" if j.fine_tuned_model else ""
    who = f" by <@{j.started_by}>" if j.started_by else ""
    when = f" {j.created_at:%Y-%m-%d %H:%M}" if j.created_at else ""
    return f"{status_label(j.status)}{progress}  {code(j.id)} {escape(j.base_model)}{model}{who}{when}"


def job_list(jobs: Sequence[JobView], *, offset: int, total: int, page: int = PAGE) -> dict[str, Any]:
    if not jobs:
        return {"text": "No fine-tuning jobs yet.", "blocks": [_section("No fine-tuning jobs yet. Start one with `/ft start <file>`.")]}
    blocks: list[dict[str, Any]] = [_section(f"*Fine-tuning jobs* ({offset + 1}–{offset + len(jobs)} of {total})")]
    for chunk in chunk_lines([job_line(j) for j in jobs]):
        blocks.append(_section("\n".join(chunk)))
    buttons = []
    if offset > 0:
        buttons.append({"type": "button", "action_id": "list_page", "text": {"type": "plain_text", "text": "Newer"}, "value": str(max(0, offset - page))})
    if offset + len(jobs) < total:
        buttons.append({"type": "button", "action_id": "list_page", "text": {"type": "plain_text", "text": "Older"}, "value": str(offset + page)})
    if buttons:
        blocks.append({"type": "actions", "block_id": "list_paging", "elements": buttons})
    return {"text": f"{total} fine-tuning jobs", "blocks": blocks}


def job_status(job: JobView, now: datetime) -> dict[str, Any]:
    return {"text": job_text(job), "blocks": job_blocks(job, now)}


def events_answer(job_id: str, events: Sequence[EventView]) -> dict[str, Any]:
    if not events:
        return {"text": f"No events for {job_id} yet.", "blocks": [_section(f"No events for {code(job_id)} yet.")]}
    blocks = [_section(f"*Events of {code(job_id)}*, oldest first ({len(events)})")]
    for chunk in chunk_lines([event_line(e) for e in events])[:45]:
        blocks.append(_section("\n".join(chunk)))
    return {"text": f"{len(events)} events of {job_id}", "blocks": blocks}


@dataclass(frozen=True)
class CheckpointView:
    step: int
    model: str
    train_loss: float | None
    valid_loss: float | None
    train_accuracy: float | None
    created_at: datetime | None


def checkpoints_answer(job_id: str, checkpoints: Sequence[CheckpointView]) -> dict[str, Any]:
    if not checkpoints:
        return {"text": f"No checkpoints for {job_id} yet.", "blocks": [_section(f"No checkpoints for {code(job_id)} yet (one is made at each epoch's end).")]}
    lines = [
        f"*step {c.step}*  {code(c.model)}\n      train loss {fmt_num(c.train_loss)}, valid loss {fmt_num(c.valid_loss)}, token accuracy {fmt_num(c.train_accuracy, 2)}"
        for c in sorted(checkpoints, key=lambda c: c.step)
    ]
    blocks = [_section(f"*Checkpoints of {code(job_id)}*")] + [_section("\n".join(chunk)) for chunk in chunk_lines(lines)]
    blocks.append(_context("Each checkpoint is a model you can use with `/ft try <model> <prompt>`."))
    return {"text": f"{len(checkpoints)} checkpoints of {job_id}", "blocks": blocks}


@dataclass(frozen=True)
class ModelView:
    id: str
    created: datetime | None
    job_id: str | None
    started_by: str | None
    serving_ends: date | None = None  # None: no end announced (or unknown base model)


def models_answer(models: Sequence[ModelView]) -> dict[str, Any]:
    if not models:
        return {"text": "No fine-tuned models yet.", "blocks": [_section("No fine-tuned models yet.")]}
    lines = []
    for m in models:
        origin = f"from {code(m.job_id)}" if m.job_id else "made outside ftbot"
        who = f" by <@{m.started_by}>" if m.started_by else ""
        ends = f"; serves until {m.serving_ends:%Y-%m-%d}" if m.serving_ends else "; no end of serving announced"
        lines.append(f":robot_face: {code(m.id)}\n      {origin}{who}{ends}")
    blocks = [_section(f"*Fine-tuned models* ({len(models)})")] + [_section("\n".join(c)) for c in chunk_lines(lines)[:40]]
    return {"text": f"{len(models)} fine-tuned models", "blocks": blocks}


@dataclass(frozen=True)
class FileView:
    id: str
    name: str
    bytes: int
    examples: int | None
    verdict: str | None  # "ok", "warnings", "errors" or None when not checked by ftbot


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def files_answer(files: Sequence[FileView]) -> dict[str, Any]:
    if not files:
        return {"text": "No datasets yet.", "blocks": [_section("No datasets yet. `/ft upload` or send a `.jsonl` to the bot.")]}
    verdicts = {"ok": ":white_check_mark: valid", "warnings": ":warning: warnings", "errors": ":x: errors", None: "not checked"}
    lines = [
        f"{code(f.id)} *{escape(f.name)}*  {human_bytes(f.bytes)}"
        + (f", {f.examples} examples" if f.examples is not None else "")
        + f", {verdicts.get(f.verdict, escape(f.verdict or ''))}"
        for f in files
    ]
    return {"text": f"{len(files)} datasets", "blocks": [_section(f"*Datasets* ({len(files)})")] + [_section("\n".join(c)) for c in chunk_lines(lines)[:40]]}


def started_answer(job: JobView, channel: str, *, duplicate: bool) -> dict[str, Any]:
    if duplicate:
        text = f"Already started: {code(job.id)} ({escape(job.status)}). Nothing new was created."
    else:
        hp = ", ".join(f"{k}={v}" for k, v in sorted(job.hyperparameters.items())) or "auto hyperparameters"
        text = f":rocket: Started {code(job.id)} on {code(job.base_model)} ({escape(hp)}). Updates follow in <#{channel}>."
    return {"text": text, "blocks": [_section(text)]}


def try_answer(model: str, prompt: str, answer: str) -> dict[str, Any]:
    text = f"*{escape(model)}* was asked:\n>{escape(prompt)[:1200]}\n*Answer:*\n{escape(answer)[:1700]}"
    return {"text": f"{model}: {answer[:200]}", "blocks": [_section(text)]}


def home_view(jobs: Sequence[JobView], now: datetime) -> dict[str, Any]:
    active = [j for j in jobs if not j.final]
    done = [j for j in jobs if j.final]
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "Fine-tuning jobs"}}]
    if not jobs:
        blocks.append(_section("No jobs yet. Start one with `/ft start <file>`, or `/ft help`."))
    if active:
        blocks.append(_section(f"*Running now* ({len(active)})"))
        for j in active[:10]:
            blocks += job_blocks(j, now, with_buttons=True)
            blocks.append({"type": "divider"})
    if done:
        blocks.append(_section("*Recent*"))
        for chunk in chunk_lines([job_line(j) for j in done[:30]]):
            blocks.append(_section("\n".join(chunk)))
    blocks.append(_context(f"Updated {now:%Y-%m-%d %H:%M} UTC · `/ft help` for commands"))
    return {"type": "home", "blocks": blocks[:100]}
