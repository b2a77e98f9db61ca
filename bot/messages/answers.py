"""Answers to `/ft` verbs: lists, one job, events, checkpoints, models, files, the home tab.

Pure: plain data in, a Slack message (or view) dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.messages.events import EventView, chunk_lines, event_line
from bot.messages.job_card import STATUS_EMOJI, fmt_num, job_blocks, job_text, provider_tag, status_label
from bot.messages.table import code_cell, emoji_cell, table_blocks, user_cell
from bot.messages.views import JobView
from bot.mrkdwn import clip, code, escape, truncate
from bot.provider.base import provider_label

PAGE = 10


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, 2000)}]}


def _same(text: str) -> dict[str, Any]:
    """One mrkdwn text as both the fallback and the only block: escaped once, shown twice."""
    return {"text": truncate(text, 3000), "blocks": [_section(text)]}


def job_line(j: JobView) -> str:
    progress = f" {j.progress:.0%}" if j.progress is not None and not j.final else ""
    model = f" → {code(j.fine_tuned_model)}" if j.fine_tuned_model else ""
    who = f" by <@{j.started_by}>" if j.started_by else ""
    when = f" {j.created_at:%Y-%m-%d %H:%M}" if j.created_at else ""
    return f"{status_label(j.status)}{progress}  {code(j.id)} {clip(j.base_model, 100)}{provider_tag(j.provider)}{model}{who}{when}"


def _status_cell(status: str) -> dict[str, Any]:
    return emoji_cell(STATUS_EMOJI.get(status, ":grey_question:"), status.replace("_", " "))


def job_row(j: JobView, *, with_provider: bool) -> list[Any]:
    progress = f"{j.progress:.0%}" if j.progress is not None and not j.final else ""
    row: list[Any] = [_status_cell(j.status), progress, code_cell(j.id), j.base_model]
    if with_provider:
        row.append(provider_label(j.provider) if j.provider else "")
    row += [code_cell(j.fine_tuned_model), user_cell(j.started_by), f"{j.created_at:%Y-%m-%d %H:%M}" if j.created_at else ""]
    return row


def job_list(jobs: Sequence[JobView], *, offset: int, total: int, page: int = PAGE) -> dict[str, Any]:
    if not jobs:
        return {"text": "No fine-tuning jobs yet.", "blocks": [_section("No fine-tuning jobs yet. Start one with `/ft start FILE`.")]}
    several = any(j.provider for j in jobs)
    header = ["Status", "Progress", "Job", "Base model"] + (["Provider"] if several else []) + ["Fine-tuned model", "Started by", "Created (UTC)"]
    blocks: list[dict[str, Any]] = [_section(f"*Fine-tuning jobs* ({offset + 1}–{offset + len(jobs)} of {total})")]
    blocks += table_blocks(header, [job_row(j, with_provider=several) for j in jobs], more="{n} more jobs on this page not shown", align=["left", "right"])
    buttons = []
    if offset > 0:
        buttons.append({"type": "button", "action_id": "list_page", "text": {"type": "plain_text", "text": "Newer"}, "value": str(max(0, offset - page))})
    if offset + len(jobs) < total:
        buttons.append({"type": "button", "action_id": "list_page", "text": {"type": "plain_text", "text": "Older"}, "value": str(offset + page)})
    if buttons:
        blocks.append({"type": "actions", "block_id": "list_paging", "elements": buttons})
    # The fallback (notifications, clients without tables) keeps the one-line-per-job list.
    text = f"{total} fine-tuning jobs ({offset + 1}–{offset + len(jobs)}):\n" + "\n".join(job_line(j) for j in jobs)
    return {"text": truncate(text, 3000), "blocks": blocks}


def job_status(job: JobView, now: datetime) -> dict[str, Any]:
    return {"text": job_text(job), "blocks": job_blocks(job, now)}


def events_answer(job_id: str, events: Sequence[EventView]) -> dict[str, Any]:
    if not events:
        return _same(f"No events for {code(job_id)} yet.")
    blocks = [_section(f"*Events of {code(job_id)}*, oldest first ({len(events)})")]
    for chunk in chunk_lines([event_line(e) for e in events])[:45]:
        blocks.append(_section("\n".join(chunk)))
    return {"text": f"{len(events)} events of {code(job_id)}", "blocks": blocks}


@dataclass(frozen=True)
class CheckpointView:
    step: int
    model: str
    train_loss: float | None
    valid_loss: float | None
    train_accuracy: float | None
    created_at: datetime | None
    label: str | None = None  # the provider's label ("Final Merged", "Final Adapter"), when it gives one
    adapter: bool = False


def _checkpoint_kind(c: CheckpointView) -> str:
    """What the checkpoint is, beside its step: two at one step (a merged model and its LoRA adapter)
    must read apart."""
    label = str(c.label or "")[:40]
    if c.adapter and "adapter" not in label.lower():
        label = f"{label}, adapter" if label else "adapter"
    return f" · {clip(label, 60)}" if label else ""


def checkpoints_answer(job_id: str, checkpoints: Sequence[CheckpointView]) -> dict[str, Any]:
    if not checkpoints:
        return _same(f"No checkpoints for {code(job_id)} yet (one is made at each epoch's end).")
    lines = [
        f"*step {c.step}*{_checkpoint_kind(c)}  {code(c.model)}\n      train loss {fmt_num(c.train_loss)}, valid loss {fmt_num(c.valid_loss)}, token accuracy {fmt_num(c.train_accuracy, 2)}"
        for c in sorted(checkpoints, key=lambda c: (c.step, c.adapter))
    ]
    blocks = [_section(f"*Checkpoints of {code(job_id)}*")] + [_section("\n".join(chunk)) for chunk in chunk_lines(lines)]
    blocks = blocks[:49]
    blocks.append(_context("Each checkpoint is a model you can use with `/ft try MODEL PROMPT`."))
    return {"text": f"{len(checkpoints)} checkpoints of {code(job_id)}", "blocks": blocks}


@dataclass(frozen=True)
class ModelView:
    id: str
    created: datetime | None
    job_id: str | None
    started_by: str | None
    serving_ends: date | None = None  # None: no end announced (or unknown base model)
    provider: str | None = None  # set when several providers are enabled
    days_left: int | None = None
    source: str | None = None  # where serving_ends comes from ("OpenAI API, read 2026-12-01")


def serving_text(m: ModelView, *, mrkdwn: bool = True) -> str:
    """`mrkdwn=False` for a table's raw_text cell, which Slack shows as is (nothing to escape); there
    the column's header says "Serves until", so the cell starts with the date."""
    if m.serving_ends is None:
        return "no end of serving announced" if mrkdwn else "no end announced"
    if m.days_left is not None and m.days_left < 0:
        left = "stopped serving"
    elif m.days_left is not None:
        left = "last day" if m.days_left == 0 else f"{m.days_left} day{'s' if m.days_left != 1 else ''} left"
    else:
        left = ""
    src = f", {escape(m.source) if mrkdwn else m.source}" if m.source else ""
    if not mrkdwn:
        return f"{m.serving_ends:%Y-%m-%d}" + (f" ({left}{src})" if left or src else "")
    return f"serves until {m.serving_ends:%Y-%m-%d}" + (f" ({left}{src})" if left or src else "")


