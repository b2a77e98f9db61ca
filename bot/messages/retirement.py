"""The warning that a fine-tuned model is about to stop serving. Pure: plain data in, a message out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.messages.health import alert_block
from bot.mrkdwn import clip, code, escape

URGENT_DAYS = 7  # from a week before, the warning is an error-level alert


@dataclass(frozen=True)
class RetiringModel:
    model: str
    provider: str
    base_model: str
    serving_ends: date
    days_left: int
    job_id: str | None
    started_by: str | None
    training_ends: date | None
    source: str | None = None  # where the date comes from: "OpenAI API, read 2026-12-01", "ftbot's table"
    kept: int | None = None  # answers saved with /ft keep (None: not counted)
    moved_from: date | None = None  # the date the team was told before, when the date has moved


KEEP_SUGGESTION_DAYS = 7  # from the 7-day warning on, a model with no saved answers is told to keep some


def _when(days_left: int) -> str:
    if days_left <= 0:
        return "today"
    return "tomorrow" if days_left == 1 else f"in {days_left} days"


def retirement_warning(m: RetiringModel, today: date) -> dict[str, Any]:
    when = _when(m.days_left)
    head = f":hourglass_flowing_sand: {code(m.model[:200])} stops serving {when}, on {m.serving_ends:%Y-%m-%d}"
    moved = ""
    if m.moved_from is not None:
        sooner = m.serving_ends < m.moved_from
        head = f":calendar: The date moved {'earlier' if sooner else 'later'}: {code(m.model[:200])} now stops serving on {m.serving_ends:%Y-%m-%d} ({when}), not {m.moved_from:%Y-%m-%d}"
        moved = f" (was {m.moved_from:%Y-%m-%d})"
    why = f"Its base model {code(m.base_model[:120])} retires at {escape(m.provider)}, and its fine-tunes stop answering with it."
    if m.training_ends is not None and m.training_ends > today:
        retrain = f"You can still train on {code(m.base_model[:120])} until {m.training_ends:%Y-%m-%d}, but a new fine-tune ends with it too."
    else:
        retrain = "It can no longer be trained on."
    todo = (
        "*What to do:* retrain on a base model that keeps serving, on another provider if needed: "
        f"`/ft migrate {clip(m.model, 200)} to=together` moves its data and recipe, "
        "or start from the datasets in `/ft files` with `/ft start FILE model=MODEL`; then move your callers to the new model."
    )
    origin = f"Made by {code(m.job_id)}" + (f", started by <@{m.started_by}>" if m.started_by else "") + "." if m.job_id else ""
    level = "error" if m.days_left <= URGENT_DAYS else "warning" if m.days_left <= 30 or m.moved_from is None else "info"
    if m.source:
        origin = f"{origin} Date: {escape(m.source)}.".strip()
    blocks = [
        alert_block(f"*{head}*", level),
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{why} {retrain}"[:2990]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": todo}},
    ]
    if m.kept == 0 and m.days_left <= KEEP_SUGGESTION_DAYS:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        f":floppy_disk: *No answers of it are saved.* `/ft keep {clip(m.model, 200)}` asks it held-out prompts now, while it still "
                        "answers, so its replacement can be compared with it after it stops."
                    ),
                },
            }
        )
    if origin:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": origin[:2990]}]})
    text = f"{escape(m.model[:200])} stops serving {when} ({m.serving_ends:%Y-%m-%d}{moved}): retrain it elsewhere."
    return {"text": text, "blocks": blocks}
