"""What differs at Azure OpenAI, through Slack against its sandbox: deployments for `/ft try`, the
18-character suffix, pause / resume only after a trained step; and the v1 endpoint's address."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.provider import JobSpec, ProviderInvalidRequest, ProviderNotFound
from bot.provider.azure_adapter import AzureOpenAIProvider, v1_base_url
from bot.provider.openai_adapter import OpenAIProvider
from storage.models import Job
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

BASE = "gpt-4o-mini-2024-07-18"


def _add_file(kit) -> str:  # noqa: ANN001
    return kit.sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]


def test_v1_endpoint_address_and_key() -> None:
    assert v1_base_url("https://acme.openai.azure.com") == "https://acme.openai.azure.com/openai/v1/"
    assert v1_base_url("https://acme.openai.azure.com/") == "https://acme.openai.azure.com/openai/v1/"
    assert v1_base_url("https://acme.openai.azure.com/openai/v1/") == "https://acme.openai.azure.com/openai/v1/"
    p = AzureOpenAIProvider(endpoint="https://acme.openai.azure.com", api_key="k")
    assert str(p.client.base_url) == "https://acme.openai.azure.com/openai/v1/" and p.name == "azure"


def test_the_client_really_talks_to_the_v1_path(kits) -> None:  # noqa: ANN001
    sb = kits["azure"].sandbox
    file_id = _add_file(kits["azure"])
    assert AzureOpenAIProvider(endpoint=sb.base, api_key="k", max_retries=0).get_file(file_id).id == file_id
    # The same host without the /openai/v1/ path is not an API: a wrong endpoint fails loudly.
    with pytest.raises(ProviderNotFound):
        OpenAIProvider(api_key="k", base_url=sb.base + "/openai/", max_retries=0).get_file(file_id)


def test_try_names_a_deployment_and_explains_when_given_a_model(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["azure"], worker=False)
    model = kits["azure"].add_model("ft:gpt-4o-mini-2024-07-18:org-sandbox:support:abc12345")
    answer = team.ask(f"try {model} hello there")
    assert "is a model, not a deployment" in answer["text"] and "deployment create" in answer["text"], answer
    assert answer.get("response_type") != "in_channel"
    missing = team.ask("try support-prod hello there")
    assert "no deployment named `support-prod`" in missing["text"] and "deployment create" in missing["text"], missing
    # A deployment the resource has (the sandbox serves any model it knows by that name) answers.
    ok = team.ask(f"try {BASE} hello there")
    assert ok["response_type"] == "in_channel" and "You asked: hello there" in ok["text"], ok
    assert kits["azure"].sandbox.state.requests.get("chat") == 2  # the model name never reached Azure


def test_suffix_over_18_characters_is_refused_before_anything_is_made(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["azure"], worker=False)
    fid = _add_file(kits["azure"])
    refused = team.ask(f"start {fid} suffix={'s' * 19}")
    assert "at most 18 characters at Azure OpenAI" in refused["text"], refused
    assert kits["azure"].jobs() == {}
    ok = team.ask(f"start {fid} suffix={'s' * 18}")
    assert "Started" in ok["text"], ok
    # The adapter refuses it too, for callers that skip the command's check.
    with pytest.raises(ProviderInvalidRequest, match="at most 18"):
        AzureOpenAIProvider(endpoint=kits["azure"].sandbox.base, api_key="k").create_job(JobSpec(model=BASE, training_file=fid, suffix="s" * 19))
    assert len(kits["azure"].jobs()) == 1


def test_openai_takes_a_longer_suffix(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai"], worker=False)
    fid = _add_file(kits["openai"])
    assert "Started" in team.ask(f"start {fid} suffix={'s' * 19}")["text"]


def test_pause_only_after_a_trained_step_and_resume_after(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    kit = kits["azure"]
    kit.slow(step_seconds=3600)  # running, but no step trained yet
    team = launch(sqlite_url, ["azure"])
    fid = _add_file(kit)
    job_id = team.ask(f"start {fid} epochs=3 batch=1")["text"].split("`")[1]
    wait_for(lambda: kit.jobs()[job_id]["status"] == "running")
    refused = team.ask(f"pause {job_id}")
    assert "has not trained a step yet" in refused["text"] and "Azure OpenAI" in refused["text"], refused
    assert kit.jobs()[job_id]["status"] == "running"

    # Once a step is trained (and polled), pausing works, and resuming the paused job too.
    kit.slow(step_seconds=1.0)

    def trained() -> int | None:
        with team.bot.services.db.session() as s:
            return s.scalar(select(Job.step).where(Job.provider_job_id == job_id))

    wait_for(trained, timeout=15)
    paused = team.ask(f"pause {job_id}")
    assert "Paused" in paused["text"], paused
    assert kit.jobs()[job_id]["status"] == "paused"
    resumed = team.ask(f"resume {job_id}")
    assert "Resuming" in resumed["text"], resumed


def test_openai_pauses_a_running_job_before_its_first_step(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    kit = kits["openai"]
    kit.slow(step_seconds=3600)
    team = launch(sqlite_url, ["openai"])
    job_id = team.ask(f"start {_add_file(kit)} epochs=1")["text"].split("`")[1]
    wait_for(lambda: kit.jobs()[job_id]["status"] == "running")
    assert "Paused" in team.ask(f"pause {job_id}")["text"]


def test_ftbot_sandbox_serves_openai_and_azure(tmp_path) -> None:  # noqa: ANN001
    import os
    import signal
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--port", str(port), "--together-port", "-1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        openai = OpenAIProvider(api_key="k", base_url=base + "/v1", max_retries=0, timeout=5)
        azure = AzureOpenAIProvider(endpoint=base, api_key="k", max_retries=0, timeout=5)

        def up() -> bool:
            try:
                return openai.list_jobs().jobs == []
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_for(up, timeout=30, interval=0.2)
        f = azure.upload_file(chat_jsonl(12), "train.jsonl")
        job = azure.create_job(JobSpec(model=BASE, training_file=f.id, suffix="s" * 18))
        assert openai.get_job(job.id).id == job.id  # one sandbox, two faces
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert f"OpenAI sandbox on {base}/v1" in out and f"AZURE_OPENAI_ENDPOINT={base}" in out
