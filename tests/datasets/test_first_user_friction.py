"""What a new user tripped on in `ftbot validate` and the Slack report (issue 17, section 3)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from bot.datasets.report_text import render
from bot.datasets.validate import validate_file
from bot.messages.dataset_report import ReportContext, dataset_report
from tests.datasets.test_pricing_and_cli import ftbot

MODEL = "gpt-4o-mini-2024-07-18"


def _chat(i: int) -> str:
    return json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]})


def _file(tmp_path: Path, lines: list[str], name: str = "train.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_each_json_error_keeps_its_own_detail_and_says_column_of_the_line(tmp_path: Path) -> None:
    lines = [_chat(i) for i in range(12)]
    lines[2] = '{"messages": [{"role": "user", "content": "hi"}], "x": tru}'
    lines[5] = '{"messages": [1, 2'
    lines[8] = "not json"
    report = validate_file(_file(tmp_path, lines), model=MODEL)
    [bad] = [i for i in report.errors if i.kind == "not_json"]
    assert bad.lines == [3, 6, 9] and len(set(bad.details)) == 3
    assert bad.details[0] == "invalid literal, expected 'true' at column 56 of the line"
    assert "at column 19 of the line" in bad.details[1] and "line 1 column" not in render(report)
    assert "lines 3 (invalid literal, expected 'true' at column 56 of the line), 6 (" in render(report)


def test_a_line_with_several_unknown_roles_is_listed_once_with_each_role_once(tmp_path: Path) -> None:
    bots = json.dumps({"messages": [{"role": "bot", "content": "x"}, {"role": "robot", "content": "y"}, {"role": "bot", "content": "z"}, {"role": "assistant", "content": "a"}]})
    report = validate_file(_file(tmp_path, [_chat(i) for i in range(11)] + [bots]), model=MODEL)
    [roles] = [i for i in report.errors if i.kind == "unrecognized_role"]
    assert (roles.lines, roles.count, roles.details) == ([12], 1, ["bot, robot"])
    assert "Unrecognised role (system, developer, user, assistant, tool) — line 12 (bot, robot)" in render(report)


def test_a_directory_is_a_directory(tmp_path: Path) -> None:
    out = ftbot("validate", str(tmp_path))
    assert out.returncode == 2 and "is a directory" in out.stderr and "no such file" not in out.stderr
    assert "no such file" in ftbot("validate", str(tmp_path / "missing.jsonl")).stderr


def test_one_epoch_is_singular(tmp_path: Path) -> None:
    report = validate_file(_file(tmp_path, [_chat(i) for i in range(12_501)]), model=MODEL)
    assert report.tokens is not None and report.tokens.epochs == 1
    assert "billed: 1 epoch x " in render(report) and "1 epochs" not in render(report)
    fields = json.dumps(dataset_report(report, ReportContext(name="t.jsonl", user_id="U1", slack_file_id="F1", model=MODEL))["blocks"], ensure_ascii=False)
    assert "1 epoch × " in fields and "1 epochs" not in fields


def test_the_validation_file_is_not_billed(tmp_path: Path) -> None:
    train = _file(tmp_path, [_chat(i) for i in range(20)])
    valid = _file(tmp_path, [_chat(100 + i) for i in range(10)], "valid.jsonl")
    report = validate_file(train, model=MODEL, validation=valid)
    v = report.validation
    assert v is not None and v.tokens is not None and v.tokens.total > 0
    assert (v.tokens.epochs, v.tokens.billed_total, v.tokens.estimated_usd) == (0, 0, None)
    text = render(report)
    validation_part = text.split("validation file:")[1]
    assert "billed: none (a validation file is not trained on)" in validation_part and "estimated cost" not in validation_part
    assert text.count("estimated cost:") == 1


def test_a_binary_file_is_said_once(tmp_path: Path) -> None:
    p = tmp_path / "model.bin"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00\x01\x02\n" * 379)
    report = validate_file(p, model=MODEL)
    assert [(i.kind, i.count) for i in report.errors] == [("binary", 1)] and report.examples == 0
    assert "binary" in (report.stopped_early or "")
    assert render(report).count("\n  - ") == 1
    # Bytes that are not UTF-8 and mostly control characters, without a NUL, are binary too.
    p.write_bytes(bytes([1, 2, 3, 0xFF, 4, 5, 6, 0xFE, 10]) * 500)
    assert [i.kind for i in validate_file(p, model=MODEL).errors] == ["binary"]


def test_retired_and_retiring_models_are_noticed(tmp_path: Path) -> None:
    p = _file(tmp_path, [_chat(i) for i in range(12)])
    today = date(2026, 12, 1)
    retiring = validate_file(p, model=MODEL, today=today)
    assert retiring.model_notice is not None and "is retiring: new fine-tuning jobs end on 2027-01-06" in retiring.model_notice
    assert retiring.verdict == "clean"  # the data is fine: the notice is about the model
    retired = validate_file(p, model="gpt-4.1-nano-2025-04-14", today=today)
    assert retired.model_notice is not None and "is retired: training ended on 2026-10-23; its fine-tunes stop serving on 2026-10-23" in retired.model_notice
    assert "model: gpt-4.1-nano-2025-04-14 is retired" in render(retired)
    msg = dataset_report(retired, ReportContext(name="t.jsonl", user_id="U1", slack_file_id="F1", model="gpt-4.1-nano-2025-04-14"))
    assert "is retired" in json.dumps(msg["blocks"])
    assert validate_file(p, model=MODEL, today=date(2026, 6, 1)).model_notice is None  # months away: nothing to say


def test_together_models_have_their_own_limits_epochs_and_no_openai_price(tmp_path: Path) -> None:
    p = _file(tmp_path, [_chat(i) for i in range(12)])
    oss = validate_file(p, model="openai/gpt-oss-20b")
    t = oss.tokens
    assert t is not None and (t.limit, t.epochs, t.estimated_usd, t.approximate) == (16_384, 1, None, True)
    text = render(oss)
    assert "billed: 1 epoch x " in text and "$" not in text and "Together prices each job itself" in text
    assert not [w for w in oss.warnings if w.kind == "unknown_model"] and oss.model_notice is None
    other = validate_file(p, model="acme/new-model-7b")
    [unknown] = [w for w in other.warnings if w.kind == "unknown_model"]
    assert "assumed limit 32,768 tokens" in unknown.message and "Together's client checks the real limit" in unknown.message


def test_retirement_dates_are_the_providers_it_goes_to(tmp_path: Path) -> None:
    p = _file(tmp_path, [_chat(i) for i in range(12)])
    # Azure keeps training gpt-4o-mini until 2027-04-01: nothing to say in December 2026.
    assert validate_file(p, model=MODEL, today=date(2026, 12, 1), provider="azure").model_notice is None
    assert validate_file(p, model=MODEL, today=date(2027, 3, 1), provider="azure").model_notice is not None
