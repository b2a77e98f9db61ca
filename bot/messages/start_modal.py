"""The `/ft start` form (a modal), and the field checks whose errors show inside it."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from bot.commands.parse import DEFAULT_MODEL
from bot.mrkdwn import clip
from bot.provider.ray_defaults import BASE_MODELS as RAY_BASE_MODELS  # offered when a Ray cluster is enabled

BASE_MODELS = (
    "gpt-4o-mini-2024-07-18",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-4.1-2025-04-14",
    "gpt-4o-2024-08-06",
    "gpt-3.5-turbo-0125",
)
# Offered when Together AI is enabled (the first is its default, as in the Together adapter).
TOGETHER_BASE_MODELS = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Llama-3.3-70B-Instruct-Reference",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "openai/gpt-oss-20b",
)


def _opt(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text[:75]}, "value": value[:150]}


def _number(block_id: str, label: str, hint: str, *, decimal: bool = False, min_value: str | None = None, max_value: str | None = None) -> dict[str, Any]:
    el: dict[str, Any] = {"type": "number_input", "action_id": "value", "is_decimal_allowed": decimal}
    if min_value is not None:
        el["min_value"] = min_value
    if max_value is not None:
        el["max_value"] = max_value
    return {"type": "input", "block_id": block_id, "optional": True, "label": {"type": "plain_text", "text": label}, "hint": {"type": "plain_text", "text": hint}, "element": el}


def start_modal(
    files: list[tuple[str, str]],
    models: list[str],
    *,
    channel: str,
    providers: list[tuple[str, str]] | None = None,
    default_provider: str | None = None,
    closed: Collection[str] = (),
    empty_means: str | None = None,
) -> dict[str, Any]:
    """files: (file id, label); models: base and fine-tuned model names to start from; providers:
    (name, label) to choose from, shown when there are several; closed: models no longer trained
    anywhere enabled (sunset), left out; empty_means: what an empty model choice trains, when not
    the default provider's default (its training has ended)."""
    blocks: list[dict[str, Any]] = []
    if providers and len(providers) > 1:
        opts = [_opt(label, name) for name, label in providers]
        initial = next((o for o in opts if o["value"] == default_provider), opts[0])
        blocks.append({"type": "input", "block_id": "provider", "label": {"type": "plain_text", "text": "Provider"}, "element": {"type": "static_select", "action_id": "value", "options": opts, "initial_option": initial}})
    if files:
        file_opts = [_opt(label, fid) for fid, label in files[:100]]
        blocks.append({"type": "input", "block_id": "file", "label": {"type": "plain_text", "text": "Training file"}, "element": {"type": "static_select", "action_id": "value", "options": file_opts}})
        blocks.append({"type": "input", "block_id": "validation", "optional": True, "label": {"type": "plain_text", "text": "Validation file"}, "element": {"type": "static_select", "action_id": "value", "options": file_opts}})
    else:
        blocks.append({"type": "input", "block_id": "file", "label": {"type": "plain_text", "text": "Training file id"}, "hint": {"type": "plain_text", "text": "No datasets yet: paste a file id (file-…)."}, "element": {"type": "plain_text_input", "action_id": "value"}})
    names = [name for name, _ in providers or []] or [default_provider or "openai"]
    together = "together" in names
    ray = "ray" in names
    openai_like = any(n not in {"together", "ray"} for n in names)
    bases = [*(BASE_MODELS if openai_like else ()), *(TOGETHER_BASE_MODELS if together else ()), *(RAY_BASE_MODELS if ray else ())]
    offered = [m for m in dict.fromkeys([*bases, *models]) if m not in closed]
    model_opts = [_opt(m, m) for m in offered][:100]
    model_el: dict[str, Any] = {"type": "static_select", "action_id": "value", "options": model_opts}
    model_block: dict[str, Any] = {"type": "input", "block_id": "model", "label": {"type": "plain_text", "text": "Base model"}, "element": model_el}
    if len(names) > 1:
        # Each provider trains its own models: left empty, the chosen provider's default is used.
        model_block["optional"] = True
        # When the default provider's default base no longer trains, an empty choice trains elsewhere: say where.
        model_el["placeholder"] = {"type": "plain_text", "text": clip(f"empty: {empty_means}", 150) if empty_means else "the provider's default"}
    else:
        default = TOGETHER_BASE_MODELS[0] if names == ["together"] else RAY_BASE_MODELS[0] if names == ["ray"] else DEFAULT_MODEL
        if default in offered:
            model_el["initial_option"] = _opt(default, default)
        if not offered:
            # Nothing left to train here: a free-text field keeps the form valid, the start explains.
            model_block["element"] = {"type": "plain_text_input", "action_id": "value"}
            model_block["hint"] = {"type": "plain_text", "text": "Training has ended for every base model here: see /ft migrate."}
    absolute_lr = together or ray
    if names == ["ray"]:
        lr_hint = "the rate your trainer gets, such as 2e-4; empty: 2e-4"
    elif absolute_lr:
        who = " and ".join(label for name, label in (("together", "Together AI"), ("ray", "Ray")) if name in names)
        lr_hint = f"OpenAI: a multiplier of its base rate; {who}: the rate itself, such as 1e-5; empty: auto"
    else:
        lr_hint = "above 0; empty: auto"
    blocks += [
        model_block,
        {"type": "input", "block_id": "method", "label": {"type": "plain_text", "text": "Method"}, "element": {"type": "static_select", "action_id": "value", "options": [_opt("supervised", "supervised"), _opt("dpo (preferences)", "dpo")], "initial_option": _opt("supervised", "supervised")}},
        _number("epochs", "Epochs", "1 to 50; empty: auto", min_value="1", max_value="50"),
        _number("batch", "Batch size", "1 to 256; empty: auto", min_value="1", max_value="256"),
        _number("lr", "Learning rate" if absolute_lr else "Learning-rate multiplier", lr_hint, decimal=True),
        _number("beta", "DPO beta", "only for dpo; empty: auto", decimal=True),
    ]
    if together:
        training = [_opt("LoRA (adapter)", "lora"), _opt("full (all weights)", "full")]
        blocks += [
            {"type": "input", "block_id": "training", "optional": True, "label": {"type": "plain_text", "text": "Training (Together AI)"}, "hint": {"type": "plain_text", "text": "empty: LoRA"}, "element": {"type": "static_select", "action_id": "value", "options": training}},
            _number("lora_r", "LoRA rank (Together AI)", "empty: the model's default", min_value="1", max_value="1024"),
        ]
    blocks += [
        {"type": "input", "block_id": "suffix", "optional": True, "label": {"type": "plain_text", "text": "Model name suffix"}, "element": {"type": "plain_text_input", "action_id": "value", "max_length": 64}},
    ]
    return {
        "type": "modal",
        "callback_id": "start_job",
        "private_metadata": json.dumps({"channel": channel}),
        "title": {"type": "plain_text", "text": "Start fine-tuning"},
        "submit": {"type": "plain_text", "text": "Start"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def form_values(state_values: dict[str, Any]) -> dict[str, str]:
    """Flatten a submitted modal's state to block_id -> text value (empty fields are left out)."""
    out: dict[str, str] = {}
    for block_id, actions in (state_values or {}).items():
        action = (actions or {}).get("value") or {}
        value = action.get("value")
        if value is None and action.get("selected_option"):
            value = action["selected_option"].get("value")
        if value not in (None, ""):
            out[block_id] = str(value)
    return out


def form_to_args(values: dict[str, str]) -> tuple[str, ...]:
    """The same key=value words `/ft start` takes, so both paths share one strict parser."""
    args = [values.get("file", "")]
    for block, key in (("validation", "validation"), ("model", "model"), ("method", "method"), ("epochs", "epochs"), ("batch", "batch"), ("lr", "lr"), ("beta", "beta"), ("training", "training"), ("lora_r", "lora_r"), ("suffix", "suffix"), ("provider", "provider")):
        if block in values:
            args.append(f"{key}={values[block]}")
    return tuple(a for a in args if a)


FIELD_OF_OPTION = {"epochs": "epochs", "batch": "batch", "lr": "lr", "beta": "beta", "training": "training", "lora_r": "lora_r", "suffix": "suffix", "method": "method", "model": "model", "validation": "validation", "provider": "provider"}


def field_for_error(message: str) -> str:
    """Which modal block a parser error belongs under."""
    for key, block in FIELD_OF_OPTION.items():
        if f"`{key}`" in message:
            return block
    return "file"


