"""The `/ft help` answer."""

from __future__ import annotations

from typing import Any

from bot.commands.parse import USAGE

_WHAT = {
    "help": "this help",
    "upload": "upload a training file (or send a .jsonl to the bot)",
    "files": "datasets uploaded through the bot",
    "start": "start a fine-tuning job (no arguments: a form)",
    "list": "recent jobs",
    "status": "one job: progress, metrics, ETA",
    "events": "a job's event log",
    "checkpoints": "a job's checkpoints with metrics",
    "metrics": "loss and accuracy chart",
    "cancel": "cancel a job",
    "pause": "pause a running job",
    "resume": "resume a paused job",
    "watch": "post a job's updates in a channel",
    "unwatch": "stop posting a job's updates here",
    "models": "fine-tuned models and the jobs that made them",
    "delete-model": "delete a model once teammates approve",
    "try": "ask a fine-tuned model one question",
    "audit": "approval requests, votes and deletions",
}

EXAMPLES = (
    "/ft start train.jsonl model=gpt-4o-mini-2024-07-18 epochs=3 suffix=support-bot",
    "/ft status ftjob-abc1",
    "/ft watch ftjob-abc1 #ml-runs",
    '/ft try ft:gpt-4o-mini:acme:support-bot:abc123 "How do I reset my password?"',
)


def help_message(operator_only: frozenset[str] = frozenset()) -> dict[str, Any]:
    lines = []
    for verb, usage in USAGE.items():
        lock = " :lock:" if verb in operator_only else ""
        lines.append(f"`{usage}`{lock}\n      {_WHAT[verb]}")
    # Sections hold at most 3,000 characters: split the list in two.
    half = len(lines) // 2
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "ftbot: fine-tuning from Slack"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines[:half])}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines[half:])}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "*Examples*\n" + "\n".join(f"`{e}`" for e in EXAMPLES)},
        },
    ]
    note = "`<job>` is a job id; a unique prefix is enough. `<file>` is a file id or a dataset name."
    if operator_only:
        note += " :lock: needs an operator."
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return {"text": "ftbot help: /ft start, status, list, cancel and more", "blocks": blocks}
