"""Two providers enabled at once (OpenAI and Azure OpenAI, each on its sandbox), through Slack with
the real worker: a job on each, each card updated from its own provider and naming it, `/ft models`
and `/ft list` showing both, ids looked up across providers, and one provider answering 500s while
the other keeps posting."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from bot.messages.table import table_texts
from storage.models import Job
from tests.conftest import wait_for
from tests.helpers import chat_jsonl
from tests.providers.conftest import CHANNEL


def _file(kit) -> str:  # noqa: ANN001
    return kit.sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]


def _card(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks")):
            return m
    return None


def _alert(slack, job_id: str) -> dict[str, Any] | None:  # noqa: ANN001
    for m in slack.channel_messages(CHANNEL):
        if not m.get("thread_ts") and job_id in (m.get("text") or "") and "succeeded" in (m.get("text") or "") and "Base model" not in json.dumps(m.get("blocks")):
            return m
    return None


def _row(team, job_id: str) -> Job:  # noqa: ANN001
    with team.bot.services.db.session() as s:
        row = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        s.expunge_all()
        return row


def test_a_job_on_each_provider_with_its_own_card_models_and_list(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "azure"], default="openai")
    openai_job = team.ask(f"start {_file(kits['openai'])} epochs=2 batch=4")["text"].split("`")[1]
    azure_job = team.ask(f"start {_file(kits['azure'])} epochs=2 batch=4 provider=azure")["text"].split("`")[1]
    assert openai_job in kits["openai"].jobs() and openai_job not in kits["azure"].jobs()
    assert azure_job in kits["azure"].jobs() and azure_job not in kits["openai"].jobs()
    assert (_row(team, openai_job).provider, _row(team, azure_job).provider) == ("openai", "azure")

    # Each card ends up with its own provider's model, and names its provider.
    wait_for(lambda: _alert(slack, openai_job) and _alert(slack, azure_job), timeout=20)
    for job_id, kit, label in ((openai_job, kits["openai"], "OpenAI"), (azure_job, kits["azure"], "Azure OpenAI")):
        model = kit.jobs()[job_id]["fine_tuned_model"]
        blocks = json.dumps(_card(slack, job_id)["blocks"])
        assert model in blocks and f"\\u00b7 {label}" in blocks and "step 6/6" in blocks, blocks
        assert label in json.dumps(_alert(slack, job_id)["blocks"])
    assert "Azure OpenAI" not in json.dumps(_card(slack, openai_job)["blocks"])

    # `/ft models` lists both providers' models, each with its provider; `/ft list` too.
    models = json.dumps(team.ask("models"))
    for job_id, kit in ((openai_job, kits["openai"]), (azure_job, kits["azure"])):
        assert kit.jobs()[job_id]["fine_tuned_model"] in models and job_id in models
    assert "\\u00b7 Azure OpenAI" in models and "\\u00b7 OpenAI" in models
    listing = json.dumps(team.ask("list"))
    assert openai_job in listing and azure_job in listing and "\\u00b7 Azure OpenAI" in listing
    assert team.bot.slack.event({"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"}).status == 200
    home = json.dumps(wait_for(lambda: slack.calls("views.publish"))[0].args["view"])
    assert openai_job in home and azure_job in home and "\\u00b7 Azure OpenAI" in home and "\\u00b7 OpenAI" in home

    # Ids are looked up across providers; a prefix both share is answered with the candidates.
    status = team.ask(f"status {azure_job}")
    assert azure_job in status["text"] and "Azure OpenAI" in json.dumps(status["blocks"])
    both = team.ask("status ftjob-")
    assert "matches several jobs" in both["text"] and f"`{openai_job}` (openai)" in both["text"] and f"`{azure_job}` (azure)" in both["text"], both

    # `/ft try` goes to the provider that has the model: Azure's needs a deployment.
    azure_model = kits["azure"].jobs()[azure_job]["fine_tuned_model"]
    openai_model = kits["openai"].jobs()[openai_job]["fine_tuned_model"]
    assert "not a deployment" in team.ask(f"try {azure_model} hi")["text"]
    assert "You asked: hi" in team.ask(f"try {openai_model} hi")["text"]

    # Deleting the Azure model asks Azure, not OpenAI.
    asked = team.ask(f"delete-model {azure_model}")
    assert "request #" in asked["text"], asked
    assert team.last_request().provider == "azure"


def test_one_provider_failing_never_holds_back_the_other(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    team = launch(db_url, ["openai", "azure"], default="azure")
    kits["openai"].slow(step_seconds=1.0)  # still running when its errors start
    kits["azure"].slow(step_seconds=0.3)
    openai_job = team.ask(f"start {_file(kits['openai'])} epochs=2 batch=4 provider=openai")["text"].split("`")[1]
    azure_job = team.ask(f"start {_file(kits['azure'])} epochs=2 batch=4")["text"].split("`")[1]
    wait_for(lambda: _card(slack, openai_job) and _card(slack, azure_job))

    kits["openai"].fail(1.0, ("500",))  # every OpenAI request now answers 500
    wait_for(lambda: _alert(slack, azure_job), timeout=20)
    # Azure's job was followed to the end while OpenAI answered nothing but errors.
    row = wait_for(lambda: (r := _row(team, openai_job)).poll_failures and r)
    assert not row.is_final and "server error" in (row.last_poll_error or "")
    assert _alert(slack, openai_job) is None

    # OpenAI back: its job catches up with its card and its alert (backoff is short at this interval).
    kits["openai"].heal()
    wait_for(lambda: _alert(slack, openai_job), timeout=30)
    assert _row(team, openai_job).poll_failures == 0


def test_a_provider_that_hangs_does_not_slow_the_others_updates(db_url, launch, kits, slack) -> None:  # noqa: ANN001
    """OpenAI stops answering (each request hangs 15 s, within the client's timeout); Azure's job is
    followed to its alert while OpenAI's first hung request has not even come back."""
    team = launch(db_url, ["openai", "azure"], default="azure", provider_timeout=30)
    kits["azure"].slow(step_seconds=0.2)
    kits["openai"].slow(step_seconds=60)  # stays running: it is polled all along
    openai_job = team.ask(f"start {_file(kits['openai'])} epochs=2 batch=4 provider=openai")["text"].split("`")[1]
    wait_for(lambda: _card(slack, openai_job))
    kits["openai"].fail(1.0, ("slow",), slow_seconds=15)
    asked = dict(kits["openai"].sandbox.state.requests)
    azure_job = team.ask(f"start {_file(kits['azure'])} epochs=2 batch=4")["text"].split("`")[1]
    wait_for(lambda: _alert(slack, azure_job), timeout=12)
    row = _row(team, openai_job)
    # Still inside its first hung call: nothing came back from OpenAI, not even an error.
    assert row.poll_failures == 0 and row.last_poll_error is None and not row.is_final
    # …and OpenAI was being asked meanwhile (the hung request is in flight), not skipped.
    assert sum(kits["openai"].sandbox.state.requests.values()) > sum(asked.values())
    kits["openai"].heal()


def test_upload_to_a_named_provider_then_start_there(sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    from tests.listeners.test_dataset_intake import chat_lines
    from tests.providers.test_contract import _file_values, _posts

    team = launch(sqlite_url, ["openai", "azure"], default="openai", worker=False)
    assert "not enabled" in team.ask("upload provider=together")["text"]
    assert "`provider` must be one of" in team.ask("upload provider=bogus")["text"]
    assert slack.calls("views.open") == []

    assert team.bot.slack.command("upload provider=azure", trigger_id="1.2").status == 200
    opened = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    assert "Uploaded to *Azure OpenAI*" in json.dumps(opened["blocks"])
    f = slack.add_user_file("support.jsonl", chat_lines(12))
    team.bot.slack.view_submission("upload_dataset", _file_values(f["id"], "support.jsonl"), private_metadata=opened["private_metadata"])
    report = wait_for(lambda: _posts(slack))[0]
    assert "provider=azure" in json.dumps(report["blocks"])  # the suggested start names the provider
    assert [x["filename"] for x in kits["azure"].files()] == ["support.jsonl"] and kits["openai"].files() == []

    # The dataset lives at Azure: a start at the default provider (OpenAI) says so, nothing is made.
    elsewhere = team.ask("start support")
    assert "was uploaded to azure, not to openai" in elsewhere["text"], elsewhere
    assert kits["openai"].jobs() == {}
    started = team.ask("start support provider=azure epochs=1")
    assert "Started" in started["text"], started
    assert list(kits["azure"].jobs()) == [started["text"].split("`")[1]]

    # `/ft files` names each file's provider; the start form offers the providers, the default first chosen.
    files = team.ask("files")
    rows = table_texts(next(b for b in files["blocks"] if b["type"] == "table"))
    assert rows[0][:3] == ["Name", "File", "Provider"] and ["support.jsonl", "azure"] in [[r[0], r[2]] for r in rows[1:]]
    assert team.bot.slack.command("start", trigger_id="3.4").status == 200
    form = wait_for(lambda: slack.calls("views.open")[1:])[0].args["view"]
    [provider_block] = [b for b in form["blocks"] if b["block_id"] == "provider"]
    assert [o["value"] for o in provider_block["element"]["options"]] == ["openai", "azure"]
    assert provider_block["element"]["initial_option"]["value"] == "openai"
    assert "\\u00b7 Azure OpenAI" in json.dumps(form["blocks"])
