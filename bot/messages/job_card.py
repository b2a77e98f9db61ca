"""The job card (one message per job per channel, edited in place) and the end-of-job alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from bot.messages.views import JobView
from bot.mrkdwn import clip, code, escape, truncate
from bot.provider.base import is_paused, provider_label

STATUS_EMOJI = {
    "validating_files": ":mag:",
    "queued": ":hourglass_flowing_sand:",
    "running": ":runner:",
    "paused": ":double_vertical_bar:",
    "pausing": ":double_vertical_bar:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "cancelled": ":no_entry_sign:",
    "cancelling": ":octagonal_sign:",
    "not_found": ":ghost:",
}
BAR_WIDTH = 20


def status_label(status: str) -> str:
    """Emoji and words for a status; an unknown one is shown as it came."""
    emoji = STATUS_EMOJI.get(status, ":grey_question:")
    return f"{emoji} {escape(status.replace('_', ' '))}"


def progress_bar(step: int | None, total: int | None) -> str:
    if step is None or not total:
        return "no training steps yet"
    frac = max(0.0, min(1.0, step / total))
    filled = round(frac * BAR_WIDTH)
    return f"`{'█' * filled}{'░' * (BAR_WIDTH - filled)}` {frac:.0%} (step {step}/{total})"


def fmt_num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def fmt_eta(eta: datetime | None, now: datetime) -> str | None:
    if eta is None:
        return None
    secs = int((eta - now).total_seconds())
    if secs <= 0:
        return "any moment now"
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"about {h} h {m} min"
    if m:
        return f"about {m} min"
    return f"about {s} s"


def provider_tag(provider: str | None) -> str:
    """" · Azure OpenAI" when the data names a provider (several enabled), else nothing."""
    return f" · {escape(provider_label(provider))}" if provider else ""


def job_fields(job: JobView, now: datetime) -> list[dict[str, Any]]:
    fields = [
        {"type": "mrkdwn", "text": f"*Status*\n{status_label(job.status)}"},
        {"type": "mrkdwn", "text": f"*Base model*\n{code(job.base_model)}{provider_tag(job.provider)}"},
    ]
    if job.metrics_note and job.train_loss is None and job.valid_loss is None:
        fields += _elsewhere_fields(job)
    else:
        fields += [
            {"type": "mrkdwn", "text": f"*Train loss*\n{fmt_num(job.train_loss)}"},
            {"type": "mrkdwn", "text": f"*Valid loss*\n{fmt_num(job.valid_loss)}"},
        ]
    if job.train_accuracy is not None or job.valid_accuracy is not None:
        fields.append(
            {"type": "mrkdwn", "text": f"*Token accuracy*\ntrain {fmt_num(job.train_accuracy, 2)} / valid {fmt_num(job.valid_accuracy, 2)}"}
        )
    eta = fmt_eta(job.estimated_finish, now) if not job.final else None
    if eta:
        fields.append({"type": "mrkdwn", "text": f"*ETA*\n{eta}"})
    return fields[:10]  # Slack allows at most 10 fields


def _elsewhere_fields(job: JobView) -> list[dict[str, Any]]:
    """What the provider reports instead of a loss: epochs, steps, tokens; and where the loss is."""
    out = []
    epochs = job.hyperparameters.get("n_epochs")
    if epochs:
        out.append({"type": "mrkdwn", "text": f"*Epochs*\n{clip(str(epochs), 20)}"})
    if job.trained_tokens:
        out.append({"type": "mrkdwn", "text": f"*Trained tokens*\n{job.trained_tokens:,}"})
    out.append({"type": "mrkdwn", "text": f"*Loss and accuracy*\nnot shown here: {escape(clip(job.metrics_note or '', 1500))}"})
    return out


def job_blocks(job: JobView, now: datetime, *, with_buttons: bool = True) -> list[dict[str, Any]]:
    title = f"{status_label(job.status)}  *Fine-tuning {code(job.id)}*"
    if job.method != "supervised":
        title += f"  ({clip(job.method, 40)})"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": progress_bar(job.step, job.total_steps)}},
        {"type": "section", "fields": job_fields(job, now)},
    ]
    if job.fine_tuned_model:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":robot_face: *Model* {code(job.fine_tuned_model)}"}})
    if job.status == "failed" or job.error_message:
        reason = clip(job.error_message or "no reason given", 2900)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":warning: *Error* {reason}"}})
    who = f"started by <@{job.started_by}>" if job.started_by else "started outside Slack"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": who}]})
    if with_buttons and not job.final:
        buttons = []
        if job.status == "running" and job.can_pause:
            buttons.append({"type": "button", "action_id": "job_pause", "text": {"type": "plain_text", "text": "Pause"}, "value": job.id})
        if is_paused(job.status):
            buttons.append({"type": "button", "action_id": "job_resume", "text": {"type": "plain_text", "text": "Resume"}, "value": job.id})
        if job.status != "cancelling":  # asked already: the provider is stopping it
            buttons.append(
                {
                    "type": "button",
                    "action_id": "job_cancel",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Cancel"},
                    "value": job.id,
                    "confirm": {
                        "title": {"type": "plain_text", "text": "Cancel this job?"},
                        "text": {"type": "mrkdwn", "text": f"Training of {code(job.id)} stops for good."},
                        "confirm": {"type": "plain_text", "text": "Cancel job"},
                        "deny": {"type": "plain_text", "text": "Keep it"},
                    },
                }
            )
        if buttons:  # Slack refuses an actions block without elements
            blocks.append({"type": "actions", "block_id": f"job_actions:{job.id}", "elements": buttons})
    return blocks


def job_text(job: JobView) -> str:
    """The plain-text fallback (notifications, screen readers)."""
    pct = f" {job.progress:.0%}" if job.progress is not None and not job.final else ""
    return f"Fine-tuning {clip(job.id, 100)}: {clip(job.status.replace('_', ' '), 60)}{pct}"


def job_card(job: JobView, now: datetime) -> dict[str, Any]:
    return {"text": job_text(job), "blocks": job_blocks(job, now)}


@dataclass(frozen=True)
class ServingNote:
    """The new model's base stops serving soon (and the model with it)."""

    base_model: str
    serving_ends: date
    days_left: int
    source: str


