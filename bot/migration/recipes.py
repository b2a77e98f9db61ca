"""The source job's recipe, as the target provider takes it.

Comparable bases are chosen by size. The table below is ftbot's documented default; `base=MODEL` on
`/ft migrate` overrides it for one migration. The Together bases are the ones whose LoRA adapters
Together serves serverless, so the new model can be asked at once, without a paid endpoint.

Learning rate: OpenAI takes a multiplier of a base rate it does not publish; Together takes the rate
itself (its SDK's default is 1e-5 for LoRA). A multiplier m becomes m x 1e-5, a starting point to tune
from, not an equivalence: the preview says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import UserError
from bot.provider.base import provider_label
from bot.retirements.table import base_model_of

LLAMA_8B = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
LLAMA_70B = "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference"

# (source family prefix, target provider) -> target base. Longest prefix wins.
COMPARABLE_BASES: dict[tuple[str, str], str] = {
    ("gpt-4o-mini", "together"): LLAMA_8B,
    ("gpt-4.1-mini", "together"): LLAMA_8B,
    ("gpt-4.1-nano", "together"): LLAMA_8B,
    ("gpt-3.5-turbo", "together"): LLAMA_8B,
    ("gpt-4o", "together"): LLAMA_70B,
    ("gpt-4.1", "together"): LLAMA_70B,
}
# Together's starting rate for LoRA (its SDK's default): what a multiplier of 1 becomes.
TOGETHER_BASE_RATE = 1e-5
# Prompt-plus-answer tokens the target base takes per example (for the dataset check).
TOKEN_LIMITS = {LLAMA_8B: 131_072, LLAMA_70B: 131_072}


@dataclass(frozen=True)
class Recipe:
    model: str
    method: str
    hyperparameters: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "method": self.method, "hyperparameters": self.hyperparameters, "notes": self.notes}


def comparable_base(source_base: str, target: str) -> str | None:
    if target in ("openai", "azure"):
        return source_base  # the same base model family is trained there
    hits = [(len(prefix), base) for (prefix, t), base in COMPARABLE_BASES.items() if t == target and source_base.startswith(prefix)]
    return max(hits)[1] if hits else None


def translate(*, source_model: str, source_base: str | None, method: str, hyperparameters: dict[str, Any], target: str, base: str | None = None) -> Recipe:
    """The target's job spec parts. Raises UserError when no comparable base is known and none given."""
    src_base = source_base or base_model_of(source_model)
    model = base or comparable_base(src_base, target)
    if model is None:
        raise UserError(f"I know no base at {provider_label(target)} comparable to `{src_base[:120]}`: name one with `base=MODEL`.")
    notes = [f"base {model}: " + ("given with base=" if base else f"comparable by size to {src_base} (ftbot's table; base=MODEL overrides)")]
    hyper: dict[str, Any] = {}
    src = {k: v for k, v in (hyperparameters or {}).items() if v not in (None, "auto")}
    for key in ("n_epochs", "batch_size"):
        if isinstance(src.get(key), int):
            hyper[key] = src[key]
    if method == "dpo" and isinstance(src.get("beta"), int | float):
        hyper["beta"] = float(src["beta"])
    lrm = src.get("learning_rate_multiplier")
    if target == "together":
        if isinstance(lrm, int | float):
            hyper["learning_rate"] = float(lrm) * TOGETHER_BASE_RATE
            notes.append(f"learning rate {hyper['learning_rate']:.2g}: OpenAI's multiplier {lrm:g} x {TOGETHER_BASE_RATE:g} (Together's LoRA default), a starting point")
        else:
            notes.append("learning rate: Together's default (the source used OpenAI's auto)")
        if isinstance(src.get("learning_rate"), int | float):
            hyper["learning_rate"] = float(src["learning_rate"])
    elif isinstance(lrm, int | float):
        hyper["learning_rate_multiplier"] = float(lrm)
    kept = ", ".join(f"{k}={v}" for k, v in sorted(hyper.items()) if k in ("n_epochs", "batch_size", "beta")) or "auto epochs and batch size"
    notes.append(f"{method} as it was: {kept}")
    return Recipe(model, method if method in ("supervised", "dpo") else "supervised", hyper, notes)
