"""`/ft eval` at Together AI through the real together client: a fully trained model with a dedicated
endpoint, or a LoRA adapter on a base Together serves serverless, evaluated against its base with
the known figures; a fully trained model without an endpoint (trained outside ftbot, so only
Together's answer tells) stops with Together's reason before asking more. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest
import together

from storage.models import EvalRun
from tests.conftest import wait_for
from tests.evals.conftest import expected
from tests.evals.crafted import dataset, jsonl
from tests.providers.conftest import _azure_sandbox_server, azure_sandbox, kits, launch  # noqa: F401  (fixtures)
from tests.together_sandbox import API_KEY, LLAMA_8B, _together_server, together_sandbox  # noqa: F401

CHANNEL = "C0001"


def _train(sandbox, tmp_path, rows, *, lora: bool) -> tuple[str, str]:  # noqa: ANN001
    client = together.Together(api_key=API_KEY, base_url=sandbox.url, max_retries=0)
    path = tmp_path / "crafted.jsonl"
    path.write_bytes(jsonl(rows))
    f = client.files.upload(path, purpose="fine-tune", check=False)
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, lora=lora)
    wait_for(lambda: client.fine_tuning.retrieve(made.id).status == "completed", timeout=20)
    return made.output_name, f.id


@pytest.mark.parametrize(("deployed", "lora"), [(True, False), (False, False), (False, True)], ids=["full-deployed", "full-no-endpoint", "lora-serverless"])
def test_eval_at_together(launch, kits, db_url, tmp_path, deployed, lora) -> None:  # noqa: ANN001, F811
    sandbox = kits["together"].sandbox
    rows = dataset(10, 2, 2)
    model, fid = _train(sandbox, tmp_path, rows, lora=lora)
    if deployed:
        httpx.post(f"{sandbox.url}/_sandbox/deployments", json={"model": model}).raise_for_status()
    team = launch(db_url, ["together"])
    answer = team.ask(f"eval {model} vs={LLAMA_8B} data={fid} n=14")
    assert "Evaluating 14 examples" in answer["text"], answer
    report = wait_for(lambda: next((m for m in team.slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of ") and " vs " in m["text"]), None), timeout=30)
    with team.bot.services.db.session() as s:
        run = s.query(EvalRun).one()
        summary, status = run.summary, run.status
    if deployed or lora:
        assert status == "done"
        assert not sandbox.world.deployed or deployed
        want = expected(rows, model, LLAMA_8B, sandbox.state.memory.noise)
        for name, w in want.items():
            c = summary["comparisons"][name]
            assert (c["n"], c["model"], c["baseline"]) == (w["n"], pytest.approx(w["model"]), pytest.approx(w["baseline"])), name
        # The base is priced; a fine-tuned model ftbot did not train has no known base, so no price:
        # the report says the total is unknown rather than guessing.
        assert summary["slots"]["baseline"]["usd"] is not None and summary["usd"] is None
        assert "unknown (no price for a model)" in json.dumps(report["blocks"])
    else:
        assert status == "failed" and "dedicated endpoint" in summary["error"]
        assert "dedicated endpoint" in json.dumps(report["blocks"])
        # Refused at the first request (the first example is asked alone first): the base model was
        # asked at most that one example, not all fourteen.
        assert summary["slots"]["model"]["answered"] == 0
        assert sum(n for (m, _), n in sandbox.state.memory.asked.items() if m == LLAMA_8B) <= 1
