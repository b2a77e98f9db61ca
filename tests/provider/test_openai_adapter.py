"""Every adapter operation through the real `openai` client against the sandbox over HTTP."""

from __future__ import annotations

import pytest

from bot.provider import (
    DailyJobLimit,
    JobSpec,
    JobStatus,
    ProviderAuthError,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderPermissionError,
    ProviderRateLimited,
    ProviderUnavailable,
    is_final,
)
from bot.provider.openai_adapter import OpenAIProvider
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, dpo_jsonl

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def provider(sandbox) -> OpenAIProvider:  # noqa: ANN001
    return OpenAIProvider(api_key="sk-test", base_url=sandbox.url, max_retries=2, timeout=5)


def test_files_upload_list_retrieve_content_delete(provider: OpenAIProvider) -> None:
    f = provider.upload_file(chat_jsonl(), "train.jsonl")
    assert f.id.startswith("file-") and f.filename == "train.jsonl" and f.bytes == len(chat_jsonl())
    assert f.id in [x.id for x in provider.list_files(purpose="fine-tune")]
    assert provider.get_file(f.id).bytes == f.bytes
    assert provider.file_content(f.id) == chat_jsonl()
    assert provider.delete_file(f.id) is True
    with pytest.raises(ProviderNotFound):
        provider.get_file(f.id)


def test_large_files_go_through_the_uploads_api_in_parts(sandbox, tmp_path) -> None:  # noqa: ANN001
    # The threshold is lowered so a small file takes the >512 MB path; the parts are real HTTP calls.
    p = OpenAIProvider(api_key="sk-test", base_url=sandbox.url, files_api_limit=1000, upload_part_size=700)
    data = chat_jsonl(40)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    sandbox.state.requests.clear()
    f = p.upload_file(path, "big.jsonl")
    assert sandbox.state.requests.get("add_part") == -(-len(data) // 700)
    assert sandbox.state.requests.get("create_file") is None
    assert p.file_content(f.id) == data and f.bytes == len(data)


def test_job_lifecycle_supervised(provider: OpenAIProvider) -> None:
    f = provider.upload_file(chat_jsonl(), "train.jsonl")
    v = provider.upload_file(chat_jsonl(), "valid.jsonl")
    job = provider.create_job(
        JobSpec(model=MODEL, training_file=f.id, validation_file=v.id, hyperparameters={"n_epochs": 2, "batch_size": 3, "learning_rate_multiplier": 0.5}, suffix="sup", seed=42),
        idempotency_key="key-sup",
    )
    assert job.status == JobStatus.VALIDATING_FILES and job.method == "supervised"
    assert job.hyperparameters == {"n_epochs": 2, "batch_size": 3, "learning_rate_multiplier": 0.5}
    assert job.seed == 42 and job.suffix == "sup"
    assert provider.find_job_by_key("key-sup").id == job.id
    assert provider.find_job_by_key("other") is None
    done = wait_for(lambda: (j := provider.get_job(job.id)).is_final and j)
    assert done.status == "succeeded" and done.fine_tuned_model.startswith(f"ft:{MODEL}:sandbox:sup:") and done.finished_at >= done.created_at
    events = provider.new_events(job.id, None, page_size=5)
    assert events[0].message.startswith("Created fine-tuning job")  # oldest first
    assert events[-1].message == "The job has successfully completed"
    steps = [e.data["step"] for e in events if e.type == "metrics"]
    assert steps == list(range(1, 9))
    assert any("valid_loss" in (e.data or {}) for e in events if e.type == "metrics")
    # Down to a known id: only what is newer comes back.
    assert [e.id for e in provider.new_events(job.id, events[-4].id, page_size=2)] == [e.id for e in events[-3:]]
    assert provider.new_events(job.id, events[-1].id) == []
    assert [e.id for e in provider.list_events(job.id, limit=3)] == [e.id for e in reversed(events[-3:])]
    cks = provider.list_checkpoints(job.id)
    assert [c.step_number for c in cks] == [8, 4] and cks[0].model.endswith(":ckpt-step-8")
    assert cks[0].metrics["train_loss"] > 0
    assert job.id in [j.id for j in provider.list_jobs(limit=10).jobs]


def test_dpo_job_carries_beta(provider: OpenAIProvider) -> None:
    f = provider.upload_file(dpo_jsonl(), "prefs.jsonl")
    job = provider.create_job(JobSpec(model=MODEL, training_file=f.id, method="dpo", hyperparameters={"beta": 0.2}))
    assert job.method == "dpo" and job.hyperparameters["beta"] == 0.2


def test_cancel_pause_resume_and_unknown_status_is_text(provider: OpenAIProvider, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.2
    f = provider.upload_file(chat_jsonl(50), "train.jsonl")
    job = provider.create_job(JobSpec(model=MODEL, training_file=f.id))
    wait_for(lambda: provider.get_job(job.id).status == "running")
    paused = provider.pause_job(job.id)
    assert paused.status == "paused" and not is_final(paused.status)  # not in the spec's enum: plain text
    assert provider.resume_job(job.id).status == "queued"
    cancelled = provider.cancel_job(job.id)
    assert cancelled.status == "cancelled" and cancelled.is_final
    with pytest.raises(ProviderInvalidRequest, match="already cancelled"):
        provider.cancel_job(job.id)


def test_failed_job_reports_its_error(provider: OpenAIProvider) -> None:
    f = provider.upload_file(b'{"messages": []}\n' * 3, "bad.jsonl")
    job = provider.create_job(JobSpec(model=MODEL, training_file=f.id))
    failed = wait_for(lambda: (j := provider.get_job(job.id)).is_final and j)
    assert failed.status == "failed" and failed.error is not None and failed.error.param == "training_file"


def test_models_list_delete_and_completion(provider: OpenAIProvider) -> None:
    f = provider.upload_file(chat_jsonl(), "train.jsonl")
    job = provider.create_job(JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1}))
    name = wait_for(lambda: provider.get_job(job.id).fine_tuned_model)
    models = {m.id: m for m in provider.list_models()}
    assert models[name].is_fine_tuned and not models[MODEL].is_fine_tuned
    assert "You asked: hello there" in provider.complete(name, "hello there")
    reply = provider.chat(name, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "and now?"}])
    assert "You asked: and now?" in (reply.content or "") and reply.tool_calls == ()
    assert reply.prompt_tokens and reply.completion_tokens and reply.finish_reason == "stop"
    with pytest.raises(ProviderPermissionError):
        provider.delete_model(MODEL)
    assert provider.delete_model(name) is True
    with pytest.raises(ProviderNotFound):
        provider.delete_model(name)
    with pytest.raises(ProviderNotFound):
        provider.complete(name, "hi")


