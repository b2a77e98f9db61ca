"""The sandboxes' /_sandbox/refusals control: a prompt refused as Azure's content filter refuses it
(as the openai client sees it), and job creations refused with a provider's status and words."""

from __future__ import annotations

import httpx
import openai
import pytest
import together

from tests.together_sandbox import API_KEY, LLAMA_8B, _together_server, together_sandbox  # noqa: F401  (fixtures)


def test_a_prompt_refused_by_the_content_filter_reaches_the_openai_client_as_azure_sends_it(sandbox) -> None:  # noqa: ANN001
    httpx.post(f"{sandbox.base}/_sandbox/refusals", json={"chat": {"contains": "forbidden"}}).raise_for_status()
    client = openai.OpenAI(api_key="sk-test", base_url=sandbox.url, max_retries=0)
    ok = client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=[{"role": "user", "content": "fine"}])
    assert ok.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=[{"role": "user", "content": "a forbidden thing"}])
    assert exc.value.status_code == 400 and exc.value.code == "content_filter" and exc.value.param == "prompt"
    assert "content management policy" in exc.value.body["message"]
    assert exc.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    # Only for the model named, when one is.
    httpx.delete(f"{sandbox.base}/_sandbox/refusals").raise_for_status()
    httpx.post(f"{sandbox.base}/_sandbox/refusals", json={"chat": {"contains": "", "kind": "context_length_exceeded", "model": "gpt-4o-2024-08-06"}}).raise_for_status()
    assert client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=[{"role": "user", "content": "x"}]).choices
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="gpt-4o-2024-08-06", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "context_length_exceeded"
    sandbox.state.reset()
    assert sandbox.state.refusals.describe()["chat"] == []


def test_a_job_creation_refused_with_the_providers_words(together_sandbox) -> None:  # noqa: ANN001, F811
    sb = together_sandbox
    httpx.post(f"{sb.url}/_sandbox/refusals", json={"create_job": {"status": 402, "message": "Insufficient balance: add credits to start a fine-tuning job."}}).raise_for_status()
    client = together.Together(api_key=API_KEY, base_url=sb.url, max_retries=0)
    with pytest.raises(together.APIStatusError) as exc:
        client.fine_tuning.create(training_file="file-anything", model=LLAMA_8B)  # refused before the file is looked at
    assert exc.value.status_code == 402 and "Insufficient balance" in str(exc.value)
    assert sb.world.jobs == {}
    assert httpx.get(f"{sb.url}/_sandbox/refusals").json()["refused"] == {"create_job": 1}
