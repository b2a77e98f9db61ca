"""OpenAI's sunset on each date that matters, end to end (signed requests to /slack/events, the real
clients to the OpenAI and Together AI sandboxes, the real worker): before the 30-day window, inside
it, between the training end (2027-01-06) and the end of serving (2027-01-14), after it, a year
later. The app's clock is set to the date (tests/conftest.py's `app_clock`); nothing reads the machine's.

Covered per date: a start on the OpenAI base (taken, or refused with the date and the way out), a
start without `model=` (OpenAI's default while it trains, else Together AI's, saying so), the start
form's default, the dataset report's next step, `/ft models`' countdown, the retirement warning due,
an approval's expiry. Then dates that move, and dates that cannot be read.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.retirements.live import retirements_for
from bot.retirements.warnings import threshold_for
from storage.models import ApprovalRequest, Job, RetirementNotice
from tests.conftest import KEY_DATES, wait_for
from tests.helpers import chat_jsonl
from tests.providers.conftest import CHANNEL

BASE = "gpt-4o-mini-2024-07-18"
TOGETHER_BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
TRAINING_ENDS = date(2027, 1, 6)
SERVING_ENDS = date(2027, 1, 14)
NOTIFY = "C0NOTIFY"


def _say_shutdown(sandbox, model: str, when: str | None) -> None:  # noqa: ANN001
    r = httpx.post(f"{sandbox.base}/_sandbox/models/shutdown", json={"model": model, "shutdown_date": when})
    assert r.status_code == 200, r.text


def _old_model(team, kits, *, suffix: str = "old") -> str:  # noqa: ANN001
    """A fine-tune of the OpenAI base made before the training end: in the sandbox's list and ftbot's table of jobs."""
    model = kits["openai"].add_model(f"ft:{BASE}:sandbox:{suffix}:abc123")
    with team.bot.services.db.session() as s:
        s.add(Job(provider_job_id=f"ftjob-{suffix}", provider="openai", team_id="T0001", status="succeeded", is_final=True, base_model=BASE, fine_tuned_model=model, origin_channel=CHANNEL, started_by="U0001"))
    return model


@pytest.mark.parametrize("day", KEY_DATES)
def test_starts_reports_and_countdowns_on_each_date(day: str, app_clock, sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    app_clock.set(day)
    today = date.fromisoformat(day)
    training_open = today < TRAINING_ENDS
    team = launch(sqlite_url, ["openai", "together"], worker=False)
    oai_file = team.bot.services.providers["openai"].upload_file(chat_jsonl(12), "train.jsonl").id
    tg_file = team.bot.services.providers["together"].upload_file(chat_jsonl(12), "train.jsonl").id

    # A start on the OpenAI base: taken while OpenAI trains, else refused before any request.
    answer = team.ask(f"start {oai_file} model={BASE} epochs=1")
    if training_open:
        assert "Started" in answer["text"] and BASE in answer["text"], answer
    else:
        assert f"takes no new fine-tuning jobs on `{BASE}` since 2027-01-06 (ftbot's table), so nothing was started" in answer["text"], answer
        assert "/ft migrate MODEL to=together" in answer["text"] and "`provider=together`" in answer["text"]
        assert not kits["openai"].jobs()

    # Without model=: OpenAI's default while it trains; after, Together AI's default, said plainly.
    answer = team.ask(f"start {oai_file if training_open else tg_file} epochs=1")
    assert "Started" in answer["text"], answer
    if training_open:
        assert BASE in answer["text"] and "instead" not in answer["text"]
    else:
        assert f"OpenAI takes no new fine-tuning jobs on `{BASE}` since 2027-01-06 (ftbot's table): this job trains `{TOGETHER_BASE}` at Together AI instead" in answer["text"], answer
        assert len(kits["together"].jobs()) == 1
    # …and a file that lives only at OpenAI gets the same note with why it cannot go there.
    if not training_open:
        answer = team.ask(f"start {oai_file} epochs=1")
        assert "trains `meta-llama/Meta-Llama-3.1-8B-Instruct-Reference` at Together AI instead" in answer["text"] and "Unknown training file" in answer["text"], answer

    # The start form starts on a provider whose default still trains.
    assert team.bot.slack.command("start", user="U0001", channel=CHANNEL, trigger_id=f"trig-{day}").status == 200
    view = wait_for(lambda: slack.calls("views.open"))[0].args["view"]
    provider_block = next(b for b in view["blocks"] if b.get("block_id") == "provider")
    model_block = next(b for b in view["blocks"] if b.get("block_id") == "model")
    assert provider_block["element"]["initial_option"]["value"] == ("openai" if training_open else "together")
    placeholder = model_block["element"]["placeholder"]["text"]
    assert placeholder == "the provider's default" if training_open else placeholder.startswith(f"empty: {TOGETHER_BASE} at Together AI (training at OpenAI has ended)")
    offered = [o["value"] for o in model_block["element"]["options"]]
    assert (BASE in offered) == training_open and TOGETHER_BASE in offered

    # A dataset shared with the bot: its report's next step agrees with the dates.
    meta = slack.add_user_file("acme.jsonl", chat_jsonl(12))
    before = len(slack.channel_messages(CHANNEL))
    assert team.bot.slack.event({"type": "file_shared", "file_id": meta["id"], "user_id": "U0001", "channel_id": CHANNEL}).status == 200
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL)[before:] if "acme.jsonl" in (m.get("text") or json.dumps(m.get("blocks")))), None), timeout=20)
    body = json.dumps(report["blocks"])
    if training_open:
        assert "Start a job on it: `/ft start acme`" in body and "No new jobs train" not in body
    else:
        assert "Start a job on it" not in body
        assert f"No new jobs train on `{BASE}` here since 2027-01-06" in body and "/ft upload provider=together" in body
        assert "/ft start acme provider=together" in body and "/ft migrate MODEL to=together" in body

    # `/ft models`: the countdown of a fine-tune made before the training end.
    model = _old_model(team, kits)
    answer = json.dumps(team.ask("models"))
    left = (SERVING_ENDS - today).days
    expected = "stopped serving" if left < 0 else "last day" if left == 0 else f"{left} days left"
    assert f"2027-01-14 ({expected}, OpenAI API, read {today:%Y-%m-%d})" in answer, answer
    assert model in answer


@pytest.mark.parametrize("day", KEY_DATES)
def test_the_warning_due_and_an_approvals_expiry_on_each_date(day: str, app_clock, sqlite_url, launch, kits, slack) -> None:  # noqa: ANN001
    app_clock.set(day)
    today = date.fromisoformat(day)
    team = launch(sqlite_url, ["openai", "together"], notify_channel=NOTIFY, approvals_required=1, approval_ttl_hours=1)
    model = _old_model(team, kits)
    worker = team.bot.services.extras["worker"]
    worker.warn_retirements()  # what the hourly schedule runs (it also ran once at start)
    due = threshold_for((SERVING_ENDS - today).days)
    with team.bot.services.db.session() as s:
        told = [(n.serving_ends, n.threshold) for n in s.scalars(select(RetirementNotice))]
    assert told == ([(SERVING_ENDS, due)] if due else []), (day, told)
    if due:
        days = (SERVING_ENDS - today).days
        warning = wait_for(lambda: [m for m in slack.channel_messages(NOTIFY) if model in (m.get("text") or "")], timeout=20)
        assert len(warning) == 1 and f"stops serving in {days} days (2027-01-14)" in warning[0]["text"], warning

    # An approval asked today expires an hour later by the same clock.
    answer = team.ask(f"delete-model {model}")
    assert "approve" in answer["text"].lower(), answer
    with team.bot.services.db.session() as s:
        req = s.scalars(select(ApprovalRequest)).one()
    assert req.created_at.date() == today and req.expires_at - req.created_at == timedelta(hours=1)
    app_clock.advance(hours=1, seconds=1)
    wait_for(lambda: team.last_request().status == "expired", timeout=20)
    assert model in kits["openai"].sandbox.state.models


@pytest.mark.parametrize("day", ["2026-12-20", "2027-01-10"])
def test_a_moved_date_is_told_once_with_the_old_one_and_the_countdown_follows(day: str, app_clock, db_url, launch, kits, slack) -> None:  # noqa: ANN001
    app_clock.set(day)
    today = date.fromisoformat(day)
    sandbox = kits["openai"].sandbox
    team = launch(db_url, ["openai", "together"], notify_channel=NOTIFY)
    model = _old_model(team, kits)
    worker = team.bot.services.extras["worker"]

    def warnings() -> list[str]:
        return [m.get("text") or "" for m in slack.channel_messages(NOTIFY) if model in (m.get("text") or "")]

    worker.warn_retirements()
    wait_for(lambda: len(warnings()) == 1, timeout=20)

    try:
        for moved, word in ((today + timedelta(days=2), "earlier"), (today + timedelta(days=60), "later")):
            before = len(warnings())
            _say_shutdown(sandbox, BASE, moved.isoformat())
            retirements_for(team.bot.services).live.forget()  # the announcement is read at the next 6-hourly read; here, now
            worker.warn_retirements()
            worker.warn_retirements()  # a second check says nothing new
            got = wait_for(lambda b=before: warnings()[b:], timeout=20)
            wait_for(lambda: not _pending(team), timeout=20)
            assert len(warnings()) == before + 1, warnings()
            previous = SERVING_ENDS if word == "earlier" else today + timedelta(days=2)
            assert f"({moved:%Y-%m-%d} (was {previous:%Y-%m-%d}))" in got[0], got
            message = next(m for m in slack.channel_messages(NOTIFY) if m.get("text") == got[0])
            assert f"The date moved {word}" in json.dumps(message["blocks"])
            # The countdown in `/ft models` follows the new date.
            answer = json.dumps(team.ask("models"))
            assert f"{moved:%Y-%m-%d} ({(moved - today).days} days left, OpenAI API" in answer, answer
    finally:
        _say_shutdown(sandbox, BASE, "2027-01-14")


def _pending(team) -> bool:  # noqa: ANN001
    from storage.models import OutboxMessage

    with team.bot.services.db.session() as s:
        return s.scalar(select(OutboxMessage.id).where(OutboxMessage.delivered_at.is_(None), OutboxMessage.gave_up_at.is_(None)).limit(1)) is not None


@pytest.mark.parametrize("raw", ["0001-01-01T00:00:00+01:00", "NaN", "9999-12-31T23:59:59-01:00", "next tuesday"])
def test_an_unreadable_provider_date_is_unknown_logged_once_and_nothing_fails(raw: str, sqlite_url, launch, kits, slack, caplog) -> None:  # noqa: ANN001
    sandbox = kits["openai"].sandbox
    # No notify channel: the worker's discovery of jobs started outside Slack would race this start.
    team = launch(sqlite_url, ["openai", "together"])
    model = _old_model(team, kits)
    fid = team.bot.services.providers["openai"].upload_file(chat_jsonl(12), "train.jsonl").id
    _say_shutdown(sandbox, BASE, raw)
    caplog.set_level(logging.WARNING, logger="bot.provider.base")
    try:
        retirements_for(team.bot.services).live.forget()
        # `/ft models`, a start and the warnings all work; the table's date stands in.
        for _ in range(2):
            answer = json.dumps(team.ask("models"))
            assert model in answer and "2027-01-14 (44 days left, ftbot's table)" in answer, answer
        assert "Started" in team.ask(f"start {fid} model={BASE} epochs=1")["text"]
        team.bot.services.extras["worker"].warn_retirements()
        said = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
        assert len(said) == 1 and "treated as unknown" in said[0], said
    finally:
        _say_shutdown(sandbox, BASE, "2027-01-14")


def test_a_failed_live_read_backs_off_instead_of_repeating_on_every_command(sqlite_url, launch, kits, app_clock) -> None:  # noqa: ANN001
    from bot.retirements import live as live_mod

    sandbox = kits["openai"].sandbox
    team = launch(sqlite_url, ["openai", "together"], worker=False)
    ends = retirements_for(team.bot.services)
    ends.live.forget()
    httpx.delete(f"{sandbox.base}/_sandbox/stats")
    kits["openai"].fail(1.0, ("500",))
    try:
        for _ in range(5):
            end = ends.end_of("openai", BASE)
            assert end.serving_ends == SERVING_ENDS and end.source == "ftbot's table"
        assert sandbox.state.requests.get("list_models", 0) == 1, sandbox.state.requests
        assert ends.live.retry_after("openai") == live_mod.RETRY_AFTER
    finally:
        kits["openai"].heal()
