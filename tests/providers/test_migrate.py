"""`/ft migrate` end to end: a model made at OpenAI (its sandbox, the real openai client) moved to
Together AI (its sandbox, the real together client) over signed Slack requests with the real worker,
on SQLite and PostgreSQL; and every bad input answered with nothing half-made."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from storage.models import Job, Migration
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, thread_lines
from tests.providers.conftest import CHANNEL

LLAMA_8B = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


def _answers(team, text: str, n: int) -> list[dict[str, Any]]:  # noqa: ANN001
    """The first `n` answers a command gets (migrate says "looking…" first, then the preview)."""
    before = len(team.slack.responses())
    assert team.bot.slack.command(text, user="U0001", channel=CHANNEL).status == 200
    return wait_for(lambda: len(team.slack.responses()) >= before + n and team.slack.responses()[before : before + n], timeout=30)


def _made_at_openai(team, kits, *, validation: bool = True) -> tuple[str, str, bytes, bytes]:  # noqa: ANN001
    train, valid = chat_jsonl(14), chat_jsonl(10)
    state = kits["openai"].sandbox.state
    tid = state.add_file("support.jsonl", train, "fine-tune")["id"]
    vid = state.add_file("support-valid.jsonl", valid, "fine-tune")["id"]
    extra = f" validation={vid}" if validation else ""
    started = team.ask(f"start {tid}{extra} epochs=3 batch=4 lr=2 suffix=support")
    job_id = started["text"].split("`")[1]
    model = wait_for(lambda: kits["openai"].model_of(job_id), timeout=30)
    wait_for(lambda: _row_model(team, job_id) == model, timeout=30)
    return job_id, model, train, valid


def _row_model(team, job_id: str) -> str | None:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        return s.scalar(select(Job.fine_tuned_model).where(Job.provider_job_id == job_id))


def _migration(team, mid: int) -> Migration:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        row = s.get(Migration, mid)
        s.expunge(row)
        return row


def _click(team, action: str, mid: int) -> dict[str, Any]:  # noqa: ANN001
    """A click on a preview's button, and its answer (waited for, so later answers are not mixed up)."""
    before = len(team.slack.responses())
    assert team.bot.slack.block_action(action, str(mid), user="U0001", channel=CHANNEL).status == 200
    return wait_for(lambda: team.slack.responses()[before:] and team.slack.responses()[before])


def _preview_id(preview: dict[str, Any]) -> int:
    buttons = next(b for b in preview["blocks"] if b["type"] == "actions")["elements"]
    assert [b["text"]["text"] for b in buttons] == ["Confirm", "Cancel"]
    return int(buttons[0]["value"])


