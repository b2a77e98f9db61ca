"""One channel message for many jobs that ended together (each job's own alert goes to its card's
thread instead), so a burst of endings reaches the channel in one post rather than one a second."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from bot.messages.job_card import STATUS_EMOJI
from bot.messages.views import JobView
from bot.mrkdwn import clip, code, truncate
from bot.provider.base import provider_label

MAX_SECTION = 3_000
MAX_BLOCKS = 50
MAX_LINE = 400
MAX_MENTIONS = 40


def _line(job: JobView, headline: str | None = None) -> str:
    """`headline`: the job's evaluation headline, mrkdwn already escaped, on a line of its own."""
    line = _status_line(job)
    return f"{line}\n{truncate(headline, MAX_LINE)}" if headline else line


def _status_line(job: JobView) -> str:
    emoji = STATUS_EMOJI.get(job.status, ":grey_question:")
    tag = f" ({provider_label(job.provider)})" if job.provider else ""
    if job.status == "succeeded":
        what = f"*succeeded*: {code(job.fine_tuned_model or '?', 150)}"
    elif job.status == "failed":
        what = f"*failed*: {clip(job.error_message or 'no reason given', 150)}"
    elif job.status == "cancelled":
        what = "was *cancelled*"
    elif job.status == "not_found":
        what = "is *no longer found at the provider*"
    else:
        what = f"ended as *{clip(job.status, 60)}*"
    return truncate(f"{emoji} {code(job.id, 100)} {what}{tag}", MAX_LINE)


def _counts(jobs: Sequence[JobView]) -> str:
    counts = Counter(j.status for j in jobs)
    return ", ".join(f"{n} {clip(status.replace('_', ' '), 40)}" for status, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def endings_digest(jobs: Sequence[JobView], headlines: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The channel's one message for `jobs` (ended together): a count per outcome, a line per job,
    who started them. Within Slack's limits however many jobs: lines that do not fit are counted.
    `headlines`: by job id, the evaluation headline (mrkdwn, escaped) shown under the job's line."""
    head = f":checkered_flag: *{len(jobs)} fine-tuning jobs ended* ({_counts(jobs)}). Each job's details and loss chart are in its card's thread."
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": truncate(head, MAX_SECTION)}}]
    chunk: list[str] = []
    shown = 0
    room = MAX_BLOCKS - 3  # the head, an overflow note, the mentions

    def flush() -> None:
        if chunk:
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(chunk)}})
            chunk.clear()

    for job in jobs:
        line = _line(job, (headlines or {}).get(job.id))
        if sum(len(x) + 1 for x in chunk) + len(line) > MAX_SECTION:
            if len(blocks) - 1 >= room:
                break
            flush()
        if len(blocks) - 1 >= room:
            break
        chunk.append(line)
        shown += 1
    flush()
    if shown < len(jobs):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {len(jobs) - shown} more: see each job's card."}]})
    people = list(dict.fromkeys(j.started_by for j in jobs if j.started_by))
    if people:
        mentions = " ".join(f"<@{clip(u, 20)}>" for u in people[:MAX_MENTIONS]) + (" …" if len(people) > MAX_MENTIONS else "")
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Started by {mentions}"}]})
    ids = ", ".join(clip(j.id, 100) for j in jobs[:20]) + (f" and {len(jobs) - 20} more" if len(jobs) > 20 else "")
    text = f"{len(jobs)} fine-tuning jobs ended ({_counts(jobs)}): {ids}"
    return {"text": truncate(text, 3_000), "blocks": blocks}
