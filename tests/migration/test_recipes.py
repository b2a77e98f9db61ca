"""The recipe translation (pure) and the migration messages' limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.errors import UserError
from bot.messages.migration import migration_preview, migrations_answer
from bot.migration.flow import MigrationView
from bot.migration.keep import prompt_of
from bot.migration.recipes import LLAMA_8B, LLAMA_70B, translate


def test_sft_keeps_epochs_and_batch_and_turns_the_multiplier_into_a_starting_rate() -> None:
    r = translate(source_model="ft:gpt-4o-mini-2024-07-18:acme::x", source_base=None, method="supervised", hyperparameters={"n_epochs": 3, "batch_size": 8, "learning_rate_multiplier": 1.8}, target="together")
    assert r.model == LLAMA_8B and r.method == "supervised"
    assert r.hyperparameters == {"n_epochs": 3, "batch_size": 8, "learning_rate": pytest.approx(1.8e-5)}
    assert any("a starting point" in n for n in r.notes)


def test_dpo_keeps_beta_and_auto_stays_auto() -> None:
    r = translate(source_model="m", source_base="gpt-4.1-2025-04-14", method="dpo", hyperparameters={"n_epochs": "auto", "beta": 0.2, "learning_rate_multiplier": "auto"}, target="together")
    assert r.model == LLAMA_70B and r.method == "dpo" and r.hyperparameters == {"beta": 0.2}
    assert any("Together's default" in n for n in r.notes)


def test_base_override_azure_and_unknown_bases() -> None:
    assert translate(source_model="m", source_base="gpt-4o-2024-08-06", method="supervised", hyperparameters={}, target="together", base="Qwen/Qwen2.5-72B-Instruct").model == "Qwen/Qwen2.5-72B-Instruct"
    az = translate(source_model="m", source_base="gpt-4o-2024-08-06", method="supervised", hyperparameters={"learning_rate_multiplier": 2}, target="azure")
    assert az.model == "gpt-4o-2024-08-06" and az.hyperparameters == {"learning_rate_multiplier": 2.0}
    with pytest.raises(UserError, match="base=MODEL"):
        translate(source_model="m", source_base="o4-mini-2025-04-16", method="supervised", hyperparameters={}, target="together")


def test_prompts_from_chat_and_preference_examples() -> None:
    chat = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "tools": [{"type": "function", "function": {"name": "f"}}]}
    p = prompt_of(chat, 3)
    assert p.messages == chat["messages"][:2] and p.reference == chat["messages"][2] and p.tools == chat["tools"] and p.line == 3
    pref = {"input": {"messages": [{"role": "user", "content": "q"}]}, "preferred_output": [{"role": "assistant", "content": "good"}], "non_preferred_output": []}
    assert prompt_of(pref, 1).reference == {"role": "assistant", "content": "good"}
    assert prompt_of({"messages": [{"role": "assistant", "content": "a"}]}, 1) is None and prompt_of([1], 1) is None


def _view(**kw) -> MigrationView:  # noqa: ANN003
    base = dict(
        id=7, state="ready", error=None, source_provider="openai", source_model="ft:" + "x" * 500 + "<!channel>", source_job_id="ftjob-" + "y" * 300,
        target_provider="together", target_base_model=LLAMA_8B, recipe={"method": "supervised", "hyperparameters": {"n_epochs": 3}, "notes": ["n" * 900] * 20},
        files={"training": {"target": "file-" + "z" * 400, "bytes": 10**9, "sha256": "a" * 64, "examples": 10**6, "reused": False}},
        estimate_usd=12.5, estimate_note="<@U1> " * 200, target_job_id=None, target_model=None, requested_by="U1", created_at=datetime.now(UTC), keep_n=100,
    )
    base.update(kw)
    return MigrationView(**base)


def test_messages_stay_within_slacks_limits_and_escape_what_they_show() -> None:
    msg = migration_preview(_view())
    for b in msg["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "context":
            assert all(len(e["text"]) <= 3000 for e in b["elements"])
    assert "<!channel>" not in json.dumps(msg) and "<@U1>" not in json.dumps(msg)
    many = migrations_answer([_view(id=i, state="failed", error="<!here> " + "e" * 2000) for i in range(40)])
    assert len(many["blocks"]) <= 50 and all(len(b["text"]["text"]) <= 3000 for b in many["blocks"] if b["type"] == "section")
    assert "<!here>" not in json.dumps(many)
