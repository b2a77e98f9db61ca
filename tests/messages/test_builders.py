"""Block Kit builders are pure: plain data in, a dict out. These check what a person would read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from bot.jobs.view import JobView
from bot.messages.answers import FileView, files_answer, home_view, job_list
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


def test_help_lists_every_verb_and_marks_operator_ones() -> None:
    msg = json.dumps(help_message(frozenset({"start"})))
    for verb in ("help", "upload", "files", "start", "list", "status", "events", "checkpoints", "metrics", "cancel", "pause", "resume", "watch", "unwatch", "models", "delete-model", "try", "audit"):
        assert f"/ft {verb}" in msg
    assert ":lock:" in msg
    assert all(len(b["text"]["text"]) <= 3000 for b in help_message()["blocks"] if b["type"] == "section")


def test_job_list_paging_buttons() -> None:
    jobs = [_job(id=f"ftjob-{i}") for i in range(10)]
    first = job_list(jobs, offset=0, total=25)
    assert [e["text"]["text"] for e in first["blocks"][-1]["elements"]] == ["Older"]
    middle = job_list(jobs, offset=10, total=25)
    assert [e["value"] for e in middle["blocks"][-1]["elements"]] == ["0", "20"]
    assert "No fine-tuning jobs yet" in job_list([], offset=0, total=0)["text"]


def test_files_and_home() -> None:
    text = json.dumps(files_answer([FileView("file-1", "a&b.jsonl", 5_000_000, 120, "errors")]))
    assert "a&amp;b.jsonl" in text and "4.8 MB" in text and ":x: errors" in text
    home = home_view([_job(), _job(id="ftjob-done", status="succeeded")], NOW)
    assert home["type"] == "home" and "Running now* (1)" in json.dumps(home)
