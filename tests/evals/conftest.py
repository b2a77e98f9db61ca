"""Evaluation fixtures: a model trained in the sandbox on the crafted dataset, and the figures an
evaluation of it must report, computed by hand from what the sandbox is known to answer."""

from __future__ import annotations

from typing import Any

import openai

from bot.evals import scorers
from bot.evals.examples import parse_bytes
from bot.sandbox.learned import FORGOTTEN_ANSWER, forgotten, generic_answer, prompt_key
from tests.conftest import wait_for
from tests.evals.crafted import jsonl

BASE = "gpt-4o-mini-2024-07-18"


def train(sandbox, rows: list[dict[str, Any]], *, base: str = BASE) -> tuple[str, str, str]:  # noqa: ANN001
    """(job id, fine-tuned model, training file id), trained in the sandbox directly."""
    fid = sandbox.state.add_file("crafted.jsonl", jsonl(rows), "fine-tune")["id"]
    client = openai.OpenAI(api_key="sk-x", base_url=sandbox.url, max_retries=0)
    job = client.fine_tuning.jobs.create(model=base, training_file=fid)
    model = wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model)
    return job.id, model, fid


def expected(rows: list[dict[str, Any]], model: str, baseline: str, noise: float) -> dict[str, dict[str, float]]:
    """{score: {"model": mean, "baseline": mean, "n": n}} as the sandbox will answer."""
    sums: dict[str, dict[str, list[float]]] = {}
    for ex in parse_bytes(jsonl(rows)).examples:
        key = prompt_key(ex.messages)
        if forgotten(model, key, noise):
            m = {"content": FORGOTTEN_ANSWER, "tool_calls": []}
        else:
            m = {"content": ex.reference["content"], "tool_calls": ex.reference["tool_calls"]}
        b = {"content": generic_answer(baseline, ex.messages), "tool_calls": []}
        sm = scorers.score_answer(scorers.DEFAULT_SCORES, m, ex.reference)
        sb = scorers.score_answer(scorers.DEFAULT_SCORES, b, ex.reference)
        for name in scorers.DEFAULT_SCORES:
            if sm[name] is not None and sb[name] is not None:
                sums.setdefault(name, {"model": [], "baseline": []})
                sums[name]["model"].append(sm[name])
                sums[name]["baseline"].append(sb[name])
    return {k: {"model": sum(v["model"]) / len(v["model"]), "baseline": sum(v["baseline"]) / len(v["baseline"]), "n": len(v["model"])} for k, v in sums.items()}
