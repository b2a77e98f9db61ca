"""Live retirement dates and sunset mode, end to end: the sandbox's models list says `shutdown_date`
(read by the real openai client), which beats ftbot's table in `/ft models`, the App Home, the final
alert and the warnings; a start on a base whose training has ended is refused before any request."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from storage.models import Job
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

CH = "C0001"
BASE = "gpt-4o-mini-2024-07-18"


def _say_shutdown(sandbox, model: str, when: str | None) -> dict:  # noqa: ANN001
    """Through the sandbox's control route, as the real service would start reporting it."""
    r = httpx.post(f"{sandbox.base}/_sandbox/models/shutdown", json={"model": model, "shutdown_date": when})
    assert r.status_code == 200, r.text
    return r.json()


def test_sandbox_reports_shutdown_dates_in_the_openai_shape(sandbox) -> None:  # noqa: ANN001
    from openai import OpenAI

    client = OpenAI(api_key="sk-test", base_url=sandbox.url)
    listed = {m.id: m for m in client.models.list()}
    assert listed[BASE].shutdown_date == "2027-01-14" and listed["babbage-002"].shutdown_date is None
    fid = sandbox.state.add_file("t.jsonl", chat_jsonl(12), "fine-tune")["id"]
    job = client.fine_tuning.jobs.create(model=BASE, training_file=fid)
    model = wait_for(lambda: client.fine_tuning.jobs.retrieve(job.id).fine_tuned_model, timeout=20)
    # A fine-tune inherits its base's date, and follows it when the base's date changes.
    assert client.models.retrieve(model).shutdown_date == "2027-01-14"
    _say_shutdown(sandbox, BASE, "2026-12-20")
    assert client.models.retrieve(model).shutdown_date == "2026-12-20"
    assert {m.id: m for m in client.models.list()}[model].shutdown_date == "2026-12-20"
    assert httpx.post(f"{sandbox.base}/_sandbox/models/shutdown", json={"model": "nope", "shutdown_date": None}).status_code == 404