def models_answer(models: Sequence[ModelView], *, unavailable: Sequence[str] = ()) -> dict[str, Any]:
    """`unavailable`: providers that could not be asked (name: reason), said rather than hidden."""
    down = [_context(":warning: Not listed: " + "; ".join(escape(u) for u in unavailable))] if unavailable else []
    if not models:
        return {"text": "No fine-tuned models yet.", "blocks": [_section("No fine-tuned models yet."), *down]}
    several = any(m.provider for m in models)
    header = ["Model"] + (["Provider"] if several else []) + ["Made by job", "Started by", "Serves until"]
    rows = []
    for m in models:
        row: list[Any] = [code_cell(m.id)]
        if several:
            row.append(provider_label(m.provider) if m.provider else "")
        row += [code_cell(m.job_id) if m.job_id else "made outside ftbot", user_cell(m.started_by), serving_text(m, mrkdwn=False)]
        rows.append(row)
    blocks = [_section(f"*Fine-tuned models* ({len(models)})"), *table_blocks(header, rows, more="…and {n} more models not shown"), *down]
    lines = [f"{code(m.id)}{provider_tag(m.provider)}: {serving_text(m)}" for m in models]
    return {"text": truncate(f"{len(models)} fine-tuned models:\n" + "\n".join(lines), 3000), "blocks": blocks}


def started_answer(job: JobView, channel: str, *, duplicate: bool) -> dict[str, Any]:
    if duplicate:
        text = f"Already started: {code(job.id)} ({escape(job.status)}). Nothing new was created."
    else:
        hp = ", ".join(f"{k}={v}" for k, v in sorted(job.hyperparameters.items())) or "auto hyperparameters"
        text = f":rocket: Started {code(job.id)} on {code(job.base_model)} ({escape(hp)}). Updates follow in <#{channel}>."
    return _same(text)


def held_answer(*, estimate_usd: float | None, note: str, budget_usd: float, approval_channel: str, request_id: int, duplicate: bool) -> dict[str, Any]:
    """A start over FTBOT_JOB_BUDGET_USD: nothing was created, teammates are asked first."""
    cost = f"estimated at *${estimate_usd:,.2f}*, over the ${budget_usd:,.2f} budget" if estimate_usd is not None else f"not estimable ({clip(note, 300)}) while a ${budget_usd:,.2f} budget is set"
    if duplicate:
        return _same(f":moneybag: Already waiting for approval (request #{request_id}). Nothing new was created.")
    return _same(f":moneybag: This job is {cost}. Nothing was started: I asked <#{approval_channel}> for approval (request #{request_id}); it starts once approved, with its card here.")


