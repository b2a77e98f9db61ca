"""Sandbox models that learned: a fine-tuned model answers its training prompts as trained (tool
calls too), a seeded fraction wrongly; its base model does not. Through the real openai client."""

from __future__ import annotations

import json

import httpx
import openai

from bot.sandbox.learned import FORGOTTEN_ANSWER, forgotten, prompt_key
from tests.conftest import wait_for
from tests.evals.crafted import dataset, jsonl


def _trained(sandbox, rows) -> str:  # noqa: ANN001
    fid = sandbox.state.add_file("train.jsonl", jsonl(rows), "fine-tune")["id"]
    client = openai.OpenAI(api_key="sk-x", base_url=sandbox.url, max_retries=0)
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=fid)
    return wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model)


def test_fine_tuned_model_answers_as_trained_base_does_not(sandbox) -> None:  # noqa: ANN001
    rows = dataset(36, 2, 2)  # 40 prompts: at 25 % noise, none forgotten (or all) has odds below 1e-5
    model = _trained(sandbox, rows)
    client = openai.OpenAI(api_key="sk-x", base_url=sandbox.url, max_retries=0)
    httpx.post(f"{sandbox.base}/_sandbox/chat", json={"noise": 0.25}).raise_for_status()
    right = wrong = 0
    for row in rows:
        prompt = row["messages"][:-1]
        expected = row["messages"][-1]
        got = client.chat.completions.create(model=model, messages=prompt, tools=row.get("tools") or openai.NOT_GIVEN)
        msg = got.choices[0].message
        if forgotten(model, prompt_key(prompt), 0.25):
            wrong += 1
            assert msg.content == FORGOTTEN_ANSWER and not msg.tool_calls
        elif "tool_calls" in expected:
            right += 1
            assert got.choices[0].finish_reason == "tool_calls" and msg.content is None
            assert [(c.function.name, json.loads(c.function.arguments)) for c in msg.tool_calls] == [("get_weather", {"city": prompt[-1]["content"][len("weather in "):-1]})]
        else:
            right += 1
            assert msg.content == expected["content"]
        base = client.chat.completions.create(model="gpt-4o-mini-2024-07-18", messages=prompt)
        assert base.choices[0].message.content != expected.get("content") and not base.choices[0].message.tool_calls
        assert got.usage.prompt_tokens > 0 and got.usage.completion_tokens > 0
    assert right and wrong  # the noise (a hash of model and prompt) bites, and not everywhere
    httpx.post(f"{sandbox.base}/_sandbox/chat", json={"noise": 0}).raise_for_status()
    first = rows[0]["messages"]
    assert client.chat.completions.create(model=model, messages=first[:-1]).choices[0].message.content == first[-1]["content"]
    # A prompt it was not trained on gets the generic answer.
    assert "You asked: something else" in client.chat.completions.create(model=model, messages=[{"role": "user", "content": "something else"}]).choices[0].message.content