def test_errors_become_our_types(sandbox) -> None:  # noqa: ANN001
    sandbox.state.api_key = "sk-right"
    with pytest.raises(ProviderAuthError, match="OPENAI_API_KEY"):
        OpenAIProvider(api_key="sk-wrong", base_url=sandbox.url).list_models()
    sandbox.state.api_key = None
    p = OpenAIProvider(api_key="sk-x", base_url=sandbox.url)
    with pytest.raises(ProviderNotFound):
        p.get_job("ftjob-nope")
    with pytest.raises(ProviderInvalidRequest, match="training_file"):
        p.create_job(JobSpec(model=MODEL, training_file="file-nope"))
    dead = OpenAIProvider(api_key="sk-x", base_url="http://127.0.0.1:9/v1", max_retries=0, timeout=1)
    with pytest.raises(ProviderUnavailable, match="unreachable"):
        dead.list_models()


def test_daily_limit_is_reported_not_retried(provider: OpenAIProvider, sandbox) -> None:  # noqa: ANN001
    sandbox.state.daily_job_limit = 1
    f = provider.upload_file(chat_jsonl(), "train.jsonl")
    provider.create_job(JobSpec(model=MODEL, training_file=f.id))
    sandbox.state.requests.clear()
    with pytest.raises(DailyJobLimit, match="daily limit of 1 fine-tuning jobs for gpt-4o-mini"):
        provider.create_job(JobSpec(model=MODEL, training_file=f.id))
    assert sandbox.state.requests["create_job"] == 1


def test_injected_faults_surface_after_the_clients_retries(provider: OpenAIProvider, sandbox) -> None:  # noqa: ANN001
    # Every request fails: the client retries twice (3 requests), then we see our own error type.
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("503",)
    sandbox.state.requests.clear()
    with pytest.raises(ProviderUnavailable, match="server error"):
        provider.list_models()
    assert sandbox.state.requests["list_models"] == 3
    sandbox.state.faults.kinds = ("429",)
    sandbox.state.faults.retry_after = 0.05
    with pytest.raises(ProviderRateLimited) as err:
        provider.list_models()
    assert err.value.retry_after == 0.05
    # Transient faults (some requests) are absorbed by the retries.
    sandbox.state.faults.kinds = ("500", "429")
    sandbox.state.faults.remaining = 2
    assert MODEL in {m.id for m in provider.list_models()}


def test_slow_answers_time_out_as_unavailable(sandbox) -> None:  # noqa: ANN001
    p = OpenAIProvider(api_key="sk-x", base_url=sandbox.url, max_retries=0, timeout=0.3)
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("slow",)
    sandbox.state.faults.slow_seconds = 1.0
    # The client's timeout (not the slow answer arriving late) ended the call: no timing asserted.
    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        p.list_models()


def test_create_is_not_duplicated_when_the_answer_is_lost(provider: OpenAIProvider, sandbox) -> None:  # noqa: ANN001
    # The first create is carried out but its answer is lost (500): the retry looks the key up
    # first, finds the job and creates no second one.
    f = provider.upload_file(chat_jsonl(), "train.jsonl")
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("lost",)
    sandbox.state.faults.path_contains = "/fine_tuning/jobs"
    sandbox.state.faults.remaining = 1
    job = provider.create_job(JobSpec(model=MODEL, training_file=f.id), idempotency_key="once")
    assert [j.id for j in provider.list_jobs(limit=50).jobs] == [job.id]


def test_download_file_streams_to_disk(provider, tmp_path) -> None:  # noqa: ANN001
    content = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n' * 50
    f = provider.upload_file(content, "dl.jsonl")
    dest = tmp_path / "dl.jsonl"
    assert provider.download_file(f.id, dest) == len(content) and dest.read_bytes() == content
