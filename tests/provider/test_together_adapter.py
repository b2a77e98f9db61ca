"""TogetherProvider, with the real `together` client, against the Together sandbox over HTTP."""

from __future__ import annotations

import httpx
import pytest

from bot.provider.base import (
    JobSpec,
    ProviderError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderRateLimited,
    ProviderUnavailable,
    ProviderUnsupported,
    is_final,
)
from bot.provider.together_adapter import PAUSE_REASON, TogetherProvider, map_status
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, dpo_jsonl
from tests.together_sandbox import LLAMA_8B, LLAMA_70B, _together_server, make_provider, together_sandbox  # noqa: F401


@pytest.fixture
def provider(together_sandbox) -> TogetherProvider:  # noqa: ANN001, F811
    return make_provider(together_sandbox, settle_seconds=0)


def _start(p: TogetherProvider, *, content: bytes | None = None, key: str | None = None, **spec) -> str:  # noqa: ANN003
    f = p.upload_file(content or chat_jsonl(12), "train.jsonl")
    spec.setdefault("hyperparameters", {"n_epochs": 2, "batch_size": 4})
    return p.create_job(JobSpec(model=spec.pop("model", LLAMA_8B), training_file=f.id, **spec), idempotency_key=key).id


def test_upload_reaches_the_sandbox_byte_for_byte(provider, together_sandbox, tmp_path) -> None:  # noqa: ANN001, F811
    data = chat_jsonl(40) + b"\n" + '{"messages": [{"role": "user", "content": "\\u00e9 \u2713"}, {"role": "assistant", "content": "x"}]}'.encode()
    f = provider.upload_file(data, "my data (v2).jsonl")
    assert together_sandbox.state.file_content[f.id] == data
    assert provider.file_content(f.id) == data and f.bytes == len(data) and f.status == "completed"
    path = tmp_path / "on-disk.jsonl"
    path.write_bytes(data)
    g = provider.upload_file(path, "on-disk.jsonl")
    with path.open("rb") as fh:
        h = provider.upload_file(fh, "handle.jsonl")
    assert together_sandbox.state.file_content[g.id] == together_sandbox.state.file_content[h.id] == data
    assert {x.id for x in provider.list_files()} == {f.id, g.id, h.id}
    assert provider.get_file(g.id).filename == "on-disk.jsonl"
    assert provider.delete_file(g.id)
    with pytest.raises(ProviderNotFound):
        provider.get_file(g.id)


def test_status_mapping_and_finality() -> None:
    expected = {
        "pending": "queued", "queued": "queued", "running": "running", "compressing": "running",
        "uploading": "running", "cancel_requested": "cancelling", "cancelled": "cancelled",
        "error": "failed", "user_error": "failed", "completed": "succeeded", "warming_up": "warming_up",
    }
    assert {raw: map_status(raw) for raw in expected} == expected
    assert [s for s in set(expected.values()) if is_final(s)] and not is_final("cancelling") and not is_final("warming_up")
    assert all(is_final(s) for s in ("succeeded", "failed", "cancelled", "user_error", "completed"))


