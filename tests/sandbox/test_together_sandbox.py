"""The Together sandbox through the real `together` client over HTTP: what the SDK sends is what it serves."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest
import together

from bot.sandbox.server import SandboxServer
from bot.sandbox.state import SandboxState
from bot.sandbox.together_server import TogetherSandboxServer
from bot.sandbox.together_state import PROJECT_ID
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, dpo_jsonl
from tests.together_sandbox import API_KEY, FAST, LLAMA_8B, LLAMA_70B, _together_server, together_sandbox  # noqa: F401


@pytest.fixture
def client(together_sandbox) -> together.Together:  # noqa: ANN001, F811
    return together.Together(api_key=API_KEY, base_url=together_sandbox.url, project_id=PROJECT_ID, max_retries=0, timeout=5)


def _upload(client: together.Together, tmp_path, content: bytes, name: str = "train.jsonl"):  # noqa: ANN001, ANN202
    path = tmp_path / name
    path.write_bytes(content)
    return client.files.upload(path, purpose="fine-tune", check=False)


def test_upload_goes_through_the_redirect_and_put_and_keeps_every_byte(client, together_sandbox, tmp_path) -> None:  # noqa: ANN001, F811
    content = chat_jsonl(12) + "\n{\"messages\": [{\"role\": \"user\", \"content\": \"é ✓\"}, {\"role\": \"assistant\", \"content\": \"ok\"}]}".encode()
    f = _upload(client, tmp_path, content)
    assert f.id.startswith("file-") and f.bytes == len(content) and f.processing_status == "COMPLETED"
    assert client.files.content(f.id).read() == content
    assert together_sandbox.state.file_content[f.id] == content
    stats = httpx.get(f"{together_sandbox.url}/_sandbox/stats").json()["requests"]
    assert stats["together.start_upload"] == 1 and stats["together.preprocess"] == 1
    assert [x.id for x in client.files.list().data] == [f.id]
    assert client.files.retrieve(f.id).filename == "train.jsonl"
    assert client.files.delete(f.id).deleted
    with pytest.raises(together.NotFoundError):
        client.files.retrieve(f.id)


def test_upload_first_step_refuses_a_wrong_key_and_the_put_refuses_other_bytes(together_sandbox, tmp_path) -> None:  # noqa: ANN001, F811
    bad = together.Together(api_key="wrong", base_url=together_sandbox.url, max_retries=0)
    with pytest.raises(together.AuthenticationError):
        _upload(bad, tmp_path, chat_jsonl(12))
    first = httpx.post(
        f"{together_sandbox.url}/v1/files",
        headers={"Authorization": f"Bearer {API_KEY}"},
        data={"purpose": "fine-tune", "file_name": "x.jsonl", "file_type": "jsonl", "checksum": hashlib.sha256(b"abc").hexdigest()},
    )
    assert first.status_code == 302
    put = httpx.put(first.headers["Location"], content=b"not abc")
    assert put.status_code == 400 and "checksum" in put.json()["error"]["message"]
    again = httpx.put(first.headers["Location"], content=b"abc")
    assert again.status_code == 404  # one PUT per issued URL


def test_jobs_run_through_together_statuses_to_completed(client, tmp_path, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.queued_seconds = 0.3  # also how long compressing and uploading take
    f = _upload(client, tmp_path, chat_jsonl(12))
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, n_epochs=2, batch_size=4, suffix="ok", lora=True)
    assert made.status == "pending" and made.output_name.startswith("sandbox/Meta-Llama-3.1-8B-Instruct-Reference-ok-")
    seen = set()

    def done() -> bool:
        j = client.fine_tuning.retrieve(made.id)
        seen.add(j.status)
        return j.status == "completed"

    wait_for(done, timeout=10, interval=0.005)
    assert {"running", "compressing", "uploading", "completed"} <= seen
    j = client.fine_tuning.retrieve(made.id)
    assert j.training_type.type == "Lora" and j.api_model_object_name == made.output_name
    types = [e.type for e in client.fine_tuning.list_events(made.id).data]
    assert types[0] == "job_pending" and types[-1] == "job_complete"
    assert types.count("checkpoint_save") == 2 and "training_start" in types and "model_upload_complete" in types
    rows = client.fine_tuning.list_metrics(made.id).metrics
    assert [int(r["train/global_step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["train/loss"] > 0 for r in rows)
    listed = client.fine_tuning.list_checkpoints(made.id).data
    assert [(c.step, c.checkpoint_type, c.checkpoint) for c in listed] == [
        (3, "Intermediate (step 3)", "adapter"), (6, "Final Merged", "model"), (6, "Final Adapter", "adapter"),
    ]
    assert [c.object_name for c in listed[1:]] == [made.output_name, f"{made.output_name}-adapter"]
    assert [m.name for m in client.models.list()] == [made.output_name]


def test_full_training_and_dpo_are_start_options(client, tmp_path) -> None:  # noqa: ANN001
    f = _upload(client, tmp_path, chat_jsonl(12))
    full = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, lora=False)
    assert full.training_type.type == "Full"
    with pytest.raises(ValueError, match="Full training is not supported"):
        client.fine_tuning.create(training_file=f.id, model=LLAMA_70B, lora=False)  # the SDK reads the limits first
    p = _upload(client, tmp_path, dpo_jsonl(12), "prefs.jsonl")
    dpo = client.fine_tuning.create(training_file=p.id, model=LLAMA_8B, training_method="dpo", dpo_beta=0.2)
    assert dpo.training_method.method == "dpo" and dpo.training_method.dpo_beta == 0.2
    with pytest.raises(together.BadRequestError, match="suffix"):
        client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, suffix="x" * 41)
    with pytest.raises(together.NotFoundError):
        client.fine_tuning.create(training_file=f.id, model="no/such-model")


def test_full_training_lists_one_final_checkpoint(client, tmp_path, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.queued_seconds = 0.05
    f = _upload(client, tmp_path, chat_jsonl(12))
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, n_epochs=2, lora=False)
    assert [c.checkpoint_type for c in client.fine_tuning.list_checkpoints(made.id).data if c.checkpoint_type.startswith("Final")] == []
    wait_for(lambda: client.fine_tuning.retrieve(made.id).status == "completed", timeout=10)
    total = client.fine_tuning.retrieve(made.id).total_steps
    listed = client.fine_tuning.list_checkpoints(made.id).data
    half = total // 2
    assert [(c.step, c.checkpoint_type, c.checkpoint) for c in listed] == [(half, f"Intermediate (step {half})", "model"), (total, "Final", "model")]


def test_cancel_answers_cancel_requested_then_cancelled(client, tmp_path, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 1
    together_sandbox.state.timing.queued_seconds = 0.3
    f = _upload(client, tmp_path, chat_jsonl(12))
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B)
    assert client.fine_tuning.cancel(made.id).status == "cancel_requested"
    wait_for(lambda: client.fine_tuning.retrieve(made.id).status == "cancelled")
    types = [e.type for e in client.fine_tuning.list_events(made.id).data]
    assert types.count("cancel_requested") == 1 and types[-1] == "job_stopped"
    with pytest.raises(together.BadRequestError):
        client.fine_tuning.cancel(made.id)


def test_models_need_a_project_and_a_full_training_model_a_deployment(client, tmp_path, together_sandbox) -> None:  # noqa: ANN001, F811
    f = _upload(client, tmp_path, chat_jsonl(12))
    made = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, lora=False)
    wait_for(lambda: client.fine_tuning.retrieve(made.id).status == "completed")
    no_project = together.Together(api_key=API_KEY, base_url=together_sandbox.url, project_id="", max_retries=0)
    with pytest.raises(ValueError, match="project_id"):
        list(no_project.models.list())
    with pytest.raises(together.NotFoundError):
        list(client.models.list(project_id="proj_other"))
    with pytest.raises(together.BadRequestError, match="dedicated endpoint"):
        client.chat.completions.create(model=made.output_name, messages=[{"role": "user", "content": "hi"}])
    httpx.post(f"{together_sandbox.url}/_sandbox/deployments", json={"model": made.output_name}).raise_for_status()
    answer = client.chat.completions.create(model=made.output_name, messages=[{"role": "user", "content": "hi"}])
    assert "You asked: hi" in answer.choices[0].message.content
    (model,) = list(client.models.list())
    with pytest.raises(together.BadRequestError, match="deployment"):
        client.models.delete(model.id)
    httpx.request("DELETE", f"{together_sandbox.url}/_sandbox/deployments", json={"model": made.output_name}).raise_for_status()
    client.models.delete(model.id)
    assert list(client.models.list()) == []


def test_one_state_can_drive_both_sandboxes(tmp_path) -> None:  # noqa: ANN001
    state = SandboxState(timing=FAST)
    openai_side = SandboxServer(state=state).start()
    together_side = TogetherSandboxServer(state=state).start()
    try:
        assert together_side.state is openai_side.state
        httpx.post(f"{together_side.url}/_sandbox/faults", json={"rate": 1.0, "kinds": ["503"]}).raise_for_status()
        r = httpx.get(f"{openai_side.url}/models", headers={"Authorization": "Bearer k"})
        assert r.status_code == 503  # the control reached the shared state
        r = httpx.get(f"{together_side.url}/v1/fine-tunes", headers={"Authorization": "Bearer k"})
        assert r.status_code == 503
        httpx.request("DELETE", f"{together_side.url}/_sandbox/faults").raise_for_status()
        assert json.loads(httpx.get(f"{together_side.url}/v1/fine-tunes", headers={"Authorization": "Bearer k"}).text) == {"data": []}
    finally:
        openai_side.stop()
        together_side.stop()


def test_a_lora_adapter_on_a_serverless_base_answers_without_a_deployment(client, tmp_path, together_sandbox) -> None:  # noqa: ANN001, F811
    f = _upload(client, tmp_path, chat_jsonl(12))
    on_list = client.fine_tuning.create(training_file=f.id, model=LLAMA_8B, lora=True)
    off_list = client.fine_tuning.create(training_file=f.id, model="Qwen/Qwen2.5-7B-Instruct", lora=True)
    for made in (on_list, off_list):
        wait_for(lambda made=made: client.fine_tuning.retrieve(made.id).status == "completed")
    answer = client.chat.completions.create(model=on_list.output_name, messages=[{"role": "user", "content": "hi"}])
    assert "You asked: hi" in answer.choices[0].message.content
    # LoRA on a base outside Together's serverless-LoRA list still needs an endpoint.
    with pytest.raises(together.BadRequestError, match="dedicated endpoint"):
        client.chat.completions.create(model=off_list.output_name, messages=[{"role": "user", "content": "hi"}])
