"""Which of Together AI's fine-tuned models answer serverless. Plain data (no SDK import): the
adapter, the eval preparation and the Together sandbox all read it."""

from __future__ import annotations

# Together's LoRA-inference list (docs.together.ai, "Serverless LoRA inference"): a LoRA adapter
# trained on one of these bases answers chat completions under its output name at once, billed
# per token. Any other fine-tuned model (full training, or LoRA on another base) answers only from
# a dedicated endpoint, billed by the minute while it runs.
SERVERLESS_LORA_BASES: frozenset[str] = frozenset({
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference",
    "Qwen/Qwen2.5-72B-Instruct",
    "meta-llama/Llama-4-Maverick-17B-128E-Instruct",
    "Qwen/Qwen3-235B-A22B-Instruct-2507",
})


def serverless(base: str | None, *, lora: bool) -> bool:
    """Whether a fine-tuned model of `base` answers without a dedicated endpoint."""
    return lora and base in SERVERLESS_LORA_BASES
