"""The sandbox over raw HTTP: OpenAI's shapes, pagination, event order and `after` semantics."""

from __future__ import annotations

import json
import urllib.request

from openai.types import FileObject, Model
from openai.types.fine_tuning import FineTuningJob, FineTuningJobEvent
from openai.types.fine_tuning.jobs import FineTuningJobCheckpoint

from tests.conftest import wait_for
from tests.helpers import chat_jsonl


def _req(sandbox, method: str, path: str, body: dict | None = None, raw: bytes | None = None, ctype: str = "application/json"):  # noqa: ANN001
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(sandbox.url.removesuffix("/v1") + path, data=data, method=method, headers={"Authorization": "Bearer sk-x", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _upload(sandbox, content: bytes, name: str = "train.jsonl") -> str:  # noqa: ANN001
    return sandbox.state.add_file(name, content, "fine-tune")["id"]


def _create(sandbox, fid: str, **extra) -> dict:  # noqa: ANN001, ANN003
    status, job = _req(sandbox, "POST", "/v1/fine_tuning/jobs", {"model": "gpt-4o-mini-2024-07-18", "training_file": fid, **extra})
    assert status == 200, job
    return job


def test_job_runs_to_success_and_every_object_parses_strictly(sandbox) -> None:  # noqa: ANN001
    fid = _upload(sandbox, chat_jsonl(12))
    job = _create(sandbox, fid, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 4}}}, suffix="s1")
    FineTuningJob.model_validate(job)
    assert job["status"] == "validating_files"
    done = wait_for(lambda: (j := _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}")[1])["status"] == "succeeded" and j)
    FineTuningJob.model_validate(done)
    assert done["fine_tuned_model"].startswith("ft:gpt-4o-mini-2024-07-18:sandbox:s1:")
    assert done["finished_at"] >= done["created_at"] and len(done["result_files"]) == 1 and done["result_files"][0].startswith("file-")
    _, events = _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}/events?limit=100")
    for e in events["data"]:
        FineTuningJobEvent.model_validate(e)
    messages = [e["message"] for e in reversed(events["data"])]  # oldest first
    assert messages[0].startswith("Created fine-tuning job")
    assert "Fine-tuning job started" in messages
    assert messages[-1] == "The job has successfully completed"
    metrics = [e for e in reversed(events["data"]) if e["type"] == "metrics"]
    assert [m["data"]["step"] for m in metrics] == list(range(1, 7))  # 2 epochs x ceil(12/4)
    assert metrics[0]["data"]["train_loss"] > metrics[-1]["data"]["train_loss"]  # loss falls
    _, cks = _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}/checkpoints")
    assert [c["step_number"] for c in cks["data"]] == [6, 3]  # newest first, one per epoch
    for c in cks["data"]:
        FineTuningJobCheckpoint.model_validate(c)
    _, result = _req(sandbox, "GET", f"/v1/files/{done['result_files'][0]}")
    FileObject.model_validate(result)
    _, models = _req(sandbox, "GET", "/v1/models")
    for m in models["data"]:
        Model.model_validate(m)
    assert done["fine_tuned_model"] in {m["id"] for m in models["data"]}


def test_running_job_has_estimated_finish(sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.5
    fid = _upload(sandbox, chat_jsonl(40))
    job = _create(sandbox, fid)
    running = wait_for(lambda: (j := _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}")[1])["status"] == "running" and j)
    assert running["estimated_finish"] > running["created_at"]


def test_events_newest_first_and_after_means_older(sandbox) -> None:  # noqa: ANN001
    fid = _upload(sandbox, chat_jsonl(12))
    job = _create(sandbox, fid, method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 1}}})
    wait_for(lambda: _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}")[1]["status"] == "succeeded")
    _, everything = _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}/events?limit=1000")
    all_ids = [e["id"] for e in everything["data"]]
    created = [e["created_at"] for e in everything["data"]]
    assert created == sorted(created, reverse=True)
    assert everything["has_more"] is False
    paged, after = [], None
    while True:
        q = f"?limit=7&after={after}" if after else "?limit=7"
        _, page = _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}/events{q}")
        paged += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        after = page["data"][-1]["id"]
    assert paged == all_ids
    _, older = _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}/events?limit=3&after={all_ids[5]}")
    assert [e["id"] for e in older["data"]] == all_ids[6:9]