def with_note(answer: dict[str, Any], note: str | None) -> dict[str, Any]:
    """An answer with a note above it (`note` is mrkdwn ftbot wrote: names already in code spans)."""
    if not note:
        return answer
    blocks = [{"type": "context", "elements": [{"type": "mrkdwn", "text": clip(f":information_source: {note}", 2900)}]}, *(answer.get("blocks") or [])]
    return {**answer, "text": clip(f"{note} {answer.get('text', '')}", 3000), "blocks": blocks}


def launch_answer(result: Any, channel: str) -> dict[str, Any]:
    """The answer to a start: bot.jobs.launch's Started (a job, maybe a duplicate) or Held (approvals asked)."""
    if hasattr(result, "request"):
        r = result.request
        return held_answer(
            estimate_usd=result.estimate.usd, note=result.estimate.note, budget_usd=result.budget_usd, approval_channel=r.channel, request_id=r.view.id, duplicate=not r.created
        )
    return started_answer(result.job, channel, duplicate=not result.created)


def steered_answer(job: JobView, action: str, by: str | None = None) -> dict[str, Any]:
    """After cancel / pause / resume; `by` names who clicked, for answers under a shared card."""
    done = {"cancel": "Cancelling", "pause": "Paused", "resume": "Resuming"}[action]
    who = f"<@{by}>: " if by else ""
    return _same(f"{who}{done} {code(job.id)}: it is now {escape(job.status.replace('_', ' '))}. The card will follow.")


def try_answer(model: str, prompt: str, answer: str, *, endpoint: str | None = None) -> dict[str, Any]:
    """Posted in the channel: the prompt and the model's answer are someone else's text, never markup."""
    via = f" (through dedicated endpoint {clip(endpoint, 150)})" if endpoint else ""
    text = f"*{clip(model, 150)}*{via} was asked:\n>{clip(' '.join(prompt.split()), 1000)}\n*Answer:*\n{clip(answer, 1800)}"
    return {"text": f"{clip(model, 150)}: {clip(answer, 200)}", "blocks": [_section(text)]}


NOTICE_BLOCK = "ftbot_notice"


def _notice(text: str) -> dict[str, Any]:
    return {"type": "section", "block_id": NOTICE_BLOCK, "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}


def home_view(jobs: Sequence[JobView], now: datetime, *, notice: str | None = None, at_risk: Sequence[ModelView] = ()) -> dict[str, Any]:
    """The App Home tab; `notice` (mrkdwn) is shown on top, e.g. the answer to a button clicked there;
    `at_risk`: the team's models that stop serving soon, as a countdown."""
    active = [j for j in jobs if not j.final]
    done = [j for j in jobs if j.final]
    blocks: list[dict[str, Any]] = [_notice(notice)] if notice else []
    if at_risk:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Models that stop serving soon"}})
        lines = [f":hourglass_flowing_sand: {code(m.id)}{provider_tag(m.provider)}: {serving_text(m)}" for m in at_risk[:30]]
        for chunk in chunk_lines(lines)[:3]:
            blocks.append(_section("\n".join(chunk)))
        blocks.append(_context("Move one with `/ft migrate MODEL to=together`; keep its answers for comparison with `/ft keep MODEL`."))
    blocks.append({"type": "header", "text": {"type": "plain_text", "text": "Fine-tuning jobs"}})
    if not jobs:
        blocks.append(_section("No jobs yet. Start one with `/ft start FILE`, or `/ft help`."))
    if active:
        blocks.append(_section(f"*Running now* ({len(active)})"))
        for j in active[:10]:
            blocks += job_blocks(j, now, with_buttons=True)
            blocks.append({"type": "divider"})
    if done:
        blocks.append(_section("*Recent*"))
        for chunk in chunk_lines([job_line(j) for j in done[:30]]):
            blocks.append(_section("\n".join(chunk)))
    footer = _context(f"Updated {now:%Y-%m-%d %H:%M} UTC · `/ft help` for commands")
    return {"type": "home", "blocks": blocks[:99] + [footer]}


VIEW_KEYS = ("type", "callback_id", "private_metadata", "title", "submit", "close", "clear_on_close", "notify_on_close", "external_id")


def view_with_notice(view: dict[str, Any], notice: str) -> dict[str, Any]:
    """The view a button was clicked in (as Slack sent it), with `notice` on top instead of an older one."""
    out = {k: view[k] for k in VIEW_KEYS if view.get(k) is not None}
    kept = [b for b in view.get("blocks") or [] if b.get("block_id") != NOTICE_BLOCK]
    out["blocks"] = [_notice(notice)] + kept[: 99 if view.get("type") == "home" else 99]
    return out