def test_the_providers_date_beats_the_table_everywhere_and_a_new_model_is_warned_at_once(db_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    today = utcnow().date()
    soon = today + timedelta(days=10)
    _say_shutdown(sandbox, BASE, soon.isoformat())  # the table says 2027-01-14
    bot = start_bot(db_url, worker=True)
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    assert bot.slack.command(f"start {fid} epochs=1 batch=4", user="U0001", channel=CH).status == 200
    job_id = wait_for(lambda: sandbox.state.jobs and next(iter(sandbox.state.jobs)))
    model = wait_for(lambda: sandbox.state.jobs[job_id].obj.get("fine_tuned_model"), timeout=20)
    source = f"OpenAI API, read {today:%Y-%m-%d}"

    # The final alert says the base stops serving within 30 days, with the date's source.
    alert = wait_for(lambda: next((m for m in slack.channel_messages(CH) if "Loss chart in the thread" in json.dumps(m.get("blocks"))), None), timeout=20)
    body = json.dumps(alert["blocks"])
    assert f"stops serving in 10 days, on {soon:%Y-%m-%d}" in body and source in body and "/ft migrate" in body
    # The 30-day warning is out without waiting for the hourly check (the worker ran it before the
    # model existed and would run it again in an hour).
    warning = wait_for(lambda: [m for m in slack.channel_messages(CH) if "stops serving in 10 days" in (m.get("text") or "")], timeout=20)
    assert len(warning) == 1 and model in warning[0]["text"] and source in json.dumps(warning[0]["blocks"])

    # `/ft models`: the end of serving, days left and where the date comes from.
    before = len(slack.responses())
    bot.slack.command("models", user="U0001", channel=CH)
    answer = json.dumps(wait_for(lambda: slack.responses()[before:] and slack.responses()[before]))
    assert f"serves until {soon:%Y-%m-%d} (10 days left, {source})" in answer

    # The App Home's countdown for the team's models at risk.
    assert bot.slack.event({"type": "app_home_opened", "user": "U0001", "channel": "D0001", "tab": "home"}).status == 200
    home = json.dumps(wait_for(lambda: slack.calls("views.publish"))[0].args["view"])
    assert "Models that stop serving soon" in home and model in home and "10 days left" in home

    # Nothing reported any more: ftbot's table is back in charge, and says so.
    _say_shutdown(sandbox, BASE, None)
    bot.services.extras["live_retirement_dates"].forget()
    before = len(slack.responses())
    bot.slack.command("models", user="U0001", channel=CH)
    answer = json.dumps(wait_for(lambda: slack.responses()[before:] and slack.responses()[before]))
    assert "serves until 2027-01-14" in answer and "ftbot's table" in answer


def test_the_live_date_is_read_once_per_cache_period(sqlite_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    from bot.retirements.live import retirements_for

    bot = start_bot(sqlite_url)
    httpx.delete(f"{sandbox.base}/_sandbox/stats")
    ends = retirements_for(bot.services)
    for _ in range(5):
        assert ends.end_of("openai", BASE).source.startswith("OpenAI API, read")
    assert sandbox.state.requests.get("list_models", 0) == 1, sandbox.state.requests


def test_a_start_on_a_sunset_base_is_refused_before_any_request_with_the_way_out(db_url, start_bot, slack, sandbox, tmp_path) -> None:  # noqa: ANN001
    today = utcnow().date()
    f = tmp_path / "r.json"
    f.write_text(json.dumps({BASE: {"training_ends": str(today - timedelta(days=1)), "serving_ends": str(today + timedelta(days=40))}}))
    bot = start_bot(db_url)
    bot.services.settings = replace(bot.services.settings, retirements_file=str(f))
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    httpx.delete(f"{sandbox.base}/_sandbox/stats")

    for text in (f"start {fid}", f"start {fid} model={BASE}", f"start {fid} model=gpt-4o-mini"):
        before = len(slack.responses())
        assert bot.slack.command(text, user="U0001", channel=CH).status == 200
        answer = wait_for(lambda b=before: slack.responses()[b:] and slack.responses()[b])
        assert "takes no new fine-tuning jobs on `gpt-4o-mini" in answer["text"], answer
        assert f"since {today - timedelta(days=1):%Y-%m-%d} (FTBOT_RETIREMENTS), so nothing was started" in answer["text"], answer
        assert "/ft migrate MODEL to=together" in answer["text"]
    assert not sandbox.state.jobs
    asked = {k: v for k, v in sandbox.state.requests.items() if k != "list_models"}
    assert asked == {}, asked  # not a file read, not a job request: only the models list, for its dates
    with bot.services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0

    # The start form does not offer it; the other bases stay.
    assert bot.slack.command("start", user="U0001", channel=CH, trigger_id="trig-1").status == 200
    view = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    offered = [o["value"] for b in view["blocks"] if b.get("block_id") == "model" for o in b["element"].get("options", [])]
    assert BASE not in offered and "gpt-4.1-mini-2025-04-14" in offered
    model_block = next(b for b in view["blocks"] if b.get("block_id") == "model")
    assert "initial_option" not in model_block["element"]

    # A form that names it anyway (an old form) is refused the same way, in an ephemeral message.
    values = {"file": {"value": {"type": "static_select", "selected_option": {"value": fid}}}, "model": {"value": {"type": "static_select", "selected_option": {"value": BASE}}}}
    assert bot.slack.view_submission("start_job", values, user="U0001", private_metadata=json.dumps({"channel": CH})).status == 200
    eph = wait_for(lambda: [c for c in slack.calls("chat.postEphemeral") if "takes no new fine-tuning jobs" in (c.args.get("text") or "")])
    assert "/ft migrate" in eph[0].args["text"] and not sandbox.state.jobs


def test_a_training_end_the_provider_reports_closes_starts_too(sqlite_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    """Azure's models list says `deprecation: {fine_tune, inference}` in unix seconds (the adapter
    Azure shares with OpenAI reads it): a training end from the provider refuses a start like the table's."""
    from datetime import UTC, datetime

    today = utcnow().date()
    ended = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=2)
    with sandbox.state.lock:
        sandbox.state.models[BASE]["deprecation"] = {"fine_tune": int(ended.timestamp()), "inference": int((ended + timedelta(days=60)).timestamp())}
    bot = start_bot(sqlite_url)
    listed = {m.id: m for m in bot.services.provider.list_models()}
    assert listed[BASE].training_ends == ended.date()
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    before = len(slack.responses())
    bot.slack.command(f"start {fid}", user="U0001", channel=CH)
    answer = wait_for(lambda: slack.responses()[before:] and slack.responses()[before])
    assert f"since {ended.date():%Y-%m-%d} (OpenAI API, read {today:%Y-%m-%d})" in answer["text"] and "/ft migrate" in answer["text"]
    assert not sandbox.state.jobs


def test_a_date_in_milliseconds_is_read_without_a_crash(sqlite_url, start_bot, slack, sandbox) -> None:  # noqa: ANN001
    # (NaN, infinity and out-of-range numbers: tests/retirements/test_table.py, on day_of itself)
    from bot.retirements.live import retirements_for

    bot = start_bot(sqlite_url)
    soon = utcnow().date() + timedelta(days=10)
    millis = int(datetime.combine(soon, datetime.min.time(), UTC).timestamp() * 1000)
    try:
        # Milliseconds since the epoch: read as the day they name.
        _say_shutdown(sandbox, BASE, str(millis))
        assert retirements_for(bot.services).end_of("openai", BASE).serving_ends == soon
        # Far out of range: unreadable, so ftbot's table decides.
        _say_shutdown(sandbox, BASE, "9" * 40)
        bot.services.extras["live_retirement_dates"].forget()
        end = retirements_for(bot.services).end_of("openai", BASE)
        assert str(end.serving_ends) == "2027-01-14" and "ftbot's table" in end.source
    finally:
        _say_shutdown(sandbox, BASE, "2027-01-14")
