"""The Slack report and the datasets list stay within Block Kit's limits whatever the data."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from bot.datasets.validate import validate_file
from bot.messages.dataset_report import (
    DatasetRow,
    ReportContext,
    dataset_report,
    datasets_list,
    intake_problem,
)
from bot.messages.table import table_texts
from bot.slack_standin.server import _message_problem

HOSTILE = "<!channel> *bold* `tick` " + "x" * 5000


def within_limits(message: dict) -> None:
    assert _message_problem(message) is None  # what the Slack stand-in (and Slack) would refuse
    assert len(message["text"]) <= 3000
    assert len(message["blocks"]) <= 50
    for b in message["blocks"]:
        if "text" in b and b["text"]["type"] == "mrkdwn":
            assert len(b["text"]["text"]) <= 3000
        for f in b.get("fields", []):
            assert len(f["text"]) <= 2000
        assert len(b.get("fields", [])) <= 10
        for el in b.get("elements", []):
            if el.get("type") == "button":
                assert len(el["text"]["text"]) <= 75 and len(el["value"]) <= 2000


def test_a_file_with_every_kind_of_error_many_times(tmp_path: Path) -> None:
    lines = []
    for i in range(3000):
        lines.append(["garbage", "", "[1]", '{"messages": []}', '{"hello": 1}', '{"messages": [{"role": "bot", "content": "x"}]}', '{"prompt": "p", "completion": "c"}'][i % 7])
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    report = validate_file(p, model="gpt-4o-mini-2024-07-18")
    msg = dataset_report(report, ReportContext(name=HOSTILE + ".jsonl", user_id="U1", slack_file_id="F1", model="gpt-4o-mini-2024-07-18", channel_id="C1"))
    within_limits(msg)
    text = json.dumps(msg)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "dataset_upload_anyway" in text and "Not one JSON object — lines 1 (unexpected character, expected a JSON value at column 1 of the line), 3 (a JSON list, not an object), 8 (" in json.dumps(msg, ensure_ascii=False)


def test_a_clean_report_says_how_to_start(tmp_path: Path) -> None:
    p = tmp_path / "ok.jsonl"
    p.write_text("\n".join(json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}) for i in range(10)))
    report = validate_file(p, model="gpt-4o-mini-2024-07-18")
    msg = dataset_report(report, ReportContext(name="ok.jsonl", user_id="U1", slack_file_id="F1", model="gpt-4o-mini-2024-07-18", provider_file_id="file-abc"))
    within_limits(msg)
    text = json.dumps(msg)
    assert "/ft start ok`" in text and "file-abc" in msg["text"] and "dataset_upload_anyway" not in text


def test_problem_and_list_are_escaped_and_bounded() -> None:
    within_limits(intake_problem("U1", HOSTILE, HOSTILE))
    assert "<!channel>" not in json.dumps(intake_problem("U1", HOSTILE, HOSTILE))
    rows = [DatasetRow(HOSTILE, f"file-{i}", 10**i % 10**10, i, "clean", 1000 * i, "U1", datetime(2026, 11, 21, tzinfo=UTC)) for i in range(120)]
    msg = datasets_list(rows)
    within_limits(msg)
    # A table of 99 rows, a note for the rest; names are raw_text cells (shown verbatim, never mrkdwn).
    table = next(b for b in msg["blocks"] if b["type"] == "table")
    texts = table_texts(table)
    assert len(texts) == 100 and texts[0][:2] == ["Name", "File"] and texts[1][0].startswith("<!channel> *bold*")
    assert texts[1][1:] == ["file-0", "1 B", "0", ":white_check_mark: clean", "0", "<@U1>", "2026-11-21 00:00"]
    assert "21 older ones not shown" in json.dumps(msg)
    assert "<!channel>" not in json.dumps([b for b in msg["blocks"] if b["type"] != "table"]) and "<!channel>" not in msg["text"]
    assert "No datasets yet" in datasets_list([])["text"]
