"""Scores of one answer against its reference: pure functions, each returning a number in [0, 1], or
None when the score does not apply to this example (a JSON score on a plain-text reference, a tool
score on an example that calls no tool, an exact match on a tool-call-only reference).

- exact: equal after collapsing whitespace and case.
- similarity: ROUGE-L F1 (Google's `rouge-score` package, its default tokenizer: lower-cased
  alphanumeric tokens, no stemming): the longest common subsequence of tokens, as precision and
  recall against the reference combined into F1.
- json: the reference is JSON (an object or an array): 1 when the answer parses to the same value.
- tools: the reference calls tools: 1 when the answer calls the same functions with the same
  arguments (compared after parsing, in any order).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

SCORES = ("exact", "similarity", "json", "tools", "judge")
DEFAULT_SCORES = ("exact", "similarity", "json", "tools")
LABELS = {"exact": "exact match", "similarity": "ROUGE-L F1", "json": "JSON equal", "tools": "tool calls", "judge": "judge preference"}


def normalise(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def exact(answer: str | None, reference: str | None) -> float | None:
    if reference is None:
        return None
    return 1.0 if normalise(answer) == normalise(reference) else 0.0


@lru_cache(maxsize=1)
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def similarity(answer: str | None, reference: str | None) -> float | None:
    if reference is None:
        return None
    if not normalise(reference):
        return 1.0 if not normalise(answer) else 0.0
    return float(_rouge().score(reference, answer or "")["rougeL"].fmeasure)


def _as_json(text: str | None) -> tuple[bool, Any]:
    if text is None:
        return False, None
    s = text.strip()
    if not s or s[0] not in "[{":
        return False, None
    try:
        return True, json.loads(s)
    except ValueError:
        return False, None


def json_equal(answer: str | None, reference: str | None) -> float | None:
    ok, ref = _as_json(reference)
    if not ok:
        return None
    parsed, value = _as_json(answer)
    return 1.0 if parsed and value == ref else 0.0


def _call_key(call: Mapping[str, Any]) -> tuple[str, str]:
    name = str(call.get("name") or "")
    raw = call.get("arguments")
    if isinstance(raw, str):
        try:
            args = json.loads(raw)
        except ValueError:
            return name, "\x00unparsed:" + raw
    else:
        args = raw if raw is not None else {}
    return name, json.dumps(args, sort_keys=True, separators=(",", ":"))


def tool_calls(answer: Sequence[Mapping[str, Any]] | None, reference: Sequence[Mapping[str, Any]] | None) -> float | None:
    """Calls as {"name", "arguments"} with arguments as JSON text (or already parsed)."""
    if not reference:
        return None
    return 1.0 if Counter(map(_call_key, answer or ())) == Counter(map(_call_key, reference)) else 0.0


def score_answer(names: Sequence[str], answer: Mapping[str, Any], reference: Mapping[str, Any]) -> dict[str, float | None]:
    """The named per-answer scores (the judge is scored per example pair, not here).
    `answer` / `reference`: {"content": str | None, "tool_calls": [{"name", "arguments"}]}."""
    out: dict[str, float | None] = {}
    for n in names:
        if n == "exact":
            out[n] = exact(answer.get("content"), reference.get("content"))
        elif n == "similarity":
            out[n] = similarity(answer.get("content"), reference.get("content"))
        elif n == "json":
            out[n] = json_equal(answer.get("content"), reference.get("content"))
        elif n == "tools":
            out[n] = tool_calls(answer.get("tool_calls"), reference.get("tool_calls"))
    return out


# ---- the judge ------------------------------------------------------------------------------

JUDGE_SYSTEM = (
    "You compare two answers to the same conversation against a reference answer. Judge which "
    "answer is closer to the reference in meaning and correctness; ignore length and style. "
    "Reply with exactly one word: A, B or TIE."
)


def judge_messages(prompt: Sequence[Mapping[str, Any]], reference: str, first: str, second: str) -> list[dict[str, str]]:
    convo = "\n".join(f"{m.get('role')}: {m.get('content') if isinstance(m.get('content'), str) else json.dumps(m.get('content'))}" for m in prompt)
    user = f"Conversation:\n{convo}\n\nReference answer:\n{reference}\n\nAnswer A:\n{first}\n\nAnswer B:\n{second}\n\nWhich is closer to the reference: A, B or TIE?"
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


def parse_verdict(text: str | None) -> str | None:
    """"A", "B" or "TIE" from the judge's reply; None when it said something else."""
    words = [w.strip(" .!:*\"'`").upper() for w in (text or "").split()]
    found = {w for w in words if w in {"A", "B", "TIE"}}
    return found.pop() if len(found) == 1 else None


def judge_score(verdict: str | None, model_first: bool) -> float | None:
    """The evaluated model's judge score for one example: 1 preferred, 0.5 tie, 0 not; None unparsed."""
    if verdict is None:
        return None
    if verdict == "TIE":
        return 0.5
    return 1.0 if (verdict == "A") == model_first else 0.0