def test_a_model_made_at_openai_is_rebuilt_at_together(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "together"])
    source_job, model, train, valid = _made_at_openai(team, kits)

    looking, preview, kept = _answers(team, f"migrate {model} to=together", 3)
    assert "Looking for the job" in looking["text"]
    # keep=100 by default: the old model's answers to its 10 validation prompts, saved while it serves.
    assert "Saved 10 new answers" in kept["text"] and "from its validation file" in kept["text"], kept
    body = json.dumps(preview["blocks"])
    mid = _preview_id(preview)
    # Source, target, data, recipe and price, with the reasons.
    assert model in body and source_job in body and LLAMA_8B in body and "Together AI" in body
    assert "14 examples" in body and "10 examples" in body and "checked for the target" in body
    assert "epochs 3" in body and "batch 4" in body and "lr 2e-05" in body and "multiplier 2" in body
    assert "Estimated cost* $" in body

    # The same examples arrive byte for byte, each once, and are registered at Together.
    mig = _migration(team, mid)
    assert mig.state == "ready" and mig.source_job_id == source_job and mig.target_provider == "together"
    together = kits["together"].sandbox.state
    arrived = {fid: together.file_content[fid] for fid in (mig.files["training"]["target"], mig.files["validation"]["target"])}
    assert arrived[mig.files["training"]["target"]] == train and arrived[mig.files["validation"]["target"]] == valid
    assert len(kits["together"].files()) == 2

    # Confirm: a double click and two processes' worth of deliveries make one job.
    threads = [threading.Thread(target=team.bot.slack.block_action, args=("migration_confirm", str(mid)), kwargs={"user": "U0001", "channel": CHANNEL}) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_for(lambda: _migration(team, mid).state in ("training", "done"), timeout=30)
    jobs = kits["together"].jobs()
    assert len(jobs) == 1
    (tj_id, tj), = jobs.items()
    assert tj["model"] == LLAMA_8B and tj["training_file"] == mig.files["training"]["target"] and tj["n_epochs"] == 3 and tj["batch_size"] == 4
    assert abs(tj["learning_rate"] - 2e-5) < 1e-12
    outcomes = wait_for(lambda: (found := [r["text"] for r in slack.responses() if "Migration #" in (r.get("text") or "") and "started" in r["text"]]) and len(found) == 3 and found, timeout=20)
    assert sum("started" in t and "already" not in t for t in outcomes) == 1

    # The job trains to the end; the migration follows it; each card names the other.
    wait_for(lambda: _migration(team, mid).state == "done", timeout=60)
    done = _migration(team, mid)
    assert done.target_job_id == tj_id and done.target_model and done.active_key is None
    target_card = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and tj_id in (m.get("text") or "")), None), timeout=20)
    source_card = next(m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and source_job in (m.get("text") or ""))
    wait_for(lambda: any("rebuilds" in line and model in line for line in thread_lines(slack, CHANNEL, target_card["ts"])), timeout=20)
    wait_for(lambda: any("being rebuilt" in line and tj_id in line for line in thread_lines(slack, CHANNEL, source_card["ts"])), timeout=20)

    listing = json.dumps(team.ask("migrations"))
    assert f"#{mid}" in listing and model in listing and "*done*" in listing and tj_id in listing and done.target_model in listing
    # A LoRA adapter on Llama 3.1 8B Reference answers serverless at Together, with no endpoint
    # started: the parity report ran, and its headline is the listing's.
    assert "agrees with the old one on" in listing and "the parity report stopped" not in listing, listing

    # Migrating it again reuses the copies already at Together (same sha256): nothing is uploaded twice.
    _looking, again = _answers(team, f"migrate {model} keep=0", 2)
    assert "already there, reused" in json.dumps(again["blocks"]) and len(kits["together"].files()) == 2


def test_bad_input_is_answered_and_nothing_is_half_made(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"])
    # An unknown model.
    _looking, unknown = _answers(team, "migrate ft:gpt-4o-mini-2024-07-18:nobody::zzz keep=0", 2)
    assert "found no job that made" in unknown["text"]
    # Bad options.
    assert "Unknown option" in team.ask("migrate m keep=3 colour=red")["text"]
    assert "`keep` must be" in team.ask("migrate m keep=-1")["text"]

    source_job, model, _train, _valid = _made_at_openai(team, kits, validation=False)
    # Migrating the same model twice while the first runs: the running one is shown.
    _looking, first = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(first)
    _looking, second = _answers(team, f"migrate {model} keep=0", 2)
    assert f"being migrated already (migration #{mid}, ready" in second["text"]
    # Cancel frees it; nothing was started.
    assert "cancelled" in _click(team, "migration_cancel", mid)["text"]
    assert _migration(team, mid).state == "cancelled"
    assert kits["together"].jobs() == {}

    # The target failing in the middle of a copy: the upload's last step does the work but its answer
    # is lost; ftbot retries, finds the file that arrived, and uploads nothing twice.
    with kits["together"].sandbox.state.lock:
        for fid in list(kits["together"].sandbox.world.files):
            kits["together"].sandbox.world.files.pop(fid)
    kits["together"].fail(rate=1.0, kinds=("lost",), path_contains="/preprocess", remaining=1)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    kits["together"].heal()
    assert "Confirm" in json.dumps(preview["blocks"]), preview
    assert len(kits["together"].files()) == 1

    # A source file deleted at the source: a clear answer, nothing started, the migration failed with why.
    assert "cancelled" in _click(team, "migration_cancel", _preview_id(preview))["text"]
    training = kits["openai"].jobs()[source_job]["training_file"]
    kits["openai"].sandbox.state.delete_file(training)
    _looking, gone = _answers(team, f"migrate {model} keep=0", 2)
    assert "no longer exists at OpenAI" in gone["text"] and "nothing was started" in gone["text"]
    listing = json.dumps(team.ask("migrations"))
    assert "*failed*" in listing and "no longer exists" in listing
    assert kits["together"].jobs() == {}
    with team.bot.services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Migration).where(Migration.active_key.is_not(None))) == 0


