"""What Together AI does differently, through Slack (signed requests, the real `together` SDK on the
Together sandbox, the real worker where a job must move): its start options (`lr=` is the learning
rate itself, `training=`, `lora_r=`, suffix up to 40), no pause, models per project, `try` only on a
deployed endpoint."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from storage.models import Job
from tests.conftest import wait_for
from tests.helpers import chat_jsonl
from tests.providers.conftest import CHANNEL, TOGETHER_KEY


def _file(team, provider: str = "together") -> str:  # noqa: ANN001
    return team.bot.services.providers[provider].upload_file(chat_jsonl(12), "train.jsonl").id


def _started(answer: dict) -> str:
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _card(slack, job_id: str) -> dict | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks")):
            return m
    return None


def test_start_options_at_together(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    kit = kits["together"]
    team = launch(sqlite_url, ["together"], worker=False)
    fid = _file(team)

    # `lr=` is the rate itself at Together: a multiplier-sized value is refused, nothing is made.
    refused = team.ask(f"start {fid} lr=2")
    assert "At Together AI `lr` is the learning rate itself" in refused["text"] and "got `2`" in refused["text"], refused
    assert "lr=X" in refused["text"] and "<" not in refused["text"]  # the usage line, with placeholders Slack shows
    assert "`lora_r` applies to `training=lora` only" in team.ask(f"start {fid} training=full lora_r=8")["text"]
    assert "`training` must be lora or full" in team.ask(f"start {fid} training=qlora")["text"]
    long = team.ask(f"start {fid} suffix={'s' * 41}")
    assert "at most 40 characters at Together AI, got 41" in long["text"], long
    assert kit.jobs() == {}

    # Full training with an absolute rate; no model named: Together's default base model, not OpenAI's.
    full = _started(team.ask(f"start {fid} training=full lr=1e-4 epochs=1 suffix={'s' * 40}"))
    job = kit.jobs()[full]
    assert job["training_type"] == {"type": "Full"} and job["learning_rate"] == 1e-4 and job["suffix"] == "s" * 40
    assert job["model"] == "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    lora = _started(team.ask(f"start {fid} training=lora lora_r=16 model=Qwen/Qwen2.5-7B-Instruct"))
    job = kit.jobs()[lora]
    assert job["training_type"]["type"] == "Lora" and job["training_type"]["lora_r"] == 16 and job["model"] == "Qwen/Qwen2.5-7B-Instruct"
    with team.bot.services.db.session() as s:
        rows = {r.provider_job_id: r for r in s.scalars(select(Job))}
        assert {r.provider for r in rows.values()} == {"together"}
        assert rows[full].hyperparameters["training_type"] == "full" and rows[full].hyperparameters["learning_rate"] == 1e-4

    # Full training on a model Together trains only with LoRA: Together's own refusal, nothing made.
    no_full = team.ask(f"start {fid} training=full model=meta-llama/Llama-3.3-70B-Instruct-Reference")
    assert "Together AI" in no_full["text"] and "ull training" in no_full["text"], no_full
    assert len(kit.jobs()) == 2


def test_together_options_elsewhere_and_lr_stays_a_multiplier_at_openai(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"], default="openai", worker=False)
    fid = _file(team, "openai")
    refused = team.ask(f"start {fid} training=lora lora_r=8")
    assert "`training` and `lora_r` are Together AI options" in refused["text"] and "provider=together" in refused["text"], refused
    assert kits["openai"].jobs() == {}
    job_id = _started(team.ask(f"start {fid} lr=2 epochs=1"))
    assert kits["openai"].jobs()[job_id]["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 2
    # The same words at Together: a rate, and a multiplier-sized one is refused there.
    assert "learning rate itself" in team.ask(f"start {_file(team)} lr=2 provider=together")["text"]
    assert _started(team.ask(f"start {_file(team)} lr=0.0002 provider=together")) in kits["together"].jobs()


def test_no_pause_at_together_and_no_pause_button(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["together"]
    kit.slow(step_seconds=0.5)
    team = launch(sqlite_url, ["together"])
    job_id = _started(team.ask(f"start {_file(team)} epochs=2 batch=4"))
    wait_for(lambda: kit.status_of(job_id) == "running")
    card = wait_for(lambda: (c := _card(slack, job_id)) and "running" in c["text"] and c, timeout=15)
    blocks = json.dumps(card["blocks"])
    assert "job_cancel" in blocks and "job_pause" not in blocks  # no button for what Together cannot do
    answer = team.ask(f"pause {job_id}")
    assert answer["text"] == ":warning: Together AI cannot pause a job; cancel it and start a new one from its last checkpoint.", answer
    assert "cannot pause or resume" in team.ask(f"resume {job_id}")["text"]
    # The Pause button of an old card (or a forged click) gets the same plain answer.
    before = len(slack.responses())
    assert team.bot.slack.block_action("job_pause", job_id, channel=CHANNEL).status == 200
    assert "cannot pause" in wait_for(lambda: slack.responses()[before:])[0]["text"]
    assert kit.status_of(job_id) == "running"


def test_models_need_a_project_and_try_needs_an_endpoint(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["together"]
    team = launch(sqlite_url, ["together"])
    # Full training: Together serves the result only from a dedicated endpoint.
    job_id = _started(team.ask(f"start {_file(team)} epochs=1 training=full"))
    wait_for(lambda: kit.model_of(job_id), timeout=20)
    model = kit.model_of(job_id)
    wait_for(lambda: (c := _card(slack, job_id)) and model in json.dumps(c["blocks"]), timeout=20)

    # `try` before an endpoint serves the model: what to do, in plain words; then with one.
    not_yet = team.ask(f"try {model} hello")
    assert "only from a dedicated endpoint" in not_yet["text"] and "billed by the minute" in not_yet["text"], not_yet
    assert "`endpoint=NAME`" in not_yet["text"], not_yet
    # `/ft eval` refuses before sampling or asking anything, and says what to pass.
    before = dict(kit.sandbox.state.memory.asked)
    refused = team.ask(f"eval {model} n=2")
    assert "answers only from a dedicated endpoint" in refused["text"] and "full training" in refused["text"] and "`endpoint=NAME`" in refused["text"], refused
    assert dict(kit.sandbox.state.memory.asked) == before
    # A named dedicated endpoint is asked under its own name; the answer says which.
    kit.sandbox.world.deploy(model, endpoint="team/ep-full-1")
    via = team.ask(f"try {model} endpoint=team/ep-full-1 hello")
    assert "You asked: hello" in json.dumps(via) and "through dedicated endpoint team/ep-full-1" in json.dumps(via), via
    evaluated = team.ask(f"eval {model} n=2 endpoint=team/ep-full-1")
    assert "Evaluating 2 examples" in evaluated["text"], evaluated
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of ") and " vs " in m["text"]), None), timeout=30)
    assert "team/ep-full-1" in json.dumps(report), report
    assert "You asked: hello" in json.dumps(team.ask(f"try {model} hello"))
    listed = json.dumps(team.ask("models"))
    assert model in listed and job_id in listed

    # Without TOGETHER_PROJECT_ID, `/ft models` says what to set instead of failing obscurely.
    other = launch(sqlite_url, ["together"], worker=False, together_project_id=None)
    answer = other.ask("models")
    assert "TOGETHER_PROJECT_ID" in answer["text"] and TOGETHER_KEY not in answer["text"], answer


def test_a_lora_model_on_a_serverless_base_answers_try_and_eval_without_an_endpoint(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    kit = kits["together"]
    team = launch(sqlite_url, ["together"])
    job_id = _started(team.ask(f"start {_file(team)} epochs=1 training=lora model=meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"))
    model = wait_for(lambda: kit.model_of(job_id), timeout=20)
    wait_for(lambda: (c := _card(slack, job_id)) and model in json.dumps(c["blocks"]), timeout=20)
    assert not kit.sandbox.world.deployed  # no dedicated endpoint anywhere
    assert "You asked: hello" in json.dumps(team.ask(f"try {model} hello"))
    answer = team.ask(f"eval {model} n=3")
    assert "Evaluating 3 examples" in answer["text"], answer
    wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m["text"].startswith("Evaluation of ") and " vs " in m["text"]), None), timeout=30)
    with team.bot.services.db.session() as s:
        from storage.models import EvalRun

        run = s.query(EvalRun).one()
        assert (run.status, run.model) == ("done", model), run.summary
    # A LoRA adapter on a base outside Together's serverless list still needs an endpoint.
    other = _started(team.ask(f"start {_file(team)} epochs=1 training=lora model=Qwen/Qwen2.5-7B-Instruct"))
    other_model = wait_for(lambda: kit.model_of(other), timeout=20)
    assert "only from a dedicated endpoint" in team.ask(f"try {other_model} hello")["text"]
    wait_for(lambda: _row_of(team, other) is not None and _row_of(team, other).fine_tuned_model == other_model, timeout=20)
    refused = team.ask(f"eval {other_model} n=2")
    assert "a base Together does not serve serverless" in refused["text"] and "`endpoint=NAME`" in refused["text"], refused


def _row_of(team, job_id: str) -> Job | None:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        s.expunge_all()
        return row


def test_ftbot_sandbox_serves_the_together_api_too(tmp_path) -> None:  # noqa: ANN001
    """`ftbot sandbox` answers the real `together` client on --together-port, next to OpenAI's API."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from bot.provider import JobSpec
    from bot.provider.base import ProviderAuthError
    from bot.provider.together_adapter import TogetherProvider
    from bot.sandbox.together_state import PROJECT_ID

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--port", str(ports[0]), "--together-port", str(ports[1]), "--step-seconds", "0.01", "--validating-seconds", "0.05", "--queued-seconds", "0.05", "--api-key", "tgp-k"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env={**os.environ},
    )
    base = f"http://127.0.0.1:{ports[1]}"
    try:
        together = TogetherProvider("tgp-k", base, PROJECT_ID, max_retries=0, timeout=5)

        def up() -> bool:
            try:
                return together.list_jobs().jobs == []
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_for(up, timeout=30, interval=0.2)
        f = together.upload_file(chat_jsonl(12), "train.jsonl")
        job = together.create_job(JobSpec(model="meta-llama/Meta-Llama-3.1-8B-Instruct-Reference", training_file=f.id, hyperparameters={"n_epochs": 1}))
        done = wait_for(lambda: (j := together.get_job(job.id)).status == "succeeded" and j, timeout=20)
        assert [m.id for m in together.list_models()] == [done.fine_tuned_model]
        with pytest.raises(ProviderAuthError, match="TOGETHER_API_KEY"):  # --api-key holds for Together too
            TogetherProvider("other-key", base, PROJECT_ID, max_retries=0, timeout=5).list_jobs()
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=20)[0]
    assert f"Together AI sandbox on {base}  (set TOGETHER_BASE_URL={base})" in out, out