def _reported(job: JobView) -> str:
    """The alert's line for a provider whose loss ftbot cannot read: what it did report, and where the loss is."""
    said = []
    if job.step is not None and job.total_steps:
        said.append(f"{job.step:,}/{job.total_steps:,} steps")
    epochs = job.hyperparameters.get("n_epochs")
    if epochs:
        said.append(f"{clip(str(epochs), 20)} epochs")
    if job.trained_tokens:
        said.append(f"{job.trained_tokens:,} trained tokens")
    who = f"{escape(provider_label(job.provider))} reported" if job.provider else "Reported"
    head = f"{who}: {', '.join(said)}. " if said else ""
    return f"{head}No loss chart: {escape(clip(job.metrics_note or '', 1500))}."


def final_alert(job: JobView, *, serving: ServingNote | None = None) -> dict[str, Any]:
    """Posted in the channel (not only the thread) when a job ends."""
    if job.status == "succeeded":
        head = f":white_check_mark: Fine-tuning {code(job.id)} *succeeded*"
        detail = f"Your model: {code(job.fine_tuned_model or '?')}\nTry it: `/ft try {clip(job.fine_tuned_model or '', 300)} PROMPT`"
        if job.provider == "azure":
            detail = f"Your model: {code(job.fine_tuned_model or '?')}\nDeploy it in Azure, then try it: `/ft try DEPLOYMENT PROMPT`"
    elif job.status == "failed":
        head = f":x: Fine-tuning {code(job.id)} *failed*"
        detail = f"Error: {clip(job.error_message or 'no reason given', 2500)}"
    elif job.status == "cancelled":
        head = f":no_entry_sign: Fine-tuning {code(job.id)} was *cancelled*"
        detail = ""
    elif job.status == "not_found":
        head = f":ghost: Fine-tuning {code(job.id)} is *no longer found at the provider*"
        detail = escape(job.error_message or "")[:2800]
    else:
        head = f":grey_question: Fine-tuning {code(job.id)} ended as *{clip(job.status, 60)}*"
        detail = ""
    lines = [head]
    if detail:
        lines.append(detail)
    if serving is not None:
        left = "today" if serving.days_left <= 0 else f"in {serving.days_left} day{'s' if serving.days_left != 1 else ''}"
        lines.append(
            f":hourglass_flowing_sand: Its base model {code(serving.base_model, 120)} stops serving {left}, on {serving.serving_ends:%Y-%m-%d} "
            f"({escape(serving.source)}), and this model with it: plan its move (`/ft migrate {clip(job.fine_tuned_model or 'MODEL', 200)}`)."
        )
    if job.metrics_note and job.train_loss is None and job.valid_loss is None:
        lines.append(_reported(job))
    else:
        lines.append(f"Last train loss {fmt_num(job.train_loss)}, valid loss {fmt_num(job.valid_loss)}. Loss chart in the thread.")
    mention = f" <@{job.started_by}>" if job.started_by else ""
    model = f": {clip(job.fine_tuned_model, 300)}" if job.fine_tuned_model else ""
    text = f"Fine-tuning {clip(job.id, 100)} {clip(job.status, 60)}{model}"
    if serving is not None:
        text += f" (its base stops serving on {serving.serving_ends:%Y-%m-%d})"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{clip(job.base_model, 200)}{provider_tag(job.provider)}{mention}"}]},
        ],
    }
