"""VertexProvider, with the real google-genai and google-cloud-storage clients, against the Vertex
sandbox and its storage emulator over HTTP."""

from __future__ import annotations

import json

import pytest

from bot.provider.base import (
    JobSpec,
    ProviderInvalidRequest,
    ProviderNotFound,
    ProviderUnavailable,
    ProviderUnsupported,
)
from bot.provider.vertex_adapter import KEY_LABEL, PAUSE_REASON, VertexProvider, key_label
from bot.sandbox import learned
from bot.sandbox.vertex_server import Fault
from bot.sandbox.vertex_state import ManualClock
from tests.conftest import wait_for
from tests.vertex_sandbox import (  # noqa: F401
    FLASH,
    _vertex_server,
    gemini_chat,
    make_provider,
    openai_chat,
    vertex_sandbox,
)


@pytest.fixture
def provider(vertex_sandbox) -> VertexProvider:  # noqa: ANN001, F811
    return make_provider(vertex_sandbox)


def _start(p: VertexProvider, *, content: bytes | None = None, key: str | None = None, **spec) -> str:  # noqa: ANN003
    f = p.upload_file(content or openai_chat(20), "train.jsonl")
    spec.setdefault("hyperparameters", {"n_epochs": 2, "adapter": 4})
    return p.create_job(JobSpec(model=spec.pop("model", FLASH), training_file=f.id, **spec), idempotency_key=key).id


def _finish(p: VertexProvider, job_id: str):  # noqa: ANN202
    return wait_for(lambda: (j := p.get_job(job_id)).is_final and j)


def test_upload_converts_openai_chat_into_the_bucket(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    data = openai_chat(3)
    f = provider.upload_file(data, "support v2.jsonl")
    assert f.id.startswith(f"gs://{vertex_sandbox.bucket}/tests/datasets/") and f.id.endswith("/support_v2.jsonl")
    stored = vertex_sandbox.storage.read(vertex_sandbox.bucket, f.id.split("/", 3)[3])
    first = json.loads(stored.splitlines()[0])
    assert first == {
        "systemInstruction": {"parts": [{"text": "Answer briefly."}]},
        "contents": [{"role": "user", "parts": [{"text": "q question 0?"}]}, {"role": "model", "parts": [{"text": "answer 0 for q"}]}],
    }
    assert provider.file_content(f.id) == stored and f.bytes == len(stored) and len(stored.splitlines()) == 3
    # The same file again: one object (its name is the source's hash).
    assert provider.upload_file(data, "support v2.jsonl").id == f.id
    assert f.id in {x.id for x in provider.list_files()}
    assert provider.get_file(f.id).filename == "support v2.jsonl"


def test_a_gemini_file_is_taken_as_it_is(provider, vertex_sandbox, tmp_path) -> None:  # noqa: ANN001, F811
    data = gemini_chat(4)
    path = tmp_path / "g.jsonl"
    path.write_bytes(data)
    f = provider.upload_file(path, "g.jsonl")
    assert provider.file_content(f.id) == data
    assert provider.delete_file(f.id)
    with pytest.raises(ProviderNotFound):
        provider.get_file(f.id)


def test_an_unconvertible_file_is_refused_by_line_before_anything_is_uploaded(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    good = openai_chat(2).decode().splitlines()
    tool = {"messages": [{"role": "user", "content": "weather?"}, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "w", "arguments": "{}"}}]}]}
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, {"role": "assistant", "content": "a cat"}]}
    data = "\n".join([good[0], json.dumps(tool), good[1], json.dumps(image)]).encode()
    before = set(x.id for x in provider.list_files())
    with pytest.raises(ProviderInvalidRequest) as err:
        provider.upload_file(data, "mixed.jsonl")
    assert "line 2:" in err.value.reason and "tool call" in err.value.reason
    assert "line 4:" in err.value.reason and "image" in err.value.reason
    assert {x.id for x in provider.list_files()} == before


