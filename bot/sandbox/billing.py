"""What a job is billed for: the training file's tokens (each example counted as OpenAI's cookbook
counts it, capped at the model's context) times the epochs, as OpenAI reports `trained_tokens`."""

from __future__ import annotations

import tempfile

from bot.datasets.validate import validate_file


def billed_tokens_per_epoch(content: bytes, model: str) -> int:
    """Tokens one pass over the training file costs; 0 when none could be counted."""
    base = model.split(":")[1] if model.startswith("ft:") else model  # a fine-tune trains in its base's encoding
    with tempfile.NamedTemporaryFile(prefix="sandbox-train-", suffix=".jsonl") as f:
        f.write(content)
        f.flush()
        report = validate_file(f.name, model=base)
    return report.tokens.billed_per_epoch if report.tokens is not None else 0