def test_job_list_cursor_pagination_and_metadata_filter(sandbox) -> None:  # noqa: ANN001
    fid = _upload(sandbox, chat_jsonl(12))
    ids = [_create(sandbox, fid, metadata={"n": str(i)})["id"] for i in range(5)]
    _, first = _req(sandbox, "GET", "/v1/fine_tuning/jobs?limit=2")
    assert [j["id"] for j in first["data"]] == ids[::-1][:2] and first["has_more"]
    _, second = _req(sandbox, "GET", f"/v1/fine_tuning/jobs?limit=2&after={first['data'][-1]['id']}")
    assert [j["id"] for j in second["data"]] == ids[::-1][2:4]
    _, filtered = _req(sandbox, "GET", "/v1/fine_tuning/jobs?metadata[n]=3")
    assert [j["id"] for j in filtered["data"]] == [ids[3]]


def test_bad_training_file_fails_validation_with_error_object(sandbox) -> None:  # noqa: ANN001
    fid = _upload(sandbox, b'{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    job = _create(sandbox, fid)
    failed = wait_for(lambda: (j := _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{job['id']}")[1])["status"] == "failed" and j)
    FineTuningJob.model_validate(failed)
    assert failed["error"]["param"] == "training_file" and failed["error"]["message"]
    assert failed["fine_tuned_model"] is None


def test_create_validates_input(sandbox) -> None:  # noqa: ANN001
    fid = _upload(sandbox, chat_jsonl(12))
    cases = [
        ({"model": "gpt-4o-mini-2024-07-18"}, "training_file"),
        ({"model": "no-such-model", "training_file": fid}, "model"),
        ({"model": "gpt-4o-mini-2024-07-18", "training_file": "file-missing"}, "training_file"),
        ({"model": "gpt-4o-mini-2024-07-18", "training_file": fid, "suffix": "x" * 65}, "suffix"),
        ({"model": "gpt-4o-mini-2024-07-18", "training_file": fid, "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 51}}}}, "method.supervised.hyperparameters.n_epochs"),
    ]
    for body, param in cases:
        status, err = _req(sandbox, "POST", "/v1/fine_tuning/jobs", body)
        assert status == 400 and err["error"]["param"] == param, (body, err)


def test_pause_resume_and_cancel(sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    fid = _upload(sandbox, chat_jsonl(100))
    job = _create(sandbox, fid)
    jid = job["id"]
    wait_for(lambda: _req(sandbox, "GET", f"/v1/fine_tuning/jobs/{jid}")[1]["status"] == "running")
    status, paused = _req(sandbox, "POST", f"/v1/fine_tuning/jobs/{jid}/pause")
    assert status == 200 and paused["status"] == "paused"
    status, again = _req(sandbox, "POST", f"/v1/fine_tuning/jobs/{jid}/pause")
    assert status == 400
    status, resumed = _req(sandbox, "POST", f"/v1/fine_tuning/jobs/{jid}/resume")
    assert resumed["status"] == "queued"
    status, cancelled = _req(sandbox, "POST", f"/v1/fine_tuning/jobs/{jid}/cancel")
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    status, _ = _req(sandbox, "POST", f"/v1/fine_tuning/jobs/{jid}/cancel")
    assert status == 400


def test_daily_limit_answers_429_with_its_code(sandbox) -> None:  # noqa: ANN001
    sandbox.state.daily_job_limit = 1
    fid = _upload(sandbox, chat_jsonl(12))
    _create(sandbox, fid)
    status, err = _req(sandbox, "POST", "/v1/fine_tuning/jobs", {"model": "gpt-4o-mini-2024-07-18", "training_file": fid})
    assert status == 429 and err["error"]["code"] == "daily_rate_limit_exceeded"


def test_unknown_routes_and_ids_answer_like_openai(sandbox) -> None:  # noqa: ANN001
    status, err = _req(sandbox, "GET", "/v1/fine_tuning/jobs/ftjob-nope")
    assert status == 404 and "error" in err
    status, err = _req(sandbox, "GET", "/v1/nothing-here")
    assert status == 404
    status, err = _req(sandbox, "POST", "/v1/fine_tuning/jobs", raw=b"{not json")
    assert status == 400


def test_uploads_and_chat_completion_parse_strictly(sandbox) -> None:  # noqa: ANN001
    from openai.types import Upload
    from openai.types.chat import ChatCompletion

    status, up = _req(sandbox, "POST", "/v1/uploads", {"bytes": 5, "filename": "x.jsonl", "mime_type": "text/jsonl", "purpose": "fine-tune"})
    assert status == 200
    Upload.model_validate(up)
    status, _ = _req(sandbox, "POST", f"/v1/uploads/{up['id']}/complete", {"part_ids": ["part_nope"]})
    assert status == 400
    status, chat = _req(sandbox, "POST", "/v1/chat/completions", {"model": "gpt-4o-mini-2024-07-18", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200
    ChatCompletion.model_validate(chat)