def test_a_job_goes_through_vertex_states_to_a_tuned_model_that_learned_its_data(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    t = vertex_sandbox.world.timing
    t.step_seconds, t.queued_seconds, t.validating_seconds = 1, 10, 10
    clock = vertex_sandbox.world.clock = ManualClock()
    job_id = _start(provider, suffix="support", key="T1:start-1")
    seen: list[tuple[str, str | None]] = []
    events: list = []
    known = None
    while True:  # a poller's view, one poll per second of Vertex's time
        j = provider.get_job(job_id)
        seen.append((j.status, j.metadata.get("vertex_tuning_job_state")))
        new = provider.new_events(job_id, known)
        events.extend(e for e in new if e.id not in {x.id for x in events})
        if new:
            known = max(e.id for e in new)
        if j.is_final:
            break
        clock.advance(1)
    assert j.status == "succeeded" and j.suffix == "support"
    assert ("queued", "TUNING_JOB_STATE_WAITING_FOR_QUOTA") in seen and ("running", "TUNING_JOB_STATE_TUNING") in seen
    assert ("running", "TUNING_JOB_STATE_PROCESSING_DATASET") in seen and ("running", "TUNING_JOB_STATE_POST_PROCESSING") in seen
    m = j.metadata
    assert m["vertex_state"] == "JOB_STATE_SUCCEEDED" and m["vertex_completed_epochs"] == "2"
    assert m["vertex_dataset_examples"] == "20" and m["vertex_total_steps"] == m["vertex_completed_steps"] == "6"
    assert j.trained_tokens == int(m["vertex_billable_tokens"]) * 2 > 0
    assert m["vertex_cost"].startswith("unknown:") and m["vertex_metrics"].startswith("unavailable:") and m["vertex_experiment"] in m["vertex_metrics"]
    assert j.fine_tuned_model and "/models/" in j.fine_tuned_model and "@" not in j.fine_tuned_model
    # The story, in order, each event once: created, the detail states seen, the dataset, epochs, the end.
    ids = [e.id for e in events]
    assert ids[0] == "vx00000000-created" and ids[-1] == "vx30000000-succeeded" and len(ids) == len(set(ids))
    assert [e.message for e in events if e.id.endswith("-epoch")] == ["Epoch 1/2 completed (step 3/6).", "Epoch 2/2 completed (step 6/6)."]
    assert any("Experiments run" in e.message for e in events) and any("20 examples" in e.message for e in events)
    assert provider.new_events(job_id, ids[-1]) == [e for e in provider.new_events(job_id, None) if e.id.endswith(("-dataset", "-metrics-unavailable"))]
    # Checkpoints from tuned_model.checkpoints, one an epoch, each on its own endpoint.
    cks = provider.list_checkpoints(job_id)
    assert [(c.step_number, c.label) for c in cks] == [(3, "Epoch 1"), (6, "Epoch 2")]
    assert cks[-1].model == m["vertex_endpoint"] and cks[0].model != cks[-1].model
    # The tuned endpoint answers its training prompts with the trained answers; the base does not.
    vertex_sandbox.world.memory.noise = 0.0
    ask = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "q question 7?"}]
    reply = provider.chat(j.fine_tuned_model, ask)
    assert reply.content == "answer 7 for q" and reply.finish_reason == "stop" and reply.prompt_tokens
    assert provider.chat(cks[0].model, ask).content == "answer 7 for q"
    assert provider.chat(FLASH, ask).content != "answer 7 for q"
    # Listed, deleted, gone.
    assert j.fine_tuned_model in {x.id for x in provider.list_models()}
    assert provider.delete_model(j.fine_tuned_model)
    assert j.fine_tuned_model not in {x.id for x in provider.list_models()}
    with pytest.raises(ProviderNotFound):
        provider.chat(m["vertex_endpoint"], ask)