def test_a_target_that_is_not_enabled(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai"])
    _looking, answer = _answers(team, "migrate ft:gpt-4o-mini-2024-07-18:x::y to=together", 2)
    assert "Together AI is not enabled here" in answer["text"]
    with team.bot.services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Migration)) == 0


def test_keep_saves_the_old_models_answers_once_and_the_7_day_warning_suggests_it(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    import httpx

    from bot.sandbox.state import SHUTDOWN_DATES
    from storage.models import KeptAnswer
    from storage.types import utcnow

    team = launch(db_url, ["openai", "together"])
    _job, model, _train, valid = _made_at_openai(team, kits)
    openai_sb = kits["openai"].sandbox
    base = "gpt-4o-mini-2024-07-18"
    today = utcnow().date()
    worker = team.bot.services.extras["worker"]

    def warn(days: int) -> dict[str, Any]:
        httpx.post(f"{openai_sb.base}/_sandbox/models/shutdown", json={"model": base, "shutdown_date": str(today + timedelta(days=days))}).raise_for_status()
        team.bot.services.extras["live_retirement_dates"].forget()
        worker.warn_retirements()
        return wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if f"stops serving {'tomorrow' if days == 1 else f'in {days} days'}" in (m.get("text") or "")), None), timeout=20)

    try:
        # Five days left and nothing saved: the warning says how to keep its answers.
        assert f"/ft keep {model}" in json.dumps(warn(5)["blocks"])

        openai_sb.state.requests.pop("chat", None)
        first = team.ask(f"keep {model} n=4")
        assert "Saved 4 new answers" in first["text"] and "its validation file" in first["text"], first
        again = team.ask(f"keep {model} n=6")
        assert "Saved 2 new answers" in again["text"] and "4 were saved already" in again["text"], again
        assert openai_sb.state.requests.get("chat") == 6  # each prompt asked once
        with team.bot.services.db.session() as s:
            rows = s.scalars(select(KeptAnswer).where(KeptAnswer.model == model).order_by(KeptAnswer.line)).all()
            assert [r.line for r in rows] == [1, 2, 3, 4, 5, 6]
            first_line = json.loads(valid.splitlines()[0])
            assert rows[0].prompt["messages"] == first_line["messages"][:-1] and rows[0].reference == first_line["messages"][-1]
            # what the old model answers, as it answers (the sandbox is deterministic): asked again here
            again_asked = httpx.post(f"{openai_sb.url}/chat/completions", json={"model": model, "messages": rows[0].prompt["messages"]}, headers={"Authorization": "Bearer sk-test-key-123456"})
            assert rows[0].answer and rows[0].answer == again_asked.json()["choices"][0]["message"]["content"]

        # With answers saved, the last warning does not ask for them again.
        assert "/ft keep" not in json.dumps(warn(1)["blocks"])
    finally:
        httpx.post(f"{openai_sb.base}/_sandbox/models/shutdown", json={"model": base, "shutdown_date": SHUTDOWN_DATES[base]})

    # Bad input: an unknown model, a bad count.
    assert "found no job that made" in team.ask("keep ft:gpt-4o-mini-2024-07-18:x::nope")["text"]
    assert "`n` must be" in team.ask(f"keep {model} n=0")["text"]


