"""The evaluation messages stay within Slack's limits and escape what models and users wrote."""

from __future__ import annotations

import json

from slack_sdk.models.blocks import TableBlock

from bot.messages.eval_report import headline_line, progress_message, report_message, with_headline


def _summary(text: str) -> dict:
    comp = {"n": 3, "model": 0.5, "baseline": 0.25, "diff": 0.25, "ci_low": -0.1, "ci_high": 0.6, "wins": 2, "ties": 0, "losses": 1}
    return {
        "examples": 5, "scored": 3, "skipped": {"too_long": 2}, "headline": "exact match 25 % → 50 %",
        "comparisons": {"exact": comp, "similarity": comp, "json": {"n": 0}, "tools": {"n": 0}},
        "slots": {"model": {"model": text, "answered": 3, "failed": 2, "latency_p50_ms": 12.0, "prompt_tokens": 10, "completion_tokens": 5, "usd": None, "errors": [text]},
                  "baseline": {"model": "b", "answered": 5, "failed": 0, "latency_p50_ms": 10.0, "prompt_tokens": 10, "completion_tokens": 5, "usd": 0.0001, "errors": []}},
        "usd": None, "most_different": [{"line": i, "prompt": text, "reference": text, "model": text, "baseline": text, "score": "exact", "model_score": 1.0, "baseline_score": 0.0} for i in range(3)],
    }


def test_report_within_limits_and_escaped_whatever_the_text() -> None:
    hostile = "<!channel> <@U123> & " + "x" * 20000
    msg = report_message(model=hostile, baseline="gpt-4o-mini", summary=_summary(hostile), scores=["exact", "similarity", "json", "tools"], source_note="the file")
    assert len(msg["text"]) <= 4000 and "<!channel>" not in msg["text"] and "&lt;!channel&gt;" in msg["text"]
    for b in msg["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000 and "<!channel>" not in b["text"]["text"] and "<@U123>" not in b["text"]["text"]
    table = next(b for b in msg["blocks"] if b["type"] == "table")
    TableBlock(**{k: v for k, v in table.items() if k != "type"}).validate_json()
    assert len(table["rows"]) <= 100 and all(len(r) <= 20 for r in table["rows"])
    assert table["rows"][1][3]["text"] == "+25 pts [-10 pts, +60 pts]" and table["rows"][1][4]["text"] == "2 / 0 / 1"
    assert "no example this score applies to" in json.dumps(table)
    body = json.dumps(msg["blocks"])
    assert "3 of 5 examples scored, failed: model 2" in body and "2 too long" in body and "unknown (no price for a model)" in body


def test_progress_and_headline() -> None:
    p = progress_message(run_id=7, model="<m>", baseline="b", done=3, total=12, source_note="x", estimate_usd=0.5)
    assert "3 / 12" in p["text"] and p["blocks"][-1]["elements"][0]["value"] == "7" and "&lt;m&gt;" in p["text"]
    done = progress_message(run_id=7, model="m", baseline="b", done=12, total=12, source_note="x", estimate_usd=None, state="done")
    assert all(b["type"] != "actions" for b in done["blocks"])
    line = headline_line("exact match 31 % → 78 %", 50, 50)
    alert = with_headline({"text": "Fine-tuning x succeeded", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "a"}}, {"type": "context", "elements": []}]}, line)
    assert "exact match 31 % → 78 %" in alert["blocks"][1]["text"]["text"] and len(alert["blocks"]) == 3


def test_parity_messages_within_limits_and_escaped_whatever_the_text() -> None:
    from bot.messages.eval_report import parity_message, parity_nothing_to_compare

    hostile = "<!channel> <@U123> & " + "x" * 20000
    summary = _summary(hostile)
    summary["slots"]["baseline"]["saved"] = True
    agreement = {"n": 10, "exact": 7, "exact_rate": 0.7, "similarity": 0.75, "headline": hostile}
    msgs = [
        report_message(model=hostile, baseline=hostile, summary=summary, scores=["exact", "similarity"], source_note="the saved answers", agreement=agreement),
        parity_message(3, hostile, in_thread=True),
        parity_nothing_to_compare(hostile, hostile),
    ]
    for msg in msgs:
        assert len(msg["text"]) <= 4000 and "<!channel>" not in msg["text"] and "<@U123>" not in msg["text"]
        for b in msg["blocks"]:
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= 3000 and "<!channel>" not in b["text"]["text"] and "<@U123>" not in b["text"]["text"]
    body = json.dumps(msgs[0]["blocks"])
    assert "the same answer on 7 of 10 (70 %)" in body and "ROUGE-L F1 between the two answers 0.75" in body and "answers saved while it served" in body
    assert msgs[0]["text"].startswith("Parity report of ")
