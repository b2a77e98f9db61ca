"""A Together LoRA job (Together's default) ends in Slack: Together lists two final checkpoints at the
same step (the merged model and the adapter), and both are kept without stopping the job's ending.

Through Slack (signed requests), the real `together` SDK on the Together sandbox, the real worker, on
SQLite and PostgreSQL. Before the fix the second final checkpoint broke the unique key, the poller
took that for a race with another worker, and the job was re-polled forever: no alert, no chart.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from sqlalchemy import select

from storage.models import Checkpoint, Job
from tests.conftest import wait_for
from tests.helpers import chat_jsonl
from tests.providers.conftest import CHANNEL


def _started(answer: dict) -> str:
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _top(slack, job_id: str, word: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and word in (m.get("text") or ""):
            return m
    return None


def _card(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks")):
            return m
    return None


def _alert(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "succeeded" in (m.get("text") or "") and "Base model" not in json.dumps(m.get("blocks")):
            return m
    return None


def _chart(slack, card_ts: str) -> list[dict[str, Any]]:  # noqa: ANN001
    return [c.args for c in slack.calls("files.completeUploadExternal") if c.args.get("thread_ts") == card_ts]


def test_a_together_lora_job_started_in_slack_ends_with_its_alert_chart_and_both_final_checkpoints(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["together"]
    team = launch(db_url, ["together"])
    services = team.bot.services
    fid = services.providers["together"].upload_file(chat_jsonl(12), "train.jsonl").id

    lora = _started(team.ask(f"start {fid} epochs=2 batch=4"))  # LoRA: Together's default
    full = _started(team.ask(f"start {fid} training=full epochs=1"))  # beside it, a job that ends too
    assert kit.jobs()[lora]["training_type"]["type"] == "Lora" and kit.jobs()[full]["training_type"] == {"type": "Full"}

    for job_id in (lora, full):
        wait_for(lambda job_id=job_id: _alert(slack, job_id), timeout=30)
        card = wait_for(lambda job_id=job_id: (c := _card(slack, job_id)) and "succeeded" in c["text"] and c, timeout=30)
        [chart] = wait_for(lambda card=card: _chart(slack, card["ts"]), timeout=30)
        assert slack.uploaded_file(chart["files"][0]["id"]).startswith(b"\x89PNG")

    # The sandbox lists what Together lists: the two finals of the LoRA job share the final step.
    listed = services.providers["together"].client.fine_tuning.list_checkpoints(lora).data
    finals = [(c.checkpoint_type, c.checkpoint, c.step) for c in listed if c.checkpoint_type.startswith("Final")]
    total = kit.jobs()[lora]["total_steps"]
    assert finals == [("Final Merged", "model", total), ("Final Adapter", "adapter", total)]

    model = kit.model_of(lora)
    with services.db.session() as s:
        rows = {j.provider_job_id: j for j in s.scalars(select(Job))}
        assert rows[lora].is_final and rows[lora].status == "succeeded" and rows[lora].poll_failures == 0
        assert rows[full].is_final and rows[full].status == "succeeded"
        stored = s.execute(select(Checkpoint.provider_checkpoint_id, Checkpoint.model_name).where(Checkpoint.job_id == rows[lora].id).order_by(Checkpoint.id)).all()
    # Both kept, told apart by id; the merged model keeps the name `from_checkpoint` takes.
    assert (f"{lora}:{total}", model) in stored and (f"{lora}:{total}:adapter", f"{model}-adapter") in stored
    assert len(stored) == len({i for i, _ in stored}) == 3

    # Exactly one alert and one chart each, and nothing more to say.
    assert len([m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and lora in (m.get("text") or "")]) == 2
    assert len(_chart(slack, _card(slack, lora)["ts"])) == 1

    # `/ft checkpoints` says which final is the adapter.
    answer = json.dumps(team.ask(f"checkpoints {lora}"))
    assert f"step {total}* \\u00b7 Final Merged" in answer and f"step {total}* \\u00b7 Final Adapter" in answer, answer
    assert f"{model}-adapter" in answer

    with urllib.request.urlopen(f"{team.bot.url}/healthz") as r:
        assert json.loads(r.read())["polling"] == {"failing": 0, "jobs": []}
