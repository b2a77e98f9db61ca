"""Block Kit builders are pure: plain data in, a dict out. These check what a person would read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.jobs.view import JobView
from bot.messages.answers import home_view, job_list
from bot.messages.events import EventView, event_replies
from bot.messages.help import help_message
from bot.messages.job_card import final_alert, job_card, progress_bar, status_label

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _job(**kw) -> JobView:  # noqa: ANN003
    base = dict(id="ftjob-abc123", status="running", base_model="gpt-4o-mini-2024-07-18", step=150, total_steps=300, train_loss=0.4321, valid_loss=0.51, train_accuracy=0.88, estimated_finish=NOW + timedelta(minutes=12, seconds=5), started_by="U0001")
    base.update(kw)
    return JobView(**base)


def test_running_card_shows_progress_metrics_eta_and_who() -> None:
    card = job_card(_job(), NOW)
    text = json.dumps(card, ensure_ascii=False)
    assert "50% (step 150/300)" in text and "0.432" in text and "0.510" in text
    assert "about 12 min" in text and "<@U0001>" in text
    assert [e["action_id"] for e in card["blocks"][-1]["elements"]] == ["job_pause", "job_cancel"]
    assert card["text"] == "Fine-tuning ftjob-abc123: running 50%"


def test_final_cards_show_model_or_error_and_no_buttons() -> None:
    done = json.dumps(job_card(_job(status="succeeded", step=300, fine_tuned_model="ft:gpt-4o-mini:acme:x:1", estimated_finish=None), NOW))
    assert "ft:gpt-4o-mini:acme:x:1" in done and "job_cancel" not in done and "ETA" not in done
    failed = json.dumps(job_card(_job(status="failed", error_message="line 3 <is> bad & broken"), NOW))
    assert "line 3 &lt;is&gt; bad &amp; broken" in failed


def test_unknown_status_is_text_not_a_crash() -> None:
    assert "queued for review" in status_label("queued_for_review")
    card = json.dumps(job_card(_job(status="queued_for_review", step=None, total_steps=None), NOW))
    assert "queued for review" in card and "no training steps yet" in card


def test_progress_bar_bounds() -> None:
    assert progress_bar(None, None) == "no training steps yet"
    assert "100% (step 310/300)" in progress_bar(310, 300)
    assert progress_bar(0, 300).count("█") == 0


def test_final_alert_wording() -> None:
    ok = final_alert(_job(status="succeeded", fine_tuned_model="ft:m:o:s:1"))
    assert "succeeded" in ok["text"] and "/ft try ft:m:o:s:1" in json.dumps(ok)
    bad = final_alert(_job(status="failed", error_message="<!channel> boom"))
    assert "&lt;!channel&gt; boom" in json.dumps(bad) and "<!channel>" not in json.dumps(bad)
    odd = final_alert(_job(status="expired"))
    assert "ended as *expired*" in json.dumps(odd)


def test_event_replies_keep_order_fold_newlines_and_split_long_runs() -> None:
    events = [EventView(NOW, "info", f"event {i}\nsecond line <@U1>") for i in range(60)]
    replies = event_replies(events)
    lines = [ln for r in replies for ln in r["text"].split("\n")]
    assert len(lines) == 60 and lines[0].endswith("event 0 second line &lt;@U1&gt;")
    assert all(len(r["text"]) <= 2800 for r in replies) and len(replies) == 3
    warn = event_replies([EventView(NOW, "error", "bad")])[0]["text"]
    assert ":red_circle:" in warn


def test_help_lists_the_given_verbs_and_marks_operator_ones() -> None:
    every = ("help", "upload", "files", "start", "list", "status", "events", "checkpoints", "metrics", "cancel", "pause", "resume", "watch", "unwatch", "models", "delete-model", "try", "audit")
    msg = json.dumps(help_message(every, {"start"}))
    for verb in every:
        assert f"/ft {verb}" in msg
    assert msg.count(":lock:") == 2  # the start line and the note
    assert "<" not in msg and ">" not in msg  # placeholders Slack would not read as links
    some = json.dumps(help_message({"help", "status"}))
    assert "/ft status JOB_ID" in some and "/ft start" not in some and "/ft try" not in some and ":lock:" not in some
    assert all(len(b["text"]["text"]) <= 3000 for b in help_message(every)["blocks"] if b["type"] == "section")


def test_job_list_paging_buttons() -> None:
    jobs = [_job(id=f"ftjob-{i}") for i in range(10)]
    first = job_list(jobs, offset=0, total=25)
    assert [e["text"]["text"] for e in first["blocks"][-1]["elements"]] == ["Older"]
    middle = job_list(jobs, offset=10, total=25)
    assert [e["value"] for e in middle["blocks"][-1]["elements"]] == ["0", "20"]
    assert "No fine-tuning jobs yet" in job_list([], offset=0, total=0)["text"]


def test_home() -> None:
    home = home_view([_job(), _job(id="ftjob-done", status="succeeded")], NOW)
    assert home["type"] == "home" and "Running now* (1)" in json.dumps(home)


HOSTILE = "<!channel> <@U123> &amp; <http://evil|click>"


def _no_markup(text: str) -> None:
    """Nothing Slack would turn into a mention, link or an entity other than the escaped text."""
    for raw in ("<!channel>", "<@U123>", "<http"):
        assert raw not in text, (raw, text)
    assert "&lt;!channel&gt;" in text


def test_hostile_provider_text_is_escaped_in_blocks_and_text() -> None:
    from bot.messages.answers import steered_answer, try_answer

    answer = try_answer("ft:m:o:s:1", HOSTILE, HOSTILE)
    _no_markup(answer["text"])
    _no_markup(json.dumps(answer["blocks"]))
    assert "&amp;amp;" in answer["text"]  # the model's literal "&amp;" shows as typed
    alert = final_alert(_job(id="ftjob-<!here>", status="failed", error_message=HOSTILE))
    assert "<!here>" not in alert["text"] and "<!here>" not in json.dumps(alert["blocks"])
    _no_markup(json.dumps(alert["blocks"]))
    assert "<!here>" not in job_card(_job(id="ftjob-<!here>"), NOW)["text"]
    steered = steered_answer(_job(status="<!channel>"), "cancel", by="U0001")
    _no_markup(steered["text"])
    assert steered["text"] == steered["blocks"][0]["text"]["text"]


def test_long_text_is_cut_before_escaping_and_stays_within_limits() -> None:
    from bot.messages.answers import try_answer
    from bot.mrkdwn import clip, truncate

    assert clip("a&b", 10) == "a&amp;b"
    for n in range(1, 40):
        cut = clip("x" * 7 + "&" * 40, n)
        assert len(cut) <= n and not cut.rstrip("…").endswith(("&", "&a", "&am", "&amp"))
        assert truncate("y&amp;" * 10, n).count("&") == truncate("y&amp;" * 10, n).count("&amp;")
    assert truncate("see <@U12345>", 10) == "see …"
    answer = try_answer("m" * 500, "&" * 5000, "<" * 5000)
    section = answer["blocks"][0]["text"]["text"]
    assert len(section) <= 3000 and len(answer["text"]) <= 3000
    assert "&am…" not in section and not section.split("\n")[-1].rstrip("…").endswith(("&", "&l", "&lt"))


def test_home_notice_replaces_an_older_one() -> None:
    from bot.messages.answers import view_with_notice

    home = home_view([_job()], NOW, notice="first")
    assert home["blocks"][0]["text"]["text"] == "first"
    again = view_with_notice({**home, "id": "V1", "hash": "h", "team_id": "T1"}, "second")
    texts = json.dumps(again)
    assert "second" in texts and "first" not in texts and "hash" not in again and len(again["blocks"]) == len(home["blocks"])
    many = home_view([_job(id=f"ftjob-{i}") for i in range(10)] + [_job(id=f"ftjob-d{i}", status="succeeded") for i in range(30)], NOW, notice="n")
    assert len(many["blocks"]) <= 100 and many["blocks"][-1]["type"] == "context"


def test_models_table_over_slacks_row_limit_is_cut_with_a_note() -> None:
    from bot.messages.answers import ModelView, models_answer
    from bot.messages.table import table_texts
    from bot.slack_standin.server import _message_problem

    models = [ModelView(f"ft:gpt-4o-mini:org:<!channel>:{i}", NOW, f"ftjob-{i}", "U0001", None, "together" if i % 2 else "openai") for i in range(250)]
    msg = models_answer(models, unavailable=["Azure OpenAI: <!here> down"])
    assert _message_problem(msg) is None
    [table] = [b for b in msg["blocks"] if b["type"] == "table"]
    rows = table_texts(table)
    assert len(rows) == 100 and rows[0] == ["Model", "Provider", "Made by job", "Started by", "Serves until"]
    assert rows[2] == ["ft:gpt-4o-mini:org:<!channel>:1", "Together AI", "ftjob-1", "<@U0001>", "no end announced"]
    notes = json.dumps([b for b in msg["blocks"] if b["type"] == "context"])
    assert "151 more models not shown" in notes and "&lt;!here&gt;" in notes
    _no_markup(msg["text"])
    assert len(msg["text"]) <= 3000


def test_job_list_is_a_table_with_statuses_and_the_fallback_lists_jobs() -> None:
    from bot.messages.table import table_texts

    msg = job_list([_job(), _job(id="ftjob-x", status="weird_new", step=None, started_by=None)], offset=0, total=2)
    rows = table_texts(next(b for b in msg["blocks"] if b["type"] == "table"))
    assert rows[1][:4] == [":runner: running", "50%", "ftjob-abc123", "gpt-4o-mini-2024-07-18"] and rows[1][5] == "<@U0001>"
    assert rows[2][0] == ":grey_question: weird new" and rows[2][5] == "–"
    assert "ftjob-abc123" in msg["text"] and "ftjob-x" in msg["text"]