def test_a_job_runs_to_succeeded_with_its_model_and_checkpoints(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.queued_seconds = 0.3
    job_id = _start(provider, suffix="support")
    seen: list[tuple[str, str]] = []

    def done() -> bool:
        j = provider.get_job(job_id)
        seen.append((j.status, j.metadata.get("together_status", j.status)))
        return j.is_final

    wait_for(done, interval=0.005)
    j = provider.get_job(job_id)
    assert j.status == "succeeded" and j.fine_tuned_model and j.fine_tuned_model.startswith("sandbox/Meta-Llama-3.1-8B-Instruct-Reference-support-")
    assert ("running", "compressing") in seen and ("running", "uploading") in seen
    assert j.hyperparameters["training_type"] == "lora" and j.hyperparameters["n_epochs"] == 2
    assert j.method == "supervised" and j.finished_at and j.trained_tokens
    # LoRA (the default): the intermediate adapter, then the merged model and the adapter at the final step.
    assert [(c.id, c.step_number, c.label, c.adapter) for c in provider.list_checkpoints(job_id)] == [
        (f"{job_id}:3", 3, "Intermediate (step 3)", True),
        (f"{job_id}:6", 6, "Final Merged", False),
        (f"{job_id}:6:adapter", 6, "Final Adapter", True),
    ]
    merged, adapter = provider.list_checkpoints(job_id)[1:]
    assert merged.model == j.fine_tuned_model and adapter.model == f"{j.fine_tuned_model}-adapter"
    (model,) = provider.list_models()
    assert model.id == j.fine_tuned_model and model.is_fine_tuned and model.created >= j.created_at


def test_dpo_and_full_training_are_start_options(provider) -> None:  # noqa: ANN001
    dpo = provider.get_job(_start(provider, content=dpo_jsonl(12), method="dpo", hyperparameters={"beta": 0.3}))
    assert dpo.method == "dpo" and dpo.hyperparameters["beta"] == 0.3 and dpo.hyperparameters["training_type"] == "lora"
    full = provider.get_job(_start(provider, hyperparameters={"training_type": "full", "learning_rate": 2e-5}))
    assert full.hyperparameters["training_type"] == "full" and full.hyperparameters["learning_rate"] == 2e-5
    with pytest.raises(ProviderInvalidRequest, match="Full training is not supported"):
        _start(provider, model=LLAMA_70B, hyperparameters={"training_type": "full"})
    with pytest.raises(ProviderInvalidRequest, match="absolute learning_rate"):
        _start(provider, hyperparameters={"learning_rate_multiplier": 2})
    with pytest.raises(ProviderInvalidRequest, match="at most 40"):
        _start(provider, suffix="s" * 41)
    with pytest.raises(ProviderInvalidRequest, match="does not take"):
        _start(provider, hyperparameters={"temperature": 1})


def test_create_is_idempotent_on_its_key(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(chat_jsonl(12), "train.jsonl")
    spec = JobSpec(model=LLAMA_8B, training_file=f.id)
    assert provider.find_job_by_key("key-1") is None
    # The first answer is lost after the job was made: the retry finds it by key instead of making another.
    httpx.post(f"{together_sandbox.url}/_sandbox/faults", json={"rate": 1.0, "kinds": ["lost"], "path_contains": "/v1/fine-tunes", "method": "POST", "remaining": 1}).raise_for_status()
    job = provider.create_job(spec, idempotency_key="key-1")
    assert len(together_sandbox.world.jobs) == 1
    assert provider.find_job_by_key("key-1").id == job.id
    assert provider.find_job_by_key("key-2") is None


def test_cancel_goes_through_cancelling_to_cancelled_and_pause_is_unsupported(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 1
    together_sandbox.state.timing.queued_seconds = 0.3
    job_id = _start(provider)
    with pytest.raises(ProviderUnsupported) as exc:
        provider.pause_job(job_id)
    assert exc.value.reason == PAUSE_REASON and exc.value.kind == "unsupported" and "cancel it" in exc.value.reason
    with pytest.raises(ProviderUnsupported, match="cannot pause or resume"):
        provider.resume_job(job_id)
    j = provider.cancel_job(job_id)
    assert j.status == "cancelling" and not j.is_final
    wait_for(lambda: provider.get_job(job_id).status == "cancelled")
    messages = [e.type for e in provider.new_events(job_id, None)]
    assert messages.count("cancel_requested") == 1 and messages[-1] == "job_stopped"


def test_events_are_returned_once_across_restarts_with_metrics_merged(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 0.02
    job_id = _start(provider, hyperparameters={"n_epochs": 3, "batch_size": 1})  # 36 steps
    got: list = []
    last = None

    def poll() -> bool:
        nonlocal last
        # A fresh adapter each time: a restarted worker knows only the last stored id.
        fresh = make_provider(together_sandbox)
        new = fresh.new_events(job_id, last)
        got.extend(new)
        if new:
            last = new[-1].id
        return fresh.get_job(job_id).is_final and not fresh.new_events(job_id, last)

    wait_for(poll, timeout=15, interval=0.01)
    ids = [e.id for e in got]
    assert len(ids) == len(set(ids))  # nothing twice
    everything = provider.new_events(job_id, None)
    assert sorted(ids) == sorted(e.id for e in everything)  # nothing lost
    steps = [e.data["step"] for e in got if e.type == "metrics"]
    assert steps == list(range(1, 37))
    first = next(e for e in got if e.type == "metrics")
    assert first.id == "metrics-1" and first.data["total_steps"] == 36 and first.data["train_loss"] > 0
    assert first.message.startswith("Step 1/36: training loss=")
    assert got[0].type == "job_pending" and got[-1].type == "job_complete"
    assert provider.new_events(job_id, got[-1].id) == []
    # From an id in the middle, exactly what followed it.
    mid = len(everything) // 2
    assert provider.new_events(job_id, everything[mid].id) == everything[mid + 1 :]


def test_identical_events_get_distinct_stable_ids(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 5  # stays running
    job_id = _start(provider)
    wait_for(lambda: provider.get_job(job_id).status == "running")
    before = provider.new_events(job_id, None)
    httpx.post(f"{together_sandbox.url}/_sandbox/fine-tunes/{job_id}/events", json={"message": "Throughput is low", "count": 3}).raise_for_status()
    new = provider.new_events(job_id, before[-1].id)
    assert [e.message for e in new] == ["Throughput is low"] * 3 and len({e.id for e in new}) == 3
    assert [e.id for e in provider.new_events(job_id, None)] == [e.id for e in before + new]  # stable
    assert provider.new_events(job_id, new[1].id) == new[2:]


def test_the_newest_second_waits_until_it_is_complete(together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 30  # one quiet, running job
    p = make_provider(together_sandbox, settle_seconds=3600)
    job_id = _start(p)
    wait_for(lambda: p.get_job(job_id).status == "running")
    # Its events so far share a second or two; the newest second is held back while the job runs.
    everything = make_provider(together_sandbox, settle_seconds=0).new_events(job_id, None)
    newest = max(e.created_at for e in everything)
    assert p.new_events(job_id, None) == [e for e in everything if e.created_at < newest]


def test_models_need_a_project_id(together_sandbox) -> None:  # noqa: ANN001, F811
    p = make_provider(together_sandbox, project_id=None)
    with pytest.raises(ProviderError, match="TOGETHER_PROJECT_ID"):
        p.list_models()
    with pytest.raises(ProviderError, match="TOGETHER_PROJECT_ID"):
        p.delete_model("sandbox/x")


def test_a_lora_model_on_a_serverless_base_answers_at_once(provider) -> None:  # noqa: ANN001
    job_id = _start(provider, hyperparameters={"n_epochs": 1, "batch_size": 4, "training_type": "lora"})
    wait_for(lambda: provider.get_job(job_id).status == "succeeded")
    assert "You asked: hello" in provider.complete(provider.get_job(job_id).fine_tuned_model, "hello")


def test_delete_model_and_try_it(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    # Full training: Together serves the result only from a dedicated endpoint.
    job_id = _start(provider, hyperparameters={"n_epochs": 2, "batch_size": 8, "training_type": "full"})
    wait_for(lambda: provider.get_job(job_id).status == "succeeded")
    name = provider.get_job(job_id).fine_tuned_model
    with pytest.raises(ProviderInvalidRequest, match="dedicated endpoint") as exc:
        provider.complete(name, "hello")
    assert name in exc.value.reason
    httpx.post(f"{together_sandbox.url}/_sandbox/deployments", json={"model": name}).raise_for_status()
    assert "You asked: hello" in provider.complete(name, "hello")
    reply = provider.chat(name, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "again"}])
    assert "You asked: again" in (reply.content or "") and reply.prompt_tokens and reply.completion_tokens
    with pytest.raises(ProviderInvalidRequest, match="active deployment"):
        provider.delete_model(name)
    httpx.request("DELETE", f"{together_sandbox.url}/_sandbox/deployments", json={"model": name}).raise_for_status()
    assert provider.delete_model(name)
    assert provider.list_models() == []
    with pytest.raises(ProviderNotFound):
        provider.delete_model(name)


@pytest.mark.parametrize(("kind", "error"), [("500", ProviderUnavailable), ("503", ProviderUnavailable), ("429", ProviderRateLimited)])
def test_faults_map_to_our_errors(provider, together_sandbox, kind, error) -> None:  # noqa: ANN001, F811
    job_id = _start(provider)
    httpx.post(f"{together_sandbox.url}/_sandbox/faults", json={"rate": 1.0, "kinds": [kind], "retry_after": 0.1}).raise_for_status()
    for call in (lambda: provider.get_job(job_id), lambda: provider.new_events(job_id, None), lambda: provider.upload_file(chat_jsonl(12), "t.jsonl")):
        with pytest.raises(error) as exc:
            call()
        assert exc.value.retryable
    httpx.request("DELETE", f"{together_sandbox.url}/_sandbox/faults").raise_for_status()
    assert provider.get_job(job_id).id == job_id


def test_retries_ride_out_a_short_outage(together_sandbox) -> None:  # noqa: ANN001, F811
    p = make_provider(together_sandbox, max_retries=2)
    job_id = _start(p)
    httpx.post(f"{together_sandbox.url}/_sandbox/faults", json={"rate": 1.0, "kinds": ["429"], "retry_after": 0.05, "remaining": 2}).raise_for_status()
    assert p.get_job(job_id).id == job_id


def test_unknown_ids_wrong_key_and_unknown_status(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    with pytest.raises(ProviderNotFound):
        provider.get_job("ft-00000000-0000-0000-0000-000000000000")
    bad = TogetherProvider("wrong-key", together_sandbox.url, max_retries=0)
    with pytest.raises(ProviderError, match="TOGETHER_API_KEY"):
        bad.list_jobs()
    together_sandbox.state.timing.step_seconds = 5
    job_id = _start(provider)
    httpx.post(f"{together_sandbox.url}/_sandbox/fine-tunes/{job_id}/status", json={"status": "warming_up"}).raise_for_status()
    j = provider.get_job(job_id)
    assert j.status == "warming_up" and not j.is_final
    assert [x.status for x in provider.list_jobs().jobs] == ["warming_up"]


def test_a_failed_job_carries_the_reason_from_its_events(provider) -> None:  # noqa: ANN001
    job_id = _start(provider, content=b'{"messages": [{"role": "user", "content": "no answer"}]}\n' * 12)
    wait_for(lambda: provider.get_job(job_id).is_final)
    j = provider.get_job(job_id)
    assert j.status == "failed" and j.metadata["together_status"] == "user_error"
    assert j.error and "has no assistant message" in j.error.message


def test_price_estimate_comes_from_together(provider, together_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(chat_jsonl(40), "train.jsonl")
    lora = provider.estimate_price(JobSpec(model=LLAMA_8B, training_file=f.id, hyperparameters={"n_epochs": 2}))
    full = provider.estimate_price(JobSpec(model=LLAMA_8B, training_file=f.id, hyperparameters={"n_epochs": 2, "training_type": "full"}))
    assert lora is not None and full is not None and 0 < lora < full
    assert provider.estimate_price(JobSpec(model=LLAMA_8B, training_file="file-unknown")) is None


def test_a_validation_file_brings_validation_loss(provider) -> None:  # noqa: ANN001
    v = provider.upload_file(chat_jsonl(12), "valid.jsonl")
    job_id = _start(provider, validation_file=v.id)
    wait_for(lambda: provider.get_job(job_id).is_final)
    metrics = [e.data for e in provider.new_events(job_id, None) if e.type == "metrics"]
    assert any(d.get("valid_loss") for d in metrics)
    plain = _start(provider)
    wait_for(lambda: provider.get_job(plain).is_final)
    assert not any(e.data.get("valid_loss") for e in provider.new_events(plain, None) if e.type == "metrics")


def test_download_file_streams_to_disk(provider, tmp_path) -> None:  # noqa: ANN001
    content = b"".join(b'{"messages": [{"role": "user", "content": "q%d"}, {"role": "assistant", "content": "a"}]}\n' % i for i in range(50))
    f = provider.upload_file(content, "dl.jsonl")
    dest = tmp_path / "dl.jsonl"
    assert provider.download_file(f.id, dest) == len(content) and dest.read_bytes() == content