def test_ftbot_sandbox_setting_runs_together_against_its_own_sandbox() -> None:
    """FTBOT_SANDBOX=1 with TOGETHER_API_KEY: a Together sandbox of its own, whose project the adapter
    uses, so models can be listed without TOGETHER_PROJECT_ID."""
    from bot.provider import JobSpec
    from bot.provider.factory import make_providers
    from bot.settings import load_settings

    s = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "FTBOT_SANDBOX": "1", "TOGETHER_API_KEY": "x"})
    providers, servers = make_providers(s, max_retries=0, timeout=5)
    try:
        assert list(providers) == ["together"] and len(servers) == 1
        together = providers["together"]
        servers[0].state.timing.step_seconds = 0.01
        servers[0].state.timing.validating_seconds = servers[0].state.timing.queued_seconds = 0.05
        f = together.upload_file(chat_jsonl(12), "train.jsonl")
        job = together.create_job(JobSpec(model=together.default_model, training_file=f.id, hyperparameters={"n_epochs": 1}))
        done = wait_for(lambda: (j := together.get_job(job.id)).status == "succeeded" and j, timeout=20)
        assert [m.id for m in together.list_models()] == [done.fine_tuned_model]
    finally:
        for server in servers:
            server.stop()


def test_budget_gate_uses_togethers_own_estimate(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    """ftbot ships no Together prices: a Together job over FTBOT_JOB_BUDGET_USD is priced by Together's
    own estimate endpoint (model size, LoRA or full), held for approval, and under it simply starts."""
    kit = kits["together"]
    team = launch(sqlite_url, ["together"], worker=False, job_budget_usd=0.000001)
    fid = _file(team)
    held = team.ask(f"start {fid} epochs=2")
    assert "Nothing was started" in held["text"] and "estimated at *$" in held["text"], held
    assert kit.jobs() == {}
    team.bot.services.settings = replace(team.bot.services.settings, job_budget_usd=100.0)
    _started(team.ask(f"start {fid} epochs=2 suffix=within-budget"))
    assert len(kit.jobs()) == 1


def test_openai_webhooks_do_not_slow_together_polling(sqlite_url, launch, kits) -> None:  # noqa: ANN001
    """The idle cadence is for jobs whose ending comes by webhook: OpenAI's. A queued Together job
    beside them keeps the poll interval (its cancel or failure must not wait FTBOT_IDLE_POLL_INTERVAL)."""
    from datetime import timedelta

    from bot.sandbox.webhooks import new_secret
    from bot.worker.poller import Poller
    from storage.types import utcnow

    openai_kit, kit = kits["openai"], kits["together"]
    for k in (openai_kit, kit):
        k.sandbox.state.timing.validating_seconds = 0.0
        k.sandbox.state.timing.queued_seconds = 3600
    team = launch(sqlite_url, ["openai", "together"], worker=False, openai_webhook_secret=new_secret(), poll_interval=5, idle_poll_interval=120)
    together_job = _started(team.ask(f"start {_file(team)} provider=together"))
    openai_job = _started(team.ask(f"start {_file(team, 'openai')} provider=openai"))
    services = team.bot.services
    with services.db.session() as s:
        for j in s.scalars(select(Job)):
            j.next_poll_at = utcnow() - timedelta(seconds=1)
    Poller(services, "w1", team_id="T0001").cycle()
    now = utcnow()
    with services.db.session() as s:
        due = {j.provider_job_id: (j.status, (j.next_poll_at - now).total_seconds()) for j in s.scalars(select(Job))}
    assert due[openai_job][0] == "queued" and 100 < due[openai_job][1] <= 120  # its ending comes by webhook
    assert due[together_job][0] == "queued" and 0 < due[together_job][1] <= 5  # no webhooks at Together


def test_a_dataset_checked_for_together_uses_togethers_model_limits_and_epochs(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    """The upload form offers Together's models; the report is Together's: its token limit, one epoch
    (its client's default), no gpt-4o-mini price but what Together does instead."""
    from tests.providers.test_contract import _file_values, _posts

    team = launch(sqlite_url, ["together"])
    assert team.bot.slack.command("upload", trigger_id="123.456").status == 200
    form = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    select_el = next(b for b in form["blocks"] if b["block_id"] == "model")["element"]
    assert select_el["initial_option"]["value"] == "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
    assert all("/" in o["value"] for o in select_el["options"])
    f = slack.add_user_file("support.jsonl", chat_jsonl(12))
    # No model chosen in the submission: the provider's default base model, not OpenAI's.
    values = _file_values(f["id"], "support.jsonl")
    values.pop("model", None)
    team.bot.slack.view_submission("upload_dataset", values, private_metadata=form["private_metadata"])
    report = wait_for(lambda: _posts(slack))[0]
    blocks = json.dumps(report["blocks"], ensure_ascii=False)
    assert "checked for `meta-llama/Meta-Llama-3.1-8B-Instruct-Reference`" in blocks, blocks
    assert "Over the 131,072 limit" in blocks and "1 epoch × " in blocks and "o200k_base, approximate" in blocks
    assert "gpt-4o-mini" not in blocks and "$" not in blocks and "Together prices each job itself" in blocks
    assert "gpt-4o-mini" not in report["text"] and "$" not in report["text"]