def test_a_tuned_model_is_found_by_a_fresh_adapter(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    j = _finish(provider, _start(provider))
    fresh = make_provider(vertex_sandbox)  # a restarted worker: no endpoint remembered
    vertex_sandbox.world.memory.noise = 0.0
    assert fresh.chat(j.fine_tuned_model, [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "q question 1?"}]).content == "answer 1 for q"


def test_cancel_goes_through_cancelling(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    vertex_sandbox.world.timing.queued_seconds = 10
    clock = vertex_sandbox.world.clock = ManualClock()
    job_id = _start(provider)
    j = provider.cancel_job(job_id)
    assert j.status == "cancelling" and j.metadata["vertex_state"] == "JOB_STATE_CANCELLING"
    clock.advance(10)
    j = provider.get_job(job_id)
    assert j.status == "cancelled" and j.error is None and j.fine_tuned_model is None
    assert provider.new_events(job_id, None)[-1].id == "vx30000000-cancelled"
    with pytest.raises(ProviderInvalidRequest, match="Cannot cancel"):
        provider.cancel_job(job_id)


def test_a_failed_job_carries_vertex_error(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    vertex_sandbox.world.timing.step_seconds = 5
    job_id = _start(provider)
    vertex_sandbox.world.fail(job_id, "Internal error occurred: the tuning pipeline crashed.")
    j = _finish(provider, job_id)
    assert j.status == "failed" and j.error is not None
    assert (j.error.code, j.error.message) == ("13", "Internal error occurred: the tuning pipeline crashed.")
    last = provider.new_events(job_id, None)[-1]
    assert last.level == "error" and "pipeline crashed" in last.message


def test_bad_data_fails_the_job_while_processing_the_dataset(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(gemini_chat(3), "ok.jsonl")
    # An object that is not there (deleted after upload): Vertex fails the job, not the creation.
    provider.delete_file(f.id)
    j = _finish(provider, provider.create_job(JobSpec(model=FLASH, training_file=f.id)).id)
    assert j.status == "failed" and j.error.code == "3" and "does not exist" in j.error.message


def test_a_lost_creation_answer_makes_one_job_found_by_its_labels(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(openai_chat(12), "train.jsonl")
    spec = JobSpec(model=FLASH, training_file=f.id, hyperparameters={"n_epochs": 1})
    for kind in ("drop", "lost"):
        vertex_sandbox.world.reset()
        vertex_sandbox.app.faults.clear()
        vertex_sandbox.app.faults.append(Fault(kind, "/tuningJobs", "POST", 1))
        job = provider.create_job(spec, idempotency_key=f"T1:lost-{kind}")
        assert len(vertex_sandbox.world.jobs) == 1, kind
        assert job.id == next(iter(vertex_sandbox.world.jobs))
        assert vertex_sandbox.world.requests["create_job"] == 1
        assert provider.find_job_by_key(f"T1:lost-{kind}").id == job.id
        assert vertex_sandbox.world.jobs[job.id].labels[KEY_LABEL] == key_label(f"T1:lost-{kind}")
    # Without a key there is nothing to look for: the loss is reported, never a second job made blindly.
    vertex_sandbox.world.reset()
    vertex_sandbox.app.faults.append(Fault("drop", "/tuningJobs", "POST", 3))
    with pytest.raises(ProviderUnavailable):
        provider.create_job(spec)
    assert vertex_sandbox.world.requests["create_job"] == 3


def test_the_adapter_refuses_what_vertex_would_before_calling_it(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(gemini_chat(3), "ok.jsonl")
    cases = [
        (JobSpec(model="gpt-4o-mini-2024-07-18", training_file=f.id), "tunes gemini-3.5-flash"),
        (JobSpec(model=FLASH, training_file="file-abc123"), "gs:// object"),
        (JobSpec(model=FLASH, training_file=f.id, hyperparameters={"adapter": 3}), "adapter must be 1, 2, 4, 8 or 16"),
        (JobSpec(model=FLASH, training_file=f.id, hyperparameters={"batch_size": 8}), "does not take batch_size"),
        (JobSpec(model=FLASH, training_file=f.id, seed=7), "no random seed"),
        (JobSpec(model=FLASH, training_file=f.id, method="dpo"), "supervised tuning"),
    ]
    for spec, reason in cases:
        with pytest.raises(ProviderInvalidRequest, match=reason):
            provider.create_job(spec)
    assert vertex_sandbox.world.requests.get("create_job", 0) == 0
    with pytest.raises(ProviderUnsupported, match="cannot pause"):
        provider.pause_job("123")
    assert provider.steer_refusal("pause", None, None) == PAUSE_REASON  # type: ignore[arg-type]
    with pytest.raises(ProviderNotFound):
        provider.get_job("999")


def test_vertex_refusals_reach_the_user_as_its_words(vertex_sandbox) -> None:  # noqa: ANN001, F811
    """What the adapter lets through but Vertex refuses: a region without tuning, another project."""
    other_region = make_provider(vertex_sandbox, location="europe-west4")
    f = other_region.upload_file(gemini_chat(3), "ok.jsonl")
    assert other_region.get_job(other_region.create_job(JobSpec(model=FLASH, training_file=f.id)).id).status == "queued"
    stranger = make_provider(vertex_sandbox)
    stranger.project = "someone-else"
    stranger._clients.clear()
    stranger.client = stranger._client(stranger.location)
    with pytest.raises(Exception) as err:
        stranger.create_job(JobSpec(model=FLASH, training_file=f.id))
    assert "Permission 'aiplatform.tuningJobs.create' denied" in str(err.value)


def test_list_jobs_pages_through_vertex_pages(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    f = provider.upload_file(gemini_chat(3), "ok.jsonl")
    made = [provider.create_job(JobSpec(model=FLASH, training_file=f.id)).id for _ in range(5)]
    first = provider.list_jobs(limit=2)
    assert [j.id for j in first.jobs] == made[::-1][:2] and first.has_more
    rest = provider.list_jobs(limit=10, after=first.jobs[-1].id)
    assert [j.id for j in rest.jobs] == made[::-1][2:] and not rest.has_more


def test_priced_cost_and_estimate(vertex_sandbox) -> None:  # noqa: ANN001, F811
    p = make_provider(vertex_sandbox, price_per_mtok=2.0)
    f = p.upload_file(openai_chat(20), "train.jsonl")
    spec = JobSpec(model=FLASH, training_file=f.id, hyperparameters={"n_epochs": 3})
    estimate = p.estimate_price(spec)
    assert estimate is not None and estimate > 0
    j = _finish(p, p.create_job(spec).id)
    tokens = int(j.metadata["vertex_billable_tokens"]) * 3
    assert j.metadata["vertex_cost"].startswith(f"{tokens * 2.0 / 1e6:.2f} USD") and "FTBOT_VERTEX_PRICE_PER_MTOK=2" in j.metadata["vertex_cost"]
    assert make_provider(vertex_sandbox).estimate_price(spec) is None


def test_forgotten_fraction_is_the_learned_models(provider, vertex_sandbox) -> None:  # noqa: ANN001, F811
    j = _finish(provider, _start(provider, content=openai_chat(40, system=None, tag="n")))
    vertex_sandbox.world.memory.noise = 0.5
    answers = [provider.chat(j.fine_tuned_model, [{"role": "user", "content": f"n question {i}?"}]).content for i in range(40)]
    forgotten = sum(a == learned.FORGOTTEN_ANSWER for a in answers)
    endpoint = j.metadata["vertex_endpoint"]
    expected = sum(learned.forgotten(endpoint, learned.prompt_key([{"role": "user", "content": f"n question {i}?"}]), 0.5) for i in range(40))
    assert forgotten == expected and 0 < forgotten < 40
