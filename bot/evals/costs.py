"""What an evaluation will cost, before anything is asked, and what it did cost, from the tokens the
providers reported. Prices per 1M input / output tokens come from the shipped table
(bot/evals/data/chat_prices.json, dated, with its source); Azure is priced as OpenAI (its
list prices for these models match OpenAI's), a model missing from the table has no price and the
estimate says so rather than guessing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Any

DEFAULT_CONTEXT = 128_000
# Per-message overhead of the chat format (OpenAI's cookbook counts 3 per message plus 3 to prime the reply).
PER_MESSAGE = 3


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    return json.loads(files("bot.evals").joinpath("data", "chat_prices.json").read_text())


def price_source() -> str:
    return str(_table()["_source"])


def _longest_prefix(table: Mapping[str, Any], name: str) -> Any:
    best = max((k for k in table if name.startswith(k)), key=len, default=None)
    return table[best] if best is not None else None


def chat_price(provider: str, model: str, base: str | None = None) -> tuple[float, float] | None:
    """USD per 1M (input, output) tokens, or None when the table has no price for the model."""
    t = _table()
    if provider in {"openai", "azure"}:
        name = model
        if ".ft-" in model:  # Azure's fine-tuned names: <base>.ft-<hash>
            name = "ft:" + model.split(".ft-")[0]
        found = _longest_prefix(t["openai"], name)
        if found is None and base:
            found = _longest_prefix(t["openai"], "ft:" + base)
        return tuple(found) if found else None  # type: ignore[return-value]
    if provider == "together":
        found = t["together"].get(model) or (t["together"].get(base) if base else None)
        return tuple(found) if found else None  # type: ignore[return-value]
    return None


def context_window(model: str, base: str | None = None) -> int:
    name = model.split(":")[1] if model.startswith("ft:") and model.count(":") >= 2 else model
    found = _longest_prefix(_table()["context"], name)
    if found is None and base:
        found = _longest_prefix(_table()["context"], base)
    return int(found or DEFAULT_CONTEXT)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return json.dumps(content)


def _approx(text: str) -> int:
    return (len(text.encode()) + 3) // 4


def prompt_tokens(model: str, messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] | None) -> int:
    """About how many tokens a prompt is: 4 bytes of UTF-8 per token (OpenAI's rule of thumb for
    English) plus the chat format's per-message overhead. An estimate for the cost shown before
    running and the context check; what a run did cost comes from the provider's own counts. (Not
    the exact tokenizer: loading o200k_base costs some 75 MB and 3 s in each worker.)"""
    n = 3
    for m in messages:
        n += PER_MESSAGE + _approx(_text(m.get("content"))) + 1
        if m.get("tool_calls"):
            n += _approx(json.dumps(m["tool_calls"]))
    if tools:
        n += _approx(json.dumps(tools))
    return n


def answer_tokens(model: str, reference: Mapping[str, Any]) -> int:
    calls = reference.get("tool_calls") or []
    return _approx(reference.get("content") or "") + (_approx(json.dumps(calls)) if calls else 0) + 1


PER_MINUTE = (
    "asked through a dedicated endpoint, which Together AI bills by the minute while it runs, not per token: "
    "what this evaluation costs depends on how long the endpoint runs, so it is unknown here"
)
SAVED = "saved answers, not asked again: nothing to pay"


@dataclass(frozen=True)
class Asked:
    """One model asked every example: who, at which prices."""

    role: str  # model | baseline | judge
    provider: str
    model: str
    base: str | None = None
    # per_token: the price table; per_minute: a dedicated endpoint (unknown); saved: not asked (free)
    billing: str = "per_token"


def estimate(asked: Iterable[Asked], prompt_tokens_total: int, answer_tokens_total: int, examples: int) -> dict[str, Any]:
    """Prompt + expected answer tokens (the references' length) x examples x models, the judge
    reading both answers too. `usd` is None when any model has no price."""
    parts: list[dict[str, Any]] = []
    total: float | None = 0.0
    for a in asked:
        tin, tout = prompt_tokens_total, answer_tokens_total
        if a.role == "judge":
            # The judge reads the prompt, the reference and both answers, and answers one word.
            tin, tout = prompt_tokens_total + 3 * answer_tokens_total + 120 * examples, 2 * examples
        part: dict[str, Any] = {"role": a.role, "model": a.model, "provider": a.provider, "input_tokens": tin, "output_tokens": tout, "billing": a.billing}
        if a.billing == "saved":
            usd: float | None = 0.0
            part["note"] = SAVED
        elif a.billing == "per_minute":
            usd = None
            part["note"] = PER_MINUTE
        else:
            price = chat_price(a.provider, a.model, a.base)
            usd = None if price is None else (tin * price[0] + tout * price[1]) / 1e6
            part["note"] = "the shipped price table" if price is not None else f"{a.model} has no price in the shipped table"
        part["usd"] = usd
        parts.append(part)
        total = None if usd is None or total is None else total + usd
    notes = [p["note"] for p in parts if p["usd"] is None]
    return {"usd": total, "parts": parts, "examples": examples, "source": price_source(), "note": "; ".join(dict.fromkeys(notes)) or None}


def spent(provider: str, model: str, base: str | None, input_tokens: int, output_tokens: int, billing: str = "per_token") -> float | None:
    """What the tokens cost at the table's prices; None when unknown (no price, or billed by the minute)."""
    if billing == "saved":
        return 0.0
    if billing == "per_minute":
        return None
    price = chat_price(provider, model, base)
    return None if price is None else (input_tokens * price[0] + output_tokens * price[1]) / 1e6