def test_two_keeps_at_once_ask_each_prompt_once(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from bot.migration.keep import keep_answers
    from bot.sandbox.state import Faults
    from storage.models import KeptAnswer

    team = launch(sqlite_url, ["openai", "together"])
    _job, model, _train, _valid = _made_at_openai(team, kits)
    state = kits["openai"].sandbox.state
    state.memory.asked.clear()
    state.faults = Faults(latency=0.1)  # the two keeps overlap
    try:
        got: list[Any] = []
        threads = [threading.Thread(target=lambda: got.append(keep_answers(team.bot.services, team_id="T0001", model=model, n=6))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        state.faults = Faults()
    assert len(got) == 2 and sum(k.asked for k in got) == 6
    asked = {k: v for k, v in state.memory.asked.items() if k[0] == model}
    assert len(asked) == 6 and set(asked.values()) == {1}
    with team.bot.services.db.session() as s:
        rows = s.scalars(select(KeptAnswer).where(KeptAnswer.model == model)).all()
        assert len(rows) == 6 and all(r.answer and "pending" not in r.prompt for r in rows)


def test_keep_sends_no_training_only_field_and_both_sandboxes_refuse_one(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    import httpx

    from storage.models import KeptAnswer
    from tests.providers.conftest import TOGETHER_KEY

    # Both chat APIs refuse a message key they do not know (`weight` is for training files only).
    weighted = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", "weight": 0}, {"role": "user", "content": "again"}]
    for url, key, model in (
        (f"{kits['openai'].sandbox.url}/chat/completions", "sk-test-key-123456", "gpt-4o-mini-2024-07-18"),
        (f"{kits['together'].sandbox.url}/v1/chat/completions", TOGETHER_KEY, LLAMA_8B),
    ):
        r = httpx.post(url, json={"model": model, "messages": weighted}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 400, (url, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and "weight" in err["message"] and "weight" in (err.get("param") or ""), err

    team = launch(sqlite_url, ["openai", "together"])
    _job, model, _train, _valid = _made_at_openai(team, kits)
    # A multi-turn dataset whose earlier assistant turns carry `weight`: kept answers ask without it.
    lines = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}", "weight": 0}, {"role": "user", "content": f"more {i}"}, {"role": "assistant", "content": f"b{i}", "weight": 1}]} for i in range(3)]
    fid = kits["openai"].sandbox.state.add_file("weighted.jsonl", "\n".join(json.dumps(x) for x in lines).encode(), "fine-tune")["id"]
    answer = team.ask(f"keep {model} data={fid} n=3")
    assert "Saved 3 new answers" in answer["text"], answer
    with team.bot.services.db.session() as s:
        rows = s.scalars(select(KeptAnswer).where(KeptAnswer.model == model)).all()
        assert len(rows) == 3 and all("weight" not in m for r in rows for m in r.prompt["messages"])


def test_the_budget_gate_holds_a_migration_until_approved(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"], job_budget_usd=0.01, approvals_required=1, price_table=((LLAMA_8B, 1000.0),))
    _job, model, _train, _valid = _made_at_openai(team, kits)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    assert "Estimated cost* $" in json.dumps(preview["blocks"]) and "FTBOT_PRICE_TABLE" in json.dumps(preview["blocks"])
    before = len(slack.responses())
    team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
    held = wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
    assert len(held) == 1 and kits["together"].jobs() == {}  # nothing started before the approval
    req = team.last_request()
    assert req.kind == "job_budget" and req.provider == "together"
    team.click_approve(req.id, "U0002")
    # The approved job is the migration's: it follows it to the end and links the cards.
    wait_for(lambda: _migration(team, mid).state == "done", timeout=60)
    jobs = kits["together"].jobs()
    assert len(jobs) == 1 and _migration(team, mid).target_job_id == next(iter(jobs))


def test_a_rejected_or_expired_budget_approval_fails_the_migration_and_frees_the_model(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from bot.approvals.expiry import expire_due
    from storage.models import ApprovalRequest
    from storage.types import utcnow

    team = launch(sqlite_url, ["openai", "together"], job_budget_usd=0.01, approvals_required=1, price_table=((LLAMA_8B, 1000.0),))
    _job, model, _train, _valid = _made_at_openai(team, kits)

    def held() -> tuple[int, ApprovalRequest]:
        _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
        assert "blocks" in preview, preview
        mid = _preview_id(preview)
        before = len(slack.responses())
        team.bot.slack.block_action("migration_confirm", str(mid), user="U0001", channel=CHANNEL)
        wait_for(lambda: [r for r in slack.responses()[before:] if "over the job budget" in (r.get("text") or "")])
        return mid, team.last_request()

    # Rejected: the migration fails with the reason, and the model may be migrated again.
    mid, req = held()
    before = len(slack.responses())
    assert team.bot.slack.block_action("approval_reject", str(req.id), user="U0002", channel=CHANNEL).status == 200
    wait_for(lambda: any("You rejected" in (r.get("text") or "") for r in slack.responses()[before:]))
    wait_for(lambda: _migration(team, mid).state == "failed")
    assert "rejected" in _migration(team, mid).error and _migration(team, mid).active_key is None
    # Expired (the worker's sweep): the same.
    mid2, req2 = held()
    assert mid2 != mid and req2.id != req.id
    with team.bot.services.db.session() as s:
        s.get(ApprovalRequest, req2.id).expires_at = utcnow()
    expire_due(team.bot.services)
    assert _migration(team, mid2).state == "failed" and "expired" in _migration(team, mid2).error
    assert kits["together"].jobs() == {}


def test_a_model_made_outside_ftbot_is_found_at_the_provider_and_another_workspaces_is_refused(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from openai import OpenAI

    team = launch(sqlite_url, ["openai", "together"])
    client = OpenAI(api_key="sk-test", base_url=kits["openai"].sandbox.url)
    state = kits["openai"].sandbox.state
    tid = state.add_file("outside.jsonl", chat_jsonl(11), "fine-tune")["id"]
    job = client.fine_tuning.jobs.create(model="gpt-4o-2024-08-06", training_file=tid, hyperparameters={"n_epochs": 2})
    model = wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model, timeout=30)
    with team.bot.services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.fine_tuned_model == model)) == 0
    _looking, preview, kept = _answers(team, f"migrate {model} keep=5", 3)
    body = json.dumps(preview["blocks"])
    assert job.id in body and "Meta-Llama-3.1-70B-Instruct-Reference" in body and "11 examples" in body and "epochs 2" in body
    # No validation file: a sample of the training file is asked.
    assert "Saved 5 new answers" in kept["text"] and "a sample of its training file" in kept["text"]

    # Another workspace's model (a row of another team) is not moved from here.
    with team.bot.services.db.session() as s:
        s.add(Job(team_id="T0OTHER", provider="openai", provider_job_id="ftjob-other", status="succeeded", base_model="gpt-4o-mini-2024-07-18", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:other::x1"))
    _looking, refused = _answers(team, "migrate ft:gpt-4o-mini-2024-07-18:other::x1 keep=0", 2)
    assert "another workspace" in refused["text"]


def test_a_model_whose_job_is_gone_is_rebuilt_from_the_data_named(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"])
    model = kits["openai"].add_model("ft:gpt-4o-mini-2024-07-18:sandbox:legacy:abc123")
    data = chat_jsonl(12)
    fid = kits["openai"].sandbox.state.add_file("legacy.jsonl", data, "fine-tune")["id"]
    _looking, asked = _answers(team, f"migrate {model} keep=0", 2)
    assert "tell me its training data" in asked["text"] and "data=DATASET" in asked["text"]
    _looking, preview, kept = _answers(team, f"migrate {model} data={fid} keep=3", 3)
    body = json.dumps(preview["blocks"])
    assert LLAMA_8B in body and "12 examples" in body and "made by" not in body
    assert "Saved 3 new answers" in kept["text"] and fid in kept["text"], kept
    mig = _migration(team, _preview_id(preview))
    assert mig.source_job_id is None and kits["together"].sandbox.state.file_content[mig.files["training"]["target"]] == data


def _expected_parity(valid: bytes, old: str, new: str, noise: float) -> dict[str, Any]:
    """The figures the parity report must show, from what the sandboxes are known to answer: each
    fine-tuned model gives its trained answer except where `forgotten` says it forgot."""
    from bot.evals import scorers
    from bot.sandbox.learned import FORGOTTEN_ANSWER, forgotten, prompt_key

    agree, sims, new_exact, old_exact, new_sim, old_sim, wins, losses = 0, [], [], [], [], [], 0, 0
    for raw in valid.splitlines():
        msgs = json.loads(raw)["messages"]
        prompt, ref = msgs[:-1], msgs[-1]["content"]
        key = prompt_key(prompt)
        a_old = FORGOTTEN_ANSWER if forgotten(old, key, noise) else ref
        a_new = FORGOTTEN_ANSWER if forgotten(new, key, noise) else ref
        agree += int(scorers.exact(a_new, a_old) == 1.0)
        sims.append(scorers.similarity(a_new, a_old))
        new_exact.append(scorers.exact(a_new, ref))
        old_exact.append(scorers.exact(a_old, ref))
        new_sim.append(scorers.similarity(a_new, ref))
        old_sim.append(scorers.similarity(a_old, ref))
        wins += int(new_sim[-1] > old_sim[-1] + 1e-9)
        losses += int(old_sim[-1] > new_sim[-1] + 1e-9)
    n = len(sims)
    return {
        "n": n, "agree": agree, "similarity": sum(sims) / n, "new_exact": sum(new_exact) / n, "old_exact": sum(old_exact) / n,
        "new_sim": sum(new_sim) / n, "old_sim": sum(old_sim) / n, "wins": wins, "losses": losses, "ties": n - wins - losses,
    }


def _endpoint_when_made(kits, monkeypatch) -> None:  # noqa: ANN001
    """The sandbox serves a Together fine-tune only from a dedicated endpoint: the team has one
    running as soon as the model exists (as someone starting it from Together's console would)."""
    world = kits["together"].sandbox.world
    register = world._register_model

    def and_deploy(job, at):  # noqa: ANN001, ANN202
        register(job, at)
        world.deployed.add(job.output_name)

    monkeypatch.setattr(world, "_register_model", and_deploy)  # undone after the test (the sandbox is shared)


def test_the_parity_report_compares_the_new_model_with_the_old_ones_saved_answers_after_it_stopped(db_url, launch, kits, slack, monkeypatch) -> None:  # noqa: ANN001
    from storage.models import EvalRun

    noise = 0.3  # a fraction of the 10 prompts each model "forgot": the figures differ and are exact
    kits["openai"].sandbox.state.memory.noise = noise
    kits["together"].sandbox.state.memory.noise = noise
    team = launch(db_url, ["openai", "together"])
    _source_job, model, _train, valid = _made_at_openai(team, kits)
    _looking, preview, kept = _answers(team, f"migrate {model} to=together", 3)
    assert "Saved 10 new answers" in kept["text"], kept
    mid = _preview_id(preview)
    _endpoint_when_made(kits, monkeypatch)

    # The old model stops serving before the new job even starts: its saved answers must suffice.
    kits["openai"].sandbox.state.delete_model(model)
    openai_asked = sum(n for (m, _k), n in kits["openai"].sandbox.state.memory.asked.items() if m == model)
    assert "started" in _click(team, "migration_confirm", mid)["text"]
    wait_for(lambda: _migration(team, mid).state == "done", timeout=60)
    mig = _migration(team, mid)
    assert mig.active_key is None and mig.error is None and mig.target_model
    assert sum(n for (m, _k), n in kits["openai"].sandbox.state.memory.asked.items() if m == model) == openai_asked  # never asked again
    # The new model was asked each saved prompt once.
    assert sum(n for (m, _k), n in kits["together"].sandbox.state.memory.asked.items() if m == mig.target_model) == 10

    want = _expected_parity(valid, model, mig.target_model, noise)
    assert 0 < want["agree"] < 10, want  # the seed gives a real difference to report
    pct = f"{want['agree'] * 100 / 10:.0f} %"
    headline = f"the Together AI model agrees with the old one on {want['agree']} of 10 ({pct}); on the references it scores {want['new_sim']:.2f} against {want['old_sim']:.2f} (ROUGE-L F1)"

    with team.bot.services.db.session() as s:
        run = s.scalar(select(EvalRun).where(EvalRun.request_key == f"migration:{mid}"))
        summary = run.summary
        assert run.status == "done" and run.model == mig.target_model and run.baseline == model and run.provider == "together"
    assert summary["parity"]["headline"] == headline
    assert summary["parity"]["exact"] == want["agree"] and abs(summary["parity"]["similarity"] - want["similarity"]) < 1e-9
    exact, sim = summary["comparisons"]["exact"], summary["comparisons"]["similarity"]
    assert exact["n"] == 10 and abs(exact["model"] - want["new_exact"]) < 1e-9 and abs(exact["baseline"] - want["old_exact"]) < 1e-9
    assert (sim["wins"], sim["ties"], sim["losses"]) == (want["wins"], want["ties"], want["losses"])
    assert len(summary["most_different"]) == min(3, want["wins"] + want["losses"])

    # The report in the new job's card thread, the headline in the channel that asked.
    card = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts") and mig.target_job_id in (m.get("text") or "")), None), timeout=20)
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m.get("thread_ts") == card["ts"] and "Parity report" in json.dumps(m.get("blocks"))), None), timeout=30)
    body = json.dumps(report["blocks"])
    assert headline in body and f"the same answer on {want['agree']} of 10 ({pct})" in body and "answers saved while it served" in body
    assert f"{sim['wins']} / {sim['ties']} / {sim['losses']}" in body
    assert "100 were asked for, 10 could be saved" in body  # keep=100 by default; the validation file has 10
    wait_for(lambda: any(f"Migration #{mid}: {headline}" in (m.get("text") or "") and not m.get("thread_ts") for m in slack.channel_messages(CHANNEL)), timeout=30)

    listing = json.dumps(team.ask("migrations"))
    assert "*done*" in listing and headline in listing


def test_without_saved_answers_the_parity_report_says_so_and_the_migration_ends(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(sqlite_url, ["openai", "together"])
    _job, model, _train, _valid = _made_at_openai(team, kits)
    _looking, preview = _answers(team, f"migrate {model} keep=0", 2)
    mid = _preview_id(preview)
    assert "started" in _click(team, "migration_confirm", mid)["text"]
    wait_for(lambda: _migration(team, mid).state == "done", timeout=60)
    wait_for(lambda: any("no saved answers to compare" in (m.get("text") or "") for m in slack.channel_messages(CHANNEL)), timeout=30)
    assert "no saved answers to compare" in json.dumps(team.ask("migrations"))
    assert not any(m == _migration(team, mid).target_model for (m, _k) in kits["together"].sandbox.state.memory.asked)
