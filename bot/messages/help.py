"""The `/ft help` answer."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.commands.parse import USAGE
from bot.mrkdwn import truncate

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
    "migrate": "move a model to another provider: its data and recipe, started on Confirm",
    "migrations": "migrations, their state and the parity headline (new model vs the old one's saved answers)",
    "keep": "save a model's answers to held-out prompts while it still serves",
    "eval": "is a model better than its base on your examples? scores with confidence intervals",
}

EXAMPLES = (
    ("start", "/ft start file-abc123 model=gpt-4o-mini-2024-07-18 epochs=3 suffix=support-bot"),
    ("status", "/ft status ftjob-abc1"),
    ("watch", "/ft watch ftjob-abc1 #ml-runs"),
    ("try", '/ft try ft:gpt-4o-mini:acme:support-bot:abc123 "How do I reset my password?"'),
)


def help_message(verbs: Iterable[str], operator_only: Iterable[str] = ()) -> dict[str, Any]:
    """Only `verbs` (the ones with a handler) are listed, in the usual order."""
    available = set(verbs)
    locked = set(operator_only)
    lines = []
    for verb, usage in USAGE.items():
        if verb not in available:
            continue
        lock = " :lock:" if verb in locked else ""
        lines.append(f"`{usage}`{lock}\n      {_WHAT.get(verb, '')}")
    # Sections hold at most 3,000 characters: split the list in two.
    half = max(1, len(lines) // 2)
    blocks: list[dict[str, Any]] = [{"type": "header", "text": {"type": "plain_text", "text": "ftbot: fine-tuning from Slack"}}]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": truncate("\n".join(part), 3000)}} for part in (lines[:half], lines[half:]) if part]
    examples = [e for verb, e in EXAMPLES if verb in available]
    if examples:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Examples*\n" + "\n".join(f"`{e}`" for e in examples)}})
    note = "JOB_ID is a job id; a unique prefix is enough. FILE is a file id or a dataset name."
    if locked:
        note += " :lock: needs an operator."
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    shown = ", ".join(v for v in USAGE if v in available and v != "help")
    return {"text": f"ftbot help: /ft {shown}"[:300], "blocks": blocks}


def dm_help() -> dict[str, Any]:
    """The answer to a direct message: ftbot works through `/ft`, not chat."""
    text = "Hi! I work through the `/ft` command: `/ft help` lists what I can do, `/ft list` shows your team's jobs."
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
