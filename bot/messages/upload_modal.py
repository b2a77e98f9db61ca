"""The `/ft upload` form: one `.jsonl` file and the model to check it for."""

from __future__ import annotations

import json
from typing import Any

CALLBACK = "upload_dataset"


def upload_modal(channel: str | None, *, provider: str | None = None, provider_label: str | None = None, models: tuple[str, ...]) -> dict[str, Any]:
    """`provider_label`: shown when several providers are enabled, so the uploader sees where it goes;
    `models`: the base models of the provider it goes to (the first is the default), given by the
    caller (bot/datasets/models.py knows them)."""
    def opt(m: str) -> dict[str, Any]:
        return {"text": {"type": "plain_text", "text": m}, "value": m}

    return {
        "type": "modal",
        "callback_id": CALLBACK,
        "title": {"type": "plain_text", "text": "Upload a dataset"},
        "submit": {"type": "plain_text", "text": "Check and upload"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "private_metadata": json.dumps({"channel": channel, "provider": provider}),
        "blocks": [
            {
                "type": "input",
                "block_id": "file",
                "label": {"type": "plain_text", "text": "Training data (.jsonl)"},
                "element": {"type": "file_input", "action_id": "file", "filetypes": ["jsonl"], "max_files": 1},
            },
            {
                "type": "input",
                "block_id": "model",
                "label": {"type": "plain_text", "text": "Check it for"},
                "element": {"type": "static_select", "action_id": "model", "initial_option": opt(models[0]), "options": [opt(m) for m in models]},
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "Checked before anything is uploaded: errors with line numbers, tokens and the cost of a job." + (f" Uploaded to *{provider_label}*." if provider_label else "")}],
            },
        ],
    }


def submitted(view: dict[str, Any]) -> tuple[list[str], str | None]:
    """The chosen file ids and model from a submission (None: the provider's default model)."""
    values = (view.get("state") or {}).get("values") or {}
    files = ((values.get("file") or {}).get("file") or {}).get("files") or []
    model = (((values.get("model") or {}).get("model") or {}).get("selected_option") or {}).get("value") or None
    return [f["id"] for f in files if isinstance(f, dict) and f.get("id")], model
