"""Which examples an evaluation asks: a seeded sample of N from the chosen file (the same request
samples the same examples), leaving out those longer than the model's context (counted)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.evals import costs
from bot.evals.examples import Example

DEFAULT_N = 50
MAX_N = 1000


@dataclass
class Sample:
    examples: list[Example]
    prompt_tokens: list[int]
    answer_tokens: int  # the references' tokens: what the answers are expected to cost
    available: int  # usable examples in the file
    skipped: dict[str, int] = field(default_factory=dict)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, why) of examples left out as malformed


def seed_of(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def sample(examples: Sequence[Example], n: int, *, seed: int, models: Sequence[tuple[str, str | None]], left_out: dict[str, int] | None = None) -> Sample:
    """`models`: (model, base) pairs that will be asked; an example over any one's context is skipped."""
    chosen = list(examples)
    if len(chosen) > n:
        chosen = sorted(random.Random(seed).sample(range(len(chosen)), n))
        chosen = [examples[i] for i in chosen]
    limit = min(costs.context_window(m, b) for m, b in models) if models else costs.DEFAULT_CONTEXT
    counted_for = models[0][0] if models else "gpt-4o-mini"
    kept: list[Example] = []
    tokens: list[int] = []
    answer = 0
    skipped = dict(left_out or {})
    for ex in chosen:
        t = costs.prompt_tokens(counted_for, ex.messages, ex.tools)
        a = costs.answer_tokens(counted_for, ex.reference)
        if t + a > limit:
            skipped["too_long"] = skipped.get("too_long", 0) + 1
            continue
        kept.append(ex)
        tokens.append(t)
        answer += a
    return Sample(kept, tokens, answer, len(examples), skipped)
